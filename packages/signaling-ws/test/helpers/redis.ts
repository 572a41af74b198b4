// Test helper for the Redis broker's tests: wait for Redis to notice a node that went away.

import { Redis } from 'ioredis';
import type { RedisBroker } from '../../src/server/index.js';

/**
 * Resolves once the Redis at `url` has dropped the subscription of `broker`'s node (on key prefix
 * `keyPrefix`), as it does when a killed process's socket closes: from then on nothing published
 * for that node reaches it, and frames for its members are held.
 */
export async function subscriptionGone(url: string, keyPrefix: string, broker: RedisBroker): Promise<void> {
  const raw = new Redis(url);
  try {
    for (;;) {
      const [, count] = (await raw.pubsub('NUMSUB', `${keyPrefix}node:${broker.nodeId}`)) as [string, number];
      if (count === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  } finally {
    raw.disconnect();
  }
}
