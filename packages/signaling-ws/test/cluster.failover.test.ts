// Issue 13, failures of a cluster (real `parley-signaling` processes on one real `redis-server`),
// seen on the wire by raw protocol sockets:
// - kill -9 of a node: a member of it resumes on another node with its resume token (the nodes
//   share the resume secret), keeps its id, and gets the signals sent to it meanwhile, in order;
//   the room never hears it leave;
// - a member of a killed node that never comes back leaves its room (`peer-left`) within the
//   bound (node heartbeat expiry + resume grace), and a signal sent to it meanwhile is answered
//   `undeliverable`: nothing is dropped silently;
// - Redis restarted: /readyz 503 while it is gone (/healthz stays 200), ready again within 5 s of
//   its return, the members registered again, and relay working again; a signal sent while Redis
//   was gone is delivered or answered `undeliverable`, never lost silently.

import { afterEach, describe, expect, it } from 'vitest';
import { startSignalingCluster, type SignalingCluster, type SignalingNode } from '../src/testing/index.js';
import { TestSocket, until, type Frame } from './helpers/ws-client.js';

const RESUME_GRACE_MS = 1000;
/** `--redis-heartbeat-ttl`: a node silent this long is dead (its reaper period is a third of it). */
const HEARTBEAT_TTL_MS = 3000;
/**
 * How long a member of a dead node may stay in its room: the bound the README documents,
 * heartbeat TTL + reaper period + resume grace, plus one reaper round and the event-loop delays of
 * a loaded run (2 s).
 */
const DEAD_NODE_BOUND_MS = HEARTBEAT_TTL_MS + HEARTBEAT_TTL_MS / 3 + RESUME_GRACE_MS + 2000;

let cluster: SignalingCluster | undefined;
const sockets: TestSocket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate();
  await cluster?.close();
  cluster = undefined;
});

async function startCluster(resumeGraceMs = RESUME_GRACE_MS): Promise<SignalingCluster> {
  cluster = await startSignalingCluster({ nodes: 3, args: ['--resume-grace', String(resumeGraceMs), '--redis-heartbeat-ttl', String(HEARTBEAT_TTL_MS)] });
  return cluster;
}

async function joined(node: SignalingNode, room: string, name: string, extra: Record<string, unknown> = {}): Promise<{ socket: TestSocket; welcome: Frame; id: string }> {
  const result = await TestSocket.joined(node.url, room, name, extra);
  sockets.push(result.socket);
  return result;
}

const signals = (socket: TestSocket): Frame[] => socket.all.filter((frame) => frame.type === 'signal');

