import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { Subject } from 'rxjs';
import { createActor, fromPromise } from 'xstate';
import type { AnyActorLogic } from 'xstate';
import { MAX_EARLY_SIGNALS, callMachine, randomSessionId } from '../src/machines/call.machine.js';
import { callStateOf } from '../src/create-call.js';
import type { CallEndReason, CallInput } from '../src/machines/call.machine.js';
import type { PeerInput, PeerOutput } from '../src/machines/peer.types.js';
import type { RtcPort } from '../src/ports/rtc.js';
import type { SignalingPort } from '../src/ports/signaling.js';
import { parsePeerMessage } from '../src/protocol/peer-message.js';
import { propertyRuns } from '../src/testing/scenarios.js';
import type { InviteMedia, PeerMessage } from '../src/protocol/peer-message.js';

const LATENCY = 10;
/** Long enough for every message in flight (and any reply to it) to be delivered. */
const SETTLE = 20 * LATENCY;
const RING = 30_000;

// --- An in-memory signaling pair: ordered, asynchronous delivery, every sent message logged. ---

interface TestWire {
  readonly a: SignalingPort;
  readonly b: SignalingPort;
  readonly sentByA: PeerMessage[];
  readonly sentByB: PeerMessage[];
  /** Delivers a message to A (or B) at once, as if the remote had sent it long ago. */
  readonly injectToA: (message: PeerMessage) => void;
  readonly injectToB: (message: PeerMessage) => void;
}

function createTestSignalingPair(latency: { readonly aToB: number; readonly bToA: number } = { aToB: LATENCY, bToA: LATENCY }): TestWire {
  const inboxA = new Subject<PeerMessage>();
  const inboxB = new Subject<PeerMessage>();
  const sentByA: PeerMessage[] = [];
  const sentByB: PeerMessage[] = [];
  // A fixed latency per direction keeps each direction in order (timers of equal delay are FIFO).
  const port = (sent: PeerMessage[], inbox: Subject<PeerMessage>, remoteInbox: Subject<PeerMessage>, delay: number): SignalingPort => ({
    messages$: inbox.asObservable(),
    send: (message) => {
      sent.push(message);
      setTimeout(() => remoteInbox.next(message), delay);
    },
  });
  return {
    a: port(sentByA, inboxA, inboxB, latency.aToB),
    b: port(sentByB, inboxB, inboxA, latency.bToA),
    sentByA,
    sentByB,
    injectToA: (message) => inboxA.next(message),
    injectToB: (message) => inboxB.next(message),
  };
}

// --- One side: a call actor with a controllable stub peer and a recording createRtc. ---

interface FakeRtc {
  closed: boolean;
}

interface StubPeer {
  readonly input: PeerInput;
  /** Makes the stub peer reach its final state with this output. */
  readonly end: (output: PeerOutput) => void;
  /** Makes the stub peer actor fail. */
  readonly fail: (error: Error) => void;
}

/** The type of the `peer` slot, so the stubs keep compiling when the slot gets the real machine. */
type PeerSlot = NonNullable<NonNullable<Parameters<typeof callMachine.provide>[0]['actors']>['peer']>;
const asPeerSlot = (logic: AnyActorLogic) => logic as PeerSlot;

/** Every call actor a test started, stopped after it. */
const running: { stop(): void }[] = [];

interface SideOptions {
  readonly sessionIds?: readonly string[];
  readonly isBusy?: () => boolean;
  readonly media?: InviteMedia;
  readonly delays?: { readonly ringTimeout?: number; readonly incomingTimeout?: number };
  readonly prepareWhileRinging?: boolean;
}

function createSide(signaling: SignalingPort, options: SideOptions = {}) {
  const rtcs: FakeRtc[] = [];
  const peers: StubPeer[] = [];
  // Like the real peer machine: it owns the RTC port and closes it when it ends or is stopped.
  const stubPeer = fromPromise<PeerOutput, PeerInput>(
    ({ input, signal }) =>
      new Promise<PeerOutput>((resolve, reject) => {
        const close = () => input.rtc.close();
        signal.addEventListener('abort', close);
        peers.push({
          input,
          end: (output) => {
            close();
            resolve(output);
          },
          fail: (error) => {
            close();
            reject(error);
          },
        });
      }),
  );
  const ids = [...(options.sessionIds ?? [])];
  const input: CallInput = {
    signaling,
    createRtc: () => {
      const rtc: FakeRtc = { closed: false };
      rtcs.push(rtc);
      return { close: () => void (rtc.closed = true) } as unknown as RtcPort;
    },
    peer: { trickle: false },
    ...(options.media ? { media: options.media } : {}),
    ...(options.isBusy ? { isBusy: options.isBusy } : {}),
    ...(options.prepareWhileRinging ? { prepareWhileRinging: true } : {}),
    ...(options.sessionIds
      ? {
          createSessionId: () => {
            const id = ids.shift();
            if (id === undefined) throw new Error('test ran out of session ids');
            return id;
          },
        }
      : {}),
  };
  const machine = callMachine.provide({
    actors: { peer: asPeerSlot(stubPeer) },
    ...(options.delays ? { delays: options.delays } : {}),
  });
  const actor = createActor(machine, { input });
  running.push(actor);
  actor.start();
  return {
    actor,
    rtcs,
    peers,
    state: () => callStateOf(actor.getSnapshot().value),
    context: () => actor.getSnapshot().context,
    hasPeer: () => actor.getSnapshot().children.peer !== undefined,
  };
}

type Side = ReturnType<typeof createSide>;

function createPair(a: SideOptions = {}, b: SideOptions = {}, latency?: { aToB: number; bToA: number }) {
  const wire = createTestSignalingPair(latency);
  return {
    wire,
    a: createSide(wire.a, { sessionIds: ['a1', 'a2', 'a3'], ...a }),
    b: createSide(wire.b, { sessionIds: ['b1', 'b2', 'b3'], ...b }),
  };
}

