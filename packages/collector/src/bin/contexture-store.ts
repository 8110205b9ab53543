#!/usr/bin/env node
import { createStoreProgram } from '../daemon/store-cli.js';
import { runProgram } from './run-program.js';

await runProgram('contexture-store', createStoreProgram());
