import type { Observable } from 'rxjs';
import { BufferUntilSubscribed } from '../rx.js';
import type {
  DataChannelInit,
  IceCandidate,
  IceConnectionState,
  IceGatheringState,
  MediaTrackHandle,
  PeerConnectionState,
  RtcConfiguration,
  RtcPort,
  RtcPortEvent,
  SdpType,
  SessionDescription,
  SignalingState,
} from '../ports/rtc.js';
import { FakeDataChannelImpl } from './fake-data-channel.js';
import type { DataChannelHost, FakeDataChannel } from './fake-data-channel.js';
import {
  answerDirection,
  hostCandidate,
  parseCandidate,
  parseSdp,
  renderSdp,
  reverseDirection,
  rtcError,
  sends,
} from './fake-sdp.js';
import type { MediaKind, RtpTransceiverDirection, SdpModel, SdpSection } from './fake-sdp.js';

// A simulated network of RTCPeerConnections, faithful to W3C webrtc-pc and JSEP (RFC 9429) where
// the negotiation machines can observe it: the operations chain, the signaling-state table,
// negotiation-needed, trickle ICE, connection states and data channels. It models
// `@roamhq/wrtc` (libwebrtc in Node): no implicit rollback, no parameterless
// setLocalDescription. Every asynchronous step goes through the optional scheduler, so
// fast-check's `fc.scheduler()` can explore their interleavings.

// ---------------------------------------------------------------------------------------------
// Scheduling

/** Structurally compatible with fast-check's `Scheduler` (`s.schedule(promise, label)`). */
export interface FakeScheduler {
  schedule<T>(task: Promise<T>, label?: string): Promise<T>;
}

/** Runs `run` as one asynchronous step: through the scheduler, or on a macrotask. */
export type Stepper = (label: string, run: () => void) => void;

export function createStepper(scheduler: FakeScheduler | undefined): Stepper {
  if (scheduler) {
    return (label, run) => {
      void scheduler.schedule(Promise.resolve(), label).then(run);
    };
  }
  return (_label, run) => {
    setTimeout(run, 0);
  };
}

// ---------------------------------------------------------------------------------------------
// Public types

export type { MediaKind, RtpTransceiverDirection } from './fake-sdp.js';
export type { FakeDataChannel } from './fake-data-channel.js';

/** Options of `createFakeNetwork`. */
export interface FakeNetworkOptions {
  /** Drives every asynchronous step of every port (fast-check `fc.scheduler()` fits). */
  readonly scheduler?: FakeScheduler;
  /**
   * Without a scheduler: how long a `disconnected` (or still `checking`) port waits without
   * connectivity before it goes `failed`. With a scheduler, failing is one more scheduled step.
   */
  readonly failAfterMs?: number;
}

/**
 * How often a port fires `negotiationneeded` when tracks are added (issue 16: engines differ here).
 * - `'per-stream'` (the default): webrtc-pc §4.7.3 as written, and Firefox: the check is one queued
 *   task, so the tracks of a stream added in one task make one event, and none fires while the
 *   flag is already set.
 * - `'per-track'`: Chromium, as issue 16 describes it: every added track (addTransceiver) gets a
 *   check of its own that fires even when the flag is already set, so two tracks added in one task
 *   make two events.
 */
export type NegotiationNeededTiming = 'per-stream' | 'per-track';

/** Options of `FakeNetwork.createPort`. */
export interface FakePortConfig {
  /** Used in labels and logs; default 'A', 'B', 'C', ... in creation order. */
  readonly name?: string;
  /** Host candidates gathered per ICE generation (default 2, at least 1). */
  readonly candidates?: number;
  /** When `negotiationneeded` fires for added tracks, as one engine or another does (default 'per-stream'). */
  readonly negotiationNeeded?: NegotiationNeededTiming;
}

/** The opaque remote-track handle carried by `track` events. */
export interface FakeTrackHandle {
  readonly id: string;
  readonly kind: MediaKind;
}

/** webrtc-pc §5.4 RTCRtpTransceiver, the parts negotiation touches. */
export interface FakeTransceiver {
  readonly kind: MediaKind;
  /** Null until the transceiver is associated with an m= section (JSEP §3.4.1, RFC 9429). */
  readonly mid: string | null;
  /** Setting it updates the negotiation-needed flag (webrtc-pc §5.4 direction setter). */
  direction: RtpTransceiverDirection;
  /** The negotiated direction; null until an offer/answer including it completed. */
  readonly currentDirection: RtpTransceiverDirection | null;
  /** The handle the `track` event carries for this transceiver's receiver. */
  readonly receiverTrack: FakeTrackHandle;
  /** The local track its sender sends (`addTrack`, `replaceTrack`); null for those of `addTransceiver`. */
  readonly senderTrack: MediaTrackHandle;
}

/** A local track for `FakeRtcPort.addTrack` (a MediaStreamTrack's kind and id). */
export interface FakeLocalTrack {
  readonly kind: MediaKind;
  readonly id: string;
}

/** One InvalidStateError the port raised. */
export interface IllegalCall {
  readonly method: string;
  readonly state: SignalingState;
  readonly detail: string;
}

/**
 * A fake `RtcPort` on a `FakeNetwork`: the core port contract plus test controls (media,
 * transceivers, connectivity) and a log of illegal calls.
 */
export interface FakeRtcPort extends RtcPort {
  readonly name: string;
  /** The id written in this port's SDP (`a=x-fake-port:<id>`). */
  readonly id: string;
  /** Every InvalidStateError this port (or one of its data channels) raised. */
  readonly illegalCalls: readonly IllegalCall[];
  /** Every call made on the port, in order, for readable counterexamples. */
  readonly operations: readonly string[];
  /** webrtc-pc [[NegotiationNeeded]]. */
  readonly negotiationNeeded: boolean;
  /** Every configuration given to `setConfiguration`, in order (the fake gathers no relay candidates: it only records them). */
  readonly configurations: readonly RtcConfiguration[];
  addTransceiver(kind: MediaKind, init?: { readonly direction?: RtpTransceiverDirection }): FakeTransceiver;
  getTransceivers(): readonly FakeTransceiver[];
  /** Every channel of this port: created locally or announced by the remote. */
  getDataChannels(): readonly FakeDataChannel[];
  createDataChannel(label: string, init?: DataChannelInit): FakeDataChannel;
}

/** A JSEP-faithful fake network of RTC ports, as `createFakeNetwork` returns it. */
export interface FakeNetwork {
  createPort(config?: FakePortConfig): FakeRtcPort;
  /** Network-wide connectivity: down makes connected ports disconnected, then failed. */
  setConnectivity(up: boolean): void;
  readonly connectivity: boolean;
  readonly ports: readonly FakeRtcPort[];
}

// ---------------------------------------------------------------------------------------------
// Signaling state table

/**
 * The signaling state a description leads to, or null when applying it is an InvalidStateError.
 * JSEP (RFC 9429) §3.2 state machine and §5.5/§5.6, webrtc-pc §4.4.1.6 "set the session
 * description" step "If description's type is invalid for the current signaling state".
 */
export function nextSignalingState(state: SignalingState, side: 'local' | 'remote', type: SdpType): SignalingState | null {
  const from = (...states: SignalingState[]): boolean => states.includes(state);
  switch (type) {
    case 'offer':
      if (side === 'local') return from('stable', 'have-local-offer') ? 'have-local-offer' : null;
      // webrtc-pc would roll back implicitly from have-local-offer; @roamhq/wrtc (which this fake
      // models) does not, so the machines must roll back explicitly.
      return from('stable', 'have-remote-offer') ? 'have-remote-offer' : null;
    case 'pranswer':
      if (side === 'local') return from('have-remote-offer', 'have-local-pranswer') ? 'have-local-pranswer' : null;
      return from('have-local-offer', 'have-remote-pranswer') ? 'have-remote-pranswer' : null;
    case 'answer':
      if (side === 'local') return from('have-remote-offer', 'have-local-pranswer') ? 'stable' : null;
      return from('have-local-offer', 'have-remote-pranswer') ? 'stable' : null;
    case 'rollback':
      // webrtc-pc §4.4.1.6: rollback in stable, have-local-pranswer or have-remote-pranswer is an
      // InvalidStateError; JSEP §4.1.8.2.
      return from('have-local-offer', 'have-remote-offer') ? 'stable' : null;
  }
}