const settle = () => vi.advanceTimersByTimeAsync(SETTLE);

function expectEnded(side: Side, reason: CallEndReason, endedBy: 'local' | 'remote') {
  expect(side.state()).toBe('ended');
  expect(side.context().end?.reason).toBe(reason);
  expect(side.context().end?.endedBy).toBe(endedBy);
}

/** A calls B, B accepts: both active on session a1. */
async function establishCall() {
  const pair = createPair();
  pair.a.actor.send({ type: 'CALL' });
  await settle();
  pair.b.actor.send({ type: 'ACCEPT' });
  await settle();
  expect(pair.a.state()).toBe('active');
  expect(pair.b.state()).toBe('active');
  return pair;
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  for (const actor of running.splice(0)) actor.stop();
  vi.useRealTimers();
});

describe('call machine: accept and hang up', () => {
  it('rings the callee with the caller’s peer already running, and on ACCEPT runs the callee’s: impolite caller, polite callee', async () => {
    const { wire, a, b } = createPair({ media: { audio: true, video: true } });
    expect(a.state()).toBe('idle');
    a.actor.send({ type: 'CALL', media: { audio: true, video: false } });
    expect(a.state()).toBe('outgoing');
    await settle();

    expect(b.state()).toBe('incoming');
    expect(b.context()).toMatchObject({ session: 'a1', role: 'callee', media: { audio: true, video: false } });
    expect(a.context()).toMatchObject({ session: 'a1', role: 'caller' });
    expect(wire.sentByA).toEqual([{ kind: 'invite', session: 'a1', media: { audio: true, video: false } }]);
    // The caller negotiates while its invite rings; the callee builds nothing before ACCEPT.
    expect(a.rtcs).toHaveLength(1);
    expect(a.peers).toHaveLength(1);
    expect(b.rtcs).toHaveLength(0);

    b.actor.send({ type: 'ACCEPT' });
    expect(b.state()).toBe('active');
    await settle();

    expect(a.state()).toBe('active');
    expect(wire.sentByB).toEqual([{ kind: 'accept', session: 'a1' }]);
    // The same caller peer runs on into active.
    expect(a.rtcs).toHaveLength(1);
    expect(b.rtcs).toHaveLength(1);
    expect(a.peers).toHaveLength(1);
    expect(b.peers).toHaveLength(1);
    expect(a.peers[0]!.input).toMatchObject({ polite: false, session: 'a1', signaling: wire.a, trickle: false });
    expect(b.peers[0]!.input).toMatchObject({ polite: true, session: 'a1', signaling: wire.b, trickle: false });
    expect(a.peers[0]!.input.rtc).toBeDefined();
    expect(a.context().end).toBeNull();
  });

  it('uses the input media when CALL names none', async () => {
    const { wire, a, b } = createPair({ media: { audio: true, video: true } });
    a.actor.send({ type: 'CALL' });
    await settle();
    expect(wire.sentByA).toEqual([{ kind: 'invite', session: 'a1', media: { audio: true, video: true } }]);
    expect(b.context().media).toEqual({ audio: true, video: true });
  });

  it('caller HANGUP: bye{hangup}, both ended, peers stopped and RTC ports closed', async () => {
    const { wire, a, b } = await establishCall();
    a.actor.send({ type: 'HANGUP' });
    await settle();

    expectEnded(a, 'hangup', 'local');
    expectEnded(b, 'remote-hangup', 'remote');
    expect(b.context().end?.remoteReason).toBe('hangup');
    expect(wire.sentByA).toEqual([
      { kind: 'invite', session: 'a1' },
      { kind: 'bye', session: 'a1', reason: 'hangup' },
    ]);
    expect(wire.sentByB).toEqual([{ kind: 'accept', session: 'a1' }]);
    expect(a.hasPeer()).toBe(false);
    expect(b.hasPeer()).toBe(false);
    expect(a.rtcs[0]!.closed).toBe(true);
    expect(b.rtcs[0]!.closed).toBe(true);
  });

  it('callee HANGUP ends the call on both sides', async () => {
    const { wire, a, b } = await establishCall();
    b.actor.send({ type: 'HANGUP' });
    await settle();

    expectEnded(b, 'hangup', 'local');
    expectEnded(a, 'remote-hangup', 'remote');
    expect(a.context().end?.remoteReason).toBe('hangup');
    expect(wire.sentByB).toEqual([
      { kind: 'accept', session: 'a1' },
      { kind: 'bye', session: 'a1', reason: 'hangup' },
    ]);
    expect(wire.sentByA).toEqual([{ kind: 'invite', session: 'a1' }]);
    expect(a.rtcs[0]!.closed).toBe(true);
    expect(b.rtcs[0]!.closed).toBe(true);
  });
});

