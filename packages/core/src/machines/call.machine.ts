import { Observable, filter, map } from 'rxjs';
import { assign, enqueueActions, fromEventObservable, setup, stateIn } from 'xstate';
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
// Group-call membership messages on the same port are neither call control nor negotiation: not ours.
import { isCallControlMessage, isNegotiationMessage } from '../protocol/peer-message.js';
import { peerMachine } from './peer.machine.js';
import type { PeerFailureReason, PeerInput, PeerOutput } from './peer.types.js';

// Session control between a caller and a callee over ONE signaling port (one remote peer):
// idle -> outgoing | incoming (ringing) -> active -> ended, and again from ended.
// The call machine reads only call-control messages (invite, accept, reject, cancel, bye); the
// peer machine it runs reads descriptions and candidates from the same port.
//
// The caller's peer starts with the invite (`peerRunning.outgoing`) and offers at once
// (`offerOnStart`): its offer and candidates follow the invite while it rings, so connecting
// does not wait for a round trip after accept. The callee holds them while it rings
// (`incoming`) and hands them to its peer on accept; a declined, cancelled or unanswered call
// closes the caller's peer, and nothing reaches a callee that never accepted. With
// `prepareWhileRinging` the callee's peer runs while it rings (`peerRunning.incoming`) and
// its answer and candidates wait for accept. PREPARE starts the caller's peer before CALL
// (`peerRunning.prepared`): its connection is made, its offer set and its candidates gathered
// while nothing is sent; CALL sends the invite with all of it right behind. The same peer runs
// on into `active`.

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
   * Called when this side's peer starts (the caller's on CALL, the callee's on ACCEPT, or when
   * its call rings with `prepareWhileRinging`): the app builds its RTCPeerConnection, adds
   * tracks, wraps it. The peer closes it when the call ends.
   */
  readonly createRtc: () => RtcPort;
  readonly peer?: CallPeerOptions;
  /** Media asked for in invites when `CALL` names none. */
  readonly media?: InviteMedia;
  /** Defaults to `randomSessionId`. Ids must be unique per call and match the protocol's pattern. */
  readonly createSessionId?: () => string;
  /** When true, an incoming invite is answered `reject{busy}` at once (e.g. on another call). */
  readonly isBusy?: () => boolean;
  /**
   * The callee builds its connection (`createRtc`) and applies the caller's offer while the
   * call rings, so accepting only releases an answer that is ready, with its candidates
   * gathered (default false). The answer and the candidates are held until ACCEPT and dropped
   * if the call is declined, but the connection's ICE agent starts its connectivity checks
   * towards the caller's candidates as soon as the offer is applied: the caller's side sees
   * the callee's addresses (host, server-reflexive, relayed, as ICE peer-reflexive candidates)
   * before the person accepted, or even if they never do, and `createRtc` opens what it opens
   * (e.g. the camera) at the ring. Leave it off unless both sides trust each other that far.
   */
  readonly prepareWhileRinging?: boolean;
}

/** How the last call ended (`ended`); the fields that do not apply are null. */
export interface CallEnd {
  readonly reason: CallEndReason;
  readonly endedBy: CallEndedBy;
  /** The reason the remote side gave in its reject, cancel or bye. */
  readonly remoteReason: RemoteEndReason | null;
  /** Human-readable detail, e.g. why the peer connection failed. */
  readonly detail: string | null;
  /** Why the peer connection failed, when the call ended `connection-failed` because of it. */
  readonly connectionFailure: PeerFailureReason | null;
}

/**
 * Our peer's outgoing negotiation messages before the remote may see them (a prepared call
 * before CALL, a ringing callee's with `prepareWhileRinging`): held in order, sent on
 * `release()`; once released, sent at once.
 */
export interface HeldSignaling {
  /** The port our peer uses while what it sends is held. */
  readonly port: SignalingPort;
  /** Sends what was held, then lets every later message through. */
  release(): void;
}

