import { afterEach, describe, expect, it } from 'vitest';
import { SimulatedClock, assign, createActor, sendTo, setup } from 'xstate';
import type { StateValue } from 'xstate';
import { createPeer } from '../src/create-peer.js';
import type { CreatePeerOptions, Peer } from '../src/create-peer.js';
import { negotiationMachine } from '../src/machines/negotiation.machine.js';
import type { NegotiationEvent, NegotiationParentEvent, NegotiationNotice } from '../src/machines/negotiation.machine.js';
import { DEFAULT_SESSION, negotiationOf } from '../src/machines/peer.machine.js';
import type { PeerEmitted } from '../src/machines/peer.machine.js';
import type { CandidateFilter } from '../src/machines/peer.types.js';
import type { IceCandidate, RtcPort } from '../src/ports/rtc.js';
import type { PeerMessage, WireDescription } from '../src/protocol/peer-message.js';
import { iceUfragsOf } from '../src/sdp.js';
import { createFakeNetwork, createSignalingPair } from '../src/testing/index.js';
import type { FakeRtcPort, FakeSignalingPort, SignalingEnd } from '../src/testing/index.js';
import { ManualScheduler } from './helpers/manual-scheduler.js';
import type { LabelMatch } from './helpers/manual-scheduler.js';
import { collectUnhandledRejections } from './helpers/unhandled-rejections.js';

// Deterministic unit tests of the negotiation machine (perfect negotiation, W3C webrtc-pc §10.7).
// A ManualScheduler holds every RTC completion of the fake network and every signaling delivery
// of the fake pair, so each test writes down one exact interleaving and checks the machine's
// state, the RTC calls it made (`operations`) and what it reported, step by step.
//
// Labels (as the fakes write them): `A: negotiation-needed check`, `A: createOffer() completes`,
// `A: setLocalDescription(offer) completes`, `A: setRemoteDescription(offer) fails (OperationError)`,
// `A: addIceCandidate(127.0.0.1:50011 u0g1) completes`, `A: gathers candidate 1 (ufrag u0g1)`,
// `A->B: description(offer)`, `B->A: candidate`, `B->A: candidate(end)`, `A<->B: ICE connects`.
//
// A is the impolite peer and B the polite one, unless a test says otherwise. Port A's host
// candidates of its first ICE generation use UDP ports 50011 and 50012, B's 51011 and 51012.

type Side = 'A' | 'B';

/** Every signaling delivery, both directions. */
const DELIVERIES = /^[AB]->[AB]: /;
const TO_A = /^B->A: /;
const TO_B = /^A->B: /;

const unhandled = collectUnhandledRejections();

type NegotiationRegion = NonNullable<ReturnType<typeof negotiationOf>>;

interface Pair {
  readonly scheduler: ManualScheduler;
  /** The machines' clock (their delays); advance it to fire a timeout. */
  readonly clock: SimulatedClock;
  readonly ports: Readonly<Record<Side, FakeRtcPort>>;
  readonly signaling: Readonly<Record<Side, FakeSignalingPort>>;
  readonly peers: Readonly<Record<Side, Peer>>;
  /** Everything each peer emitted (xstate `emit`), including after a close. */
  readonly emitted: Readonly<Record<Side, PeerEmitted[]>>;
  negotiation(side: Side): NegotiationRegion;
  state(side: Side): StateValue;
  notices(side: Side, notice?: NegotiationNotice | 'filtered-candidate'): { notice: string; detail: string }[];
  errors(side: Side): { operation: string; name: string; message: string }[];
  /** Sends a message from `from` that skips the pair's `intercept` (a replay, a forgery). */
  inject(from: Side, message: PeerMessage): void;
}

interface PairOptions {
  readonly polite?: Side;
  readonly peerOptions?: Partial<Record<Side, Omit<Partial<CreatePeerOptions>, 'rtc' | 'signaling' | 'polite'>>>;
  readonly intercept?: (message: PeerMessage, from: SignalingEnd) => readonly PeerMessage[];
  /** Runs on the ports before the peers start (tracks added before call()). */
  readonly beforeStart?: (ports: Readonly<Record<Side, FakeRtcPort>>) => void;
}

/** Peers to close after each test. */
const started: Peer[] = [];

function startPair(options: PairOptions = {}): Pair {
  const scheduler = new ManualScheduler();
  const clock = new SimulatedClock();
  const network = createFakeNetwork({ scheduler });
  const ports = { A: network.createPort({ name: 'A' }), B: network.createPort({ name: 'B' }) };
  let bypass = false;
  const [a, b] = createSignalingPair({
    scheduler,
    intercept: (message, from) => (bypass || !options.intercept ? [message] : options.intercept(message, from)),
  });
  const signaling = { A: a, B: b };
  const polite = options.polite ?? 'B';
  const makePeer = (side: Side): Peer =>
    createPeer({ ...options.peerOptions?.[side], rtc: ports[side], signaling: signaling[side], polite: polite === side, clock });
  options.beforeStart?.(ports);
  const peers = { A: makePeer('A'), B: makePeer('B') };
  const emitted: Record<Side, PeerEmitted[]> = { A: [], B: [] };
  for (const side of ['A', 'B'] as const) peers[side].actor.on('*', (event) => emitted[side].push(event));

  const negotiation = (side: Side): NegotiationRegion => {
    const region = negotiationOf(peers[side].actor.getSnapshot());
    if (!region) throw new Error(`${side} has no negotiation region (the peer has ended)`);
    return region;
  };
  const pair: Pair = {
    scheduler,
    clock,
    ports,
    signaling,
    peers,
    emitted,
    negotiation,
    state: (side) => negotiation(side).value,
    notices: (side, notice) =>
      emitted[side]
        .filter((event) => event.type === 'notice')
        .filter((event) => notice === undefined || event.notice === notice)
        .map(({ notice: n, detail }) => ({ notice: n, detail })),
    errors: (side) =>
      emitted[side]
        .filter((event) => event.type === 'error')
        .map((event) => ({ operation: event.operation, name: event.error.name, message: event.error.message })),
    inject: (from, message) => {
      bypass = true;
      try {
        signaling[from].send(message);
      } finally {
        bypass = false;
      }
    },
  };
  started.push(peers.A, peers.B);
  return pair;
}

afterEach(() => {
  for (const peer of started.splice(0)) if (peer.actor.getSnapshot().status === 'active') peer.close();
  expect(unhandled.splice(0).map(String)).toEqual([]);
});

// ---- small readers ----

function count(list: readonly string[], entry: string | RegExp): number {
  return list.filter((item) => (typeof entry === 'string' ? item === entry : entry.test(item))).length;
}

function descriptionsSent(port: FakeSignalingPort): WireDescription[] {
  return port.sent.flatMap((message) => (message.kind === 'description' ? [message.description] : []));
}

function candidatesSent(port: FakeSignalingPort): (IceCandidate | null)[] {
  return port.sent.flatMap((message) => (message.kind === 'candidate' ? [message.candidate] : []));
}

/** The UDP port of a candidate (RFC 8839 §5.1 field 6), as written in SDP or trickled. */
function candidatePort(candidate: string): number {
  return Number(candidate.replace(/^a=/, '').split(' ')[5]);
}

function sdpCandidatePorts(sdp: string): number[] {
  return sdp
    .split('\r\n')
    .filter((line) => line.startsWith('a=candidate:'))
    .map(candidatePort);
}

function negotiatedEvents(pair: Pair, side: Side): { round: number; iceRestart: boolean }[] {
  return pair.emitted[side].flatMap((e) => (e.type === 'negotiated' ? [{ round: e.round, iceRestart: e.iceRestart }] : []));
}

function description(type: WireDescription['type'], sdp: string): PeerMessage {
  return { kind: 'description', session: DEFAULT_SESSION, description: { type, sdp } };
}