describe('call machine: reject, busy, cancel', () => {
  it('REJECT declines: callee ended declined, caller ended rejected', async () => {
    const { wire, a, b } = createPair();
    a.actor.send({ type: 'CALL' });
    await settle();
    b.actor.send({ type: 'REJECT' });
    await settle();

    expectEnded(b, 'declined', 'local');
    expectEnded(a, 'rejected', 'remote');
    expect(a.context().end?.remoteReason).toBe('declined');
    expect(wire.sentByB).toEqual([{ kind: 'reject', session: 'a1', reason: 'declined' }]);
    expect(wire.sentByA).toEqual([{ kind: 'invite', session: 'a1' }]);
    // The caller's peer, started with the invite, is closed; the callee never built one.
    expect(a.rtcs).toEqual([{ closed: true }]);
    expect(a.hasPeer()).toBe(false);
    expect(b.rtcs).toHaveLength(0);
  });

  it('REJECT busy: both ended busy', async () => {
    const { wire, a, b } = createPair();
    a.actor.send({ type: 'CALL' });
    await settle();
    b.actor.send({ type: 'REJECT', reason: 'busy' });
    await settle();

    expectEnded(b, 'busy', 'local');
    expectEnded(a, 'busy', 'remote');
    expect(wire.sentByB).toEqual([{ kind: 'reject', session: 'a1', reason: 'busy' }]);
  });

  it('isBusy: the invite is answered reject{busy} at once and the callee stays where it was', async () => {
    let busy = true;
    const { wire, a, b } = createPair({}, { isBusy: () => busy });
    a.actor.send({ type: 'CALL' });
    await settle();

    expect(b.state()).toBe('idle');
    expect(b.context().session).toBeNull();
    expect(wire.sentByB).toEqual([{ kind: 'reject', session: 'a1', reason: 'busy' }]);
    expectEnded(a, 'busy', 'remote');

    // No longer busy: the next invite rings.
    busy = false;
    a.actor.send({ type: 'CALL' });
    await settle();
    expect(b.state()).toBe('incoming');
    expect(b.context().session).toBe('a2');
    expect(wire.sentByB).toHaveLength(1);
  });

  it('CANCEL: caller ended cancelled, callee ended missed with the remote reason', async () => {
    const { wire, a, b } = createPair();
    a.actor.send({ type: 'CALL' });
    await settle();
    a.actor.send({ type: 'CANCEL' });
    await settle();

    expectEnded(a, 'cancelled', 'local');
    expectEnded(b, 'missed', 'remote');
    expect(b.context().end?.remoteReason).toBe('cancelled');
    expect(wire.sentByA).toEqual([
      { kind: 'invite', session: 'a1' },
      { kind: 'cancel', session: 'a1', reason: 'cancelled' },
    ]);
    expect(wire.sentByB).toEqual([]);
  });

  it('an ACCEPT that crosses the caller’s CANCEL ends the callee’s call as missed', async () => {
    const { wire, a, b } = createPair();
    a.actor.send({ type: 'CALL' });
    await settle();
    a.actor.send({ type: 'CANCEL' });
    b.actor.send({ type: 'ACCEPT' });
    expect(b.state()).toBe('active');
    await settle();

    expectEnded(a, 'cancelled', 'local'); // the late accept is ignored in ended
    expectEnded(b, 'missed', 'remote');
    expect(b.rtcs[0]!.closed).toBe(true);
    expect(a.rtcs).toEqual([{ closed: true }]);
    expect(wire.sentByA).toEqual([
      { kind: 'invite', session: 'a1' },
      { kind: 'cancel', session: 'a1', reason: 'cancelled' },
    ]);
  });
});

describe('call machine: the caller’s early offer and candidates', () => {
  const candidate = (session: string, n: number): PeerMessage => ({
    kind: 'candidate',
    session,
    candidate: { candidate: `candidate:${n} 1 udp 1 127.0.0.1 ${1000 + n} typ host`, sdpMid: '0', sdpMLineIndex: 0 },
  });

  it('are held while ringing (this session only, at most MAX_EARLY_SIGNALS) and given to the callee’s peer first', async () => {
    const { wire, a, b } = createPair();
    a.actor.send({ type: 'CALL' });
    await settle();
    expect(b.state()).toBe('incoming');
    for (let n = 0; n < MAX_EARLY_SIGNALS + 10; n += 1) wire.injectToB(candidate('a1', n));
    wire.injectToB(candidate('other-session', 0));
    expect(b.context().earlySignals).toHaveLength(MAX_EARLY_SIGNALS);
    expect(b.context().earlySignals.every((message) => message.session === 'a1')).toBe(true);

    b.actor.send({ type: 'ACCEPT' });
    const seen: PeerMessage[] = [];
    const subscription = b.peers[0]!.input.signaling.messages$.subscribe((message) => seen.push(message));
    wire.injectToB(candidate('a1', 9999));
    subscription.unsubscribe();
    expect(seen).toEqual([...b.context().earlySignals, candidate('a1', 9999)]);
  });

  it('are forgotten when the call ends without ACCEPT', async () => {
    const { wire, a, b } = createPair();
    a.actor.send({ type: 'CALL' });
    await settle();
    wire.injectToB(candidate('a1', 1));
    b.actor.send({ type: 'REJECT' });
    await settle();
    a.actor.send({ type: 'CALL' });
    await settle();
    expect(b.state()).toBe('incoming');
    expect(b.context().earlySignals).toEqual([]);
  });
});

describe('call machine: the remote left the room (REMOTE.LEFT)', () => {
  it('ends a ringing outgoing call at once as unavailable, sending nothing more', async () => {
    const { wire, a, b } = createPair();
    a.actor.send({ type: 'CALL' });
    await settle();
    expect(b.state()).toBe('incoming');
    a.actor.send({ type: 'REMOTE.LEFT' });
    expectEnded(a, 'unavailable', 'remote');
    expect(a.context().end?.detail).toBe('the callee left the room');
    await vi.advanceTimersByTimeAsync(RING + SETTLE);
    expect(wire.sentByA).toEqual([{ kind: 'invite', session: 'a1' }]);
    expect(a.rtcs).toEqual([{ closed: true }]);
  });

  it('ends a ringing incoming call at once as missed, sending no reject', async () => {
    const { wire, a, b } = createPair();
    a.actor.send({ type: 'CALL' });
    await settle();
    b.actor.send({ type: 'REMOTE.LEFT' });
    expectEnded(b, 'missed', 'remote');
    expect(b.context().end?.detail).toBe('the caller left the room');
    await vi.advanceTimersByTimeAsync(RING + SETTLE);
    expect(wire.sentByB).toEqual([]);
  });

  it('leaves an active call to its connection, and means nothing when idle or ended', async () => {
    const { a, b } = await establishCall();
    a.actor.send({ type: 'REMOTE.LEFT' });
    expect(a.state()).toBe('active');
    expect(a.hasPeer()).toBe(true);
    a.actor.send({ type: 'HANGUP' });
    await settle();
    a.actor.send({ type: 'REMOTE.LEFT' });
    expectEnded(a, 'hangup', 'local');
    const idle = createPair().a;
    idle.actor.send({ type: 'REMOTE.LEFT' });
    expect(idle.state()).toBe('idle');
    expect(b.state()).toBe('ended');
  });
});

