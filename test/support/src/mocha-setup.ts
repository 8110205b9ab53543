import { ensureServices, stopServices } from './services.js';

/** Mocha global fixture: the services must answer before any test runs; a run without them fails in one line. */
export async function mochaGlobalSetup(): Promise<void> {
  try {
    await ensureServices();
  } catch (err) {
    process.stderr.write(`contexture tests cannot run: ${(err as Error).message}\n`);
    process.exit(1);
  }
}

export async function mochaGlobalTeardown(): Promise<void> {
  await stopServices();
}
