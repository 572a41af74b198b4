import { createPeer } from '@parley/core';
import type { IceCandidate, PeerMessage, RtcPort, RtcPortEvent, SessionDescription, SignalingPort, WireDescription } from '@parley/core';
import { createFakeNetwork, createSignalingPair } from '@parley/core/testing';
import type { FakeRtcPort, FakeScheduler, FakeSignalingPort } from '@parley/core/testing';
import type { Subscription } from 'rxjs';
import type { InspectionEvent } from 'xstate';

// The work both subjects of the machines benchmark do, and the harness that runs and checks it.
//
// One negotiation: a fresh fake network with two ports (A impolite, B polite) and a fresh
// in-memory signaling pair; A has an audio transceiver, so its port fires negotiationneeded.
// The subject's two peers then exchange offer, answer and trickled candidates (with
// end-of-candidates) until both ports report `connected` and each side has received the other's
// end-of-candidates; then both are closed. The harness is the same for both subjects: only the
// code that drives the two ports differs.

/** The two things measured: Parley's peer machines, and the W3C loop written by hand. */
export type Subject = 'parley' | 'handWritten';
export const SUBJECTS: readonly Subject[] = ['parley', 'handWritten'];

/**
 * Drives every asynchronous step of the fake network and the signaling pair as a microtask:
 * as fast as the fakes allow (without a scheduler each step is a setTimeout, at least 1 ms).
 */
export const microtaskScheduler: FakeScheduler = {
  schedule: <T>(task: Promise<T>): Promise<T> => task,
};

const SESSION = 'bench';

/** One side of a subject, started on its port and signaling end. */
export interface Side {
  close(): void;
}

export type StartSide = (port: FakeRtcPort, signaling: FakeSignalingPort, polite: boolean, onConnected: () => void) => Side;

// ---------------------------------------------------------------------------------------------
// Parley

/** Parley's side; `inspect` (xstate's inspection API) sees every actor, event and microstep of its peer. */
export function parleySide(inspect?: (event: InspectionEvent) => void): StartSide {
  return (port, signaling, polite, onConnected) => {
    const peer = createPeer({ rtc: port, signaling, polite, session: SESSION, ...(inspect ? { inspect } : {}) });
    const errors: string[] = [];
    const subscription = peer.events$.subscribe((event) => {
      if (event.type === 'connectionstatechange' && event.state === 'connected') onConnected();
      else if (event.type === 'error') errors.push(`${event.operation}: ${event.error.message}`);
    });
    return {
      close() {
        subscription.unsubscribe();
        peer.close();
        if (errors.length > 0) throw new Error(`Parley peer reported errors: ${errors.join('; ')}`);
      },
    };
  };
}

export const startParleySide: StartSide = parleySide();

// ---------------------------------------------------------------------------------------------
// Hand-written: the W3C webrtc-pc "Perfect Negotiation Example" (§10.7), against the RtcPort.
//
// Differences from the example, each forced by the port (which models @roamhq/wrtc, like the
// machines' real-stack target): no parameterless setLocalDescription (createOffer/createAnswer
// first), no implicit rollback (the polite peer rolls back explicitly), and the negotiation
// work is serialized on one promise chain, because with explicit rollback the example's
// interleaved handlers could roll back before the offer is applied. End-of-candidates is
// applied, as Parley does. Not done (Parley does): duplicate and stale description detection,
// early-candidate queueing, ICE restart and connection recovery, error reporting, data channels,
// state mirrors and events for an app.

export class HandWrittenPeer implements Side {
  private makingOffer = false;
  private ignoreOffer = false;
  private isSettingRemoteAnswerPending = false;
  private tail: Promise<void> = Promise.resolve();
  private readonly rtcSubscription: Subscription;
  private readonly signalingSubscription: Subscription;
  /** Errors the loop could not swallow; the harness fails the run on any. */
  readonly errors: Error[] = [];

  constructor(
    private readonly port: RtcPort,
    private readonly signaling: SignalingPort,
    private readonly polite: boolean,
    private readonly onConnected: () => void = () => undefined,
  ) {
    this.rtcSubscription = port.events$.subscribe((event) => this.onRtcEvent(event));
    this.signalingSubscription = signaling.messages$.subscribe((message) => this.onMessage(message));
  }

  private onRtcEvent(event: RtcPortEvent): void {
    switch (event.type) {
      case 'negotiationneeded':
        this.serialize(() => this.makeOffer());
        return;
      case 'icecandidate':
        this.signaling.send({ kind: 'candidate', session: SESSION, candidate: event.candidate });
        return;
      case 'connectionstatechange':
        if (event.state === 'connected') this.onConnected();
        return;
      default:
        return;
    }
  }

