import { afterEach, describe, expect, it } from 'vitest';
import { callMachine } from '@parley/core';
import { peerMachineWithDelays } from '@parley/core/internal';
import type { PeerAppEvent, PeerConnectionState } from '@parley/core';
import type { SignalingClient } from '@parley/signaling-ws/client';
import { createSignalingServer } from '@parley/signaling-ws/server';
import type { SignalingServer } from '@parley/signaling-ws/server';
import { keepLoopbackCandidates } from '../src/index.js';
import { killAllChildren } from './helpers/child-process.js';
import { joinRoom } from './helpers/room.js';
import type { TrackedClient } from './helpers/room.js';
import { startRemotePeerProcess } from './helpers/peer-process.js';
import { startRealCall } from './helpers/real-call.js';
import { waitFor } from './helpers/wait.js';
import type { RealCallSide } from './helpers/real-call.js';

// Fault: the remote side of a connected call vanishes without a `bye`. Nothing tells us: the
// only evidence is that ICE connectivity checks (RFC 8445 §7.2) and consent freshness
// (RFC 7675) stop being answered. The call must still end, with a reason, within what the
// configured recovery delays allow once libwebrtc reports the loss.
//
// Measured here (libwebrtc of @roamhq/wrtc 0.10, loopback, 2 cores), from the moment the remote
// went away to the first loss our side reported:
// - remote process SIGKILLed (silence): `disconnected` after 5.03-5.08 s in 8 runs of 10, and
//   straight to `failed` after 15.19 s in the other 2;
// - remote pc.close()d (its DTLS and SCTP teardown does arrive): our data channel closes within
//   ~5 ms, but the connection stays `connected` until `failed` after 15.19-15.23 s (4 runs of 4).
// Both are libwebrtc's own timers: a candidate pair turns unwritable (`disconnected`) only after
// several unanswered checks spread over at least 5 s, and times out (`failed`) 15 s after its
// last response, whichever comes first; RFC 7675 §5.1 allows up to 30 s for consent to expire.
// The end of the call is bounded from that report, not from a fixed sleep.

/** libwebrtc reports a dead path `failed` at the latest this long after it went silent. */
const LIBWEBRTC_DEAD_PAIR_MS = 15_000;
/** Our event loop may hear of it late when other test files load the machine. */
const DETECTION_BOUND_MS = LIBWEBRTC_DEAD_PAIR_MS + 2000;

/**
 * Short recovery delays, so that a dead peer ends the call in well under a second once libwebrtc
 * reports the loss. The defaults (2 s grace, backoffs of 1 s, 2 s, ...) would take 5 s here, past
 * the bound below: the test fails if these delays do not reach the call's peer.
 */
const DELAYS = { disconnectedGrace: 250, iceRestartBackoff: 250, connectTimeout: 500 } as const;
const MAX_ICE_RESTARTS = 2;
/** Timers on a loaded machine fire late; the bounds below allow this much on top. */
const SLACK_MS = 1000;
/** The longest the recovery policy may take from libwebrtc's report to the end of the call:
 * the grace (for `disconnected`), then for every attempt its offer/answer (at most connectTimeout:
 * a gone peer never answers), its backoff and, if restarted checks ran, their connectTimeout
 * (connection machine, `recovering`). */
const RECOVERY_BOUND_MS =
  DELAYS.disconnectedGrace + MAX_ICE_RESTARTS * (DELAYS.connectTimeout + DELAYS.iceRestartBackoff + DELAYS.connectTimeout) + SLACK_MS;

// The call machine takes the peer's options in its input, and the peer's delays through the
// peer machine it runs.
const callWithShortRecovery = callMachine.provide({ actors: { peer: peerMachineWithDelays(DELAYS) } });
const PEER_OPTIONS = { candidateFilter: keepLoopbackCandidates, dataChannels: [{ label: 'chat' }], maxIceRestarts: MAX_ICE_RESTARTS };

const ROOM = 'faults-peer-gone';
/** The server keeps a dropped peer this long for a resume, then tells the room `peer-left`. */
const RESUME_GRACE_MS = 1000;

const clients: SignalingClient[] = [];
const calls: RealCallSide[] = [];
const servers: SignalingServer[] = [];

afterEach(async () => {
  for (const side of calls.splice(0)) side.stop();
  for (const client of clients.splice(0)) client.close();
  await killAllChildren();
  for (const server of servers.splice(0)) await server.close();
});

async function startServer(): Promise<SignalingServer> {
  const server = await createSignalingServer({ host: '127.0.0.1', port: 0, resumeGraceMs: RESUME_GRACE_MS, logger: () => {} });
  servers.push(server);
  return server;
}

function join(url: string, name: string): TrackedClient {
  const tracked = joinRoom({ url, room: ROOM, name });
  clients.push(tracked.client);
  return tracked;
}

const isConnectionState = (event: PeerAppEvent): event is Extract<PeerAppEvent, { type: 'connectionstatechange' }> =>
  event.type === 'connectionstatechange';

