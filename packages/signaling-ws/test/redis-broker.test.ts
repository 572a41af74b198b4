// The Redis broker beyond the shared contract (broker.contract.test.ts): races between nodes,
// ordering, node death, held frames and a Redis restart, on a real redis-server.

import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRedisBroker, type Deliver, type HeldFrame, type RedisBroker, type RedisBrokerOptions } from '../src/server/index.js';
import { startRedisServer, type RedisServer } from '../src/testing/index.js';
import { subscriptionGone } from './helpers/redis.js';
import { until } from './helpers/ws-client.js';

class Inbox {
  readonly got: HeldFrame[] = [];
  readonly deliver: Deliver = (frame, from) => {
    this.got.push({ frame: frame.toString(), from }); // text or bytes (WireFrame)
  };
  /** The parsed frames of a type (server frames are JSON). */
  ofType(type: string): Record<string, unknown>[] {
    return this.got.flatMap((f) => {
      try {
        const value = JSON.parse(f.frame) as Record<string, unknown>;
        return value['type'] === type ? [value] : [];
      } catch {
        return [];
      }
    });
  }
}

let redis: RedisServer;
const brokers: RedisBroker[] = [];
let keyPrefix = '';

beforeAll(async () => {
  redis = await startRedisServer();
});
afterEach(async () => {
  for (const broker of brokers.splice(0)) await broker.close();
  if (!redis.running) await redis.start();
  keyPrefix = '';
});
afterAll(async () => {
  await redis.close();
});

/** A node on the test's key prefix. */
async function node(options: Partial<RedisBrokerOptions> = {}): Promise<RedisBroker> {
  if (keyPrefix === '') keyPrefix = `t-${randomBytes(4).toString('hex')}:`;
  const broker = await createRedisBroker({ url: redis.url, keyPrefix, ...options });
  brokers.push(broker);
  return broker;
}

/** Resolves once Redis has dropped the subscription of a crashed node. */
const gone = (broker: RedisBroker): Promise<void> => subscriptionGone(redis.url, keyPrefix, broker);

/** Fast liveness for tests: dead after 300 ms of silence, gone 300 ms later. */
const FAST = { heartbeatIntervalMs: 100, heartbeatTtlMs: 300, reaperIntervalMs: 100, deadNodeGraceMs: 300 } as const;

