import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RESERVED_RKEY_PREFIX } from './protocol/message.js';

/** This package's compiled sources: frames inside them are skipped when looking for the caller. */
const ownDir = path.dirname(fileURLToPath(import.meta.url));
const cache = new Map<string, string>();
const LEADING_BUILD_DIRS = new Set(['dist', 'build', 'lib', 'out', 'src']);

type CallSite = { getFileName(): string | null | undefined };

/**
 * A routing key made from the module that called into this package, like the Python original:
 * `<cwd>/app/handlers/users.js` → `app.handlers.users`. Falls back to `main`.
 */
export function callerModuleName(): string {
  const prepare = Error.prepareStackTrace;
  const limit = Error.stackTraceLimit;
  let sites: CallSite[] = [];
  try {
    Error.stackTraceLimit = 16;
    Error.prepareStackTrace = (_err, callSites) => callSites;
    const holder: { stack?: unknown } = {};
    Error.captureStackTrace(holder, callerModuleName);
    sites = (holder.stack as CallSite[] | undefined) ?? [];
  } finally {
    Error.prepareStackTrace = prepare;
    Error.stackTraceLimit = limit;
  }
  for (const site of sites) {
    let file = site.getFileName();
    if (!file || file.startsWith('node:')) continue;
    if (file.startsWith('file://')) file = fileURLToPath(file);
    if (file.startsWith(ownDir + path.sep)) continue;
    return nameForFile(file);
  }
  return 'main';
}

/** The dotted routing key for a module file. */
export function nameForFile(file: string, cwd = process.cwd()): string {
  const cached = cache.get(file);
  if (cached !== undefined) return cached;
  let rel = path.relative(cwd, file);
  if (rel.startsWith('..') || path.isAbsolute(rel)) rel = path.basename(file);
  const parts = rel
    .replace(/\.[cm]?[jt]sx?$/, '')
    .split(/[\\/]+/)
    .filter(Boolean);
  while (parts.length > 1 && (LEADING_BUILD_DIRS.has(parts[0]!) || parts[0] === 'node_modules')) parts.shift();
  if (parts.length > 1 && parts[parts.length - 1] === 'index') parts.pop();
  let name = parts.map((p) => p.replace(/[^A-Za-z0-9_-]/g, '_')).join('.') || 'main';
  // A name the user did not choose never takes the reserved prefix (`contexture/jobs.js` →
  // `_contexture.jobs`): those routing keys are the project's own traffic, which readers skip.
  if (name.startsWith(RESERVED_RKEY_PREFIX)) name = `_${name}`;
  if (cache.size < 10_000) cache.set(file, name);
  return name;
}