/** webrtc-pc §4.3.3 RTCPeerConnectionState, derived from the single (BUNDLE) ICE transport. */
function connectionStateOf(ice: IceConnectionState): PeerConnectionState {
  switch (ice) {
    case 'new':
      return 'new';
    case 'checking':
      return 'connecting';
    case 'connected':
    case 'completed':
      return 'connected';
    case 'disconnected':
      return 'disconnected';
    case 'failed':
      return 'failed';
    case 'closed':
      return 'closed';
  }
}

// ---------------------------------------------------------------------------------------------
// Internals

interface Settle<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

interface Applied {
  readonly type: 'offer' | 'answer' | 'pranswer';
  readonly model: SdpModel;
}

/** Which transceiver (or the data section) each m= section of a created offer belongs to. */
type PlanTarget = TransceiverImpl | 'data';

interface CreatedOffer {
  readonly sdp: string;
  readonly model: SdpModel;
  readonly plan: readonly PlanTarget[];
}

interface Created {
  readonly sdp: string;
  readonly model: SdpModel;
}

/** What the pending (not yet stable) negotiation changed, undone by rollback. */
interface PendingChanges {
  /** Transceivers whose mid was assigned by the pending local offer. */
  readonly assigned: TransceiverImpl[];
  /** Transceivers created by the pending remote offer. */
  readonly created: TransceiverImpl[];
  dataAssigned: boolean;
}

class TransceiverImpl implements FakeTransceiver {
  mid: string | null = null;
  mLineIndex: number | null = null;
  currentDirection: RtpTransceiverDirection | null = null;
  /** Directions of its m= section in the current local / remote description. */
  negotiatedLocal: RtpTransceiverDirection | null = null;
  negotiatedRemote: RtpTransceiverDirection | null = null;
  negotiatedAsOfferer = false;
  /** Whether a `track` event announced that the remote sends on it ([[FiredDirection]]). */
  receiving = false;
  senderTrack: MediaTrackHandle = null;

  constructor(
    private readonly port: PortImpl,
    readonly kind: MediaKind,
    private currentWish: RtpTransceiverDirection,
    readonly receiverTrack: FakeTrackHandle,
  ) {}

  get direction(): RtpTransceiverDirection {
    return this.currentWish;
  }

  set direction(direction: RtpTransceiverDirection) {
    // webrtc-pc §5.4 direction setter: stopped (a closed connection stops them) -> InvalidStateError.
    if (this.port.closed) {
      this.port.recordIllegal('RTCRtpTransceiver.direction', 'set on a transceiver of a closed connection');
      throw rtcError('InvalidStateError', 'the transceiver is stopped');
    }
    if (direction === this.currentWish) return;
    this.currentWish = direction;
    this.port.updateNegotiationNeeded();
  }
}

type LinkStatus = 'new' | 'connected' | 'disconnected' | 'failed';
type LinkStep = 'connect' | 'lose' | 'fail' | 'recover' | 'sctp';

/** The ICE (and SCTP) association between two ports whose descriptions name each other. */
interface Link {
  readonly a: PortImpl;
  readonly b: PortImpl;
  status: LinkStatus;
  /** The ufrags (a's, b's) of the generation that last connected or failed. */
  generation: { readonly a: string; readonly b: string } | null;
  sctp: boolean;
  readonly scheduled: Set<LinkStep>;
}

let networkCounter = 0;

class NetworkImpl implements FakeNetwork {
  readonly ports: PortImpl[] = [];
  connectivity = true;
  readonly step: Stepper;
  readonly sequence: number;
  private readonly links = new Map<string, Link>();
  private readonly syncScheduled = new Set<PortImpl>();

  constructor(readonly options: FakeNetworkOptions) {
    this.step = createStepper(options.scheduler);
    networkCounter += 1;
    this.sequence = networkCounter;
  }

  createPort(config: FakePortConfig = {}): FakeRtcPort {
    const index = this.ports.length;
    const name = config.name ?? (index < 26 ? String.fromCharCode(65 + index) : `P${index}`);
    const port = new PortImpl(this, name, index, Math.max(1, Math.floor(config.candidates ?? 2)), config.negotiationNeeded ?? 'per-stream');
    this.ports.push(port);
    return port;
  }

  setConnectivity(up: boolean): void {
    if (this.connectivity === up) return;
    this.connectivity = up;
    this.evaluate();
  }

  /** The port named by `port`'s remote description, if it is on this network. */
  peerOf(port: PortImpl): PortImpl | null {
    const id = port.remotePortId();
    if (id === null) return null;
    return this.ports.find((other) => other.id === id && other !== port) ?? null;
  }

  linkOf(port: PortImpl): Link | null {
    const peer = this.peerOf(port);
    if (!peer) return null;
    return this.links.get(linkKey(port, peer)) ?? null;
  }

  otherEnd(link: Link, port: PortImpl): PortImpl {
    return link.a === port ? link.b : link.a;
  }

  /** Re-derives what should happen next after any change; schedules the steps that do it. */
  evaluate(): void {
    for (const port of this.ports) {
      const peer = this.peerOf(port);
      if (peer && this.peerOf(peer) === port && !this.links.has(linkKey(port, peer))) {
        const [a, b] = port.index < peer.index ? [port, peer] : [peer, port];
        this.links.set(linkKey(a, b), { a, b, status: 'new', generation: null, sctp: false, scheduled: new Set() });
      }
    }
    for (const link of this.links.values()) this.evaluateLink(link);
    for (const port of this.ports) this.requestIceSync(port);
  }

  /** True when both ends may exchange packets. */
  private isUp(link: Link): boolean {
    return this.connectivity && !link.a.closed && !link.b.closed;
  }

  /**
   * Both ends know each other's current ICE credentials (from the applied descriptions) and hold
   * at least one candidate of the other's current generation: the checks can succeed.
   */
  private isReady(link: Link): boolean {
    const { a, b } = link;
    const ua = a.localUfrag();
    const ub = b.localUfrag();
    if (ua === null || ub === null) return false;
    return a.remoteUfrag() === ub && b.remoteUfrag() === ua && a.hasRemoteCandidate(ub) && b.hasRemoteCandidate(ua);
  }

  /** The current generation differs from the one that connected or failed (an ICE restart). */
  private isFresh(link: Link): boolean {
    const generation = link.generation;
    if (generation === null) return true;
    return link.a.localUfrag() !== generation.a || link.b.localUfrag() !== generation.b;
  }

  private evaluateLink(link: Link): void {
    const up = this.isUp(link);
    const ready = this.isReady(link);
    switch (link.status) {
      case 'new':
        if (up && ready) this.scheduleLink(link, 'connect');
        else if (!up && (link.a.iceConnectionState === 'checking' || link.b.iceConnectionState === 'checking')) {
          this.scheduleLink(link, 'fail');
        }
        break;
      case 'connected':
        if (!up) this.scheduleLink(link, 'lose');
        // RFC 8445 §9: after an ICE restart the old pair keeps carrying media until the new
        // generation connects, which then takes over without a state change.
        else if (ready && this.isFresh(link)) link.generation = this.currentGeneration(link);
        break;
      case 'disconnected':
        this.scheduleLink(link, up ? 'recover' : 'fail');
        break;
      case 'failed':
        // A failed ICE session recovers only through an ICE restart (RFC 8445 §9; webrtc-pc
        // §4.3.3 "failed" needs restartIce()).
        if (up && ready && this.isFresh(link)) this.scheduleLink(link, 'connect');
        break;
    }
    if (link.status === 'connected' && !link.sctp && link.a.dataNegotiated && link.b.dataNegotiated) {
      this.scheduleLink(link, 'sctp');
    }
  }

  private currentGeneration(link: Link): { a: string; b: string } {
    return { a: link.a.localUfrag() ?? '', b: link.b.localUfrag() ?? '' };
  }

  private scheduleLink(link: Link, step: LinkStep): void {
    if (link.scheduled.has(step)) return;
    link.scheduled.add(step);
    const pair = `${link.a.name}<->${link.b.name}`;
    const labels: Record<LinkStep, string> = {
      connect: link.status === 'failed' ? `${pair}: ICE connects (after ICE restart)` : `${pair}: ICE connects`,
      lose: `${pair}: connectivity lost`,
      fail: link.status === 'new' ? `${pair}: ICE checks time out` : `${pair}: ICE fails`,
      recover: `${pair}: ICE reconnects (consent freshness)`,
      sctp: `${pair}: SCTP association established`,
    };
    const run = (): void => {
      link.scheduled.delete(step);
      this.runLinkStep(link, step);
    };
    if (step === 'fail' && !this.options.scheduler) setTimeout(run, this.options.failAfterMs ?? 50);
    else this.step(labels[step], run);
  }

