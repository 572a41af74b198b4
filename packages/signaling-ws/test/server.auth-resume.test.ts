// Issue 12, hole 1: a resume never grants more than a join. With an auth secret a restore is
// refused once the join token that admitted the peer has expired; a session ended by `leave` or a
// clean close (1000/1001) is revoked through the broker, so no process sharing the resume secret
// restores it; a refused restore is `error unauthorized` (with an auth secret), never a fresh
// join without a join token. A clean close also tells the room `peer-left` at once.

import { describe, expect, it } from 'vitest';
import { createJoinToken, InMemoryBroker } from '../src/server/index.js';
import { verifyResumeToken } from '../src/server/resume-token.js';
import type { SignalingServerOptions } from '../src/server/index.js';
import { useServers } from './helpers/server.js';

const RESUME_SECRET = 'shared-resume-secret';
const AUTH_SECRET = 'shared-auth-secret';

const { server, joined, open } = useServers({ resumeSecret: RESUME_SECRET, resumeGraceMs: 60_000 });

const nowSeconds = (): number => Math.floor(Date.now() / 1000);
const joinToken = (name: string, expiresAt = nowSeconds() + 60): string => createJoinToken(AUTH_SECRET, 'r', name, expiresAt);

describe('a restore never grants more than a join', () => {
  it('carries the join token expiry in the resume token and refuses a restore after it: error unauthorized', async () => {
    const expiresAt = nowSeconds() + 60;
    const first = await server({ authSecret: AUTH_SECRET });
    const { id, welcome } = await joined(first, 'r', 'a', { token: joinToken('a', expiresAt) });
    const claims = verifyResumeToken(RESUME_SECRET, welcome['resume'] as string, Date.now(), 60);
    expect(claims).toMatchObject({ ok: true, claims: { id, joinExpiresAt: expiresAt } });
    await first.close();

    // Another process, two minutes later: the join token has expired, so has the right to restore.
    const later = await server({ authSecret: AUTH_SECRET, now: () => Date.now() + 120_000 });
    const socket = await open(later);
    socket.send({ type: 'join', room: 'r', name: 'a', resume: welcome['resume'] });
    const error = await socket.next('error');
    expect(error['code']).toBe('unauthorized');
    expect(error['message']).toMatch(/join-token-expired/);
    expect(socket.all.some((frame) => frame.type === 'welcome')).toBe(false);
    expect((await socket.closed).code).toBe(4001);
  });

  it('a restored session keeps the first join expiry in its new tokens (no renewal by alternating instances)', async () => {
    const expiresAt = nowSeconds() + 60;
    const first = await server({ authSecret: AUTH_SECRET });
    const { welcome } = await joined(first, 'r', 'a', { token: joinToken('a', expiresAt) });
    await first.close();
    const second = await server({ authSecret: AUTH_SECRET });
    const restored = await joined(second, 'r', 'a', { resume: welcome['resume'] });
    const claims = verifyResumeToken(RESUME_SECRET, restored.welcome['resume'] as string, Date.now(), 60);
    expect(claims).toMatchObject({ ok: true, claims: { joinExpiresAt: expiresAt } });
  });
});

describe('leave and clean close revoke the session on every process sharing the broker', () => {
  async function twoServers(options: SignalingServerOptions = {}) {
    const broker = new InMemoryBroker();
    const a = await server({ broker, ...options });
    const b = await server({ broker, ...options });
    return { a, b };
  }

  it('after leave, its token restores nothing elsewhere: with auth it is error unauthorized', async () => {
    const { a, b } = await twoServers({ authSecret: AUTH_SECRET });
    const peer = await joined(a, 'r', 'p', { token: joinToken('p') });
    peer.socket.send({ type: 'leave' });
    await peer.socket.quiet(50);
    const socket = await open(b);
    socket.send({ type: 'join', room: 'r', name: 'p', resume: peer.welcome['resume'] });
    const error = await socket.next('error');
    expect(error['code']).toBe('unauthorized');
    expect(error['message']).toMatch(/revoked/);
    expect(socket.all.some((frame) => frame.type === 'welcome')).toBe(false);
  });

  it('after leave, without auth, the token is a fresh join with a new id', async () => {
    const { a, b } = await twoServers();
    const peer = await joined(a, 'r', 'p');
    peer.socket.send({ type: 'leave' });
    await peer.socket.quiet(50);
    const again = await joined(b, 'r', 'p', { resume: peer.welcome['resume'] });
    expect(again.id).not.toBe(peer.id);
  });

  for (const code of [1000, 1001]) {
    it(`a clean close (${code}) tells the room peer-left at once and revokes the session`, async () => {
      const { a, b } = await twoServers();
      const stays = await joined(a, 'r', 'stays');
      const goes = await joined(a, 'r', 'goes');
      await stays.socket.next('peer-joined');
      await goes.socket.close(code);
      // The grace period is a minute: only a clean close makes this arrive now.
      expect(await stays.socket.next('peer-left')).toEqual({ type: 'peer-left', id: goes.id });
      const again = await joined(b, 'r', 'goes', { resume: goes.welcome['resume'] });
      expect(again.id).not.toBe(goes.id);
    });
  }

  it('an abnormal close (1006) keeps the session for a resume: no peer-left, the same id', async () => {
    const { a } = await twoServers();
    const stays = await joined(a, 'r', 'stays');
    const drops = await joined(a, 'r', 'drops');
    await stays.socket.next('peer-joined');
    drops.socket.terminate();
    await drops.socket.closed;
    const back = await joined(a, 'r', 'drops', { resume: drops.welcome['resume'] });
    expect(back.id).toBe(drops.id);
    expect(stays.socket.all.some((frame) => frame.type === 'peer-left')).toBe(false);
  });
});