describe('call machine: timeouts', () => {
  it('ringTimeout: caller cancels with timeout and ends no-answer; callee ends missed', async () => {
    const { wire, a, b } = createPair({}, { delays: { incomingTimeout: 2 * RING } });
    a.actor.send({ type: 'CALL' });
    await vi.advanceTimersByTimeAsync(RING - 1);
    expect(a.state()).toBe('outgoing');
    expect(b.state()).toBe('incoming');

    await vi.advanceTimersByTimeAsync(1);
    expectEnded(a, 'no-answer', 'local');
    await settle();
    expectEnded(b, 'missed', 'remote');
    expect(b.context().end?.remoteReason).toBe('timeout');
    expect(wire.sentByA).toEqual([
      { kind: 'invite', session: 'a1' },
      { kind: 'cancel', session: 'a1', reason: 'timeout' },
    ]);
    expect(wire.sentByB).toEqual([]);
  });

  it('incomingTimeout: callee rejects as unavailable and ends missed; caller ends unavailable', async () => {
    const { wire, a, b } = createPair({}, { delays: { incomingTimeout: 5_000 } });
    a.actor.send({ type: 'CALL' });
    await vi.advanceTimersByTimeAsync(LATENCY + 4_999);
    expect(b.state()).toBe('incoming');

    await vi.advanceTimersByTimeAsync(1);
    expectEnded(b, 'missed', 'local');
    await settle();
    expectEnded(a, 'unavailable', 'remote');
    expect(a.context().end?.remoteReason).toBe('unavailable');
    expect(wire.sentByB).toEqual([{ kind: 'reject', session: 'a1', reason: 'unavailable' }]);
    expect(wire.sentByA).toEqual([{ kind: 'invite', session: 'a1' }]);
  });

  it('ringTimeout is overridable with provide({ delays })', async () => {
    const { wire, a } = createPair({ delays: { ringTimeout: 1_000 } });
    a.actor.send({ type: 'CALL' });
    await vi.advanceTimersByTimeAsync(999);
    expect(a.state()).toBe('outgoing');
    await vi.advanceTimersByTimeAsync(1);
    expectEnded(a, 'no-answer', 'local');
    expect(wire.sentByA.at(-1)).toEqual({ kind: 'cancel', session: 'a1', reason: 'timeout' });
  });

  it('no timer runs once the call is active', async () => {
    const { a, b } = await establishCall();
    await vi.advanceTimersByTimeAsync(10 * RING);
    expect(a.state()).toBe('active');
    expect(b.state()).toBe('active');
  });
});

describe('call machine: peer outcome', () => {
  it('a caller peer that fails while its invite rings withdraws the invite: cancel{cancelled}, connection-failed', async () => {
    const { wire, a, b } = createPair();
    a.actor.send({ type: 'CALL' });
    await settle();
    a.peers[0]!.end({ reason: 'connect-timeout', detail: 'no checks' });
    await settle();
    expectEnded(a, 'connection-failed', 'local');
    expect(a.context().end).toMatchObject({ detail: 'no checks', connectionFailure: 'connect-timeout' });
    expect(wire.sentByA).toEqual([
      { kind: 'invite', session: 'a1' },
      { kind: 'cancel', session: 'a1', reason: 'cancelled' },
    ]);
    expectEnded(b, 'missed', 'remote');
  });

  it.each([
    ['caller', 'connection-failed'],
    ['callee', 'connect-timeout'],
    ['caller', 'turn-unauthorized'],
  ] as const)('a %s peer ending with %s: bye{connection-failed}, the other side ends remote-hangup', async (who, peerReason) => {
    const pair = await establishCall();
    const failing = who === 'caller' ? pair.a : pair.b;
    const other = who === 'caller' ? pair.b : pair.a;
    const failingSent = who === 'caller' ? pair.wire.sentByA : pair.wire.sentByB;
    const otherSent = who === 'caller' ? pair.wire.sentByB : pair.wire.sentByA;
    const otherSentBefore = otherSent.length;

    failing.peers[0]!.end({ reason: peerReason, detail: 'ice failed' });
    await settle();

    expectEnded(failing, 'connection-failed', 'local');
    expect(failing.context().end?.detail).toBe('ice failed');
    expect(failing.context().end?.connectionFailure).toBe(peerReason);
    expect(other.context().end?.connectionFailure).toBeNull();
    expect(failingSent.at(-1)).toEqual({ kind: 'bye', session: 'a1', reason: 'connection-failed' });
    expectEnded(other, 'remote-hangup', 'remote');
    expect(other.context().end?.remoteReason).toBe('connection-failed');
    expect(otherSent).toHaveLength(otherSentBefore);
    expect(pair.a.rtcs[0]!.closed).toBe(true);
    expect(pair.b.rtcs[0]!.closed).toBe(true);
  });

  it('a peer that closes on its own ends the call as a local hangup', async () => {
    const { wire, a, b } = await establishCall();
    a.peers[0]!.end({ reason: 'closed' });
    await settle();
    expectEnded(a, 'hangup', 'local');
    expect(wire.sentByA.at(-1)).toEqual({ kind: 'bye', session: 'a1', reason: 'hangup' });
    expectEnded(b, 'remote-hangup', 'remote');
  });

  it('a peer actor that errors ends the call as connection-failed with bye{error}', async () => {
    const { wire, a, b } = await establishCall();
    b.peers[0]!.fail(new Error('boom'));
    await settle();
    expectEnded(b, 'connection-failed', 'local');
    expect(b.context().end?.detail).toBe('boom');
    expect(wire.sentByB.at(-1)).toEqual({ kind: 'bye', session: 'a1', reason: 'error' });
    expectEnded(a, 'remote-hangup', 'remote');
    expect(a.context().end?.remoteReason).toBe('error');
  });
});

