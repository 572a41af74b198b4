// Abuse limits, join tokens and the Origin allow-list.

import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createJoinToken, verifyJoinToken } from '../src/server/index.js';
import { startServer, type StartedServer } from './helpers/server.js';
import { sleep, TestSocket } from './helpers/ws-client.js';

let srv: StartedServer | undefined;
const sockets: TestSocket[] = [];

async function open(options: { origin?: string } = {}): Promise<TestSocket> {
  const socket = await TestSocket.open(srv!.url, options);
  sockets.push(socket);
  return socket;
}

afterEach(async () => {
  for (const s of sockets.splice(0)) s.terminate();
  await srv?.close();
  srv = undefined;
});

describe('size limit', () => {
  it('closes with 1009 on a frame larger than maxPayload; the room is told peer-left', async () => {
    srv = await startServer({ maxPayload: 1024, resumeGraceMs: 0 });
    const a = await open();
    const aWelcome = await a.join('size', 'a');
    const b = await open();
    await b.join('size', 'b');
    a.sendRaw(JSON.stringify({ type: 'signal', to: 'x', data: { p: 'y'.repeat(2000) } }));
    expect((await a.closed).code).toBe(1009);
    expect(await b.next('peer-left')).toEqual({ type: 'peer-left', id: aWelcome['id'] });
  });

  it('accepts a frame of exactly maxPayload bytes', async () => {
    srv = await startServer({ maxPayload: 1024 });
    const a = await open();
    const base = JSON.stringify({ type: 'ping', pad: '' });
    a.sendRaw(base.replace('"pad":""', `"pad":"${'z'.repeat(1024 - base.length)}"`));
    expect(await a.nextAny()).toEqual({ type: 'pong' });
  });
});

describe('rate limit', () => {
  it('drops past the bucket with rate-limited, refills with time (fake clock)', async () => {
    let t = 1_000_000;
    srv = await startServer({ messagesPerSecond: 10, burst: 10, rateLimitCloseAfter: 100, now: () => t });
    const a = await open();
    for (let i = 0; i < 12; i += 1) a.send({ type: 'ping' });
    const frames = [];
    for (let i = 0; i < 12; i += 1) frames.push(await a.nextAny());
    expect(frames.slice(0, 10).every((f) => f.type === 'pong')).toBe(true);
    expect(frames.slice(10)).toEqual([
      { type: 'error', code: 'rate-limited', message: expect.any(String) as unknown },
      { type: 'error', code: 'rate-limited', message: expect.any(String) as unknown },
    ]);
    t += 500; // half a second refills 5
    for (let i = 0; i < 6; i += 1) a.send({ type: 'ping' });
    const later = [];
    for (let i = 0; i < 6; i += 1) later.push((await a.nextAny()).type);
    expect(later).toEqual(['pong', 'pong', 'pong', 'pong', 'pong', 'error']);
    expect(a.closeInfo).toBeUndefined();
  });

  it('closes a flood with 4029 and a reason, after rate-limited errors', async () => {
    // A frozen clock: the bucket cannot refill while the flood is in flight, so counts are exact.
    const frozen = 1_000_000;
    srv = await startServer({ messagesPerSecond: 20, burst: 20, now: () => frozen });
    const a = await open();
    await a.join('flood', 'a');
    for (let i = 0; i < 200; i += 1) a.send({ type: 'ping' });
    const closed = await a.closed;
    expect(closed).toEqual({ code: 4029, reason: 'rate limit exceeded' });
    const types = a.all.map((f) => (f.type === 'error' ? `error:${String(f['code'])}` : String(f.type)));
    expect(types.filter((x) => x === 'pong')).toHaveLength(19); // the join took one token
    expect(types.filter((x) => x === 'error:rate-limited').length).toBeGreaterThanOrEqual(1);
    expect(types.indexOf('error:rate-limited')).toBeGreaterThan(types.lastIndexOf('pong') - 1);
  });
});

describe('connections per IP', () => {
  it('refuses the upgrade with 429 past maxConnectionsPerIp, and frees the slot on close', async () => {
    srv = await startServer({ maxConnectionsPerIp: 2 });
    const one = await open();
    await open();
    await expect(TestSocket.open(srv.url)).rejects.toMatchObject({ status: 429 });
    await one.close();
    await sleep(30);
    await expect(open()).resolves.toBeInstanceOf(TestSocket);
  });
});

