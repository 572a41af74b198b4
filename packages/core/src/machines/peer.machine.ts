import { assertEvent, assign, emit, enqueueActions, raise, setup } from 'xstate';
import type { ActorRef, ActorRefFrom, AnyStateMachine, Snapshot, SnapshotFrom, StateValue } from 'xstate';
import type {
  DataChannelInit,
  DataChannelPort,
  IceCandidate,
  IceGatheringState,
  PeerConnectionState,
  RtcPort,
  RtcPortEvent,
} from '../ports/rtc.js';
import type { SignalingPort } from '../ports/signaling.js';
import type { PeerMessage, WireDescription } from '../protocol/peer-message.js';
import { filterSdpCandidates } from '../sdp.js';
import { connectionMachine, endOf, initialConnectionContext } from './connection.machine.js';
import type { ConnectionContext, ConnectionEvent } from './connection.machine.js';
import { dataChannelMachine } from './data-channel.machine.js';
import { iceGatheringMachine, initialIceGatheringContext } from './ice-gathering.machine.js';
import type { IceGatheringContext, IceGatheringEvent } from './ice-gathering.machine.js';
import { completedRound, initialNegotiationContext, localDescriptionToSend, negotiationMachine } from './negotiation.machine.js';
import type { NegotiationContext, NegotiationEvent, NegotiationNotice, NegotiationOperation } from './negotiation.machine.js';
import type { CandidateFilter, PeerEndReason, PeerInput, PeerOutput } from './peer.types.js';

export type { CandidateFilter, IceRestartPolicy, PeerEndReason, PeerFailureReason, PeerInput, PeerOutput } from './peer.types.js';

// One peer connection: ONE machine whose `running` state has three parallel regions, the
// negotiation, ICE gathering and connection machines (each also a machine of its own, tested
// alone), over one RTC port and one signaling pipe. Its entry subscribes to both ports (no actor
// of its own): the port's events and this session's validated peer messages become events that
// the regions take directly; no event is re-sent from one actor to another. What a region reports to a parent when it runs
// alone (`sendParent`) is done here at once: send on the signaling pipe, emit to the app, or
// `raise` the event another region takes (NEGOTIATED, RESTART_ICE, ICE.GATHERING_COMPLETE).
// The port's reports that no state depends on (signaling and ICE connection states, remote
// tracks: `PortReport`) are not events here at all: the app hears them as the port fires them
// (`listenToPortReports`), so they cost the peer no macrostep (issue 14).

/** The session id of peer messages sent outside a call (a bare `createPeer`). */
export const DEFAULT_SESSION = 'default';

/** A running `dataChannelMachine`: what a `datachannel` event hands over. */
export type DataChannelActor = ActorRefFrom<typeof dataChannelMachine>;

/**
 * What a peer machine reports to the app (xstate `emit`). `createPeer().events$` carries them,
 * and the port's own reports (`PortReport`) beside them.
 */
export type PeerEmitted =
  | { readonly type: 'datachannel'; readonly label: string; readonly origin: 'local' | 'remote'; readonly channel: DataChannelActor }
  | { readonly type: 'connectionstatechange'; readonly state: PeerConnectionState }
  | { readonly type: 'negotiated'; readonly round: number; readonly iceRestart: boolean }
  | { readonly type: 'error'; readonly operation: NegotiationOperation | 'createDataChannel'; readonly error: Error }
  | { readonly type: 'notice'; readonly notice: NegotiationNotice | PeerNotice; readonly detail: string };

/**
 * RTC port events the app hears as the port fires them (`listenToPortReports`), as the machine
 * would have passed them on: the signaling, ICE gathering and ICE connection states (webrtc-pc
 * §4.3; the machine reads them from the port when it needs them, and keeps no copy) and remote
 * tracks (§5.1.1). Of these, only the ICE gathering state is also a peer event (the gathering
 * region follows it, see `takesPortEvent`).
 */
