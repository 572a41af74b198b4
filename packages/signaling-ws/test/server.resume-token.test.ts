// Signed resume tokens: a server that did not issue a token (a restart, another instance) gives
// the peer its id back when the token verifies with the shared `resumeSecret`, is not older than
// `resumeTokenTtlSeconds`, names the room and name of the join, and neither the id nor the name is
// in use there. Anything else is a fresh join.

import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createJoinToken, createSignalingServer, InMemoryBroker } from '../src/server/index.js';
import { createResumeToken, RESUME_TOKEN_MAX_LENGTH, verifyResumeToken } from '../src/server/resume-token.js';
import type { SignalingServerOptions } from '../src/server/index.js';
import { useServers } from './helpers/server.js';

const SECRET = 'shared-resume-secret';

const { server, joined, open } = useServers({ resumeSecret: SECRET });

/** Joins `names` in room `r` on a first server, then stops it: their tokens are all that is left. */
async function tokensFromStoppedServer(options: SignalingServerOptions = {}, names = ['a', 'b']) {
  const first = await server(options);
  const peers = new Map<string, { id: string; resume: string }>();
  for (const name of names) {
    const { id, welcome } = await joined(first, 'r', name, options.authSecret === undefined ? {} : { token: joinToken(options.authSecret, name) });
    peers.set(name, { id, resume: welcome['resume'] as string });
  }
  await first.close();
  return peers;
}

const joinToken = (secret: string, name: string, room = 'r'): string => createJoinToken(secret, room, name, Math.floor(Date.now() / 1000) + 60);

/** Flips one character in the middle of the payload part (still base64url, same length). */
function tamper(token: string): string {
  const at = Math.floor(token.indexOf('.') / 2);
  return token.slice(0, at) + (token[at] === 'A' ? 'B' : 'A') + token.slice(at + 1);
}

describe('resume tokens (format)', () => {
  it('are base64url(payload).base64url(HMAC-SHA256), distinct, bounded, and verify only with the secret', () => {
    const now = Date.UTC(2030, 0, 1);
    const claims = { issuer: 'proc1', room: 'r'.repeat(64), name: 'n'.repeat(64), id: 'i'.repeat(64) };
    const token = createResumeToken(SECRET, claims, now);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(token.length).toBeLessThanOrEqual(RESUME_TOKEN_MAX_LENGTH);
    const [payload, mac] = token.split('.') as [string, string];
    const raw = Buffer.from(payload, 'base64url');
    expect(createHmac('sha256', SECRET).update(raw).digest('base64url')).toBe(mac);
    expect(raw.toString('utf8')).toMatch(new RegExp(`^pr2:proc1:r{64}:n{64}:i{64}:${now / 1000}:0:[A-Za-z0-9_-]{22}$`));
    expect(createResumeToken(SECRET, claims, now)).not.toBe(token); // random nonce
    expect(verifyResumeToken(SECRET, token, now, 60)).toMatchObject({ ok: true, claims: { ...claims, issuedAt: now / 1000 } });
    expect(verifyResumeToken('another-secret', token, now, 60)).toEqual({ ok: false, reason: 'bad-signature' });
    expect(verifyResumeToken(SECRET, tamper(token), now, 60)).toEqual({ ok: false, reason: 'bad-signature' });
    expect(verifyResumeToken(SECRET, token, now + 61_000, 60)).toEqual({ ok: false, reason: 'expired' });
    expect(verifyResumeToken(SECRET, token, now + 60_000, 60)).toMatchObject({ ok: true });
    for (const bad of ['', '.', 'abc', `${payload}.`, `.${mac}`, `${payload}.${mac}x`, `${payload}=.${mac}`, `${payload}.${mac}.x`, 'a'.repeat(600)]) {
      expect(verifyResumeToken(SECRET, bad, now, 60)).toEqual({ ok: false, reason: 'malformed' });
    }
  });
});

