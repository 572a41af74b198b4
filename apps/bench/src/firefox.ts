import { accessSync, constants } from 'node:fs';
import puppeteer from 'puppeteer-core';
import type { Browser } from 'puppeteer-core';
import { engineOptions } from '@parley/browser';
import type { OpenSide } from './call-setup/trial.js';

// Debian's Firefox ESR driven by puppeteer-core over WebDriver BiDi, with the prefs of
// engineOptions.firefox() (as the interop suite and the demo's Firefox test launch it): nothing
// downloads a browser. Firefox gathers no 127.0.0.1 candidate, so its calls run inside a network
// namespace with a veth address (scripts/in-namespace.mjs), never on the host's interfaces.

export const FIREFOX_PATH = process.env['PARLEY_FIREFOX'] ?? '/usr/bin/firefox-esr';

/** Why Firefox cannot run here, or null. */
export function firefoxProblem(): string | null {
  try {
    accessSync(FIREFOX_PATH, constants.X_OK);
    return null;
  } catch {
    return `no Firefox at ${FIREFOX_PATH} (install it with: apt-get install -y firefox-esr; or set PARLEY_FIREFOX)`;
  }
}

export async function launchFirefox(): Promise<Browser> {
  const problem = firefoxProblem();
  if (problem) throw new Error(problem);
  return puppeteer.launch({ browser: 'firefox', executablePath: FIREFOX_PATH, headless: true, extraPrefsFirefox: engineOptions.firefox().prefs });
}

/** Each side of a bench call in a new Firefox browsing context of `browser`. */
export function firefoxSide(browser: Browser): OpenSide {
  return async (url, errors) => {
    const context = await browser.createBrowserContext();
    const page = await context.newPage();
    page.on('pageerror', (error) => errors.push(`${url}: ${error instanceof Error ? error.message : String(error)}`));
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(`${url}: ${message.text()}`);
    });
    await page.goto(url, { waitUntil: 'load' });
    return { page: { evaluate: <R>(fn: () => R | Promise<R>) => page.evaluate(fn) as Promise<R> }, close: () => context.close() };
  };
}