export type PortReport = Extract<RtcPortEvent, { readonly type: 'signalingstatechange' | 'icegatheringstatechange' | 'iceconnectionstatechange' | 'track' }>;

/** Whether a port event is a `PortReport` (the app hears it from the port). */
export function isPortReport(event: { readonly type: string }): event is PortReport {
  return event.type === 'signalingstatechange' || event.type === 'icegatheringstatechange' || event.type === 'iceconnectionstatechange' || event.type === 'track';
}

/** The port events the peer machine takes. */
type TakenPortEvent = Exclude<RtcPortEvent, Exclude<PortReport, { readonly type: 'icegatheringstatechange' }>>;

/** Whether the peer machine takes a port event: no state depends on the other reports. */
function takesPortEvent(event: RtcPortEvent): event is TakenPortEvent {
  return event.type === 'icegatheringstatechange' || !isPortReport(event);
}

/** What the peer itself drops, for debugging. */
export type PeerNotice = 'other-session' | 'filtered-candidate' | 'ice-candidate-error';

/** Events the app sends to a peer. */
export type PeerCommand =
  | { readonly type: 'CREATE_DATA_CHANNEL'; readonly label: string; readonly init?: DataChannelInit }
  | { readonly type: 'RESTART_ICE' }
  | { readonly type: 'CLOSE' };

/** RTC port events, as machine events (see `rtcEvents`). */
type RtcEvent =
  | { readonly type: 'RTC.NEGOTIATION_NEEDED' }
  | { readonly type: 'RTC.ICE_CANDIDATE'; readonly candidate: IceCandidate | null }
  | { readonly type: 'RTC.ICE_CANDIDATE_ERROR'; readonly errorCode: number; readonly url: string; readonly detail: string }
  | { readonly type: 'RTC.ICE_GATHERING_STATE'; readonly state: IceGatheringState }
  | { readonly type: 'RTC.CONNECTION_STATE'; readonly state: PeerConnectionState }
  | { readonly type: 'RTC.DATA_CHANNEL'; readonly channel: DataChannelPort; readonly origin: 'local' | 'remote' }
  /** The port refused a data channel (webrtc-pc §4.4.1.7: a used id, bad init, closed). */
  | { readonly type: 'DATA_CHANNEL.FAILED'; readonly label: string; readonly error: Error };

/** Validated negotiation messages of this session, with the candidate filter applied. */
type RemoteEvent =
  | { readonly type: 'REMOTE.DESCRIPTION'; readonly description: WireDescription }
  | { readonly type: 'REMOTE.CANDIDATE'; readonly candidate: IceCandidate | null }
  /** A message of another session, or a candidate (remote or local) `candidateFilter` dropped. */
  | { readonly type: 'DROPPED'; readonly notice: PeerNotice; readonly detail: string };

/** Events one region raises for another. */
type RaisedEvent = { readonly type: 'NEGOTIATED' } | { readonly type: 'ICE.GATHERING_COMPLETE' };

/**
 * Every event `peerMachine` accepts: the app's commands, RTC port events, remote messages, its
 * regions' own events and what they raise for each other.
 */
export type PeerEvent = PeerCommand | RtcEvent | RemoteEvent | RaisedEvent | NegotiationEvent | IceGatheringEvent | ConnectionEvent;

/** The peer's own context and its regions' contexts, side by side (their fields are distinct). */
export interface PeerContext extends NegotiationContext, IceGatheringContext, ConnectionContext {
  readonly signaling: SignalingPort;
  readonly session: string;
  readonly candidateFilter: CandidateFilter | null;
  readonly input: PeerInput;
  /** One actor per data channel, local and remote. */
  readonly channels: readonly DataChannelActor[];
  /** Candidates `candidateFilter` dropped, local and remote (the notice is raised for the first only). */
  readonly filteredCandidates: number;
  readonly endReason: PeerEndReason | null;
  readonly endDetail: string | undefined;
}

