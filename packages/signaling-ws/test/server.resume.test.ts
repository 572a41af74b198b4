// Resume tokens and heartbeat: a reconnect within the grace period keeps the id and the room is
// not told; after it, the room is told `peer-left`; a silent socket is terminated.

import { afterEach, describe, expect, it } from 'vitest';
import { startServer, type StartedServer } from './helpers/server.js';
import { sleep, TestSocket } from './helpers/ws-client.js';

let srv: StartedServer | undefined;
const sockets: TestSocket[] = [];

async function joined(room: string, name: string, extra: Record<string, unknown> = {}) {
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
});
