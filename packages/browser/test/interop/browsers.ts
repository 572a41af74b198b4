import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { Browser as ChromiumBrowser } from 'playwright-core';
import { build } from 'vite';
import { engineOptions } from '../../src/index.js';
import { firefoxVersion, launchFirefox } from '../helpers/firefox.js';
import type { Party, PartyConfig } from './party.js';

// The browsers of the interop suite, Debian's own: Chromium driven by playwright-core, Firefox
// ESR by puppeteer-core over WebDriver BiDi. Nothing here downloads a browser: both paths are
// explicit. One instance per browser serves every pair; each side of a call is a page of its own.

export const CHROMIUM_PATH = process.env['PARLEY_CHROMIUM'] ?? '/usr/bin/chromium';

function executableProblem(path: string, hint: string, variable: string): string | null {
  try {
    accessSync(path, constants.X_OK);
    return null;
  } catch {
    return `no browser at ${path} (install it with: ${hint}; or set ${variable})`;
  }
}

/** Why Chromium cannot run here, or null. */
export const chromiumProblem = executableProblem(CHROMIUM_PATH, 'apt-get install -y chromium', 'PARLEY_CHROMIUM');

const PAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), 'page');

/** Builds the party page (page/index.html) into a temporary folder; returns the folder. */
export async function buildPartyPage(): Promise<{ readonly dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'parley-interop-'));
  await build({
    root: PAGE_DIR,
    base: './',
    logLevel: 'warn',
    configFile: false,
    build: { outDir: dir, emptyOutDir: true, target: 'es2022', minify: false },
  });
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Every Party method as the suite calls it: asynchronous, whether in Node or in a page. */
export type AsyncParty = { readonly [K in keyof Party]: (...args: Parameters<Party[K]>) => Promise<Awaited<ReturnType<Party[K]>>> };

/** A Node party as an AsyncParty. */
export function asyncParty(party: Party): AsyncParty {
  const wrapped: Record<string, unknown> = {};
  for (const key of Object.keys(party) as (keyof Party)[]) {
    wrapped[key] = (...args: unknown[]) => Promise.resolve().then(() => (party[key] as (...a: unknown[]) => unknown)(...args));
  }
  return wrapped as AsyncParty;
}

type Evaluate = (expression: string) => Promise<unknown>;

/** A party in a page, driven through `window.interop` (page/party-page.ts). */
function pageParty(evaluate: Evaluate, close: () => Promise<void>): AsyncParty {
  const methods: (keyof Party)[] = ['ready', 'call', 'connected', 'send', 'received', 'openChannel', 'channelOpen', 'addTransceiver', 'negotiated', 'sections', 'ufrags', 'restartIce', 'restarted', 'mediaReceived', 'problems', 'close'];
  const wrapped: Record<string, unknown> = {};
  for (const method of methods) {
    wrapped[method] = (...args: unknown[]) => evaluate(`window.interop.party().${method}(...${JSON.stringify(args)})`);
  }
  wrapped['close'] = async () => {
    await evaluate('window.interop.party().close()').catch(() => undefined);
    await close();
  };
  return wrapped as AsyncParty;
}

/** One browser instance that opens a page per party. */
export interface PartyBrowser {
  readonly version: string;
  /** Opens the page at `url` and starts a party there; resolves once it sees the other side. */
  open(url: string, config: PartyConfig): Promise<AsyncParty>;
  close(): Promise<void>;
}

export async function launchChromiumParties(): Promise<PartyBrowser> {
  const browser: ChromiumBrowser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-background-timer-throttling', '--disable-renderer-backgrounding', ...engineOptions.chromium().args],
  });
  return {
    version: `Chromium ${browser.version()}`,
    async open(url, config) {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(url);
      await page.waitForFunction(() => window.interop !== undefined);
      const party = pageParty((expression) => page.evaluate(expression), () => context.close());
      await page.evaluate((input) => window.interop!.start(input), config);
      return party;
    },
    close: () => browser.close(),
  };
}

export async function launchFirefoxParties(): Promise<PartyBrowser> {
  const browser = await launchFirefox();
  return {
    version: await firefoxVersion(browser),
    async open(url, config) {
      const page = await browser.newPage();
      await page.goto(url);
      await page.waitForFunction(() => window.interop !== undefined);
      const party = pageParty((expression) => page.evaluate(expression), () => page.close());
      await page.evaluate((input: PartyConfig) => window.interop!.start(input), config);
      return party;
    },
    close: () => browser.close(),
  };
}
