import type { FakeScheduler } from '../../src/testing/index.js';

// A FakeScheduler that a test drives by hand: every scheduled task (an RTC completion of the fake
// network, a signaling delivery of the pair) waits in a FIFO queue, under its label, until the
// test releases it. Between releases every microtask runs, so the machines react completely to
// one step before the next one happens: the orderings a test writes down are the orderings that
// happen.

/** A string matches every label that contains it; a RegExp is tested against the label. */
export type LabelMatch = RegExp | string;

interface PendingTask {
  readonly label: string;
  readonly run: () => void;
}

export interface RunOptions {
  /** Tasks matching this stay queued (released later, explicitly). */
  readonly hold?: LabelMatch | readonly LabelMatch[];
  /** Stop once this holds (checked before each release). */
  readonly until?: () => boolean;
  /** A bound on releases, against a livelock in the code under test. */
  readonly maxSteps?: number;
}

function matches(label: string, match: LabelMatch): boolean {
  return typeof match === 'string' ? label.includes(match) : match.test(label);
}

function matchesAny(label: string, hold: RunOptions['hold']): boolean {
  if (hold === undefined) return false;
  const list: readonly LabelMatch[] = Array.isArray(hold) ? hold : [hold as LabelMatch];
  return list.some((match) => matches(label, match));
}

/** Lets every pending microtask (promise reactions, xstate event processing) run. */
export async function flushMicrotasks(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
}

export class ManualScheduler implements FakeScheduler {
  private readonly queue: PendingTask[] = [];
  /** Labels of every task released so far, in release order. */
  readonly released: string[] = [];

  schedule<T>(task: Promise<T>, label = '(unlabelled)'): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ label, run: () => void task.then(resolve, reject) });
    });
  }

  /** Labels of the tasks waiting, oldest first. */
  pending(): string[] {
    return this.queue.map((task) => task.label);
  }

  /** True when a pending task's label matches. */
  has(match: LabelMatch): boolean {
    return this.queue.some((task) => matches(task.label, match));
  }

  /** Releases the oldest pending task whose label matches, then lets the machines react. */
  async release(match: LabelMatch): Promise<string> {
    const index = this.queue.findIndex((task) => matches(task.label, match));
    if (index < 0) {
      const pending = this.pending();
      throw new Error(
        `ManualScheduler: no pending task matches ${String(match)}; pending (${pending.length}):` +
          (pending.length > 0 ? `\n  ${pending.join('\n  ')}` : ' none'),
      );
    }
    return this.releaseAt(index);
  }

  /**
   * Releases pending tasks oldest first (tasks they schedule join the queue) until none is left
   * that is not held, or `until` holds. Returns the labels released.
   */
  async runUntilIdle(options: RunOptions = {}): Promise<string[]> {
    const maxSteps = options.maxSteps ?? 5_000;
    const done: string[] = [];
    await flushMicrotasks();
    for (let step = 0; ; step++) {
      if (options.until?.()) return done;
      const index = this.queue.findIndex((task) => !matchesAny(task.label, options.hold));
      if (index < 0) return done;
      if (step >= maxSteps) {
        throw new Error(`ManualScheduler: still busy after ${maxSteps} releases; pending:\n  ${this.pending().join('\n  ')}`);
      }
      done.push(await this.releaseAt(index));
    }
  }

  /** `runUntilIdle` without holds: nothing is pending afterwards. */
  async releaseAll(): Promise<string[]> {
    return this.runUntilIdle();
  }

  /** Runs until `condition` holds; fails (with the pending labels) if the queue runs dry first. */
  async runUntil(condition: () => boolean, options: Omit<RunOptions, 'until'> = {}): Promise<string[]> {
    const done = await this.runUntilIdle({ ...options, until: condition });
    if (!condition()) {
      throw new Error(
        `ManualScheduler: the condition never held; released:\n  ${done.join('\n  ')}\npending:\n  ${this.pending().join('\n  ') || 'none'}`,
      );
    }
    return done;
  }

  private async releaseAt(index: number): Promise<string> {
    const [task] = this.queue.splice(index, 1);
    this.released.push(task!.label);
    task!.run();
    await flushMicrotasks();
    return task!.label;
  }
}
