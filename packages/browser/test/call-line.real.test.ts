import { filter } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { createCall } from '@parley/core';
import type { Call, CallAppEvent, CallStatus } from '@parley/core';
import { createSignalingServer } from '@parley/signaling-ws/server';
import type { SignalingServer } from '@parley/signaling-ws/server';
import { keepLoopbackCandidates } from '../src/index.js';
import type { BrowserRtcPort } from '../src/index.js';
import { joinRoom } from './helpers/room.js';
import type { TrackedClient } from './helpers/room.js';
import { waitFor } from './helpers/wait.js';
import { createRealPort } from './helpers/wrtc.js';

// createCall as an app runs it on the real stack: one call line per remote peer over the
// signaling client's port, real libwebrtc connections (loopback only), and the client's
// peerLeft$ wired to the line, through an in-process parley-signaling.

/** The server keeps a dropped peer's place this long before it tells the room peer-left. */
const RESUME_GRACE_MS = 300;

let server: SignalingServer | null = null;
const lines: Call[] = [];
const clients: TrackedClient[] = [];
const ports: BrowserRtcPort[] = [];

afterEach(async () => {
  for (const line of lines.splice(0)) line.stop();
  for (const port of ports.splice(0)) port.close();
  for (const { client } of clients.splice(0)) client.close();
  await server?.close();
  server = null;
});

interface Side {
  readonly tracked: TrackedClient;
  readonly line: Call;
  readonly statuses: CallStatus[];
  readonly events: CallAppEvent[];
}

async function twoSides(): Promise<{ readonly alice: Side; readonly bob: Side }> {
  server = await createSignalingServer({ host: '127.0.0.1', port: 0, resumeGraceMs: RESUME_GRACE_MS });
  const url = server.url;
  const join = (name: string) => {
    const tracked = joinRoom({ url, room: 'call-line', name });
    clients.push(tracked);
    return tracked;
  };
  const aliceClient = join('alice');
  const bobClient = join('bob');
  await waitFor(() => aliceClient.peerIds().length === 1 && bobClient.peerIds().length === 1, 'alice and bob to see each other');
  const side = (tracked: TrackedClient): Side => {
    const remoteId = tracked.peerIds()[0]!;
    const line = createCall({
      signaling: tracked.client.portFor(remoteId),
      createRtc: () => {
        const port = createRealPort();
        ports.push(port);
        return port;
      },
      peer: { candidateFilter: keepLoopbackCandidates, dataChannels: [{ label: 'chat' }] },
    });
    lines.push(line);
    tracked.client.peerLeft$.pipe(filter((peer) => peer.id === remoteId)).subscribe(() => line.remoteLeft());
    const statuses: CallStatus[] = [];
    const events: CallAppEvent[] = [];
    line.status$.subscribe((status) => statuses.push(status));
    line.events$.subscribe((event) => events.push(event));
    return { tracked, line, statuses, events };
  };
  return { alice: side(aliceClient), bob: side(bobClient) };
}

const connected = (side: Side) => side.line.status().connection?.connectionState === 'connected';

describe('createCall on the real stack (libwebrtc, parley-signaling)', () => {
  it('call, accept, chat both ways and hang up, with the connection states on status$', async () => {
    const { alice, bob } = await twoSides();
    alice.line.call({ audio: false, video: false });
    await waitFor(() => bob.line.status().state === 'incoming', 'bob ringing');
    bob.line.accept();
    await waitFor(() => connected(alice) && connected(bob), 'both connected');

    // What a state panel shows: the states the connection went through on the way up, in order.
    // (libwebrtc in Node may pass over `connecting`: see createRtcPort.)
    const seen = (side: Side, key: 'connectionState' | 'iceConnectionState' | 'signalingState') =>
      side.statuses.flatMap((status) => (status.connection ? [status.connection[key]] : []));
    const order = ['new', 'connecting', 'connected'];
    const states = seen(alice, 'connectionState');
    expect(states[0]).toBe('new');
    expect(states.at(-1)).toBe('connected');
    expect(states.map((state) => order.indexOf(state))).toEqual([...states.map((state) => order.indexOf(state))].sort());
    expect(seen(alice, 'signalingState')).toContain('have-local-offer');
    expect(seen(bob, 'signalingState')).toContain('have-remote-offer');
    expect(alice.statuses.map((status) => status.state)).toEqual(['idle', 'outgoing', ...seen(alice, 'connectionState').map(() => 'active')]);

    const channelOf = (side: Side) => {
      const event = side.events.find((candidate) => candidate.type === 'datachannel' && candidate.label === 'chat');
      return event?.type === 'datachannel' ? event.channel : undefined;
    };
    await waitFor(() => [alice, bob].every((side) => channelOf(side)?.readyState === 'open'), 'chat open on both sides');
    channelOf(alice)!.send('hi bob');
    channelOf(bob)!.send(new Uint8Array([1, 2, 3]));
    const received = (side: Side) => side.events.flatMap((event) => (event.type === 'message' ? [event.data] : []));
    await waitFor(() => received(alice).length === 1 && received(bob).length === 1, 'a message on each side');
    expect(received(bob)).toEqual(['hi bob']);
    expect(new Uint8Array(received(alice)[0] as ArrayBuffer)).toEqual(new Uint8Array([1, 2, 3]));

    bob.line.hangup();
    await waitFor(() => alice.line.status().state === 'ended', 'alice told');
    expect(alice.line.status().end).toMatchObject({ reason: 'remote-hangup', endedBy: 'remote' });
    expect(ports.every((port) => port.pc.connectionState === 'closed')).toBe(true);
  });

  it('a call to someone who leaves the room ends unavailable once the server says so, not after ringing out', async () => {
    const { alice, bob } = await twoSides();
    alice.line.call();
    await waitFor(() => bob.line.status().state === 'incoming', 'bob ringing');
    const leftAt = Date.now();
    bob.tracked.client.close(); // bob closes the tab: leave goes out, the server tells the room
    await waitFor(() => alice.line.status().state === 'ended', 'alice told that bob left');
    expect(alice.line.status().end).toMatchObject({ reason: 'unavailable', endedBy: 'remote', detail: 'the callee left the room' });
    expect(Date.now() - leftAt).toBeLessThan(5_000); // the ring timeout is 30 s
    // Only alice's early connection (she negotiates while the invite rings), closed when the call ended.
    expect(ports).toHaveLength(1);
    expect(ports[0]!.pc.connectionState).toBe('closed');
  });

});
