// The client against the real server (test/helpers/server.ts: 127.0.0.1, random port) over real
// `ws` sockets: peers exchange messages through portFor; the server restarts mid-session; a
// connection drops while the server stays up.

import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { filter, firstValueFrom, timeout } from 'rxjs';
import type { Observable } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { PeerMessage } from '@parley/core';
import { createSignalingClient } from '../src/client/index.js';
import type { PeerInfo, SignalingClient, SignalingClientOptions, SignalingClientStatus, SignalingError } from '../src/client/index.js';
import { startServer } from './helpers/server.js';
import type { StartedServer } from './helpers/server.js';

const clients: SignalingClient[] = [];
const servers: StartedServer[] = [];
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const server of servers.splice(0)) await server.close();
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function server(options: Parameters<typeof startServer>[0] = {}): Promise<StartedServer> {
  const started = await startServer(options);
  servers.push(started);
  return started;
}

interface Joined {
  readonly client: SignalingClient;
  readonly errors: SignalingError[];
  readonly states: SignalingClientStatus[];
  /** Status at this moment. */
  readonly status: () => SignalingClientStatus;
}

function connect(url: string, name: string, options: Partial<SignalingClientOptions> = {}): Joined {
  const client = createSignalingClient({
    url,
    room: 'it-room',
    name,
    webSocket: WebSocket,
    backoff: { baseMs: 40, capMs: 200 },
    ...options,
  });
  clients.push(client);
  const errors: SignalingError[] = [];
  const states: SignalingClientStatus[] = [];
  client.errors$.subscribe((error) => errors.push(error));
  client.state$.subscribe((state) => states.push(state));
  return { client, errors, states, status: () => states.at(-1) ?? 'closed' };
}

function waitFor<T>(source: Observable<T>, predicate: (value: T) => boolean, ms = 5000): Promise<T> {
  return firstValueFrom(source.pipe(filter(predicate), timeout(ms)));
}

const joinedAs = (peer: Joined): Promise<unknown> => waitFor(peer.client.state$, (state) => state === 'joined');
const idOf = async (peer: Joined): Promise<string> => (await waitFor(peer.client.self$, (self) => self !== null))!.id;
const peerNamed = (peer: Joined, name: string): Promise<PeerInfo> =>
  waitFor(peer.client.peers$, (peers) => peers.some((p) => p.name === name)).then((peers) => peers.find((p) => p.name === name)!);

const invite = (session: string): PeerMessage => ({ kind: 'invite', session });
const sessions = (messages: readonly PeerMessage[]): string[] => messages.map((message) => message.session);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A TCP forwarder whose connections can be cut, to drop a connection while the server stays up. */
async function tcpProxy(targetPort: number): Promise<{ readonly url: string; cut(): void }> {
  const open = new Set<Socket>();
  const proxy = createTcpServer((downstream) => {
    const upstream = new (downstream.constructor as typeof Socket)();
    upstream.connect(targetPort, '127.0.0.1');
    const end = (): void => {
      downstream.destroy();
      upstream.destroy();
      open.delete(downstream);
      open.delete(upstream);
    };
    for (const socket of [downstream, upstream]) {
      open.add(socket);
      socket.on('error', end);
      socket.on('close', end);
    }
    downstream.pipe(upstream);
    upstream.pipe(downstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const socket of open) socket.destroy();
    await new Promise<void>((resolve) => proxy.close(() => resolve()));
  });
  return {
    url: `ws://127.0.0.1:${(proxy.address() as AddressInfo).port}/`,
    cut: () => {
      for (const socket of open) socket.destroy();
    },
  };
}