function keeps(filter: CandidateFilter | null, candidate: IceCandidate | null): boolean {
  return candidate === null || filter === null || filter(candidate);
}

function filteredDescription(description: WireDescription, filter: CandidateFilter | null): WireDescription {
  return filter === null ? description : { type: description.type, sdp: filterSdpCandidates(description.sdp, filter) };
}

/**
 * The RTC port's events as machine events (webrtc-pc §4.4.1 event handlers); a `PortReport` is
 * the app's. A local candidate the candidate filter drops is dropped here, as a remote one is
 * (`remoteEventOf`): no region sees it. An end-of-candidates marker (null, or a section's empty
 * candidate, see iceGatheringMachine) is no address to filter.
 */
function rtcEventOf(event: TakenPortEvent, filter: CandidateFilter | null): PeerEvent {
  switch (event.type) {
    case 'negotiationneeded':
      return { type: 'RTC.NEGOTIATION_NEEDED' };
    case 'icecandidate':
      return event.candidate?.candidate === '' || keeps(filter, event.candidate)
        ? { type: 'RTC.ICE_CANDIDATE', candidate: event.candidate }
        : { type: 'DROPPED', notice: 'filtered-candidate', detail: 'local candidate' };
    case 'icecandidateerror':
      return { type: 'RTC.ICE_CANDIDATE_ERROR', errorCode: event.errorCode, url: event.url, detail: `${event.errorCode} ${event.errorText} (${event.url})` };
    case 'icegatheringstatechange':
      return { type: 'RTC.ICE_GATHERING_STATE', state: event.state };
    case 'connectionstatechange':
      return { type: 'RTC.CONNECTION_STATE', state: event.state };
    case 'datachannel':
      return { type: 'RTC.DATA_CHANNEL', channel: event.channel, origin: 'remote' };
  }
}

/** This session's negotiation messages as machine events, filtered; null for call control. */
function remoteEventOf(message: PeerMessage, session: string, filter: CandidateFilter | null): PeerEvent | null {
  if (message.kind !== 'description' && message.kind !== 'candidate') return null; // call control: not ours
  if (message.session !== session) return { type: 'DROPPED', notice: 'other-session', detail: `${message.kind} of session ${message.session}` };
  if (message.kind === 'description') return { type: 'REMOTE.DESCRIPTION', description: filteredDescription(message.description, filter) };
  if (keeps(filter, message.candidate)) return { type: 'REMOTE.CANDIDATE', candidate: message.candidate };
  return { type: 'DROPPED', notice: 'filtered-candidate', detail: 'remote candidate' };
}

/** Hears a port's reports (see `listenToPortReports`). */
export type PortReportListener = (report: PortReport) => void;

/**
 * Who hears each port's reports: one listener, or several. The peer's one port subscription
 * (connectPorts) hands them over; a second subscription, or an unsubscribe function, per peer
 * would cost an idle peer up to 0.5 KiB (issue 14, memory).
 */
const portReportListeners = new WeakMap<RtcPort, PortReportListener | PortReportListener[]>();

/**
 * Passes the reports of `rtc` (`PortReport`) to `listener` while the peer that owns the port
 * runs, in the order the port fires them among its other events, until the peer ends (to stop
 * sooner, the listener ignores them).
 */
export function listenToPortReports(rtc: RtcPort, listener: PortReportListener): void {
  const listeners = portReportListeners.get(rtc);
  portReportListeners.set(rtc, listeners === undefined ? listener : [...(Array.isArray(listeners) ? listeners : [listeners]), listener]);
}

function reportToListeners(rtc: RtcPort, report: PortReport): void {
  const listeners = portReportListeners.get(rtc);
  if (typeof listeners === 'function') listeners(report);
  else for (const listener of listeners ?? []) listener(report);
}

