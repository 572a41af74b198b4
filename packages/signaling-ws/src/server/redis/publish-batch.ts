// Frames relayed in one turn of the event loop go to Redis as one call of the PUBLISH script
// (scripts.ts), in order: under load that is one command for many frames instead of one each,
// which is most of a node's relay cost (a command's object, promise, arguments and reply).
// Any other command the broker sends first flushes the batch (`flush`), so that the order of
// frames and room notices from this node is the order in which the server produced them.

import type { Redis } from 'ioredis';
import type { WireFrame } from '../broker.js';
import type { ScriptCommands } from './scripts.js';

/** Frames per script call at most: a script blocks Redis while it runs. */
const BATCH_LIMIT = 128;

/** How frames are held for a member whose node did not take them (see scripts.ts, PUBLISH). */
export interface HoldLimits {
  readonly maxHeldFrames: number;
  readonly maxHeldBytes: number;
  readonly heldTtlMs: number;
}

/** Where a queued frame's answer goes: the PUBLISH script's answer for it (0, 1, 2 or 3), or the error. */
export interface PublishAnswer {
  readonly resolve: (result: number) => void;
  readonly reject: (error: unknown) => void;
}

/** Batches publishes. */
export class PublishBatch {
  private args: (string | Buffer)[] = [];
  private pending: PublishAnswer[] = [];
  private scheduled = false;

  constructor(
    private readonly cmd: Redis & ScriptCommands,
    private readonly prefix: string,
    private readonly limits: HoldLimits,
  ) {}

  /**
   * Queues a frame for member `to` of `room` (sent at the end of this turn, or now when the batch
   * is full); its answer goes to `answer` (no promise per frame here: the caller makes the one it returns).
   */
  add(room: string, to: string, frame: WireFrame, from: string | undefined, answer: PublishAnswer): void {
    this.args.push(room, to, from ?? '', frame);
    this.pending.push(answer);
    if (this.pending.length >= BATCH_LIMIT) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Sends what is queued now. */
  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const { args, pending } = this;
    this.args = [];
    this.pending = [];
    const { maxHeldFrames, maxHeldBytes, heldTtlMs } = this.limits;
    this.cmd.parleyPublish(this.prefix, maxHeldFrames, maxHeldBytes, heldTtlMs, ...args).then(
      (results) => {
        for (let i = 0; i < pending.length; i += 1) pending[i]!.resolve(results[i] ?? 0);
      },
      (error: unknown) => {
        for (const p of pending) p.reject(error);
      },
    );
  }
}
