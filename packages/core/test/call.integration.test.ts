import { afterEach, describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import type { Actor, SnapshotFrom } from 'xstate';
import { callMachine, dataChannelOf } from '../src/index.js';
import { peerMachineWithDelays } from '../src/internal.js';
import type { CallEndReason, DataChannel, PeerActor, PeerMessage } from '../src/index.js';
import { createFakeNetwork, createSignalingPair } from '../src/testing/index.js';
import type { FakeNetwork, FakeRtcPort, FakeSignalingPort } from '../src/testing/index.js';
import { sleep, waitFor } from './helpers/wait-for.js';

// Two call machines end to end: the real peer machine in `active`, over fake RTC ports of one
// fake network (no scheduler: every fake step is a macrotask) and a fake signaling pair.



type CallLogic = typeof callMachine;
type CallActor = Actor<CallLogic>;
type CallSnapshot = SnapshotFrom<CallLogic>;

interface Side {
  readonly name: 'A' | 'B';
  readonly actor: CallActor;
  readonly signaling: FakeSignalingPort;
  /** Every RTC port this side's createRtc made. */
  readonly ports: FakeRtcPort[];
}

interface Calls {
  readonly network: FakeNetwork;
  readonly a: Side;
  readonly b: Side;
}

const actors: CallActor[] = [];

afterEach(() => {
  for (const actor of actors.splice(0)) actor.stop();
});

/** The call machine with small connection delays (the peer machine's named delays). */
function withConnectionDelays(delays: { disconnectedGrace: number; iceRestartBackoff: number; connectTimeout: number }): CallLogic {
  return callMachine.provide({ actors: { peer: peerMachineWithDelays(delays) } });
}

function startCalls(options: { logic?: CallLogic; maxIceRestarts?: number; sessions?: { a: string; b: string } } = {}): Calls {
  const network = createFakeNetwork();
  const [sigA, sigB] = createSignalingPair();
  const make = (name: 'A' | 'B', signaling: FakeSignalingPort, session: string | undefined): Side => {
    const ports: FakeRtcPort[] = [];
    const actor = createActor(options.logic ?? callMachine, {
      input: {
        signaling,
        createRtc: () => {
          const port = network.createPort({ name: `${name}${ports.length + 1}` });
          // Like an app adding its microphone before the machines take over.
          port.addTransceiver('audio');
          ports.push(port);
          return port;
        },
        peer: {
          dataChannels: [{ label: 'chat' }],
          ...(options.maxIceRestarts !== undefined ? { maxIceRestarts: options.maxIceRestarts } : {}),
        },
        ...(session !== undefined ? { createSessionId: () => session } : {}),
      },
    });
    actors.push(actor);
    actor.start();
    return { name, actor, signaling, ports };
  };
  return {
    network,
    a: make('A', sigA, options.sessions?.a),
    b: make('B', sigB, options.sessions?.b),
  };
}

const snap = (side: Side): CallSnapshot => side.actor.getSnapshot();

function peerOf(side: Side): PeerActor | undefined {
  return snap(side).children.peer;
}

const peerConnected = (side: Side): boolean => peerOf(side)?.getSnapshot().context.connectionState === 'connected';

/** The chat channel's handle, from the actor the peer machine spawned. */
function chatOf(side: Side): DataChannel | undefined {
  const actor = peerOf(side)
    ?.getSnapshot()
    .context.channels.find((channel) => channel.getSnapshot().context.label === 'chat');
  return actor && dataChannelOf(actor);
}

const chatOpen = (side: Side): boolean => chatOf(side)?.readyState === 'open';

async function bothActiveAndConnected(calls: Calls): Promise<void> {
  await waitFor(() => snap(calls.a).matches({ peerRunning: 'active' }) && snap(calls.b).matches({ peerRunning: 'active' }), 'both calls active');
  await waitFor(() => peerConnected(calls.a) && peerConnected(calls.b), 'both peers connected');
  await waitFor(() => chatOpen(calls.a) && chatOpen(calls.b), 'the chat channel open on both sides');
}

/** Both ports stable with every transceiver negotiated (the callee's own audio takes a second round). */
async function negotiated(calls: Calls): Promise<void> {
  const settled = (side: Side): boolean => {
    const port = side.ports[0];
    return port !== undefined && port.signalingState === 'stable' && port.getTransceivers().every((t) => t.mid !== null);
  };
  await waitFor(() => settled(calls.a) && settled(calls.b), 'both sides negotiated and stable');
}

function kinds(messages: readonly PeerMessage[]): string[] {
  return messages.filter((message) => message.kind !== 'description' && message.kind !== 'candidate').map((message) => message.kind);
}

/** Sends `text` from one side's chat channel and waits for it on the other's. */
async function chat(from: Side, to: Side, text: string): Promise<void> {
  const received: (string | ArrayBuffer)[] = [];
  const subscription = chatOf(to)!.message$.subscribe((data) => received.push(data));
  chatOf(from)!.send(text);
  await waitFor(() => received.length > 0, `'${text}' from ${from.name} on ${to.name}`);
  subscription.unsubscribe();
  expect(received).toEqual([text]);
}

describe('two call machines over the fake network', () => {
  it('A calls, B rings and accepts: both active and connected, and chat flows both ways', async () => {
    const calls = startCalls();
    const { a, b } = calls;
    a.actor.send({ type: 'CALL' });
    expect(snap(a).matches({ peerRunning: 'outgoing' })).toBe(true);
    await waitFor(() => snap(b).matches('incoming'), 'B ringing');
    expect(snap(b).context.session).toBe(snap(a).context.session);
    expect(b.ports).toHaveLength(0); // no connection while ringing
    expect(peerOf(b)).toBeUndefined();

    b.actor.send({ type: 'ACCEPT' });
    await bothActiveAndConnected(calls);
    await negotiated(calls);

    expect(snap(a).context.role).toBe('caller');
    expect(snap(b).context.role).toBe('callee');
    // The caller is the impolite peer, the callee the polite one.
    expect(peerOf(a)!.getSnapshot().context.polite).toBe(false);
    expect(peerOf(b)!.getSnapshot().context.polite).toBe(true);
    expect(peerOf(a)!.getSnapshot().context.session).toBe(snap(a).context.session);
    for (const side of [a, b]) {
      expect(side.ports).toHaveLength(1);
      expect(side.ports[0]!.connectionState).toBe('connected');
      expect(side.ports[0]!.signalingState).toBe('stable');
      expect(side.ports[0]!.illegalCalls).toEqual([]);
      // Negotiation messages carry the call's session.
      expect(side.signaling.sent.every((message) => message.session === snap(a).context.session)).toBe(true);
    }
    expect(kinds(a.signaling.sent)).toEqual(['invite']);
    expect(kinds(b.signaling.sent)).toEqual(['accept']);
    // Exactly one chat channel: the caller's, received by the callee.
    expect(peerOf(a)!.getSnapshot().context.channels).toHaveLength(1);
    expect(peerOf(b)!.getSnapshot().context.channels).toHaveLength(1);
    // Media negotiated both ways: each port holds the other's audio too.
    expect(a.ports[0]!.getTransceivers()).toHaveLength(2);
    expect(b.ports[0]!.getTransceivers()).toHaveLength(2);

    await chat(a, b, 'hi B');
    await chat(b, a, 'hi A');
  });

  it('A hangs up: A ends hangup, B ends remote-hangup, and both RTC ports are closed', async () => {
    const calls = startCalls();
    const { a, b } = calls;
    a.actor.send({ type: 'CALL' });
    await waitFor(() => snap(b).matches('incoming'), 'B ringing');
    b.actor.send({ type: 'ACCEPT' });
    await bothActiveAndConnected(calls);
    const peerA = peerOf(a)!;
    const peerB = peerOf(b)!;

    a.actor.send({ type: 'HANGUP' });
    expect(snap(a).matches('ended')).toBe(true);
    expect(snap(a).context.end).toMatchObject({ reason: 'hangup', endedBy: 'local', remoteReason: null });
    expect(a.ports[0]!.signalingState).toBe('closed');
    expect(peerA.getSnapshot().status).toBe('stopped');
    expect(a.signaling.sent[a.signaling.sent.length - 1]).toEqual({ kind: 'bye', session: snap(a).context.session, reason: 'hangup' });

    await waitFor(() => snap(b).matches('ended'), 'B ended');
    expect(snap(b).context.end).toMatchObject({ reason: 'remote-hangup', endedBy: 'remote', remoteReason: 'hangup' });
    expect(b.ports[0]!.signalingState).toBe('closed');
    expect(b.ports[0]!.connectionState).toBe('closed');
    expect(peerB.getSnapshot().status).toBe('stopped');
    expect(peerOf(a)).toBeUndefined();
    expect(peerOf(b)).toBeUndefined();
    // B does not answer a bye with a bye.
    expect(kinds(b.signaling.sent)).toEqual(['accept']);
    await sleep(50);
    expect(snap(a).context.end?.reason).toBe('hangup');
    expect(snap(b).context.end?.reason).toBe('remote-hangup');
  });

  it('the caller’s offer and candidates, sent while the invite rings, wait at the callee and are answered on ACCEPT', async () => {
    const calls = startCalls();
    const { a, b } = calls;
    a.actor.send({ type: 'CALL' });
    await waitFor(() => snap(b).matches('incoming'), 'B ringing');
    const negotiationOf = (sent: readonly PeerMessage[]) => sent.filter((message) => message.kind === 'description' || message.kind === 'candidate');
    // A negotiates while it rings: its offer and candidates reach B, which holds them.
    await waitFor(() => snap(b).context.earlySignals.some((message) => message.kind === 'description'), 'the offer held at B');
    await waitFor(() => snap(b).context.earlySignals.length === negotiationOf(a.signaling.sent).length, 'everything A sent held at B');
    expect(a.ports).toHaveLength(1);
    expect(a.ports[0]!.signalingState).toBe('have-local-offer');
    expect(b.ports).toHaveLength(0);
    expect(negotiationOf(b.signaling.sent)).toEqual([]);

    b.actor.send({ type: 'ACCEPT' });
    await bothActiveAndConnected(calls);
    await negotiated(calls);
    // A made one offer, the early one: B's peer answered it from what was held. (B then offers
    // its own audio, which the fake never pairs with A's offered transceiver.)
    const descriptions = (sent: readonly PeerMessage[]) => sent.flatMap((message) => (message.kind === 'description' ? [message.description.type] : []));
    expect(descriptions(a.signaling.sent)).toEqual(['offer', 'answer']);
    expect(descriptions(b.signaling.sent)).toEqual(['answer', 'offer']);
    await chat(a, b, 'no round trip after accept');
  });

  it('a prepared caller has its offer set and candidates gathered before CALL, sends them right behind the invite, and connects', async () => {
    const calls = startCalls();
    const { a, b } = calls;
    a.actor.send({ type: 'PREPARE' });
    await waitFor(() => a.ports[0]?.signalingState === 'have-local-offer' && a.ports[0].iceGatheringState === 'complete', 'A’s offer set and gathered');
    await sleep(50);
    expect(a.signaling.sent).toEqual([]);
    expect(snap(b).matches('idle')).toBe(true);

    a.actor.send({ type: 'CALL' });
    // Everything the peer made leaves in the same step as the invite, in order.
    expect(a.signaling.sent[0]).toMatchObject({ kind: 'invite' });
    expect(a.signaling.sent.slice(1).map((message) => message.kind)).toEqual(expect.arrayContaining(['description', 'candidate']));
    await waitFor(() => snap(b).matches('incoming'), 'B ringing');
    b.actor.send({ type: 'ACCEPT' });
    await bothActiveAndConnected(calls);
    await negotiated(calls);
    const offers = a.signaling.sent.filter((message) => message.kind === 'description' && message.description.type === 'offer');
    expect(offers).toHaveLength(1);
    expect(a.ports).toHaveLength(1);
    await chat(a, b, 'prepared');
  });

  it('a remote invite to a prepared line closes its connection unsent, and the line answers as the callee', async () => {
    const calls = startCalls();
    const { a, b } = calls;
    a.actor.send({ type: 'PREPARE' });
    await waitFor(() => a.ports[0]?.signalingState === 'have-local-offer', 'A’s offer set');
    b.actor.send({ type: 'CALL' });
    await waitFor(() => snap(a).matches('incoming'), 'A ringing');
    expect(a.ports[0]!.signalingState).toBe('closed');
    expect(a.signaling.sent).toEqual([]);
    a.actor.send({ type: 'ACCEPT' });
    await bothActiveAndConnected(calls);
    expect(snap(a).context.role).toBe('callee');
    expect(a.ports).toHaveLength(2);
    await chat(b, a, 'the prepared line took our call');
  });

  it('a declined call closes the caller’s early connection, and the callee never built one', async () => {
    const calls = startCalls();
    const { a, b } = calls;
    a.actor.send({ type: 'CALL' });
    await waitFor(() => snap(b).context.earlySignals.length > 0, 'A’s offer held at B');
    b.actor.send({ type: 'REJECT' });
    await waitFor(() => snap(a).matches('ended'), 'A ended');
    expect(snap(a).context.end?.reason).toBe('rejected');
    expect(a.ports[0]!.connectionState).toBe('closed');
    expect(b.ports).toHaveLength(0);
  });

  it('crossing invites resolve to one call, with one caller and one callee, and nobody clicks ACCEPT', async () => {
    // 'session-a' < 'session-b': A's invite wins on both sides.
    const calls = startCalls({ sessions: { a: 'session-a', b: 'session-b' } });
    const { a, b } = calls;
    a.actor.send({ type: 'CALL' });
    b.actor.send({ type: 'CALL' });
    await bothActiveAndConnected(calls);

    expect(snap(a).context).toMatchObject({ session: 'session-a', role: 'caller' });
    expect(snap(b).context).toMatchObject({ session: 'session-a', role: 'callee' });
    expect(peerOf(a)!.getSnapshot().context.polite).toBe(false);
    expect(peerOf(b)!.getSnapshot().context.polite).toBe(true);
    // B started a caller's connection with its own invite; A's winning invite closed it, and B
    // answers A's call on a new one. One negotiated session.
    expect(a.ports).toHaveLength(1);
    expect(b.ports).toHaveLength(2);
    expect(b.ports[0]!.connectionState).toBe('closed');
    expect(kinds(a.signaling.sent)).toEqual(['invite']);
    expect(kinds(b.signaling.sent)).toEqual(['invite', 'accept']);
    const accepted = b.signaling.sent.findIndex((message) => message.kind === 'accept');
    expect(b.signaling.sent[accepted]?.session).toBe('session-a');
    const negotiationOf = (sent: readonly PeerMessage[]) => sent.filter((message) => message.kind === 'description' || message.kind === 'candidate');
    expect(negotiationOf(a.signaling.sent).every((message) => message.session === 'session-a')).toBe(true);
    // What B's closed caller peer sent before the accept was for its own session (A drops it).
    expect(negotiationOf(b.signaling.sent.slice(0, accepted)).every((message) => message.session === 'session-b')).toBe(true);
    expect(negotiationOf(b.signaling.sent.slice(accepted)).length).toBeGreaterThan(0);
    expect(negotiationOf(b.signaling.sent.slice(accepted)).every((message) => message.session === 'session-a')).toBe(true);
    await chat(b, a, 'we both called');
  });

  it('a connection lost for good ends the call connection-failed, and the failing side says bye{connection-failed}', async () => {
    const calls = startCalls({
      logic: withConnectionDelays({ disconnectedGrace: 20, iceRestartBackoff: 30, connectTimeout: 500 }),
      maxIceRestarts: 1,
    });
    const { a, b, network } = calls;
    a.actor.send({ type: 'CALL' });
    await waitFor(() => snap(b).matches('incoming'), 'B ringing');
    b.actor.send({ type: 'ACCEPT' });
    await bothActiveAndConnected(calls);
    await negotiated(calls);

    network.setConnectivity(false);
    await waitFor(() => snap(a).matches('ended') && snap(b).matches('ended'), 'both calls ended', 5000);
    const reasons: Record<'A' | 'B', CallEndReason | null> = { A: snap(a).context.end?.reason ?? null, B: snap(b).context.end?.reason ?? null };

    // At least one side's peer failed; each side ended either by its own failure or by the
    // other's bye{connection-failed} (DESIGN: the side whose peer fails sends that bye).
    expect(Object.values(reasons)).toContain('connection-failed');
    for (const [side, other] of [
      [a, b],
      [b, a],
    ] as const) {
      const context = snap(side).context;
      if (context.end?.reason === 'connection-failed') {
        expect(context.end?.endedBy).toBe('local');
        expect(context.end?.detail).toMatch(/ICE restart attempts exhausted|connection-failed/);
        expect(side.signaling.sent.filter((m) => m.kind === 'bye')).toEqual([
          { kind: 'bye', session: context.session, reason: 'connection-failed' },
        ]);
      } else {
        expect(context.end).toMatchObject({ reason: 'remote-hangup', endedBy: 'remote', remoteReason: 'connection-failed' });
        expect(snap(other).context.end?.reason).toBe('connection-failed');
        expect(kinds(side.signaling.sent)).not.toContain('bye');
      }
      expect(side.ports[0]!.signalingState).toBe('closed');
      expect(peerOf(side)).toBeUndefined();
    }
    // The impolite caller tried exactly one ICE restart before giving up.
    expect(a.ports[0]!.operations.filter((op) => op === 'createOffer({iceRestart: true})')).toHaveLength(1);
  });
});
