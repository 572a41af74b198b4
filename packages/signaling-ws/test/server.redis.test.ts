// Signaling servers sharing rooms through the Redis broker, in this process (each server its own
// broker, i.e. its own node, on one real redis-server). Separate processes, kill -9 and a load
// balancer are in the cluster tests.

import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRedisBroker, type RedisBroker, type SignalingServerOptions } from '../src/server/index.js';
import { startRedisServer, type RedisServer } from '../src/testing/index.js';
import { useServers, type StartedServer } from './helpers/server.js';
import { subscriptionGone } from './helpers/redis.js';
import { until } from './helpers/ws-client.js';

let redis: RedisServer;
const brokers: RedisBroker[] = [];
let keyPrefix = '';

beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  // After every server closed (useServers closes them after each test): a broker outlives its server.
  for (const broker of brokers.splice(0)) await broker.close();
  await redis.close();
});

const fixture = useServers({ resumeSecret: 'shared-secret', resumeGraceMs: 5000 });
afterEach(async () => {
  if (!redis.running) await redis.start();
  keyPrefix = '';
});

/** A server whose rooms live in Redis (a node of the test's cluster). */
async function node(options: SignalingServerOptions = {}): Promise<StartedServer> {
  if (keyPrefix === '') keyPrefix = `s-${randomBytes(4).toString('hex')}:`;
  const broker = await createRedisBroker({ url: redis.url, keyPrefix, deadNodeGraceMs: 5000 });
  brokers.push(broker);
  return fixture.server({ broker, ...options });
}

async function readyz(srv: StartedServer): Promise<{ status: number; body: unknown }> {
  const res = await fetch(new URL('/readyz', srv.httpUrl));
  return { status: res.status, body: await res.json() };
}