/**
 * Subscribes the peer to its ports: the RTC port's events and this session's peer messages come
 * in as events, and the port's reports go to their listeners (`listenToPortReports`). No actor: the subscriptions end, and the RTC port is closed (the peer owns it,
 * webrtc-pc §4.4.1.9 close is idempotent), when the peer actor ends for any reason: a final
 * state (`closed`, `failed`), stopped from outside (e.g. by the call machine), or an error.
 */
function connectPorts(context: PeerContext, self: ActorRef<Snapshot<unknown>, PeerEvent>): void {
  const send = (event: PeerEvent): void => {
    if (self.getSnapshot().status === 'active') self.send(event);
  };
  const rtcSubscription = context.rtc.events$.subscribe((event) => {
    if (isPortReport(event) && self.getSnapshot().status === 'active') reportToListeners(context.rtc, event);
    if (takesPortEvent(event)) send(rtcEventOf(event, context.candidateFilter));
  });
  const signalingSubscription = context.signaling.messages$.subscribe((message) => {
    const event = remoteEventOf(message, context.session, context.candidateFilter);
    if (event) send(event);
  });
  const disconnect = (): void => {
    rtcSubscription.unsubscribe();
    signalingSubscription.unsubscribe();
    portReportListeners.delete(context.rtc);
    context.rtc.close();
  };
  self.subscribe({ complete: disconnect, error: disconnect });
}

/**
 * A machine's root as a region of the peer's `running` state: its id (so its `#id` targets
 * hold), transitions and states. Typed `never` to fit the peer's config: the peer's context and
 * events include the region's (PeerContext extends its context; PeerEvent includes its events),
 * and the peer's setup carries the region's implementations. Its CLOSE is the peer's: `running`
 * takes it and leaves every region at once, one microstep instead of one per region and their
 * done events (a region's own `closed` is entered when it runs alone, and the connection's when
 * the port reports closed).
 */
function regionOf(machine: AnyStateMachine, extra: { readonly onDone?: unknown } = {}): never {
  const { id, description, initial, on, states } = machine.config;
  const { CLOSE: _closedByThePeer, ...transitions } = on ?? {};
  return { id, description, initial, on: transitions, states, ...extra } as never;
}

/** Implementations of the three regions; the peer overrides only their reports to a parent. */
const REGION_IMPLEMENTATIONS = [negotiationMachine, iceGatheringMachine, connectionMachine].map((machine) => machine.implementations);
const regionActions = Object.assign({}, ...REGION_IMPLEMENTATIONS.map((i) => i.actions)) as object;
const regionGuards = Object.assign({}, ...REGION_IMPLEMENTATIONS.map((i) => i.guards)) as object;
const regionDelays = Object.assign({}, ...REGION_IMPLEMENTATIONS.map((i) => i.delays)) as object;

/** The region actions that report to a parent when the region runs alone, done here directly. */
export const PEER_REPORT_ACTIONS = [
  'sendLocalDescription',
  'reportCompleted',
  'reportError',
  'reportNotice',
  'takeCandidate',
  'forwardEndOfCandidates',
  'reportGatheringComplete',
  'askForIceRestart',
] as const;

/** Creates a data channel on the port; it comes back as a local RTC.DATA_CHANNEL event, or as
 * DATA_CHANNEL.FAILED when the port refuses it (webrtc-pc §4.4.1.7; the peer keeps running). */
function openDataChannel(rtc: RtcPort, self: { send(event: PeerEvent): void }, label: string, init: DataChannelInit | undefined): void {
  try {
    const channel = rtc.createDataChannel(label, init);
    self.send({ type: 'RTC.DATA_CHANNEL', channel, origin: 'local' });
  } catch (error) {
    self.send({ type: 'DATA_CHANNEL.FAILED', label, error: error instanceof Error ? error : new Error(String(error)) });
  }
}

/** The channels of a new peer (shared: the list is replaced, never mutated). */
const NO_CHANNELS: readonly DataChannelActor[] = Object.freeze([]);

