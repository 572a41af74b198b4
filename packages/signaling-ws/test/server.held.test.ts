// Issue 12, holes 2 and 4: frames held for a peer in its resume grace period are bounded per
// session (count and bytes) and per server (bytes); past a bound the sender gets `undeliverable`
// naming the target, and so does the sender of a frame still held when the grace period ends.
// In-grace sessions count toward the per-address cap. A socket closed as a slow consumer (1008)
// leaves its session at once: what is sent to it meanwhile is held for the resume.

import { describe, expect, it } from 'vitest';
import { useServers } from './helpers/server.js';
import type { StartedServer } from './helpers/server.js';
import { TestSocket, until } from './helpers/ws-client.js';

const { server, joined } = useServers();

const disconnects = (srv: StartedServer): number => srv.logs.filter((e) => e.event === 'disconnect').length;

/** a and b in room r, b's socket dropped (1006): b is in its grace period. */
async function peerInGrace(options: Parameters<typeof server>[0]) {
  const srv = await server({ resumeGraceMs: 60_000, ...options });
  const a = await joined(srv, 'r', 'a');
  const b = await joined(srv, 'r', 'b');
  await a.socket.next('peer-joined');
  b.socket.terminate();
  await b.socket.closed;
  await until(() => disconnects(srv) > 0, 'the disconnect');
  return { srv, a, b };
}

const padding = (bytes: number): string => 'x'.repeat(bytes);

describe('held frames are bounded', () => {
  it('per session by bytes: past maxHeldBytesPerPeer the sender gets undeliverable naming the target', async () => {
    const { srv, a, b } = await peerInGrace({ maxHeldBytesPerPeer: 1000 });
    a.socket.signal(b.id, { n: 1, pad: padding(400) });
    a.socket.signal(b.id, { n: 2, pad: padding(400) });
    a.socket.signal(b.id, { n: 3, pad: padding(400) });
    const error = await a.socket.next('error');
    expect(error).toMatchObject({ type: 'error', code: 'undeliverable', to: b.id });
    // the two that fit arrive on resume, in order
    const back = await joined(srv, 'r', 'b', { resume: b.welcome['resume'] });
    expect(back.id).toBe(b.id);
    const held = [await back.socket.next('signal'), await back.socket.next('signal')];
    expect(held.map((f) => (f['data'] as { n: number }).n)).toEqual([1, 2]);
  });

  it('per session by count: past resumeQueueLimit the sender gets undeliverable', async () => {
    const { a, b } = await peerInGrace({ resumeQueueLimit: 2 });
    for (let n = 1; n <= 3; n++) a.socket.signal(b.id, { n });
    expect(await a.socket.next('error')).toMatchObject({ code: 'undeliverable', to: b.id });
  });

  it('per server by bytes: past maxHeldBytes the sender gets undeliverable', async () => {
    const srv = await server({ resumeGraceMs: 60_000, maxHeldBytes: 1500, maxHeldBytesPerPeer: 100_000 });
    const a = await joined(srv, 'r', 'a');
    const b = await joined(srv, 'r', 'b');
    const c = await joined(srv, 'r', 'c');
    b.socket.terminate();
    c.socket.terminate();
    await Promise.all([b.socket.closed, c.socket.closed]);
    await until(() => disconnects(srv) === 2, 'both disconnects');
    a.socket.signal(b.id, { pad: padding(1000) });
    a.socket.signal(c.id, { pad: padding(1000) });
    expect(await a.socket.next('error')).toMatchObject({ code: 'undeliverable', to: c.id });
    expect(srv.server.stats().heldBytes).toBeGreaterThan(1000);
    expect(srv.server.stats().heldBytes).toBeLessThanOrEqual(1500);
  });

  it('tells the sender of a frame still held when the grace period ends', async () => {
    const srv = await server({ resumeGraceMs: 300 });
    const a = await joined(srv, 'r', 'a');
    const b = await joined(srv, 'r', 'b');
    b.socket.terminate();
    await b.socket.closed;
    await until(() => disconnects(srv) > 0, 'the disconnect');
    a.socket.signal(b.id, { n: 1 });
    expect(await a.socket.next('error')).toMatchObject({ code: 'undeliverable', to: b.id });
    expect(await a.socket.next('peer-left')).toEqual({ type: 'peer-left', id: b.id });
  });
});

describe('in-grace sessions hold their client slot', () => {
  it('counts them toward maxConnectionsPerIp: parked sessions cannot pile up', async () => {
    const srv = await server({ resumeGraceMs: 60_000, maxConnectionsPerIp: 2 });
    for (const name of ['p1', 'p2']) {
      const p = await joined(srv, 'r', name);
      p.socket.terminate();
      await p.socket.closed;
    }
    await until(() => disconnects(srv) === 2, 'both disconnects');
    await expect(TestSocket.open(srv.url)).rejects.toMatchObject({ status: 429 });
  });
});

describe('a slow consumer', () => {
  it('closed with 1008 leaves its socket at once: what is sent to it is held for its resume', async () => {
    const srv = await server({ resumeGraceMs: 60_000, heartbeatIntervalMs: 60_000, maxBufferedBytes: 256 * 1024, messagesPerSecond: 100_000 });
    const a = await joined(srv, 'r', 'a');
    const b = await joined(srv, 'r', 'b');
    await a.socket.next('peer-joined');
    // b stops reading: the server's writes to it back up (kernel buffers first, then ws's).
    (b.socket.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const big = padding(60_000);
    const slowClosed = () => srv.logs.some((e) => e.event === 'closing' && e['code'] === 1008);
    // One signal at a time (each relayed before the next), so that few follow the close.
    let sent = 0;
    for (let i = 0; i < 2000 && !slowClosed(); i++, sent++) {
      const relayed = srv.server.stats().relayed;
      a.socket.signal(b.id, { i, big });
      await until(() => srv.server.stats().relayed > relayed, 'the relay');
    }
    await until(slowClosed, 'the slow-consumer close');
    a.socket.signal(b.id, { marker: true });
    await a.socket.quiet(50);
    const back = await joined(srv, 'r', 'b', { resume: b.welcome['resume'] });
    expect(back.id).toBe(b.id);
    const marker = await back.socket.waitFor((f) => f.type === 'signal' && (f['data'] as { marker?: boolean }).marker === true, 3000, 'the marker');
    expect(marker['from']).toBe(a.id);
    expect(a.socket.all.filter((f) => f.type === 'error')).toEqual([]);
    // Every signal arrived once: on the old socket before the close, or held for the resume (the
    // one whose send found the socket backed up included).
    (b.socket.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    await b.socket.closed;
    const numbers = [...b.socket.all, ...back.socket.all]
      .filter((f) => f.type === 'signal' && typeof (f['data'] as { i?: number }).i === 'number')
      .map((f) => (f['data'] as { i: number }).i);
    expect(numbers).toEqual(Array.from({ length: sent }, (_, i) => i));
  });
});
