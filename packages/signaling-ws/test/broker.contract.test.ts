// One contract for every Broker: the in-memory broker (both "nodes" are the same instance), and
// the Redis broker on a real redis-server as one node and as two brokers (two nodes). Each case
// uses node A and node B, so with two Redis nodes every rule is checked across nodes.

import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRedisBroker, InMemoryBroker, type Broker, type Deliver, type HeldFrame } from '../src/server/index.js';
import { startRedisServer, type RedisServer } from '../src/testing/index.js';
import { sleep, until } from './helpers/ws-client.js';

/** What a member received: frames with their senders. */
class Inbox {
  readonly got: HeldFrame[] = [];
  readonly deliver: Deliver = (frame, from) => {
    this.got.push({ frame: frame.toString(), from }); // text or bytes (WireFrame)
  };
  frames(): string[] {
    return this.got.map((f) => f.frame);
  }
}

interface Nodes {
  readonly a: Broker;
  readonly b: Broker;
}

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis.close();
});

const factories: Array<[string, () => Promise<Nodes>]> = [
  [
    'InMemoryBroker',
    () => {
      const broker = new InMemoryBroker();
      return Promise.resolve({ a: broker, b: broker });
    },
  ],
  [
    'Redis broker (one node)',
    async () => {
      const broker = await createRedisBroker({ url: redis.url, keyPrefix: `contract-${randomBytes(4).toString('hex')}:` });
      return { a: broker, b: broker };
    },
  ],
  [
    'Redis broker (two nodes)',
    async () => {
      const keyPrefix = `contract-${randomBytes(4).toString('hex')}:`;
      return { a: await createRedisBroker({ url: redis.url, keyPrefix }), b: await createRedisBroker({ url: redis.url, keyPrefix }) };
    },
  ],
];