describe('signaling client with the real server', () => {
  it('two clients in a room exchange peer messages through portFor, with server-stamped senders', async () => {
    const srv = await server();
    const alice = connect(srv.url, 'alice');
    const bob = connect(srv.url, 'bob');
    const [aliceId, bobId] = await Promise.all([idOf(alice), idOf(bob)]);
    expect((await peerNamed(alice, 'bob')).id).toBe(bobId);
    expect((await peerNamed(bob, 'alice')).id).toBe(aliceId);

    const atBob: PeerMessage[] = [];
    const atAlice: PeerMessage[] = [];
    bob.client.portFor(aliceId).messages$.subscribe((message) => atBob.push(message));
    alice.client.portFor(bobId).messages$.subscribe((message) => atAlice.push(message));
    const offer: PeerMessage = { kind: 'description', session: 'call-1', description: { type: 'offer', sdp: 'v=0\r\n' } };
    alice.client.portFor(bobId).send(invite('call-1'));
    alice.client.portFor(bobId).send(offer);
    bob.client.portFor(aliceId).send({ kind: 'accept', session: 'call-1' });
    bob.client.portFor(aliceId).send({ kind: 'candidate', session: 'call-1', candidate: null });
    await until(() => atBob.length === 2 && atAlice.length === 1 + 1, 5000, 'messages');
    expect(atBob).toEqual([invite('call-1'), offer]);
    expect(atAlice).toEqual([
      { kind: 'accept', session: 'call-1' },
      { kind: 'candidate', session: 'call-1', candidate: null },
    ]);

    // A message to an id that is not in the room comes back as a typed server error.
    alice.client.portFor('nobody-here').send(invite('x'));
    await until(() => alice.errors.some((error) => error.code === 'unknown-peer'), 5000, 'unknown-peer');

    // Presence: close() sends leave, so the other side is told at once.
    bob.client.close();
    expect(await bob.client.closed).toBeNull();
    await waitFor(alice.client.peers$, (peers) => peers.length === 0);
    expect(alice.errors.map((error) => error.code)).toEqual(['unknown-peer']);
  });

  it('a second client with a taken name ends closed with name-taken', async () => {
    const srv = await server();
    const first = connect(srv.url, 'dup');
    await joinedAs(first);
    const second = connect(srv.url, 'dup');
    const reason = await second.client.closed;
    expect(reason).toMatchObject({ code: 'name-taken', fatal: true, source: 'server' });
    expect(second.states).toEqual(['connecting', 'closed']);
  });

  it('a refused join token ends closed with unauthorized', async () => {
    const srv = await server({ authSecret: 'test-secret' });
    const client = connect(srv.url, 'mallory', { token: 'forged' });
    expect(await client.client.closed).toMatchObject({ code: 'unauthorized', fatal: true });
  });

  /**
   * alice and bob in a room; alice sends to bob every 10 ms throughout. The server stops; the
   * moment each client notices, it sends a burst (queued, not lost); a while later a server starts
   * again on the same port with `restartOptions`. Resolves once alice's last message reached bob.
   */
  async function restartMidSession(options: Parameters<typeof startServer>[0], restartOptions: Parameters<typeof startServer>[0]) {
    let srv = await server(options);
    const port = srv.port;
    const alice = connect(srv.url, 'alice');
    const bob = connect(srv.url, 'bob');
    const [aliceId, bobId] = await Promise.all([idOf(alice), idOf(bob)]);
    await peerNamed(alice, 'bob');
    await peerNamed(bob, 'alice');

    // bob listens through the port for alice's first id (and, below, the one for a new id).
    const atBobOldPort: PeerMessage[] = [];
    bob.client.portFor(aliceId).messages$.subscribe((message) => atBobOldPort.push(message));
    const atAlice: PeerMessage[] = [];
    alice.client.portFor(bobId).messages$.subscribe((message) => atAlice.push(message));

    // alice keeps sending every 10 ms, noting whether she believed she was joined at the time.
    const sentWhile = new Map<string, SignalingClientStatus>();
    let n = 0;
    const send = (): void => {
      const session = `m${++n}`;
      sentWhile.set(session, alice.status());
      alice.client.portFor(bobId).send(invite(session));
    };
    const sender = setInterval(send, 10);
    cleanups.push(() => {
      clearInterval(sender);
      return Promise.resolve();
    });
    await until(() => atBobOldPort.length >= 10, 5000, 'traffic before the restart');

    // Stop the server. The moment each client notices, it sends a burst (queued, not lost).
    const bobBurst = ['n1', 'n2', 'n3', 'n4', 'n5'];
    const aliceDown = waitFor(alice.client.state$, (state) => state === 'reconnecting').then(() => {
      for (let i = 0; i < 5; i++) send();
    });
    const bobDown = waitFor(bob.client.state$, (state) => state === 'reconnecting').then(() => {
      for (const session of bobBurst) bob.client.portFor(aliceId).send(invite(session));
    });
    servers.splice(servers.indexOf(srv), 1);
    await srv.close();
    await Promise.all([aliceDown, bobDown]);
    await sleep(300); // down for a while: the sender keeps queueing, the clients keep retrying
    const queuedWhileDown = [...sentWhile.values()].filter((state) => state !== 'joined').length;
    expect(queuedWhileDown).toBeGreaterThanOrEqual(10);

    srv = await server({ ...restartOptions, port });
    expect(srv.port).toBe(port);
    await Promise.all([
      waitFor(alice.client.state$, (state) => state === 'joined'),
      waitFor(bob.client.state$, (state) => state === 'joined'),
    ]);
    const newAliceId = await idOf(alice);
    const newBobId = await idOf(bob);
    // Each sees the other under the id it has now (once the other has rejoined).
    expect((await peerNamed(bob, 'alice')).id).toBe(newAliceId);
    expect((await peerNamed(alice, 'bob')).id).toBe(newBobId);
    const atBobNewPort: PeerMessage[] = [];
    if (newAliceId !== aliceId) bob.client.portFor(newAliceId).messages$.subscribe((message) => atBobNewPort.push(message));

    await sleep(100); // some traffic after the restart, then stop and wait for the last one
    clearInterval(sender);
    const last = `m${n}`;
    await until(() => atBobOldPort.at(-1)?.session === last, 5000, 'the last message');
    await until(() => atAlice.length === bobBurst.length, 5000, "bob's burst");

    const received = sessions(atBobOldPort).map((session) => Number(session.slice(1)));
    // In order, no duplicates.
    expect(received).toEqual([...received].sort((a, b) => a - b));
    expect(new Set(received).size).toBe(received.length);
    // Every message sent while alice knew she was not joined was queued and delivered.
    const receivedSet = new Set(received);
    const mustArrive = [...sentWhile].filter(([, state]) => state !== 'joined').map(([session]) => Number(session.slice(1)));
    expect(mustArrive.filter((i) => !receivedSet.has(i))).toEqual([]);
    // Only a send racing the server's close frame can be lost (protocol v1 has no acks).
    const lost = [...sentWhile.keys()].map((session) => Number(session.slice(1))).filter((i) => !receivedSet.has(i));
    expect(lost.length).toBeLessThanOrEqual(2);
    // bob's messages, queued while the server was down, reached alice in order.
    expect(sessions(atAlice)).toEqual(bobBurst);
    expect(alice.errors.filter((error) => error.code !== 'bad-server-frame')).toEqual([]);
    expect(bob.errors.filter((error) => error.code !== 'bad-server-frame')).toEqual([]);
    return { srv, alice, bob, aliceId, bobId, newAliceId, newBobId, atBobOldPort, atBobNewPort };
  }

  it('survives a server restart with the same resumeSecret: the SAME ids, and everything queued meanwhile arrives, in order', async () => {
    const options = { resumeGraceMs: 2000, resumeSecret: 'integration-resume-secret' };
    const { srv, alice, bob, aliceId, bobId, newAliceId, newBobId } = await restartMidSession(options, options);
    // The restarted server verified the resume tokens: both clients got their ids back.
    expect(newAliceId).toBe(aliceId);
    expect(newBobId).toBe(bobId);
    const joins = srv.logs.filter((event) => event.event === 'join');
    expect(joins.map((event) => [event['peer'], event['restored']]).sort()).toEqual([[aliceId, true], [bobId, true]].sort());
    expect(alice.client.actor.getSnapshot().context.formerPeers.every((peer) => peer.id === bobId)).toBe(true);
    expect(bob.states.filter((state) => state === 'joined')).toHaveLength(2);
  });

  it('survives a server restart without a shared resume secret: new ids, queued messages re-addressed by name, in order', async () => {
    const { aliceId, bobId, newAliceId, newBobId, atBobOldPort, atBobNewPort } = await restartMidSession(
      { resumeGraceMs: 2000 },
      { resumeGraceMs: 2000 },
    );
    // A server with another (random) secret cannot verify the tokens: the ids are new.
    expect(newAliceId).not.toBe(aliceId);
    expect(newBobId).not.toBe(bobId);
    // The port for her new id carries the same messages from the restart on.
    expect(atBobNewPort.length).toBeGreaterThan(0);
    expect(sessions(atBobNewPort)).toEqual(sessions(atBobOldPort).slice(-atBobNewPort.length));
  });

  it('when only the connection drops, the client resumes the SAME id and the room sees no peer-left', async () => {
    const srv = await server({ resumeGraceMs: 3000 });
    const proxy = await tcpProxy(srv.port);
    const alice = connect(proxy.url, 'alice');
    const bob = connect(srv.url, 'bob');
    const [aliceId, bobId] = await Promise.all([idOf(alice), idOf(bob)]);
    await peerNamed(bob, 'alice');
    const bobsView: string[][] = [];
    bob.client.peers$.subscribe((peers) => bobsView.push(peers.map((peer) => peer.id)));
    const departures: string[] = [];
    bob.client.peerLeft$.subscribe((peer) => departures.push(peer.id));
    const atBob: PeerMessage[] = [];
    bob.client.portFor(aliceId).messages$.subscribe((message) => atBob.push(message));
    const atAlice: PeerMessage[] = [];
    alice.client.portFor(bobId).messages$.subscribe((message) => atAlice.push(message));
    alice.client.portFor(bobId).send(invite('before'));
    await until(() => atBob.length === 1, 5000, 'first message');

    const queued = waitFor(alice.client.state$, (state) => state === 'reconnecting').then(() => {
      for (const session of ['q1', 'q2', 'q3']) alice.client.portFor(bobId).send(invite(session));
    });
    proxy.cut();
    await queued;
    // While alice is away the server holds what bob sends her.
    await sleep(50);
    bob.client.portFor(aliceId).send(invite('held-1'));
    bob.client.portFor(aliceId).send(invite('held-2'));
    await waitFor(alice.client.state$, (state) => state === 'joined');

    expect(await idOf(alice)).toBe(aliceId);
    await until(() => atBob.length === 4 && atAlice.length === 2, 5000, 'messages after the resume');
    expect(sessions(atBob)).toEqual(['before', 'q1', 'q2', 'q3']);
    expect(sessions(atAlice)).toEqual(['held-1', 'held-2']);
    expect(alice.states).toEqual(['connecting', 'joined', 'reconnecting', 'connecting', 'joined']);
    // bob never saw alice leave (no peer-left), nor a second alice (no peer-joined).
    expect(bobsView.every((ids) => ids.length === 1 && ids[0] === aliceId)).toBe(true);
    expect(departures).toEqual([]);
    expect(bob.errors).toEqual([]);
    expect(alice.errors).toEqual([]);
  });

  describe('pacing against the server rate limit', () => {
    // The server's limits scaled up 3x from the defaults in rate (burst as by default), and the
    // client's in the same proportion (80 % of the rate, 75 % of the burst), so that 600 queued
    // messages take about 4 s instead of 11 s; a 600-message flush is still 3x the server's burst.
    const serverLimits = { messagesPerSecond: 150, burst: 200, rateLimitCloseAfter: 50, resumeGraceMs: 10_000 };
    const clientPace = { sendRate: 120, sendBurst: 150 };

    /** alice (behind a cuttable proxy) queues `count` messages to bob while her connection is down. */
    async function outage(count: number, aliceOptions: Partial<SignalingClientOptions>) {
      const srv = await server(serverLimits);
      const proxy = await tcpProxy(srv.port);
      const alice = connect(proxy.url, 'alice', { keepalive: false, ...aliceOptions });
      const bob = connect(srv.url, 'bob', { keepalive: false });
      const [aliceId, bobId] = await Promise.all([idOf(alice), idOf(bob)]);
      await peerNamed(alice, 'bob');
      const atBob: PeerMessage[] = [];
      bob.client.portFor(aliceId).messages$.subscribe((message) => atBob.push(message));
      const queued = waitFor(alice.client.state$, (state) => state === 'reconnecting').then(() => {
        for (let i = 1; i <= count; i++) alice.client.portFor(bobId).send(invite(`q${i}`));
        expect(alice.client.actor.getSnapshot().context.queue).toHaveLength(count);
      });
      proxy.cut();
      await queued;
      await waitFor(alice.client.state$, (state) => state === 'joined');
      expect(await idOf(alice)).toBe(aliceId); // resumed
      return { srv, alice, bob, atBob };
    }

    const closedWith = (srv: StartedServer, code: number) => srv.logs.filter((event) => event.event === 'closing' && event['code'] === code);

    it('600 messages queued during an outage all reach the other peer in order: no rate-limited, no 4029', async () => {
      const started = Date.now();
      const { srv, alice, bob, atBob } = await outage(600, clientPace);
      await until(() => atBob.length >= 600, 15_000, 'all 600 messages');
      const elapsed = Date.now() - started;
      expect(sessions(atBob)).toEqual(Array.from({ length: 600 }, (_, i) => `q${i + 1}`));
      expect(alice.errors).toEqual([]);
      expect(bob.errors).toEqual([]);
      expect(closedWith(srv, 4029)).toEqual([]);
      expect(srv.logs.filter((event) => event['code'] === 'rate-limited')).toEqual([]);
      expect(alice.states).toEqual(['connecting', 'joined', 'reconnecting', 'connecting', 'joined']);
      // Paced, not instant: (600 - 150) / 120 per second is 3.75 s at least.
      expect(elapsed).toBeGreaterThanOrEqual(3500);
      await sleep(100);
      expect(atBob).toHaveLength(600);
    }, 20_000);

    it('(control) the same outage without pacing gets messages dropped by the server', async () => {
      const { srv, alice, atBob } = await outage(600, { sendBurst: Infinity });
      await until(() => alice.errors.some((error) => error.code === 'rate-limited'), 5000, 'rate-limited');
      await sleep(300);
      expect(atBob.length).toBeLessThan(600);
      // 400 over the burst at once: more than 50 dropped within a second closes the socket.
      await until(() => closedWith(srv, 4029).length > 0, 5000, 'the 4029 close');
    });
  });
});