  private runLinkStep(link: Link, step: LinkStep): void {
    const up = this.isUp(link);
    switch (step) {
      case 'connect':
        if (up && this.isReady(link) && (link.status === 'new' || (link.status === 'failed' && this.isFresh(link)))) {
          link.status = 'connected';
          link.generation = this.currentGeneration(link);
        }
        break;
      case 'lose':
        if (link.status === 'connected' && !up) link.status = 'disconnected';
        break;
      case 'fail':
        if (!up && (link.status === 'disconnected' || link.status === 'new')) {
          link.status = 'failed';
          link.generation = this.currentGeneration(link);
        }
        break;
      case 'recover':
        // RFC 7675 consent freshness: the same pair works again, no restart needed.
        if (link.status === 'disconnected' && up) link.status = 'connected';
        break;
      case 'sctp':
        if (link.status === 'connected' && !link.sctp && link.a.dataNegotiated && link.b.dataNegotiated) link.sctp = true;
        break;
    }
    for (const port of [link.a, link.b]) port.applyIceState(this.desiredIceState(port));
    if (link.status === 'connected' && link.sctp) {
      for (const port of [link.a, link.b]) port.resumeChannels();
    }
    this.evaluate();
  }

  desiredIceState(port: PortImpl): IceConnectionState {
    if (port.closed) return 'closed';
    const checking = port.canCheck();
    const link = this.linkOf(port);
    if (link) {
      switch (link.status) {
        case 'connected':
          return 'connected';
        case 'disconnected':
          return 'disconnected';
        case 'failed':
          return checking && this.isFreshFor(link, port) ? 'checking' : 'failed';
        case 'new':
          break;
      }
    }
    return checking ? 'checking' : 'new';
  }

  private isFreshFor(link: Link, port: PortImpl): boolean {
    const generation = link.generation;
    if (generation === null) return true;
    const [mine, theirs] = link.a === port ? [generation.a, generation.b] : [generation.b, generation.a];
    return port.localUfrag() !== mine || port.remoteUfrag() !== theirs;
  }

  /** Schedules a port's own iceConnectionState change (new <-> checking) as its own step. */
  private requestIceSync(port: PortImpl): void {
    if (port.closed || this.syncScheduled.has(port)) return;
    const desired = this.desiredIceState(port);
    if (desired === port.iceConnectionState) return;
    this.syncScheduled.add(port);
    this.step(`${port.name}: ICE ${desired}`, () => {
      this.syncScheduled.delete(port);
      port.applyIceState(this.desiredIceState(port));
    });
  }

  /** webrtc-pc §6.2 announce a channel: open steps run once SCTP is up. */
  canDeliver(port: PortImpl): boolean {
    const link = this.linkOf(port);
    return !port.closed && link !== null && link.status === 'connected' && link.sctp;
  }
}

function linkKey(a: PortImpl, b: PortImpl): string {
  return a.index < b.index ? `${a.id}|${b.id}` : `${b.id}|${a.id}`;
}

function describeCandidate(candidate: IceCandidate | null): string {
  if (candidate === null) return 'null';
  if (candidate.candidate === '') return 'end-of-candidates';
  const parsed = parseCandidate(candidate.candidate);
  return parsed ? `${parsed.address}:${parsed.port} ${candidate.usernameFragment ?? parsed.ufrag ?? ''}`.trim() : 'garbage';
}

class PortImpl implements FakeRtcPort {
  readonly id: string;
  signalingState: SignalingState = 'stable';
  iceGatheringState: IceGatheringState = 'new';
  iceConnectionState: IceConnectionState = 'new';
  connectionState: PeerConnectionState = 'new';
  closed = false;
  dataNegotiated = false;
  negotiationNeeded = false;

  /** The RtcPort contract: events raised before the machines subscribe are never lost. */
  private readonly stream = new BufferUntilSubscribed<RtcPortEvent>();
  readonly events$: Observable<RtcPortEvent> = this.stream.observable;
  readonly illegalCalls: IllegalCall[] = [];
  readonly operations: string[] = [];
  readonly configurations: RtcConfiguration[] = [];

  private readonly transceivers: TransceiverImpl[] = [];
  private readonly channels: FakeDataChannelImpl[] = [];
  private channelsCreated = false;
  private readonly channelOpenScheduled = new Set<FakeDataChannelImpl>();
  private dataMid: string | null = null;
  private dataMLineIndex: number | null = null;
  private dtlsRole: 'client' | 'server' | null = null;

  private currentLocal: Applied | null = null;
  private pendingLocal: Applied | null = null;
  private currentRemote: Applied | null = null;
  private pendingRemote: Applied | null = null;
  /** webrtc-pc [[LastCreatedOffer]] / [[LastCreatedAnswer]]. */
  private lastOffer: CreatedOffer | null = null;
  private lastAnswer: Created | null = null;
  private pending: PendingChanges = { assigned: [], created: [], dataAssigned: false };
  private sessionVersion = 0;
  private iceGeneration = 0;
  private trackCounter = 0;
  /** webrtc-pc [[LocalIceCredentialsToReplace]] (the ufrags). */
  private readonly credentialsToReplace = new Set<string>();

  private readonly generationOf = new Map<string, number>();
  private readonly remoteCandidates = new Map<string, Set<string>>();
  private readonly remoteEndOfCandidates = new Set<string>();
  private readonly gathered = new Map<string, string[]>();
  private readonly gatheringStarted = new Set<string>();
  private readonly gatheringDone = new Set<string>();
  private readonly gatheringParked = new Map<string, () => void>();

  /** webrtc-pc [[Operations]]. */
  private readonly chain: (() => void)[] = [];
  private updateOnEmptyChain = false;
  private refireOnEmptyChain = false;
  private negotiationTaskScheduled = false;
  private negotiationTaskRefire = false;

  private readonly channelHost: DataChannelHost;

  constructor(
    private readonly network: NetworkImpl,
    readonly name: string,
    readonly index: number,
    private readonly candidateCount: number,
    private readonly negotiationNeededTiming: NegotiationNeededTiming,
  ) {
    this.id = `n${network.sequence}p${index}`;
    this.channelHost = {
      name,
      step: (label, run) => network.step(label, run),
      canDeliver: () => network.canDeliver(this),
      peerName: () => network.peerOf(this)?.name ?? '?',
      isClosed: () => this.closed,
      recordIllegal: (method, detail) => this.recordIllegal(method, detail),
    };
  }

  // ---- RtcPort: descriptions ----

  get localDescription(): SessionDescription | null {
    const applied = this.pendingLocal ?? this.currentLocal;
    if (!applied) return null;
    // webrtc-pc §4.4.1.6: localDescription includes the candidates gathered so far.
    const ufrag = applied.model.ufrag;
    const model: SdpModel = {
      ...applied.model,
      candidates: this.gathered.get(ufrag) ?? applied.model.candidates,
      endOfCandidates: this.gatheringDone.has(ufrag),
    };
    return { type: applied.type, sdp: renderSdp(model) };
  }

  get remoteDescription(): SessionDescription | null {
    const applied = this.pendingRemote ?? this.currentRemote;
    if (!applied) return null;
    const ufrag = applied.model.ufrag;
    const model: SdpModel = {
      ...applied.model,
      candidates: [...(this.remoteCandidates.get(ufrag) ?? [])],
      endOfCandidates: applied.model.endOfCandidates || this.remoteEndOfCandidates.has(ufrag),
    };
    return { type: applied.type, sdp: renderSdp(model) };
  }

  // ---- RtcPort: offer/answer ----

  createOffer(options?: { readonly iceRestart?: boolean }): Promise<SessionDescription> {
    const restart = options?.iceRestart === true;
    const method = restart ? 'createOffer({iceRestart: true})' : 'createOffer()';
    this.operations.push(method);
    if (this.closed) return this.rejectClosed(method);
    // webrtc-pc §4.4.1.5 createOffer: only [[IsClosed]] rejects; the offer reflects the state
    // when the operation runs (the signaling state is checked when it is applied). As in
    // Chromium, a channel or track added after that, before the offer resolves, is not in it:
    // the negotiation-needed flag is updated once the offer is applied (§4.7.3).
    return this.enqueue<SessionDescription>((settle) => {
      const offer = this.buildOffer(restart);
      this.complete(`${method} completes`, () => settle.resolve(offer));
    });
  }

