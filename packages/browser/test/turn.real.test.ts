import { filter, firstValueFrom, timeout } from 'rxjs';
import type { Observable } from 'rxjs';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createActor } from 'xstate';
import type { SnapshotFrom } from 'xstate';
import { callMachine, dataChannelOf } from '@parley/core';
import { peerMachineWithDelays } from '@parley/core/internal';
import type { CallPeerOptions, DataChannel, DataChannelActor, PeerActor, PeerEmitted } from '@parley/core';
import { createSignalingClient } from '@parley/signaling-ws/client';
import type { IceServerConfig, SignalingClient } from '@parley/signaling-ws/client';
import { createSignalingServer } from '@parley/signaling-ws/server';
import type { SignalingServer } from '@parley/signaling-ws/server';
import { keepLoopbackCandidates } from '../src/index.js';
import type { BrowserRtcPort } from '../src/index.js';
import { describeWithTurnServer, selectedCandidatePair, startTurnServer, toRtcIceServers } from './helpers/coturn.js';
import type { TurnServer } from './helpers/coturn.js';
import { waitFor } from './helpers/wait.js';
import { collectUnhandledRejections } from '../../core/test/helpers/unhandled-rejections.js';
import { createRealPort } from './helpers/wrtc.js';

// TURN through a real coturn on 127.0.0.1: parley-signaling (in process) hands each peer
// time-limited TURN REST credentials in `welcome.iceServers`; two call actors over real
// WebSocket signaling build libwebrtc peer connections from them with
// `iceTransportPolicy: 'relay'` (webrtc-pc RTCIceTransportPolicy: only relay candidates), so the
// only possible path goes through coturn. An expired credential is refused by coturn
// (401 Unauthorized, RFC 8489 §9.2.4) and the call must end with a typed reason, not hang.

const unhandledRejections = collectUnhandledRejections();

type CallActor = ReturnType<typeof createActor<typeof callMachine>>;

/** One side of a call: its signaling client, call actor, and what its peer reported. */
interface CallSide {
  readonly name: string;
  readonly client: SignalingClient;
  /** Its id in the room, from `welcome`. */
  readonly id: string;
  /** `welcome.iceServers`: coturn's URL with a TURN REST credential for this peer. */
  readonly iceServers: readonly IceServerConfig[];
  call: CallActor | null;
  /** The RTC port the call's peer runs on (set when the call goes active). */
  port: BrowserRtcPort | null;
  readonly peerEvents: PeerEmitted[];
  readonly channels: DataChannel[];
  readonly received: unknown[];
}

let turn: TurnServer | null = null;
const signalingServers: SignalingServer[] = [];
const clients: SignalingClient[] = [];
const sides: CallSide[] = [];

afterEach(async () => {
  for (const side of sides.splice(0)) {
    side.call?.stop();
    side.port?.pc.close();
  }
  for (const client of clients.splice(0)) client.close();
  for (const server of signalingServers.splice(0)) await server.close();
  expect(unhandledRejections.splice(0)).toEqual([]);
});

const ROOM = 'turn-room';

async function startSignaling(options: { readonly ttlSeconds: number; readonly now?: () => number }): Promise<SignalingServer> {
  if (turn === null) throw new Error('no TURN server');
  const server = await createSignalingServer({
    host: '127.0.0.1',
    port: 0,
    turn: { urls: [turn.url], secret: turn.secret, ttlSeconds: options.ttlSeconds },
    logger: () => undefined,
    ...(options.now ? { now: options.now } : {}),
  });
  signalingServers.push(server);
  return server;
}

function first<T>(source: Observable<T>, predicate: (value: T) => boolean, what: string, ms = 5000): Promise<T> {
  return firstValueFrom(source.pipe(filter(predicate), timeout({ first: ms, with: () => { throw new Error(`timed out waiting for ${what}`); } })));
}

/** Joins the room and waits for `welcome` (its id and its ICE servers). */
async function join(server: SignalingServer, name: string): Promise<CallSide> {
  const client = createSignalingClient({ url: server.url, room: ROOM, name, webSocket: WebSocket });
  clients.push(client);
  const self = await first(client.self$, (value) => value !== null, `${name}'s welcome`);
  const iceServers = await first(client.iceServers$, (servers) => servers.length > 0, `${name}'s iceServers`);
  const side: CallSide = { name, client, id: self!.id, iceServers, call: null, port: null, peerEvents: [], channels: [], received: [] };
  sides.push(side);
  return side;
}