describe('call machine: sessions', () => {
  it('drops late messages of an old session and ignores negotiation messages', async () => {
    const { wire, a, b } = await establishCall();
    a.actor.send({ type: 'HANGUP' });
    await settle();

    // A late duplicate of the old invite does not ring again.
    wire.injectToB({ kind: 'invite', session: 'a1' });
    expect(b.state()).toBe('ended');

    a.actor.send({ type: 'CALL' });
    await settle();
    expect(a.context().session).toBe('a2');
    expect(b.context().session).toBe('a2');

    wire.injectToA({ kind: 'accept', session: 'a1' });
    wire.injectToA({ kind: 'reject', session: 'a1', reason: 'declined' });
    wire.injectToB({ kind: 'cancel', session: 'a1', reason: 'cancelled' });
    expect(a.state()).toBe('outgoing');
    expect(b.state()).toBe('incoming');

    b.actor.send({ type: 'ACCEPT' });
    await settle();
    wire.injectToA({ kind: 'bye', session: 'a1', reason: 'hangup' });
    wire.injectToB({ kind: 'cancel', session: 'a1', reason: 'timeout' });
    wire.injectToA({ kind: 'description', session: 'a2', description: { type: 'offer', sdp: 'v=0\r\n' } });
    wire.injectToB({ kind: 'candidate', session: 'a2', candidate: null });
    await settle();

    expect(a.state()).toBe('active');
    expect(b.state()).toBe('active');
    expect(a.context().session).toBe('a2');
    expect(wire.sentByA).toEqual([
      { kind: 'invite', session: 'a1' },
      { kind: 'bye', session: 'a1', reason: 'hangup' },
      { kind: 'invite', session: 'a2' },
    ]);
    expect(wire.sentByB).toEqual([
      { kind: 'accept', session: 'a1' },
      { kind: 'accept', session: 'a2' },
    ]);
  });

  it('an invite of another session while ringing or active gets reject{busy} and changes nothing', async () => {
    const { wire, a, b } = createPair();
    a.actor.send({ type: 'CALL' });
    await settle();

    wire.injectToB({ kind: 'invite', session: 'x1' });
    expect(b.state()).toBe('incoming');
    expect(b.context().session).toBe('a1');
    expect(wire.sentByB).toEqual([{ kind: 'reject', session: 'x1', reason: 'busy' }]);
    await settle();
    expect(a.state()).toBe('outgoing'); // the busy reply is for x1, not for A's call

    b.actor.send({ type: 'ACCEPT' });
    await settle();
    wire.injectToB({ kind: 'invite', session: 'x2' });
    wire.injectToB({ kind: 'invite', session: 'a1' }); // a duplicate of the current invite: ignored
    await settle();

    expect(a.state()).toBe('active');
    expect(b.state()).toBe('active');
    expect(b.context().session).toBe('a1');
    expect(b.peers).toHaveLength(1);
    expect(wire.sentByB).toEqual([
      { kind: 'reject', session: 'x1', reason: 'busy' },
      { kind: 'accept', session: 'a1' },
      { kind: 'reject', session: 'x2', reason: 'busy' },
    ]);
  });

  it('a new call after ended, in either direction, clears the last reason', async () => {
    const { wire, a, b } = createPair();
    a.actor.send({ type: 'CALL' });
    await settle();
    b.actor.send({ type: 'REJECT' });
    await settle();
    expectEnded(a, 'rejected', 'remote');

    b.actor.send({ type: 'CALL' });
    expect(b.context()).toMatchObject({ session: 'b1', role: 'caller', end: null });
    await settle();
    expect(a.state()).toBe('incoming');
    expect(a.context()).toMatchObject({ session: 'b1', role: 'callee', end: null });

    a.actor.send({ type: 'ACCEPT' });
    await settle();
    expect(a.state()).toBe('active');
    expect(b.state()).toBe('active');
    // A's first peer was its own (declined) call's; the second is the callee's of B's call.
    expect(a.peers.map((p) => [p.input.polite, p.input.session])).toEqual([
      [false, 'a1'],
      [true, 'b1'],
    ]);
    expect(b.peers.map((p) => [p.input.polite, p.input.session])).toEqual([[false, 'b1']]);
    expect(wire.sentByB).toEqual([
      { kind: 'reject', session: 'a1', reason: 'declined' },
      { kind: 'invite', session: 'b1' },
    ]);
    expect(wire.sentByA).toEqual([
      { kind: 'invite', session: 'a1' },
      { kind: 'accept', session: 'b1' },
    ]);

    a.actor.send({ type: 'HANGUP' });
    await settle();
    a.actor.send({ type: 'CALL' });
    await settle();
    expect(a.context().session).toBe('a2');
    expect(b.state()).toBe('incoming');
  });

  it('default session ids are random, URL-safe, 16+ characters and valid in the protocol', async () => {
    const ids = new Set(Array.from({ length: 1000 }, () => randomSessionId()));
    expect(ids.size).toBe(1000);
    for (const id of ids) {
      expect(id).toMatch(/^[A-Za-z0-9_-]{16,}$/);
      expect(parsePeerMessage({ kind: 'accept', session: id }).ok).toBe(true);
    }

    const wire = createTestSignalingPair();
    const a = createSide(wire.a);
    const b = createSide(wire.b);
    a.actor.send({ type: 'CALL' });
    await settle();
    const session = a.context().session;
    expect(session).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    expect(b.context().session).toBe(session);
  });
});