  createAnswer(): Promise<SessionDescription> {
    const method = 'createAnswer()';
    this.operations.push(method);
    if (this.closed) return this.rejectClosed(method);
    return this.enqueue<SessionDescription>((settle) => {
      // webrtc-pc §4.4.1.5 createAnswer: InvalidStateError unless have-remote-offer or
      // have-local-pranswer, checked when the operation runs.
      if (this.signalingState !== 'have-remote-offer' && this.signalingState !== 'have-local-pranswer') {
        this.failIllegal(method, settle, `createAnswer() in ${this.signalingState}`);
        return;
      }
      this.complete(`${method} completes`, () => settle.resolve(this.buildAnswer()));
    });
  }

  setLocalDescription(description: SessionDescription): Promise<void> {
    const type = (description as SessionDescription | undefined)?.type;
    const method = `setLocalDescription(${type ?? ''})`;
    this.operations.push(method);
    if (this.closed) return this.rejectClosed(method);
    // The @roamhq/wrtc model: no parameterless / implicit form (webrtc-pc §4.4.1.6 allows it).
    if (type === undefined || (type !== 'rollback' && !description.sdp)) {
      return Promise.reject(rtcError('TypeError', `${method}: implicit descriptions are not supported, pass {type, sdp}`));
    }
    return this.enqueue<void>((settle) => this.runSetLocal(description, method, settle));
  }

  setRemoteDescription(description: SessionDescription): Promise<void> {
    const type = (description as SessionDescription | undefined)?.type;
    const method = `setRemoteDescription(${type ?? ''})`;
    this.operations.push(method);
    if (this.closed) return this.rejectClosed(method);
    if (type === undefined || (type !== 'rollback' && !description.sdp)) {
      return Promise.reject(rtcError('TypeError', `${method}: a description needs a type and an sdp`));
    }
    return this.enqueue<void>((settle) => this.runSetRemote(description, method, settle));
  }

  addIceCandidate(candidate: IceCandidate | null): Promise<void> {
    const method = `addIceCandidate(${describeCandidate(candidate)})`;
    this.operations.push(method);
    if (this.closed) return this.rejectClosed(method);
    // webrtc-pc §4.4.1.6 addIceCandidate step 1: a candidate needs sdpMid or sdpMLineIndex.
    if (candidate && candidate.candidate !== '' && candidate.sdpMid == null && candidate.sdpMLineIndex == null) {
      return Promise.reject(rtcError('TypeError', `${method}: sdpMid and sdpMLineIndex are both null`));
    }
    return this.enqueue<void>((settle) => this.runAddIceCandidate(candidate, method, settle));
  }

  /** webrtc-pc §4.4.1.6 restartIce(). */
  restartIce(): void {
    this.operations.push('restartIce()');
    // restartIce has no [[IsClosed]] check in webrtc-pc: on a closed connection it does nothing.
    if (this.closed) return;
    this.credentialsToReplace.clear();
    for (const applied of [this.currentLocal, this.pendingLocal]) {
      if (applied && applied.model.ufrag !== '') this.credentialsToReplace.add(applied.model.ufrag);
    }
    this.updateNegotiationNeeded();
  }

  /** webrtc-pc §4.4.1.6 setConfiguration (ICE servers only, see RtcConfiguration). */
  setConfiguration(configuration: RtcConfiguration): void {
    this.operations.push(`setConfiguration(${configuration.iceServers.length} ICE server(s))`);
    // "set a configuration" step 1: [[IsClosed]] -> InvalidStateError.
    if (this.closed) {
      this.recordIllegal('setConfiguration', 'called after close()');
      throw rtcError('InvalidStateError', 'setConfiguration: the connection is closed');
    }
    // "validate the ICE server" (webrtc-pc §4.4.1.6): a URL of another scheme is a SyntaxError,
    // a turn:/turns: URL without username and credential an InvalidAccessError.
    for (const server of configuration.iceServers) {
      for (const url of typeof server.urls === 'string' ? [server.urls] : server.urls) {
        const scheme = /^(stuns?|turns?):/i.exec(url)?.[1]?.toLowerCase();
        if (scheme === undefined) throw rtcError('SyntaxError', `setConfiguration: not a stun: or turn: URL: ${url}`);
        if (scheme.startsWith('turn') && (server.username === undefined || server.credential === undefined)) {
          throw rtcError('InvalidAccessError', `setConfiguration: ${url} needs a username and a credential`);
        }
      }
    }
    this.configurations.push(configuration);
  }

  createDataChannel(label: string, init?: DataChannelInit): FakeDataChannel {
    this.operations.push(`createDataChannel(${JSON.stringify(label)}${init?.negotiated ? `, negotiated id ${init.id}` : ''})`);
    // webrtc-pc §4.7.2 createDataChannel.
    if (this.closed) {
      this.recordIllegal('createDataChannel', 'called after close()');
      throw rtcError('InvalidStateError', 'createDataChannel: the connection is closed');
    }
    FakeDataChannelImpl.validateInit(label, init);
    if (init?.negotiated && this.channels.some((channel) => channel.id === init.id && channel.readyState !== 'closed')) {
      throw rtcError('OperationError', `createDataChannel: id ${init.id} is already in use`);
    }
    const channel = new FakeDataChannelImpl(this.channelHost, label, init);
    this.channels.push(channel);
    const first = !this.channelsCreated;
    this.channelsCreated = true;
    // Only the first channel can make negotiation needed (it adds the application m= section).
    if (first) this.updateNegotiationNeeded();
    if (this.network.canDeliver(this)) this.requestChannelOpen(channel);
    return channel;
  }

  addTransceiver(kind: MediaKind, init?: { readonly direction?: RtpTransceiverDirection }): FakeTransceiver {
    this.operations.push(`addTransceiver(${kind})`);
    // webrtc-pc §4.5 addTransceiver: InvalidStateError when closed, TypeError for a bad kind.
    if (this.closed) {
      this.recordIllegal('addTransceiver', 'called after close()');
      throw rtcError('InvalidStateError', 'addTransceiver: the connection is closed');
    }
    if ((kind as string) !== 'audio' && (kind as string) !== 'video') throw rtcError('TypeError', `addTransceiver: bad kind ${kind}`);
    const transceiver = this.newTransceiver(kind, init?.direction ?? 'sendrecv');
    this.transceivers.push(transceiver);
    if (this.negotiationNeededTiming === 'per-track') this.queueTrackNegotiationNeededTask();
    else this.updateNegotiationNeeded();
    return transceiver;
  }

  /** webrtc-pc §5.1 addTrack, for a `FakeLocalTrack`: always a new sendrecv transceiver (no reuse). */
  addTrack(track: MediaTrackHandle): void {
    const local = track as Partial<FakeLocalTrack> | null;
    this.operations.push(`addTrack(${local?.kind ?? '?'} ${local?.id ?? '?'})`);
    if (this.closed) {
      this.recordIllegal('addTrack', 'called after close()');
      throw rtcError('InvalidStateError', 'addTrack: the connection is closed');
    }
    if (this.transceivers.some((transceiver) => transceiver.senderTrack === track)) {
      throw rtcError('InvalidAccessError', 'addTrack: the track is already sent on this connection');
    }
    if (local?.kind !== 'audio' && local?.kind !== 'video') throw rtcError('TypeError', 'addTrack: not a track');
    (this.addTransceiver(local.kind) as TransceiverImpl).senderTrack = track;
  }

  /** webrtc-pc §5.2 replaceTrack on the sender of `current`: one step later, no negotiation. */
  replaceTrack(current: MediaTrackHandle, next: MediaTrackHandle): Promise<void> {
    this.operations.push('replaceTrack()');
    if (this.closed) {
      this.recordIllegal('replaceTrack', 'called after close()');
      return Promise.reject(rtcError('InvalidStateError', 'replaceTrack: the connection is closed'));
    }
    const transceiver = this.transceivers.find((candidate) => candidate.senderTrack === current);
    if (transceiver === undefined) return Promise.reject(rtcError('InvalidAccessError', 'replaceTrack: no sender sends that track'));
    if ((next as Partial<FakeLocalTrack> | null)?.kind !== transceiver.kind) return Promise.reject(rtcError('TypeError', 'replaceTrack: the kinds differ'));
    return new Promise<void>((resolve) => {
      // Pending at close never settles (the RtcPort contract).
      this.network.step(`${this.name}: replaceTrack`, () => {
        if (this.closed) return;
        transceiver.senderTrack = next;
        resolve();
      });
    });
  }

