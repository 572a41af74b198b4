import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { DemoServer } from './demo-server.js';

// One person in the demo: a browser context (its own storage and permissions) with the page
// open in a room. Every wait goes through the page's test hooks (data-testid), as a person
// would through what they see.

export interface Person {
  readonly name: string;
  readonly context: BrowserContext;
  readonly page: Page;
  /** Uncaught errors of the page, for assertions. */
  readonly pageErrors: string[];
  /** Everything the page logged, with the time since it joined, for failure reports. */
  readonly console: string[];
}

const DEFAULT_TIMEOUT = 15_000;

export async function joinRoom(browser: Browser, server: Pick<DemoServer, 'pageUrl'>, room: string, name: string, extra: Record<string, string> = {}): Promise<Person> {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  const person: Person = { name, context, page, pageErrors: [], console: [] };
  watchPage(person);
  await page.goto(server.pageUrl(room, name, extra));
  await waitForTestIdText(page, 'signaling-status', 'joined');
  return person;
}

/** Collects a page's uncaught errors and console lines into `person`. */
export function watchPage(person: Person): void {
  const start = Date.now();
  person.page.on('pageerror', (error) => person.pageErrors.push(`${person.name}: ${error.message}`));
  person.page.on('console', (message) => person.console.push(`+${Date.now() - start} ms ${message.type()}: ${message.text()}`));
}

/** What a person's page shows in its state panel, and what it logged last: for failure messages. */
export async function describePerson(person: Person): Promise<string> {
  const panel = await person.page
    .locator('.states')
    .innerText()
    .then((text) => text.replace(/\n+/g, ' | '))
    .catch(() => '(no state panel)');
  return `${person.name}: ${panel}\n  ${person.console.slice(-25).join('\n  ')}`;
}

/** Waits until the element with `data-testid=id` has exactly `text` (trimmed). */
export async function waitForTestIdText(page: Page, id: string, text: string, timeout = DEFAULT_TIMEOUT): Promise<void> {
  try {
    await page.waitForFunction(
      ([testId, expected]) => document.querySelector(`[data-testid="${testId}"]`)?.textContent?.trim() === expected,
      [id, text] as const,
      { timeout, polling: 50 },
    );
  } catch (error) {
    const actual = await page.getByTestId(id).first().textContent().catch(() => '(missing)');
    throw new Error(`${id}: expected "${text}", still "${actual?.trim()}" after ${timeout} ms`, { cause: error });
  }
}

export function callState(person: Person): Promise<string | null> {
  return person.page.getByTestId('call-state').textContent();
}

export async function waitForCallState(person: Person, state: string, timeout = DEFAULT_TIMEOUT): Promise<void> {
  await waitForTestIdText(person.page, 'call-state', state, timeout);
}

/** Clicks `who`'s Call button in `caller`'s presence list. */
export async function clickCall(caller: Person, who: Person): Promise<void> {
  const button = caller.page.locator(`[data-testid="peer"][data-name="${who.name}"] [data-testid="call"]`);
  await button.waitFor({ state: 'visible', timeout: DEFAULT_TIMEOUT });
  await caller.page.waitForFunction(
    (name) => document.querySelector<HTMLButtonElement>(`[data-testid="peer"][data-name="${name}"] [data-testid="call"]`)?.disabled === false,
    who.name,
    { timeout: DEFAULT_TIMEOUT, polling: 50 },
  );
  await button.click();
}

/** `caller` calls `callee`, who accepts; both reach `active` and `connected`. */
export async function callAndAccept(caller: Person, callee: Person): Promise<void> {
  await clickCall(caller, callee);
  await waitForCallState(callee, 'incoming');
  await callee.page.getByTestId('accept').click();
  await waitForConnected(caller, DEFAULT_TIMEOUT, [callee]);
  await waitForConnected(callee, DEFAULT_TIMEOUT, [caller]);
}

export async function waitForConnected(person: Person, timeout = DEFAULT_TIMEOUT, others: readonly Person[] = []): Promise<void> {
  try {
    await waitForCallState(person, 'active', timeout);
    await waitForTestIdText(person.page, 'connection-state', 'connected', timeout);
  } catch (error) {
    const reports = await Promise.all([person, ...others].map(describePerson));
    throw new Error(`${person.name} did not connect:\n${reports.join('\n')}`, { cause: error });
  }
}

export interface VideoProgress {
  readonly width: number;
  readonly height: number;
  readonly currentTime: number;
  readonly framesDecoded: number;
}

/** The remote video element's size, time and decoded frame count, as the page sees them. */
export function remoteVideoProgress(person: Person): Promise<VideoProgress> {
  return person.page.evaluate(() => {
    const video = document.querySelector<HTMLVideoElement>('[data-testid="remote-video"]');
    if (!video) throw new Error('no remote-video element');
    return {
      width: video.videoWidth,
      height: video.videoHeight,
      currentTime: video.currentTime,
      framesDecoded: video.getVideoPlaybackQuality().totalVideoFrames,
    };
  });
}

/** Waits until the remote video has a size and its time and frames have moved on since `since`. */
export async function waitForRemoteVideoPlaying(person: Person, timeout = DEFAULT_TIMEOUT): Promise<VideoProgress> {
  const start = await remoteVideoProgress(person);
  await person.page.waitForFunction(
    (before) => {
      const video = document.querySelector<HTMLVideoElement>('[data-testid="remote-video"]');
      return (
        video !== null &&
        video.videoWidth > 0 &&
        video.currentTime > before.currentTime &&
        video.getVideoPlaybackQuality().totalVideoFrames > before.framesDecoded + 5
      );
    },
    start,
    { timeout, polling: 100 },
  );
  return remoteVideoProgress(person);
}

export async function leave(person: Person): Promise<void> {
  await person.context.close();
}
