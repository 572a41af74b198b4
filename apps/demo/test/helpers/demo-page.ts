import type { Browser as ChromiumBrowser } from 'playwright-core';
import type { Browser as FirefoxBrowser } from 'puppeteer-core';

// One person's demo page in any browser: Chromium driven by playwright-core, Firefox by
// puppeteer-core over WebDriver BiDi. The two drivers share little API, so a DemoPage reduces
// each to what a person does: run a function in the page, and wait until one is true there.
// Everything else (clicks, typing, files) goes through the page's DOM and its test hooks, the
// same in both browsers. (Chromium-only suites use person.ts, with Playwright's locators.)

const DEFAULT_TIMEOUT = 15_000;

/** A demo page open in a browser context of its own. */
export interface DemoPage {
  readonly name: string;
  /** Which browser runs it, for failure messages. */
  readonly browser: 'Chromium' | 'Firefox';
  /** Uncaught errors of the page, for assertions. */
  readonly pageErrors: string[];
  /** Everything the page logged, with the time since it opened, for failure reports. */
  readonly console: string[];
  /** Runs `fn(arg)` in the page and resolves with its (serializable) result. */
  evaluate<A, R>(fn: (arg: A) => R | Promise<R>, arg: A): Promise<R>;
  /** Resolves once `fn(arg)` is truthy in the page; rejects after `timeout` ms. */
  waitUntil<A>(fn: (arg: A) => unknown, arg: A, timeout?: number): Promise<void>;
  close(): Promise<void>;
}

/** A page's uncaught errors and console lines (with the time since it opened), and how to add to them. */
function pageRecord(name: string): Pick<DemoPage, 'pageErrors' | 'console'> & { error(message: string): void; log(type: string, text: string): void } {
  const start = Date.now();
  const pageErrors: string[] = [];
  const console: string[] = [];
  return {
    pageErrors,
    console,
    error: (message) => pageErrors.push(`${name}: ${message}`),
    log: (type, text) => console.push(`+${Date.now() - start} ms ${type}: ${text}`),
  };
}

/** Opens `url` as `name` in a new Chromium context (playwright-core). */
export async function openInChromium(browser: ChromiumBrowser, url: string, name: string): Promise<DemoPage> {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  const record = pageRecord(name);
  page.on('pageerror', (error) => record.error(error.message));
  page.on('console', (message) => record.log(message.type(), message.text()));
  await page.goto(url);
  return {
    name,
    browser: 'Chromium',
    pageErrors: record.pageErrors,
    console: record.console,
    // The page gets `arg` as serialized: DemoPage's functions take plain data only.
    evaluate: (fn, arg) => page.evaluate(fn as (arg: unknown) => never, arg as unknown),
    waitUntil: async (fn, arg, timeout = DEFAULT_TIMEOUT) => {
      await page.waitForFunction(fn as (arg: unknown) => unknown, arg as unknown, { timeout, polling: 50 });
    },
    close: () => context.close(),
  };
}

/** Opens `url` as `name` in a new Firefox browsing context (puppeteer-core, WebDriver BiDi). */
export async function openInFirefox(browser: FirefoxBrowser, url: string, name: string): Promise<DemoPage> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  const record = pageRecord(name);
  page.on('pageerror', (error) => record.error(error instanceof Error ? error.message : String(error)));
  page.on('console', (message) => record.log(message.type(), message.text()));
  await page.goto(url);
  return {
    name,
    browser: 'Firefox',
    pageErrors: record.pageErrors,
    console: record.console,
    evaluate: (fn, arg) => page.evaluate(fn as (arg: unknown) => unknown, arg) as Promise<never>,
    waitUntil: async (fn, arg, timeout = DEFAULT_TIMEOUT) => {
      await page.waitForFunction(fn as (arg: unknown) => unknown, { timeout, polling: 50 }, arg);
    },
    close: () => context.close(),
  };
}

/** What `page` shows in its state panel, and what it logged last: for failure messages. */
export async function describeDemoPage(page: DemoPage): Promise<string> {
  const panel = await page
    .evaluate(() => document.querySelector<HTMLElement>('.states')?.innerText.replace(/\n+/g, ' | ') ?? '(no state panel)', undefined)
    .catch(() => '(page gone)');
  return `${page.name} (${page.browser}): ${panel}\n  ${page.console.slice(-25).join('\n  ')}`;
}

/** The text of the element with `data-testid=id` (trimmed), or null without one. */
export function testIdText(page: DemoPage, id: string): Promise<string | null> {
  return page.evaluate((testId) => document.querySelector(`[data-testid="${testId}"]`)?.textContent?.trim() ?? null, id);
}

/** Waits until the element with `data-testid=id` has exactly `text` (trimmed); says what it has instead. */
export async function waitForTestId(page: DemoPage, id: string, text: string, others: readonly DemoPage[] = [], timeout = DEFAULT_TIMEOUT): Promise<void> {
  try {
    await page.waitUntil(([testId, expected]) => document.querySelector(`[data-testid="${testId}"]`)?.textContent?.trim() === expected, [id, text] as const, timeout);
  } catch (error) {
    const reports = await Promise.all([page, ...others].map(describeDemoPage));
    throw new Error(`${page.name} (${page.browser}) ${id}: expected "${text}", still "${await testIdText(page, id)}" after ${timeout} ms\n${reports.join('\n')}`, {
      cause: error,
    });
  }
}

/** Waits until `selector` matches a shown, enabled element, then clicks it as a person would. */
export async function clickWhenReady(page: DemoPage, selector: string, timeout = DEFAULT_TIMEOUT): Promise<void> {
  const ready = (target: string): boolean => {
    const element = document.querySelector<HTMLButtonElement>(target);
    return element !== null && !element.disabled && element.closest('[hidden]') === null;
  };
  await page.waitUntil(ready, selector, timeout);
  await page.evaluate((target) => document.querySelector<HTMLElement>(target)!.click(), selector);
}

