#!/usr/bin/env node
import { createProgram, exitCodeOf } from '../index.js';

const status = await createProgram()
  .parseAsync(process.argv)
  .then(() => 0, exitCodeOf);
// Exit once stdout has taken the last output (a pipe may still hold it); stdin may be open.
if (process.stdout.writable && !process.stdout.destroyed) process.stdout.write('', () => process.exit(status));
else process.exit(status);
