// Resume tokens and heartbeat: a reconnect within the grace period keeps the id and the room is
// not told; after it, the room is told `peer-left`; a silent socket is terminated.

import { afterEach, describe, expect, it } from 'vitest';
import { createJoinToken, InMemoryBroker } from '../src/server/index.js';
import type { Broker, BrokerJoinResult, Deliver, JoinOptions, MaybePromise } from '../src/server/index.js';
import type { PeerInfo } from '../src/protocol.js';
import { startServer, type StartedServer } from './helpers/server.js';
import { sleep, TestSocket, type Frame } from './helpers/ws-client.js';

interface Joined {
  readonly socket: TestSocket;
  readonly welcome: Frame;
  readonly id: string;
}

async function until(condition: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(2);
  }
}

let srv: StartedServer | undefined;
const sockets: TestSocket[] = [];

async function joined(room: string, name: string, extra: Record<string, unknown> = {}): Promise<Joined> {
  const result = await TestSocket.joined(srv!.url, room, name, extra);
  sockets.push(result.socket);
  return result;
}

afterEach(async () => {
  for (const s of sockets.splice(0)) s.terminate();
  await srv?.close();
  srv = undefined;
});

describe('resume', () => {
  it('gives the same id back, holds signals meanwhile, and the room sees no peer-left/peer-joined', async () => {
    srv = await startServer({ resumeGraceMs: 600 });
    const a = await joined('r', 'a');
    const b = await joined('r', 'b');
    await a.socket.next('peer-joined');
    const mark = a.socket.all.length;
    b.socket.terminate();
    await b.socket.closed;
    await sleep(50);
    // signals sent to b while it is away are held, in order, not refused
    a.socket.signal(b.id, { n: 1 });
    a.socket.signal(b.id, { n: 2 });
    await sleep(50);
    const b2 = await joined('r', 'b', { resume: b.welcome['resume'] });
    expect(b2.id).toBe(b.id);
    expect(b2.welcome['resume']).not.toBe(b.welcome['resume']);
    expect(b2.welcome['peers']).toEqual([{ id: a.id, name: 'a' }]);
    expect(await b2.socket.next('signal')).toEqual({ type: 'signal', from: a.id, data: { n: 1 } });
    expect(await b2.socket.next('signal')).toEqual({ type: 'signal', from: a.id, data: { n: 2 } });
    // the resumed peer is fully live: both directions work
    b2.socket.signal(a.id, { hello: true });
    expect(await a.socket.next('signal')).toMatchObject({ from: b.id, data: { hello: true } });
    a.socket.signal(b.id, { n: 3 });
    expect(await b2.socket.next('signal')).toMatchObject({ data: { n: 3 } });
    // past the old grace deadline, the room still has heard nothing about b
    await sleep(800);
    const since = a.socket.all.slice(mark);
    expect(since.filter((f) => f.type === 'peer-left' || f.type === 'peer-joined' || f.type === 'error')).toEqual([]);
    expect(since).toHaveLength(1); // the signal from b
  });

  it('tells the room peer-left when the grace period ends; a late resume is a fresh join', async () => {
    srv = await startServer({ resumeGraceMs: 200 });
    const a = await joined('r', 'a');
    const b = await joined('r', 'b');
    await a.socket.next('peer-joined');
    const started = Date.now();
    await b.socket.close();
    expect(await a.socket.next('peer-left', 2000)).toEqual({ type: 'peer-left', id: b.id });
    expect(Date.now() - started).toBeGreaterThanOrEqual(180);
    // signals to it now fail
    a.socket.signal(b.id, { late: true });
    expect(await a.socket.nextError()).toBe('unknown-peer');
    const late = await joined('r', 'b', { resume: b.welcome['resume'] });
    expect(late.id).not.toBe(b.id);
    expect(await a.socket.next('peer-joined')).toMatchObject({ peer: { id: late.id, name: 'b' } });
  });

  it('holds the name during the grace period, and resume tokens are single-use', async () => {
    srv = await startServer({ resumeGraceMs: 1000 });
    const a = await joined('r', 'a');
    a.socket.terminate();
    await a.socket.closed;
    await sleep(30);
    const intruder = await TestSocket.open(srv.url);
    sockets.push(intruder);
    intruder.send({ type: 'join', room: 'r', name: 'a' });
    expect(await intruder.nextError()).toBe('name-taken');
    // a token for this session in another room is just a fresh join there
    const elsewhere = await joined('other', 'a', { resume: a.welcome['resume'] });
    expect(elsewhere.id).not.toBe(a.id);
    const back = await joined('r', 'a', { resume: a.welcome['resume'] });
    expect(back.id).toBe(a.id);
    back.socket.terminate();
    await back.socket.closed;
    await sleep(30);
    // the first token was used up: only the newest one resumes
    const stale = await TestSocket.open(srv.url);
    sockets.push(stale);
    stale.send({ type: 'join', room: 'r', name: 'a', resume: a.welcome['resume'] });
    expect(await stale.nextError()).toBe('name-taken');
    const fresh = await joined('r', 'a', { resume: back.welcome['resume'] });
    expect(fresh.id).toBe(a.id);
  });

  it('replaces a half-dead socket that is still open (close 4000) and keeps the id', async () => {
    srv = await startServer({ resumeGraceMs: 1000 });
    const a = await joined('r', 'a');
    const b = await joined('r', 'b');
    await a.socket.next('peer-joined');
    const b2 = await joined('r', 'b', { resume: b.welcome['resume'] });
    expect(b2.id).toBe(b.id);
    expect(await b.socket.closed).toEqual({ code: 4000, reason: 'replaced by a resumed connection' });
    a.socket.signal(b.id, { to: 'new socket' });
    expect(await b2.socket.next('signal')).toMatchObject({ from: a.id });
    expect(await a.socket.quiet(100)).toEqual([]);
  });

  it('bounds the held queue (resumeQueueLimit) and keeps the oldest', async () => {
    srv = await startServer({ resumeGraceMs: 1000, resumeQueueLimit: 5 });
    const a = await joined('r', 'a');
    const b = await joined('r', 'b');
    b.socket.terminate();
    await b.socket.closed;
    await sleep(30);
    for (let n = 0; n < 9; n += 1) a.socket.signal(b.id, { n });
    await sleep(50);
    const b2 = await joined('r', 'b', { resume: b.welcome['resume'] });
    const got: unknown[] = [];
    for (let i = 0; i < 5; i += 1) got.push((await b2.socket.next('signal'))['data']);
    expect(got).toEqual([0, 1, 2, 3, 4].map((n) => ({ n })));
    expect(await b2.socket.quiet(100)).toEqual([]);
  });

  it('with resumeGraceMs 0 a disconnect is a leave at once', async () => {
    srv = await startServer({ resumeGraceMs: 0 });
    const a = await joined('r', 'a');
    const b = await joined('r', 'b');
    await b.socket.close();
    expect(await a.socket.next('peer-left', 300)).toEqual({ type: 'peer-left', id: b.id });
  });
});

