#!/usr/bin/env node
import { createProgram } from '../daemon/cli.js';
import { runProgram } from './run-program.js';

await runProgram('contexture-collector', createProgram());
