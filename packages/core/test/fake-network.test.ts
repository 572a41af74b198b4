import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { IceCandidate, RtcPortEvent, SessionDescription, SignalingState } from '../src/ports/rtc.js';
import { createFakeNetwork, nextSignalingState } from '../src/testing/index.js';
import type { FakeDataChannel, FakeRtcPort } from '../src/testing/index.js';
import { flushMicrotasks, ManualScheduler } from './helpers/manual-scheduler.js';

// ---- helpers ----

const tick = flushMicrotasks;

/** A FIFO scheduler the test releases by hand; it logs every label it released. */
function record(port: FakeRtcPort): RtcPortEvent[] {
  const events: RtcPortEvent[] = [];
  port.events$.subscribe((event) => events.push(event));
  return events;
}

function statesOf(events: readonly RtcPortEvent[], type: RtcPortEvent['type']): string[] {
  return events.filter((event) => event.type === type).map((event) => (event as { state: string }).state);
}

/** Settles to 'resolved' | error name, and 'pending' if it never settled. */
function outcome(promise: Promise<unknown>): () => string {
  let result = 'pending';
  promise.then(
    () => (result = 'resolved'),
    (error: unknown) => (result = (error as Error).name),
  );
  return () => result;
}

async function run<T>(s: ManualScheduler, promise: Promise<T>): Promise<T> {
  await s.releaseAll();
  return promise;
}

/** Full offer/answer from `offerer` to `answerer`, candidates not exchanged. */
/** A manual scheduler and two ports on one fake network driven by it. */
function twoPorts() {
  const s = new ManualScheduler();
  const network = createFakeNetwork({ scheduler: s });
  return { s, network, a: network.createPort(), b: network.createPort() };
}

async function negotiate(s: ManualScheduler, offerer: FakeRtcPort, answerer: FakeRtcPort): Promise<void> {
  const offer = await run(s, offerer.createOffer());
  await run(s, offerer.setLocalDescription(offer));
  await run(s, answerer.setRemoteDescription(offer));
  const answer = await run(s, answerer.createAnswer());
  await run(s, answerer.setLocalDescription(answer));
  await run(s, offerer.setRemoteDescription(answer));
}

/**
 * Trickles every candidate each port gathers to the other, as signaling would: the description
 * travels first, so a candidate is held until the receiver has applied the remote description
 * of its generation (errors are collected).
 */
function trickle(a: FakeRtcPort, b: FakeRtcPort): string[] {
  const errors: string[] = [];
  const wire = (from: FakeRtcPort, to: FakeRtcPort): void => {
    const held: { candidate: IceCandidate | null; ufrag: string | null }[] = [];
    const flush = (): void => {
      const remote = to.remoteDescription?.sdp;
      if (remote === undefined) return;
      const ufrag = attributeValues(remote, 'ice-ufrag')[0];
      while (held.length > 0 && (held[0]!.ufrag === null || held[0]!.ufrag === ufrag)) {
        const { candidate } = held.shift()!;
        to.addIceCandidate(candidate).catch((error: unknown) => errors.push(`${to.name}: ${(error as Error).message}`));
      }
    };
    from.events$.subscribe((event) => {
      if (event.type !== 'icecandidate') return;
      // End-of-candidates belongs to the generation of the candidates before it.
      const ufrag = event.candidate?.usernameFragment ?? held.at(-1)?.ufrag ?? attributeValues(from.localDescription!.sdp!, 'ice-ufrag')[0]!;
      held.push({ candidate: event.candidate, ufrag });
      flush();
    });
    to.events$.subscribe((event) => {
      if (event.type === 'signalingstatechange') flush();
    });
  };
  wire(a, b);
  wire(b, a);
  return errors;
}

function mLines(sdp: string): string[] {
  return sdp.split('\r\n').filter((line) => line.startsWith('m='));
}

function attributeValues(sdp: string, name: string): string[] {
  return sdp
    .split('\r\n')
    .filter((line) => line.startsWith(`a=${name}:`))
    .map((line) => line.slice(name.length + 3));
}

// ---- the JSEP table ----

type Call =
  | 'setLocal(offer)'
  | 'setLocal(answer)'
  | 'setLocal(pranswer)'
  | 'setRemote(offer)'
  | 'setRemote(answer)'
  | 'setRemote(pranswer)'
  | 'setLocal(rollback)'
  | 'setRemote(rollback)'
  | 'createAnswer'
  | 'createOffer';

type State = Exclude<SignalingState, 'closed'>;

/** The JSEP table of docs/architecture.md: where each call is legal and the state it leads to. */
const TABLE: Record<Call, Partial<Record<State, SignalingState>>> = {
  'setLocal(offer)': { stable: 'have-local-offer', 'have-local-offer': 'have-local-offer' },
  'setLocal(answer)': { 'have-remote-offer': 'stable', 'have-local-pranswer': 'stable' },
  'setLocal(pranswer)': { 'have-remote-offer': 'have-local-pranswer', 'have-local-pranswer': 'have-local-pranswer' },
  'setRemote(offer)': { stable: 'have-remote-offer', 'have-remote-offer': 'have-remote-offer' },
  'setRemote(answer)': { 'have-local-offer': 'stable', 'have-remote-pranswer': 'stable' },
  'setRemote(pranswer)': { 'have-local-offer': 'have-remote-pranswer', 'have-remote-pranswer': 'have-remote-pranswer' },
  'setLocal(rollback)': { 'have-local-offer': 'stable', 'have-remote-offer': 'stable' },
  'setRemote(rollback)': { 'have-local-offer': 'stable', 'have-remote-offer': 'stable' },
  createAnswer: { 'have-remote-offer': 'have-remote-offer', 'have-local-pranswer': 'have-local-pranswer' },
  createOffer: {
    stable: 'stable',
    'have-local-offer': 'have-local-offer',
    'have-remote-offer': 'have-remote-offer',
    'have-local-pranswer': 'have-local-pranswer',
    'have-remote-pranswer': 'have-remote-pranswer',
  },
};

