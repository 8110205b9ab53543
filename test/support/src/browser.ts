/**
 * Debian's chromium for the browser tests, driven through playwright-core: `npm test` installs it
 * (test/ensure-chromium.sh); the tests never download a browser. A subpath of its own
 * (`@contexture/test-support/browser`) so that only the browser suites load playwright-core.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Launches the headless chromium; fails saying what to install when it is missing. */
export async function launchChromium(): Promise<Browser> {
  try {
    return await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
  } catch (err) {
    throw new Error(
      `these tests need Debian's chromium at ${CHROMIUM} (apt-get install -y chromium; npm test installs it): ${(err as Error).message}`,
    );
  }
}

/** The repository's git-ignored test-output/, where screenshots for a person to look at go; made if missing. */
export function screenshotDir(): string {
  const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test-output');
  mkdirSync(dir, { recursive: true });
  return dir;
}
