// Waiting in real-stack tests: core's polling helpers, with a default bound for real engines
// and servers (they answer in their own time, slower than the fake network).
import { waitFor as waitForCondition } from '../../../core/test/helpers/wait-for.js';

export { pollUntil, sleep, waitUntil } from '../../../core/test/helpers/wait-for.js';
export type { PollOutcome } from '../../../core/test/helpers/wait-for.js';

/** Polls `predicate` every 5 ms until it holds; fails with `what` after `timeoutMs` (default 10 s). */
export function waitFor(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  return waitForCondition(predicate, what, timeoutMs, 5);
}
