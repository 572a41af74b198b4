// Issue 13: one room across `parley-signaling` processes sharing a real `redis-server`
// (`--redis`). Raw protocol sockets on different nodes: presence (`welcome` peers in join order,
// `peer-joined`, `peer-left`), relay both ways with the server-stamped `from`, the room-size cap
// and name uniqueness checked atomically across nodes (two joins racing on two nodes: exactly one
// wins), and 10,000 frames between pairs whose ends are on different nodes, in order, none lost.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSignalingCluster, type SignalingCluster, type SignalingNode } from '../src/testing/index.js';
import { TestSocket, until, type Frame } from './helpers/ws-client.js';

const sockets: TestSocket[] = [];

afterEach(() => {
  for (const socket of sockets.splice(0)) socket.terminate();
});

async function joined(node: SignalingNode, room: string, name: string): Promise<{ socket: TestSocket; welcome: Frame; id: string }> {
  const result = await TestSocket.joined(node.url, room, name);
  sockets.push(result.socket);
  return result;
}

async function opened(node: SignalingNode): Promise<TestSocket> {
  const socket = await TestSocket.open(node.url);
  sockets.push(socket);
  return socket;
}

/** Waits for the answer to a join sent on `socket`: the welcome or the error frame. */
const joinAnswer = (socket: TestSocket): Promise<Frame> =>
  socket.waitFor((frame) => frame.type === 'welcome' || frame.type === 'error', 5000, 'the answer to a join');