const STATES: readonly State[] = ['stable', 'have-local-offer', 'have-remote-offer', 'have-local-pranswer', 'have-remote-pranswer'];

interface Fixture {
  s: ManualScheduler;
  a: FakeRtcPort;
  b: FakeRtcPort;
  /** A's offer applied locally (have-local-offer, have-remote-pranswer). */
  aOffer?: SessionDescription;
  /** The last answer A created. */
  aAnswer: SessionDescription;
  /** B's answer to aOffer. */
  bAnswer?: SessionDescription;
}

/** Brings port A into `state` against a real peer B. A has created an answer before (warm-up). */
async function portIn(state: State): Promise<Fixture> {
  const s = new ManualScheduler();
  const network = createFakeNetwork({ scheduler: s });
  const a = network.createPort();
  const b = network.createPort();
  b.addTransceiver('audio');
  // Warm-up B -> A, so that A has a [[LastCreatedAnswer]] in every state.
  const warmOffer = await run(s, b.createOffer());
  await run(s, b.setLocalDescription(warmOffer));
  await run(s, a.setRemoteDescription(warmOffer));
  let aAnswer = await run(s, a.createAnswer());
  await run(s, a.setLocalDescription(aAnswer));
  await run(s, b.setRemoteDescription(aAnswer));
  const fixture: Fixture = { s, a, b, aAnswer };
  if (state === 'have-local-offer' || state === 'have-remote-pranswer') {
    a.addTransceiver('video');
    const aOffer = await run(s, a.createOffer());
    await run(s, a.setLocalDescription(aOffer));
    await run(s, b.setRemoteDescription(aOffer));
    const bAnswer = await run(s, b.createAnswer());
    Object.assign(fixture, { aOffer, bAnswer });
    if (state === 'have-remote-pranswer') await run(s, a.setRemoteDescription({ type: 'pranswer', sdp: bAnswer.sdp! }));
  }
  if (state === 'have-remote-offer' || state === 'have-local-pranswer') {
    b.addTransceiver('video');
    const bOffer = await run(s, b.createOffer());
    await run(s, b.setLocalDescription(bOffer));
    await run(s, a.setRemoteDescription(bOffer));
    if (state === 'have-local-pranswer') {
      aAnswer = await run(s, a.createAnswer());
      fixture.aAnswer = aAnswer;
      await run(s, a.setLocalDescription({ type: 'pranswer', sdp: aAnswer.sdp! }));
    }
  }
  expect(a.signalingState).toBe(state);
  expect(a.illegalCalls).toEqual([]);
  return fixture;
}

/** Prepares what the call needs, then makes it; returns the call's promise without awaiting it. */
async function perform(call: Call, f: Fixture): Promise<{ readonly result: Promise<unknown> }> {
  const { s, a, b } = f;
  const legal = (state: State): boolean => TABLE[call][state] !== undefined;
  const from = a.signalingState as State;
  switch (call) {
    case 'setLocal(offer)':
      return { result: a.setLocalDescription(await run(s, a.createOffer())) };
    case 'setLocal(answer)':
    case 'setLocal(pranswer)': {
      // Where createAnswer is legal use a fresh answer; elsewhere the last one A created.
      const answer = legal(from) ? await run(s, a.createAnswer()) : f.aAnswer;
      return { result: a.setLocalDescription({ type: call === 'setLocal(answer)' ? 'answer' : 'pranswer', sdp: answer.sdp! }) };
    }
    case 'setRemote(offer)':
      return { result: a.setRemoteDescription(await run(s, b.createOffer())) };
    case 'setRemote(answer)':
    case 'setRemote(pranswer)': {
      const sdp = f.bAnswer?.sdp ?? (await run(s, b.createOffer())).sdp!;
      return { result: a.setRemoteDescription({ type: call === 'setRemote(answer)' ? 'answer' : 'pranswer', sdp }) };
    }
    case 'setLocal(rollback)':
      return { result: a.setLocalDescription({ type: 'rollback' }) };
    case 'setRemote(rollback)':
      return { result: a.setRemoteDescription({ type: 'rollback' }) };
    case 'createAnswer':
      return { result: a.createAnswer() };
    case 'createOffer':
      return { result: a.createOffer() };
  }
}

