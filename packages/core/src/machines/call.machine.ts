import { Observable, filter, map } from 'rxjs';
import { assign, fromEventObservable, not, setup, stateIn } from 'xstate';
import type { RtcPort } from '../ports/rtc.js';
import type { SignalingPort } from '../ports/signaling.js';
import type {
  AcceptMessage,
  ByeMessage,
  ByeReason,
  CallControlMessage,
  CancelMessage,
  CancelReason,
  InviteMedia,
  InviteMessage,
  NegotiationMessage,
  PeerMessage,
  RejectMessage,
  RejectReason,
} from '../protocol/peer-message.js';
import { peerMachine } from './peer.machine.js';
import type { PeerFailureReason, PeerInput, PeerOutput } from './peer.types.js';

// Session control between a caller and a callee over ONE signaling port (one remote peer):
// idle -> outgoing | incoming (ringing) -> active -> ended, and again from ended.
// The call machine reads only call-control messages (invite, accept, reject, cancel, bye); the
// peer machine it runs reads descriptions and candidates from the same port.
//
// The caller's peer starts with the invite (`peerRunning.outgoing`): its offer and candidates
// follow the invite while it rings, so connecting does not wait for a round trip after accept.
// The callee holds them while it rings (`incoming`) and hands them to its peer on accept; a
// declined, cancelled or unanswered call closes the caller's peer, and nothing reaches a callee
// that never accepted. The same peer runs on into `active`.

/** Why a call ended, as this side sees it. */
export type CallEndReason =
  /** This side hung up an active call. */
  | 'hangup'
  /** The remote side sent `bye` on an active call (its reason is in `remoteReason`). */
  | 'remote-hangup'
  /** The callee declined our invite. */
  | 'rejected'
  /** The callee was busy. */
  | 'busy'
  /** The callee did not answer in time, or cannot take calls. */
  | 'unavailable'
  /** This side withdrew its invite before it was answered. */
  | 'cancelled'
  /** Our invite was not answered before `ringTimeout`. */
  | 'no-answer'
  /** An incoming call was withdrawn by the caller, or not answered before `incomingTimeout`. */
  | 'missed'
  /** This side declined an incoming call (`REJECT`; `busy` when rejected as busy). */
  | 'declined'
  /** The peer connection could not be established or was lost for good. */
  | 'connection-failed';

/** Which side of a call this is: the caller sent the invite, the callee received it. */
export type CallRole = 'caller' | 'callee';
/** Which side ended a call: this one (`local`) or the remote peer (`remote`). */
export type CallEndedBy = 'local' | 'remote';
/** The reason the remote side gave in its `reject`, `cancel` or `bye`. */
export type RemoteEndReason = RejectReason | CancelReason | ByeReason;

/** Options of the peer machine run in `active`; the call machine supplies the rest. */
export type CallPeerOptions = Omit<PeerInput, 'rtc' | 'signaling' | 'polite' | 'session'>;

/**
 * The input of `callMachine`: the signaling port to the remote peer, how to make an RTC port, and
 * the options of the peer each call runs.
 */
export interface CallInput {
  /** The pipe to the one remote peer this call actor talks to. */
  readonly signaling: SignalingPort;
  /**
   * Called when this side's peer starts (the caller's on CALL, the callee's on ACCEPT): the app
   * builds its RTCPeerConnection, adds tracks, wraps it. The peer closes it when the call ends.
   */
  readonly createRtc: () => RtcPort;
  readonly peer?: CallPeerOptions;
  /** Media asked for in invites when `CALL` names none. */
  readonly media?: InviteMedia;
  /** Defaults to `randomSessionId`. Ids must be unique per call and match the protocol's pattern. */
  readonly createSessionId?: () => string;
  /** When true, an incoming invite is answered `reject{busy}` at once (e.g. on another call). */
  readonly isBusy?: () => boolean;
}