describe('one room across three nodes (real redis-server, real processes)', () => {
  let cluster: SignalingCluster;
  beforeAll(async () => {
    // A high rate limit: the 10,000 frames go as fast as the nodes take them.
    cluster = await startSignalingCluster({ nodes: 3, args: ['--rate', '100000'] });
  });
  afterAll(() => cluster?.close());

  it('shows presence across nodes and relays signals both ways with the server-stamped from', async () => {
    const [n0, n1, n2] = cluster.nodes as [SignalingNode, SignalingNode, SignalingNode];
    const alice = await joined(n0, 'presence', 'alice');
    expect(alice.welcome['peers']).toEqual([]);
    const bob = await joined(n1, 'presence', 'bob');
    expect(bob.welcome['peers']).toEqual([{ id: alice.id, name: 'alice' }]);
    expect(await alice.socket.next('peer-joined', 5000)).toEqual({ type: 'peer-joined', peer: { id: bob.id, name: 'bob' } });
    const carol = await joined(n2, 'presence', 'carol');
    expect(carol.welcome['peers']).toEqual([
      { id: alice.id, name: 'alice' },
      { id: bob.id, name: 'bob' },
    ]);
    for (const member of [alice, bob]) {
      expect(await member.socket.next('peer-joined', 5000)).toEqual({ type: 'peer-joined', peer: { id: carol.id, name: 'carol' } });
    }

    alice.socket.signal(bob.id, { hello: 'bob' });
    expect(await bob.socket.next('signal', 5000)).toEqual({ type: 'signal', from: alice.id, data: { hello: 'bob' } });
    bob.socket.signal(alice.id, { hello: 'alice' });
    expect(await alice.socket.next('signal', 5000)).toEqual({ type: 'signal', from: bob.id, data: { hello: 'alice' } });
    carol.socket.signal(alice.id, { from: 'carol, says carol' });
    expect(await alice.socket.next('signal', 5000)).toEqual({ type: 'signal', from: carol.id, data: { from: 'carol, says carol' } });
    // A target that is in no room of the cluster: refused, naming it, nothing relayed.
    alice.socket.signal('no-such-peer', { lost: true });
    expect(await alice.socket.next('error', 5000)).toMatchObject({ type: 'error', code: 'unknown-peer', to: 'no-such-peer' });

    // `leave` on one node, a clean close on another: both leave the whole room at once.
    carol.socket.send({ type: 'leave' });
    for (const member of [alice, bob]) expect(await member.socket.next('peer-left', 5000)).toEqual({ type: 'peer-left', id: carol.id });
    await bob.socket.close(1000);
    expect(await alice.socket.next('peer-left', 5000)).toEqual({ type: 'peer-left', id: bob.id });
    // Nothing else reached alice: no duplicate presence frame from another node.
    expect(alice.socket.drain()).toEqual([]);
    expect(alice.socket.all.filter((frame) => frame.type === 'peer-joined')).toHaveLength(2);
  });

  it(`never tells a member joining on one node of a departure it never saw, as another leaves on the other (25 rounds)`, { timeout: 60_000 }, async () => {
    const [n0, n1] = cluster.nodes as [SignalingNode, SignalingNode];
    for (let round = 0; round < 25; round += 1) {
      const room = `leave-join-${round}`;
      const stayer = await joined(n1, room, 'stayer');
      const leaver = await joined(n0, room, 'leaver');
      await stayer.socket.next('peer-joined', 5000);
      const newcomer = await opened(n1);
      leaver.socket.send({ type: 'leave' });
      newcomer.send({ type: 'join', room, name: 'newcomer' });
      const welcome = await newcomer.next('welcome', 5000);
      await stayer.socket.next('peer-left', 5000);
      newcomer.send({ type: 'ping' });
      await newcomer.next('pong', 5000);
      const listed = (welcome['peers'] as { id: string }[]).map((peer) => peer.id);
      // A departure it hears of is of a member its welcome listed: the view stays consistent.
      for (const frame of newcomer.all.filter((f) => f.type === 'peer-left')) expect(listed, `round ${round}`).toContain(frame['id']);
      await Promise.all([stayer.socket, leaver.socket, newcomer].map((socket) => socket.close(1000)));
    }
  });

  it('carries 10,000 frames between pairs on different nodes, in order per sender, none lost', { timeout: 120_000 }, async () => {
    const PAIRS = 4;
    const PER_DIRECTION = 1250; // 4 pairs x 2 directions x 1,250 = 10,000 frames
    /** Frames a sender may have sent and its receiver not yet received (a sliding window). */
    const WINDOW = 250;
    const nodes = cluster.nodes;
    const pairs = await Promise.all(
      Array.from({ length: PAIRS }, async (_, index) => {
        const room = `ordering-${index}`;
        const a = await joined(nodes[index % nodes.length]!, room, 'a');
        const b = await joined(nodes[(index + 1) % nodes.length]!, room, 'b');
        await a.socket.next('peer-joined', 5000);
        return { a, b };
      }),
    );
    const received = (socket: TestSocket): Frame[] => socket.all.filter((frame) => frame.type === 'signal');
    const stream = async (from: { socket: TestSocket; id: string }, to: { socket: TestSocket; id: string }): Promise<void> => {
      for (let n = 1; n <= PER_DIRECTION; n += 1) {
        if (n - received(to.socket).length > WINDOW) {
          await until(() => n - received(to.socket).length <= WINDOW / 2, `the receiver of ${from.id} catching up at ${n}`, 20_000);
        }
        from.socket.signal(to.id, { n });
      }
    };
    await Promise.all(pairs.flatMap(({ a, b }) => [stream(a, b), stream(b, a)]));
    for (const { a, b } of pairs) {
      await until(() => received(a.socket).length >= PER_DIRECTION && received(b.socket).length >= PER_DIRECTION, 'every frame to arrive', 30_000);
    }
    const expected = Array.from({ length: PER_DIRECTION }, (_, index) => index + 1);
    let total = 0;
    for (const { a, b } of pairs) {
      for (const [receiver, sender] of [
        [a, b],
        [b, a],
      ] as const) {
        const frames = received(receiver.socket);
        expect(frames.every((frame) => frame['from'] === sender.id)).toBe(true);
        expect(frames.map((frame) => (frame['data'] as { n: number }).n)).toEqual(expected);
        total += frames.length;
        expect(receiver.socket.all.filter((frame) => frame.type === 'error')).toEqual([]);
      }
    }
    expect(total).toBe(10_000);
  });
});