describe('Redis broker across nodes', () => {
  it('two joins racing for the last seat on two nodes: exactly one seat, every round', async () => {
    const [a, b] = [await node(), await node()];
    for (let round = 0; round < 100; round += 1) {
      const room = `race-${round}`;
      await a.join(room, { id: `s${round}`, name: 'seated' }, 2, () => undefined);
      const results = await Promise.all([
        a.join(room, { id: `x${round}`, name: 'x' }, 2, () => undefined),
        b.join(room, { id: `y${round}`, name: 'y' }, 2, () => undefined),
      ]);
      expect(results.filter((r) => r.ok)).toHaveLength(1);
      expect(results.filter((r) => !r.ok && r.reason === 'room-full')).toHaveLength(1);
      expect(await b.members(room)).toHaveLength(2);
    }
  });

  it('keeps the order of 5,000 frames from one sender to a member on another node, none lost', async () => {
    const [a, b] = [await node(), await node()];
    const inbox = new Inbox();
    await a.join('r', { id: 'sender', name: 's' }, 16, () => undefined);
    await b.join('r', { id: 'receiver', name: 'r' }, 16, inbox.deliver);
    const sent = Array.from({ length: 5000 }, (_, i) => `{"n":${i}}`);
    const published = await Promise.all(sent.map((frame) => a.publish('r', 'receiver', frame, 'sender')));
    expect(published.every(Boolean)).toBe(true);
    await until(() => inbox.got.length === sent.length, 'every frame', 20_000);
    expect(inbox.got.map((f) => f.frame)).toEqual(sent);
    expect(inbox.got.every((f) => f.from === 'sender')).toBe(true);
  });

  it('takes a relayed frame as bytes and delivers it on the other node as the same bytes (no text in between)', async () => {
    const [a, b] = [await node(), await node()];
    expect(a.takesBytes).toBe(true);
    const got: unknown[] = [];
    await a.join('r', { id: 'sender', name: 's' }, 16, () => undefined);
    await b.join('r', { id: 'receiver', name: 'r' }, 16, (frame) => got.push(frame));
    const frame = Buffer.from('{"type":"signal","from":"sender","data":{"text":"é\\n✓ 🎉"}}', 'utf8');
    expect(await a.publish('r', 'receiver', frame, 'sender')).toBe(true);
    await until(() => got.length === 1, 'the frame');
    expect(Buffer.isBuffer(got[0])).toBe(true);
    expect(Buffer.compare(got[0] as Buffer, frame)).toBe(0);
  });

  it("holds frames for a dead node's member in Redis and gives them, in order, to the takeover", async () => {
    const [a, b, c] = [await node(FAST), await node(FAST), await node({ ...FAST, deadNodeGraceMs: 60_000 })];
    let oldTold = 0;
    await c.join('r', { id: 'p1', name: 'one' }, 16, () => undefined, { onTakenOver: () => (oldTold += 1, []) });
    await a.join('r', { id: 'p2', name: 'two' }, 16, () => undefined);
    c.crash();
    // Frames published once c is gone reach no subscriber: held in Redis.
    await gone(c);
    const frames = ['h1', 'h2', 'h3'];
    for (const frame of frames) expect(await a.publish('r', 'p1', frame, 'p2')).toBe(true);
    const fresh = new Inbox();
    const result = await b.join('r', { id: 'p1', name: 'one' }, 16, fresh.deliver, { takeover: true });
    expect(result).toMatchObject({ ok: true, takenOver: true, peers: [{ id: 'p2', name: 'two' }] });
    expect(result.ok ? result.held : []).toEqual(frames.map((frame) => ({ frame, from: 'p2' })));
    expect(oldTold).toBe(0); // c is dead: nobody to tell
    await a.publish('r', 'p1', 'after', 'p2');
    await until(() => fresh.got.length === 1, 'the frame after the takeover');
    expect(fresh.got).toEqual([{ frame: 'after', from: 'p2' }]);
  });

  it("removes a dead node's members within the bound: peer-left to the room, undeliverable to senders of held frames", async () => {
    const [a, c] = [await node(FAST), await node(FAST)];
    const watcher = new Inbox();
    await a.join('r', { id: 'watcher', name: 'w' }, 16, watcher.deliver);
    await c.join('r', { id: 'doomed', name: 'd' }, 16, () => undefined);
    await c.join('r', { id: 'doomed2', name: 'd2' }, 16, () => undefined);
    c.crash();
    await gone(c);
    // Held in Redis for the doomed member (its node will never take them).
    expect(await a.publish('r', 'doomed', '{"n":1}', 'watcher')).toBe(true);
    expect(await a.publish('r', 'doomed', '{"n":2}', 'watcher')).toBe(true);
    const bound = FAST.heartbeatTtlMs + FAST.reaperIntervalMs + FAST.deadNodeGraceMs;
    // The bound plus a reaper round trip and generous slack for a loaded machine.
    await until(() => watcher.ofType('peer-left').length === 2, 'peer-left for both members', bound + 10_000);
    expect(watcher.ofType('peer-left').map((f) => f['id']).sort()).toEqual(['doomed', 'doomed2']);
    const errors = watcher.ofType('error');
    expect(errors).toEqual([{ type: 'error', code: 'undeliverable', message: 'signal not delivered: the peer did not come back', to: 'doomed' }]);
    expect(await a.members('r')).toEqual([{ id: 'watcher', name: 'w' }]);
  });

  it('past the held bound the sender is told undeliverable; nothing is dropped silently', async () => {
    const [a, c] = [await node({ maxHeldFrames: 2 }), await node()];
    const sender = new Inbox();
    await a.join('r', { id: 'sender', name: 's' }, 16, sender.deliver);
    await c.join('r', { id: 'gone', name: 'g' }, 16, () => undefined);
    c.crash();
    await gone(c);
    for (let i = 0; i < 3; i += 1) await a.publish('r', 'gone', `{"n":${i}}`, 'sender');
    await until(() => sender.ofType('error').length === 1, 'undeliverable');
    expect(sender.ofType('error')[0]).toMatchObject({ code: 'undeliverable', to: 'gone' });
  });

  it('a node found dead that still lives (its heartbeat lapsed) registers itself and its members again', async () => {
    const logs: string[] = [];
    const a = await node({ ...FAST, heartbeatIntervalMs: 1000, heartbeatTtlMs: 3000, logger: (e) => logs.push(e.event) });
    const b = await node({ ...FAST, deadNodeGraceMs: 60_000 });
    await a.join('r', { id: 'p1', name: 'one' }, 16, () => undefined);
    const raw = new Redis(redis.url);
    try {
      // As if a's heartbeat had lapsed: b's reaper finds it dead (again if a's heartbeat came first) ...
      const alive = `${keyPrefix}node:${a.nodeId}:alive`;
      let foundDead = false;
      while (!foundDead) {
        await raw.del(alive);
        for (;;) {
          if ((await raw.zscore(`${keyPrefix}dead`, a.nodeId)) !== null || logs.includes('redis-node-reregister')) foundDead = true;
          else if ((await raw.exists(alive)) === 0) continue;
          break;
        }
      }
      await until(() => logs.includes('redis-node-reregister'), "a's next heartbeat noticing", 10_000);
      // ... and a's next heartbeat takes it back out of the dead set, into the live one.
      await until(() => a.ready(), 'a ready again');
      expect(await raw.zscore(`${keyPrefix}dead`, a.nodeId)).toBeNull();
      expect(await raw.sismember(`${keyPrefix}nodes`, a.nodeId)).toBe(1);
      expect(await b.members('r')).toEqual([{ id: 'p1', name: 'one' }]);
    } finally {
      raw.disconnect();
    }
  });

  it('Redis restarted empty: not ready while it is down (joins and publishes fail at once), then every member is back', async () => {
    const a = await node();
    const b = await node();
    const inbox = new Inbox();
    await a.join('r', { id: 'p1', name: 'one' }, 16, () => undefined);
    await b.join('r', { id: 'p2', name: 'two' }, 16, inbox.deliver);
    await redis.kill();
    await until(() => !a.ready() && !b.ready(), 'both not ready');
    await expect(a.publish('r', 'p2', 'lost?', 'p1')).rejects.toThrow(/not ready/);
    await expect(a.join('r', { id: 'p3', name: 'three' }, 16, () => undefined)).rejects.toThrow(/not ready/);
    await redis.start();
    await until(() => a.ready() && b.ready(), 'both ready again', 10_000);
    expect(await a.members('r')).toEqual([{ id: 'p1', name: 'one' }, { id: 'p2', name: 'two' }]);
    expect(await a.publish('r', 'p2', 'again', 'p1')).toBe(true);
    await until(() => inbox.got.length === 1, 'the frame after the restart');
    expect(inbox.got).toEqual([{ frame: 'again', from: 'p1' }]);
    // the cap holds again across nodes, with the members written back
    expect(await b.join('r', { id: 'p3', name: 'three' }, 2, () => undefined)).toEqual({ ok: false, reason: 'room-full' });
  });

  it('createRedisBroker rejects with the reason when Redis does not answer in time, and waits for one that starts late', async () => {
    await expect(createRedisBroker({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 300 })).rejects.toThrow(
      /^Redis at redis:\/\/127\.0\.0\.1:1 did not answer within 300 ms \(.*ECONNREFUSED/,
    );
    await redis.stop();
    const late = createRedisBroker({ url: redis.url, keyPrefix: `late-${randomBytes(4).toString('hex')}:` });
    await redis.start();
    const broker = await late;
    brokers.push(broker);
    expect(broker.ready()).toBe(true);
  });
});