/** Clicks the Call button of `who` in `caller`'s presence list. */
export function clickCallTo(caller: DemoPage, who: DemoPage): Promise<void> {
  return clickWhenReady(caller, `[data-testid="peer"][data-name="${who.name}"] [data-testid="call"]`);
}

/** Waits until `page`'s call is active with its peer connection connected. */
export async function waitUntilConnected(page: DemoPage, others: readonly DemoPage[] = []): Promise<void> {
  await waitForTestId(page, 'call-state', 'active', others);
  await waitForTestId(page, 'connection-state', 'connected', others);
}

/** Decoded frames of the remote <video>: its size, its playback time, and how many frames it has shown. */
export interface RemoteFrames {
  readonly width: number;
  readonly height: number;
  readonly currentTime: number;
  readonly frames: number;
}

/**
 * The remote <video> as the page shows it, when it has moved on from `since` (a size, a later
 * time, `more` frames more), or null while it has not; with `since` null, as it is now. Frames
 * shown: Chromium counts a MediaStream's frames in getVideoPlaybackQuality().totalVideoFrames;
 * Firefox leaves that at 0 for a MediaStream and counts them in its own `mozPaintedFrames`, so
 * the larger of the two is taken. Runs in the page: self-contained.
 */
function remoteFramesPast([since, more]: readonly [RemoteFrames | null, number]): RemoteFrames | null {
  const video = document.querySelector<HTMLVideoElement>('[data-testid="remote-video"]');
  if (!video) throw new Error('no remote-video element');
  const painted = (video as HTMLVideoElement & { readonly mozPaintedFrames?: number }).mozPaintedFrames ?? 0;
  const now = {
    width: video.videoWidth,
    height: video.videoHeight,
    currentTime: video.currentTime,
    frames: Math.max(video.getVideoPlaybackQuality().totalVideoFrames, painted),
  };
  if (since === null) return now;
  return now.width > 0 && now.currentTime > since.currentTime && now.frames >= since.frames + more ? now : null;
}

/** Waits until the remote <video> has a size, its time has moved on and it has shown `more` frames since the call; returns the latest. */
export async function waitForRemoteFrames(page: DemoPage, others: readonly DemoPage[] = [], more = 5): Promise<RemoteFrames> {
  const before = (await page.evaluate(remoteFramesPast, [null, 0] as const))!;
  try {
    await page.waitUntil(remoteFramesPast, [before, more] as const);
  } catch (error) {
    const reports = await Promise.all([page, ...others].map(describeDemoPage));
    const now = await page.evaluate(remoteFramesPast, [null, 0] as const);
    throw new Error(`${page.name} (${page.browser}) shows no moving remote video (${JSON.stringify(before)}, then ${JSON.stringify(now)})\n${reports.join('\n')}`, {
      cause: error,
    });
  }
  return (await page.evaluate(remoteFramesPast, [null, 0] as const))!;
}

/** Types `text` into the chat and sends it (the form's submit, as Enter or Send would). */
export async function sendChat(page: DemoPage, text: string): Promise<void> {
  await page.waitUntil(() => document.querySelector<HTMLInputElement>('[data-testid="chat-input"]')?.disabled === false, undefined);
  await page.evaluate((message) => {
    const input = document.querySelector<HTMLInputElement>('[data-testid="chat-input"]')!;
    input.value = message;
    input.dispatchEvent(new Event('input', { bubbles: true }));
    document.querySelector<HTMLFormElement>('[data-testid="chat-form"]')!.requestSubmit();
  }, text);
}

/** Waits until the chat log shows `text` from the other side. */
export async function waitForChatFromThem(page: DemoPage, text: string): Promise<void> {
  await page.waitUntil(
    (expected) => [...document.querySelectorAll('[data-testid="chat-log"] [data-from="them"]')].some((line) => line.textContent?.includes(expected) === true),
    text,
  );
}

/** Picks a file named `name` with `content` in the file input, as a person choosing it would. */
export async function pickFile(page: DemoPage, name: string, content: Buffer): Promise<void> {
  await page.waitUntil(() => document.querySelector<HTMLInputElement>('[data-testid="file-input"]')?.disabled === false, undefined);
  await page.evaluate(
    ([fileName, base64]) => {
      const bytes = Uint8Array.from(atob(base64), (char) => char.charCodeAt(0));
      const files = new DataTransfer();
      files.items.add(new File([bytes], fileName, { type: 'application/octet-stream' }));
      const input = document.querySelector<HTMLInputElement>('[data-testid="file-input"]')!;
      input.files = files.files;
      input.dispatchEvent(new Event('change', { bubbles: true }));
    },
    [name, content.toString('base64')] as const,
  );
}

/** Waits for the download link of a received file; returns its name, size and SHA-256 (hex). */
export async function receivedFile(page: DemoPage, timeout = 30_000): Promise<{ readonly name: string; readonly size: number; readonly sha256: string }> {
  await page.waitUntil(() => document.querySelector('[data-testid="file-download"]') !== null, undefined, timeout);
  return page.evaluate(async () => {
    const anchor = document.querySelector<HTMLAnchorElement>('[data-testid="file-download"]')!;
    const bytes = await (await fetch(anchor.href)).arrayBuffer();
    const digest = await crypto.subtle.digest('SHA-256', bytes);
    return { name: anchor.download, size: bytes.byteLength, sha256: [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, '0')).join('') };
  }, undefined);
}