  getTransceivers(): readonly FakeTransceiver[] {
    return [...this.transceivers];
  }

  getDataChannels(): readonly FakeDataChannel[] {
    return [...this.channels];
  }

  /** webrtc-pc close() ("close the connection"): no events afterwards, pending operations never settle. */
  close(): void {
    this.operations.push('close()');
    if (this.closed) return;
    this.closed = true;
    this.signalingState = 'closed';
    this.iceConnectionState = 'closed';
    this.connectionState = 'closed';
    const peer = this.network.peerOf(this);
    for (const channel of this.channels) {
      // "closed abruptly" without events here; the remote end hears an SCTP ABORT.
      const remote = channel.abortSilently();
      if (remote) {
        this.network.step(`${this.name}->${peer?.name ?? '?'}: SCTP abort, '${channel.label}' closed`, () => remote.remoteAborted());
      }
    }
    this.network.evaluate();
  }

  // ---- operations chain (webrtc-pc §4.4.1.2 "chain an operation") ----

  private enqueue<T>(run: (settle: Settle<T>) => void): Promise<T> {
    let settle: Settle<T> | undefined;
    const promise = new Promise<T>((resolve, reject) => {
      settle = { resolve, reject };
    });
    const operation = (): void => run(settle!);
    this.chain.push(operation);
    // The next operation starts once this one's promise settled (registered before any caller's
    // reaction, as in the spec). When closed the chain stops and nothing settles any more.
    const advance = (): void => this.advanceChain();
    void promise.then(advance, advance);
    if (this.chain.length === 1) operation();
    return promise;
  }

  private advanceChain(): void {
    if (this.closed) return;
    this.chain.shift();
    const next = this.chain[0];
    if (next) {
      next();
      return;
    }
    // webrtc-pc §4.4.1.2: [[UpdateNegotiationNeededFlagOnEmptyChain]].
    if (this.updateOnEmptyChain) {
      this.updateOnEmptyChain = false;
      const refire = this.refireOnEmptyChain;
      this.refireOnEmptyChain = false;
      this.queueNegotiationNeededTask(refire);
    }
  }

  /** Finishes the running operation in a later step; nothing happens once closed. */
  private complete(what: string, apply: () => void): void {
    this.network.step(`${this.name}: ${what}`, () => {
      if (!this.closed) apply();
    });
  }

  private fail<T>(method: string, settle: Settle<T>, error: Error): void {
    this.network.step(`${this.name}: ${method} fails (${error.name})`, () => {
      if (!this.closed) settle.reject(error);
    });
  }

  private failIllegal<T>(method: string, settle: Settle<T>, detail: string): void {
    this.recordIllegal(method, detail);
    this.fail(method, settle, rtcError('InvalidStateError', `${method}: ${detail}`));
  }

  private rejectClosed<T>(method: string): Promise<T> {
    this.recordIllegal(method, 'called after close()');
    return Promise.reject(rtcError('InvalidStateError', `${method}: the connection is closed`));
  }

  recordIllegal(method: string, detail: string): void {
    this.illegalCalls.push({ method, state: this.signalingState, detail });
  }

  // ---- creating descriptions ----

  private newCredentials(): { ufrag: string; pwd: string } {
    this.iceGeneration += 1;
    const ufrag = `u${this.index}g${this.iceGeneration}`.padEnd(4, 'x');
    this.generationOf.set(ufrag, this.iceGeneration);
    return { ufrag, pwd: `p${this.index}g${this.iceGeneration}`.padEnd(24, 'fakepassword') };
  }

  private localCredentials(): { ufrag: string; pwd: string } | null {
    const applied = this.pendingLocal ?? this.currentLocal;
    if (!applied || applied.model.ufrag === '') return null;
    return { ufrag: applied.model.ufrag, pwd: applied.model.pwd };
  }

  private fingerprint(): string {
    const bytes: string[] = [];
    for (let i = 0; i < 32; i++) bytes.push(((this.network.sequence * 31 + this.index * 17 + i * 7) % 256).toString(16).padStart(2, '0').toUpperCase());
    return bytes.join(':');
  }

  private describe(
    setup: SdpModel['setup'],
    credentials: { ufrag: string; pwd: string },
    sections: readonly SdpSection[],
    reuseCandidates: boolean,
  ): Created {
    this.sessionVersion += 1;
    const model: SdpModel = {
      sessionId: `${4_000_000 + this.network.sequence * 1_000 + this.index}`,
      version: this.sessionVersion,
      portId: this.id,
      ufrag: credentials.ufrag,
      pwd: credentials.pwd,
      fingerprint: this.fingerprint(),
      setup,
      sections,
      // JSEP §5.2.2: a subsequent description without ICE restart carries the candidates gathered
      // so far.
      candidates: reuseCandidates ? [...(this.gathered.get(credentials.ufrag) ?? [])] : [],
      endOfCandidates: reuseCandidates && this.gatheringDone.has(credentials.ufrag),
    };
    return { sdp: renderSdp(model), model };
  }

  /** JSEP §5.2.1/§5.2.2: associated m= sections keep their place, new ones are appended. */
  private buildOffer(iceRestart: boolean): SessionDescription {
    const placed: { target: PlanTarget; index: number }[] = [];
    for (const transceiver of this.transceivers) {
      if (transceiver.mLineIndex !== null) placed.push({ target: transceiver, index: transceiver.mLineIndex });
    }
    if (this.dataMLineIndex !== null) placed.push({ target: 'data', index: this.dataMLineIndex });
    placed.sort((x, y) => x.index - y.index);
    const plan: PlanTarget[] = placed.map((entry) => entry.target);
    for (const transceiver of this.transceivers) if (transceiver.mid === null) plan.push(transceiver);
    if (this.channelsCreated && this.dataMid === null) plan.push('data');

    const usedMids = new Set<string>();
    for (const transceiver of this.transceivers) if (transceiver.mid !== null) usedMids.add(transceiver.mid);
    if (this.dataMid !== null) usedMids.add(this.dataMid);
    let nextMid = 0;
    const sections: SdpSection[] = plan.map((target, index) => {
      const existing = target === 'data' ? this.dataMid : target.mid;
      let mid = existing;
      if (mid === null) {
        nextMid = Math.max(nextMid, index);
        while (usedMids.has(String(nextMid))) nextMid += 1;
        mid = String(nextMid);
        usedMids.add(mid);
      }
      if (target === 'data') return { kind: 'application', mid, port: 9, direction: 'sendrecv' };
      return { kind: target.kind, mid, port: 9, direction: target.direction };
    });

    // webrtc-pc §4.4.1.5 createOffer: new ICE credentials for iceRestart or when
    // [[LocalIceCredentialsToReplace]] is not empty (restartIce()).
    const restart = iceRestart || this.credentialsToReplace.size > 0;
    const existing = this.localCredentials();
    const credentials = restart || existing === null ? this.newCredentials() : existing;
    const created = this.describe('actpass', credentials, sections, !restart && existing !== null);
    this.lastOffer = { ...created, plan };
    return { type: 'offer', sdp: created.sdp };
  }

  /** JSEP §5.3.1: one m= section per offered section, same order and mids. */
  private buildAnswer(): SessionDescription {
    const offer = this.pendingRemote!.model;
    const sections: SdpSection[] = offer.sections.map((section) => {
      if (section.kind === 'application') return { ...section };
      const transceiver = this.transceiverByMid(section.mid)!;
      const direction = section.port === 0 ? 'inactive' : answerDirection(transceiver.direction, section.direction);
      return { kind: section.kind, mid: section.mid, port: section.port === 0 ? 0 : 9, direction };
    });
    // JSEP §5.3.1: an offer that restarts ICE (new ufrag) needs new credentials in the answer;
    // so does a pending restartIce() (webrtc-pc [[LocalIceCredentialsToReplace]]).
    const previousRemoteUfrag = this.currentRemote?.model.ufrag ?? null;
    const remoteRestart = previousRemoteUfrag !== null && previousRemoteUfrag !== offer.ufrag;
    const existing = this.localCredentials();
    const restart = remoteRestart || this.credentialsToReplace.size > 0;
    const credentials = restart || existing === null ? this.newCredentials() : existing;
    const created = this.describe('active', credentials, sections, !restart && existing !== null);
    this.lastAnswer = created;
    return { type: 'answer', sdp: created.sdp };
  }

  // ---- applying descriptions ----