describe('a cluster losing a node or its Redis (real redis-server, real processes)', () => {
  it('kill -9: a member resumes on another node with its id and gets the signals sent meanwhile, in order', { timeout: 30_000 }, async () => {
    const [n0, n1, n2] = (await startCluster(10_000)).nodes as [SignalingNode, SignalingNode, SignalingNode];
    const alice = await joined(n0, 'failover', 'alice');
    const bob = await joined(n1, 'failover', 'bob');
    await alice.socket.next('peer-joined', 5000);

    await n0.kill();
    await alice.socket.closed;
    for (let n = 1; n <= 20; n += 1) bob.socket.signal(alice.id, { n });
    const back = await joined(n2, 'failover', 'alice', { resume: alice.welcome['resume'] });
    expect(back.id).toBe(alice.id);
    expect(back.welcome['peers']).toEqual([{ id: bob.id, name: 'bob' }]);
    await until(() => signals(back.socket).length >= 20, 'the 20 held signals', 10_000);
    expect(signals(back.socket)).toEqual(Array.from({ length: 20 }, (_, index) => ({ type: 'signal', from: bob.id, data: { n: index + 1 } })));
    // Both ways work from the new node.
    back.socket.signal(bob.id, { after: 'resume' });
    expect(await bob.socket.next('signal', 5000)).toEqual({ type: 'signal', from: alice.id, data: { after: 'resume' } });
    // Bob was told nothing: no peer-left, no undeliverable.
    expect(bob.socket.all.filter((frame) => frame.type === 'peer-left' || frame.type === 'error')).toEqual([]);
  });

  it(`a node that never comes back: its members leave their rooms within the bound, signals to them are answered undeliverable`, { timeout: 40_000 }, async () => {
    const [n0, , n2] = (await startCluster()).nodes as [SignalingNode, SignalingNode, SignalingNode];
    const alice = await joined(n0, 'dead-node', 'alice');
    const carol = await joined(n2, 'dead-node', 'carol');
    await alice.socket.next('peer-joined', 5000);

    await n2.kill();
    await carol.socket.closed;
    alice.socket.signal(carol.id, { to: 'carol, gone' });
    expect(await alice.socket.next('peer-left', DEAD_NODE_BOUND_MS)).toEqual({ type: 'peer-left', id: carol.id });
    expect(await alice.socket.next('error', 5000)).toMatchObject({ code: 'undeliverable', to: carol.id });
    // And she is gone for the whole cluster: a newcomer on a live node does not see her.
    const dave = await joined(n0, 'dead-node', 'dave');
    expect(dave.welcome['peers']).toEqual([{ id: alice.id, name: 'alice' }]);
  });

  it('Redis restarted: /readyz 503 then 200 within 5 s of its return, /healthz 200 throughout, the room works again', { timeout: 40_000 }, async () => {
    const { nodes, redis } = await startCluster(10_000);
    const [n0, n1, n2] = nodes as [SignalingNode, SignalingNode, SignalingNode];
    const alice = await joined(n0, 'redis-restart', 'alice');
    const bob = await joined(n1, 'redis-restart', 'bob');
    await alice.socket.next('peer-joined', 5000);

    await redis.kill();
    await Promise.all(nodes.map((node) => node.waitForStatus('/readyz', 503, 10_000)));
    for (const node of nodes) expect(await node.status('/healthz')).toBe(200);
    // Sent while Redis is gone: delivered after it returns, or answered undeliverable; not lost.
    alice.socket.signal(bob.id, { during: 'outage' });

    await redis.start();
    await Promise.all(nodes.map((node) => node.waitForStatus('/readyz', 200, 5000)));
    for (const node of nodes) expect(await node.status('/healthz')).toBe(200);
    const outcome = await Promise.race([
      bob.socket.waitFor((frame) => frame.type === 'signal' && (frame['data'] as Record<string, unknown>)['during'] === 'outage', 10_000, 'the outage signal').then(() => 'delivered'),
      alice.socket.waitFor((frame) => frame.type === 'error' && frame['code'] === 'undeliverable' && frame['to'] === bob.id, 10_000, 'undeliverable').then(() => 'undeliverable'),
    ]);
    expect(['delivered', 'undeliverable']).toContain(outcome);

    // The members were registered again (Redis came back empty): a newcomer sees both, both see it.
    const carol = await joined(n2, 'redis-restart', 'carol');
    expect(carol.welcome['peers']).toEqual(expect.arrayContaining([{ id: alice.id, name: 'alice' }, { id: bob.id, name: 'bob' }]));
    expect(carol.welcome['peers']).toHaveLength(2);
    for (const member of [alice, bob]) {
      expect(await member.socket.waitFor((frame) => frame.type === 'peer-joined', 5000, 'carol joining')).toEqual({ type: 'peer-joined', peer: { id: carol.id, name: 'carol' } });
    }
    bob.socket.signal(alice.id, { after: 'restart' });
    expect(await alice.socket.waitFor((frame) => frame.type === 'signal' && frame['from'] === bob.id && (frame['data'] as Record<string, unknown>)['after'] === 'restart', 5000, 'the signal after the restart')).toBeDefined();
    // Nobody left meanwhile.
    for (const member of [alice, bob]) expect(member.socket.all.filter((frame) => frame.type === 'peer-left')).toEqual([]);
  });
});