/** The context of `callMachine`: the current session, role, peer and how the call ended. */
export interface CallContext {
  readonly signaling: SignalingPort;
  readonly createRtc: () => RtcPort;
  readonly peerOptions: CallPeerOptions;
  readonly defaultMedia: InviteMedia | null;
  readonly createSessionId: () => string;
  readonly isBusy: () => boolean;
  /** Id of the current (or last) call; messages of any other session are dropped. */
  readonly session: string | null;
  /** The caller is the impolite peer, the callee the polite one. */
  readonly role: CallRole | null;
  /** Media asked for by the caller (ours when calling, the remote's when called). */
  readonly media: InviteMedia | null;
  /** Set when the call ends; cleared when a new call starts. */
  readonly reason: CallEndReason | null;
  readonly endedBy: CallEndedBy | null;
  readonly remoteReason: RemoteEndReason | null;
  /** Human-readable detail, e.g. why the peer connection failed. */
  readonly detail: string | null;
  /** Why the peer connection failed, when the call ended `connection-failed` because of it. */
  readonly connectionFailure: PeerFailureReason | null;
  /** The caller's offer and candidates that arrived while the call rang here, for our peer. */
  readonly earlySignals: readonly NegotiationMessage[];
}

/** At most this many early offer/candidate messages are held while a call rings; later ones are dropped. */
export const MAX_EARLY_SIGNALS = 256;

/** What the user (or app) asks for. */
export type CallUserEvent =
  | { readonly type: 'CALL'; readonly media?: InviteMedia }
  | { readonly type: 'ACCEPT' }
  | { readonly type: 'REJECT'; readonly reason?: 'declined' | 'busy' }
  | { readonly type: 'CANCEL' }
  | { readonly type: 'HANGUP' };

/** Call-control messages from the remote peer, as machine events. */
export type CallRemoteEvent =
  | { readonly type: 'REMOTE.INVITE'; readonly message: InviteMessage }
  | { readonly type: 'REMOTE.ACCEPT'; readonly message: AcceptMessage }
  | { readonly type: 'REMOTE.REJECT'; readonly message: RejectMessage }
  | { readonly type: 'REMOTE.CANCEL'; readonly message: CancelMessage }
  | { readonly type: 'REMOTE.BYE'; readonly message: ByeMessage };

/**
 * What the app learns from its signaling channel rather than from the remote: the remote peer
 * left the room for good (with `@parley/signaling-ws`, its `peerLeft$`; the server says so only
 * after its resume grace, so a reconnect or a server restart is not a departure).
 */
export type CallPresenceEvent = { readonly type: 'REMOTE.LEFT' };

/** The caller's offer or candidate, come while its invite rings here (held for our peer). */
export type CallEarlySignalEvent = { readonly type: 'REMOTE.EARLY_SIGNAL'; readonly message: NegotiationMessage };

/**
 * Every event `callMachine` accepts: the user's commands, the remote peer's call-control
 * messages, presence, and the early negotiation signals held while an invite rings.
 */
export type CallEvent = CallUserEvent | CallRemoteEvent | CallPresenceEvent | CallEarlySignalEvent;

/** The fields of a remote invite the machine keeps. */
interface RemoteInvite {
  readonly session: string;
  readonly media?: InviteMedia | undefined;
}

interface CallEnd {
  readonly reason: CallEndReason;
  readonly endedBy: CallEndedBy;
  readonly remoteReason?: RemoteEndReason;
  readonly detail?: string;
  readonly connectionFailure?: PeerFailureReason;
}

const SESSION_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * A random, URL-safe call session id (22 characters of a 64-letter alphabet). Uses Math.random:
 * ids only need to be distinct between the calls of two peers, not secret.
 */
export function randomSessionId(length = 22): string {
  let id = '';
  for (let i = 0; i < length; i += 1) {
    id += SESSION_ALPHABET.charAt(Math.floor(Math.random() * SESSION_ALPHABET.length));
  }
  return id;
}

function isCallControlMessage(message: PeerMessage): message is CallControlMessage {
  return message.kind !== 'description' && message.kind !== 'candidate';
}

