// Waiting in real-stack tests: real engines and servers answer in their own time, so tests poll
// for an observable condition, bounded by a timeout, and never use a sleep as an assertion.

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `predicate` until it holds (true) or `timeoutMs` passes (false). */
export async function waitUntil(predicate: () => boolean, timeoutMs: number, pollMs = 5): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) return false;
    await sleep(pollMs);
  }
  return true;
}

/** Polls `predicate` until it holds; fails with `what` after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  if (!(await waitUntil(predicate, timeoutMs))) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
