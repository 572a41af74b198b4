import type { Browser, BrowserContext, Page } from 'playwright-core';
import { sleep, withTimeout } from '../timing.js';
import { callDurations } from './measure.js';
import type { CallDurations, SideTimes } from './measure.js';

// One call between two fresh pages of a subject, each in its own browser context (two people's
// browsers): both pages load, join the room and open their media first (not timed; with
// `media: 'at-call'` the subject opens it itself, timed), then, SETTLE_MS later, the caller's
// "call" is t0 and each page reports its own times.

/**
 * How long the call waits once both pages are ready: a person calls a page that is open, with
 * its camera running, not within milliseconds of it opening (the report's notes give what
 * calling at once measured, until 2026-12-07).
 */
export const SETTLE_MS = 1000;

/** A page of `pages/call-<subject>.html`, and when it opens the camera and microphone. */
export interface CallSubjectPage {
  readonly page: 'raw' | 'parley' | 'simple-peer';
  /** `before-call` (default): opened while the page sets up; `at-call`: on "call" / when called. */
  readonly media?: 'before-call' | 'at-call';
  /** Parley only: `prepared`, the caller's line is prepared when its page is ready (`Call.prepare()`). */
  readonly line?: 'prepared';
}

/** One side's page as the trial drives it (a Playwright or a puppeteer page behind it). */
export interface TrialPage {
  evaluate<R>(fn: () => R | Promise<R>): Promise<R>;
}

/** Opens one side's page at `url` in a browser context of its own; its errors go to `errors`. */
export type OpenSide = (url: string, errors: string[]) => Promise<{ readonly page: TrialPage; close(): Promise<void> }>;

export interface TrialOptions {
  /** Chromium, for both sides unless `sides` says otherwise. */
  readonly browser: Browser;
  /** Who opens each side's page (default: a new context of `browser` each), e.g. Firefox for one. */
  readonly sides?: { readonly caller: OpenSide; readonly callee: OpenSide };
  /** The one address whose candidates the pages signal (`?address=`; default 127.0.0.1). */
  readonly candidateAddress?: string;
  /** `http://127.0.0.1:PORT/` of the page server. */
  readonly origin: string;
  readonly signalingUrl: string;
  readonly subject: CallSubjectPage;
  /** A room of its own for this call. */
  readonly room: string;
  /** How long the call may take to connect and show video on both sides (default 15 s). */
  readonly timeoutMs?: number;
  /** Wait between both pages being ready and "call" (default SETTLE_MS). */
  readonly settleMs?: number;
}

interface BenchWindow {
  readonly bench?: {
    readonly ready: Promise<void>;
    call(): number;
    result(): Promise<SideTimes>;
    problems(): readonly string[];
    steps(): Readonly<Record<string, number>>;
  };
}

function pageUrl(options: TrialOptions, role: 'caller' | 'callee'): string {
  const query = new URLSearchParams({ role, room: options.room, signal: options.signalingUrl });
  if (options.subject.media !== undefined) query.set('media', options.subject.media);
  if (options.subject.line !== undefined) query.set('line', options.subject.line);
  if (options.candidateAddress !== undefined) query.set('address', options.candidateAddress);
  return `${options.origin}call-${options.subject.page}.html?${query.toString()}`;
}

async function openSide(context: BrowserContext, url: string, errors: string[]): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (error) => errors.push(`${url}: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`${url}: ${message.text()}`);
  });
  await page.goto(url, { waitUntil: 'load' });
  return page;
}

/** Each side in a new context of a Playwright (Chromium) browser. */
export function chromiumSide(browser: Browser): OpenSide {
  return async (url, errors) => {
    const context = await browser.newContext();
    const page = await openSide(context, url, errors);
    return { page: { evaluate: (fn) => page.evaluate(fn) }, close: () => context.close() };
  };
}

export async function runCall(options: TrialOptions): Promise<CallDurations> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const errors: string[] = [];
  const sides = options.sides ?? { caller: chromiumSide(options.browser), callee: chromiumSide(options.browser) };
  const settled = await Promise.allSettled([sides.callee(pageUrl(options, 'callee'), errors), sides.caller(pageUrl(options, 'caller'), errors)]);
  const opened = settled.flatMap((side) => (side.status === 'fulfilled' ? [side.value] : []));
  try {
    for (const side of settled) if (side.status === 'rejected') throw side.reason;
    const [callee, caller] = opened.map((side) => side.page) as [TrialPage, TrialPage];
    const describe = (what: string) => () => new Error(`${options.subject.page}${options.subject.media ? ` (media ${options.subject.media})` : ''}: ${what} within ${timeoutMs} ms; ${errors.join('; ') || 'no page errors'}`);
    await withTimeout(
      Promise.all([callee.evaluate(() => (window as BenchWindow).bench!.ready), caller.evaluate(() => (window as BenchWindow).bench!.ready)]),
      timeoutMs,
      describe('pages not ready'),
    );
    await sleep(options.settleMs ?? SETTLE_MS);
    const calleeResult = callee.evaluate(() => (window as BenchWindow).bench!.result());
    const callerResult = caller.evaluate(() => (window as BenchWindow).bench!.result());
    // Awaited below; if "call" itself fails they reject when the pages close, unobserved otherwise.
    for (const pending of [calleeResult, callerResult]) pending.catch(() => undefined);
    await caller.evaluate(() => (window as BenchWindow).bench!.call());
    try {
      const [callerTimes, calleeTimes] = await withTimeout(Promise.all([callerResult, calleeResult]), timeoutMs, describe('no connection and first frame on both sides'));
      return callDurations(callerTimes, calleeTimes);
    } catch (error) {
      const state = async (page: TrialPage): Promise<string> =>
        page.evaluate(() => JSON.stringify({ steps: (window as BenchWindow).bench!.steps(), problems: (window as BenchWindow).bench!.problems() })).catch(() => 'unknown');
      throw new Error(`${error instanceof Error ? error.message : String(error)}; caller ${await state(caller)}; callee ${await state(callee)}`);
    }
  } finally {
    await Promise.all(opened.map((side) => side.close().catch(() => undefined)));
  }
}