  private onMessage(message: PeerMessage): void {
    if (message.session !== SESSION) return;
    if (message.kind === 'description') {
      const description = message.description;
      this.serialize(() => this.takeDescription(description));
    } else if (message.kind === 'candidate') {
      const candidate = message.candidate;
      this.serialize(() => this.takeCandidate(candidate));
    }
  }

  private serialize(work: () => Promise<void>): void {
    this.tail = this.tail.then(work).catch((error: unknown) => {
      this.errors.push(error instanceof Error ? error : new Error(String(error)));
    });
  }

  private async makeOffer(): Promise<void> {
    // A remote offer got in first: the port fires negotiationneeded again once stable.
    if (this.port.signalingState !== 'stable') return;
    this.makingOffer = true;
    try {
      const offer = await this.port.createOffer();
      await this.port.setLocalDescription(offer);
      this.sendDescription(offer);
    } finally {
      this.makingOffer = false;
    }
  }

  private async takeDescription(description: WireDescription): Promise<void> {
    const readyForOffer = !this.makingOffer && (this.port.signalingState === 'stable' || this.isSettingRemoteAnswerPending);
    const offerCollision = description.type === 'offer' && !readyForOffer;
    this.ignoreOffer = !this.polite && offerCollision;
    if (this.ignoreOffer) return;
    if (offerCollision) await this.port.setLocalDescription({ type: 'rollback' });
    this.isSettingRemoteAnswerPending = description.type === 'answer';
    await this.port.setRemoteDescription(description);
    this.isSettingRemoteAnswerPending = false;
    if (description.type === 'offer') {
      const answer = await this.port.createAnswer();
      await this.port.setLocalDescription(answer);
      this.sendDescription(answer);
    }
  }

  private async takeCandidate(candidate: IceCandidate | null): Promise<void> {
    try {
      await this.port.addIceCandidate(candidate);
    } catch (error) {
      if (!this.ignoreOffer) throw error;
    }
  }

  private sendDescription(description: SessionDescription): void {
    this.signaling.send({
      kind: 'description',
      session: SESSION,
      description: { type: description.type === 'offer' ? 'offer' : 'answer', sdp: description.sdp ?? '' },
    });
  }

  close(): void {
    this.rtcSubscription.unsubscribe();
    this.signalingSubscription.unsubscribe();
    this.port.close();
  }
}

export const startHandWrittenSide: StartSide = (port, signaling, polite, onConnected) => {
  const peer = new HandWrittenPeer(port, signaling, polite, onConnected);
  return {
    close() {
      const errors = peer.errors;
      peer.close();
      if (errors.length > 0) throw new Error(`hand-written peer failed: ${errors.map((e) => e.message).join('; ')}`);
    },
  };
};

export const START: Readonly<Record<Subject, StartSide>> = { parley: startParleySide, handWritten: startHandWrittenSide };

// ---------------------------------------------------------------------------------------------
// The harness

/** What the harness counted over a run; every field must come out as the run's count implies. */
export interface Tally {
  negotiations: number;
  /** Sides that reported `connected` (two per negotiation). */
  connectedSides: number;
  offers: number;
  answers: number;
  /** Trickled candidates that crossed (not counting end-of-candidates). */
  candidates: number;
  endOfCandidates: number;
  /** RTC calls the fake ports refused as illegal in their signaling state. */
  illegalCalls: number;
}

export function emptyTally(): Tally {
  return { negotiations: 0, connectedSides: 0, offers: 0, answers: 0, candidates: 0, endOfCandidates: 0, illegalCalls: 0 };
}

export interface NegotiateOptions {
  /** Both sides have a transceiver, so both offer at once (glare). Default: only A. */
  readonly glare?: boolean;
}

function countCrossed(tally: Tally, from: FakeSignalingPort, to: FakeSignalingPort): void {
  if (to.received.length !== from.sent.length) {
    throw new Error(`${from.name} sent ${from.sent.length} message(s) but ${to.name} received ${to.received.length}`);
  }
  for (const message of to.received) {
    if (message.kind === 'description') {
      if (message.description.type === 'offer') tally.offers += 1;
      else tally.answers += 1;
    } else if (message.kind === 'candidate') {
      if (message.candidate === null) tally.endOfCandidates += 1;
      else tally.candidates += 1;
    }
  }
}