/** `welcome.iceServers` as this side's only ICE servers, relay candidates only. */
function relayOnlyConfig(side: CallSide): RTCConfiguration {
  return { iceServers: toRtcIceServers(side.iceServers), iceTransportPolicy: 'relay' };
}

/** Starts `side`'s call actor towards `remoteId`; records its peer's events and channels. */
function startCall(side: CallSide, remoteId: string, machine: typeof callMachine, peer: CallPeerOptions): CallActor {
  const call = createActor(machine, {
    input: {
      signaling: side.client.portFor(remoteId),
      createRtc: () => {
        side.port = createRealPort(relayOnlyConfig(side));
        return side.port;
      },
      peer,
    },
  });
  // The peer child is invoked on entering `active`; this observer sees it at the end of that
  // same transition. Its local channels are already in its context (their `datachannel` event
  // went out before anyone could listen), and its RTC events all come later, asynchronously.
  let watched: PeerActor | undefined;
  call.subscribe((snapshot: SnapshotFrom<typeof callMachine>) => {
    const child = snapshot.children['peer'];
    if (child === undefined || child === watched) return;
    watched = child;
    child.on('*', (event) => side.peerEvents.push(event));
    const adoptChannels = (actors: readonly DataChannelActor[]): void => {
      for (const channel of actors.map(dataChannelOf)) {
        if (side.channels.includes(channel)) continue;
        side.channels.push(channel);
        channel.message$.subscribe((data) => side.received.push(data));
      }
    };
    adoptChannels(child.getSnapshot().context.channels);
    child.subscribe((peerSnapshot) => adoptChannels(peerSnapshot.context.channels));
  });
  side.call = call;
  call.start();
  return call;
}

const peerOf = (side: CallSide): PeerActor | undefined => side.call?.getSnapshot().children['peer'];
const isOpen = (channel: DataChannel | undefined): boolean => channel?.readyState === 'open';

