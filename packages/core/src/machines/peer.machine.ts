import { assertEvent, assign, emit, enqueueActions, fromCallback, not, sendTo, setup } from 'xstate';
import type { ActorRefFrom } from 'xstate';
import type {
  DataChannelInit,
  DataChannelPort,
  IceCandidate,
  IceConnectionState,
  IceGatheringState,
  MediaStreamHandle,
  MediaTrackHandle,
  PeerConnectionState,
  RtcPort,
  SignalingState,
} from '../ports/rtc.js';
import type { SignalingPort } from '../ports/signaling.js';
import type { PeerMessage, WireDescription } from '../protocol/peer-message.js';
import { filterSdpCandidates } from '../sdp.js';
import { connectionMachine } from './connection.machine.js';
import type { ConnectionOutput } from './connection.machine.js';
import { dataChannelMachine } from './data-channel.machine.js';
import { iceGatheringMachine } from './ice-gathering.machine.js';
import { negotiationMachine } from './negotiation.machine.js';
import type { NegotiationNotice, NegotiationOperation } from './negotiation.machine.js';
import type { CandidateFilter, PeerEndReason, PeerInput, PeerOutput } from './peer.types.js';

export type { CandidateFilter, IceRestartPolicy, PeerEndReason, PeerFailureReason, PeerInput, PeerOutput } from './peer.types.js';

// One peer connection: the negotiation, ICE gathering and connection machines as child actors,
// wired to one RTC port and one signaling pipe. The peer is the only place that touches the
// ports' streams: it turns RTC events and validated peer messages into machine events, routes
// them to the child that owns them, and sends what the children ask for.

export const DEFAULT_SESSION = 'default';

export type DataChannelActor = ActorRefFrom<typeof dataChannelMachine>;

/** What a peer reports to the app (xstate `emit`; `createPeer().events$` carries them). */
export type PeerEmitted =
  | { readonly type: 'track'; readonly track: MediaTrackHandle; readonly streams: readonly MediaStreamHandle[]; readonly mid: string | null }
  | { readonly type: 'datachannel'; readonly label: string; readonly origin: 'local' | 'remote'; readonly channel: DataChannelActor }
  | { readonly type: 'signalingstatechange'; readonly state: SignalingState }
  | { readonly type: 'icegatheringstatechange'; readonly state: IceGatheringState }
  | { readonly type: 'iceconnectionstatechange'; readonly state: IceConnectionState }
  | { readonly type: 'connectionstatechange'; readonly state: PeerConnectionState }
  | { readonly type: 'negotiated'; readonly round: number; readonly iceRestart: boolean }
  | { readonly type: 'error'; readonly operation: NegotiationOperation | 'createDataChannel'; readonly error: Error }
  | { readonly type: 'notice'; readonly notice: NegotiationNotice | PeerNotice; readonly detail: string };

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
  | { readonly type: 'RTC.SIGNALING_STATE'; readonly state: SignalingState }
  | { readonly type: 'RTC.ICE_GATHERING_STATE'; readonly state: IceGatheringState }
  | { readonly type: 'RTC.ICE_CONNECTION_STATE'; readonly state: IceConnectionState }
  | { readonly type: 'RTC.CONNECTION_STATE'; readonly state: PeerConnectionState }
  | { readonly type: 'RTC.TRACK'; readonly track: MediaTrackHandle; readonly streams: readonly MediaStreamHandle[]; readonly mid: string | null }
  | { readonly type: 'RTC.DATA_CHANNEL'; readonly channel: DataChannelPort; readonly origin: 'local' | 'remote' }
  /** The port refused a data channel (webrtc-pc §4.4.1.7: a used id, bad init, closed). */
  | { readonly type: 'DATA_CHANNEL.FAILED'; readonly label: string; readonly error: Error };

