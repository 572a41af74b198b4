import { afterEach, describe, expect, it } from 'vitest';
import type { DataChannel } from '@parley/core';
import type { SignalingClient } from '@parley/signaling-ws/client';
import { keepLoopbackCandidates } from '../src/index.js';
import { joinRoom } from './helpers/room.js';
import type { TrackedClient } from './helpers/room.js';
import { renegotiateWithAudio, startRealCall } from './helpers/real-call.js';
import { sleep, waitFor } from './helpers/wait.js';
import type { RealCallSide } from './helpers/real-call.js';
import { startSignalingNode } from '@parley/signaling-ws/testing';
import type { SignalingNode } from '@parley/signaling-ws/testing';

// Fault: the signaling server dies (SIGKILL: no close frame, no shutdown) in the middle of a call
// between two real libwebrtc peers, and comes back on the same port with the same resume secret.
// Signaling only sets calls up and renegotiates them; media and data flow peer to peer, so:
// - the data channel keeps flowing while the server is gone, nothing lost or reordered (SCTP
//   reliable ordered delivery, RFC 8831 §6.1, over DTLS over the still-valid ICE pair);
// - both clients reconnect and resume their ids (signed resume tokens);
// - a renegotiation afterwards (a new transceiver, webrtc-pc §4.7.3 negotiationneeded) goes
//   through the restarted server and completes on both sides;
// - the call never leaves `active`.

const RESUME_SECRET = 'faults-signaling-resume-secret';
const ROOM = 'faults-signaling';
/** One numbered message per side per tick. */
const MESSAGE_INTERVAL_MS = 20;
/** How long the server stays dead: about 75 messages each way. */
const OUTAGE_MS = 1500;

const clients: SignalingClient[] = [];
const calls: RealCallSide[] = [];
const timers: ReturnType<typeof setInterval>[] = [];
let server: SignalingNode | undefined;

afterEach(async () => {
  for (const timer of timers.splice(0)) clearInterval(timer);
  for (const side of calls.splice(0)) side.stop();
  for (const client of clients.splice(0)) client.close();
  await server?.kill();
  server = undefined;
});

function join(url: string, name: string): TrackedClient {
  // A fixed, short wait between reconnect attempts: the clients are back within ~100 ms of
  // the restart instead of after a jittered backoff that has grown during the outage.
  const tracked = joinRoom({ url, room: ROOM, name, delays: { reconnectBackoff: 100 } });
  clients.push(tracked.client);
  return tracked;
}

/** A numbered message stream on one channel; the far side checks the numbers. */
interface Stream {
  /** When each number was sent (index = number - 1). */
  readonly sentAt: number[];
  /** The numbers received at the far side, in arrival order, with their arrival time. */
  readonly received: { readonly n: number; readonly at: number }[];
}

function streamBetween(from: DataChannel, to: DataChannel): Stream {
  const stream: Stream = { sentAt: [], received: [] };
  to.message$.subscribe((data) => stream.received.push({ n: Number(data), at: Date.now() }));
  timers.push(
    setInterval(() => {
      stream.sentAt.push(Date.now());
      from.send(String(stream.sentAt.length));
    }, MESSAGE_INTERVAL_MS),
  );
  return stream;
}

/** Messages sent after `start` and received before `end`: they crossed while nothing else could. */
function crossedDuring(stream: Stream, start: number, end: number): number {
  return stream.received.filter(({ n, at }) => (stream.sentAt[n - 1] ?? Infinity) > start && at < end).length;
}