describeWithTurnServer('TURN relay through coturn (real libwebrtc peers)', () => {
  beforeAll(async () => {
    turn = await startTurnServer();
  });
  afterAll(async () => {
    await turn?.dispose();
    turn = null;
  });

  it('two relay-only peers with the iceServers from welcome connect through coturn and carry data both ways', async () => {
    const server = await startSignaling({ ttlSeconds: 600 });
    const alice = await join(server, 'alice');
    const bob = await join(server, 'bob');

    // welcome carries coturn's URL with a REST credential for this peer that has not expired.
    for (const side of [alice, bob]) {
      const entry = side.iceServers.find((ice) => ice.username !== undefined);
      expect(entry?.urls).toEqual([turn!.url]);
      const [expiry, id] = entry!.username!.split(':');
      expect(id).toBe(side.id);
      expect(Number(expiry)).toBeGreaterThan(Date.now() / 1000);
    }

    const peer: CallPeerOptions = { candidateFilter: keepLoopbackCandidates, dataChannels: [{ label: 'chat' }] };
    const caller = startCall(alice, bob.id, callMachine, peer);
    const callee = startCall(bob, alice.id, callMachine, peer);
    caller.send({ type: 'CALL' });
    await waitFor(() => callee.getSnapshot().matches('incoming'), "bob's phone ringing");
    callee.send({ type: 'ACCEPT' });

    await waitFor(
      () => [alice, bob].every((side) => peerOf(side)?.getSnapshot().context.connectionState === 'connected'),
      'both peers connected through the relay',
    );
    await waitFor(() => isOpen(alice.channels[0]) && isOpen(bob.channels[0]), "the 'chat' channel open on both sides");
    alice.channels[0]!.send('hello over TURN');
    bob.channels[0]!.send('and back');
    await waitFor(() => bob.received.length === 1 && alice.received.length === 1, 'one message each way');
    expect(bob.received).toEqual(['hello over TURN']);
    expect(alice.received).toEqual(['and back']);

    // The selected pair (webrtc-stats RTCTransportStats.selectedCandidatePairId) is relay at both
    // ends, each end one of coturn's relay ports: the data went through coturn. Read while data
    // flows: libwebrtc caches a stats report for a moment, and the controlling side may nominate
    // another relay pair after the first messages; a full-suite run once read a selected pair
    // with nothing received yet.
    const carrying = (pair: Awaited<ReturnType<typeof selectedCandidatePair>>): boolean => pair !== null && pair.bytesSent > 0 && pair.bytesReceived > 0;
    let pairs = await Promise.all([alice, bob].map((side) => selectedCandidatePair(side.port!.pc)));
    for (let attempt = 0; attempt < 50 && !pairs.every(carrying); attempt += 1) {
      alice.channels[0]!.send('still here');
      bob.channels[0]!.send('still here');
      await new Promise((resolve) => setTimeout(resolve, 100));
      pairs = await Promise.all([alice, bob].map((side) => selectedCandidatePair(side.port!.pc)));
    }
    for (const [index, side] of [alice, bob].entries()) {
      const pair = pairs[index] ?? null;
      expect(pair, `${side.name}'s selected candidate pair`).not.toBeNull();
      for (const end of [pair!.local, pair!.remote]) {
        expect(end.candidateType).toBe('relay');
        expect(end.address).toBe('127.0.0.1');
        expect(end.port).toBeGreaterThanOrEqual(turn!.relayPorts.min);
        expect(end.port).toBeLessThanOrEqual(turn!.relayPorts.max);
      }
      expect(pair!.bytesSent).toBeGreaterThan(0);
      expect(pair!.bytesReceived).toBeGreaterThan(0);
    }

    caller.send({ type: 'HANGUP' });
    await waitFor(() => callee.getSnapshot().matches('ended'), 'bob sees the hang-up');
    expect(callee.getSnapshot().context.end?.reason).toBe('remote-hangup');
  });

  it('an expired TURN credential ends the call with a typed reason (turn-unauthorized) instead of hanging', async () => {
    // The server's clock runs an hour behind and credentials live 60 s: every credential in
    // `welcome` expired long ago, as for a page that kept its credentials past their TTL.
    const server = await startSignaling({ ttlSeconds: 60, now: () => Date.now() - 3_600_000 });
    const alice = await join(server, 'alice');
    const bob = await join(server, 'bob');
    for (const side of [alice, bob]) {
      const expiry = Number(side.iceServers.find((ice) => ice.username !== undefined)!.username!.split(':')[0]);
      expect(expiry).toBeLessThan(Date.now() / 1000);
    }

    // Short recovery so that the test takes seconds: with no relay candidate at all ICE stays
    // "new" after negotiation; connectTimeout bounds that, then one ICE restart is tried.
    const quickMachine = callMachine.provide({ actors: { peer: peerMachineWithDelays({ connectTimeout: 1500, iceRestartBackoff: 300 }) } });
    const peer: CallPeerOptions = { candidateFilter: keepLoopbackCandidates, dataChannels: [{ label: 'chat' }], maxIceRestarts: 1 };
    const caller = startCall(alice, bob.id, quickMachine, peer);
    const callee = startCall(bob, alice.id, quickMachine, peer);
    caller.send({ type: 'CALL' });
    await waitFor(() => callee.getSnapshot().matches('incoming'), "bob's phone ringing");
    callee.send({ type: 'ACCEPT' });

    await waitFor(() => caller.getSnapshot().matches('ended') && callee.getSnapshot().matches('ended'), 'both calls ended', 15_000);

    // Each side's peer saw coturn refuse the credential (webrtc-pc RTCPeerConnectionIceErrorEvent).
    for (const side of [alice, bob]) {
      const refusals = side.peerEvents.filter(
        (event) => event.type === 'notice' && event.notice === 'ice-candidate-error' && event.detail.startsWith('401'),
      );
      expect(refusals.length, `${side.name}'s 401 notices`).toBeGreaterThan(0);
      expect(side.peerEvents.some((event) => event.type === 'connectionstatechange' && event.state === 'connected')).toBe(false);
    }

    // A side ends `connection-failed` because of the refusal, or, when the other side failed a
    // moment earlier, on its `bye` (reason connection-failed). At least one failed by itself.
    const ends = [caller, callee].map((call) => call.getSnapshot().context.end);
    for (const end of ends) {
      if (end?.reason === 'connection-failed') {
        expect(end.connectionFailure).toBe('turn-unauthorized');
        expect(end.detail).toBe(`TURN server refused the credentials: 401 Unauthorized (${turn!.url}); ICE restart attempts exhausted (1)`);
      } else {
        expect(end).toMatchObject({ reason: 'remote-hangup', remoteReason: 'connection-failed' });
      }
    }
    expect(ends.some((end) => end?.connectionFailure === 'turn-unauthorized')).toBe(true);
  });
});
