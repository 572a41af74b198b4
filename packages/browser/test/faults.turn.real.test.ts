import { afterEach, beforeEach, expect, it } from 'vitest';
import { createPeer } from '@parley/core';
import type { DataChannel, Peer, PeerAppEvent, PeerDelays } from '@parley/core';
import { createSignalingPair } from '@parley/core/testing';
import { keepLoopbackCandidates } from '../src/index.js';
import type { BrowserRtcPort } from '../src/index.js';
import { describeWithTurnServer, selectedCandidatePair, startTurnServer, turnRestCredential } from './helpers/coturn.js';
import type { SelectedCandidatePair, TurnServer } from './helpers/coturn.js';
import { waitFor } from './helpers/wait.js';
import { collectUnhandledRejections } from '../../core/test/helpers/unhandled-rejections.js';
import { createRealPort } from './helpers/wrtc.js';

// Connectivity loss on a relayed path: two relay-only libwebrtc peers talk through a real coturn
// on 127.0.0.1, and the TURN server is stopped under them. libwebrtc notices only when consent
// checks (RFC 7675) go unanswered: measured here, `disconnected` comes 5 to 8 s after the relay
// vanishes and `failed` 10 s after that; now and then (seen only with another test file running)
// it skips `disconnected` and reports `failed` 15 s after. On either report the connection
// machine (after `disconnectedGrace` for `disconnected`) has the impolite peer restart ICE
// (webrtc-pc §4.4.1.5, RFC 8445 §9) with backoff; a restarted ICE gathers new relay candidates
// once coturn is back, and DTLS and SCTP run on over the new pair, so the same data channel
// carries data again. If the relay never returns, both peers give up after `maxIceRestarts`
// with a reason.

const unhandledRejections = collectUnhandledRejections();

/** libwebrtc's own detection (5 to 8 s, at worst 15 s) with room for a loaded machine. */
const DETECTION_BOUND_MS = 25_000;
/** From `disconnected` (or `failed`) to the next negotiated ICE restart: grace plus signaling. */
const RESTART_BOUND_MS = 10_000;
/**
 * From the relay being back to connected: what is left of the current attempt (its backoff, or
 * its restarted checks' 5 s connectTimeout), then the next restart's gathering and checks. Seen
 * to pass 15 s once in 8 runs with the machine oversubscribed fivefold, hence 20 s.
 */
const RECOVERY_BOUND_MS = 20_000;
/** Above the sum of the bounds a test waits for, so a failure names what it waited for. */
const TEST_TIMEOUT_MS = 70_000;

interface RelayedPeer {
  readonly name: string;
  readonly peer: Peer;
  readonly port: BrowserRtcPort;
  readonly events: PeerAppEvent[];
  readonly channels: DataChannel[];
  readonly received: unknown[];
  /** Labels of this side's channels that closed (a channel emits `close` on reaching closed). */
  readonly closedChannels: string[];
}

let turn: TurnServer | null = null;
const peers: RelayedPeer[] = [];

beforeEach(async () => {
  // Each test stops its TURN server, so each gets its own.
  turn = await startTurnServer();
});

afterEach(async () => {
  for (const relayed of peers.splice(0)) {
    if (relayed.peer.actor.getSnapshot().status === 'active') relayed.peer.close();
  }
  await turn?.dispose();
  turn = null;
  expect(unhandledRejections.splice(0)).toEqual([]);
});

interface PairOptions {
  readonly maxIceRestarts: number;
  readonly delays: Partial<PeerDelays>;
}

/**
 * Two peers over in-memory signaling whose connections may use only coturn's relay candidates,
 * with REST credentials valid for ten minutes; alice (impolite) opens a 'chat' channel.
 */
function startRelayedPair(server: TurnServer, options: PairOptions): [RelayedPeer, RelayedPeer] {
  const [aliceSignaling, bobSignaling] = createSignalingPair();
  const expiry = Math.floor(Date.now() / 1000) + 600;
  const start = (name: string, polite: boolean, signaling: typeof aliceSignaling): RelayedPeer => {
    const port = createRealPort({
      iceServers: [{ urls: server.url, ...turnRestCredential(server.secret, expiry, name) }],
      iceTransportPolicy: 'relay',
    });
    const peer = createPeer({
      rtc: port,
      signaling,
      polite,
      candidateFilter: keepLoopbackCandidates,
      dataChannels: [{ label: 'chat' }],
      maxIceRestarts: options.maxIceRestarts,
      delays: options.delays,
    });
    const relayed: RelayedPeer = { name, peer, port, events: [], channels: [], received: [], closedChannels: [] };
    peer.events$.subscribe((event) => {
      relayed.events.push(event);
      if (event.type === 'datachannel') {
        relayed.channels.push(event.channel);
        event.channel.state$.subscribe((state) => state === 'closed' && relayed.closedChannels.push(event.label));
      }
      if (event.type === 'message') relayed.received.push(event.data);
    });
    peers.push(relayed);
    return relayed;
  };
  return [start('alice', false, aliceSignaling), start('bob', true, bobSignaling)];
}

const connectionStatesOf = (relayed: RelayedPeer, since = 0): string[] =>
  relayed.events.slice(since).flatMap((event) => (event.type === 'connectionstatechange' ? [event.state] : []));
const iceRestartsOf = (relayed: RelayedPeer, since = 0): number =>
  relayed.events.slice(since).filter((event) => event.type === 'negotiated' && event.iceRestart).length;
const isConnected = (relayed: RelayedPeer): boolean => relayed.peer.actor.getSnapshot().context.connectionState === 'connected';
const isOpen = (channel: DataChannel | undefined): boolean => channel?.readyState === 'open';