  private runSetLocal(description: SessionDescription, method: string, settle: Settle<void>): void {
    const type = description.type;
    if (type === 'rollback') {
      this.runRollback(method, 'local', settle);
      return;
    }
    // webrtc-pc §4.4.1.6 setLocalDescription: the sdp must be [[LastCreatedOffer]] /
    // [[LastCreatedAnswer]] (no SDP munging), else InvalidModificationError. Checked before the
    // signaling state, as in the spec.
    const offer = type === 'offer' ? this.lastOffer : null;
    const created = type === 'offer' ? offer : this.lastAnswer;
    if (!created || description.sdp !== created.sdp) {
      const creator = type === 'offer' ? 'createOffer()' : 'createAnswer()';
      this.fail(method, settle, rtcError('InvalidModificationError', `${method}: the sdp is not the last one ${creator} returned`));
      return;
    }
    if (nextSignalingState(this.signalingState, 'local', type) === null) {
      this.failIllegal(method, settle, `setLocalDescription(${type}) in ${this.signalingState}`);
      return;
    }
    const mismatch = offer ? this.staleOfferReason(offer) : this.sectionMismatch(this.pendingRemote?.model ?? null, created.model);
    if (mismatch !== null) {
      this.fail(method, settle, rtcError('InvalidAccessError', `${method}: ${mismatch}`));
      return;
    }
    this.complete(`${method} completes`, () => {
      if (offer) this.applyLocalOffer(offer);
      else this.applyLocalAnswer(type === 'pranswer' ? 'pranswer' : 'answer', created.model);
      settle.resolve();
      this.afterLocalDescription();
    });
  }

  private runSetRemote(description: SessionDescription, method: string, settle: Settle<void>): void {
    const type = description.type;
    if (type === 'rollback') {
      this.runRollback(method, 'remote', settle);
      return;
    }
    const next = nextSignalingState(this.signalingState, 'remote', type);
    if (next === null) {
      this.failIllegal(method, settle, `setRemoteDescription(${type}) in ${this.signalingState}`);
      return;
    }
    let model: SdpModel;
    try {
      model = parseSdp(description.sdp ?? '');
    } catch (error) {
      this.fail(method, settle, error as Error);
      return;
    }
    const mismatch = type === 'offer' ? this.remoteOfferMismatch(model) : this.sectionMismatch(this.pendingLocal?.model ?? null, model);
    if (mismatch !== null) {
      this.fail(method, settle, rtcError('InvalidAccessError', `${method}: ${mismatch}`));
      return;
    }
    this.complete(`${method} completes`, () => {
      if (type === 'offer') this.applyRemoteOffer(model);
      else this.applyRemoteAnswer(type, model);
      settle.resolve();
      this.network.evaluate();
    });
  }

  /** JSEP §5.2.2: a created offer is stale when the associations changed since it was made. */
  private staleOfferReason(offer: CreatedOffer): string | null {
    const inOffer = new Set<PlanTarget>(offer.plan);
    for (const [index, target] of offer.plan.entries()) {
      const mid = offer.model.sections[index]!.mid;
      if (target === 'data') {
        if (this.dataMid !== null && (this.dataMid !== mid || this.dataMLineIndex !== index)) return 'stale offer: the data section moved';
        continue;
      }
      if (!this.transceivers.includes(target)) return 'stale offer: a transceiver in it was removed';
      if (target.mid !== null && (target.mid !== mid || target.mLineIndex !== index)) return 'stale offer: m-lines order changed';
      if (target.mid === null && (this.transceiverByMid(mid) || this.dataMid === mid)) return `stale offer: mid ${mid} is taken`;
    }
    for (const transceiver of this.transceivers) {
      if (transceiver.mid !== null && !inOffer.has(transceiver)) return 'stale offer: the order of m-lines does not match the previous offer/answer';
    }
    if (this.dataMid !== null && !inOffer.has('data')) return 'stale offer: the data section is missing';
    return null;
  }

  /** JSEP §5.8 / §5.10: a subsequent offer keeps every associated m= section in place. */
  private remoteOfferMismatch(model: SdpModel): string | null {
    for (const transceiver of this.transceivers) {
      if (transceiver.mid === null || transceiver.mLineIndex === null) continue;
      const section = model.sections[transceiver.mLineIndex];
      if (!section || section.mid !== transceiver.mid || section.kind !== transceiver.kind) {
        return 'the order of m-lines in the offer does not match the previous offer/answer';
      }
    }
    if (this.dataMid !== null && this.dataMLineIndex !== null) {
      const section = model.sections[this.dataMLineIndex];
      if (!section || section.mid !== this.dataMid || section.kind !== 'application') {
        return 'the order of m-lines in the offer does not match the previous offer/answer';
      }
    }
    if (model.sections.filter((section) => section.kind === 'application').length > 1) return 'more than one application m= section';
    for (const [index, section] of model.sections.entries()) {
      const owner = this.transceiverByMid(section.mid);
      if (owner && owner.mLineIndex !== index) return `mid ${section.mid} moved to m-line ${index}`;
      if (section.kind === 'application' && this.dataMid !== null && this.dataMid !== section.mid) return 'the application section changed its mid';
      if (section.kind !== 'application' && this.dataMid === section.mid) return `mid ${section.mid} changed kind`;
    }
    return null;
  }

  /** RFC 3264 §6 / JSEP §5.3: an answer has exactly the offer's m= sections, in order. */
  private sectionMismatch(offer: SdpModel | null, answer: SdpModel): string | null {
    if (offer === null) return 'no offer to answer';
    if (offer.sections.length !== answer.sections.length) {
      return `the answer has ${answer.sections.length} m-lines, the offer ${offer.sections.length}`;
    }
    for (const [index, section] of answer.sections.entries()) {
      const offered = offer.sections[index]!;
      if (offered.kind !== section.kind || offered.mid !== section.mid) {
        return `m-line ${index} of the answer (${section.kind} ${section.mid}) does not match the offer (${offered.kind} ${offered.mid})`;
      }
    }
    return null;
  }

  private applyLocalOffer(offer: CreatedOffer): void {
    // JSEP §5.2.1: mids are assigned when the offer is applied.
    offer.plan.forEach((target, index) => {
      const mid = offer.model.sections[index]!.mid;
      if (target === 'data') {
        if (this.dataMid === null) {
          this.dataMid = mid;
          this.dataMLineIndex = index;
          this.pending.dataAssigned = true;
        }
      } else if (target.mid === null) {
        target.mid = mid;
        target.mLineIndex = index;
        this.pending.assigned.push(target);
      }
    });
    this.pendingLocal = { type: 'offer', model: offer.model };
    this.forgetReplacedCredentials(offer.model);
    this.setSignalingState('have-local-offer');
  }

  private applyLocalAnswer(type: 'answer' | 'pranswer', model: SdpModel): void {
    this.forgetReplacedCredentials(model);
    if (type === 'pranswer') {
      this.pendingLocal = { type, model };
      this.setSignalingState('have-local-pranswer');
      return;
    }
    this.currentLocal = { type, model };
    this.currentRemote = this.pendingRemote;
    this.pendingLocal = null;
    this.pendingRemote = null;
    this.finishNegotiation(model, this.currentRemote!.model, false);
    this.setSignalingState('stable');
  }

  private applyRemoteOffer(model: SdpModel): void {
    // JSEP §5.10: an m= section with no matching transceiver gets a new one (recvonly, webrtc-pc
    // §4.4.1.6 "process remote tracks"). addTransceiver()-made transceivers are never recycled.
    model.sections.forEach((section, index) => {
      if (section.kind === 'application') {
        if (this.dataMid === null) {
          this.dataMid = section.mid;
          this.dataMLineIndex = index;
          this.pending.dataAssigned = true;
        }
        return;
      }
      if (this.transceiverByMid(section.mid)) return;
      const transceiver = this.newTransceiver(section.kind, 'recvonly');
      transceiver.mid = section.mid;
      transceiver.mLineIndex = index;
      this.transceivers.push(transceiver);
      this.pending.created.push(transceiver);
    });
    this.pendingRemote = { type: 'offer', model };
    this.addRemoteCandidatesFrom(model);
    this.setSignalingState('have-remote-offer');
    this.fireTracks(model);
  }

  private applyRemoteAnswer(type: 'answer' | 'pranswer', model: SdpModel): void {
    this.addRemoteCandidatesFrom(model);
    if (type === 'pranswer') {
      this.pendingRemote = { type, model };
      this.setSignalingState('have-remote-pranswer');
      this.fireTracks(model);
      return;
    }
    this.currentLocal = this.pendingLocal;
    this.currentRemote = { type, model };
    this.pendingLocal = null;
    this.pendingRemote = null;
    this.finishNegotiation(this.currentLocal!.model, model, true);
    this.setSignalingState('stable');
    this.fireTracks(model);
  }