/**
 * A peer context that lives as long as this module, with no reference to any peer's ports or
 * input, so that V8 keeps the hidden classes of the peer's context alive (see below). Without
 * it, once no peer is alive for about nine full GCs (V8 has then flushed the code that first
 * built the shape), every later context is built as a dictionary-mode object, for the rest of
 * the process: 1.1 KiB more per idle peer and slower copies on every `assign`.
 */
let contextShapeKeeper: object | undefined;

/**
 * The context a peer starts with: its regions' initial contexts and its own fields. Its shape
 * matters for speed (measured in apps/bench machines, node 20):
 * - not `{ ...a, ...b, ...c }`: V8 copies a second and third spread property by property on a
 *   slow path, tens of microseconds per peer;
 * - returned as a spread of one literal, not as the literal itself: xstate copies the context
 *   on every `assign` with `Object.assign({}, context, update)`, and V8 keeps that copy a
 *   fast-mode object only when the source's map came from a spread. From a 37-field literal
 *   every copy is a dictionary-mode object (a 1.6 KiB hash table, and 20 % fewer negotiations
 *   per CPU second);
 * - the first one is also kept, blanked, as `contextShapeKeeper`, built the way xstate builds
 *   an initial context (`Object.assign({}, {}, initial)`).
 * TypeScript checks that no field is missing.
 */
function initialPeerContext(input: PeerInput): PeerContext {
  const negotiation = initialNegotiationContext(input);
  const gathering = initialIceGatheringContext(input);
  const connection = initialConnectionContext(input);
  const context: PeerContext = {
    // negotiation region
    rtc: negotiation.rtc,
    polite: negotiation.polite,
    trickle: negotiation.trickle,
    inbox: negotiation.inbox,
    earlyCandidates: negotiation.earlyCandidates,
    current: negotiation.current,
    localDescription: negotiation.localDescription,
    negotiationNeeded: negotiation.negotiationNeeded,
    awaitRemoteOffer: negotiation.awaitRemoteOffer,
    offerOnStart: negotiation.offerOnStart,
    iceRestartWanted: negotiation.iceRestartWanted,
    offerRestartsIce: negotiation.offerRestartsIce,
    ignoreOffer: negotiation.ignoreOffer,
    appliedRemoteSdps: negotiation.appliedRemoteSdps,
    seenRemoteUfrags: negotiation.seenRemoteUfrags,
    negotiationRounds: negotiation.negotiationRounds,
    // ICE gathering region
    generation: gathering.generation,
    candidates: gathering.candidates,
    // connection region
    iceRestartBy: connection.iceRestartBy,
    maxIceRestarts: connection.maxIceRestarts,
    connectionState: input.rtc.connectionState,
    attempts: connection.attempts,
    reason: connection.reason,
    checksStartedInAttempt: connection.checksStartedInAttempt,
    turnRefusal: connection.turnRefusal,
    // the peer's own
    signaling: input.signaling,
    session: input.session ?? DEFAULT_SESSION,
    candidateFilter: input.candidateFilter ?? null,
    input,
    channels: NO_CHANNELS,
    filteredCandidates: 0,
    endReason: null,
    endDetail: undefined,
  };
  const initial = { ...context };
  contextShapeKeeper ??= Object.assign({}, {}, { ...initial, rtc: null, signaling: null, input: null, candidateFilter: null });
  return initial;
}

/**
 * One peer connection: the negotiation, ICE gathering and connection machines as parallel
 * regions of its `running` state, wired to one RTC port and one signaling port; its data
 * channels are its children. `createPeer` wraps it for apps.
 */
