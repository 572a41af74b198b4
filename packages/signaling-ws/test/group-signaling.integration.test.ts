// Group calls over the real signaling server (127.0.0.1, random port) and real `ws` sockets,
// through `groupSignalingOf(client)`; the RTC side is core's fake network (the real-stack
// group test with libwebrtc lives elsewhere). Three members join, one closes its client, one
// leaves and rejoins.

import { firstValueFrom, filter, timeout } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createGroupCall } from '@parley/core';
import type { GroupCall, GroupStatus } from '@parley/core';
import { createFakeNetwork } from '@parley/core/testing';
import type { FakeRtcPort } from '@parley/core/testing';
import { createSignalingClient, groupSignalingOf } from '../src/client/index.js';
import type { SignalingClient } from '../src/client/index.js';
import { startServer } from './helpers/server.js';
import type { StartedServer } from './helpers/server.js';

const clients: SignalingClient[] = [];
const groups: GroupCall<FakeRtcPort>[] = [];
const servers: StartedServer[] = [];

afterEach(async () => {
  for (const group of groups.splice(0)) group.stop();
  for (const client of clients.splice(0)) client.close();
  for (const server of servers.splice(0)) await server.close();
});

const network = createFakeNetwork();

function member(url: string, name: string): { client: SignalingClient; group: GroupCall<FakeRtcPort> } {
  const client = createSignalingClient({ url, room: 'group-room', name, webSocket: WebSocket });
  clients.push(client);
  const group = createGroupCall<FakeRtcPort>({
    signaling: groupSignalingOf(client),
    createRtc: () => {
      const port = network.createPort();
      port.addTransceiver('audio');
      return port;
    },
    dataChannels: [{ label: 'chat' }],
    delays: { joinAnswerTimeout: 200 },
  });
  groups.push(group);
  return { client, group };
}

function until(group: GroupCall, predicate: (status: GroupStatus) => boolean, what: string): Promise<GroupStatus> {
  return firstValueFrom(group.status$.pipe(filter(predicate), timeout({ first: 8000, with: () => Promise.reject(new Error(`timed out waiting for ${what}`)) })));
}

const connectedWith = (count: number) => (status: GroupStatus) =>
  status.state === 'joined' && status.members.size === count && [...status.members.values()].every((m) => m.connection.connectionState === 'connected');

describe('groupSignalingOf', () => {
  it('three members meet in a group call through parley-signaling; a closed client and a leave drop out; a rejoin comes back', async () => {
    const server = await startServer();
    servers.push(server);
    const [ann, bob, cat] = ['ann', 'bob', 'cat'].map((name) => member(server.url, name)) as [ReturnType<typeof member>, ReturnType<typeof member>, ReturnType<typeof member>];
    await Promise.all([ann, bob, cat].map(({ client }) => firstValueFrom(client.peers$.pipe(filter((peers) => peers.length === 2)))));
    for (const { group } of [ann, bob, cat]) group.join();
    await Promise.all([ann, bob, cat].map(({ group }, index) => until(group, connectedWith(2), `member ${index} connected to both others`)));

    const annSelf = await firstValueFrom(ann.client.self$.pipe(filter((self) => self !== null)));
    const annId = annSelf.id;
    bob.group.leave();
    await Promise.all([ann, cat].map(({ group }) => until(group, connectedWith(1), 'bob dropped')));
    bob.group.join();
    await Promise.all([ann, bob, cat].map(({ group }) => until(group, connectedWith(2), 'bob back')));

    // Closing the client sends leave to the server: its peer-left drops ann from the others' calls.
    ann.client.close();
    await Promise.all([bob, cat].map(({ group }) => until(group, (status) => connectedWith(1)(status) && !status.members.has(annId), 'ann gone')));
    expect(bob.group.status().state).toBe('joined');
  });
});