/**
 * One complete negotiation between two sides of `subject`, counted into `tally`. Resolves when
 * both ports are connected and both ends have received the other's end-of-candidates, after
 * closing both sides.
 */
export function negotiate(subject: Subject, tally: Tally, options: NegotiateOptions = {}): Promise<void> {
  return negotiateWith(START[subject], tally, options);
}

/** `negotiate` with the sides started by `start` (e.g. Parley's peers with an inspector). */
export function negotiateWith(start: StartSide, tally: Tally, options: NegotiateOptions = {}): Promise<void> {
  const network = createFakeNetwork({ scheduler: microtaskScheduler });
  const portA = network.createPort({ name: 'A' });
  const portB = network.createPort({ name: 'B' });
  portA.addTransceiver('audio');
  if (options.glare) portB.addTransceiver('audio');
  const [signalingA, signalingB] = createSignalingPair({ scheduler: microtaskScheduler });

  return new Promise<void>((resolve, reject) => {
    let connected = 0;
    let ends = 0;
    let finished = false;
    const sides: Side[] = [];
    const check = (): void => {
      if (finished || connected < 2 || ends < 2 || sides.length < 2) return;
      finished = true;
      try {
        for (const side of sides) side.close();
        subscriptionA.unsubscribe();
        subscriptionB.unsubscribe();
        tally.negotiations += 1;
        tally.connectedSides += connected;
        countCrossed(tally, signalingA, signalingB);
        countCrossed(tally, signalingB, signalingA);
        tally.illegalCalls += portA.illegalCalls.length + portB.illegalCalls.length;
        resolve();
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    };
    const onConnected = (): void => {
      connected += 1;
      check();
    };
    const countEnd = (message: PeerMessage): void => {
      if (message.kind === 'candidate' && message.candidate === null) {
        ends += 1;
        check();
      }
    };
    const subscriptionA = signalingA.messages$.subscribe(countEnd);
    const subscriptionB = signalingB.messages$.subscribe(countEnd);
    try {
      sides.push(start(portA, signalingA, false, onConnected), start(portB, signalingB, true, onConnected));
    } catch (error) {
      reject(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    check();
  });
}

/**
 * `count` negotiations one after the other; returns the elapsed wall-clock and CPU time. Throws when any
 * negotiation is incomplete, or when the run stalls for `stallMs`.
 */
export interface RunTimes {
  /** Wall-clock milliseconds of the run. */
  readonly ms: number;
  /** CPU milliseconds this process used during the run (user + system, every thread). */
  readonly cpuMs: number;
}

export async function runNegotiations(
  subject: Subject,
  count: number,
  options: NegotiateOptions & { stallMs?: number } = {},
): Promise<RunTimes & { tally: Tally }> {
  const tally = emptyTally();
  let stall: ReturnType<typeof setTimeout> | undefined;
  const stalled = new Promise<never>((_, reject) => {
    stall = setTimeout(() => reject(new Error(`${subject}: stalled after ${tally.negotiations} of ${count} negotiations`)), options.stallMs ?? 30_000);
  });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  try {
    await Promise.race([
      (async () => {
        for (let i = 0; i < count; i++) await negotiate(subject, tally, options);
      })(),
      stalled,
    ]);
  } finally {
    clearTimeout(stall);
  }
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  verifyTally(subject, tally, count, options);
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000, tally };
}

/** Fails loudly unless every negotiation was complete: offer, answer, candidates, connected. */
export function verifyTally(subject: Subject, tally: Tally, count: number, options: NegotiateOptions = {}): void {
  const problems: string[] = [];
  if (tally.negotiations !== count) problems.push(`${tally.negotiations} of ${count} negotiations finished`);
  if (tally.connectedSides !== 2 * count) problems.push(`${tally.connectedSides} sides connected, expected ${2 * count}`);
  if (tally.offers < count) problems.push(`${tally.offers} offers crossed, expected at least ${count}`);
  if (tally.answers < count) problems.push(`${tally.answers} answers crossed, expected at least ${count}`);
  if (tally.candidates < 2 * count) problems.push(`${tally.candidates} candidates crossed, expected at least ${2 * count}`);
  if (tally.endOfCandidates < 2 * count) problems.push(`${tally.endOfCandidates} end-of-candidates crossed, expected at least ${2 * count}`);
  if (!options.glare && tally.illegalCalls > 0) problems.push(`${tally.illegalCalls} illegal RTC call(s)`);
  if (problems.length > 0) throw new Error(`${subject}: incomplete negotiations: ${problems.join('; ')}`);
}