/** Runs of the crossing-invites property; each takes a few ms of CPU (the whole file about 1 s). */
const CROSSING_RUNS = propertyRuns(100);

describe('call machine: crossing invites', () => {
  const sessionId = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,24}$/);

  it('both sides end active on the smaller session with opposite roles, without any ACCEPT, prepared (PREPARE before CALL) or not', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.tuple(sessionId, sessionId).filter(([x, y]) => x !== y),
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1, max: 50 }),
        fc.nat(),
        fc.tuple(fc.boolean(), fc.boolean()),
        async ([idA, idB], aToB, bToA, offsetSeed, [preparedA, preparedB]) => {
          const wire = createTestSignalingPair({ aToB, bToA });
          const a = createSide(wire.a, { sessionIds: [idA] });
          const b = createSide(wire.b, { sessionIds: [idB] });
          try {
            // A prepared line's peer is the one its CALL rings with: nothing else changes.
            if (preparedA) a.actor.send({ type: 'PREPARE' });
            if (preparedB) b.actor.send({ type: 'PREPARE' });
            a.actor.send({ type: 'CALL' });
            // B presses CALL before A's invite reaches it: the invites cross.
            await vi.advanceTimersByTimeAsync(offsetSeed % aToB);
            expect(b.state()).toBe(preparedB ? 'prepared' : 'idle');
            b.actor.send({ type: 'CALL' });
            await vi.advanceTimersByTimeAsync(SETTLE);

            const winner = idA < idB ? idA : idB;
            const [caller, callee] = idA < idB ? [a, b] : [b, a];
            const [callerSent, calleeSent] = idA < idB ? [wire.sentByA, wire.sentByB] : [wire.sentByB, wire.sentByA];

            expect(a.state()).toBe('active');
            expect(b.state()).toBe('active');
            expect(a.context().session).toBe(winner);
            expect(b.context().session).toBe(winner);
            expect(caller.context().role).toBe('caller');
            expect(callee.context().role).toBe('callee');
            expect(caller.peers.map((p) => [p.input.polite, p.input.session])).toEqual([[false, winner]]);
            // The side whose invite lost started a caller peer with it; that one is closed.
            const loser = winner === idA ? idB : idA;
            expect(callee.peers.map((p) => [p.input.polite, p.input.session])).toEqual([
              [false, loser],
              [true, winner],
            ]);
            expect(callee.rtcs.map((rtc) => rtc.closed)).toEqual([true, false]);
            // Exactly one accept, from the side whose invite lost, for the winning session.
            expect(callerSent).toEqual([{ kind: 'invite', session: winner }]);
            expect(calleeSent).toEqual([
              { kind: 'invite', session: winner === idA ? idB : idA },
              { kind: 'accept', session: winner },
            ]);
          } finally {
            a.actor.stop();
            b.actor.stop();
          }
        },
      ),
      { numRuns: CROSSING_RUNS },
    );
    // The budget of the other property tests (negotiation.property.test.ts): vitest's default 5 s
    // is ten times what the runs take, and a run beside two CPU burners and a Chromium benchmark
    // took longer (the file took 8.5 s instead of 0.8 s); simulated time is unaffected.
  }, Math.max(60_000, CROSSING_RUNS * 100));

  it('the winning caller’s offer and candidates that reach us before its invite is handled are not lost: our callee peer reads them', async () => {
    // A's invite (session b9) crosses B's (a1, smaller: B's wins). B offers right behind its
    // invite; if B's offer is handled before B's invite (A still outgoing, its caller peer of the
    // losing session running), A's callee peer must still get it, or the call never connects.
    const wire = createTestSignalingPair();
    const a = createSide(wire.a, { sessionIds: ['b9'] });
    a.actor.send({ type: 'CALL' });
    expect(a.state()).toBe('outgoing');
    const offer: PeerMessage = { kind: 'description', session: 'a1', description: { type: 'offer', sdp: 'v=0 remote offer' } };
    const candidate: PeerMessage = { kind: 'candidate', session: 'a1', candidate: { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0' } };
    const stale: PeerMessage = { kind: 'candidate', session: 'zz', candidate: null };
    wire.injectToA(stale);
    wire.injectToA(offer);
    wire.injectToA(candidate);
    wire.injectToA({ kind: 'invite', session: 'a1' });
    await settle();
    expect(a.state()).toBe('active');
    expect(a.context()).toMatchObject({ session: 'a1', role: 'callee' });
    const callee = a.peers[1]!;
    expect(callee.input).toMatchObject({ polite: true, session: 'a1' });
    const read: PeerMessage[] = [];
    const subscription = callee.input.signaling.messages$.subscribe((message) => read.push(message));
    subscription.unsubscribe();
    expect(read).toEqual([offer, candidate]);
  });

  it('with default session ids too', async () => {
    const wire = createTestSignalingPair();
    const a = createSide(wire.a);
    const b = createSide(wire.b);
    a.actor.send({ type: 'CALL' });
    b.actor.send({ type: 'CALL' });
    await settle();
    expect(a.state()).toBe('active');
    expect(b.state()).toBe('active');
    expect(a.context().session).toBe(b.context().session);
    expect([a.context().role, b.context().role].sort()).toEqual(['callee', 'caller']);
    expect([...wire.sentByA, ...wire.sentByB].filter((m) => m.kind === 'accept')).toHaveLength(1);
  });
});