/** The invariants of a finished negotiation: both sides stable, connected, the same media. */
function expectSettled(pair: Pair, { errors = 0 }: { errors?: number } = {}): void {
  expect(pair.scheduler.pending()).toEqual([]);
  for (const side of ['A', 'B'] as const) {
    const port = pair.ports[side];
    const { value, context } = pair.negotiation(side);
    expect({ side, value, signalingState: port.signalingState, connectionState: port.connectionState }).toEqual({
      side,
      value: 'stable',
      signalingState: 'stable',
      connectionState: 'connected',
    });
    expect({ side, inbox: context.inbox, early: context.earlyCandidates, needed: context.negotiationNeeded }).toEqual({
      side,
      inbox: [],
      early: [],
      needed: false,
    });
    expect(port.illegalCalls).toEqual([]);
    expect(port.getTransceivers().map((t) => t.mid)).not.toContain(null);
  }
  expect(pair.errors('A').length + pair.errors('B').length).toBe(errors);
  // The same m-sections on both sides (each lists its own transceivers first).
  const kinds = (side: Side) =>
    pair.ports[side]
      .getTransceivers()
      .map((t) => `${t.mid}:${t.kind}`)
      .sort();
  expect(kinds('A')).toEqual(kinds('B'));
}

// ---------------------------------------------------------------------------------------------

describe('ManualScheduler', () => {
  it('releases by label, lists what is pending, and says so when nothing matches', async () => {
    const scheduler = new ManualScheduler();
    const seen: string[] = [];
    void scheduler.schedule(Promise.resolve('x'), 'first').then((value) => seen.push(`first ${value}`));
    void scheduler.schedule(Promise.resolve('y'), 'second').then((value) => seen.push(`second ${value}`));
    expect(scheduler.pending()).toEqual(['first', 'second']);
    await scheduler.release(/sec/);
    expect(seen).toEqual(['second y']);
    await expect(scheduler.release('third')).rejects.toThrow(/no pending task matches third; pending \(1\):\n {2}first/);
    await scheduler.runUntilIdle();
    expect(seen).toEqual(['second y', 'first x']);
    expect(scheduler.pending()).toEqual([]);
  });
});

describe('webrtc-pc §10.7 glare, impolite side: ignore the colliding offer and the candidates that belong to it', () => {
  it('A in awaitingAnswer ignores B’s offer, then drops B’s candidates without addIceCandidate or error', async () => {
    const pair = startPair();
    const { scheduler, ports } = pair;
    ports.A.addTransceiver('audio');
    ports.B.addTransceiver('video');
    await scheduler.runUntilIdle({ hold: DELIVERIES });
    // Both offers are applied and sent, nothing delivered yet.
    expect([pair.state('A'), pair.state('B')]).toEqual(['awaitingAnswer', 'awaitingAnswer']);
    expect([ports.A.signalingState, ports.B.signalingState]).toEqual(['have-local-offer', 'have-local-offer']);
    expect(pair.signaling.B.pending()).toBe(4); // offer, two candidates, end-of-candidates
    const bUfrag = iceUfragsOf(descriptionsSent(pair.signaling.B)[0]!.sdp)[0]!;

    await scheduler.release('B->A: description(offer)');
    expect(pair.state('A')).toBe('awaitingAnswer');
    expect(pair.negotiation('A').context.ignoreOffer).toBe(true);
    expect(pair.notices('A')).toEqual([{ notice: 'ignored-colliding-offer', detail: 'impolite peer keeps its own offer' }]);
    expect(ports.A.operations).toEqual(['addTransceiver(audio)', 'createOffer()', 'setLocalDescription(offer)']);

    await scheduler.release('B->A: candidate');
    await scheduler.release('B->A: candidate');
    await scheduler.release('B->A: candidate(end)');
    expect(pair.state('A')).toBe('awaitingAnswer');
    expect(pair.notices('A', 'dropped-candidate')).toEqual(
      Array.from({ length: 3 }, () => ({ notice: 'dropped-candidate', detail: 'belongs to an ignored offer' })),
    );
    expect(pair.negotiation('A').context.earlyCandidates).toEqual([]);
    expect(pair.negotiation('A').context.inbox).toEqual([]);
    expect(ports.A.operations).toEqual(['addTransceiver(audio)', 'createOffer()', 'setLocalDescription(offer)']);
    expect(pair.errors('A')).toEqual([]);

    await scheduler.runUntilIdle();
    expectSettled(pair);
    expect(ports.A.getTransceivers()).toHaveLength(2);
    // Nothing of the ignored offer's ICE generation ever reached A's port.
    expect(ports.A.operations.filter((op) => op.includes(bUfrag))).toEqual([]);
    expect(count(ports.A.operations, 'setRemoteDescription(offer)')).toBe(1); // B's second offer
  });
});