describe('heartbeat', () => {
  it('terminates a socket that does not answer pings; its room is told peer-left; live sockets stay', async () => {
    srv = await startServer({ heartbeatIntervalMs: 80, resumeGraceMs: 100 });
    const live = await joined('hb', 'live');
    const silent = await TestSocket.open(srv.url, { autoPong: false });
    sockets.push(silent);
    const silentWelcome = await silent.join('hb', 'silent');
    await live.socket.next('peer-joined');
    const closed = await silent.closed;
    expect(closed.code).toBe(1006); // terminated: no close frame
    expect(await live.socket.next('peer-left', 1000)).toEqual({ type: 'peer-left', id: silentWelcome['id'] });
    expect(srv.logs.some((e) => e.event === 'heartbeat-timeout')).toBe(true);
    // several intervals later the socket that answers pings is still open and relays
    await sleep(300);
    expect(live.socket.closeInfo).toBeUndefined();
    live.socket.send({ type: 'ping' });
    expect(await live.socket.next('pong')).toEqual({ type: 'pong' });
  });

  it('pings every socket in a tick of more sockets than one slice, and terminates only the silent ones', async () => {
    // 300 sockets: the tick pings them in slices of 128 with I/O between the slices (server.ts).
    srv = await startServer({ heartbeatIntervalMs: 150, resumeGraceMs: 100, maxConnectionsPerIp: 1000 });
    const all: TestSocket[] = [];
    const pinged = new Set<TestSocket>();
    for (let i = 0; i < 300; i += 1) {
      const socket = await TestSocket.open(srv.url, { autoPong: i % 100 !== 99 });
      socket.ws.on('ping', () => pinged.add(socket));
      sockets.push(socket);
      all.push(socket);
    }
    const silent = all.filter((_, i) => i % 100 === 99);
    // The last socket opened is silent: the tick that pinged it (before the one that drops it)
    // pinged every socket opened before it too.
    await Promise.all(silent.map((socket) => socket.closed));
    expect(pinged.size).toBe(300);
    // The ones that answer are still open after the tick that dropped the silent ones.
    await sleep(400);
    expect(all.filter((socket) => socket.closeInfo !== undefined)).toEqual(silent);
    expect(srv.logs.filter((e) => e.event === 'heartbeat-timeout')).toHaveLength(3);
  });
});