describe('JSEP signaling-state table (RFC 9429 §3.2, webrtc-pc §4.4.1.6)', () => {
  for (const call of Object.keys(TABLE) as Call[]) {
    for (const state of STATES) {
      const expected = TABLE[call][state];
      it(`${call} in ${state}: ${expected ? `legal -> ${expected}` : 'InvalidStateError'}`, async () => {
        const fixture = await portIn(state);
        const { result } = await perform(call, fixture);
        const settled = outcome(result);
        await fixture.s.releaseAll();
        if (expected) {
          expect(settled()).toBe('resolved');
          expect(fixture.a.signalingState).toBe(expected);
          expect(fixture.a.illegalCalls).toEqual([]);
        } else {
          expect(settled()).toBe('InvalidStateError');
          expect(fixture.a.signalingState).toBe(state);
          expect(fixture.a.illegalCalls).toHaveLength(1);
          expect(fixture.a.illegalCalls[0]!.state).toBe(state);
        }
      });
    }
  }

  it('nextSignalingState agrees with the table, and rejects setRemote(offer) in have-local-offer', () => {
    expect(nextSignalingState('have-local-offer', 'remote', 'offer')).toBeNull();
    expect(nextSignalingState('stable', 'local', 'rollback')).toBeNull();
    expect(nextSignalingState('have-remote-pranswer', 'remote', 'answer')).toBe('stable');
  });

  it('addIceCandidate needs a remote description', async () => {
    const s = new ManualScheduler();
    const a = createFakeNetwork({ scheduler: s }).createPort();
    const settled = [outcome(a.addIceCandidate({ candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0' })), outcome(a.addIceCandidate(null))];
    await s.releaseAll();
    expect(settled.map((get) => get())).toEqual(['InvalidStateError', 'InvalidStateError']);
    expect(a.illegalCalls.map((call) => call.method)).toEqual([
      'addIceCandidate(127.0.0.1:9)',
      'addIceCandidate(null)',
    ]);
    expect(a.illegalCalls.every((call) => call.state === 'stable')).toBe(true);
  });
});

// ---- operations chain ----

describe('operations chain (webrtc-pc §4.4.1.2)', () => {
  it('runs queued operations one at a time and checks legality when each one runs', async () => {
    const { s, a, b } = twoPorts();
    a.addTransceiver('audio');
    const offer = await run(s, a.createOffer());
    const order: string[] = [];
    // Rollback is illegal in stable, but runs only after the offer is applied: legal then.
    const p1 = a.setLocalDescription(offer).then(() => order.push(`sld -> ${a.signalingState}`));
    const p2 = a.setLocalDescription({ type: 'rollback' }).then(() => order.push(`rollback -> ${a.signalingState}`));
    const p3 = a.createOffer().then(() => order.push('createOffer'));
    await tick();
    // Only the first operation is running: exactly one completion is scheduled.
    expect(s.pending().filter((label) => / completes$/.test(label))).toEqual([
      'A: setLocalDescription(offer) completes',
    ]);
    await s.releaseAll();
    await Promise.all([p1, p2, p3]);
    expect(order).toEqual(['sld -> have-local-offer', 'rollback -> stable', 'createOffer']);
    expect(a.illegalCalls).toEqual([]);
    expect(a.operations).toEqual([
      'addTransceiver(audio)',
      'createOffer()',
      'setLocalDescription(offer)',
      'setLocalDescription(rollback)',
      'createOffer()',
    ]);
    // createAnswer queued right behind setRemoteDescription(offer) sees have-remote-offer.
    const again = await run(s, a.createOffer());
    const answer = b.setRemoteDescription(again).then(() => b.createAnswer());
    const direct = b.createAnswer();
    await s.releaseAll();
    await expect(answer).resolves.toMatchObject({ type: 'answer' });
    await expect(direct).resolves.toMatchObject({ type: 'answer' });
    expect(b.illegalCalls).toEqual([]);
  });

  it('changes state only when the operation completes, asynchronously', async () => {
    const s = new ManualScheduler();
    const a = createFakeNetwork({ scheduler: s }).createPort();
    const events = record(a);
    a.addTransceiver('audio');
    const offer = await run(s, a.createOffer());
    const done = outcome(a.setLocalDescription(offer));
    await tick();
    expect(a.signalingState).toBe('stable');
    expect(done()).toBe('pending');
    await s.release(/setLocalDescription\(offer\) completes/);
    expect(a.signalingState).toBe('have-local-offer');
    expect(done()).toBe('resolved');
    expect(statesOf(events, 'signalingstatechange')).toEqual(['have-local-offer']);
  });

  it('rejects munged SDP, implicit descriptions, garbage and mismatched answers like a browser', async () => {
    const { s, network, a, b } = twoPorts();
    a.addTransceiver('audio');
    a.addTransceiver('video');
    const offer = await run(s, a.createOffer());
    const results = [
      outcome(a.setLocalDescription({ type: 'offer', sdp: offer.sdp!.replace('a=rtcp-mux', 'a=rtcp-rsize') })),
      outcome(a.setLocalDescription(undefined as unknown as SessionDescription)),
      outcome(a.setLocalDescription({ type: 'offer' })),
      outcome(b.setRemoteDescription({ type: 'offer', sdp: 'v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n' })),
    ];
    await s.releaseAll();
    expect(results.map((get) => get())).toEqual(['InvalidModificationError', 'TypeError', 'TypeError', 'OperationError']);

    // An answer with the m-lines of another offer (one section instead of two).
    await run(s, a.setLocalDescription(offer));
    const c = network.createPort();
    const d = network.createPort();
    d.addTransceiver('audio');
    const other = await run(s, d.createOffer());
    await run(s, c.setRemoteDescription(other));
    const wrong = await run(s, c.createAnswer());
    const applied = outcome(a.setRemoteDescription(wrong));
    await s.releaseAll();
    expect(applied()).toBe('InvalidAccessError');
    expect(a.signalingState).toBe('have-local-offer');
    expect([a, b, c, d].flatMap((port) => port.illegalCalls)).toEqual([]);
  });
});

// ---- closed ----

describe('close() ([[IsClosed]])', () => {
  it('rejects every method with InvalidStateError, never settles pending operations, fires nothing', async () => {
    const s = new ManualScheduler();
    const network = createFakeNetwork({ scheduler: s });
    const a = network.createPort();
    const events = record(a);
    a.addTransceiver('audio');
    const offer = await run(s, a.createOffer());
    await s.release(/negotiation-needed/).catch(() => undefined);
    await s.releaseAll();
    const countBefore = events.length;
    const pending = [outcome(a.setLocalDescription(offer)), outcome(a.createOffer())];
    await tick();
    a.close();
    expect(a.signalingState).toBe('closed');
    expect(a.connectionState).toBe('closed');
    expect(a.iceConnectionState).toBe('closed');
    const after = [
      outcome(a.createOffer()),
      outcome(a.createAnswer()),
      outcome(a.setLocalDescription(offer)),
      outcome(a.setRemoteDescription(offer)),
      outcome(a.addIceCandidate(null)),
    ];
    expect(() => a.createDataChannel('x')).toThrow(expect.objectContaining({ name: 'InvalidStateError' }) as Error);
    expect(() => a.addTransceiver('video')).toThrow(expect.objectContaining({ name: 'InvalidStateError' }) as Error);
    a.restartIce();
    a.close();
    await s.releaseAll();
    await tick();
    expect(pending.map((get) => get())).toEqual(['pending', 'pending']);
    expect(after.map((get) => get())).toEqual(Array(5).fill('InvalidStateError'));
    expect(a.illegalCalls.map((call) => call.method)).toEqual([
      'createOffer()',
      'createAnswer()',
      'setLocalDescription(offer)',
      'setRemoteDescription(offer)',
      'addIceCandidate(null)',
      'createDataChannel',
      'addTransceiver',
    ]);
    expect(a.illegalCalls.every((call) => call.state === 'closed')).toBe(true);
    expect(events.length).toBe(countBefore);
  });

  it('fires nothing after close even with gathering and connectivity steps in flight', async () => {
    const { s, a, b } = twoPorts();
    const errors = trickle(a, b);
    const aEvents = record(a);
    const bEvents = record(b);
    a.addTransceiver('audio');
    a.createDataChannel('chat');
    const offer = await run(s, a.createOffer());
    await run(s, a.setLocalDescription(offer));
    await run(s, b.setRemoteDescription(offer));
    const answer = await run(s, b.createAnswer());
    await run(s, b.setLocalDescription(answer));
    await run(s, a.setRemoteDescription(answer));
    expect(a.connectionState).toBe('connected');
    const channel = a.getDataChannels()[0]!;
    const remote = b.getDataChannels()[0]!;
    const remoteEvents: string[] = [];
    remote.events$.subscribe({ next: (event) => remoteEvents.push(event.type), complete: () => remoteEvents.push('complete') });
    const count = aEvents.length;
    a.close();
    await s.releaseAll();
    expect(aEvents.length).toBe(count);
    expect(channel.readyState).toBe('closed');
    // The remote hears the SCTP abort and, without consent, loses the connection.
    expect(remote.readyState).toBe('closed');
    expect(remoteEvents).toEqual(['close', 'complete']);
    expect(statesOf(bEvents, 'connectionstatechange')).toEqual(['connecting', 'connected', 'disconnected', 'failed']);
    expect(errors).toEqual([]);
  });
});

// ---- SDP ----

describe('SDP', () => {
  it('has one m-section per transceiver plus the data section, BUNDLE, ICE and the fake port id', async () => {
    const s = new ManualScheduler();
    const a = createFakeNetwork({ scheduler: s }).createPort({ candidates: 2 });
    const events = record(a);
    a.addTransceiver('audio');
    a.addTransceiver('video');
    a.createDataChannel('chat');
    const first = await run(s, a.createOffer());
    const offer = await run(s, a.createOffer());
    expect(Number(/^o=- \d+ (\d+)/m.exec(offer.sdp!)![1])).toBe(Number(/^o=- \d+ (\d+)/m.exec(first.sdp!)![1]) + 1);
    expect(mLines(offer.sdp!)).toEqual([
      'm=audio 9 UDP/TLS/RTP/SAVPF 111',
      'm=video 9 UDP/TLS/RTP/SAVPF 96',
      'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
    ]);
    expect(attributeValues(offer.sdp!, 'mid')).toEqual(['0', '1', '2']);
    expect(offer.sdp).toContain('a=group:BUNDLE 0 1 2\r\n');
    expect(offer.sdp).toContain(`a=x-fake-port:${a.id}\r\n`);
    const ufrags = new Set(attributeValues(offer.sdp!, 'ice-ufrag'));
    expect(ufrags.size).toBe(1);
    const [ufrag] = [...ufrags];
    expect(attributeValues(offer.sdp!, 'fingerprint')[0]).toMatch(/^sha-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(attributeValues(offer.sdp!, 'candidate')).toEqual([]);
    // Mids are assigned when the offer is applied, not when it is created.
    expect(a.getTransceivers().map((t) => t.mid)).toEqual([null, null]);
    await run(s, a.setLocalDescription(offer));
    expect(a.getTransceivers().map((t) => t.mid)).toEqual(['0', '1']);

    const candidates = events.flatMap((event) => (event.type === 'icecandidate' ? [event.candidate] : []));
    expect(candidates).toHaveLength(3);
    expect(candidates[2]).toBeNull();
    for (const candidate of candidates.slice(0, 2)) {
      expect(candidate).toMatchObject({ sdpMid: '0', sdpMLineIndex: 0, usernameFragment: ufrag });
      expect(candidate!.candidate).toMatch(/^candidate:\d+ 1 udp 2122260223 127\.0\.0\.1 \d+ typ host/);
    }
    expect(statesOf(events, 'icegatheringstatechange')).toEqual(['gathering', 'complete']);
    const local = a.localDescription!.sdp!;
    expect(attributeValues(local, 'candidate')).toEqual(candidates.slice(0, 2).map((c) => c!.candidate.slice('candidate:'.length)));
    expect(local).toContain('a=end-of-candidates');
  });
});

// ---- transceivers and negotiation-needed ----

describe('transceivers (webrtc-pc §5.4, JSEP §5.10)', () => {
  it('ends with equal transceiver counts after negotiations both ways', async () => {
    const { s, a, b } = twoPorts();
    a.addTransceiver('audio');
    b.addTransceiver('video');
    await negotiate(s, a, b);
    // B got a recvonly transceiver for A's audio; its own video is not negotiated yet.
    expect(b.getTransceivers().map((t) => [t.kind, t.mid, t.direction])).toEqual([
      ['video', null, 'sendrecv'],
      ['audio', '0', 'recvonly'],
    ]);
    expect(a.getTransceivers()[0]!.currentDirection).toBe('sendonly');
    expect(b.getTransceivers()[1]!.currentDirection).toBe('recvonly');
    expect(b.negotiationNeeded).toBe(true);
    await negotiate(s, b, a);
    expect(a.getTransceivers().map((t) => [t.kind, t.mid])).toEqual([
      ['audio', '0'],
      ['video', '1'],
    ]);
    expect(b.getTransceivers()).toHaveLength(a.getTransceivers().length);
    expect([a, b].flatMap((port) => port.illegalCalls)).toEqual([]);
  });

  it('rollback of a local offer un-assigns its mids; of a remote offer removes what it created', async () => {
    const { s, a, b } = twoPorts();
    a.addTransceiver('audio');
    b.addTransceiver('video');
    const aOffer = await run(s, a.createOffer());
    const bOffer = await run(s, b.createOffer());
    await run(s, a.setLocalDescription(aOffer));
    await run(s, b.setLocalDescription(bOffer));
    expect(b.getTransceivers()[0]!.mid).toBe('0');
    // Glare: the polite B rolls back explicitly (no implicit rollback in this fake).
    const implicit = outcome(b.setRemoteDescription(aOffer));
    await s.releaseAll();
    expect(implicit()).toBe('InvalidStateError');
    expect(b.illegalCalls).toHaveLength(1);
    await run(s, b.setLocalDescription({ type: 'rollback' }));
    expect(b.getTransceivers().map((t) => t.mid)).toEqual([null]);
    await run(s, b.setRemoteDescription(aOffer));
    expect(b.getTransceivers().map((t) => [t.kind, t.mid])).toEqual([
      ['video', null],
      ['audio', '0'],
    ]);
    // A remote rollback removes the transceiver the remote offer created.
    await run(s, b.setRemoteDescription({ type: 'rollback' }));
    expect(b.getTransceivers().map((t) => t.kind)).toEqual(['video']);
    await run(s, b.setRemoteDescription(aOffer));
    const answer = await run(s, b.createAnswer());
    await run(s, b.setLocalDescription(answer));
    await run(s, a.setRemoteDescription(answer));
    await negotiate(s, b, a);
    expect(a.getTransceivers().map((t) => [t.kind, t.mid])).toEqual(b.getTransceivers().map((t) => [t.kind, t.mid]).reverse());
    expect(a.getTransceivers()).toHaveLength(2);
    expect(a.signalingState).toBe('stable');
    expect(b.signalingState).toBe('stable');
  });

  it('fires negotiationneeded once for the tracks of a stream added in one task (per-stream, Firefox), once per track when per-track (Chromium)', async () => {
    const s = new ManualScheduler();
    const network = createFakeNetwork({ scheduler: s });
    const firefox = network.createPort({ name: 'F', negotiationNeeded: 'per-stream' });
    const chromium = network.createPort({ name: 'C', negotiationNeeded: 'per-track' });
    const fired = (port: FakeRtcPort): (() => number) => {
      const events = record(port);
      return () => events.filter((event) => event.type === 'negotiationneeded').length;
    };
    const [firefoxFired, chromiumFired] = [fired(firefox), fired(chromium)];
    // A camera stream: its audio and video tracks added in one task.
    for (const port of [firefox, chromium]) {
      port.addTransceiver('audio');
      port.addTransceiver('video');
    }
    await s.releaseAll();
    expect(firefoxFired()).toBe(1);
    expect(chromiumFired()).toBe(2);
    expect([firefox.negotiationNeeded, chromium.negotiationNeeded]).toEqual([true, true]);
    // A track added later, in a task of its own, fires again on neither while the flag is set
    // per-stream, and fires again per-track.
    firefox.addTransceiver('video');
    chromium.addTransceiver('video');
    await s.releaseAll();
    expect(firefoxFired()).toBe(1);
    expect(chromiumFired()).toBe(3);
    // Once negotiated each way (a remote offer never takes over a transceiver addTransceiver
    // made, so each side offers its own), nothing is needed any more.
    await negotiate(s, firefox, chromium);
    await negotiate(s, chromium, firefox);
    await s.releaseAll();
    expect([firefox.negotiationNeeded, chromium.negotiationNeeded]).toEqual([false, false]);
  });

  it('fires negotiationneeded once, only in stable, and again on returning to stable if still needed', async () => {
    const { s, a, b } = twoPorts();
    const aEvents = record(a);
    const bEvents = record(b);
    const count = (events: RtcPortEvent[]): number => events.filter((event) => event.type === 'negotiationneeded').length;
    a.addTransceiver('audio');
    a.addTransceiver('video');
    await s.releaseAll();
    expect(count(aEvents)).toBe(1);
    expect(a.negotiationNeeded).toBe(true);

    const offer = await run(s, a.createOffer());
    await run(s, a.setLocalDescription(offer));
    a.createDataChannel('late'); // while have-local-offer: remembered, not fired
    await s.releaseAll();
    expect(count(aEvents)).toBe(1);

    await run(s, b.setRemoteDescription(offer));
    b.addTransceiver('audio'); // while have-remote-offer
    await s.releaseAll();
    expect(count(bEvents)).toBe(0);
    const answer = await run(s, b.createAnswer());
    await run(s, b.setLocalDescription(answer));
    expect(count(bEvents)).toBe(1);
    await run(s, a.setRemoteDescription(answer));
    // Still needed (the data channel): fired again on returning to stable.
    expect(count(aEvents)).toBe(2);

    await negotiate(s, a, b);
    expect(a.negotiationNeeded).toBe(false);
    expect(count(aEvents)).toBe(2);
    // B's own audio is still not negotiated: B fires again when back in stable.
    expect(count(bEvents)).toBe(2);
    // A negotiation that satisfies everything leaves nothing to fire.
    await negotiate(s, b, a);
    expect(count(aEvents)).toBe(2);
    expect(count(bEvents)).toBe(2);
    expect(b.negotiationNeeded).toBe(false);
    // Changing a direction makes it needed again.
    a.getTransceivers()[0]!.direction = 'recvonly';
    await s.releaseAll();
    expect(count(aEvents)).toBe(3);
  });
});

// ---- connectivity ----

async function connectedPair(s: ManualScheduler, options: { dataChannel?: boolean } = {}) {
  const network = createFakeNetwork({ scheduler: s });
  const a = network.createPort();
  const b = network.createPort();
  const errors = trickle(a, b);
  const aEvents = record(a);
  const bEvents = record(b);
  a.addTransceiver('audio');
  const channel = options.dataChannel ? a.createDataChannel('chat') : null;
  await negotiate(s, a, b);
  await s.releaseAll();
  return { network, a, b, aEvents, bEvents, errors, channel };
}

describe('ICE and connection states', () => {
  it('connects two ports after a hand-driven offer/answer with trickle', async () => {
    const s = new ManualScheduler();
    const { a, b, aEvents, bEvents, errors } = await connectedPair(s);
    for (const events of [aEvents, bEvents]) {
      expect(statesOf(events, 'iceconnectionstatechange')).toEqual(['checking', 'connected']);
      expect(statesOf(events, 'connectionstatechange')).toEqual(['connecting', 'connected']);
    }
    expect(s.released).toContain('A<->B: ICE connects');
    expect([a.connectionState, b.connectionState]).toEqual(['connected', 'connected']);
    // A sends audio (sendrecv offer, recvonly answer): only B gets a track.
    const tracks = bEvents.filter((event) => event.type === 'track');
    expect(tracks).toEqual([{ type: 'track', track: { id: expect.any(String) as string, kind: 'audio' }, streams: [], mid: '0' }]);
    expect(aEvents.filter((event) => event.type === 'track')).toEqual([]);
    expect(errors).toEqual([]);
    expect([a, b].flatMap((port) => port.illegalCalls)).toEqual([]);
  });

  it('does not connect without candidates of the current generation', async () => {
    const { s, a, b } = twoPorts();
    a.addTransceiver('audio');
    await negotiate(s, a, b);
    await s.releaseAll();
    expect([a.iceConnectionState, b.iceConnectionState]).toEqual(['new', 'new']);
  });

  it('goes disconnected then failed without connectivity; recovers only through an ICE restart', async () => {
    const s = new ManualScheduler();
    const { network, a, b, aEvents, bEvents, errors } = await connectedPair(s);
    network.setConnectivity(false);
    await s.releaseAll();
    for (const events of [aEvents, bEvents]) {
      expect(statesOf(events, 'connectionstatechange')).toEqual(['connecting', 'connected', 'disconnected', 'failed']);
    }
    network.setConnectivity(true);
    await s.releaseAll();
    expect([a.connectionState, b.connectionState]).toEqual(['failed', 'failed']);

    const ufragBefore = attributeValues(a.localDescription!.sdp!, 'ice-ufrag')[0];
    a.restartIce();
    await s.releaseAll();
    expect(aEvents.filter((event) => event.type === 'negotiationneeded')).toHaveLength(2);
    await negotiate(s, a, b);
    await s.releaseAll();
    expect(attributeValues(a.localDescription!.sdp!, 'ice-ufrag')[0]).not.toBe(ufragBefore);
    expect(statesOf(aEvents, 'iceconnectionstatechange').slice(-2)).toEqual(['checking', 'connected']);
    expect([a.connectionState, b.connectionState]).toEqual(['connected', 'connected']);
    expect(s.released).toContain('A<->B: ICE connects (after ICE restart)');
    expect(errors).toEqual([]);
  });

  it('recovers from disconnected by itself when connectivity returns before failing', async () => {
    const s = new ManualScheduler();
    const { network, a, b, aEvents } = await connectedPair(s);
    network.setConnectivity(false);
    await s.release(/connectivity lost/);
    expect(a.connectionState).toBe('disconnected');
    network.setConnectivity(true);
    await s.releaseAll();
    expect(statesOf(aEvents, 'connectionstatechange')).toEqual(['connecting', 'connected', 'disconnected', 'connected']);
    expect(b.connectionState).toBe('connected');
  });

  it('keeps connected through an ICE restart while connectivity is up, and refuses stale candidates', async () => {
    const s = new ManualScheduler();
    const { a, b, aEvents, errors } = await connectedPair(s);
    const oldCandidate = aEvents.flatMap((event) => (event.type === 'icecandidate' && event.candidate ? [event.candidate] : []))[0]!;
    const offer = await run(s, a.createOffer({ iceRestart: true }));
    await run(s, a.setLocalDescription(offer));
    await run(s, b.setRemoteDescription(offer));
    const answer = await run(s, b.createAnswer());
    await run(s, b.setLocalDescription(answer));
    await run(s, a.setRemoteDescription(answer));
    await s.releaseAll();
    expect(statesOf(aEvents, 'connectionstatechange')).toEqual(['connecting', 'connected']);
    expect(a.connectionState).toBe('connected');
    expect(errors).toEqual([]);
    const stale = outcome(b.addIceCandidate(oldCandidate));
    await s.releaseAll();
    expect(stale()).toBe('OperationError');
    expect(b.illegalCalls).toEqual([]);
  });

  it('discards candidates of a rolled-back offer', async () => {
    const s = new ManualScheduler();
    const a = createFakeNetwork({ scheduler: s }).createPort();
    const events = record(a);
    a.addTransceiver('audio');
    const offer = await run(s, a.createOffer());
    const applied = a.setLocalDescription(offer);
    await s.release(/setLocalDescription\(offer\) completes/);
    await applied;
    const rolledBack = a.setLocalDescription({ type: 'rollback' });
    await s.releaseAll();
    await rolledBack;
    expect(events.filter((event) => event.type === 'icecandidate')).toEqual([]);
    expect(a.iceGatheringState).toBe('new');
    expect(a.localDescription).toBeNull();
  });

  it('checks addIceCandidate arguments like webrtc-pc', async () => {
    const s = new ManualScheduler();
    const { a, b } = await connectedPair(s);
    const ufrag = attributeValues(b.localDescription!.sdp!, 'ice-ufrag')[0]!;
    const good = { candidate: `candidate:9 1 udp 2122260223 127.0.0.1 40000 typ host ufrag ${ufrag}`, sdpMid: '0', usernameFragment: ufrag };
    const results = [
      outcome(a.addIceCandidate(good)),
      outcome(a.addIceCandidate(good)), // duplicate
      outcome(a.addIceCandidate(null)),
      outcome(a.addIceCandidate({ candidate: '', sdpMid: '0' })),
      outcome(a.addIceCandidate({ ...good, usernameFragment: 'zzzz' })),
      outcome(a.addIceCandidate({ ...good, sdpMid: '7' })),
      outcome(a.addIceCandidate({ candidate: 'not a candidate', sdpMid: '0' })),
      outcome(a.addIceCandidate({ candidate: good.candidate })),
    ];
    await s.releaseAll();
    expect(results.map((get) => get())).toEqual([
      'resolved',
      'resolved',
      'resolved',
      'resolved',
      'OperationError',
      'OperationError',
      'OperationError',
      'TypeError',
    ]);
  });

  it('works without a scheduler (macrotasks, failAfterMs timer)', async () => {
    const network = createFakeNetwork({ failAfterMs: 5 });
    const a = network.createPort();
    const b = network.createPort();
    const errors = trickle(a, b);
    const aEvents = record(a);
    a.addTransceiver('audio');
    const offer = await a.createOffer();
    await a.setLocalDescription(offer);
    await b.setRemoteDescription(offer);
    const answer = await b.createAnswer();
    await b.setLocalDescription(answer);
    await a.setRemoteDescription(answer);
    await expect.poll(() => [a.connectionState, b.connectionState]).toEqual(['connected', 'connected']);
    network.setConnectivity(false);
    await expect.poll(() => a.connectionState).toBe('failed');
    expect(statesOf(aEvents, 'connectionstatechange')).toEqual(['connecting', 'connected', 'disconnected', 'failed']);
    expect(errors).toEqual([]);
  });
});

// ---- data channels ----

async function openChannels(s: ManualScheduler) {
  const pair = await connectedPair(s, { dataChannel: true });
  const channel = pair.channel!;
  const announced = pair.bEvents.flatMap((event) => (event.type === 'datachannel' ? [event.channel] : []));
  expect(announced).toHaveLength(1);
  return { ...pair, channel, remote: announced[0] as FakeDataChannel };
}

function channelEvents(channel: FakeDataChannel): string[] {
  const events: string[] = [];
  channel.events$.subscribe({
    next: (event) => events.push(event.type === 'message' ? `message:${typeof event.data === 'string' ? event.data : `bytes(${event.data.byteLength})`}` : event.type),
    complete: () => events.push('complete'),
  });
  return events;
}

describe('data channels (webrtc-pc §6.2)', () => {
  it('opens on both sides once connected, announcing the remote channel', async () => {
    const { s, a, b } = twoPorts();
    trickle(a, b);
    const bEvents = record(b);
    const channel = a.createDataChannel('chat', { protocol: 'json' });
    const events = channelEvents(channel);
    expect(channel.readyState).toBe('connecting');
    expect(channel.id).toBeNull();
    await s.releaseAll();
    expect(a.negotiationNeeded).toBe(true);
    await negotiate(s, a, b);
    await s.releaseAll();
    const remote = bEvents.flatMap((event) => (event.type === 'datachannel' ? [event.channel] : []));
    expect(remote.map((c) => [c.label, c.protocol, c.readyState, c.id])).toEqual([['chat', 'json', 'open', 1]]);
    expect(channel.readyState).toBe('open');
    // A offered (DTLS server, RFC 8832 §6): odd ids.
    expect(channel.id).toBe(1);
    expect(events).toEqual(['open']);
  });

  it('sends text and binary in order, counting UTF-8 bytes in bufferedAmount', async () => {
    const s = new ManualScheduler();
    const { channel, remote, a } = await openChannels(s);
    const received: (string | number[])[] = [];
    remote.events$.subscribe((event) => {
      if (event.type === 'message') received.push(typeof event.data === 'string' ? event.data : [...new Uint8Array(event.data)]);
    });
    const bytes = new Uint8Array([9, 1, 2, 3, 9]);
    channel.send('héllo');
    channel.send(bytes.subarray(1, 4));
    channel.send('second');
    expect(channel.bufferedAmount).toBe(6 + 3 + 6);
    bytes[2] = 99; // after send: must not change what travels
    await s.releaseAll();
    expect(received).toEqual(['héllo', [1, 2, 3], 'second']);
    expect(channel.bufferedAmount).toBe(0);
    expect(s.released).toContain("A->B: 'chat' message 1 (6 bytes)");
    expect(a.illegalCalls).toEqual([]);
  });

  it('fires bufferedamountlow when bufferedAmount crosses down to the threshold', async () => {
    const s = new ManualScheduler();
    const { channel } = await openChannels(s);
    const events = channelEvents(channel);
    channel.bufferedAmountLowThreshold = 5;
    channel.send('aaaa');
    channel.send('bbbb');
    channel.send('cccc');
    const amounts: number[] = [];
    for (let i = 0; i < 3; i++) {
      await s.release(/'chat' message/);
      amounts.push(channel.bufferedAmount);
    }
    expect(amounts).toEqual([8, 4, 0]);
    expect(events).toEqual(['bufferedamountlow']);
  });

  it('throws InvalidStateError from send() when not open and logs it', () => {
    const s = new ManualScheduler();
    const a = createFakeNetwork({ scheduler: s }).createPort();
    const channel = a.createDataChannel('early');
    expect(() => channel.send('x')).toThrow(expect.objectContaining({ name: 'InvalidStateError' }) as Error);
    expect(a.illegalCalls).toEqual([{ method: 'RTCDataChannel(early).send', state: 'stable', detail: 'send() while readyState is connecting' }]);
  });

  it('closes on both sides with closing/close events and completes events$', async () => {
    const s = new ManualScheduler();
    const { channel, remote } = await openChannels(s);
    const local = channelEvents(channel);
    const far = channelEvents(remote);
    channel.send('last words');
    channel.close();
    expect(channel.readyState).toBe('closing');
    expect(() => channel.send('too late')).toThrow(expect.objectContaining({ name: 'InvalidStateError' }) as Error);
    await s.releaseAll();
    expect([channel.readyState, remote.readyState]).toEqual(['closed', 'closed']);
    // The default threshold is 0: draining the buffer fires bufferedamountlow.
    expect(local).toEqual(['bufferedamountlow', 'close', 'complete']);
    expect(far).toEqual(['message:last words', 'closing', 'close', 'complete']);
  });

  it('pairs negotiated channels by id without a datachannel event', async () => {
    const { s, a, b } = twoPorts();
    trickle(a, b);
    const bEvents = record(b);
    const mine = a.createDataChannel('game', { negotiated: true, id: 7 });
    const theirs = b.createDataChannel('game', { negotiated: true, id: 7 });
    const received = channelEvents(theirs);
    expect(() => a.createDataChannel('bad', { negotiated: true })).toThrow(TypeError);
    await negotiate(s, a, b);
    await s.releaseAll();
    expect([mine.readyState, theirs.readyState]).toEqual(['open', 'open']);
    expect(bEvents.filter((event) => event.type === 'datachannel')).toEqual([]);
    mine.send('ping');
    await s.releaseAll();
    expect(received).toEqual(['open', 'message:ping']);
  });

  it('port.close() closes its channels silently; the remote channel hears an abort', async () => {
    const s = new ManualScheduler();
    const { a, channel, remote } = await openChannels(s);
    const local = channelEvents(channel);
    const far = channelEvents(remote);
    a.close();
    expect(channel.readyState).toBe('closed');
    await s.releaseAll();
    expect(local).toEqual(['complete']);
    expect(far).toEqual(['close', 'complete']);
  });
});

// ---- a property: the fake under fast-check's scheduler ----

describe('under fc.scheduler()', () => {
  it('a hand-driven offer/answer with trickle connects under any interleaving, with no illegal call', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.boolean(), async (s, withChannel) => {
        const network = createFakeNetwork({ scheduler: s });
        const a = network.createPort();
        const b = network.createPort({ candidates: 1 });
        const errors = trickle(a, b);
        a.addTransceiver('audio');
        const channel = withChannel ? a.createDataChannel('chat') : null;
        const flow = (async () => {
          const offer = await a.createOffer();
          await a.setLocalDescription(offer);
          await b.setRemoteDescription(offer);
          const answer = await b.createAnswer();
          await b.setLocalDescription(answer);
          await a.setRemoteDescription(answer);
        })();
        await s.waitIdle();
        await flow;
        expect(errors).toEqual([]);
        expect([a.connectionState, b.connectionState]).toEqual(['connected', 'connected']);
        expect([a.signalingState, b.signalingState]).toEqual(['stable', 'stable']);
        expect(b.getTransceivers()).toHaveLength(a.getTransceivers().length);
        if (channel) expect(channel.readyState).toBe('open');
        expect([a, b].flatMap((port) => port.illegalCalls)).toEqual([]);
      }),
      { numRuns: 50 },
    );
  });
});
