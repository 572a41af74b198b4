import { accessSync, constants } from 'node:fs';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';

// Debian's Chromium driven by playwright-core, as in the demo's tests: nothing downloads a browser.

export const CHROMIUM_PATH = process.env['PARLEY_CHROMIUM'] ?? '/usr/bin/chromium';

/**
 * docs/architecture.md's flags, a fake camera and microphone with no prompt, loopback candidates
 * (`--allow-loopback-in-peer-connection`), and no throttling of pages that are not in front
 * (both pages of a call run at full speed, as two people's tabs would).
 */
export const CHROMIUM_FLAGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

/** Why Chromium cannot run here, or null. */
export function chromiumProblem(): string | null {
  try {
    accessSync(CHROMIUM_PATH, constants.X_OK);
    return null;
  } catch {
    return `no Chromium at ${CHROMIUM_PATH} (install it with: apt-get install -y chromium; or set PARLEY_CHROMIUM)`;
  }
}

export async function launchChromium(extraFlags: readonly string[] = []): Promise<Browser> {
  const problem = chromiumProblem();
  if (problem) throw new Error(problem);
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: [...CHROMIUM_FLAGS, ...extraFlags] });
}