/**
 * The in-memory broker, except that `members` (what a resume waits for) answers only when the
 * test opens the gate: the window in which a resume can race the end of its session.
 */
class GatedBroker implements Broker {
  private readonly inner = new InMemoryBroker();
  private gate: Promise<void> | undefined;
  private openGate: () => void = () => undefined;
  /** `members` calls made so far. */
  membersCalls = 0;

  close(): void {
    this.inner.close();
  }
  /** From now on `members` waits until `release()`. */
  hold(): void {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
  }
  release(): void {
    this.openGate();
    this.gate = undefined;
  }
  join(room: string, member: PeerInfo, maxPeers: number, deliver: Deliver, options?: JoinOptions): BrokerJoinResult {
    return this.inner.join(room, member, maxPeers, deliver, options);
  }
  leave(room: string, id: string, deliver: Deliver): boolean {
    return this.inner.leave(room, id, deliver);
  }
  members(room: string): MaybePromise<readonly PeerInfo[]> {
    this.membersCalls += 1;
    const gate = this.gate;
    return gate === undefined ? this.inner.members(room) : gate.then(() => this.inner.members(room));
  }
  publish(room: string, to: string, frame: string, from?: string): boolean {
    return this.inner.publish(room, to, frame, from);
  }
  revoke(key: string, untilMs: number, nowMs: number): boolean {
    return this.inner.revoke(key, untilMs, nowMs);
  }
  isRevoked(key: string, nowMs: number): boolean {
    return this.inner.isRevoked(key, nowMs);
  }
  broadcast(room: string, frame: string, except?: string): void {
    this.inner.broadcast(room, frame, except);
  }
  stats(): { rooms: number; members: number } {
    return this.inner.stats();
  }
}