  /** An offer/answer exchange completed: associations become permanent (JSEP §5.10/§5.11). */
  private finishNegotiation(local: SdpModel, remote: SdpModel, asOfferer: boolean): void {
    const answer = asOfferer ? remote : local;
    for (const [index, section] of answer.sections.entries()) {
      if (section.kind === 'application') {
        this.dataNegotiated = section.port !== 0 && local.sections[index]!.port !== 0;
        continue;
      }
      const transceiver = this.transceiverByMid(section.mid);
      if (!transceiver) continue;
      const answered = section.port === 0 ? 'inactive' : section.direction;
      transceiver.currentDirection = asOfferer ? reverseDirection(answered) : answered;
      transceiver.negotiatedLocal = local.sections[index]!.direction;
      transceiver.negotiatedRemote = remote.sections[index]!.direction;
      transceiver.negotiatedAsOfferer = asOfferer;
    }
    // RFC 8842 §5: the answerer chose setup:active, so it is the DTLS client (even SCTP ids,
    // RFC 8832 §6).
    this.dtlsRole ??= asOfferer ? 'server' : 'client';
    this.pending = { assigned: [], created: [], dataAssigned: false };
    this.backInStable();
  }

  private runRollback(method: string, side: 'local' | 'remote', settle: Settle<void>): void {
    if (nextSignalingState(this.signalingState, side, 'rollback') === null) {
      this.failIllegal(method, settle, `rollback in ${this.signalingState}`);
      return;
    }
    this.complete(`${method} completes`, () => {
      // webrtc-pc §4.4.1.6 "set the RTCSessionDescription", rollback steps: mids the rolled-back
      // offer assigned are cleared; transceivers a remote offer created are removed.
      for (const transceiver of this.pending.assigned) {
        transceiver.mid = null;
        transceiver.mLineIndex = null;
      }
      for (const transceiver of this.pending.created) {
        this.transceivers.splice(this.transceivers.indexOf(transceiver), 1);
      }
      if (this.pending.dataAssigned) {
        this.dataMid = null;
        this.dataMLineIndex = null;
      }
      this.pending = { assigned: [], created: [], dataAssigned: false };
      this.pendingLocal = null;
      this.pendingRemote = null;
      this.setSignalingState('stable');
      this.backInStable();
      settle.resolve();
      this.afterLocalDescription();
    });
  }

  private fireTracks(model: SdpModel): void {
    // webrtc-pc §4.4.1.6 "process the addition of a remote track": a `track` event when the remote
    // starts sending on an m= section.
    for (const section of model.sections) {
      if (section.kind === 'application') continue;
      const transceiver = this.transceiverByMid(section.mid);
      if (!transceiver) continue;
      const remoteSends = section.port !== 0 && sends(section.direction);
      if (remoteSends && !transceiver.receiving) {
        transceiver.receiving = true;
        this.emit({ type: 'track', track: transceiver.receiverTrack, streams: [], mid: transceiver.mid });
      } else if (!remoteSends) {
        transceiver.receiving = false;
      }
    }
  }

  // ---- negotiation-needed (webrtc-pc §4.7.3) ----

  /** webrtc-pc §4.7.3 "update the negotiation-needed flag". */
  updateNegotiationNeeded(): void {
    if (this.closed) return;
    if (this.chain.length > 0) {
      this.updateOnEmptyChain = true;
      return;
    }
    this.queueNegotiationNeededTask(false);
  }

  /** Back in stable: re-check the flag, and fire again if it is still needed. */
  private backInStable(): void {
    this.updateOnEmptyChain = true;
    if (this.negotiationNeeded) this.refireOnEmptyChain = true;
  }

  private queueNegotiationNeededTask(refire: boolean): void {
    this.negotiationTaskRefire ||= refire;
    if (this.negotiationTaskScheduled) return;
    this.negotiationTaskScheduled = true;
    this.network.step(`${this.name}: negotiation-needed check`, () => {
      this.negotiationTaskScheduled = false;
      const refireNow = this.negotiationTaskRefire;
      this.negotiationTaskRefire = false;
      this.checkNegotiationNeeded(refireNow);
    });
  }

  /** A 'per-track' port's check for one added track: merged with no other, and firing even when the flag is set. */
  private queueTrackNegotiationNeededTask(): void {
    this.network.step(`${this.name}: negotiation-needed check for one track`, () => this.checkNegotiationNeeded(true));
  }

  /** The queued task of webrtc-pc §4.7.3 "update the negotiation-needed flag"; `refire` fires even when the flag is set. */
  private checkNegotiationNeeded(refire: boolean): void {
    if (this.closed) return;
    // Negotiation has begun (an operation is queued): look again once the chain is empty.
    if (this.chain.length > 0) {
      this.updateOnEmptyChain = true;
      this.refireOnEmptyChain ||= refire;
      return;
    }
    // Not stable: the flag is updated when the state returns to stable.
    if (this.signalingState !== 'stable') return;
    if (!this.isNegotiationNeeded()) {
      this.negotiationNeeded = false;
      return;
    }
    if (this.negotiationNeeded && !refire) return;
    this.negotiationNeeded = true;
    this.emit({ type: 'negotiationneeded' });
  }

  /** webrtc-pc §4.7.3 "check if negotiation is needed", against the current descriptions. */
  private isNegotiationNeeded(): boolean {
    if (this.credentialsToReplace.size > 0) return true;
    if (this.channelsCreated && !this.dataNegotiated) return true;
    for (const transceiver of this.transceivers) {
      if (transceiver.mid === null || transceiver.negotiatedLocal === null || transceiver.negotiatedRemote === null) return true;
      if (transceiver.negotiatedAsOfferer) {
        // Neither the local offer's direction nor the answer's (seen from here) matches.
        if (transceiver.negotiatedLocal !== transceiver.direction && reverseDirection(transceiver.negotiatedRemote) !== transceiver.direction) {
          return true;
        }
      } else if (transceiver.negotiatedLocal !== answerDirection(transceiver.direction, transceiver.negotiatedRemote)) {
        return true;
      }
    }
    return false;
  }

  /** webrtc-pc §4.4.1.6: a local description without the replaced credentials ends the restart. */
  private forgetReplacedCredentials(model: SdpModel): void {
    if (this.credentialsToReplace.size > 0 && !this.credentialsToReplace.has(model.ufrag)) this.credentialsToReplace.clear();
  }

  // ---- ICE: candidates and gathering ----

  private runAddIceCandidate(candidate: IceCandidate | null, method: string, settle: Settle<void>): void {
    const remote = this.pendingRemote ?? this.currentRemote;
    // webrtc-pc §4.4.1.6 addIceCandidate: no remote description -> InvalidStateError.
    if (!remote) {
      this.failIllegal(method, settle, 'no remote description');
      return;
    }
    const ufrag = remote.model.ufrag;
    if (candidate === null || candidate.candidate === '') {
      this.complete(`${method} completes`, () => {
        this.remoteEndOfCandidates.add(ufrag);
        settle.resolve();
      });
      return;
    }
    const operationError = (why: string): void => this.fail(method, settle, rtcError('OperationError', `${method}: ${why}`));
    const sections = remote.model.sections;
    if (candidate.sdpMid != null) {
      if (!sections.some((section) => section.mid === candidate.sdpMid)) return operationError(`unknown sdpMid ${candidate.sdpMid}`);
    } else if (candidate.sdpMLineIndex != null && candidate.sdpMLineIndex >= sections.length) {
      return operationError(`sdpMLineIndex ${candidate.sdpMLineIndex} out of range`);
    }
    // A candidate of another ICE generation (a rolled-back or replaced description) is refused.
    if (candidate.usernameFragment != null && candidate.usernameFragment !== ufrag) {
      return operationError(`usernameFragment ${candidate.usernameFragment} does not match the remote ufrag ${ufrag}`);
    }
    const parsed = parseCandidate(candidate.candidate);
    if (!parsed) return operationError('the candidate could not be parsed');
    if (parsed.ufrag !== null && parsed.ufrag !== ufrag) return operationError(`candidate ufrag ${parsed.ufrag} does not match ${ufrag}`);
    this.complete(`${method} completes`, () => {
      this.addRemoteCandidate(ufrag, candidate.candidate.replace(/^a=/, ''));
      settle.resolve();
      this.network.evaluate();
    });
  }

