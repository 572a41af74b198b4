// TURN credential refresh on the wire: `welcome.iceServersExpireAt`, and `refresh-ice-servers`
// answered with `ice-servers` (fresh TURN REST credentials) for a joined peer only.

import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startServer, type StartedServer } from './helpers/server.js';
import { TestSocket } from './helpers/ws-client.js';

const servers: StartedServer[] = [];
const sockets: TestSocket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate();
  for (const server of servers.splice(0)) await server.close();
});

async function start(options: Parameters<typeof startServer>[0]): Promise<StartedServer> {
  const server = await startServer(options);
  servers.push(server);
  return server;
}

async function joined(server: StartedServer, name: string) {
  const result = await TestSocket.joined(server.url, 'ice', name);
  sockets.push(result.socket);
  return result;
}

const SECRET = 'turn-secret';
/** The TURN entry of a list, checked to be a valid TURN REST credential for `id`; its expiry in unix seconds. */
function turnExpiry(iceServers: unknown, id: string): number {
  const turn = (iceServers as { urls: unknown; username?: string; credential?: string }[]).find((ice) => ice.username !== undefined)!;
  expect(turn.urls).toEqual(['turn:turn.example']);
  const [expiry, peer] = turn.username!.split(':');
  expect(peer).toBe(id);
  expect(turn.credential).toBe(createHmac('sha1', SECRET).update(turn.username!).digest('base64'));
  return Number(expiry);
}

describe('TURN credential refresh (refresh-ice-servers)', () => {
  it('states the expiry in welcome and answers refresh-ice-servers with fresh credentials', async () => {
    let clock = 1_700_000_000_000;
    const server = await start({ now: () => clock, turn: { urls: ['turn:turn.example'], secret: SECRET, ttlSeconds: 60 } });
    const alice = await joined(server, 'alice');
    expect(alice.welcome['iceServersExpireAt']).toBe((1_700_000_000 + 60) * 1000);
    expect(turnExpiry(alice.welcome['iceServers'], alice.id)).toBe(1_700_000_000 + 60);

    clock += 45_000;
    alice.socket.send({ type: 'refresh-ice-servers' });
    const fresh = await alice.socket.next('ice-servers');
    expect(Object.keys(fresh).sort()).toEqual(['iceServers', 'iceServersExpireAt', 'type']);
    expect(fresh['iceServersExpireAt']).toBe((1_700_000_045 + 60) * 1000);
    expect(turnExpiry(fresh['iceServers'], alice.id)).toBe(1_700_000_045 + 60);
  });

  it('refuses refresh-ice-servers before join with not-joined', async () => {
    const server = await start({ turn: { urls: ['turn:turn.example'], secret: SECRET, ttlSeconds: 60 } });
    const socket = await TestSocket.open(server.url);
    sockets.push(socket);
    socket.send({ type: 'refresh-ice-servers' });
    expect(await socket.nextError()).toBe('not-joined');
  });

  it('without TURN: no expiry in welcome, and a refresh gets the same list without one', async () => {
    const server = await start({ stunUrls: ['stun:stun.example'] });
    const alice = await joined(server, 'alice');
    expect(alice.welcome).not.toHaveProperty('iceServersExpireAt');
    alice.socket.send({ type: 'refresh-ice-servers' });
    expect(await alice.socket.next('ice-servers')).toEqual({ type: 'ice-servers', iceServers: [{ urls: ['stun:stun.example'] }] });
  });
});