describe('resume races (the session ends while the broker answers the resume)', () => {
  let broker: GatedBroker;

  /** a and b in room r; then a second socket for b sends a resume that waits for the broker. */
  async function pendingResume(
    options: Parameters<typeof startServer>[0] = {},
    joinExtra: (name: string) => Record<string, unknown> = () => ({}),
    resumeExtra: Record<string, unknown> = {},
  ) {
    broker = new GatedBroker();
    srv = await startServer({ resumeGraceMs: 1000, broker, ...options });
    const a = await joined('r', 'a', joinExtra('a'));
    const b = await joined('r', 'b', joinExtra('b'));
    await a.socket.next('peer-joined');
    broker.hold();
    const b2 = await TestSocket.open(srv.url);
    sockets.push(b2);
    const calls = broker.membersCalls;
    b2.send({ type: 'join', room: 'r', name: 'b', resume: b.welcome['resume'], ...resumeExtra });
    await until(() => broker.membersCalls > calls);
    return { a, b, b2 };
  }

  /** b's first socket leaves while the resume waits: the session is gone when the broker answers. */
  async function endSession(a: Joined, b: Joined): Promise<void> {
    b.socket.send({ type: 'leave' });
    expect(await a.socket.next('peer-left')).toEqual({ type: 'peer-left', id: b.id });
  }

  it('falls through to a fresh join: a new id, peer-joined for the room, no error', async () => {
    const { a, b, b2 } = await pendingResume();
    await endSession(a, b);
    broker.release();
    const welcome = await b2.next('welcome');
    expect(welcome['id']).not.toBe(b.id);
    expect(welcome['peers']).toEqual([{ id: a.id, name: 'a' }]);
    expect(await a.socket.next('peer-joined')).toEqual({ type: 'peer-joined', peer: { id: welcome['id'], name: 'b' } });
    // fully joined: it relays both ways
    b2.signal(a.id, { hi: 1 });
    expect(await a.socket.next('signal')).toEqual({ type: 'signal', from: welcome['id'], data: { hi: 1 } });
    expect(b2.all.filter((frame) => frame.type === 'error')).toEqual([]);
    // the socket that left was not "replaced by a resumed connection"
    expect(await b.socket.quiet(50)).toEqual([]);
    expect(b.socket.closeInfo).toBeUndefined();
    expect(srv!.logs.filter((event) => event['code'] === 4000)).toEqual([]);
  });

  it('the fresh join keeps the name rule: a name taken meanwhile is name-taken', async () => {
    const { a, b, b2 } = await pendingResume();
    await endSession(a, b);
    const other = await joined('r', 'b');
    broker.release();
    expect(await b2.nextError()).toBe('name-taken');
    expect(b2.all.some((frame) => frame.type === 'welcome')).toBe(false);
    expect(other.socket.closeInfo).toBeUndefined();
  });

  it('the fresh join keeps the room size: a room filled meanwhile is room-full', async () => {
    const { a, b, b2 } = await pendingResume({ maxPeersPerRoom: 2 });
    await endSession(a, b);
    await joined('r', 'c');
    broker.release();
    expect(await b2.nextError()).toBe('room-full');
  });

  it('the fresh join needs a join token when the server has an auth secret', async () => {
    const secret = 'resume-race-secret';
    const token = (name: string) => ({ token: createJoinToken(secret, 'r', name, Math.floor(Date.now() / 1000) + 60) });
    const refused = await pendingResume({ authSecret: secret }, token);
    await endSession(refused.a, refused.b);
    broker.release();
    expect(await refused.b2.nextError()).toBe('unauthorized'); // the resume carried no join token
    expect(await refused.b2.closed).toEqual({ code: 4001, reason: 'unauthorized' });
    await srv!.close();

    // the same race, with a valid join token in the resuming join: a fresh id
    const { a, b, b2 } = await pendingResume({ authSecret: secret }, token, token('b'));
    await endSession(a, b);
    broker.release();
    const welcome = await b2.next('welcome');
    expect(welcome['id']).not.toBe(b.id);
  });

  it('a second resume with a token whose resume is under way is a fresh join (name-taken)', async () => {
    const { b, b2 } = await pendingResume();
    const b3 = await TestSocket.open(srv!.url);
    sockets.push(b3);
    const calls = broker.membersCalls;
    b3.send({ type: 'join', room: 'r', name: 'b', resume: b.welcome['resume'] });
    expect(await b3.nextError()).toBe('name-taken');
    expect(broker.membersCalls).toBe(calls); // not tried as a resume
    broker.release();
    expect((await b2.next('welcome'))['id']).toBe(b.id);
  });

  it('a resume that never completes (its socket went away) leaves the session as it was', async () => {
    const { a, b, b2 } = await pendingResume();
    b2.terminate();
    await b2.closed;
    await sleep(20);
    broker.release();
    await sleep(20);
    // b's socket still holds the session: nothing was replaced, the room heard nothing
    a.socket.signal(b.id, { still: 'b' });
    expect(await b.socket.next('signal')).toEqual({ type: 'signal', from: a.id, data: { still: 'b' } });
    expect(b.socket.closeInfo).toBeUndefined();
    expect(await a.socket.quiet(50)).toEqual([]);
    // and its token was not used up: a later resume replaces the socket (4000) and keeps the id
    const b3 = await joined('r', 'b', { resume: b.welcome['resume'] });
    expect(b3.id).toBe(b.id);
    expect(await b.socket.closed).toEqual({ code: 4000, reason: 'replaced by a resumed connection' });
  });

  it('sends 4000 only when the resume completes, to the socket it replaces', async () => {
    const { a, b, b2 } = await pendingResume();
    // while the broker has not answered, the old socket keeps its session and is not closed
    a.socket.signal(b.id, { n: 1 });
    expect(await b.socket.next('signal')).toMatchObject({ data: { n: 1 } });
    expect(b.socket.closeInfo).toBeUndefined();
    broker.release();
    const welcome = await b2.next('welcome');
    expect(welcome['id']).toBe(b.id);
    expect(await b.socket.closed).toEqual({ code: 4000, reason: 'replaced by a resumed connection' });
    expect(a.socket.closeInfo).toBeUndefined();
    expect(b2.closeInfo).toBeUndefined();
    expect(srv!.logs.filter((event) => event['code'] === 4000)).toHaveLength(1);
  });

  it('a signal that finds the socket being replaced backed up (1008) is held for the resume, not lost', async () => {
    const { a, b, b2 } = await pendingResume({ maxBufferedBytes: 256 * 1024, messagesPerSecond: 100_000, resumeGraceMs: 60_000 });
    // b's old socket stops reading while its resume waits for the broker: frames still go to it.
    (b.socket.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    const big = 'x'.repeat(60_000);
    const slowClosed = (): boolean => srv!.logs.some((e) => e.event === 'closing' && e['code'] === 1008);
    let sent = 0;
    for (; sent < 2000 && !slowClosed(); sent++) {
      const relayed = srv!.server.stats().relayed;
      a.socket.signal(b.id, { i: sent, big });
      await until(() => srv!.server.stats().relayed > relayed, 5000);
    }
    broker.release();
    const welcome = await b2.next('welcome');
    expect(welcome['id']).toBe(b.id);
    (b.socket.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    await b.socket.closed;
    await until(() => b2.all.filter((f) => f.type === 'signal').length + b.socket.all.filter((f) => f.type === 'signal').length >= sent, 5000);
    const numbers = [...b.socket.all, ...b2.all].filter((f) => f.type === 'signal').map((f) => (f['data'] as { i: number }).i);
    expect(numbers).toEqual(Array.from({ length: sent }, (_, i) => i));
  });
});

describe('expired and superseded resume tokens (synchronous broker)', () => {
  it('a used-up token after its session ended is a fresh join', async () => {
    srv = await startServer({ resumeGraceMs: 1000 });
    const a = await joined('r', 'a');
    const b = await joined('r', 'b');
    const b2 = await joined('r', 'b', { resume: b.welcome['resume'] }); // supersedes b's socket and token
    expect(b2.id).toBe(b.id);
    b2.socket.send({ type: 'leave' });
    expect(await a.socket.next('peer-left')).toEqual({ type: 'peer-left', id: b.id });
    const b3 = await joined('r', 'b', { resume: b.welcome['resume'] });
    expect(b3.id).not.toBe(b.id);
    const b4 = await joined('r', 'b2', { resume: b2.welcome['resume'] }); // ended session's latest token
    expect(b4.id).not.toBe(b.id);
  });
});
