import { loadScripts, script } from '../internal/scripts.js';

/** A claimed task as the scripts give it: id, name, params (JSON), attempt, token, current, total. */
export type Claimed = [string, string, string, number, number, string | null, string | null];

/** The task queue's Lua scripts (`src/lua/tasks/`); their headers say what they take and return. */
export const TASK_SCRIPTS = loadScripts('tasks', {
  submit: script<[string, string | null]>(3, 'task submit'),
  renew: script<number>(3, 'task renew'),
  listeners: script<number>(1, 'task listeners'),
  /** Claim and finish share lib.lua and take a varying number of keys (the first argument). */
  claim: script<Claimed | null>(null, 'task claim', { lib: true }),
  finish: script<[number, Claimed | null]>(null, 'task finish', { lib: true }),
});