describe('W3C §10.7: a candidate the engine refuses while an offer is ignored is a notice, not an error', () => {
  it('A, ignoring B’s colliding second offer, adds a candidate that names its m-section; the refusal is swallowed', async () => {
    const pair = startPair();
    const { scheduler, ports } = pair;
    ports.A.addTransceiver('audio');
    await scheduler.runUntilIdle();
    expectSettled(pair);
    ports.A.addTransceiver('video');
    ports.B.addTransceiver('audio');
    await scheduler.runUntilIdle({ hold: DELIVERIES });
    expect([pair.state('A'), pair.state('B')]).toEqual(['awaitingAnswer', 'awaitingAnswer']);
    await scheduler.release('B->A: description(offer)');
    expect(pair.negotiation('A').context.ignoreOffer).toBe(true);

    // It fits A's remote description by its m-section, so it is handed to the engine, which
    // cannot parse it (webrtc-pc §4.4.1.6 OperationError).
    pair.inject('B', { kind: 'candidate', session: DEFAULT_SESSION, candidate: { candidate: 'candidate:garbage', sdpMid: '0' } });
    await scheduler.release('B->A: candidate');
    expect(ports.A.operations.at(-1)).toMatch(/^addIceCandidate\(.*garbage/);
    await scheduler.runUntil(() => pair.notices('A', 'candidate-not-applied').length > 0);
    expect(pair.notices('A', 'candidate-not-applied')).toEqual([{ notice: 'candidate-not-applied', detail: 'belongs to an ignored offer' }]);
    expect(pair.errors('A')).toEqual([]);
    expect(pair.state('A')).toBe('awaitingAnswer');

    await scheduler.runUntilIdle();
    expectSettled(pair);
    expect(ports.A.getTransceivers()).toHaveLength(3);
  });
});

describe('webrtc-pc §10.7 glare, polite side: roll back the own offer (explicitly), answer, then offer again', () => {
  it('B in awaitingAnswer gets A’s offer: rollback, setRemoteDescription(offer), createAnswer, setLocalDescription(answer), createOffer', async () => {
    const pair = startPair();
    const { scheduler, ports } = pair;
    ports.A.addTransceiver('audio');
    ports.B.addTransceiver('video');
    await scheduler.runUntilIdle({ hold: DELIVERIES });
    expect(pair.state('B')).toBe('awaitingAnswer');
    const before = ports.B.operations.length;

    await scheduler.release('A->B: description(offer)');
    expect(pair.state('B')).toBe('rollingBackLocalOffer');
    expect(ports.B.operations.slice(before)).toEqual(['setLocalDescription(rollback)']);
    expect(ports.B.signalingState).toBe('have-local-offer');

    await scheduler.release('B: setLocalDescription(rollback) completes');
    expect(pair.state('B')).toBe('applyingRemoteOffer');
    expect(ports.B.signalingState).toBe('stable');
    expect(pair.notices('B')).toEqual([{ notice: 'rolled-back-for-remote-offer', detail: 'polite peer yields' }]);
    expect(pair.negotiation('B').context.negotiationNeeded).toBe(true);

    await scheduler.release('B: setRemoteDescription(offer) completes');
    expect(pair.state('B')).toEqual({ answering: 'creatingAnswer' });
    expect(ports.B.signalingState).toBe('have-remote-offer');
    await scheduler.release('B: createAnswer() completes');
    expect(pair.state('B')).toEqual({ answering: 'applyingLocalAnswer' });
    await scheduler.release('B: setLocalDescription(answer) completes');
    // Stable again, and B's own video still needs negotiating: it offers at once.
    expect(pair.state('B')).toEqual({ makingOffer: 'creatingOffer' });
    expect(ports.B.operations.slice(before)).toEqual([
      'setLocalDescription(rollback)',
      'setRemoteDescription(offer)',
      'createAnswer()',
      'setLocalDescription(answer)',
      'createOffer()',
    ]);

    await scheduler.runUntilIdle();
    expectSettled(pair);
    expect(descriptionsSent(pair.signaling.B).map((d) => d.type)).toEqual(['offer', 'answer', 'offer']);
    expect(descriptionsSent(pair.signaling.A).map((d) => d.type)).toEqual(['offer', 'answer']);
    expect(ports.A.getTransceivers().map((t) => t.kind)).toEqual(['audio', 'video']);
    expect(ports.B.getTransceivers().map((t) => t.kind)).toEqual(['video', 'audio']);
  });
});

describe('awaitRemoteOffer (a callee): our own first offer waits for the remote one instead of colliding with it', () => {
  it('B’s tracks, added before A’s offer arrives, are negotiated after it: no collision, no rollback', async () => {
    const pair = startPair({ peerOptions: { B: { awaitRemoteOffer: true } } });
    const { scheduler, ports } = pair;
    ports.B.addTransceiver('video');
    await scheduler.runUntilIdle({ hold: DELIVERIES });
    // The need is kept, but B makes no offer of its own yet.
    expect(pair.state('B')).toBe('awaitingFirstOffer');
    expect(pair.negotiation('B').context.negotiationNeeded).toBe(true);
    expect(ports.B.operations).not.toContain('createOffer()');

    ports.A.addTransceiver('audio');
    await scheduler.runUntilIdle();
    expectSettled(pair);
    expect(pair.notices('A', 'ignored-colliding-offer')).toEqual([]);
    expect(pair.notices('B', 'rolled-back-for-remote-offer')).toEqual([]);
    expect(ports.B.operations).not.toContain('setLocalDescription(rollback)');
    // A's offer first; then B offers what it still needs, and both have both kinds.
    expect(descriptionsSent(pair.signaling.A).map((d) => d.type)).toEqual(['offer', 'answer']);
    expect(descriptionsSent(pair.signaling.B).map((d) => d.type)).toEqual(['answer', 'offer']);
    expect(ports.A.getTransceivers().map((t) => t.kind).sort()).toEqual(['audio', 'video']);
    expect(ports.B.getTransceivers().map((t) => t.kind).sort()).toEqual(['audio', 'video']);
  });

  it('when A’s offer already meets B’s need, B makes no second offer (the engine does not fire again)', async () => {
    const pair = startPair({ peerOptions: { B: { awaitRemoteOffer: true } } });
    const { scheduler, ports } = pair;
    ports.B.createDataChannel('b-side');
    await scheduler.runUntilIdle({ hold: DELIVERIES });
    expect(pair.negotiation('B').context.negotiationNeeded).toBe(true);

    ports.A.addTransceiver('audio');
    ports.A.createDataChannel('a-side');
    await scheduler.runUntilIdle();
    expectSettled(pair);
    // The answer negotiated B's data section too: one round, not two.
    expect(descriptionsSent(pair.signaling.A).map((d) => d.type)).toEqual(['offer']);
    expect(descriptionsSent(pair.signaling.B).map((d) => d.type)).toEqual(['answer']);
    expect(pair.negotiation('B').context.negotiationNeeded).toBe(false);
  });

  it('when no remote offer comes within firstOfferTimeout, B offers after all', async () => {
    const pair = startPair({ peerOptions: { B: { awaitRemoteOffer: true } } });
    const { scheduler, ports, clock } = pair;
    ports.B.addTransceiver('video');
    await scheduler.runUntilIdle();
    clock.increment(4_999);
    await scheduler.runUntilIdle();
    expect(ports.B.operations).not.toContain('createOffer()');

    clock.increment(1);
    await scheduler.runUntilIdle();
    expectSettled(pair);
    expect(descriptionsSent(pair.signaling.B).map((d) => d.type)).toEqual(['offer']);
    expect(ports.A.getTransceivers().map((t) => t.kind)).toEqual(['video']);
  });

  it('without it (the default), the same order collides and the polite side rolls back', async () => {
    const pair = startPair();
    const { scheduler, ports } = pair;
    ports.B.addTransceiver('video');
    await scheduler.runUntilIdle({ hold: DELIVERIES });
    expect(pair.state('B')).toBe('awaitingAnswer');
    ports.A.addTransceiver('audio');
    await scheduler.runUntilIdle({ hold: DELIVERIES });
    expect(pair.state('A')).toBe('awaitingAnswer');
    await scheduler.runUntilIdle();
    expectSettled(pair);
    expect(pair.notices('B', 'rolled-back-for-remote-offer')).toHaveLength(1);
  });
});

describe('offerOnStart (a caller): the first offer is made at once, not on negotiationneeded', () => {
  it('A, with its audio added before it starts, calls createOffer before any engine step ran; one round, no second offer', async () => {
    const pair = startPair({ peerOptions: { A: { offerOnStart: true } }, beforeStart: (ports) => ports.A.addTransceiver('audio') });
    const { scheduler, ports } = pair;
    // Nothing released yet: the engine's negotiation-needed check has not even run.
    expect(scheduler.pending().some((label) => label.includes('negotiation-needed'))).toBe(true);
    expect(ports.A.operations).toContain('createOffer()');
    expect(pair.state('A')).toEqual({ makingOffer: 'creatingOffer' });

    await scheduler.runUntilIdle();
    expectSettled(pair);
    expect(count(ports.A.operations, /^createOffer/)).toBe(1);
    expect(count(ports.B.operations, /^createOffer/)).toBe(0);
    expect(negotiatedEvents(pair, 'A')).toEqual([{ round: 1, iceRestart: false }]);
  });

  it.each([
    { value: { makingOffer: 'creatingOffer' }, release: [] as string[] },
    { value: { makingOffer: 'applyingLocalOffer' }, release: ['A: createOffer() completes'] },
  ])('a negotiationneeded that arrives in $value is met by the offer being made: no second round (webrtc-pc §4.7.3)', async ({ value, release }) => {
    const pair = startPair({ peerOptions: { A: { offerOnStart: true } }, beforeStart: (ports) => ports.A.addTransceiver('audio') });
    const { scheduler, ports } = pair;
    for (const label of release) await scheduler.release(label);
    expect(pair.state('A')).toEqual(value);
    pair.peers.A.actor.send({ type: 'RTC.NEGOTIATION_NEEDED' });
    expect(pair.negotiation('A').context.negotiationNeeded).toBe(false);

    await scheduler.runUntilIdle();
    expectSettled(pair);
    expect(count(ports.A.operations, /^createOffer/)).toBe(1);
    expect(descriptionsSent(pair.signaling.A).map((d) => d.type)).toEqual(['offer']);
  });

  it('the data channels listed in the input are on the port before the first offer: it carries them, one round', async () => {
    const pair = startPair({ peerOptions: { A: { offerOnStart: true, dataChannels: [{ label: 'chat' }] } } });
    const { scheduler, ports } = pair;
    await scheduler.runUntilIdle();
    expectSettled(pair);
    expect(count(ports.A.operations, /^createOffer/)).toBe(1);
    expect(descriptionsSent(pair.signaling.A).map((d) => d.type)).toEqual(['offer']);
    expect(descriptionsSent(pair.signaling.A)[0]?.sdp).toContain('m=application');
  });

  it('a track added after the offer was created is not lost: the engine fires again once stable, and a second round carries it', async () => {
    const pair = startPair({ peerOptions: { A: { offerOnStart: true } }, beforeStart: (ports) => ports.A.addTransceiver('audio') });
    const { scheduler, ports } = pair;
    await scheduler.release('A: createOffer() completes');
    ports.A.addTransceiver('video');
    await scheduler.runUntilIdle();
    expectSettled(pair);
    expect(count(ports.A.operations, /^createOffer/)).toBe(2);
    expect(ports.B.getTransceivers().map((t) => t.kind).sort()).toEqual(['audio', 'video']);
  });

  it.each(['A', 'B'] as const)('glare: both sides offer on start, %s polite: perfect negotiation sorts it out, no illegal call', async (polite) => {
    const pair = startPair({
      polite,
      peerOptions: { A: { offerOnStart: true }, B: { offerOnStart: true } },
      beforeStart: (ports) => {
        ports.A.addTransceiver('audio');
        ports.B.addTransceiver('video');
      },
    });
    const { scheduler, ports } = pair;
    expect([pair.state('A'), pair.state('B')]).toEqual([{ makingOffer: 'creatingOffer' }, { makingOffer: 'creatingOffer' }]);
    await scheduler.runUntilIdle();
    expectSettled(pair);
    const impolite = polite === 'A' ? 'B' : 'A';
    expect(pair.notices(impolite).map((n) => n.notice)).toContain('ignored-colliding-offer');
    expect(pair.notices(polite).map((n) => n.notice)).toContain('rolled-back-for-remote-offer');
    expect(ports[polite].operations).toContain('setLocalDescription(rollback)');
    expect(ports[impolite].operations).not.toContain('setLocalDescription(rollback)');
    // The impolite offer went through first; the polite side then offered its video again.
    expect(count(ports[impolite].operations, /^createOffer/)).toBe(1);
    expect(count(ports[polite].operations, /^createOffer/)).toBe(2);
    for (const side of ['A', 'B'] as const) expect(ports[side].getTransceivers().map((t) => t.kind).sort()).toEqual(['audio', 'video']);
  });
});

describe('webrtc-pc §10.7 makingOffer: a remote offer that arrives while we create ours collides once ours is applied', () => {
  it('impolite A: B’s offer waits in the inbox during createOffer/setLocalDescription, then is ignored', async () => {
    const pair = startPair();
    const { scheduler, ports } = pair;
    ports.A.addTransceiver('audio');
    ports.B.addTransceiver('video');
    await scheduler.release('A: negotiation-needed check');
    expect(pair.state('A')).toEqual({ makingOffer: 'creatingOffer' });
    // B offers and its offer reaches A; A's own createOffer is still pending.
    await scheduler.runUntil(() => pair.negotiation('A').context.inbox.length === 1, { hold: [/^A: /, TO_B] });
    expect(pair.state('A')).toEqual({ makingOffer: 'creatingOffer' });
    expect(pair.negotiation('A').context.inbox).toEqual([
      { kind: 'description', description: descriptionsSent(pair.signaling.B)[0] },
    ]);
    expect(ports.A.operations).toEqual(['addTransceiver(audio)', 'createOffer()']);

    await scheduler.release('A: createOffer() completes');
    expect(pair.state('A')).toEqual({ makingOffer: 'applyingLocalOffer' });
    expect(pair.negotiation('A').context.inbox).toHaveLength(1);
    expect(pair.notices('A')).toEqual([]);

    await scheduler.release('A: setLocalDescription(offer) completes');
    expect(pair.state('A')).toBe('awaitingAnswer');
    expect(pair.negotiation('A').context.inbox).toEqual([]);
    expect(pair.notices('A', 'ignored-colliding-offer')).toHaveLength(1);
    expect(ports.A.operations).toEqual(['addTransceiver(audio)', 'createOffer()', 'setLocalDescription(offer)']);

    await scheduler.runUntilIdle();
    expectSettled(pair);
    expect(ports.A.getTransceivers()).toHaveLength(2);
  });

  it('polite B: A’s offer waits in the inbox during createOffer/setLocalDescription, then B rolls back', async () => {
    const pair = startPair();
    const { scheduler, ports } = pair;
    ports.A.addTransceiver('audio');
    ports.B.addTransceiver('video');
    await scheduler.release('B: negotiation-needed check');
    expect(pair.state('B')).toEqual({ makingOffer: 'creatingOffer' });
    await scheduler.runUntil(() => pair.negotiation('B').context.inbox.length === 1, { hold: [/^B: /, TO_A] });
    expect(pair.state('B')).toEqual({ makingOffer: 'creatingOffer' });
    expect(ports.B.operations).toEqual(['addTransceiver(video)', 'createOffer()']);

    await scheduler.release('B: createOffer() completes');
    expect(pair.state('B')).toEqual({ makingOffer: 'applyingLocalOffer' });
    expect(pair.negotiation('B').context.inbox).toHaveLength(1);

    await scheduler.release('B: setLocalDescription(offer) completes');
    expect(pair.state('B')).toBe('rollingBackLocalOffer');
    expect(pair.negotiation('B').context.inbox).toEqual([]);
    expect(ports.B.operations).toEqual([
      'addTransceiver(video)',
      'createOffer()',
      'setLocalDescription(offer)',
      'setLocalDescription(rollback)',
    ]);

    await scheduler.runUntilIdle();
    expectSettled(pair);
    expect(pair.notices('B', 'rolled-back-for-remote-offer')).toHaveLength(1);
    expect(ports.B.getTransceivers()).toHaveLength(2);
  });
});

describe('an offer that arrives while our answer is applied is not a collision: it waits for stable', () => {
  it('A answers B’s offer; B’s next offer arrives during setLocalDescription(answer) and is applied after it', async () => {
    // B is a port driven by hand here: a peer machine never sends a second offer before the
    // answer to its first, but the network may deliver one (another tab, a replay).
    const pair = startScriptedB();
    const { scheduler, A, B, sb } = pair;
    B.addTransceiver('audio');
    const offer1 = await pair.step(B.createOffer(), 'B: createOffer() completes');
    await pair.step(B.setLocalDescription(offer1), 'B: setLocalDescription(offer) completes');
    sb.send(description('offer', offer1.sdp!));

    await scheduler.runUntil(() => JSON.stringify(pair.state()) === '{"answering":"applyingLocalAnswer"}', { hold: /^B: / });
    expect(scheduler.pending()).toContain('A: setLocalDescription(answer) completes');
    expect(A.signalingState).toBe('have-remote-offer');

    // createOffer is legal in have-local-offer (webrtc-pc §4.4.1.5): a newer offer, same media.
    const offer2 = await pair.step(B.createOffer(), 'B: createOffer() completes');
    expect(offer2.sdp).not.toBe(offer1.sdp);
    sb.send(description('offer', offer2.sdp!));
    await scheduler.release('B->A: description(offer)');
    expect(pair.state()).toEqual({ answering: 'applyingLocalAnswer' });
    expect(pair.negotiation().context.inbox).toEqual([{ kind: 'description', description: { type: 'offer', sdp: offer2.sdp } }]);
    expect(count(A.operations, 'setRemoteDescription(offer)')).toBe(1);
    expect(pair.notices()).toEqual([]);

    await scheduler.release('A: setLocalDescription(answer) completes');
    expect(pair.state()).toBe('applyingRemoteOffer');
    expect(A.operations.slice(-2)).toEqual(['setLocalDescription(answer)', 'setRemoteDescription(offer)']);

    await scheduler.runUntilIdle({ hold: /^B: / });
    expect(pair.state()).toBe('stable');
    expect(A.signalingState).toBe('stable');
    expect(A.operations.filter((op) => !op.startsWith('addIceCandidate'))).toEqual([
      'setRemoteDescription(offer)',
      'createAnswer()',
      'setLocalDescription(answer)',
      'setRemoteDescription(offer)',
      'createAnswer()',
      'setLocalDescription(answer)',
    ]);
    expect(descriptionsSent(pair.sa).map((d) => d.type)).toEqual(['answer', 'answer']);
    expect(pair.notices()).toEqual([]);
    expect(pair.errors()).toEqual([]);
    expect(A.illegalCalls).toEqual([]);
  });
});

describe('W3C isSettingRemoteAnswerPending: an offer that arrives while the remote answer is applied is not a collision', () => {
  it('impolite A in applyingRemoteAnswer does not ignore B’s next offer; it applies it once stable', async () => {
    const pair = startPair();
    const { scheduler, ports } = pair;
    ports.A.addTransceiver('audio');
    await scheduler.runUntil(() => ports.B.signalingState === 'have-remote-offer');
    // negotiationneeded while B answers: B offers right after its answer.
    ports.B.addTransceiver('video');
    const bGathering = /^B: (ICE gathering|gathers)/;
    await scheduler.runUntil(() => pair.state('A') === 'applyingRemoteAnswer', { hold: bGathering });
    expect(ports.A.signalingState).toBe('have-local-offer');
    const hasOffer = () => pair.negotiation('A').context.inbox.some((s) => s.kind === 'description' && s.description.type === 'offer');
    await scheduler.runUntil(hasOffer, { hold: [bGathering, 'A: setRemoteDescription(answer) completes'] });
    expect(pair.state('A')).toBe('applyingRemoteAnswer');
    expect(pair.negotiation('A').context.ignoreOffer).toBe(false);
    expect(pair.notices('A')).toEqual([]);
    expect(count(ports.A.operations, 'setRemoteDescription(offer)')).toBe(0);

    await scheduler.release('A: setRemoteDescription(answer) completes');
    expect(pair.notices('A', 'ignored-colliding-offer')).toEqual([]);
    expect(pair.state('A')).toBe('applyingRemoteOffer');
    expect(ports.A.operations.slice(-2)).toEqual(['setRemoteDescription(answer)', 'setRemoteDescription(offer)']);

    await scheduler.runUntilIdle();
    expectSettled(pair);
    expect(pair.notices('A', 'ignored-colliding-offer')).toEqual([]);
    expect(ports.A.getTransceivers().map((t) => t.kind)).toEqual(['audio', 'video']);
  });
});

/** A pair whose A made its first offer (audio) and trickled its candidates, with that offer held back from B. */
async function withFirstOfferHeld(): Promise<{ readonly pair: Pair; readonly delayedOffer: PeerMessage }> {
  let delayedOffer: PeerMessage | null = null;
  const pair = startPair({
    intercept: (message, from) => {
      if (from === 'a' && message.kind === 'description' && delayedOffer === null) {
        delayedOffer = message;
        return [];
      }
      return [message];
    },
  });
  pair.ports.A.addTransceiver('audio');
  await pair.scheduler.runUntilIdle();
  if (delayedOffer === null) throw new Error('A made no offer');
  return { pair, delayedOffer };
}

describe('webrtc-pc §4.4.1.6 addIceCandidate needs a remote description: early candidates are held, then added in order', () => {
  it('B holds A’s candidates until A’s (delayed) offer is applied, then adds them in arrival order while it answers, without waiting for them', async () => {
    const { pair, delayedOffer } = await withFirstOfferHeld();
    const { scheduler, ports } = pair;
    const sent = candidatesSent(pair.signaling.A);
    expect(sent.map((c) => (c === null ? null : candidatePort(c.candidate)))).toEqual([50011, 50012, null]);
    const held = pair.negotiation('B').context.earlyCandidates;
    expect(held).toEqual(sent.map((candidate) => ({ kind: 'candidate', candidate })));
    expect(pair.state('B')).toBe('stable');
    expect(ports.B.operations).toEqual([]);
    expect(pair.notices('B')).toEqual([]);

    pair.inject('A', delayedOffer);
    await scheduler.release('A->B: description(offer)');
    expect(pair.state('B')).toBe('applyingRemoteOffer');
    expect(pair.negotiation('B').context.earlyCandidates).toHaveLength(3);
    await scheduler.release('B: setRemoteDescription(offer) completes');
    // Released into the inbox, ahead of anything else, and all given to the engine in the same
    // turn, chained after createAnswer (webrtc-pc §4.4.1.2): in before the answer is applied.
    expect(pair.negotiation('B').context.earlyCandidates).toEqual([]);
    expect(pair.negotiation('B').context.inbox).toEqual([]);
    expect(pair.state('B')).toEqual({ answering: 'creatingAnswer' });
    expect(ports.B.operations).toEqual([
      'setRemoteDescription(offer)',
      'createAnswer()',
      'addIceCandidate(127.0.0.1:50011 u0g1)',
      'addIceCandidate(127.0.0.1:50012 u0g1)',
      'addIceCandidate(null)',
    ]);

    await scheduler.runUntilIdle();
    expectSettled(pair);
    expect(ports.B.operations.slice(5)).toEqual(['setLocalDescription(answer)']);
  });
});

describe('the candidates that came with an offer go in before the answer is applied', () => {
  it('one the engine refuses is reported and the answer is still made, sent and applied', async () => {
    const { pair, delayedOffer: offer } = await withFirstOfferHeld();
    const { scheduler, ports } = pair;
    // The offer, then a candidate of it that names a real m-section but cannot be parsed.
    pair.inject('A', offer);
    pair.inject('A', { kind: 'candidate', session: DEFAULT_SESSION, candidate: { candidate: 'candidate:garbage', sdpMid: '0' } });
    await scheduler.release('A->B: description(offer)');
    await scheduler.release('A->B: candidate');
    await scheduler.release('B: setRemoteDescription(offer) completes');
    expect(pair.state('B')).toEqual({ answering: 'creatingAnswer' });

    await scheduler.runUntilIdle();
    expectSettled(pair, { errors: 1 });
    expect(pair.errors('B')).toEqual([{ operation: 'addIceCandidate', name: 'OperationError', message: expect.stringMatching(/could not be parsed/) as unknown }]);
    // A's own candidates, held while its offer was away, and the refused one, all before the answer is applied.
    const answerAt = ports.B.operations.indexOf('setLocalDescription(answer)');
    expect(ports.B.operations.slice(0, answerAt + 1)).toEqual([
      'setRemoteDescription(offer)',
      'createAnswer()',
      'addIceCandidate(127.0.0.1:50011 u0g1)',
      'addIceCandidate(127.0.0.1:50012 u0g1)',
      'addIceCandidate(null)',
      expect.stringMatching(/^addIceCandidate\(.*garbage/) as unknown,
      'setLocalDescription(answer)',
    ]);
    expect(ports.A.signalingState).toBe('stable');
  });
});

describe('JSEP §5.6: an answer in stable answers nothing in flight (duplicate or stale): a notice, never a call', () => {
  it('a duplicated answer is dropped as already applied; a replayed answer never applied is dropped as stale', async () => {
    let duplicated = false;
    const pair = startPair({
      intercept: (message, from) => {
        if (from === 'b' && message.kind === 'description' && message.description.type === 'answer' && !duplicated) {
          duplicated = true;
          return [message, message];
        }
        return [message];
      },
    });
    const { scheduler, ports } = pair;
    ports.A.addTransceiver('audio');
    await scheduler.runUntilIdle();
    expectSettled(pair);
    expect(pair.notices('A')).toEqual([{ notice: 'duplicate-description', detail: 'already applied' }]);
    expect(count(ports.A.operations, 'setRemoteDescription(answer)')).toBe(1);

    // The same answer with another session version (o= line): never applied, answers nothing.
    const answer = descriptionsSent(pair.signaling.B)[0]!;
    const stale = answer.sdp.replace(/^(o=- \d+) (\d+)/m, (_, origin: string, version: string) => `${origin} ${Number(version) + 7}`);
    expect(stale).not.toBe(answer.sdp);
    const operations = [...ports.A.operations];
    pair.inject('B', description('answer', stale));
    await scheduler.release('B->A: description(answer)');
    expect(pair.state('A')).toBe('stable');
    expect(pair.notices('A')).toEqual([
      { notice: 'duplicate-description', detail: 'already applied' },
      { notice: 'stale-answer', detail: 'answer received in stable' },
    ]);
    expect(ports.A.operations).toEqual(operations);
    await scheduler.runUntilIdle();
    expectSettled(pair);
  });
});

describe('webrtc-pc §4.7.3 negotiationneeded while not stable is remembered and served once stable', () => {
  it('transceivers added in have-local-offer (A) and have-remote-offer (B) are all negotiated', async () => {
    const pair = startPair();
    const { scheduler, ports } = pair;
    ports.A.addTransceiver('audio');
    await scheduler.runUntil(() => ports.A.signalingState === 'have-local-offer');
    expect(pair.state('A')).toBe('awaitingAnswer');
    ports.A.addTransceiver('video');
    await scheduler.runUntil(() => ports.B.signalingState === 'have-remote-offer');
    expect(pair.state('B')).toEqual({ answering: 'creatingAnswer' });
    ports.B.addTransceiver('audio');

    await scheduler.runUntilIdle();
    expectSettled(pair);
    expect(ports.A.getTransceivers()).toHaveLength(3);
    expect(ports.B.getTransceivers()).toHaveLength(3);
    // B is stable first (its answer sent, A's candidates handed to the engine without a turn of
    // their own), so it serves its need at once; its offer reaches A in stable, right after A
    // applied the answer: A answers it, then serves its own need. No collision, no rollback.
    expect(ports.A.operations.filter((op) => /^(createOffer|set)/.test(op))).toEqual([
      'createOffer()',
      'setLocalDescription(offer)',
      'setRemoteDescription(answer)',
      'setRemoteDescription(offer)', // B's audio added in have-remote-offer
      'setLocalDescription(answer)',
      'createOffer()', // the video added in have-local-offer
      'setLocalDescription(offer)',
      'setRemoteDescription(answer)',
    ]);
    expect(count(ports.B.operations, /^createOffer/)).toBe(1);
    expect(pair.notices('A')).toEqual([]);
    expect(pair.notices('B')).toEqual([]);
  });

  it.each([
    { side: 'A' as const, value: 'awaitingAnswer', signalingState: 'have-local-offer' },
    { side: 'B' as const, value: { answering: 'creatingAnswer' }, signalingState: 'have-remote-offer' },
  ])('a NEGOTIATION_NEEDED that $side gets in $signalingState sets the flag; one offer follows once stable', async ({ side, value, signalingState }) => {
    const pair = startPair();
    const { scheduler, ports } = pair;
    ports.A.addTransceiver('audio');
    await scheduler.runUntil(() => ports[side].signalingState === signalingState);
    expect(pair.state(side)).toEqual(value);
    const offersBefore = count(ports[side].operations, /^createOffer/);
    pair.peers[side].actor.send({ type: 'RTC.NEGOTIATION_NEEDED' });
    expect(pair.negotiation(side).context.negotiationNeeded).toBe(true);
    expect(pair.state(side)).toEqual(value);
    expect(count(ports[side].operations, /^createOffer/)).toBe(offersBefore);

    await scheduler.runUntil(() => count(ports[side].operations, /^createOffer/) > offersBefore);
    expect(ports[side].signalingState).toBe('stable');
    await scheduler.runUntilIdle();
    expectSettled(pair);
    expect(count(ports[side].operations, /^createOffer/)).toBe(offersBefore + 1);
  });
});

describe('JSEP §5.2.1 IceRestart: restartIce during a negotiation rides on the next offer, once', () => {
  it('A asks for a restart while awaitingAnswer: the current offer keeps its ufrag, the next one restarts', async () => {
    const pair = startPair();
    const { scheduler, ports } = pair;
    ports.A.addTransceiver('audio');
    await scheduler.runUntil(() => pair.state('A') === 'awaitingAnswer', { hold: DELIVERIES });
    pair.peers.A.restartIce();
    expect(pair.state('A')).toBe('awaitingAnswer');
    expect(pair.negotiation('A').context).toMatchObject({ iceRestartWanted: true, offerRestartsIce: false, negotiationNeeded: true });
    expect(ports.A.operations.filter((op) => op.startsWith('createOffer'))).toEqual(['createOffer()']);

    await scheduler.runUntilIdle();
    expectSettled(pair);
    expect(ports.A.operations.filter((op) => op.startsWith('createOffer'))).toEqual(['createOffer()', 'createOffer({iceRestart: true})']);
    expect(count(ports.B.operations, /^createOffer/)).toBe(0);
    const offers = descriptionsSent(pair.signaling.A);
    expect(offers.map((d) => d.type)).toEqual(['offer', 'offer']);
    const [first, second] = offers.map((d) => iceUfragsOf(d.sdp)[0]);
    expect(second).not.toBe(first);
    expect(pair.negotiation('A').context.iceRestartWanted).toBe(false);
    expect(pair.emitted.A.filter((e) => e.type === 'negotiated').map((e) => (e.type === 'negotiated' ? e.round : null))).toEqual([1, 2]);
  });

  it('a restart asked for in stable: the `negotiated` event of that round says iceRestart: true', async () => {
    const pair = startPair();
    const { scheduler, ports } = pair;
    ports.A.addTransceiver('audio');
    await scheduler.runUntilIdle();
    pair.peers.A.restartIce();
    await scheduler.runUntilIdle();
    expectSettled(pair);
    expect(negotiatedEvents(pair, 'A')).toEqual([
      { round: 1, iceRestart: false },
      { round: 2, iceRestart: true },
    ]);
  });

  it('a second restart asked for while the restart offer awaits its answer rides on the next offer', async () => {
    const pair = startPair();
    const { scheduler, ports } = pair;
    ports.A.addTransceiver('audio');
    await scheduler.runUntilIdle();
    pair.peers.A.restartIce();
    await scheduler.runUntil(() => count(ports.A.operations, 'createOffer({iceRestart: true})') === 1 && pair.state('A') === 'awaitingAnswer');
    pair.peers.A.restartIce();
    expect(pair.negotiation('A').context).toMatchObject({ iceRestartWanted: true, negotiationNeeded: true, offerRestartsIce: true });

    await scheduler.runUntilIdle();
    expectSettled(pair);
    expect(ports.A.operations.filter((op) => op.startsWith('createOffer'))).toEqual([
      'createOffer()',
      'createOffer({iceRestart: true})',
      'createOffer({iceRestart: true})',
    ]);
    const ufrags = descriptionsSent(pair.signaling.A).map((d) => iceUfragsOf(d.sdp)[0]);
    expect(new Set(ufrags).size).toBe(3);
  });

  it('a restart asked for during a negotiation: the `negotiated` event of the restart round says iceRestart: true', async () => {
    const pair = startPair();
    const { scheduler, ports } = pair;
    ports.A.addTransceiver('audio');
    await scheduler.runUntil(() => pair.state('A') === 'awaitingAnswer', { hold: DELIVERIES });
    pair.peers.A.restartIce();
    await scheduler.runUntil(() => count(ports.A.operations, 'createOffer({iceRestart: true})') === 1 && pair.state('A') === 'awaitingAnswer');
    // The restart offer is out; B's first-generation candidates are added while A awaits its answer.
    await scheduler.runUntil(() => pair.state('A') === 'applyingRemoteAnswer');
    expect(ports.A.operations.slice(-4)).toEqual([
      'addIceCandidate(127.0.0.1:51011 u1g1)',
      'addIceCandidate(127.0.0.1:51012 u1g1)',
      'addIceCandidate(null)',
      'setRemoteDescription(answer)',
    ]);
    await scheduler.runUntilIdle();
    expectSettled(pair);
    expect(negotiatedEvents(pair, 'A')).toEqual([
      { round: 1, iceRestart: false },
      { round: 2, iceRestart: true },
    ]);
  });
});

describe('RFC 8839 §5.4 ICE generations: candidates of a generation a restart replaced are dropped, not errors', () => {
  it('a late candidate of A’s first generation reaches B after the restart', async () => {
    const pair = startPair();
    const { scheduler, ports } = pair;
    ports.A.addTransceiver('audio');
    await scheduler.runUntilIdle();
    const oldCandidate = candidatesSent(pair.signaling.A)[0]!;
    expect(oldCandidate.usernameFragment).toBe('u0g1');
    pair.peers.A.restartIce();
    await scheduler.runUntilIdle();
    expectSettled(pair);
    expect(iceUfragsOf(ports.B.remoteDescription?.sdp ?? '')).not.toContain('u0g1');
    expect(pair.negotiation('B').context.seenRemoteUfrags).toContain('u0g1');

    const operations = [...ports.B.operations];
    pair.inject('A', { kind: 'candidate', session: DEFAULT_SESSION, candidate: oldCandidate });
    await scheduler.release('A->B: candidate');
    expect(pair.state('B')).toBe('stable');
    expect(pair.notices('B')).toEqual([{ notice: 'dropped-candidate', detail: 'ufrag of a replaced ICE generation' }]);
    expect(ports.B.operations).toEqual(operations);
    await scheduler.runUntilIdle();
    expectSettled(pair);
  });
});

describe('webrtc-pc §4.4.1.9 close(): pending operations never settle, and nothing happens afterwards', () => {
  it.each([
    { pending: 'A: createOffer() completes', value: { makingOffer: 'creatingOffer' } },
    { pending: 'A: setLocalDescription(offer) completes', value: { makingOffer: 'applyingLocalOffer' } },
  ])('close() while “$pending” is pending', async ({ pending, value }) => {
    const pair = startPair();
    const { scheduler, ports } = pair;
    ports.A.addTransceiver('audio');
    await scheduler.runUntil(() => scheduler.has(pending));
    expect(pair.state('A')).toEqual(value);
    const operations = [...ports.A.operations];
    const emittedBefore = pair.emitted.A.length;

    pair.peers.A.close();
    expect(pair.peers.A.actor.getSnapshot().status).toBe('done');
    expect(ports.A.signalingState).toBe('closed');
    // close() is idempotent (webrtc-pc §4.4.1.9); the peer may call it more than once.
    const afterClose = ports.A.operations.slice(operations.length);
    expect(new Set(afterClose)).toEqual(new Set(['close()']));

    await scheduler.releaseAll();
    expect(ports.A.operations).toEqual([...operations, ...afterClose]);
    expect(pair.emitted.A.slice(emittedBefore)).toEqual([]);
    expect(ports.A.illegalCalls).toEqual([]);
    expect(pair.signaling.A.sent).toEqual([]);
    expect(ports.B.operations).toEqual([]);
    expect(pair.state('B')).toBe('stable');
    // afterEach checks that no promise rejection went unhandled.
  });
});

describe('RFC 8838 non-trickle: the description goes out once gathering completes, with its candidates', () => {
  it('no candidate messages; offer and answer carry a=candidate lines; the peers connect', async () => {
    const pair = startPair({ peerOptions: { A: { trickle: false }, B: { trickle: false } } });
    const { scheduler, ports } = pair;
    ports.A.addTransceiver('audio');
    await scheduler.runUntil(() => JSON.stringify(pair.state('A')) === '{"makingOffer":"gatheringCandidates"}');
    expect(ports.A.signalingState).toBe('have-local-offer');
    expect(pair.signaling.A.sent).toEqual([]);

    await scheduler.runUntilIdle();
    expectSettled(pair);
    expect(pair.signaling.A.sent.map((m) => m.kind)).toEqual(['description']);
    expect(pair.signaling.B.sent.map((m) => m.kind)).toEqual(['description']);
    const [offer] = descriptionsSent(pair.signaling.A);
    const [answer] = descriptionsSent(pair.signaling.B);
    expect(offer!.type).toBe('offer');
    expect(sdpCandidatePorts(offer!.sdp)).toEqual([50011, 50012]);
    expect(answer!.type).toBe('answer');
    expect(sdpCandidatePorts(answer!.sdp)).toEqual([51011, 51012]);
    expect(pair.notices('A')).toEqual([]);
    expect(pair.notices('B')).toEqual([]);
  });
});

describe('candidateFilter applies to trickled candidates and to a=candidate lines, sent and received', () => {
  const withoutPort =
    (port: number): CandidateFilter =>
    (candidate) =>
      candidatePort(candidate.candidate) !== port;

  it('sender side: A’s filter keeps its 2nd candidate (port 50012) out of candidate messages and sent SDP', async () => {
    const pair = startPair({ peerOptions: { A: { candidateFilter: withoutPort(50012) } } });
    const { scheduler, ports } = pair;
    ports.A.addTransceiver('audio');
    await scheduler.runUntilIdle();
    expectSettled(pair);
    // A renegotiates: its new offer lists the candidates gathered so far (JSEP §5.2.2).
    ports.A.addTransceiver('video');
    await scheduler.runUntilIdle();
    expectSettled(pair);

    expect(candidatesSent(pair.signaling.A).map((c) => (c === null ? null : candidatePort(c.candidate)))).toEqual([50011, null]);
    expect(pair.notices('A', 'filtered-candidate')).toEqual([{ notice: 'filtered-candidate', detail: 'local candidate' }]);
    const offers = descriptionsSent(pair.signaling.A);
    expect(offers).toHaveLength(2);
    expect(sdpCandidatePorts(offers[1]!.sdp)).toEqual([50011]);
    expect(sdpCandidatePorts(ports.A.localDescription?.sdp ?? '')).toEqual([50011, 50012]); // the port itself is untouched
    expect(ports.B.operations.filter((op) => op.includes('50012'))).toEqual([]);
    expect(sdpCandidatePorts(ports.B.remoteDescription?.sdp ?? '')).toEqual([50011]);
  });

  it('without trickle: A’s filter keeps its 2nd candidate out of the offer’s SDP, and the drop is counted and announced', async () => {
    const pair = startPair({ peerOptions: { A: { trickle: false, candidateFilter: withoutPort(50012) }, B: { trickle: false } } });
    const { scheduler, ports } = pair;
    ports.A.addTransceiver('audio');
    await scheduler.runUntilIdle();
    expectSettled(pair);

    expect(candidatesSent(pair.signaling.A)).toEqual([]);
    expect(sdpCandidatePorts(descriptionsSent(pair.signaling.A)[0]!.sdp)).toEqual([50011]);
    expect(pair.notices('A', 'filtered-candidate')).toEqual([{ notice: 'filtered-candidate', detail: 'local candidate' }]);
    expect(pair.negotiation('A').context.filteredCandidates).toBe(1);
    // The gathering region saw only the candidate that passed, and a peer collects none.
    expect(pair.negotiation('A').context.candidates).toEqual([]);
  });

  it('receiver side: B’s filter drops A’s 2nd candidate, trickled and in the SDP it receives', async () => {
    const pair = startPair({ peerOptions: { B: { candidateFilter: withoutPort(50012) } } });
    const { scheduler, ports } = pair;
    ports.A.addTransceiver('audio');
    await scheduler.runUntilIdle();
    ports.A.addTransceiver('video');
    await scheduler.runUntilIdle();
    expectSettled(pair);

    expect(candidatesSent(pair.signaling.A).map((c) => (c === null ? null : candidatePort(c.candidate)))).toEqual([50011, 50012, null]);
    expect(sdpCandidatePorts(descriptionsSent(pair.signaling.A)[1]!.sdp)).toEqual([50011, 50012]);
    expect(pair.notices('B', 'filtered-candidate')).toEqual([{ notice: 'filtered-candidate', detail: 'remote candidate' }]);
    expect(ports.B.operations.filter((op) => op.includes('50012'))).toEqual([]);
    expect(sdpCandidatePorts(ports.B.remoteDescription?.sdp ?? '')).toEqual([50011]);
  });
});

describe('issue 17: candidates filtered on purpose are announced once per peer, and counted', () => {
  it('A drops the 2nd candidate of each side, local and remote, over two rounds: one filtered-candidate notice, every drop counted', async () => {
    const secondOfEach: CandidateFilter = (candidate) => candidatePort(candidate.candidate) % 10 !== 2;
    const pair = startPair({ peerOptions: { A: { candidateFilter: secondOfEach } } });
    const { scheduler, ports } = pair;
    ports.A.addTransceiver('audio');
    await scheduler.runUntilIdle();
    ports.A.addTransceiver('video');
    pair.peers.A.restartIce();
    await scheduler.runUntilIdle();
    expectSettled(pair);

    const context = pair.negotiation('A').context;
    // Its own 2nd candidate of both ICE generations, and B's trickled 2nd ones.
    expect(context.filteredCandidates).toBeGreaterThanOrEqual(3);
    expect(pair.notices('A', 'filtered-candidate')).toHaveLength(1);
  });
});

describe('webrtc-pc §4.4.1.6 a description the engine refuses: reported, back to stable, negotiation goes on', () => {
  it('a remote offer with garbage SDP: error setRemoteDescription (OperationError), B stable, then A’s offer works', async () => {
    const pair = startPair();
    const { scheduler, ports } = pair;
    pair.inject('A', description('offer', 'v=0\r\nthis is not SDP\r\n'));
    await scheduler.release('A->B: description(offer)');
    expect(pair.state('B')).toBe('applyingRemoteOffer');
    await scheduler.release('B: setRemoteDescription(offer) fails (OperationError)');
    expect(pair.state('B')).toBe('stable');
    expect(ports.B.signalingState).toBe('stable');
    expect(pair.errors('B')).toEqual([
      { operation: 'setRemoteDescription', name: 'OperationError', message: expect.stringMatching(/Failed to parse SessionDescription/) as unknown },
    ]);
    expect(ports.B.operations).toEqual(['setRemoteDescription(offer)']);
    expect(pair.negotiation('B').context).toMatchObject({ current: null, inbox: [], appliedRemoteSdps: [] });

    ports.A.addTransceiver('audio');
    await scheduler.runUntilIdle();
    expectSettled(pair, { errors: 1 });
    expect(count(ports.B.operations, 'setRemoteDescription(offer)')).toBe(2);
  });

  it('the machine itself reports NEGOTIATION.ERROR to its parent, then answers a good offer', async () => {
    const scheduler = new ManualScheduler();
    const network = createFakeNetwork({ scheduler });
    const remote = network.createPort({ name: 'R' });
    const local = network.createPort({ name: 'L' });
    const actor = createActor(recorderMachine, { input: { rtc: local, polite: true } });
    actor.start();
    const send = (event: NegotiationEvent) => actor.send({ type: 'TO_NEGOTIATION', event });
    const child = () => actor.getSnapshot().children.negotiation!.getSnapshot();
    const recorded = () => actor.getSnapshot().context.events;

    send({ type: 'REMOTE.DESCRIPTION', description: { type: 'offer', sdp: 'garbage' } });
    expect(child().value).toBe('applyingRemoteOffer');
    await scheduler.release('L: setRemoteDescription(offer) fails (OperationError)');
    expect(child().value).toBe('stable');
    expect(recorded().map((e) => (e.type === 'NEGOTIATION.ERROR' ? [e.type, e.operation, e.error.name] : [e.type]))).toEqual([
      ['NEGOTIATION.ERROR', 'setRemoteDescription', 'OperationError'],
    ]);

    remote.addTransceiver('audio');
    const step = async <T>(promise: Promise<T>, label: LabelMatch): Promise<T> => {
      await scheduler.release(label);
      return promise;
    };
    const offer = await step(remote.createOffer(), 'R: createOffer() completes');
    await step(remote.setLocalDescription(offer), 'R: setLocalDescription(offer) completes');
    send({ type: 'REMOTE.DESCRIPTION', description: { type: 'offer', sdp: offer.sdp! } });
    await scheduler.runUntil(() => recorded().some((e) => e.type === 'NEGOTIATION.COMPLETED'), { hold: /^R: / });
    expect(recorded().map((e) => e.type)).toEqual(['NEGOTIATION.ERROR', 'NEGOTIATION.LOCAL_DESCRIPTION', 'NEGOTIATION.COMPLETED']);
    const answer = recorded()[1];
    expect(answer?.type === 'NEGOTIATION.LOCAL_DESCRIPTION' ? answer.description.type : null).toBe('answer');
    expect(child().value).toBe('stable');
    if (answer?.type === 'NEGOTIATION.LOCAL_DESCRIPTION') {
      await step(remote.setRemoteDescription(answer.description), 'R: setRemoteDescription(answer) completes');
    }
    expect([remote.signalingState, local.signalingState]).toEqual(['stable', 'stable']);
    expect([...remote.illegalCalls, ...local.illegalCalls]).toEqual([]);
    actor.stop();
  });
});

// ---------------------------------------------------------------------------------------------
// A peer (A, impolite) facing a port driven by the test (B), for orderings a peer never makes.

interface ScriptedB {
  readonly scheduler: ManualScheduler;
  readonly A: FakeRtcPort;
  readonly B: FakeRtcPort;
  readonly sa: FakeSignalingPort;
  readonly sb: FakeSignalingPort;
  negotiation(): NegotiationRegion;
  state(): StateValue;
  notices(): { notice: string; detail: string }[];
  errors(): { operation: string; name: string }[];
  /** Releases `label` (the completion of an operation of B already called) and returns its result. */
  step<T>(promise: Promise<T>, label: LabelMatch): Promise<T>;
}

function startScriptedB(): ScriptedB {
  const scheduler = new ManualScheduler();
  const network = createFakeNetwork({ scheduler });
  const A = network.createPort({ name: 'A' });
  const B = network.createPort({ name: 'B' });
  const [sa, sb] = createSignalingPair({ scheduler });
  const peer = createPeer({ rtc: A, signaling: sa, polite: false, clock: new SimulatedClock() });
  const emitted: PeerEmitted[] = [];
  peer.actor.on('*', (event) => emitted.push(event));
  started.push(peer);
  const negotiation = (): NegotiationRegion => {
    const region = negotiationOf(peer.actor.getSnapshot());
    if (!region) throw new Error('the peer has ended');
    return region;
  };
  return {
    scheduler,
    A,
    B,
    sa,
    sb,
    negotiation,
    state: () => negotiation().value,
    notices: () => emitted.flatMap((e) => (e.type === 'notice' ? [{ notice: e.notice, detail: e.detail }] : [])),
    errors: () => emitted.flatMap((e) => (e.type === 'error' ? [{ operation: e.operation, name: e.error.name }] : [])),
    step: async (promise, label) => {
      await scheduler.release(label);
      return promise;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The negotiation machine alone, under a parent that records what it is told (sendParent).

type RecorderEvent = NegotiationParentEvent | { readonly type: 'TO_NEGOTIATION'; readonly event: NegotiationEvent };

const recorderMachine = setup({
  types: {
    context: {} as { readonly rtc: RtcPort; readonly polite: boolean; readonly events: readonly NegotiationParentEvent[] },
    events: {} as RecorderEvent,
    input: {} as { readonly rtc: RtcPort; readonly polite: boolean },
  },
  actors: { negotiation: negotiationMachine },
}).createMachine({
  context: ({ input }) => ({ rtc: input.rtc, polite: input.polite, events: [] }),
  invoke: { id: 'negotiation', src: 'negotiation', input: ({ context }) => ({ rtc: context.rtc, polite: context.polite }) },
  on: {
    TO_NEGOTIATION: { actions: sendTo('negotiation', ({ event }) => (event.type === 'TO_NEGOTIATION' ? event.event : { type: 'CLOSE' as const })) },
    'NEGOTIATION.*': {
      actions: assign({ events: ({ context, event }) => [...context.events, event] }),
    },
  },
});
