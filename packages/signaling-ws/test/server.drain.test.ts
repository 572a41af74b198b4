// Drain (issue 12): close() stops taking upgrades and joins, `/readyz` answers 503 while
// `/healthz` stays 200, every socket gets 1012, and it resolves once all are closed or
// `drainTimeoutMs` has passed. And TURN credential refresh: `refresh-ice-servers` is answered with
// an `ice-servers` frame carrying fresh TURN REST credentials and their expiry, as in `welcome`.

import { createHmac } from 'node:crypto';
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { useServers } from './helpers/server.js';
import { TestSocket } from './helpers/ws-client.js';

const { server, joined, open } = useServers();

function status(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('drain', () => {
  it('keeps /healthz 200 and answers /readyz 503 while sockets close with 1012; new upgrades get 503', async () => {
    const srv = await server({ drainTimeoutMs: 60_000 });
    expect(await status(srv.port, '/readyz')).toBe(200);
    const a = await joined(srv, 'r', 'a');
    const stuck = await joined(srv, 'r', 'stuck');
    // This client reads nothing, so it never answers the close frame: the drain waits for it.
    (stuck.socket.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    let drained = false;
    const closing = srv.close().then(() => (drained = true));
    expect(await a.socket.closed).toEqual({ code: 1012, reason: 'server restarting: reconnect' });
    expect(await status(srv.port, '/healthz')).toBe(200);
    expect(await status(srv.port, '/readyz')).toBe(503);
    await expect(TestSocket.open(srv.url)).rejects.toMatchObject({ status: 503 });
    expect(drained).toBe(false);
    // a never told peer-left by a server that is only restarting
    expect(a.socket.all.some((frame) => frame.type === 'peer-left')).toBe(false);
    stuck.socket.terminate();
    await closing;
    await expect(status(srv.port, '/healthz')).rejects.toThrow();
  });

  it('gives up on clients that never close after drainTimeoutMs and resolves', async () => {
    const srv = await server({ drainTimeoutMs: 200 });
    const stuck = await joined(srv, 'r', 'stuck');
    (stuck.socket.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    await srv.close();
    expect(srv.logs.some((e) => e.event === 'drain-timeout')).toBe(true);
    expect(srv.server.stats()).toMatchObject({ connections: 0, peers: 0 });
  });
});

describe('TURN credential refresh', () => {
  const secret = 'coturn-static-auth-secret';
  let clock = 1_700_000_000_000;

  it('puts iceServersExpireAt in welcome and answers refresh-ice-servers with fresh credentials', async () => {
    const srv = await server({ turn: { urls: ['turn:127.0.0.1:3478'], secret, ttlSeconds: 5 }, now: () => clock });
    const { socket, welcome, id } = await joined(srv, 'r', 'a');
    const first = Math.floor(clock / 1000) + 5;
    expect(welcome['iceServersExpireAt']).toBe(first * 1000);
    clock += 4000;
    socket.send({ type: 'refresh-ice-servers' });
    const frame = await socket.next('ice-servers');
    const expiry = Math.floor(clock / 1000) + 5;
    const username = `${expiry}:${id}`;
    expect(frame).toEqual({
      type: 'ice-servers',
      iceServers: [{ urls: ['turn:127.0.0.1:3478'], username, credential: createHmac('sha1', secret).update(username).digest('base64') }],
      iceServersExpireAt: expiry * 1000,
    });
  });

  it('has no expiry without TURN, and refuses a refresh before join (not-joined)', async () => {
    const srv = await server({ stunUrls: ['stun:127.0.0.1:3478'] });
    const socket = await open(srv);
    socket.send({ type: 'refresh-ice-servers' });
    expect(await socket.nextError()).toBe('not-joined');
    const welcome = await socket.join('r', 'a');
    expect(welcome['iceServersExpireAt']).toBeUndefined();
    socket.send({ type: 'refresh-ice-servers' });
    expect(await socket.next('ice-servers')).toEqual({ type: 'ice-servers', iceServers: [{ urls: ['stun:127.0.0.1:3478'] }] });
  });
});