describe('parley-signaling over the Redis broker', () => {
  it('two peers on two nodes see each other, relay both ways, and leave', async () => {
    const [s1, s2] = [await node(), await node()];
    const a = await fixture.joined(s1, 'r', 'a');
    const b = await fixture.joined(s2, 'r', 'b');
    expect(b.welcome['peers']).toEqual([{ id: a.id, name: 'a' }]);
    expect(await a.socket.next('peer-joined')).toEqual({ type: 'peer-joined', peer: { id: b.id, name: 'b' } });
    a.socket.signal(b.id, { n: 1 });
    expect(await b.socket.next('signal')).toEqual({ type: 'signal', from: a.id, data: { n: 1 } });
    b.socket.signal(a.id, { n: 2 });
    expect(await a.socket.next('signal')).toEqual({ type: 'signal', from: b.id, data: { n: 2 } });
    // the name rule holds across nodes
    const twin = await fixture.open(s1);
    twin.send({ type: 'join', room: 'r', name: 'b' });
    expect(await twin.nextError()).toBe('name-taken');
    b.socket.send({ type: 'leave' });
    expect(await a.socket.next('peer-left')).toEqual({ type: 'peer-left', id: b.id });
    a.socket.signal(b.id, { n: 3 });
    expect(await a.socket.nextError()).toBe('unknown-peer');
  });

  it('a peer that drops on one node and resumes on another keeps its id, gets what was held for it, and the room hears nothing', async () => {
    const [s1, s2] = [await node(), await node()];
    const a = await fixture.joined(s1, 'r', 'a');
    const b = await fixture.joined(s2, 'r', 'b');
    await a.socket.next('peer-joined');
    b.socket.terminate(); // 1006: in grace on s2, frames held there
    await until(() => s2.logs.some((e) => e.event === 'disconnect'), 'the drop seen on s2');
    a.socket.signal(b.id, { n: 1 });
    a.socket.signal(b.id, { n: 2 });
    const frameBytes = (n: number): number => Buffer.byteLength(JSON.stringify({ type: 'signal', from: a.id, data: { n } }));
    await until(() => s2.server.stats().heldBytes === frameBytes(1) + frameBytes(2), 'both held on s2');
    const back = await fixture.joined(s1, 'r', 'b', { resume: b.welcome['resume'] });
    expect(back.id).toBe(b.id);
    expect(back.welcome['peers']).toEqual([{ id: a.id, name: 'a' }]);
    // handed over by s2, in order, then what is sent after
    a.socket.signal(b.id, { n: 3 });
    expect(await back.socket.next('signal')).toMatchObject({ from: a.id, data: { n: 1 } });
    expect(await back.socket.next('signal')).toMatchObject({ from: a.id, data: { n: 2 } });
    expect(await back.socket.next('signal')).toMatchObject({ from: a.id, data: { n: 3 } });
    expect(s2.logs.some((e) => e.event === 'peer-taken-over' && e['peer'] === b.id)).toBe(true);
    // the room was never told b left, so it is not told b joined; nor later by s2's grace
    expect(await a.socket.quiet(300)).toEqual([]);
    expect(s2.server.stats().peers).toBe(0);
  });

  it('a restore on another node while the old socket lingers closes that socket with 4000', async () => {
    const [s1, s2] = [await node(), await node()];
    const a = await fixture.joined(s1, 'r', 'a');
    const b = await fixture.joined(s2, 'r', 'b');
    await a.socket.next('peer-joined');
    const back = await fixture.joined(s1, 'r', 'b', { resume: b.welcome['resume'] });
    expect(back.id).toBe(b.id);
    expect((await b.socket.closed).code).toBe(4000);
    a.socket.signal(b.id, { n: 1 });
    expect(await back.socket.next('signal')).toMatchObject({ from: a.id, data: { n: 1 } });
    expect(await a.socket.quiet(200)).toEqual([]);
  });

  it('/readyz answers 503 while Redis is away and /healthz stays 200; signaling works again when it is back', async () => {
    const [s1, s2] = [await node(), await node()];
    const a = await fixture.joined(s1, 'r', 'a');
    const b = await fixture.joined(s2, 'r', 'b');
    await a.socket.next('peer-joined');
    expect(await readyz(s1)).toEqual({ status: 200, body: { status: 'ready' } });
    await redis.kill();
    const [first, second] = brokers.slice(-2) as [RedisBroker, RedisBroker];
    await until(() => !first.ready(), 'the broker not ready');
    expect(await readyz(s1)).toEqual({ status: 503, body: { status: 'broker-unavailable' } });
    expect((await fetch(new URL('/healthz', s1.httpUrl))).status).toBe(200);
    // a signal meanwhile is answered, not lost silently
    a.socket.signal(b.id, { n: 0 });
    expect(await a.socket.nextError()).toBe('undeliverable');
    await redis.start();
    await until(() => first.ready() && second.ready(), 'both nodes ready', 10_000);
    expect(await readyz(s1)).toEqual({ status: 200, body: { status: 'ready' } });
    a.socket.signal(b.id, { n: 1 });
    expect(await b.socket.next('signal')).toEqual({ type: 'signal', from: a.id, data: { n: 1 } });
    // the members were written back: a newcomer sees both
    const c = await fixture.joined(s2, 'r', 'c');
    expect(c.welcome['peers']).toEqual([{ id: a.id, name: 'a' }, { id: b.id, name: 'b' }]);
  });

  it('a peer that leaves while Redis is away is reported peer-left on the other nodes once Redis is back', async () => {
    const [s1, s2] = [await node(), await node()];
    const a = await fixture.joined(s1, 'r', 'a');
    const b = await fixture.joined(s2, 'r', 'b');
    await a.socket.next('peer-joined');
    const [first, second] = brokers.slice(-2) as [RedisBroker, RedisBroker];
    await redis.kill();
    await until(() => !second.ready(), 'the broker not ready');
    b.socket.send({ type: 'leave' });
    await until(() => s2.logs.some((e) => e.event === 'broker-error' && e['operation'] === 'leave'), 'the leave failing');
    await redis.start();
    await until(() => first.ready() && second.ready(), 'both nodes ready', 10_000);
    expect(await a.socket.next('peer-left', 10_000)).toEqual({ type: 'peer-left', id: b.id });
    expect(await first.members('r')).toEqual([{ id: a.id, name: 'a' }]);
  });

  it("a node that dies: its peer resumes on another node with its id and the frames held for it in Redis, in order", async () => {
    const [s1, s2] = [await node(), await node()];
    const a = await fixture.joined(s1, 'r', 'a');
    const b = await fixture.joined(s2, 'r', 'b');
    await a.socket.next('peer-joined');
    const dead = brokers.at(-1)!;
    // s2 dies as with kill -9: its Redis connections drop, its sockets with it.
    dead.crash();
    b.socket.terminate();
    await subscriptionGone(redis.url, keyPrefix, dead);
    for (let n = 1; n <= 5; n += 1) a.socket.signal(b.id, { n });
    // the frames are held in Redis (no node listens for b): a hears nothing back
    expect(await a.socket.quiet(200)).toEqual([]);
    const back = await fixture.joined(s1, 'r', 'b', { resume: b.welcome['resume'] });
    expect(back.id).toBe(b.id);
    for (let n = 1; n <= 5; n += 1) expect(await back.socket.next('signal')).toEqual({ type: 'signal', from: a.id, data: { n } });
    expect(await a.socket.quiet(200)).toEqual([]); // neither peer-left nor peer-joined
  });
});