/** The context of `callMachine`: the current session, role, peer and how the call ended. */
export interface CallContext {
  readonly signaling: SignalingPort;
  readonly createRtc: () => RtcPort;
  readonly peerOptions: CallPeerOptions;
  readonly defaultMedia: InviteMedia | null;
  readonly createSessionId: () => string;
  readonly isBusy: () => boolean;
  readonly prepareWhileRinging: boolean;
  /** Id of the current (or last) call; messages of any other session are dropped. */
  readonly session: string | null;
  /** The caller is the impolite peer, the callee the polite one. */
  readonly role: CallRole | null;
  /** Media asked for by the caller (ours when calling, the remote's when called). */
  readonly media: InviteMedia | null;
  /** How the last call ended; null until it does, and again when a new call starts. */
  readonly end: CallEnd | null;
  /** The caller's offer and candidates that arrived while the call rang here, for our peer. */
  readonly earlySignals: readonly NegotiationMessage[];
  /**
   * What our peer sends before the remote may see it, until released: the ringing callee's answer
   * and candidates (`prepareWhileRinging`) until ACCEPT, a prepared caller's offer and candidates
   * until CALL.
   */
  readonly heldSignaling: HeldSignaling | null;
}

/** At most this many early offer/candidate messages are held while a call rings; later ones are dropped. */
export const MAX_EARLY_SIGNALS = 256;

/** What the user (or app) asks for. */
export type CallUserEvent =
  | { readonly type: 'CALL'; readonly media?: InviteMedia }
  /** Starts the next call's peer as the caller's, sending nothing until CALL (`idle`, `ended`). */
  | { readonly type: 'PREPARE' }
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

/** The call-control message a side sends as its call ends, if any. */
type EndMessage =
  | { readonly kind: 'reject'; readonly reason: RejectReason }
  | { readonly kind: 'cancel'; readonly reason: CancelReason }
  | { readonly kind: 'bye'; readonly reason: ByeReason };

/** How a call ends: the end to record and the message that tells the remote, if any. */
interface CallEnding {
  readonly end: CallEnd;
  readonly tell?: EndMessage;
}

/** How the call's peer stopped: it reached a final state, or it threw. */
type PeerOutcome = { readonly output: PeerOutput } | { readonly error: unknown };

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


/**
 * Negotiation messages no peer of ours reads yet, as events: while a call rings here, those of
 * its session (the caller's early offer and candidates); while our invite rings, those of other
 * sessions (a crossing invite's offer can be handled before that invite is, and the callee peer
 * we then start must still read it).
 */
const earlySignals = fromEventObservable<
  CallEarlySignalEvent,
  { readonly signaling: SignalingPort; readonly session: string; readonly of: 'this-session' | 'other-sessions' }
