import { accessSync, constants } from 'node:fs';
import puppeteer from 'puppeteer-core';
import type { Browser } from 'puppeteer-core';
import { engineOptions } from '../../src/index.js';

// Debian's Firefox ESR driven by puppeteer-core over WebDriver BiDi, for every suite that needs it
// (the interop suite, the demo's Firefox test). Nothing here downloads a browser: the path is
// explicit. Firefox gathers no 127.0.0.1 candidate (and none at all where `lo` is the only
// interface), so its calls signal the address of the veth interface that scripts/test.mjs adds
// inside the test run's own network namespace: PARLEY_NAMESPACE_ADDRESS. Never the host's.

/** Where Firefox is (PARLEY_FIREFOX, or Debian's firefox-esr). */
export const FIREFOX_PATH = process.env['PARLEY_FIREFOX'] ?? '/usr/bin/firefox-esr';

function firefoxMissing(): string | null {
  try {
    accessSync(FIREFOX_PATH, constants.X_OK);
    return null;
  } catch {
    return `no browser at ${FIREFOX_PATH} (install it with: apt-get install -y firefox-esr; or set PARLEY_FIREFOX)`;
  }
}

/** Why Firefox cannot run here, or null. */
export const firefoxProblem = firefoxMissing();

/** The address of the test namespace's veth interface (scripts/test.mjs), or null outside it. */
export const NAMESPACE_ADDRESS: string | null = process.env['PARLEY_NAMESPACE_ADDRESS'] ?? null;

/**
 * Why calls with Firefox cannot run here (they need the namespace's veth address), or null.
 * `command` is how to run the suite inside the namespace, for the hint.
 */
export function namespaceProblem(command: string): string | null {
  return NAMESPACE_ADDRESS === null ? `no network namespace with a veth interface for Firefox (run the suite with: ${command})` : null;
}

/** Launches headless Firefox with engineOptions.firefox()'s prefs (fake media, no prompts, host addresses). */
export async function launchFirefox(): Promise<Browser> {
  return puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX_PATH,
    headless: true,
    extraPrefsFirefox: engineOptions.firefox().prefs,
  });
}

/** Firefox's version as the reports print it ("Firefox 153.8.0"; puppeteer over BiDi says "firefox/153.8.0"). */
export async function firefoxVersion(browser: Browser): Promise<string> {
  const version = (await browser.version()).replace(/^firefox[/ ]/i, '');
  return `Firefox ${version}`;
}