describe('cluster-wide join checks, raced on two nodes (real redis-server, real processes)', () => {
  let cluster: SignalingCluster;
  beforeAll(async () => {
    cluster = await startSignalingCluster({ nodes: 2, args: ['--max-peers', '2', '--rate', '100000'] });
  });
  afterAll(() => cluster?.close());

  const ROUNDS = 25;

  it(`gives the last seat of a room to exactly one of two joins racing on two nodes (${ROUNDS} rounds)`, { timeout: 60_000 }, async () => {
    const [n0, n1] = cluster.nodes as [SignalingNode, SignalingNode];
    for (let round = 0; round < ROUNDS; round += 1) {
      const room = `last-seat-${round}`;
      const first = await joined(round % 2 === 0 ? n0 : n1, room, 'first');
      const [left, right] = await Promise.all([opened(n0), opened(n1)]);
      left.send({ type: 'join', room, name: 'left' });
      right.send({ type: 'join', room, name: 'right' });
      const answers = await Promise.all([joinAnswer(left), joinAnswer(right)]);
      const welcomes = answers.filter((frame) => frame.type === 'welcome');
      expect(welcomes, `round ${round}: ${JSON.stringify(answers)}`).toHaveLength(1);
      expect(answers.find((frame) => frame.type === 'error')).toMatchObject({ code: 'room-full' });
      // The first member hears of the winner only.
      const joinedPeer = await first.socket.next('peer-joined', 5000);
      expect(joinedPeer['peer']).toEqual({ id: welcomes[0]!['id'], name: answers[0].type === 'welcome' ? 'left' : 'right' });
      await Promise.all([first.socket, left, right].map((socket) => socket.close(1000)));
    }
  });

  it(`tells each of two members joining at once on two nodes of the other exactly once (${ROUNDS} rounds)`, { timeout: 60_000 }, async () => {
    const [n0, n1] = cluster.nodes as [SignalingNode, SignalingNode];
    for (let round = 0; round < ROUNDS; round += 1) {
      const room = `simultaneous-${round}`;
      const [left, right] = await Promise.all([opened(n0), opened(n1)]);
      left.send({ type: 'join', room, name: 'left' });
      right.send({ type: 'join', room, name: 'right' });
      const [leftWelcome, rightWelcome] = await Promise.all([left.next('welcome', 5000), right.next('welcome', 5000)]);
      // Whoever joined second lists the first in its welcome; the first hears of the second by
      // peer-joined. Wait for that one, then for anything else to come (a ping's pong: every
      // earlier frame to this socket is out by then) and count.
      const [first, second] = (leftWelcome['peers'] as unknown[]).length === 0 ? [left, right] : [right, left];
      await first.next('peer-joined', 5000);
      for (const socket of [left, right]) {
        socket.send({ type: 'ping' });
        await socket.next('pong', 5000);
      }
      const heard = (socket: TestSocket, welcome: Frame): string[] => [
        ...(welcome['peers'] as { id: string }[]).map((peer) => peer.id),
        ...socket.all.filter((frame) => frame.type === 'peer-joined').map((frame) => (frame['peer'] as { id: string }).id),
      ];
      expect(heard(left, leftWelcome), `round ${round}`).toEqual([rightWelcome['id']]);
      expect(heard(right, rightWelcome), `round ${round}`).toEqual([leftWelcome['id']]);
      expect(second.all.filter((frame) => frame.type === 'peer-joined')).toEqual([]);
      await Promise.all([left, right].map((socket) => socket.close(1000)));
    }
  });

  it(`gives a name to exactly one of two joins racing for it on two nodes (${ROUNDS} rounds)`, { timeout: 60_000 }, async () => {
    const [n0, n1] = cluster.nodes as [SignalingNode, SignalingNode];
    for (let round = 0; round < ROUNDS; round += 1) {
      const room = `same-name-${round}`;
      const [left, right] = await Promise.all([opened(n0), opened(n1)]);
      left.send({ type: 'join', room, name: 'twin' });
      right.send({ type: 'join', room, name: 'twin' });
      const answers = await Promise.all([joinAnswer(left), joinAnswer(right)]);
      expect(answers.filter((frame) => frame.type === 'welcome'), `round ${round}: ${JSON.stringify(answers)}`).toHaveLength(1);
      expect(answers.find((frame) => frame.type === 'error')).toMatchObject({ code: 'name-taken' });
      await Promise.all([left, right].map((socket) => socket.close(1000)));
    }
  });
});