for (const [name, create] of factories) {
  describe(`Broker contract: ${name}`, () => {
    let nodes: Nodes;
    afterEach(async () => {
      await nodes.a.close();
      if (nodes.b !== nodes.a) await nodes.b.close();
    });

    it('join answers the other members in join order; name-taken, id-taken and room-full refuse', async () => {
      nodes = await create();
      const { a, b } = nodes;
      expect(await a.join('r', { id: 'p1', name: 'one' }, 3, new Inbox().deliver)).toMatchObject({ ok: true, peers: [] });
      expect(await b.join('r', { id: 'p2', name: 'two' }, 3, new Inbox().deliver)).toMatchObject({ ok: true, peers: [{ id: 'p1', name: 'one' }] });
      expect(await a.join('r', { id: 'p3', name: 'two' }, 3, new Inbox().deliver)).toEqual({ ok: false, reason: 'name-taken' });
      expect(await b.join('r', { id: 'p1', name: 'other' }, 3, new Inbox().deliver)).toEqual({ ok: false, reason: 'id-taken' });
      // without takeover, the same id and name is id-taken too
      expect(await b.join('r', { id: 'p1', name: 'one' }, 3, new Inbox().deliver)).toEqual({ ok: false, reason: 'id-taken' });
      expect(await b.join('r', { id: 'p3', name: 'three' }, 3, new Inbox().deliver)).toMatchObject({
        ok: true,
        peers: [{ id: 'p1', name: 'one' }, { id: 'p2', name: 'two' }],
      });
      expect(await a.join('r', { id: 'p4', name: 'four' }, 3, new Inbox().deliver)).toEqual({ ok: false, reason: 'room-full' });
      expect(await a.members('r')).toEqual([{ id: 'p1', name: 'one' }, { id: 'p2', name: 'two' }, { id: 'p3', name: 'three' }]);
      expect(await b.members('nothing')).toEqual([]);
    });

    it('publish reaches the member only, with its sender; an unknown member is false', async () => {
      nodes = await create();
      const { a, b } = nodes;
      const one = new Inbox();
      const two = new Inbox();
      await a.join('r', { id: 'p1', name: 'one' }, 16, one.deliver);
      await b.join('r', { id: 'p2', name: 'two' }, 16, two.deliver);
      expect(await a.publish('r', 'p2', 'f1', 'p1')).toBe(true);
      expect(await b.publish('r', 'p1', 'f2', 'p2')).toBe(true);
      expect(await a.publish('r', 'nobody', 'f3', 'p1')).toBe(false);
      expect(await a.publish('other-room', 'p2', 'f4', 'p1')).toBe(false);
      await until(() => one.got.length === 1 && two.got.length === 1, 'both frames');
      expect(two.got).toEqual([{ frame: 'f1', from: 'p1' }]);
      expect(one.got).toEqual([{ frame: 'f2', from: 'p2' }]);
    });

    it('broadcast reaches every member but the one excepted, on every node', async () => {
      nodes = await create();
      const { a, b } = nodes;
      const inboxes = [new Inbox(), new Inbox(), new Inbox()];
      await a.join('r', { id: 'p1', name: 'one' }, 16, inboxes[0]!.deliver);
      await b.join('r', { id: 'p2', name: 'two' }, 16, inboxes[1]!.deliver);
      await b.join('r', { id: 'p3', name: 'three' }, 16, inboxes[2]!.deliver);
      await a.broadcast('r', 'hello', 'p2');
      await until(() => inboxes[0]!.got.length === 1 && inboxes[2]!.got.length === 1, 'the broadcast');
      await sleep(50);
      expect(inboxes.map((i) => i.frames())).toEqual([['hello'], [], ['hello']]);
      expect(inboxes[0]!.got[0]!.from).toBeUndefined();
    });

    it('leave removes only the membership that joined with that deliver, and says whether it did', async () => {
      nodes = await create();
      const { a, b } = nodes;
      const one = new Inbox();
      await a.join('r', { id: 'p1', name: 'one' }, 16, one.deliver);
      expect(await a.leave('r', 'p1', new Inbox().deliver)).toBe(false);
      expect(await b.leave('r', 'p1', new Inbox().deliver)).toBe(false);
      expect(await b.members('r')).toEqual([{ id: 'p1', name: 'one' }]);
      expect(await a.leave('r', 'p1', one.deliver)).toBe(true);
      expect(await a.leave('r', 'p1', one.deliver)).toBe(false);
      expect(await b.members('r')).toEqual([]);
      expect(await b.publish('r', 'p1', 'late', 'p2')).toBe(false);
    });

    it('a takeover keeps the id and its place, ends the old membership silently and brings its held frames first', async () => {
      nodes = await create();
      const { a, b } = nodes;
      const old = new Inbox();
      let takenOver = 0;
      const heldByOld: HeldFrame[] = [{ frame: 'held-1', from: 'p2' }, { frame: 'held-2', from: 'p2' }];
      await a.join('r', { id: 'p1', name: 'one' }, 2, old.deliver, {
        onTakenOver: () => {
          takenOver += 1;
          return heldByOld;
        },
      });
      await b.join('r', { id: 'p2', name: 'two' }, 2, new Inbox().deliver);
      // another name under the id is no takeover
      expect(await b.join('r', { id: 'p1', name: 'other' }, 2, new Inbox().deliver, { takeover: true })).toEqual({ ok: false, reason: 'id-taken' });
      const fresh = new Inbox();
      // a full room does not stop a takeover: the member is already counted
      const result = await b.join('r', { id: 'p1', name: 'one' }, 2, fresh.deliver, { takeover: true });
      expect(result).toMatchObject({ ok: true, takenOver: true, peers: [{ id: 'p2', name: 'two' }] });
      await b.publish('r', 'p1', 'after', 'p2');
      const received = (): string[] => [...(result.ok ? (result.held ?? []) : []), ...fresh.got].map((f) => f.frame);
      await until(() => received().length === 3, 'held frames and the frame after the takeover');
      expect(received()).toEqual(['held-1', 'held-2', 'after']);
      expect(takenOver).toBe(1);
      expect(old.got).toEqual([]);
      // the old membership's leave (its grace ran out) removes nothing
      expect(await a.leave('r', 'p1', old.deliver)).toBe(false);
      expect(await a.members('r')).toEqual([{ id: 'p1', name: 'one' }, { id: 'p2', name: 'two' }]);
      expect(await b.leave('r', 'p1', fresh.deliver)).toBe(true);
    });

    it('revoke is true once per key, isRevoked sees it on every node, and it runs out', async () => {
      nodes = await create();
      const { a, b } = nodes;
      const now = Date.now();
      expect(await a.isRevoked('k1', now)).toBe(false);
      expect(await a.revoke('k1', now + 60_000, now)).toBe(true);
      expect(await b.revoke('k1', now + 60_000, now)).toBe(false);
      expect(await b.isRevoked('k1', now)).toBe(true);
      // Of two revoking at once, one wins.
      const both = await Promise.all([a.revoke('k2', now + 60_000, now), b.revoke('k2', now + 60_000, now)]);
      expect(both.filter(Boolean)).toHaveLength(1);
      const start = Date.now();
      expect(await a.revoke('short', start + 100, start)).toBe(true);
      await sleep(250);
      expect(await b.isRevoked('short', Date.now())).toBe(false);
      expect(await b.revoke('short', Date.now() + 100, Date.now())).toBe(true);
    });
  });
}