export const peerMachine = setup({
  types: {
    context: {} as PeerContext,
    events: {} as PeerEvent,
    input: {} as PeerInput,
    output: {} as PeerOutput,
    emitted: {} as PeerEmitted,
  },
  actors: { dataChannel: dataChannelMachine },
  guards: {
    ...regionGuards,
    isConnectionClosed: ({ context }) => endOf(context).reason === 'closed',
  },
  delays: { ...regionDelays },
  actions: {
    ...regionActions,
    // ---- the regions' reports, carried out (see PEER_REPORT_ACTIONS) ----
    /** Sends our offer or answer, with the candidate filter applied to its candidate lines. */
    sendLocalDescription: ({ context }) => {
      context.signaling.send({
        kind: 'description',
        session: context.session,
        description: filteredDescription(localDescriptionToSend(context), context.candidateFilter),
      } satisfies PeerMessage);
    },
    /** A round is done: the app hears `negotiated`, the connection region NEGOTIATED. */
    reportCompleted: enqueueActions(({ context, enqueue }, params: { asOfferer: boolean }) => {
      const { round, iceRestart } = completedRound(context, params.asOfferer);
      enqueue.emit({ type: 'negotiated', round, iceRestart });
      enqueue.raise({ type: 'NEGOTIATED' });
    }),
    reportError: emit(({ event }): PeerEmitted => {
      assertEvent(event, ['RTC.OPERATION_FAILED', 'RTC.CANDIDATE_FAILED']);
      return { type: 'error', operation: event.operation, error: event.error };
    }),
    reportNotice: emit((_, params: { notice: NegotiationNotice; detail: string }): PeerEmitted => ({ type: 'notice', notice: params.notice, detail: params.detail })),
    /**
     * Trickles a local candidate that passed the candidate filter (connectPorts drops the
     * others); without trickle nothing is collected, since the description carries the
     * candidates: in a peer the gathering region's `candidates` stays empty.
     */
    takeCandidate: ({ context, event }) => {
      assertEvent(event, 'RTC.ICE_CANDIDATE');
      if (context.trickle) context.signaling.send({ kind: 'candidate', session: context.session, candidate: event.candidate } satisfies PeerMessage);
    },
    /** RFC 8838 §8.2 end-of-candidates, trickled. */
    forwardEndOfCandidates: ({ context }) => {
      if (context.trickle) context.signaling.send({ kind: 'candidate', session: context.session, candidate: null } satisfies PeerMessage);
    },
    /** Only a non-trickle negotiation waits for it (to send the description with candidates). */
    reportGatheringComplete: enqueueActions(({ context, enqueue }) => {
      if (!context.trickle) enqueue.raise({ type: 'ICE.GATHERING_COMPLETE' });
    }),
    /** The recovery policy asks; the negotiation region offers the restart. */
    askForIceRestart: raise({ type: 'RESTART_ICE' }),
    // ---- the peer's own ----
    /** The ports' events in, until the peer ends (see connectPorts). */
    connectPorts: ({ context, self }) => connectPorts(context, self),
    /**
     * Announces what the peer dropped. issue 17: filtering candidates on purpose
     * (`candidateFilter`) is not news on every connect: only the first one is announced, all are
     * counted in `filteredCandidates`.
     */
    announceDropped: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'DROPPED');
      if (event.notice === 'filtered-candidate') {
        enqueue.assign({ filteredCandidates: context.filteredCandidates + 1 });
        if (context.filteredCandidates > 0) return;
      }
      enqueue.emit({ type: 'notice', notice: event.notice, detail: event.detail });
    }),
    /** CREATE_DATA_CHANNEL from the app (see openDataChannel). */
    createDataChannel: ({ context, event, self }) => {
      assertEvent(event, 'CREATE_DATA_CHANNEL');
      openDataChannel(context.rtc, self, event.label, event.init);
    },
    /**
     * The data channels listed in the input. Non-negotiated ones are created by the impolite
     * peer only (the polite one receives them), so both sides can be given the same list;
     * negotiated ones (`init.negotiated` with an id) are created on both sides.
     */
    createInitialDataChannels: ({ context, self }) => {
      // On the port at once, not through a CREATE_DATA_CHANNEL event: this entry runs before the
      // negotiation region's, so an offer made on start (offerOnStart) already carries them.
      for (const { label, init } of context.input.dataChannels ?? []) {
        if (context.polite && !init?.negotiated) continue;
        openDataChannel(context.rtc, self, label, init);
      }
    },
    adoptDataChannel: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'RTC.DATA_CHANNEL') return;
      const id = `channel-${context.channels.length}-${event.channel.label}`;
      enqueue.assign({
        channels: ({ spawn }) => [...context.channels, spawn('dataChannel', { id, input: { channel: event.channel } })],
      });
      enqueue.emit(({ context: updated }) => ({
        type: 'datachannel',
        label: event.channel.label,
        origin: event.origin,
        channel: updated.channels[updated.channels.length - 1] as DataChannelActor,
      }));
    }),
    announceDataChannelFailure: emit(({ event }): PeerEmitted => {
      assertEvent(event, 'DATA_CHANNEL.FAILED');
      return { type: 'error', operation: 'createDataChannel', error: event.error };
    }),
    /** The connection region ended (failed for good, or the port reported closed). */
    recordConnectionEnd: assign(({ context }) => {
      const end = endOf(context);
      return { endReason: end.reason, endDetail: end.detail };
    }),
    recordClosed: assign({ endReason: 'closed' as const, endDetail: undefined }),
  },
}).createMachine({
  id: 'peer',
  context: ({ input }) => initialPeerContext(input),
  initial: 'running',
  states: {
    running: {
      description: 'Negotiating and connected, or recovering: the three regions run side by side, fed by the ports.',
      type: 'parallel',
      entry: ['connectPorts', 'createInitialDataChannels'],
      // Events no region takes. CLOSE leaves every region at once, and the connection region's
      // end (failed for good, or the port reported closed) ends the peer.
      on: {
        CLOSE: '#peer.closed',
        'RTC.DATA_CHANNEL': { actions: 'adoptDataChannel' },
        DROPPED: { actions: 'announceDropped' },
        CREATE_DATA_CHANNEL: { actions: 'createDataChannel' },
        'DATA_CHANNEL.FAILED': { actions: 'announceDataChannelFailure' },
      },
      states: {
        negotiation: regionOf(negotiationMachine),
        iceGathering: regionOf(iceGatheringMachine),
        connection: regionOf(connectionMachine, {
          onDone: [{ guard: 'isConnectionClosed', target: '#peer.closed' }, { target: '#peer.failed', actions: 'recordConnectionEnd' }],
        }),
      },
    },
    closed: {
      description: 'Closed by the app (or the port reported closed). Final.',
      type: 'final',
      entry: 'recordClosed',
    },
    failed: {
      description: 'The connection failed for good (recovery exhausted). Final; the reason is the output.',
      type: 'final',
    },
  },
  output: ({ context }) => ({
    reason: context.endReason ?? 'closed',
    ...(context.endDetail !== undefined ? { detail: context.endDetail } : {}),
  }),
});

/** The type of `peerMachine`. */
export type PeerMachine = typeof peerMachine;
/** A running `peerMachine`. */
export type PeerActor = ActorRefFrom<typeof peerMachine>;

/**
 * The negotiation region of a peer snapshot, read as the negotiation machine's snapshot would be:
 * its state value (e.g. 'stable', { makingOffer: 'creatingOffer' }) and the context (the peer's,
 * which holds the negotiation's). Null once the peer has ended.
 */
export function negotiationOf(snapshot: SnapshotFrom<typeof peerMachine>): { readonly value: StateValue; readonly context: PeerContext } | null {
  const value = snapshot.value;
  if (typeof value !== 'object' || !('running' in value)) return null;
  const running = value['running'];
  if (typeof running !== 'object' || running === undefined) return null;
  const negotiation = running['negotiation'];
  return negotiation === undefined ? null : { value: negotiation, context: snapshot.context };
}