async function connectAndTalk(alice: RelayedPeer, bob: RelayedPeer): Promise<void> {
  await waitFor(() => isConnected(alice) && isConnected(bob), 'both peers connected through the relay');
  await waitFor(() => isOpen(alice.channels[0]) && isOpen(bob.channels[0]), "the 'chat' channel open on both sides");
  alice.channels[0]!.send('before, from alice');
  bob.channels[0]!.send('before, from bob');
  await waitFor(() => alice.received.length === 1 && bob.received.length === 1, 'one message each way');
}

/** The selected pair of `relayed`, checked to be relay at both ends, on coturn's relay ports. */
async function expectRelayedPair(relayed: RelayedPeer, server: TurnServer): Promise<SelectedCandidatePair> {
  const pair = await selectedCandidatePair(relayed.port.pc);
  expect(pair, `${relayed.name}'s selected candidate pair`).not.toBeNull();
  for (const end of [pair!.local, pair!.remote]) {
    expect(end.candidateType).toBe('relay');
    expect(end.port).toBeGreaterThanOrEqual(server.relayPorts.min);
    expect(end.port).toBeLessThanOrEqual(server.relayPorts.max);
  }
  return pair!;
}

describeWithTurnServer('TURN server outage under a relayed connection (real libwebrtc peers, coturn)', () => {
  it('the relay stops: the peers see the loss, alice restarts ICE, and once the relay is back the same channel carries data again', { timeout: TEST_TIMEOUT_MS }, async () => {
    const server = turn!;
    const [alice, bob] = startRelayedPair(server, {
      maxIceRestarts: 10,
      delays: { disconnectedGrace: 500, iceRestartBackoff: 1000, connectTimeout: 5000 },
    });
    await connectAndTalk(alice, bob);
    const pairBefore = await expectRelayedPair(alice, server);
    expect(iceRestartsOf(alice)).toBe(0);

    const [aliceMark, bobMark] = [alice.events.length, bob.events.length];
    await server.stop();
    const lost = (relayed: RelayedPeer, since: number): boolean =>
      connectionStatesOf(relayed, since).some((state) => state === 'disconnected' || state === 'failed');
    await waitFor(() => lost(alice, aliceMark) && lost(bob, bobMark), 'both peers reporting disconnected or failed', DETECTION_BOUND_MS);
    await waitFor(() => iceRestartsOf(alice, aliceMark) >= 1, 'an ICE restart negotiated by alice', RESTART_BOUND_MS);

    await server.restart();
    await waitFor(() => isConnected(alice) && isConnected(bob), 'both peers connected again', RECOVERY_BOUND_MS);
    // Still the same peers and the same channel actors, open all along (DTLS and SCTP outlive
    // an ICE restart: only the candidate pair under them changed).
    expect(alice.peer.actor.getSnapshot().status).toBe('active');
    expect(bob.peer.actor.getSnapshot().status).toBe('active');
    for (const relayed of [alice, bob]) {
      expect(relayed.channels).toHaveLength(1);
      expect(relayed.closedChannels).toEqual([]);
      expect(isOpen(relayed.channels[0])).toBe(true);
    }
    alice.channels[0]!.send('after, from alice');
    bob.channels[0]!.send('after, from bob');
    await waitFor(() => alice.received.length === 2 && bob.received.length === 2, 'one more message each way');
    expect(bob.received).toEqual(['before, from alice', 'after, from alice']);
    expect(alice.received).toEqual(['before, from bob', 'after, from bob']);

    // The new path goes through the restarted coturn too, on a new pair.
    const pairAfter = await expectRelayedPair(alice, server);
    await expectRelayedPair(bob, server);
    expect(pairAfter.id).not.toBe(pairBefore.id);
    // Only alice, the impolite peer, offered restarts (the default `iceRestartBy`); bob answered them.
    expect(iceRestartsOf(bob, bobMark)).toBe(0);
  });

  it('the relay never comes back: both peers end connection-failed after the ICE restart limit', { timeout: TEST_TIMEOUT_MS }, async () => {
    const server = turn!;
    const maxIceRestarts = 2;
    const [alice, bob] = startRelayedPair(server, {
      maxIceRestarts,
      delays: { disconnectedGrace: 300, iceRestartBackoff: 500, connectTimeout: 2000 },
    });
    await connectAndTalk(alice, bob);
    const aliceMark = alice.events.length;
    await server.stop();

    await waitFor(
      () => alice.peer.actor.getSnapshot().status === 'done' && bob.peer.actor.getSnapshot().status === 'done',
      'both peers to give up',
      DETECTION_BOUND_MS + RESTART_BOUND_MS,
    );
    for (const relayed of [alice, bob]) {
      expect(relayed.peer.actor.getSnapshot().output, relayed.name).toEqual({
        reason: 'connection-failed',
        detail: `ICE restart attempts exhausted (${maxIceRestarts})`,
      });
      expect(relayed.port.pc.connectionState).toBe('closed');
    }
    // The detail's count is alice's own: she asked for maxIceRestarts restarts. How many of them
    // were answered depends on libwebrtc's detection, which is not symmetric: bob may report
    // `disconnected` 5 s after the relay vanished while alice reports nothing until `failed` 15 s
    // after. Bob, the polite side, then waits out his own attempts for restarts that alice has not
    // asked for yet, and ends; alice's restart offers that follow have nobody left to answer them
    // (seen under load: both ended as above, with 0 restarts negotiated).
    expect(iceRestartsOf(alice, aliceMark)).toBeLessThanOrEqual(maxIceRestarts);
  });
});