describe('join tokens', () => {
  const secret = 'test-secret';
  const nowMs = Date.UTC(2030, 0, 1);
  const nowSec = nowMs / 1000;

  it('has the documented format: base64url(HMAC-SHA256(secret, room:name:expiry)).expiry', () => {
    const token = createJoinToken(secret, 'room-1', 'alice', nowSec + 60);
    const mac = createHmac('sha256', secret).update(`room-1:alice:${nowSec + 60}`).digest('base64url');
    expect(token).toBe(`${mac}.${nowSec + 60}`);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}\.[0-9]+$/);
    expect(createJoinToken(secret, 'room-1', 'alice', new Date((nowSec + 60) * 1000))).toBe(token);
    expect(() => createJoinToken(secret, 'room 1', 'alice', nowSec)).toThrow(RangeError);
    expect(() => createJoinToken(secret, 'r', 'alice', nowMs)).toThrow(RangeError); // milliseconds by mistake
    expect(verifyJoinToken(secret, token, 'room-1', 'alice', nowMs)).toBe('ok');
    expect(verifyJoinToken(secret, token, 'room-1', 'bob', nowMs)).toBe('bad-signature');
    expect(verifyJoinToken('other', token, 'room-1', 'alice', nowMs)).toBe('bad-signature');
    expect(verifyJoinToken(secret, token, 'room-1', 'alice', (nowSec + 60) * 1000)).toBe('expired');
    expect(verifyJoinToken(secret, 'nodot', 'room-1', 'alice', nowMs)).toBe('malformed');
    expect(verifyJoinToken(secret, `${token}x`, 'room-1', 'alice', nowMs)).toBe('malformed');
    // a later expiry with the old MAC does not verify
    expect(verifyJoinToken(secret, token.replace(/\.\d+$/, `.${nowSec + 6000}`), 'room-1', 'alice', nowMs)).toBe('bad-signature');
  });

  const refused: Array<[string, (room: string, name: string) => string | undefined]> = [
    ['missing', () => undefined],
    ['malformed', () => 'not-a-token'],
    ['for another room', (_room, name) => createJoinToken(secret, 'elsewhere', name, nowSec + 60)],
    ['for another name', (room) => createJoinToken(secret, room, 'mallory', nowSec + 60)],
    ['signed with another secret', (room, name) => createJoinToken('guess', room, name, nowSec + 60)],
    ['expired', (room, name) => createJoinToken(secret, room, name, nowSec - 1)],
  ];
  for (const [what, make] of refused) {
    it(`refuses a token that is ${what}: error unauthorized, close 4001`, async () => {
      srv = await startServer({ authSecret: secret, now: () => nowMs });
      const a = await open();
      const token = make('room', 'alice');
      a.send({ type: 'join', room: 'room', name: 'alice', ...(token !== undefined ? { token } : {}) });
      expect(await a.next('error')).toEqual({ type: 'error', code: 'unauthorized', message: expect.any(String) as unknown });
      expect(await a.closed).toEqual({ code: 4001, reason: 'unauthorized' });
      expect(JSON.stringify(srv.logs)).not.toContain(token ?? '\u0000');
    });
  }

  it('accepts a good token; resume needs no new token; without a secret joins are open', async () => {
    srv = await startServer({ authSecret: secret, now: () => nowMs, resumeGraceMs: 1000 });
    const a = await open();
    const welcome = await a.join('room', 'alice', { token: createJoinToken(secret, 'room', 'alice', nowSec + 60) });
    expect(welcome['type']).toBe('welcome');
    a.terminate();
    await a.closed;
    await sleep(30);
    const back = await open();
    expect((await back.join('room', 'alice', { resume: welcome['resume'] }))['id']).toBe(welcome['id']);
    await srv.close();

    srv = await startServer();
    const open1 = await open();
    await expect(open1.join('room', 'x', { token: 'ignored-without-secret' })).resolves.toMatchObject({ type: 'welcome' });
  });
});

describe('Origin allow-list', () => {
  it('accepts listed origins (case-insensitive) and refuses others and none with 403', async () => {
    srv = await startServer({ allowedOrigins: ['https://app.example', 'http://localhost:5173/'] });
    await expect(open({ origin: 'https://app.example' })).resolves.toBeInstanceOf(TestSocket);
    await expect(open({ origin: 'HTTPS://APP.EXAMPLE' })).resolves.toBeInstanceOf(TestSocket);
    await expect(open({ origin: 'http://localhost:5173' })).resolves.toBeInstanceOf(TestSocket);
    await expect(TestSocket.open(srv.url, { origin: 'https://evil.example' })).rejects.toMatchObject({ status: 403 });
    await expect(TestSocket.open(srv.url, { origin: 'https://app.example.evil.example' })).rejects.toMatchObject({ status: 403 });
    await expect(TestSocket.open(srv.url)).rejects.toMatchObject({ status: 403 });
    expect(srv.logs.filter((e) => e.event === 'upgrade-refused')).toHaveLength(3);
  });

  it('accepts any origin when no list is set', async () => {
    srv = await startServer();
    await expect(open({ origin: 'https://anything.example' })).resolves.toBeInstanceOf(TestSocket);
  });
});
