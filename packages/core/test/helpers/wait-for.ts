// Waiting in tests that run in real time (the fake network without a scheduler, where every
// fake step is a macrotask, and the real stacks of the browser package): poll for an observable
// condition, bounded by a timeout, with a readable failure. A sleep is never an assertion.

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The most one poll interval counts against a timeout. Longer gaps between polls are stalls of
 * the event loop itself (on a loaded machine a synchronous libwebrtc call can hold it up; seen
 * under fivefold CPU oversubscription): no timer, message delivery or engine event reached
 * JavaScript meanwhile, so the condition had no chance to come true and the code under test no
 * chance to act. A timeout therefore measures time the loop was running, and a deadlock still
 * fails after it.
 */
const STALL_CAP_MS = 250;

export interface PollOutcome {
  /** Whether the predicate came true. */
  readonly held: boolean;
  /** The longest gap between two polls, in ms (the longest stall of the event loop). */
  readonly longestGapMs: number;
}

/** Polls `predicate` until it holds or `timeoutMs` of running time passes (see STALL_CAP_MS). */
export async function pollUntil(predicate: () => boolean, timeoutMs: number, pollMs = 5): Promise<PollOutcome> {
  let waited = 0;
  let longestGapMs = 0;
  let last = Date.now();
  while (!predicate()) {
    if (waited > timeoutMs) return { held: false, longestGapMs };
    await sleep(pollMs);
    const now = Date.now();
    longestGapMs = Math.max(longestGapMs, now - last);
    waited += Math.min(now - last, STALL_CAP_MS);
    last = now;
  }
  return { held: true, longestGapMs };
}

/** Polls `predicate` until it holds (true) or `timeoutMs` of running time passes (false). */
export async function waitUntil(predicate: () => boolean, timeoutMs: number, pollMs = 5): Promise<boolean> {
  return (await pollUntil(predicate, timeoutMs, pollMs)).held;
}

/** Polls `predicate` until it holds; fails with `what` after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, what: string, timeoutMs = 3000, pollMs = 2): Promise<void> {
  const outcome = await pollUntil(predicate, timeoutMs, pollMs);
  if (!outcome.held) {
    const stall = outcome.longestGapMs > STALL_CAP_MS ? ` (the event loop stalled for up to ${outcome.longestGapMs} ms meanwhile)` : '';
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${stall}`);
  }
}