>(({ input }) =>
  input.signaling.messages$.pipe(
    filter(
      (message): message is NegotiationMessage =>
        isNegotiationMessage(message) && (message.session === input.session) === (input.of === 'this-session'),
    ),
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

/** A call's end, the fields not given null. */
function endOf(reason: CallEndReason, endedBy: CallEndedBy, more: Partial<Omit<CallEnd, 'reason' | 'endedBy'>> = {}): CallEnd {
  return { reason, endedBy, remoteReason: null, detail: null, connectionFailure: null, ...more };
}

function endOfRemoteReject(reason: RejectReason): CallEnd {
  const byReason = { declined: 'rejected', busy: 'busy', unavailable: 'unavailable' } as const;
  return endOf(byReason[reason], 'remote', { remoteReason: reason });
}

/** A peer that failed, threw or closed while the call rang: the connection could not be made. */
function failedConnection(outcome: PeerOutcome): CallEnd {
  if ('error' in outcome) {
    return endOf('connection-failed', 'local', { detail: outcome.error instanceof Error ? outcome.error.message : String(outcome.error) });
  }
  const { reason, detail } = outcome.output;
  return endOf('connection-failed', 'local', { detail: detail ?? reason, connectionFailure: reason !== 'closed' ? reason : null });
}

/**
 * How a call ends when its peer stops on its own. Prepared, nobody was told anything and nobody
 * is; ringing, the caller withdraws its invite and the callee (prepared) declines as
 * unavailable; in an active call, a peer that closed (its RTC port was closed) is a hang-up, one
 * that failed or threw says so in its bye.
 */
function endingForPeer(outcome: PeerOutcome, ringing: 'prepared' | 'outgoing' | 'incoming' | null): CallEnding {
  if (ringing === 'prepared') return { end: failedConnection(outcome) };
  if (ringing === 'outgoing') return { end: failedConnection(outcome), tell: { kind: 'cancel', reason: 'cancelled' } };
  if (ringing === 'incoming') return { end: failedConnection(outcome), tell: { kind: 'reject', reason: 'unavailable' } };
  if ('error' in outcome) return { end: failedConnection(outcome), tell: { kind: 'bye', reason: 'error' } };
  if (outcome.output.reason === 'closed') return { end: endOf('hangup', 'local'), tell: { kind: 'bye', reason: 'hangup' } };
  return { end: failedConnection(outcome), tell: { kind: 'bye', reason: 'connection-failed' } };
}

/** Our peer's outgoing messages, held until the remote may see them (see `HeldSignaling`). */
function holdOutgoing(signaling: SignalingPort): HeldSignaling {
  let held: PeerMessage[] | null = [];
  return {
    port: {
      messages$: signaling.messages$,
      send: (message) => {
        if (held === null) signaling.send(message);
        else if (held.length < MAX_EARLY_SIGNALS) held.push(message);
        else throw new RangeError(`call machine: more than ${MAX_EARLY_SIGNALS} messages held before the remote may see them`);
      },
    },
    release: () => {
      const messages = held ?? [];
      held = null;
      for (const message of messages) signaling.send(message);
    },
  };
}

function sessionOf(context: CallContext): string {
  if (context.session === null) throw new Error('call machine: no current session');
  return context.session;
}

/** A call of ours (CALL or PREPARE): a new session, as the caller, nothing left of the last call. */
function newCallOfOurs(context: CallContext, media: InviteMedia | null, heldSignaling: HeldSignaling | null) {
  return { session: context.createSessionId(), role: 'caller' as const, media, earlySignals: [], heldSignaling, end: null };
}

/** The media our invite asks for: what CALL names, else the line's default. */
function mediaOfCall(context: CallContext, requested: InviteMedia | undefined): InviteMedia | null {
  return requested ?? context.defaultMedia;
}

/** Sends the reject, cancel or bye of an ending (none when nobody is left to tell). */
function tellEnd(context: CallContext, tell: EndMessage | undefined): void {
  if (tell !== undefined) context.signaling.send({ ...tell, session: sessionOf(context) });
}

const callSetup = setup({
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
    startOutgoingCall: assign(({ context }, params: { readonly media: InviteMedia | undefined }) =>
      newCallOfOurs(context, mediaOfCall(context, params.media), null),
    ),
    /** PREPARE: the next call's session and role now; its media when CALL names them. */
    startPreparedCall: assign(({ context }) => newCallOfOurs(context, null, holdOutgoing(context.signaling))),
    forgetPreparedCall: assign({ session: null, role: null, heldSignaling: null }),
    ringPreparedCall: assign(({ context }, params: { readonly media: InviteMedia | undefined }) => ({
      media: mediaOfCall(context, params.media),
    })),
    /** Also used when a crossing invite wins: this side then becomes the callee of that call. */
    startIncomingCall: assign(({ context }, invite: RemoteInvite) => ({
      session: invite.session,
      role: 'callee' as const,
      media: invite.media ?? null,
      // Held while our own invite rang: what of this call came before its invite was handled.
      earlySignals: context.earlySignals.filter((message) => message.session === invite.session),
      heldSignaling: null,
      end: null,
    })),
    holdOutgoingSignals: assign({ heldSignaling: ({ context }) => holdOutgoing(context.signaling) }),
    releaseOutgoingSignals: ({ context }) => context.heldSignaling?.release(),
    holdEarlySignal: assign(({ context }, message: NegotiationMessage) =>
      context.earlySignals.length < MAX_EARLY_SIGNALS ? { earlySignals: [...context.earlySignals, message] } : {},
    ),
    /** Records how the call ended and tells the remote side, if the ending says so. */
    endCall: enqueueActions(({ context, enqueue }, ending: CallEnding) => {
      enqueue(() => tellEnd(context, ending.tell));
      enqueue.assign({ end: ending.end });
    }),
    /** The peer stopped on its own: the ending depends on whether the call still rings. */
    endCallForPeer: enqueueActions(({ context, enqueue, check }, outcome: PeerOutcome) => {
      // xstate types `check` without this machine's states; stateIn reads the snapshot at run time.
      const isIn = (state: 'prepared' | 'outgoing' | 'incoming'): boolean =>
        check(stateIn(`#call.peerRunning.${state}`) as Parameters<typeof check>[0]);
      const ringing = (['prepared', 'outgoing', 'incoming'] as const).find(isIn) ?? null;
      const ending = endingForPeer(outcome, ringing);
      enqueue(() => tellEnd(context, ending.tell));
      enqueue.assign({ end: ending.end });
    }),
    sendInvite: ({ context }) => {
      const session = sessionOf(context);
      context.signaling.send(context.media ? { kind: 'invite', session, media: context.media } : { kind: 'invite', session });
    },
    sendAccept: ({ context }) => context.signaling.send({ kind: 'accept', session: sessionOf(context) }),
    /** Answers an invite of another session without touching the current call. */
    replyBusy: ({ context }, invite: RemoteInvite) =>
      context.signaling.send({ kind: 'reject', session: invite.session, reason: 'busy' }),
  },
  guards: {
    isForCurrentSession: ({ context, event }) => 'message' in event && event.message.session === context.session,
    isForAnotherSession: ({ context, event }) => 'message' in event && event.message.session !== context.session,
    isLocalUserBusy: ({ context }) => context.isBusy(),
    isPreparedWhileRinging: ({ context }) => context.prepareWhileRinging,
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
  },
  delays: {
    /** How long an outgoing invite rings unanswered before it is cancelled. */
    ringTimeout: 30_000,
    /** How long an incoming invite rings unanswered before it is rejected as unavailable. */
    incomingTimeout: 30_000,
  },
});

// Transitions shared by states (one definition each).

type EventOf<T extends CallEvent['type']> = Extract<CallEvent, { readonly type: T }>;

/** `idle` and `ended`: CALL rings the remote peer. */
const callOnRequest = {
  target: '#call.peerRunning.outgoing',
  actions: [{ type: 'startOutgoingCall', params: ({ event }: { event: EventOf<'CALL'> }) => ({ media: event.media }) }, 'sendInvite'],
} as const;

/** `idle` and `ended`: PREPARE starts the next call's peer, as the caller's, sending nothing. */
const prepareOnRequest = { target: '#call.peerRunning.prepared', actions: 'startPreparedCall' } as const;

/** `idle`, `prepared` and `ended`: a remote invite rings here, unless the app is busy. */
const ringOnInvite = [
  { guard: 'isLocalUserBusy', actions: { type: 'replyBusy', params: ({ event }: { event: EventOf<'REMOTE.INVITE'> }) => event.message } },
  { target: '#call.inviteArrived', actions: { type: 'startIncomingCall', params: ({ event }: { event: EventOf<'REMOTE.INVITE'> }) => event.message } },
] as const;

/** A remote cancel of the current call: it rang here and the caller gave up first. */
const missedOnCancel = {
  guard: 'isForCurrentSession',
  target: '#call.ended',
  actions: {
    type: 'endCall',
    params: ({ event }: { event: EventOf<'REMOTE.CANCEL'> }) => ({ end: endOf('missed', 'remote', { remoteReason: event.message.reason }) }),
  },
} as const;

/** While a call is on, another session's invite is answered busy. */
const busyOnOtherInvite = { guard: 'isForAnotherSession', actions: { type: 'replyBusy', params: ({ event }: { event: EventOf<'REMOTE.INVITE'> }) => event.message } } as const;

/** `incoming` and `peerRunning.incoming`: the call rings here until the user answers. */
const ringingHere = {
  after: {
    incomingTimeout: {
      target: '#call.ended',
      actions: { type: 'endCall', params: { end: endOf('missed', 'local'), tell: { kind: 'reject', reason: 'unavailable' } } },
    },
  },
  on: {
    REJECT: {
      target: '#call.ended',
      actions: {
        type: 'endCall',
        params: ({ event }: { event: EventOf<'REJECT'> }): CallEnding => {
          const reason = event.reason ?? 'declined';
          return { end: endOf(reason, 'local'), tell: { kind: 'reject', reason } };
        },
      },
    },
    'REMOTE.CANCEL': missedOnCancel,
    'REMOTE.LEFT': {
      target: '#call.ended',
      actions: { type: 'endCall', params: { end: endOf('missed', 'remote', { detail: 'the caller left the room' }) } },
    },
    'REMOTE.INVITE': busyOnOtherInvite,
  },
} as const;

/**
 * Call control (invite, ringing, accept, reject or busy, cancel, hang-up, timeouts, crossing
 * invites) over one signaling port; each call runs a `peerMachine`, the caller impolite and the
 * callee polite. `createCall` wraps it for apps; drawn in docs/machines.md.
 */
export const callMachine = callSetup.createMachine({
  id: 'call',
  context: ({ input }) => ({
    signaling: input.signaling,
    createRtc: input.createRtc,
    peerOptions: input.peer ?? {},
    defaultMedia: input.media ?? null,
    createSessionId: input.createSessionId ?? (() => randomSessionId()),
    isBusy: input.isBusy ?? (() => false),
    prepareWhileRinging: input.prepareWhileRinging ?? false,
    session: null,
    role: null,
    media: null,
    end: null,
    earlySignals: [],
    heldSignaling: null,
  }),
  invoke: { id: 'remoteCallControl', src: 'remoteCallControl', input: ({ context }) => ({ signaling: context.signaling }) },
  initial: 'idle',
  states: {
    idle: {
      description: 'No call yet. CALL starts one, PREPARE prepares one; a remote invite rings, unless the app is busy.',
      on: { CALL: callOnRequest, PREPARE: prepareOnRequest, 'REMOTE.INVITE': ringOnInvite },
    },
    incoming: {
      description: 'A remote invite is ringing here; waiting for the user to ACCEPT or REJECT. The caller’s early offer and candidates are held for our peer.',
      invoke: {
        id: 'earlySignals',
        src: 'earlySignals',
        input: ({ context }) => ({ signaling: context.signaling, session: sessionOf(context), of: 'this-session' as const }),
      },
      after: ringingHere.after,
      on: {
        ...ringingHere.on,
        'REMOTE.EARLY_SIGNAL': { actions: { type: 'holdEarlySignal', params: ({ event }) => event.message } },
        ACCEPT: { target: 'peerRunning.active', actions: 'sendAccept' },
      },
    },
    peerRunning: {
      description: 'This side’s peer connection runs: the caller’s from its invite on (it offers while the invite rings) or from PREPARE, the callee’s from ACCEPT, or from the ring with prepareWhileRinging. Caller impolite, callee polite.',
      invoke: {
        id: 'peer',
        src: 'peer',
        input: ({ context }) => ({
          ...context.peerOptions,
          rtc: context.createRtc(),
          // The callee's peer reads the caller's offer and candidates that came while it rang
          // (or, prepared while ringing, reads them live and holds what it sends until accept).
          signaling: context.heldSignaling?.port ?? withEarlySignals(context.signaling, context.earlySignals),
          polite: context.role === 'callee',
          // The caller offers at once; the callee's tracks, added in createRtc, wait for the
          // caller's offer instead of colliding with it.
          offerOnStart: context.role === 'caller',
          awaitRemoteOffer: context.role === 'callee',
          session: sessionOf(context),
        }),
        onDone: { target: 'ended', actions: { type: 'endCallForPeer', params: ({ event }) => ({ output: event.output }) } },
        onError: { target: 'ended', actions: { type: 'endCallForPeer', params: ({ event }) => ({ error: event.error }) } },
      },
      initial: 'active',
      states: {
        prepared: {
          description: 'PREPARE: our peer makes its connection and offer and gathers candidates ahead of the call; nothing is sent until CALL. A remote invite or CANCEL closes it unsent.',
          on: {
            CALL: {
              target: 'outgoing',
              actions: [{ type: 'ringPreparedCall', params: ({ event }) => ({ media: event.media }) }, 'sendInvite', 'releaseOutgoingSignals'],
            },
            CANCEL: { target: '#call.idle', actions: 'forgetPreparedCall' },
            'REMOTE.INVITE': ringOnInvite,
          },
        },
        outgoing: {
          description: 'Our invite is ringing at the remote peer, our offer right behind it; waiting for accept or reject. Negotiation messages of other sessions are held (a crossing invite that wins).',
          invoke: {
            id: 'earlySignals',
            src: 'earlySignals',
            input: ({ context }) => ({ signaling: context.signaling, session: sessionOf(context), of: 'other-sessions' as const }),
          },
          after: {
            ringTimeout: {
              target: '#call.ended',
              actions: { type: 'endCall', params: { end: endOf('no-answer', 'local'), tell: { kind: 'cancel', reason: 'timeout' } } },
            },
          },
          on: {
            'REMOTE.EARLY_SIGNAL': { actions: { type: 'holdEarlySignal', params: ({ event }) => event.message } },
            'REMOTE.ACCEPT': { guard: 'isForCurrentSession', target: 'active' },
            'REMOTE.REJECT': {
              guard: 'isForCurrentSession',
              target: '#call.ended',
              actions: { type: 'endCall', params: ({ event }) => ({ end: endOfRemoteReject(event.message.reason) }) },
            },
            'REMOTE.INVITE': {
              guard: 'doesRemoteInviteWin',
              target: '#call.answeringCrossedInvite',
              actions: [{ type: 'startIncomingCall', params: ({ event }) => event.message }, 'sendAccept'],
            },
            // Nobody is left to answer: no cancel is sent (the server would refuse it as unknown-peer).
            'REMOTE.LEFT': {
              target: '#call.ended',
              actions: { type: 'endCall', params: { end: endOf('unavailable', 'remote', { detail: 'the callee left the room' }) } },
            },
            CANCEL: {
              target: '#call.ended',
              actions: { type: 'endCall', params: { end: endOf('cancelled', 'local'), tell: { kind: 'cancel', reason: 'cancelled' } } },
            },
          },
        },
        incoming: {
          description: 'prepareWhileRinging: a remote invite rings here while our peer applies the caller’s offer; its answer and candidates wait for ACCEPT.',
          after: ringingHere.after,
          on: { ...ringingHere.on, ACCEPT: { target: 'active', actions: ['sendAccept', 'releaseOutgoingSignals'] } },
        },
        active: {
          // REMOTE.LEFT is not handled here: media can flow without signaling, and a remote that is
          // really gone is noticed by the connection (it fails, and the call ends connection-failed).
          description: 'Both sides agreed; the peer connection runs on.',
          on: {
            HANGUP: {
              target: '#call.ended',
              actions: { type: 'endCall', params: { end: endOf('hangup', 'local'), tell: { kind: 'bye', reason: 'hangup' } } },
            },
            'REMOTE.BYE': {
              guard: 'isForCurrentSession',
              target: '#call.ended',
              actions: { type: 'endCall', params: ({ event }) => ({ end: endOf('remote-hangup', 'remote', { remoteReason: event.message.reason }) }) },
            },
            // Our accept crossed the caller's cancel (its ring timeout or CANCEL): it gave up first.
            'REMOTE.CANCEL': missedOnCancel,
            'REMOTE.INVITE': busyOnOtherInvite,
          },
        },
      },
    },
    inviteArrived: {
      description: 'A remote invite rings here (from a prepared line, whose peer was closed unsent on the way): with prepareWhileRinging our peer starts at once, otherwise the caller’s early signals wait for ACCEPT.',
      always: [
        { guard: 'isPreparedWhileRinging', target: 'peerRunning.incoming', actions: 'holdOutgoingSignals' },
        { target: 'incoming' },
      ],
    },
    answeringCrossedInvite: {
      description: 'Our invite lost to a crossing one: the peer we started as the caller is closed, and one starts as the callee of their call.',
      always: { target: 'peerRunning.active' },
    },
    ended: {
      description: 'The last call is over (see end); CALL or a remote invite starts a new one, PREPARE prepares one.',
      on: {
        CALL: callOnRequest,
        PREPARE: prepareOnRequest,
        // A late duplicate of the invite of the call that just ended is ignored.
        'REMOTE.INVITE': [{ guard: 'isForCurrentSession' }, ...ringOnInvite],
      },
    },
  },
});