describe('call machine: how each side starts its peer', () => {
  it('the caller’s peer offers at once (offerOnStart); the callee’s waits for the caller’s offer', async () => {
    const { a, b } = await establishCall();
    expect(a.peers[0]!.input).toMatchObject({ offerOnStart: true, awaitRemoteOffer: false });
    expect(b.peers[0]!.input).toMatchObject({ offerOnStart: false, awaitRemoteOffer: true });
  });
});

/** A description and a candidate of session a1, as a call's peer sends them. */
const descriptionOfA1 = (type: 'offer' | 'answer'): PeerMessage => ({ kind: 'description', session: 'a1', description: { type, sdp: 'v=0\r\n' } });
const candidateOfA1: PeerMessage = {
  kind: 'candidate',
  session: 'a1',
  candidate: { candidate: 'candidate:1 1 udp 1 127.0.0.1 1000 typ host', sdpMid: '0', sdpMLineIndex: 0 },
};

describe('call machine: prepareWhileRinging', () => {
  const answer = descriptionOfA1('answer');
  const candidate = candidateOfA1;

  it('runs the callee’s peer while it rings, holds what it sends, and sends it right after the accept', async () => {
    const { wire, a, b } = createPair({}, { prepareWhileRinging: true });
    a.actor.send({ type: 'CALL' });
    await settle();
    expect(b.state()).toBe('incoming');
    expect(b.peers).toHaveLength(1);
    expect(b.peers[0]!.input).toMatchObject({ polite: true, awaitRemoteOffer: true, offerOnStart: false, session: 'a1' });
    // The peer reads the live port (nothing is replayed) and its sends wait for ACCEPT.
    expect(b.peers[0]!.input.signaling.messages$).toBe(wire.b.messages$);
    b.peers[0]!.input.signaling.send(answer);
    b.peers[0]!.input.signaling.send(candidate);
    await settle();
    expect(wire.sentByB).toEqual([]);

    b.actor.send({ type: 'ACCEPT' });
    expect(b.state()).toBe('active');
    expect(wire.sentByB).toEqual([{ kind: 'accept', session: 'a1' }, answer, candidate]);
    b.peers[0]!.input.signaling.send(candidate);
    expect(wire.sentByB).toHaveLength(4);
    await settle();
    expect(a.state()).toBe('active');
    // The same peer runs on into active.
    expect(b.peers).toHaveLength(1);
    expect(b.rtcs).toEqual([{ closed: false }]);
  });

  it('a declined prepared call closes the callee’s connection and never sends what its peer made', async () => {
    const { wire, a, b } = createPair({}, { prepareWhileRinging: true });
    a.actor.send({ type: 'CALL' });
    await settle();
    b.peers[0]!.input.signaling.send(answer);
    b.actor.send({ type: 'REJECT' });
    await settle();
    expectEnded(b, 'declined', 'local');
    expectEnded(a, 'rejected', 'remote');
    expect(b.rtcs).toEqual([{ closed: true }]);
    expect(wire.sentByB).toEqual([{ kind: 'reject', session: 'a1', reason: 'declined' }]);
  });

  it('a prepared peer that fails while the call rings declines it as unavailable', async () => {
    const { wire, a, b } = createPair({}, { prepareWhileRinging: true });
    a.actor.send({ type: 'CALL' });
    await settle();
    b.peers[0]!.fail(new Error('bad offer'));
    await settle();
    expectEnded(b, 'connection-failed', 'local');
    expect(b.context().end?.detail).toBe('bad offer');
    expect(wire.sentByB).toEqual([{ kind: 'reject', session: 'a1', reason: 'unavailable' }]);
    expectEnded(a, 'unavailable', 'remote');
  });

  it('an unanswered prepared call times out as missed, like an unprepared one', async () => {
    const { wire, a, b } = createPair({}, { prepareWhileRinging: true });
    a.actor.send({ type: 'CALL' });
    await settle();
    await vi.advanceTimersByTimeAsync(RING);
    expectEnded(b, 'missed', 'local');
    expect(wire.sentByB).toEqual([{ kind: 'reject', session: 'a1', reason: 'unavailable' }]);
    expect(b.rtcs).toEqual([{ closed: true }]);
  });
});