/** Validated negotiation messages of this session, with the candidate filter applied. */
type RemoteEvent =
  | { readonly type: 'REMOTE.DESCRIPTION'; readonly description: WireDescription }
  | { readonly type: 'REMOTE.CANDIDATE'; readonly candidate: IceCandidate | null }
  | { readonly type: 'REMOTE.DROPPED'; readonly notice: PeerNotice; readonly detail: string };

/** What the children ask of their parent. */
type ChildEvent =
  | { readonly type: 'NEGOTIATION.LOCAL_DESCRIPTION'; readonly description: WireDescription }
  | { readonly type: 'NEGOTIATION.ERROR'; readonly operation: NegotiationOperation; readonly error: Error }
  | { readonly type: 'NEGOTIATION.NOTICE'; readonly notice: NegotiationNotice; readonly detail: string }
  | { readonly type: 'NEGOTIATION.COMPLETED'; readonly round: number; readonly iceRestart: boolean }
  | { readonly type: 'ICE.LOCAL_CANDIDATE'; readonly candidate: IceCandidate | null }
  | { readonly type: 'ICE.GATHERING_COMPLETE'; readonly candidates?: readonly IceCandidate[] }
  | { readonly type: 'CONNECTION.RESTART_ICE'; readonly attempt: number };

export type PeerEvent = PeerCommand | RtcEvent | RemoteEvent | ChildEvent;

export interface PeerContext {
  readonly rtc: RtcPort;
  readonly signaling: SignalingPort;
  readonly polite: boolean;
  readonly session: string;
  readonly trickle: boolean;
  /** Our first offer waits for the remote's (a callee; see NegotiationInput). */
  readonly awaitRemoteOffer: boolean;
  readonly candidateFilter: CandidateFilter | null;
  readonly input: PeerInput;
  /** Mirrors of the RTC port's states, for UIs and tests. */
  readonly signalingState: SignalingState;
  readonly iceGatheringState: IceGatheringState;
  readonly iceConnectionState: IceConnectionState;
  readonly connectionState: PeerConnectionState;
  /** One actor per data channel, local and remote. */
  readonly channels: readonly DataChannelActor[];
  readonly negotiationRounds: number;
  readonly endReason: PeerEndReason | null;
  readonly endDetail: string | undefined;
  /** The last TURN credential refusal since the connection was last connected, for the end reason. */
  readonly turnRefusal: string | null;
}

/**
 * STUN error codes that mean "your credentials are not accepted" (RFC 8489 §14.8: 401
 * Unauthorized; RFC 8656 §18: 441 Wrong Credentials). 438 Stale Nonce is retried by the engine.
 */
const CREDENTIAL_REFUSALS: ReadonlySet<number> = new Set([401, 441]);

function keeps(filter: CandidateFilter | null, candidate: IceCandidate | null): boolean {
  return candidate === null || filter === null || filter(candidate);
}

function filteredDescription(description: WireDescription, filter: CandidateFilter | null): WireDescription {
  return filter === null ? description : { type: description.type, sdp: filterSdpCandidates(description.sdp, filter) };
}

/**
 * Maps the RTC port's event stream to machine events. Owns the port: it closes it when it
 * stops, which happens on leaving `running` (for `closed` or `failed`) and when the peer actor
 * itself is stopped from outside (e.g. by the call machine leaving `active`).
 */