describe('signaling server killed mid-call (real libwebrtc, real parley-signaling process)', () => {
  it('data keeps flowing, the clients resume their ids, and a renegotiation afterwards succeeds', { timeout: 30_000 }, async () => {
    server = await startSignalingNode({ resumeSecret: RESUME_SECRET, args: ['--resume-grace', '5000'] });
    const port = server.port;
    const alice = join(server.url, 'alice');
    const bob = join(server.url, 'bob');
    await waitFor(() => alice.peerIds().length === 1 && bob.peerIds().length === 1, 'both clients joined and see each other', 5000);
    const aliceId = alice.id()!;
    const bobId = bob.id()!;

    const peer = { candidateFilter: keepLoopbackCandidates, dataChannels: [{ label: 'chat' }] };
    const caller = startRealCall({ signaling: alice.client.portFor(bobId), peer });
    const callee = startRealCall({ signaling: bob.client.portFor(aliceId), peer, autoAccept: true });
    calls.push(caller, callee);
    caller.call.send({ type: 'CALL' });

    const openChat = (side: RealCallSide): DataChannel | undefined => {
      const channel = side.channel('chat');
      return channel?.readyState === 'open' ? channel : undefined;
    };
    await waitFor(
      () =>
        [caller, callee].every((side) => side.peer()?.getSnapshot().context.connectionState === 'connected' && openChat(side) !== undefined),
      'call connected with the chat channel open on both sides',
      10_000,
    );
    const toCallee = streamBetween(openChat(caller)!, openChat(callee)!);
    const toCaller = streamBetween(openChat(callee)!, openChat(caller)!);
    await waitFor(() => toCallee.received.length >= 5 && toCaller.received.length >= 5, 'messages flowing both ways', 5000);

    // SIGKILL: the process cannot close anything; the kernel closes its sockets.
    const statusesBefore = [alice.statuses.length, bob.statuses.length];
    await server.kill();
    const killedAt = Date.now();
    await waitFor(() => [alice, bob].every((client, index) => client.statuses.slice(statusesBefore[index]).includes('reconnecting')), 'both clients noticing the server is gone', 5000);
    await sleep(OUTAGE_MS);
    const restartingAt = Date.now();
    // Nothing signaling-related could have carried these: the server was dead the whole time.
    expect(crossedDuring(toCallee, killedAt, restartingAt)).toBeGreaterThanOrEqual(20);
    expect(crossedDuring(toCaller, killedAt, restartingAt)).toBeGreaterThanOrEqual(20);

    await server.start();
    expect(server.port).toBe(port);
    await waitFor(
      () =>
        alice.status() === 'joined' &&
        bob.status() === 'joined' &&
        alice.peerIds().includes(bobId) &&
        bob.peerIds().includes(aliceId),
      'both clients joined again and seeing each other',
      5000,
    );
    // Resumed, not rejoined: the same ids, restored by the new process from the signed tokens.
    expect([alice.id(), bob.id()]).toEqual([aliceId, bobId]);
    await waitFor(() => server!.logEvents('join').length >= 2, 'the restarted server logging both joins', 2000);
    expect(server.logEvents('join').map((event) => [event['peer'], event['restored']]).sort()).toEqual(
      [[aliceId, true], [bobId, true]].sort(),
    );

    // Renegotiate through the restarted server: a new audio transceiver on the caller's side.
    await renegotiateWithAudio(caller, callee, 10_000);
    expect(caller.ports[0]!.pc.getTransceivers()).toHaveLength(1);
    expect(callee.ports[0]!.pc.getTransceivers()).toHaveLength(1);
    const track = callee.peerEvents.find(({ event }) => event.type === 'track')?.event;
    expect(track).toMatchObject({ type: 'track', track: { kind: 'audio' } });

    // Stop both streams and wait for the last message of each: none lost, none reordered.
    for (const timer of timers.splice(0)) clearInterval(timer);
    await waitFor(() => toCallee.received.length === toCallee.sentAt.length && toCaller.received.length === toCaller.sentAt.length, 'every message sent to arrive', 5000);
    for (const stream of [toCallee, toCaller]) {
      expect(stream.received.map(({ n }) => n)).toEqual(stream.sentAt.map((_, index) => index + 1));
    }

    // The call was never interrupted: idle -> outgoing/incoming -> active, and still active.
    expect(caller.states).toEqual(['idle', 'outgoing', 'active']);
    expect(callee.states).toEqual(['idle', 'incoming', 'active']);
    for (const side of [caller, callee]) {
      expect(side.peer()).toBeDefined();
      expect(side.peer()!.getSnapshot().context.connectionState).toBe('connected');
      expect(side.peerEvents.filter(({ event }) => event.type === 'error')).toEqual([]);
    }
    // The outage showed in the clients only as a reconnect, never as a fatal error.
    for (const client of [alice, bob]) {
      expect(client.statuses.filter((status) => status === 'closed')).toEqual([]);
      expect(client.errors.filter((error) => error.fatal)).toEqual([]);
    }
  });
});