describe('call machine: PREPARE (the caller’s peer before CALL)', () => {
  const offer = descriptionOfA1('offer');
  const candidate = candidateOfA1;

  it('runs the caller’s peer at once and sends nothing; CALL sends the invite, then what the peer made, and the same peer runs on', async () => {
    const { wire, a, b } = createPair({ media: { audio: true, video: false } });
    a.actor.send({ type: 'PREPARE' });
    expect(a.state()).toBe('prepared');
    expect(a.context()).toMatchObject({ session: 'a1', role: 'caller', media: null });
    expect(a.peers).toHaveLength(1);
    expect(a.peers[0]!.input).toMatchObject({ polite: false, offerOnStart: true, awaitRemoteOffer: false, session: 'a1' });
    a.peers[0]!.input.signaling.send(offer);
    a.peers[0]!.input.signaling.send(candidate);
    await vi.advanceTimersByTimeAsync(RING + SETTLE);
    // No ring timer runs while prepared, and the remote sees nothing.
    expect(a.state()).toBe('prepared');
    expect(wire.sentByA).toEqual([]);
    expect(b.state()).toBe('idle');

    a.actor.send({ type: 'CALL', media: { audio: true, video: true } });
    expect(a.state()).toBe('outgoing');
    expect(wire.sentByA).toEqual([{ kind: 'invite', session: 'a1', media: { audio: true, video: true } }, offer, candidate]);
    a.peers[0]!.input.signaling.send(candidate);
    expect(wire.sentByA).toHaveLength(4);
    await settle();
    expect(b.state()).toBe('incoming');
    expect(b.context().earlySignals).toEqual([offer, candidate, candidate]);
    b.actor.send({ type: 'ACCEPT' });
    await settle();
    expect(a.state()).toBe('active');
    expect(a.peers).toHaveLength(1);
    expect(a.rtcs).toEqual([{ closed: false }]);
  });

  it('CALL from prepared without media uses the input media; the ring timer starts at CALL', async () => {
    const { wire, a, b } = createPair({ media: { audio: true, video: false } }, { delays: { incomingTimeout: 2 * RING } });
    a.actor.send({ type: 'PREPARE' });
    await vi.advanceTimersByTimeAsync(RING);
    a.actor.send({ type: 'CALL' });
    expect(wire.sentByA).toEqual([{ kind: 'invite', session: 'a1', media: { audio: true, video: false } }]);
    await vi.advanceTimersByTimeAsync(RING - 1);
    expect(a.state()).toBe('outgoing');
    await vi.advanceTimersByTimeAsync(1);
    expectEnded(a, 'no-answer', 'local');
    await settle();
    expectEnded(b, 'missed', 'remote');
  });

  it('CANCEL closes the prepared connection unsent and goes back to idle; the next CALL is a new session', async () => {
    const { wire, a } = createPair();
    a.actor.send({ type: 'PREPARE' });
    a.peers[0]!.input.signaling.send(offer);
    a.actor.send({ type: 'CANCEL' });
    expect(a.state()).toBe('idle');
    expect(a.context()).toMatchObject({ session: null, role: null, heldSignaling: null });
    expect(a.rtcs).toEqual([{ closed: true }]);
    expect(a.hasPeer()).toBe(false);
    await settle();
    expect(wire.sentByA).toEqual([]);
    a.actor.send({ type: 'CALL' });
    expect(wire.sentByA).toEqual([{ kind: 'invite', session: 'a2' }]);
    expect(a.peers).toHaveLength(2);
  });

  it('a remote invite closes the prepared connection unsent and rings as in idle; ACCEPT runs a new, polite peer', async () => {
    const { wire, a, b } = createPair();
    a.actor.send({ type: 'PREPARE' });
    a.peers[0]!.input.signaling.send(offer);
    b.actor.send({ type: 'CALL' });
    await settle();
    expect(a.state()).toBe('incoming');
    expect(a.context()).toMatchObject({ session: 'b1', role: 'callee' });
    expect(a.rtcs).toEqual([{ closed: true }]);
    expect(wire.sentByA).toEqual([]);
    a.actor.send({ type: 'ACCEPT' });
    await settle();
    expect(a.state()).toBe('active');
    expect(b.state()).toBe('active');
    expect(a.peers).toHaveLength(2);
    expect(a.peers[1]!.input).toMatchObject({ polite: true, offerOnStart: false, session: 'b1' });
    expect(wire.sentByA).toEqual([{ kind: 'accept', session: 'b1' }]);
  });

  it('with prepareWhileRinging, a remote invite replaces the prepared peer with a ringing callee’s', async () => {
    const { wire, a, b } = createPair({ prepareWhileRinging: true });
    a.actor.send({ type: 'PREPARE' });
    a.peers[0]!.input.signaling.send(offer);
    b.actor.send({ type: 'CALL' });
    await settle();
    expect(a.state()).toBe('incoming');
    expect(a.actor.getSnapshot().matches({ peerRunning: 'incoming' })).toBe(true);
    expect(a.rtcs).toEqual([{ closed: true }, { closed: false }]);
    expect(a.peers[1]!.input).toMatchObject({ polite: true, awaitRemoteOffer: true, session: 'b1' });
    a.peers[1]!.input.signaling.send({ ...descriptionOfA1('answer'), session: 'b1' });
    await settle();
    expect(wire.sentByA).toEqual([]);
    a.actor.send({ type: 'ACCEPT' });
    expect(wire.sentByA.map((message) => message.kind)).toEqual(['accept', 'description']);
  });

  it('a busy app answers a remote invite busy and stays prepared', async () => {
    let busy = false;
    const { wire, a, b } = createPair({ isBusy: () => busy });
    a.actor.send({ type: 'PREPARE' });
    busy = true;
    b.actor.send({ type: 'CALL' });
    await settle();
    expect(a.state()).toBe('prepared');
    expect(a.rtcs).toEqual([{ closed: false }]);
    expect(wire.sentByA).toEqual([{ kind: 'reject', session: 'b1', reason: 'busy' }]);
    expectEnded(b, 'busy', 'remote');
  });

  it('a prepared peer that fails ends connection-failed and tells nobody', async () => {
    const { wire, a } = createPair();
    a.actor.send({ type: 'PREPARE' });
    a.peers[0]!.fail(new Error('no camera'));
    await settle();
    expectEnded(a, 'connection-failed', 'local');
    expect(a.context().end?.detail).toBe('no camera');
    expect(wire.sentByA).toEqual([]);
    expect(a.rtcs).toEqual([{ closed: true }]);
  });

  it('PREPARE from ended prepares the next call; anywhere else it changes nothing', async () => {
    const { wire, a, b } = await establishCall();
    a.actor.send({ type: 'PREPARE' });
    expect(a.state()).toBe('active');
    expect(a.peers).toHaveLength(1);
    a.actor.send({ type: 'HANGUP' });
    await settle();
    expectEnded(b, 'remote-hangup', 'remote');
    b.actor.send({ type: 'PREPARE' });
    expect(b.state()).toBe('prepared');
    expect(b.context()).toMatchObject({ session: 'b1', role: 'caller', end: null });
    b.actor.send({ type: 'PREPARE' });
    expect(b.peers).toHaveLength(2);
    expect(wire.sentByB).toEqual([{ kind: 'accept', session: 'a1' }]);
  });
});