describe('resume tokens across server processes', () => {
  it('a server with the same secret gives the id back, tells the room peer-joined, and issues a fresh token', async () => {
    const before = await tokensFromStoppedServer();
    const srv = await server();
    const a = await joined(srv, 'r', 'a', { resume: before.get('a')!.resume });
    expect(a.id).toBe(before.get('a')!.id);
    expect(a.welcome['peers']).toEqual([]);
    const b = await joined(srv, 'r', 'b', { resume: before.get('b')!.resume });
    expect(b.id).toBe(before.get('b')!.id);
    expect(b.welcome['peers']).toEqual([{ id: a.id, name: 'a' }]);
    expect(b.welcome['resume']).not.toBe(before.get('b')!.resume);
    expect(await a.socket.next('peer-joined')).toEqual({ type: 'peer-joined', peer: { id: b.id, name: 'b' } });
    // fully joined: relay both ways, server-stamped
    a.socket.signal(b.id, { n: 1 });
    expect(await b.socket.next('signal')).toEqual({ type: 'signal', from: a.id, data: { n: 1 } });
    b.socket.signal(a.id, { n: 2 });
    expect(await a.socket.next('signal')).toEqual({ type: 'signal', from: b.id, data: { n: 2 } });
    expect(srv.logs.filter((event) => event.event === 'join').map((event) => event['restored'])).toEqual([true, true]);

    // The token of the restored session resumes in-process as usual (same id, no peer-left).
    b.socket.terminate();
    await b.socket.closed;
    const b2 = await joined(srv, 'r', 'b', { resume: b.welcome['resume'] });
    expect(b2.id).toBe(b.id);
    expect(await a.socket.quiet(50)).toEqual([]);
  });

  it('a server with another secret gives a fresh id (and so does one with the default random secret)', async () => {
    const before = await tokensFromStoppedServer();
    const other = await server({ resumeSecret: 'not-the-same' });
    const a = await joined(other, 'r', 'a', { resume: before.get('a')!.resume });
    expect(a.id).not.toBe(before.get('a')!.id);
    const random = await server({ resumeSecret: undefined }); // a random secret of its own
    const b = await joined(random, 'r', 'b', { resume: before.get('b')!.resume });
    expect(b.id).not.toBe(before.get('b')!.id);
    expect(other.logs.filter((event) => event.event === 'resume-token-unusable').map((event) => event['why'])).toEqual(['bad-signature']);
  });

  it('a tampered token is a fresh join', async () => {
    const before = await tokensFromStoppedServer();
    const srv = await server();
    const a = await joined(srv, 'r', 'a', { resume: tamper(before.get('a')!.resume) });
    expect(a.id).not.toBe(before.get('a')!.id);
    const b = await joined(srv, 'r', 'b', { resume: `${before.get('b')!.resume}x` });
    expect(b.id).not.toBe(before.get('b')!.id);
  });

  it('a token older than resumeTokenTtlSeconds is a fresh join', async () => {
    const before = await tokensFromStoppedServer();
    const ttl = 3600;
    const later = await server({ resumeTokenTtlSeconds: ttl, now: () => Date.now() + (ttl + 5) * 1000 });
    const a = await joined(later, 'r', 'a', { resume: before.get('a')!.resume });
    expect(a.id).not.toBe(before.get('a')!.id);
    expect(later.logs.find((event) => event.event === 'resume-token-unusable')?.['why']).toBe('expired');
    await later.close();
    const inTime = await server({ resumeTokenTtlSeconds: ttl, now: () => Date.now() + (ttl - 5) * 1000 });
    const b = await joined(inTime, 'r', 'b', { resume: before.get('b')!.resume });
    expect(b.id).toBe(before.get('b')!.id);
  });

  it('with resumeGraceMs 0 (resume off) a verified token is a fresh join too', async () => {
    const before = await tokensFromStoppedServer();
    const srv = await server({ resumeGraceMs: 0 });
    const a = await joined(srv, 'r', 'a', { resume: before.get('a')!.resume });
    expect(a.id).not.toBe(before.get('a')!.id);
  });

  it('a token for another room or another name is a fresh join', async () => {
    const before = await tokensFromStoppedServer();
    const srv = await server();
    const otherRoom = await joined(srv, 'elsewhere', 'a', { resume: before.get('a')!.resume });
    expect(otherRoom.id).not.toBe(before.get('a')!.id);
    const otherName = await joined(srv, 'r', 'mallory', { resume: before.get('b')!.resume });
    expect(otherName.id).not.toBe(before.get('b')!.id);
    // the tokens were not used up by those attempts
    expect((await joined(srv, 'r', 'a', { resume: before.get('a')!.resume })).id).toBe(before.get('a')!.id);
    expect((await joined(srv, 'r', 'b', { resume: before.get('b')!.resume })).id).toBe(before.get('b')!.id);
  });

  it('an id held by a live or in-grace member is not restored: a fresh join, the member undisturbed', async () => {
    const first = await server();
    const b = await joined(first, 'r', 'b');
    const b2 = await joined(first, 'r', 'b', { resume: b.welcome['resume'] }); // same id, newer token
    expect(b2.id).toBe(b.id);
    await first.close();

    const srv = await server({ resumeGraceMs: 2000 });
    const a = await joined(srv, 'r', 'a');
    const live = await joined(srv, 'r', 'b', { resume: b2.welcome['resume'] });
    expect(live.id).toBe(b.id);
    await a.socket.next('peer-joined');
    // The older token names the same id and name: both are held.
    const again = await open(srv);
    again.send({ type: 'join', room: 'r', name: 'b', resume: b.welcome['resume'] });
    expect(await again.nextError()).toBe('name-taken');
    expect(live.socket.closeInfo).toBeUndefined();
    // in its grace period the id is still held
    live.socket.terminate();
    await live.socket.closed;
    const inGrace = await open(srv);
    inGrace.send({ type: 'join', room: 'r', name: 'b', resume: b.welcome['resume'] });
    expect(await inGrace.nextError()).toBe('name-taken');
    expect(await a.socket.quiet(50)).toEqual([]); // no peer-left, no peer-joined
    expect(srv.logs.filter((event) => event['code'] === 4000)).toEqual([]);
  });

  it('the broker refuses a second member with the same id (id-taken), atomically with the insert', () => {
    const broker = new InMemoryBroker();
    expect(broker.join('r', { id: 'x', name: 'one' }, 16, () => undefined)).toMatchObject({ ok: true });
    expect(broker.join('r', { id: 'x', name: 'two' }, 16, () => undefined)).toEqual({ ok: false, reason: 'id-taken' });
    expect(broker.members('r')).toEqual([{ id: 'x', name: 'one' }]);
  });

  it('a token restores an id once per process: replayed after that peer left, it is a fresh join', async () => {
    const before = await tokensFromStoppedServer();
    const srv = await server();
    const a = await joined(srv, 'r', 'a', { resume: before.get('a')!.resume });
    expect(a.id).toBe(before.get('a')!.id);
    a.socket.send({ type: 'leave' });
    await new Promise((resolve) => setTimeout(resolve, 30));
    const replay = await joined(srv, 'r', 'a', { resume: before.get('a')!.resume });
    expect(replay.id).not.toBe(before.get('a')!.id);
  });

  it('with an auth secret a restore needs no join token; a fresh join still does', async () => {
    const auth = 'auth-secret';
    const before = await tokensFromStoppedServer({ authSecret: auth });
    const srv = await server({ authSecret: auth });
    const a = await joined(srv, 'r', 'a', { resume: before.get('a')!.resume });
    expect(a.id).toBe(before.get('a')!.id);
    const forged = await open(srv);
    forged.send({ type: 'join', room: 'r', name: 'b', resume: tamper(before.get('b')!.resume) });
    expect(await forged.nextError()).toBe('unauthorized');
    expect(await forged.closed).toEqual({ code: 4001, reason: 'unauthorized' });
    const b = await joined(srv, 'r', 'b', { resume: tamper(before.get('b')!.resume), token: joinToken(auth, 'b') });
    expect(b.id).not.toBe(before.get('b')!.id);
  });

  it('never logs a resume token', async () => {
    const before = await tokensFromStoppedServer();
    const srv = await server();
    const tokens: string[] = [...before.values()].map((peer) => peer.resume);
    const a = await joined(srv, 'r', 'a', { resume: before.get('a')!.resume });
    const b = await joined(srv, 'r', 'b', { resume: tamper(before.get('b')!.resume) });
    const elsewhere = await joined(srv, 'x', 'b', { resume: before.get('b')!.resume });
    tokens.push(...[a, b, elsewhere].map((peer) => peer.welcome['resume'] as string));
    await srv.close();
    const logged = JSON.stringify(srv.logs);
    for (const token of tokens) {
      expect(logged).not.toContain(token);
      expect(logged).not.toContain(token.split('.')[1]);
    }
  });

  it('refuses an empty resumeSecret and a resumeTokenTtlSeconds below 1', async () => {
    await expect(createSignalingServer({ port: 0, resumeSecret: '' })).rejects.toThrow(/resumeSecret must not be empty/);
    await expect(createSignalingServer({ port: 0, resumeTokenTtlSeconds: 0 })).rejects.toThrow(/resumeTokenTtlSeconds must be an integer >= 1/);
  });
});