function toRemoteEvent(message: CallControlMessage): CallRemoteEvent {
  switch (message.kind) {
    case 'invite':
      return { type: 'REMOTE.INVITE', message };
    case 'accept':
      return { type: 'REMOTE.ACCEPT', message };
    case 'reject':
      return { type: 'REMOTE.REJECT', message };
    case 'cancel':
      return { type: 'REMOTE.CANCEL', message };
    case 'bye':
      return { type: 'REMOTE.BYE', message };
  }
}

/** The remote's call-control messages as events for the parent; negotiation messages are left
 * to the peer machine. An error of `messages$` errors the call actor (signaling is gone). */
const remoteCallControl = fromEventObservable<CallRemoteEvent, { readonly signaling: SignalingPort }>(({ input }) =>
  input.signaling.messages$.pipe(filter(isCallControlMessage), map(toRemoteEvent)),
);


/** The ringing call's negotiation messages (the caller's early offer and candidates), as events. */
const earlySignals = fromEventObservable<CallEarlySignalEvent, { readonly signaling: SignalingPort; readonly session: string }>(
  ({ input }) =>
    input.signaling.messages$.pipe(
      filter((message): message is NegotiationMessage => !isCallControlMessage(message) && message.session === input.session),
      map((message) => ({ type: 'REMOTE.EARLY_SIGNAL' as const, message })),
    ),
);

/**
 * The port the callee's peer reads: the messages held while the call rang first, then the live
 * ones. Replayed on subscription, in order, before any later message (the port is hot).
 */
function withEarlySignals(signaling: SignalingPort, early: readonly NegotiationMessage[]): SignalingPort {
  if (early.length === 0) return signaling;
  return {
    send: (message) => signaling.send(message),
    messages$: new Observable<PeerMessage>((subscriber) => {
      for (const message of early) subscriber.next(message);
      return signaling.messages$.subscribe(subscriber);
    }),
  };
}

function endOfRemoteReject(reason: RejectReason): CallEnd {
  const byReason = { declined: 'rejected', busy: 'busy', unavailable: 'unavailable' } as const;
  return { reason: byReason[reason], endedBy: 'remote', remoteReason: reason };
}

/** How a call ends when its peer reached a final state that was not a plain close. */
function endOfPeer(output: PeerOutput): CallEnd {
  return {
    reason: 'connection-failed',
    endedBy: 'local',
    detail: output.detail ?? output.reason,
    ...(output.reason !== 'closed' ? { connectionFailure: output.reason } : {}),
  };
}

/** How a call ends when its peer actor threw. */
function endOfPeerError(error: unknown): CallEnd {
  return { reason: 'connection-failed', endedBy: 'local', detail: error instanceof Error ? error.message : String(error) };
}

function sessionOf(context: CallContext): string {
  if (context.session === null) throw new Error('call machine: no current session');
  return context.session;
}

/**
 * Call control (invite, ringing, accept, reject or busy, cancel, hang-up, timeouts, crossing
 * invites) over one signaling port; each call runs a `peerMachine`, the caller impolite and the
 * callee polite. `createCall` wraps it for apps; drawn in docs/machines.md.
 */
