// Frames relayed in one turn of the event loop go to Redis as one call of the PUBLISH script
// (scripts.ts), in order: under load that is one command for many frames instead of one each,
// which is most of a node's relay cost (a command's object, promise, arguments and reply).
// Any other command the broker sends first flushes the batch (`flush`), so that the order of
// frames and room notices from this node is the order in which the server produced them.

import type { Redis } from 'ioredis';
import type { RedisKeys, ScriptCommands } from './scripts.js';
import { deliverHead } from './node-channel.js';

/** Frames per script call at most: a script blocks Redis while it runs. */
const BATCH_LIMIT = 128;

/** How frames are held for a member whose node did not take them (see scripts.ts, PUBLISH). */
export interface HoldLimits {
  readonly maxHeldFrames: number;
  readonly maxHeldBytes: number;
  readonly heldTtlMs: number;
}

interface Pending {
  readonly resolve: (result: number) => void;
  readonly reject: (error: unknown) => void;
}

/** Batches publishes: each resolves to the PUBLISH script's answer for its frame (0, 1, 2 or 3). */
export class PublishBatch {
  private keys: (string | number)[] = [];
  private args: (string | number)[] = [];
  private pending: Pending[] = [];
  private scheduled = false;

  constructor(
    private readonly cmd: Redis & ScriptCommands,
    private readonly redisKeys: RedisKeys,
    private readonly limits: HoldLimits,
  ) {}

  /** Queues a frame for member `to` of `room`; sent at the end of this turn or when the batch is full. */
  add(room: string, to: string, frame: string, from: string | undefined): Promise<number> {
    const k = this.redisKeys;
    this.keys.push(k.room(room), k.held(room, to), k.heldBytes(room, to));
    this.args.push(to, deliverHead(room, to, from), frame, from ?? '');
    const result = new Promise<number>((resolve, reject) => this.pending.push({ resolve, reject }));
    if (this.pending.length >= BATCH_LIMIT) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    return result;
  }

  /** Sends what is queued now. */
  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const { keys, args, pending } = this;
    this.keys = [];
    this.args = [];
    this.pending = [];
    const { maxHeldFrames, maxHeldBytes, heldTtlMs } = this.limits;
    this.cmd.parleyPublish(keys.length, ...keys, this.redisKeys.prefix, maxHeldFrames, maxHeldBytes, heldTtlMs, ...args).then(
      (results) => {
        for (let i = 0; i < pending.length; i += 1) pending[i]!.resolve(results[i] ?? 0);
      },
      (error: unknown) => {
        for (const p of pending) p.reject(error);
      },
    );
  }
}