  private addRemoteCandidatesFrom(model: SdpModel): void {
    for (const candidate of model.candidates) this.addRemoteCandidate(model.ufrag, candidate);
    if (model.endOfCandidates) this.remoteEndOfCandidates.add(model.ufrag);
  }

  private addRemoteCandidate(ufrag: string, candidate: string): void {
    let set = this.remoteCandidates.get(ufrag);
    if (!set) {
      set = new Set();
      this.remoteCandidates.set(ufrag, set);
    }
    set.add(candidate);
  }

  /** After a local description was applied or rolled back: gathering follows the current ufrag. */
  private afterLocalDescription(): void {
    const ufrag = this.localUfrag();
    if (ufrag !== null) {
      const parked = this.gatheringParked.get(ufrag);
      if (parked) {
        this.gatheringParked.delete(ufrag);
        parked();
      } else if (!this.gathered.has(ufrag)) {
        // JSEP §5.2.1 / webrtc-pc §4.4.1.6: applying a description with new ICE credentials
        // starts gathering for that generation.
        this.gathered.set(ufrag, []);
        this.gatherStep(ufrag, 0);
      }
      // Back to a generation (rollback): its gathering state is the connection's again.
      if (this.gatheringDone.has(ufrag)) this.setGatheringState('complete');
      else if (this.gatheringStarted.has(ufrag)) this.setGatheringState('gathering');
    } else {
      this.setGatheringState('new');
    }
    this.network.evaluate();
  }

  /** Step 0 starts, steps 1..n gather one candidate each, step n+1 completes. */
  private gatherStep(ufrag: string, step: number): void {
    const last = this.candidateCount + 1;
    const label =
      step === 0
        ? `${this.name}: ICE gathering starts (ufrag ${ufrag})`
        : step < last
          ? `${this.name}: gathers candidate ${step} (ufrag ${ufrag})`
          : `${this.name}: ICE gathering completes (ufrag ${ufrag})`;
    this.network.step(label, () => {
      if (this.closed) return;
      // A generation that is not current (rolled back or replaced) pauses; candidates of a
      // rolled-back offer are never emitted.
      if (this.localUfrag() !== ufrag) {
        this.gatheringParked.set(ufrag, () => this.gatherStep(ufrag, step));
        return;
      }
      if (step === 0) {
        this.gatheringStarted.add(ufrag);
        this.setGatheringState('gathering');
      } else if (step < last) {
        const generation = this.generationOf.get(ufrag) ?? 0;
        const candidate = hostCandidate(
          this.index * 1000 + generation * 10 + step,
          50_000 + this.index * 1000 + generation * 10 + step,
          ufrag,
        );
        this.gathered.get(ufrag)!.push(candidate);
        const applied = (this.pendingLocal ?? this.currentLocal)!;
        this.emit({
          type: 'icecandidate',
          candidate: { candidate, sdpMid: applied.model.sections[0]?.mid ?? null, sdpMLineIndex: 0, usernameFragment: ufrag },
        });
      } else {
        this.gatheringDone.add(ufrag);
        // Like libwebrtc: the null candidate (end of candidates) and then 'complete'.
        this.emit({ type: 'icecandidate', candidate: null });
        this.setGatheringState('complete');
        return;
      }
      this.gatherStep(ufrag, step + 1);
    });
  }

  localUfrag(): string | null {
    const applied = this.pendingLocal ?? this.currentLocal;
    return applied && applied.model.sections.length > 0 ? applied.model.ufrag : null;
  }

  remoteUfrag(): string | null {
    const applied = this.pendingRemote ?? this.currentRemote;
    return applied && applied.model.sections.length > 0 ? applied.model.ufrag : null;
  }

  remotePortId(): string | null {
    return (this.pendingRemote ?? this.currentRemote)?.model.portId ?? null;
  }

  hasRemoteCandidate(ufrag: string): boolean {
    return (this.remoteCandidates.get(ufrag)?.size ?? 0) > 0;
  }

  /** webrtc-pc §4.3.2 "checking": credentials on both sides and a remote candidate to check. */
  canCheck(): boolean {
    const remote = this.remoteUfrag();
    return this.localUfrag() !== null && remote !== null && this.hasRemoteCandidate(remote);
  }

  // ---- states and events ----

  private setSignalingState(state: SignalingState): void {
    if (this.signalingState === state) return;
    this.signalingState = state;
    this.emit({ type: 'signalingstatechange', state });
  }

  private setGatheringState(state: IceGatheringState): void {
    if (this.iceGatheringState === state) return;
    this.iceGatheringState = state;
    this.emit({ type: 'icegatheringstatechange', state });
  }

  applyIceState(state: IceConnectionState): void {
    if (this.closed || this.iceConnectionState === state) return;
    // RFC 8445 / webrtc-pc §4.3.2: connectivity checks run before a pair is connected, so a
    // port always passes through 'checking' (also after an ICE restart from 'failed').
    if (state === 'connected' && (this.iceConnectionState === 'new' || this.iceConnectionState === 'failed')) {
      this.applyIceState('checking');
    }
    this.iceConnectionState = state;
    this.emit({ type: 'iceconnectionstatechange', state });
    const connection = connectionStateOf(state);
    if (connection !== this.connectionState) {
      this.connectionState = connection;
      this.emit({ type: 'connectionstatechange', state: connection });
    }
  }

  private emit(event: RtcPortEvent): void {
    if (this.closed) return;
    this.stream.next(event);
  }

  // ---- data channels ----

  /** SCTP is up (again): open waiting channels and resume queued messages. */
  resumeChannels(): void {
    for (const channel of this.channels) {
      if (channel.readyState === 'connecting') this.requestChannelOpen(channel);
      channel.flush();
    }
  }

  private requestChannelOpen(channel: FakeDataChannelImpl): void {
    if (this.channelOpenScheduled.has(channel)) return;
    this.channelOpenScheduled.add(channel);
    this.network.step(`${this.name}: data channel '${channel.label}' opens`, () => {
      this.channelOpenScheduled.delete(channel);
      const peer = this.network.peerOf(this);
      if (this.closed || !peer || peer.closed || !this.network.canDeliver(this) || channel.readyState !== 'connecting') return;
      if (channel.negotiated) {
        // webrtc-pc §6.1: negotiated channels pair by id, with no datachannel event.
        const twin = channel.paired
          ? undefined
          : peer.channels.find((other) => other.negotiated && other.id === channel.id && !other.paired && other.readyState !== 'closed');
        if (twin) channel.pair(twin);
        channel.announceOpen(channel.id);
        return;
      }
      // RFC 8832 DCEP: the remote learns of the channel in-band and announces it (webrtc-pc §6.2:
      // readyState is open before `datachannel` fires, `open` follows it).
      const id = this.allocateChannelId(peer);
      const remote = new FakeDataChannelImpl(peer.channelHost, channel.label, {
        ordered: channel.ordered,
        protocol: channel.protocol,
        ...(channel.maxPacketLifeTime !== null ? { maxPacketLifeTime: channel.maxPacketLifeTime } : {}),
        ...(channel.maxRetransmits !== null ? { maxRetransmits: channel.maxRetransmits } : {}),
      });
      remote.markOpen(id);
      channel.pair(remote);
      peer.channels.push(remote);
      peer.emit({ type: 'datachannel', channel: remote });
      remote.emitOpen();
      channel.announceOpen(id);
    });
  }

  /** RFC 8832 §6: the DTLS client uses even stream ids, the server odd ones. */
  private allocateChannelId(peer: PortImpl): number {
    const used = new Set<number>();
    for (const channel of [...this.channels, ...peer.channels]) if (channel.id !== null) used.add(channel.id);
    let id = this.dtlsRole === 'server' ? 1 : 0;
    while (used.has(id)) id += 2;
    return id;
  }

  // ---- helpers ----

  private newTransceiver(kind: MediaKind, direction: RtpTransceiverDirection): TransceiverImpl {
    this.trackCounter += 1;
    return new TransceiverImpl(this, kind, direction, { id: `${this.name}-remote-${kind}-${this.trackCounter}`, kind });
  }

  private transceiverByMid(mid: string): TransceiverImpl | undefined {
    return this.transceivers.find((transceiver) => transceiver.mid === mid);
  }
}

/** A simulated network: ports created here find and connect to each other through their SDP. */
export function createFakeNetwork(options: FakeNetworkOptions = {}): FakeNetwork {
  return new NetworkImpl(options);
}