export const callMachine = setup({
  types: {
    context: {} as CallContext,
    events: {} as CallEvent,
    input: {} as CallInput,
    children: {} as { peer: 'peer'; earlySignals: 'earlySignals'; remoteCallControl: 'remoteCallControl' },
  },
  actors: {
    remoteCallControl,
    earlySignals,
    peer: peerMachine,
  },
  actions: {
    startOutgoingCall: assign(({ context }, params: { readonly media: InviteMedia | undefined }) => ({
      session: context.createSessionId(),
      role: 'caller' as const,
      media: params.media ?? context.defaultMedia,
      earlySignals: [],
      reason: null,
      endedBy: null,
      remoteReason: null,
      detail: null,
      connectionFailure: null,
    })),
    /** Also used when a crossing invite wins: this side then becomes the callee of that call. */
    startIncomingCall: assign((_, invite: RemoteInvite) => ({
      session: invite.session,
      role: 'callee' as const,
      media: invite.media ?? null,
      earlySignals: [],
      reason: null,
      endedBy: null,
      remoteReason: null,
      detail: null,
      connectionFailure: null,
    })),
    holdEarlySignal: assign(({ context }, message: NegotiationMessage) =>
      context.earlySignals.length < MAX_EARLY_SIGNALS ? { earlySignals: [...context.earlySignals, message] } : {},
    ),
    endCall: assign((_, end: CallEnd) => ({
      reason: end.reason,
      endedBy: end.endedBy,
      remoteReason: end.remoteReason ?? null,
      detail: end.detail ?? null,
      connectionFailure: end.connectionFailure ?? null,
    })),
    sendInvite: ({ context }) => {
      const session = sessionOf(context);
      context.signaling.send(context.media ? { kind: 'invite', session, media: context.media } : { kind: 'invite', session });
    },
    sendAccept: ({ context }) => context.signaling.send({ kind: 'accept', session: sessionOf(context) }),
    sendReject: ({ context }, params: { readonly reason: RejectReason }) =>
      context.signaling.send({ kind: 'reject', session: sessionOf(context), reason: params.reason }),
    sendCancel: ({ context }, params: { readonly reason: CancelReason }) =>
      context.signaling.send({ kind: 'cancel', session: sessionOf(context), reason: params.reason }),
    sendBye: ({ context }, params: { readonly reason: ByeReason }) =>
      context.signaling.send({ kind: 'bye', session: sessionOf(context), reason: params.reason }),
    /** Answers an invite of another session without touching the current call. */
    replyBusy: ({ context }, invite: RemoteInvite) =>
      context.signaling.send({ kind: 'reject', session: invite.session, reason: 'busy' }),
  },
  guards: {
    isForCurrentSession: ({ context, event }) => 'message' in event && event.message.session === context.session,
    isLocalUserBusy: ({ context }) => context.isBusy(),
    /**
     * Crossing invites (both sides pressed CALL at once): the invite with the lexicographically
     * smaller session id wins. The rule is symmetric: both sides compare the same two ids with
     * the same total order, so exactly one side sees the remote invite win (it accepts and
     * becomes the callee) and the other sees its own win (it keeps waiting and receives that
     * accept as the caller). No user click is needed: both asked for this call. Equal ids
     * (never, with random 22-character ids) would make neither win; both would ring out.
     */
    doesRemoteInviteWin: ({ context, event }) =>
      event.type === 'REMOTE.INVITE' && context.session !== null && event.message.session < context.session,
    didPeerFail: (_, output: PeerOutput) => output.reason !== 'closed',
  },
  delays: {
    /** How long an outgoing invite rings unanswered before it is cancelled. */
    ringTimeout: 30_000,
    /** How long an incoming invite rings unanswered before it is rejected as unavailable. */
    incomingTimeout: 30_000,
  },
}).createMachine({
  id: 'call',
  context: ({ input }) => ({
    signaling: input.signaling,
    createRtc: input.createRtc,
    peerOptions: input.peer ?? {},
    defaultMedia: input.media ?? null,
    createSessionId: input.createSessionId ?? (() => randomSessionId()),
    isBusy: input.isBusy ?? (() => false),
    session: null,
    role: null,
    media: null,
    reason: null,
    endedBy: null,
    remoteReason: null,
    detail: null,
    connectionFailure: null,
    earlySignals: [],
  }),
  invoke: {
    id: 'remoteCallControl',
    src: 'remoteCallControl',
    input: ({ context }) => ({ signaling: context.signaling }),
  },
  initial: 'idle',
  states: {
    idle: {
      description: 'No call yet. CALL starts one; a remote invite rings, unless the app is busy.',
      on: {
        CALL: {
          target: 'peerRunning.outgoing',
          actions: [{ type: 'startOutgoingCall', params: ({ event }) => ({ media: event.media }) }, 'sendInvite'],
        },
        'REMOTE.INVITE': [
          { guard: 'isLocalUserBusy', actions: { type: 'replyBusy', params: ({ event }) => event.message } },
          { target: 'incoming', actions: { type: 'startIncomingCall', params: ({ event }) => event.message } },
        ],
      },
    },
    incoming: {
      description: 'A remote invite is ringing here; waiting for the user to ACCEPT or REJECT. The caller’s early offer and candidates are held for our peer.',
      invoke: {
        id: 'earlySignals',
        src: 'earlySignals',
        input: ({ context }) => ({ signaling: context.signaling, session: sessionOf(context) }),
      },
      after: {
        incomingTimeout: {
          target: 'ended',
          actions: [
            { type: 'sendReject', params: { reason: 'unavailable' } },
            { type: 'endCall', params: { reason: 'missed', endedBy: 'local' } },
          ],
        },
      },
      on: {
        'REMOTE.EARLY_SIGNAL': { actions: { type: 'holdEarlySignal', params: ({ event }) => event.message } },
        ACCEPT: { target: 'peerRunning.active', actions: 'sendAccept' },
        REJECT: {
          target: 'ended',
          actions: [
            { type: 'sendReject', params: ({ event }) => ({ reason: event.reason ?? 'declined' }) },
            { type: 'endCall', params: ({ event }) => ({ reason: event.reason === 'busy' ? 'busy' : 'declined', endedBy: 'local' }) },
          ],
        },
        'REMOTE.CANCEL': {
          guard: 'isForCurrentSession',
          target: 'ended',
          actions: {
            type: 'endCall',
            params: ({ event }) => ({ reason: 'missed', endedBy: 'remote', remoteReason: event.message.reason }),
          },
        },
        'REMOTE.LEFT': {
          target: 'ended',
          actions: { type: 'endCall', params: { reason: 'missed', endedBy: 'remote', detail: 'the caller left the room' } },
        },
        'REMOTE.INVITE': { guard: not('isForCurrentSession'), actions: { type: 'replyBusy', params: ({ event }) => event.message } },
      },
    },
    peerRunning: {
      description: 'This side’s peer connection runs: the caller’s from its invite on (it negotiates while the invite rings), the callee’s from ACCEPT. Caller impolite, callee polite.',
      invoke: {
        id: 'peer',
        src: 'peer',
        input: ({ context }) => ({
          ...context.peerOptions,
          rtc: context.createRtc(),
          // The callee's peer reads the caller's offer and candidates that came while it rang.
          signaling: withEarlySignals(context.signaling, context.earlySignals),
          polite: context.role === 'callee',
          // The callee's tracks, added in createRtc, wait for the caller's offer instead of
          // colliding with it.
          awaitRemoteOffer: context.role === 'callee',
          session: sessionOf(context),
        }),
        onDone: [
          {
            // Still ringing: the callee has no call to hang up; the invite is withdrawn.
            guard: stateIn('#call.peerRunning.outgoing'),
            target: 'ended',
            actions: [
              { type: 'sendCancel', params: { reason: 'cancelled' } },
              {
                type: 'endCall',
                params: ({ event }) => endOfPeer(event.output),
              },
            ],
          },
          {
            guard: { type: 'didPeerFail', params: ({ event }) => event.output },
            target: 'ended',
            actions: [
              { type: 'sendBye', params: { reason: 'connection-failed' } },
              {
                type: 'endCall',
                params: ({ event }) => endOfPeer(event.output),
              },
            ],
          },
          {
            // The peer closed on its own (its RTC port was closed): the call is over for us.
            target: 'ended',
            actions: [
              { type: 'sendBye', params: { reason: 'hangup' } },
              { type: 'endCall', params: { reason: 'hangup', endedBy: 'local' } },
            ],
          },
        ],
        onError: [
          {
            guard: stateIn('#call.peerRunning.outgoing'),
            target: 'ended',
            actions: [
              { type: 'sendCancel', params: { reason: 'cancelled' } },
              {
                type: 'endCall',
                params: ({ event }) => endOfPeerError(event.error),
              },
            ],
          },
          {
            target: 'ended',
            actions: [
              { type: 'sendBye', params: { reason: 'error' } },
              {
                type: 'endCall',
                params: ({ event }) => endOfPeerError(event.error),
              },
            ],
          },
        ],
      },
      initial: 'active',
      states: {
        outgoing: {
          description: 'Our invite is ringing at the remote peer, our offer right behind it; waiting for accept or reject.',
          after: {
            ringTimeout: {
              target: '#call.ended',
              actions: [
                { type: 'sendCancel', params: { reason: 'timeout' } },
                { type: 'endCall', params: { reason: 'no-answer', endedBy: 'local' } },
              ],
            },
          },
          on: {
            'REMOTE.ACCEPT': { guard: 'isForCurrentSession', target: 'active' },
            'REMOTE.REJECT': {
              guard: 'isForCurrentSession',
              target: '#call.ended',
              actions: { type: 'endCall', params: ({ event }) => endOfRemoteReject(event.message.reason) },
            },
            'REMOTE.INVITE': {
              guard: 'doesRemoteInviteWin',
              target: '#call.answeringCrossedInvite',
              actions: [{ type: 'startIncomingCall', params: ({ event }) => event.message }, 'sendAccept'],
            },
            // Nobody is left to answer: no cancel is sent (the server would refuse it as unknown-peer).
            'REMOTE.LEFT': {
              target: '#call.ended',
              actions: { type: 'endCall', params: { reason: 'unavailable', endedBy: 'remote', detail: 'the callee left the room' } },
            },
            CANCEL: {
              target: '#call.ended',
              actions: [
                { type: 'sendCancel', params: { reason: 'cancelled' } },
                { type: 'endCall', params: { reason: 'cancelled', endedBy: 'local' } },
              ],
            },
          },
        },
        active: {
          // REMOTE.LEFT is not handled here: media can flow without signaling, and a remote that is
          // really gone is noticed by the connection (it fails, and the call ends connection-failed).
          description: 'Both sides agreed; the peer connection runs on.',
          on: {
            HANGUP: {
              target: '#call.ended',
              actions: [
                { type: 'sendBye', params: { reason: 'hangup' } },
                { type: 'endCall', params: { reason: 'hangup', endedBy: 'local' } },
              ],
            },
            'REMOTE.BYE': {
              guard: 'isForCurrentSession',
              target: '#call.ended',
              actions: {
                type: 'endCall',
                params: ({ event }) => ({ reason: 'remote-hangup', endedBy: 'remote', remoteReason: event.message.reason }),
              },
            },
            // Our accept crossed the caller's cancel (its ring timeout or CANCEL): it gave up first.
            'REMOTE.CANCEL': {
              guard: 'isForCurrentSession',
              target: '#call.ended',
              actions: {
                type: 'endCall',
                params: ({ event }) => ({ reason: 'missed', endedBy: 'remote', remoteReason: event.message.reason }),
              },
            },
            'REMOTE.INVITE': { guard: not('isForCurrentSession'), actions: { type: 'replyBusy', params: ({ event }) => event.message } },
          },
        },
      },
    },
    answeringCrossedInvite: {
      description: 'Our invite lost to a crossing one: the peer we started as the caller is closed, and one starts as the callee of their call.',
      always: { target: 'peerRunning.active' },
    },
    ended: {
      description: 'The last call is over (see reason); CALL or a remote invite starts a new one.',
      on: {
        CALL: {
          target: 'peerRunning.outgoing',
          actions: [{ type: 'startOutgoingCall', params: ({ event }) => ({ media: event.media }) }, 'sendInvite'],
        },
        'REMOTE.INVITE': [
          // A late duplicate of the invite of the call that just ended.
          { guard: 'isForCurrentSession' },
          { guard: 'isLocalUserBusy', actions: { type: 'replyBusy', params: ({ event }) => event.message } },
          { target: 'incoming', actions: { type: 'startIncomingCall', params: ({ event }) => event.message } },
        ],
      },
    },
  },
});
