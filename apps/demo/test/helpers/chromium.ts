import { accessSync, constants } from 'node:fs';
import { describeWhenInstalled } from '../../../../packages/core/test/helpers/describe-when-installed.js';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';

// Debian's Chromium driven by playwright-core (docs/architecture.md, "Testing"). Nothing here ever
// downloads a browser: playwright-core has no browsers of its own, and the path is explicit.

export const CHROMIUM_PATH = process.env['PARLEY_CHROMIUM'] ?? '/usr/bin/chromium';
export const INSTALL_HINT = 'apt-get install -y chromium';

/**
 * The flags of docs/architecture.md ("Testing") plus what one machine needs: fake camera and microphone, no prompts,
 * and loopback candidates (Chromium gathers 127.0.0.1 only with --allow-loopback-in-peer-connection).
 */
export const CHROMIUM_FLAGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--use-fake-device-for-media-stream',
  '--allow-loopback-in-peer-connection',
];

export interface LaunchOptions {
  /** Answer every camera/microphone request with "denied", as a person clicking Block would. */
  readonly denyMedia?: boolean;
}

function chromiumMissing(): string | null {
  try {
    accessSync(CHROMIUM_PATH, constants.X_OK);
    return null;
  } catch {
    return `no Chromium at ${CHROMIUM_PATH} (install it with: ${INSTALL_HINT}; or set PARLEY_CHROMIUM)`;
  }
}

export const chromiumProblem = chromiumMissing();

/** `describe` for suites that need Chromium (skipped with the install hint, or failing under CI). */
export function describeInChromium(name: string, body: () => void): void {
  describeWhenInstalled(name, 'Chromium', chromiumProblem, body);
}

/**
 * A page refused the camera gets its host candidates as mDNS names (`<uuid>.local`) instead of
 * addresses: Chromium shows a page its addresses only once it has media permission (IETF
 * draft-ietf-mmusic-mdns-ice-candidates). The loopback filter keeps 127.0.0.1 only, so such a
 * page would signal no candidate at all; with this feature off it gathers 127.0.0.1 as before.
 */
const REFUSED_MEDIA_FLAGS: readonly string[] = ['--use-fake-ui-for-media-stream=deny', '--disable-features=WebRtcHideLocalIpsWithMdns'];

export async function launchChromium(options: LaunchOptions = {}): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    // playwright adds its own --headless; ours stays in the list for the record of docs/architecture.md's flags.
    args: [...CHROMIUM_FLAGS, ...(options.denyMedia ? REFUSED_MEDIA_FLAGS : ['--use-fake-ui-for-media-stream'])],
  });
}