const rtcEvents = fromCallback<PeerEvent, { rtc: RtcPort }>(({ input, sendBack }) => {
  const subscription = input.rtc.events$.subscribe((event) => {
    switch (event.type) {
      case 'negotiationneeded':
        return sendBack({ type: 'RTC.NEGOTIATION_NEEDED' });
      case 'icecandidate':
        return sendBack({ type: 'RTC.ICE_CANDIDATE', candidate: event.candidate });
      case 'icecandidateerror':
        return sendBack({
          type: 'RTC.ICE_CANDIDATE_ERROR',
          errorCode: event.errorCode,
          url: event.url,
          detail: `${event.errorCode} ${event.errorText} (${event.url})`,
        });
      case 'signalingstatechange':
        return sendBack({ type: 'RTC.SIGNALING_STATE', state: event.state });
      case 'icegatheringstatechange':
        return sendBack({ type: 'RTC.ICE_GATHERING_STATE', state: event.state });
      case 'iceconnectionstatechange':
        return sendBack({ type: 'RTC.ICE_CONNECTION_STATE', state: event.state });
      case 'connectionstatechange':
        return sendBack({ type: 'RTC.CONNECTION_STATE', state: event.state });
      case 'track':
        return sendBack({ type: 'RTC.TRACK', track: event.track, streams: event.streams, mid: event.mid });
      case 'datachannel':
        return sendBack({ type: 'RTC.DATA_CHANNEL', channel: event.channel, origin: 'remote' });
    }
  });
  return () => {
    subscription.unsubscribe();
    // The peer owns the connection for its lifetime (webrtc-pc §4.4.1.9 close is idempotent).
    input.rtc.close();
  };
});

/** Takes this session's negotiation messages from the signaling pipe, filtered. */
const signalingMessages = fromCallback<PeerEvent, { signaling: SignalingPort; session: string; filter: CandidateFilter | null }>(
  ({ input, sendBack }) => {
    const subscription = input.signaling.messages$.subscribe((message) => {
      if (message.kind !== 'description' && message.kind !== 'candidate') return; // call control: not ours
      if (message.session !== input.session) {
        sendBack({ type: 'REMOTE.DROPPED', notice: 'other-session', detail: `${message.kind} of session ${message.session}` });
        return;
      }
      if (message.kind === 'description') {
        sendBack({ type: 'REMOTE.DESCRIPTION', description: filteredDescription(message.description, input.filter) });
      } else if (keeps(input.filter, message.candidate)) {
        sendBack({ type: 'REMOTE.CANDIDATE', candidate: message.candidate });
      } else {
        sendBack({ type: 'REMOTE.DROPPED', notice: 'filtered-candidate', detail: 'remote candidate' });
      }
    });
    return () => subscription.unsubscribe();
  },
);

