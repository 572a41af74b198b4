// Per-connection message rate limit: a token bucket (capacity `burst`, refilled at
// `perSecond`), and an abuse threshold: a connection that keeps sending into an empty bucket
// (more than `closeAfterDropped` messages dropped within one second) is closed with 4029.

export type RateVerdict = 'accept' | 'drop' | 'abuse';

export class RateLimiter {
  private tokens: number;
  private last: number;
  private dropped = 0;
  private droppedWindowStart = 0;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly closeAfterDropped: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  /** Takes one token for a message received at `now` (milliseconds). */
  take(now: number): RateVerdict {
    const elapsed = now - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.perSecond) / 1000);
      this.last = now;
    }
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 'accept';
    }
    if (now - this.droppedWindowStart >= 1000) {
      this.droppedWindowStart = now;
      this.dropped = 0;
    }
    this.dropped += 1;
    return this.dropped > this.closeAfterDropped ? 'abuse' : 'drop';
  }
}

/** Counts slots (open connections, upgrades under way, sessions in grace) per client address. */
export class ConnectionCounter {
  private readonly counts = new Map<string, number>();

  constructor(private readonly maxPerKey: number) {}

  /** Reserves a slot for `key`; false when it already has the maximum. */
  tryAcquire(key: string): boolean {
    const count = this.counts.get(key) ?? 0;
    if (count >= this.maxPerKey) return false;
    this.counts.set(key, count + 1);
    return true;
  }

  /** Takes a slot for `key` even past the maximum (a session that keeps its client's slot in grace). */
  add(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  /** Gives a slot of `key` back. */
  release(key: string): void {
    const count = this.counts.get(key) ?? 0;
    if (count <= 1) this.counts.delete(key);
    else this.counts.set(key, count - 1);
  }
}