/** The connection states our peer reported after `since`, with their time relative to it. */
function connectionStatesAfter(side: RealCallSide, since: number): { readonly state: PeerConnectionState; readonly after: number }[] {
  return side.peerEvents.flatMap(({ at, event }) => (at >= since && isConnectionState(event) ? [{ state: event.state, after: at - since }] : []));
}

/** Waits for the call to end and checks how and when, against libwebrtc's report of the loss. */
async function expectEndedByRecovery(side: RealCallSide, goneAt: number): Promise<void> {
  await waitFor(() => side.call.getSnapshot().matches('ended'), 'the call to end', DETECTION_BOUND_MS + RECOVERY_BOUND_MS);
  const endedAt = Date.now();
  const context = side.call.getSnapshot().context;
  // Ended by our recovery policy, not by a message from the remote side (there was none).
  expect(context.end?.reason).toBe('connection-failed');
  expect(context.end?.endedBy).toBe('local');
  expect(context.end?.remoteReason).toBeNull();
  expect(context.end?.connectionFailure).toBe('connection-failed');
  expect(context.end?.detail).toBe(`ICE restart attempts exhausted (${MAX_ICE_RESTARTS})`);

  const states = connectionStatesAfter(side, goneAt);
  const loss = states.find(({ state }) => state === 'disconnected' || state === 'failed');
  expect(loss, `libwebrtc reported no loss; states: ${JSON.stringify(states)}`).toBeDefined();
  expect(loss!.after).toBeLessThanOrEqual(DETECTION_BOUND_MS);
  expect(endedAt - (goneAt + loss!.after)).toBeLessThanOrEqual(RECOVERY_BOUND_MS);
}

describe('the remote peer disappears without a bye (real libwebrtc, real signaling server)', () => {
  it('its process is killed: our call ends connection-failed within the configured recovery time', { timeout: 40_000 }, async () => {
    const server = await startServer();
    const remote = await startRemotePeerProcess({ url: server.url, room: ROOM, name: 'bob' });
    const alice = join(server.url, 'alice');
    await waitFor(() => alice.peerIds().includes(remote.id), 'alice seeing bob in the room', 5000);

    const caller = startRealCall({ signaling: alice.client.portFor(remote.id), logic: callWithShortRecovery, peer: PEER_OPTIONS });
    calls.push(caller);
    caller.call.send({ type: 'CALL' });
    await waitFor(() => caller.peer()?.getSnapshot().context.connectionState === 'connected', 'our side connected', 10_000);
    await remote.reported('channel', 'chat', 10_000);

    // SIGKILL: no bye, no leave, no DTLS close_notify; its UDP and TCP sockets are just gone.
    await remote.process.kill('SIGKILL');
    const killedAt = Date.now();
    await expectEndedByRecovery(caller, killedAt);

    // The server noticed too: after its resume grace it told the room bob left (peer-left).
    // The call does not read presence (its port carries only peer messages): it ended on ICE.
    expect(alice.peerIds()).not.toContain(remote.id);
  });

  it('its connection is closed and its signaling socket dropped, as when a tab is closed: the data channel closes at once, the call ends once ICE fails', { timeout: 40_000 }, async () => {
    const server = await startServer();
    const alice = join(server.url, 'alice');
    const bob = join(server.url, 'bob');
    await waitFor(() => alice.peerIds().length === 1 && bob.peerIds().length === 1, 'both in the room', 5000);
    const caller = startRealCall({ signaling: alice.client.portFor(bob.id()!), logic: callWithShortRecovery, peer: PEER_OPTIONS });
    const callee = startRealCall({ signaling: bob.client.portFor(alice.id()!), logic: callWithShortRecovery, peer: PEER_OPTIONS, autoAccept: true });
    calls.push(caller, callee);
    caller.call.send({ type: 'CALL' });
    await waitFor(() => [caller, callee].every((side) => side.channel('chat')?.readyState === 'open'), 'the chat channel open on both sides', 10_000);
    const chat = caller.channel('chat')!;

    // Stopping an actor runs no transition actions: the callee sends no bye. Its peer's port is
    // closed (pc.close(): DTLS close_notify and SCTP ABORT go out), and its signaling socket is
    // closed without `leave`, so the server keeps bob for a resume, then sends peer-left.
    callee.call.stop();
    bob.client.actor.stop();
    clients.splice(clients.indexOf(bob.client), 1); // stopped: nothing left to close
    const goneAt = Date.now();

    // The data channel learns at once (the remote tore down its SCTP association and DTLS
    // session, RFC 8261), the connection does not: ICE still sees a selected pair.
    await waitFor(() => chat.readyState === 'closed', 'our end of the chat channel to close', 2000);
    expect(caller.call.getSnapshot().matches({ peerRunning: 'active' })).toBe(true);

    await expectEndedByRecovery(caller, goneAt);
  });
});