export const peerMachine = setup({
  types: {
    context: {} as PeerContext,
    events: {} as PeerEvent,
    input: {} as PeerInput,
    output: {} as PeerOutput,
    emitted: {} as PeerEmitted,
  },
  actors: {
    rtcEvents,
    signalingMessages,
    negotiation: negotiationMachine,
    iceGathering: iceGatheringMachine,
    connection: connectionMachine,
    dataChannel: dataChannelMachine,
  },
  guards: {
    isTrickle: ({ context }) => context.trickle,
    isClosedByConnection: (_, output: ConnectionOutput) => output.reason === 'closed',
    /** A TURN server refused our credentials (webrtc-pc §4.8.4 icecandidateerror). */
    isTurnCredentialRefusal: ({ event }) =>
      event.type === 'RTC.ICE_CANDIDATE_ERROR' && CREDENTIAL_REFUSALS.has(event.errorCode) && /^turns?:/.test(event.url),
  },
  actions: {
    forwardToNegotiation: sendTo('negotiation', ({ event }) => {
      assertEvent(event, [
        'RTC.NEGOTIATION_NEEDED',
        'REMOTE.DESCRIPTION',
        'REMOTE.CANDIDATE',
        'ICE.GATHERING_COMPLETE',
        'CONNECTION.RESTART_ICE',
        'RESTART_ICE',
      ]);
      switch (event.type) {
        case 'RTC.NEGOTIATION_NEEDED':
          return { type: 'NEGOTIATION_NEEDED' as const };
        case 'REMOTE.DESCRIPTION':
          return { type: 'REMOTE.DESCRIPTION' as const, description: event.description };
        case 'REMOTE.CANDIDATE':
          return { type: 'REMOTE.CANDIDATE' as const, candidate: event.candidate };
        case 'ICE.GATHERING_COMPLETE':
          return { type: 'ICE.GATHERING_COMPLETE' as const };
        case 'CONNECTION.RESTART_ICE': // the recovery policy asks
        case 'RESTART_ICE': // the app asks
          return { type: 'RESTART_ICE' as const };
      }
    }),
    forwardToIceGathering: sendTo('iceGathering', ({ event }) => {
      assertEvent(event, ['RTC.ICE_CANDIDATE', 'RTC.ICE_GATHERING_STATE']);
      return event;
    }),
    forwardToConnection: sendTo('connection', ({ event }) => {
      assertEvent(event, ['RTC.CONNECTION_STATE', 'RTC.ICE_CONNECTION_STATE']);
      return event;
    }),
    /** Checks should start now; the connection machine bounds how long they may not. */
    tellConnectionNegotiated: sendTo('connection', { type: 'NEGOTIATED' as const }),
    recordTurnRefusal: assign({
      turnRefusal: ({ event }) => {
        assertEvent(event, 'RTC.ICE_CANDIDATE_ERROR');
        return `TURN server refused the credentials: ${event.detail}`;
      },
    }),
    /** A refusal seen before the connection (re)connected does not explain a later failure. */
    forgetTurnRefusalOnceConnected: assign({
      turnRefusal: ({ context, event }) => (event.type === 'RTC.CONNECTION_STATE' && event.state === 'connected' ? null : context.turnRefusal),
    }),
    mirrorRtcState: assign(({ context, event }) => {
      switch (event.type) {
        case 'RTC.SIGNALING_STATE':
          return { signalingState: event.state };
        case 'RTC.ICE_GATHERING_STATE':
          return { iceGatheringState: event.state };
        case 'RTC.ICE_CONNECTION_STATE':
          return { iceConnectionState: event.state };
        case 'RTC.CONNECTION_STATE':
          return { connectionState: event.state };
        default:
          return context;
      }
    }),
    announceRtcState: emit(({ event }): PeerEmitted => {
      assertEvent(event, ['RTC.SIGNALING_STATE', 'RTC.ICE_GATHERING_STATE', 'RTC.ICE_CONNECTION_STATE', 'RTC.CONNECTION_STATE']);
      switch (event.type) {
        case 'RTC.SIGNALING_STATE':
          return { type: 'signalingstatechange', state: event.state };
        case 'RTC.ICE_GATHERING_STATE':
          return { type: 'icegatheringstatechange', state: event.state };
        case 'RTC.ICE_CONNECTION_STATE':
          return { type: 'iceconnectionstatechange', state: event.state };
        case 'RTC.CONNECTION_STATE':
          return { type: 'connectionstatechange', state: event.state };
      }
    }),
    announceTrack: emit(({ event }): PeerEmitted => {
      assertEvent(event, 'RTC.TRACK');
      return { type: 'track', track: event.track, streams: event.streams, mid: event.mid };
    }),
    /** Sends our offer or answer, with the candidate filter applied to its candidate lines. */
    sendDescription: ({ context, event }) => {
      if (event.type !== 'NEGOTIATION.LOCAL_DESCRIPTION') return;
      context.signaling.send({
        kind: 'description',
        session: context.session,
        description: filteredDescription(event.description, context.candidateFilter),
      } satisfies PeerMessage);
    },
    sendCandidate: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'ICE.LOCAL_CANDIDATE') return;
      if (!keeps(context.candidateFilter, event.candidate)) {
        enqueue.emit({ type: 'notice', notice: 'filtered-candidate', detail: 'local candidate' });
        return;
      }
      const message: PeerMessage = { kind: 'candidate', session: context.session, candidate: event.candidate };
      enqueue(() => context.signaling.send(message));
    }),
    /** Creates a data channel on the port; it comes back as a local RTC.DATA_CHANNEL event, or
     * as DATA_CHANNEL.FAILED when the port refuses it (the peer keeps running). */
    createDataChannel: ({ context, event, self }) => {
      assertEvent(event, 'CREATE_DATA_CHANNEL');
      try {
        const channel = context.rtc.createDataChannel(event.label, event.init);
        self.send({ type: 'RTC.DATA_CHANNEL', channel, origin: 'local' });
      } catch (error) {
        self.send({ type: 'DATA_CHANNEL.FAILED', label: event.label, error: error instanceof Error ? error : new Error(String(error)) });
      }
    },
    /**
     * The data channels listed in the input. Non-negotiated ones are created by the impolite
     * peer only (the polite one receives them), so both sides can be given the same list;
     * negotiated ones (`init.negotiated` with an id) are created on both sides.
     */
    createInitialDataChannels: ({ context, self }) => {
      for (const { label, init } of context.input.dataChannels ?? []) {
        if (context.polite && !init?.negotiated) continue;
        self.send({ type: 'CREATE_DATA_CHANNEL', label, ...(init ? { init } : {}) });
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
    announceNegotiated: emit(({ event }): PeerEmitted => {
      assertEvent(event, 'NEGOTIATION.COMPLETED');
      return { type: 'negotiated', round: event.round, iceRestart: event.iceRestart };
    }),
    countNegotiation: assign({ negotiationRounds: ({ context }) => context.negotiationRounds + 1 }),
    announceError: emit(({ event }): PeerEmitted => {
      assertEvent(event, ['NEGOTIATION.ERROR', 'DATA_CHANNEL.FAILED']);
      return event.type === 'DATA_CHANNEL.FAILED'
        ? { type: 'error', operation: 'createDataChannel', error: event.error }
        : { type: 'error', operation: event.operation, error: event.error };
    }),
    announceNotice: emit(({ event }): PeerEmitted => {
      assertEvent(event, ['NEGOTIATION.NOTICE', 'REMOTE.DROPPED', 'RTC.ICE_CANDIDATE_ERROR']);
      return event.type === 'RTC.ICE_CANDIDATE_ERROR'
        ? { type: 'notice', notice: 'ice-candidate-error', detail: event.detail }
        : { type: 'notice', notice: event.notice, detail: event.detail };
    }),
    recordEnd: assign((_, params: { reason: PeerEndReason; detail?: string }) => ({
      endReason: params.reason,
      endDetail: params.detail,
    })),
  },
}).createMachine({
  id: 'peer',
  context: ({ input }) => ({
    rtc: input.rtc,
    signaling: input.signaling,
    polite: input.polite,
    session: input.session ?? DEFAULT_SESSION,
    trickle: input.trickle ?? true,
    awaitRemoteOffer: input.awaitRemoteOffer ?? false,
    candidateFilter: input.candidateFilter ?? null,
    input,
    signalingState: input.rtc.signalingState,
    iceGatheringState: input.rtc.iceGatheringState,
    iceConnectionState: input.rtc.iceConnectionState,
    connectionState: input.rtc.connectionState,
    channels: [],
    negotiationRounds: 0,
    endReason: null,
    endDetail: undefined,
    turnRefusal: null,
  }),
  initial: 'running',
  states: {
    running: {
      description: 'Negotiating and connected, or recovering: every child runs.',
      entry: 'createInitialDataChannels',
      invoke: [
        { id: 'rtcEvents', src: 'rtcEvents', input: ({ context }) => ({ rtc: context.rtc }) },
        {
          id: 'signalingMessages',
          src: 'signalingMessages',
          input: ({ context }) => ({ signaling: context.signaling, session: context.session, filter: context.candidateFilter }),
        },
        {
          id: 'negotiation',
          src: 'negotiation',
          input: ({ context }) => ({
            rtc: context.rtc,
            polite: context.polite,
            trickle: context.trickle,
            awaitRemoteOffer: context.awaitRemoteOffer,
            offerOnStart: context.input.offerOnStart ?? false,
          }),
        },
        { id: 'iceGathering', src: 'iceGathering', input: ({ context }) => ({ trickle: context.trickle }) },
        {
          id: 'connection',
          src: 'connection',
          input: ({ context }) => ({
            polite: context.polite,
            ...(context.input.iceRestartBy ? { iceRestartBy: context.input.iceRestartBy } : {}),
            ...(context.input.maxIceRestarts !== undefined ? { maxIceRestarts: context.input.maxIceRestarts } : {}),
          }),
          onDone: [
            { guard: { type: 'isClosedByConnection', params: ({ event }) => event.output }, target: 'closed' },
            {
              target: 'failed',
              actions: {
                type: 'recordEnd',
                params: ({ context, event }) =>
                  context.turnRefusal !== null
                    ? {
                        reason: 'turn-unauthorized' as const,
                        detail: [context.turnRefusal, event.output.detail].filter((part) => part !== undefined).join('; '),
                      }
                    : {
                        reason: event.output.reason,
                        ...(event.output.detail !== undefined ? { detail: event.output.detail } : {}),
                      },
              },
            },
          ],
        },
      ],
      on: {
        'RTC.NEGOTIATION_NEEDED': { actions: 'forwardToNegotiation' },
        'RTC.ICE_CANDIDATE': { actions: 'forwardToIceGathering' },
        'RTC.ICE_CANDIDATE_ERROR': [
          { guard: 'isTurnCredentialRefusal', actions: ['recordTurnRefusal', 'announceNotice'] },
          { actions: 'announceNotice' },
        ],
        'RTC.SIGNALING_STATE': { actions: ['mirrorRtcState', 'announceRtcState'] },
        'RTC.ICE_GATHERING_STATE': { actions: ['mirrorRtcState', 'announceRtcState', 'forwardToIceGathering'] },
        'RTC.ICE_CONNECTION_STATE': { actions: ['mirrorRtcState', 'announceRtcState', 'forwardToConnection'] },
        'RTC.CONNECTION_STATE': { actions: ['mirrorRtcState', 'announceRtcState', 'forgetTurnRefusalOnceConnected', 'forwardToConnection'] },
        'RTC.TRACK': { actions: 'announceTrack' },
        'RTC.DATA_CHANNEL': { actions: 'adoptDataChannel' },
        'REMOTE.DESCRIPTION': { actions: 'forwardToNegotiation' },
        'REMOTE.CANDIDATE': { actions: 'forwardToNegotiation' },
        'REMOTE.DROPPED': { actions: 'announceNotice' },
        'NEGOTIATION.LOCAL_DESCRIPTION': { actions: 'sendDescription' },
        'NEGOTIATION.ERROR': { actions: 'announceError' },
        'NEGOTIATION.NOTICE': { actions: 'announceNotice' },
        'NEGOTIATION.COMPLETED': { actions: ['countNegotiation', 'announceNegotiated', 'tellConnectionNegotiated'] },
        'ICE.LOCAL_CANDIDATE': { actions: 'sendCandidate' },
        // Only a non-trickle negotiation waits for it (to send the description with candidates).
        'ICE.GATHERING_COMPLETE': { guard: not('isTrickle'), actions: 'forwardToNegotiation' },
        'CONNECTION.RESTART_ICE': { actions: 'forwardToNegotiation' },
        RESTART_ICE: { actions: 'forwardToNegotiation' },
        CREATE_DATA_CHANNEL: { actions: 'createDataChannel' },
        'DATA_CHANNEL.FAILED': { actions: 'announceError' },
        CLOSE: { target: 'closed' },
      },
    },
    closed: {
      description: 'Closed by the app (or the port reported closed). Final.',
      type: 'final',
      entry: { type: 'recordEnd', params: { reason: 'closed' } },
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

export type PeerMachine = typeof peerMachine;
export type PeerActor = ActorRefFrom<typeof peerMachine>;
