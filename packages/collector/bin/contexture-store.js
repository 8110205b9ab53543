#!/usr/bin/env node
// The `contexture-store` bin. It lives outside dist/ so that `npm install` links it (and makes
// it executable) even before the first build; the program itself is dist/src/bin/contexture-store.js.
try {
  await import('../dist/src/bin/contexture-store.js');
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('contexture-store.js')) {
    process.stderr.write('contexture-store: not built yet: run `npm run build` at the repository root\n');
    process.exit(70);
  }
  throw err;
}
