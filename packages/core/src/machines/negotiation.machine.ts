import { and, assign, not, sendParent, setup } from 'xstate';
import type { ActorRef, Snapshot } from 'xstate';
import type { IceCandidate, RtcPort, SessionDescription } from '../ports/rtc.js';
import type { WireDescription } from '../protocol/peer-message.js';
import { iceUfragsOf, remoteCandidateFate } from '../sdp.js';
import type { RemoteCandidateFate } from '../sdp.js';

// Perfect negotiation (W3C webrtc-pc §10.7 "Perfect Negotiation Example") as a statechart.
//
// The W3C example keeps three flags (makingOffer, ignoreOffer, isSettingRemoteAnswerPending)
// and lets async message handlers interleave. Here every remote description and candidate goes
// through one ordered inbox. Descriptions are taken only in a rest state (`stable`,
// `awaitingAnswer`, or `awaitingFirstOffer` for a callee that lets the caller offer first), so
// `makingOffer` and `isSettingRemoteAnswerPending` become states instead of flags:
//   - an offer that arrives while we make ours waits until our offer is applied, and then
//     collides in `awaitingAnswer`, exactly where the example's `makingOffer` would say so;
//   - an offer that arrives while an answer is being applied waits until `stable`, so it is
//     not a collision (the example's `isSettingRemoteAnswerPending`).
// Only `ignoreOffer` remains, in context, because it outlives the state that sets it: it tells
// which candidates belong to the offer we ignored.
// A candidate that fits goes to the engine at once whenever the remote description is not
// changing (a rest state, or while answering), straight from its event when nothing is queued
// before it, else from the head of the inbox: addIceCandidate is chained
// after the calls before it (webrtc-pc §4.4.1.2, §4.4.1.6), so it needs no state of its own and
// no turn of the machine; only a refusal comes back (RTC.CANDIDATE_FAILED), as in the W3C
// example, whose message handler does not wait for its candidates either.
//
// The peer machine runs this machine as one of its parallel regions (peer.machine.ts): the
// actions that report to a parent (`sendParent` here) are carried out there directly. RTC calls
// are not actors: an operation state's entry starts its call (`runRtcOperation`) and the call's
// outcome comes back as one event, RTC.OPERATION_DONE or RTC.OPERATION_FAILED.

/** What the parent relays to the remote peer or reports to the app. */
export type NegotiationParentEvent =
  | { readonly type: 'NEGOTIATION.LOCAL_DESCRIPTION'; readonly description: WireDescription }
  | { readonly type: 'NEGOTIATION.ERROR'; readonly operation: NegotiationOperation; readonly error: Error }
  | { readonly type: 'NEGOTIATION.NOTICE'; readonly notice: NegotiationNotice; readonly detail: string }
  | { readonly type: 'NEGOTIATION.COMPLETED'; readonly round: number; readonly iceRestart: boolean };

/** Things the machine chose to ignore, reported for debugging (never errors). */
export type NegotiationNotice =
  | 'ignored-colliding-offer'
  | 'rolled-back-for-remote-offer'
  | 'stale-answer'
  | 'duplicate-description'
  | 'dropped-candidate'
  | 'candidate-not-applied'
  | 'sent-without-all-candidates';

/** The input of `negotiationMachine`: politeness, trickle or not, and the first-offer options. */
export interface NegotiationInput {
  readonly rtc: RtcPort;
  /** The polite peer yields (rolls back its own offer) when offers collide. */
  readonly polite: boolean;
  /** Trickle ICE (default true); otherwise descriptions are sent once gathering completes. */
  readonly trickle?: boolean;
  /**
   * This side answers the first round (a callee: the caller offers once the call is accepted).
   * Its own `negotiationneeded` (tracks added before the caller's offer arrives) then waits
   * until that offer is applied, instead of colliding with it: the call starts without glare
   * and without a rollback. The need is not lost: once the first round is done the engine fires
   * `negotiationneeded` again if the answer did not meet it (webrtc-pc §4.7.3), and only then
   * does this side offer. If no offer comes within `firstOfferTimeout`, it offers after all.
   */
  readonly awaitRemoteOffer?: boolean;
  /**
   * This side makes an offer at once, without waiting for the engine's `negotiationneeded` (a
   * caller knows at call() that it will offer). A `negotiationneeded` that arrives while that
   * offer is being made is met by it (webrtc-pc §4.7.3: back in stable, the engine fires again
   * if the offer did not meet everything). Takes precedence over `awaitRemoteOffer`.
   */
  readonly offerOnStart?: boolean;
}

/**
 * The RTC calls the negotiation makes (`rollback` is setLocalDescription({ type: 'rollback' })):
 * one at a time, but for the candidates added meanwhile (see RTC.CANDIDATE_FAILED).
 */
export type NegotiationOperation =
  | 'createOffer'
  | 'createAnswer'
  | 'setLocalDescription'
  | 'setRemoteDescription'
  | 'rollback'
  | 'addIceCandidate';

/** The RTC calls an operation state starts and waits for (all but addIceCandidate). */
type AwaitedOperation = Exclude<NegotiationOperation, 'addIceCandidate'>;

/** How an RTC call the negotiation started ended (see `runRtcOperation`). */
export type RtcOperationEvent =
  | { readonly type: 'RTC.OPERATION_DONE'; readonly operation: NegotiationOperation; readonly description?: SessionDescription }
  | { readonly type: 'RTC.OPERATION_FAILED'; readonly operation: NegotiationOperation; readonly error: Error };

/**
 * The engine refused a remote candidate the negotiation added (`addCandidate`); it was added
 * while the negotiation ignored a colliding offer, or not (W3C §10.7 swallows only those errors).
 */
export type CandidateFailedEvent = {
  readonly type: 'RTC.CANDIDATE_FAILED';
  readonly operation: 'addIceCandidate';
  readonly error: Error;
  readonly whileIgnoringOffer: boolean;
};

/**
 * Every event `negotiationMachine` accepts: negotiation needed, remote descriptions and
 * candidates, ICE restart requests and the results of its own RTC calls.
 */
export type NegotiationEvent =
  /** The RTC port fired `negotiationneeded` (webrtc-pc §4.7.3). */
  | { readonly type: 'RTC.NEGOTIATION_NEEDED' }
  | RtcOperationEvent
  | CandidateFailedEvent
  | { readonly type: 'REMOTE.DESCRIPTION'; readonly description: WireDescription }
  /** `null` is end-of-candidates. */
  | { readonly type: 'REMOTE.CANDIDATE'; readonly candidate: IceCandidate | null }
  /** Ask for an ICE restart: it rides on the next offer we make (JSEP §5.2.1 IceRestart). */
  | { readonly type: 'RESTART_ICE' }
  /** Local ICE gathering finished (needed only without trickle). */
  | { readonly type: 'ICE.GATHERING_COMPLETE' }
  | { readonly type: 'CLOSE' };

/** A remote message waiting in the inbox, in arrival order. */
export type RemoteSignal =
  | { readonly kind: 'description'; readonly description: WireDescription }
  | { readonly kind: 'candidate'; readonly candidate: IceCandidate | null };

/** The context of `negotiationMachine`: its remote-signal inbox, queued candidates and round counters. */
export interface NegotiationContext {
  readonly rtc: RtcPort;
  readonly polite: boolean;
  readonly trickle: boolean;
  /** Remote descriptions and candidates not yet taken, oldest first. */
  readonly inbox: readonly RemoteSignal[];
  /** Candidates that arrived before the remote description they belong to (bounded): taken
   * again right after the next remote description is applied. */
  readonly earlyCandidates: readonly RemoteSignal[];
  /** The remote description being applied now. */
  readonly current: RemoteSignal | null;
  /** The offer or answer we created and are applying. */
  readonly localDescription: SessionDescription | null;
  /** A `negotiationneeded` not yet served by an offer; never lost while not stable. */
  readonly negotiationNeeded: boolean;
  /** Input: the first round waits for the remote's offer (`awaitingFirstOffer` state). */
  readonly awaitRemoteOffer: boolean;
  /** Input: the first offer is made at once (see NegotiationInput). */
  readonly offerOnStart: boolean;
  /** An ICE restart was asked for and no answered offer has carried it yet. */
  readonly iceRestartWanted: boolean;
  /** The offer in flight carries an ICE restart. */
  readonly offerRestartsIce: boolean;
  /** W3C `ignoreOffer`: we ignored the last remote offer, and its candidates with it. */
  readonly ignoreOffer: boolean;
  /** SDP of remote descriptions already applied (bounded), to drop duplicates. */
  readonly appliedRemoteSdps: readonly string[];
  /** ICE ufrags of remote descriptions applied so far (bounded): their candidates are stale
   * once a restart replaced them. */
  readonly seenRemoteUfrags: readonly string[];
  /** Completed offer/answer rounds. */
  readonly negotiationRounds: number;
}

const APPLIED_SDP_MEMORY = 16;
const UFRAG_MEMORY = 32;
const HELD_CANDIDATES_LIMIT = 64;

const toError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));

/** The empty list every list of a new negotiation starts as (shared: lists are never mutated). */
const NOTHING: readonly never[] = Object.freeze([]);

/** The context a negotiation starts with (the peer machine starts its region with it too). */
export function initialNegotiationContext(input: NegotiationInput): NegotiationContext {
  return {
    rtc: input.rtc,
    polite: input.polite,
    trickle: input.trickle ?? true,
    inbox: NOTHING,
    earlyCandidates: NOTHING,
    current: null,
    localDescription: null,
    negotiationNeeded: false,
    awaitRemoteOffer: input.awaitRemoteOffer ?? false,
    offerOnStart: input.offerOnStart ?? false,
    iceRestartWanted: false,
    offerRestartsIce: false,
    ignoreOffer: false,
    appliedRemoteSdps: NOTHING,
    seenRemoteUfrags: NOTHING,
    negotiationRounds: 0,
  };
}

/** The RTC call behind each operation, with what it takes from the context. */
function callRtc(context: NegotiationContext, operation: AwaitedOperation): Promise<SessionDescription | void> {
  const { rtc, current } = context;
  switch (operation) {
    case 'createOffer':
      return rtc.createOffer(context.offerRestartsIce ? { iceRestart: true } : undefined);
    case 'createAnswer':
      return rtc.createAnswer();
    case 'setLocalDescription':
      return rtc.setLocalDescription(context.localDescription ?? { type: 'offer' });
    case 'rollback':
      return rtc.setLocalDescription({ type: 'rollback' });
    case 'setRemoteDescription':
      return rtc.setRemoteDescription(current?.kind === 'description' ? current.description : { type: 'answer' });
  }
}

/**
 * Starts one RTC call and sends its outcome to `self` as one event: no actor per call. Outcomes
 * that arrive after the actor ended are dropped (the port was closed with it).
 */
function runRtcOperation(context: NegotiationContext, self: ActorRef<Snapshot<unknown>, RtcOperationEvent>, operation: AwaitedOperation): void {
  const deliver = (event: RtcOperationEvent): void => {
    if (self.getSnapshot().status === 'active') self.send(event);
  };
  callRtc(context, operation).then(
    (description) => deliver(description ? { type: 'RTC.OPERATION_DONE', operation, description } : { type: 'RTC.OPERATION_DONE', operation }),
    (error: unknown) => deliver({ type: 'RTC.OPERATION_FAILED', operation, error: toError(error) }),
  );
}

/**
 * Adds a remote candidate that fits the remote description without waiting for it: the engine
 * chains it after the calls before it, and a refusal comes back as RTC.CANDIDATE_FAILED.
 * Refusals after the actor ended are dropped.
 */
function addCandidate(context: NegotiationContext, self: ActorRef<Snapshot<unknown>, CandidateFailedEvent>, candidate: IceCandidate | null): void {
  const whileIgnoringOffer = context.ignoreOffer;
  context.rtc.addIceCandidate(candidate).catch((error: unknown) => {
    if (self.getSnapshot().status === 'active') self.send({ type: 'RTC.CANDIDATE_FAILED', operation: 'addIceCandidate', error: toError(error), whileIgnoringOffer });
  });
}

/** An SDP string a description must carry (every created offer and answer has one). */
function sdpOf(description: SessionDescription | null): string {
  return description?.sdp ?? '';
}

/**
 * The offer or answer to send: as created (trickle), or as the engine now holds it, with the
 * gathered candidates in it (non-trickle).
 */
export function localDescriptionToSend(context: NegotiationContext): WireDescription {
  const description = context.trickle ? context.localDescription : (context.rtc.localDescription ?? context.localDescription);
  return { type: description?.type === 'offer' ? 'offer' : 'answer', sdp: sdpOf(description) };
}

/** The round just completed, as reported: its number and whether our offer restarted ICE. */
export function completedRound(context: NegotiationContext, asOfferer: boolean): { readonly round: number; readonly iceRestart: boolean } {
  return { round: context.negotiationRounds, iceRestart: asOfferer && context.offerRestartsIce };
}

function nextSignal(context: NegotiationContext): RemoteSignal | undefined {
  return context.inbox[0];
}

/**
 * The fate last decided, and what it was decided on: the candidate guards of a rest state ask up
 * to five times in a row about the same candidate, and each answer reads the remote SDP.
 */
let lastFate: { readonly signal: RemoteSignal; readonly remoteSdp: string | null; readonly seenUfrags: readonly string[]; readonly fate: RemoteCandidateFate } | null = null;

/** webrtc-pc §4.4.1.6: what to do with a remote candidate, given the remote description now. */
function candidateFate(context: NegotiationContext, candidate: IceCandidate | null): RemoteCandidateFate {
  return remoteCandidateFate(candidate, context.rtc.remoteDescription?.sdp ?? null, context.seenRemoteUfrags);
}

function nextCandidateFate(context: NegotiationContext): RemoteCandidateFate | null {
  const next = nextSignal(context);
  if (next?.kind !== 'candidate') return null;
  const remoteSdp = context.rtc.remoteDescription?.sdp ?? null;
  const seenUfrags = context.seenRemoteUfrags;
  if (lastFate?.signal === next && lastFate.remoteSdp === remoteSdp && lastFate.seenUfrags === seenUfrags) return lastFate.fate;
  const fate = remoteCandidateFate(next.candidate, remoteSdp, seenUfrags);
  lastFate = { signal: next, remoteSdp, seenUfrags, fate };
  return fate;
}

function nextDescriptionType(context: NegotiationContext): WireDescription['type'] | null {
  const next = nextSignal(context);
  return next?.kind === 'description' ? next.description.type : null;
}

const negotiationSetup = setup({
  types: {
    context: {} as NegotiationContext,
    events: {} as NegotiationEvent,
    input: {} as NegotiationInput,
  },
  guards: {
    isTrickle: ({ context }) => context.trickle,
    isPolite: ({ context }) => context.polite,
    offersOnStart: ({ context }) => context.offerOnStart,
    awaitsRemoteOffer: ({ context }) => context.awaitRemoteOffer,
    isNegotiationNeeded: ({ context }) => context.negotiationNeeded,
    isNextAnOffer: ({ context }) => nextDescriptionType(context) === 'offer',
    isNextAnAnswer: ({ context }) => {
      const type = nextDescriptionType(context);
      return type === 'answer' || type === 'pranswer';
    },
    /** A description we already applied (a duplicate delivery): applying it again would desync. */
    isNextAlreadyApplied: ({ context }) => {
      const next = nextSignal(context);
      return next?.kind === 'description' && context.appliedRemoteSdps.includes(next.description.sdp);
    },
    /** webrtc-pc §4.4.1.6 addIceCandidate: the candidate fits the current remote description. */
    canApplyNextCandidate: ({ context }) => nextCandidateFate(context) === 'apply',
    /** A candidate that arrives with nothing queued before it and fits the remote description. */
    canApplyArrivingCandidate: ({ context, event }) =>
      event.type === 'REMOTE.CANDIDATE' && context.inbox.length === 0 && candidateFate(context, event.candidate) === 'apply',
    /** No remote description yet, or the candidate runs ahead of the description it belongs to. */
    isNextCandidateEarly: ({ context }) => nextCandidateFate(context) === 'hold',
    /** A candidate of an ICE generation that a restart replaced (its ufrag was seen before). */
    isNextCandidateStale: ({ context }) => nextCandidateFate(context) === 'stale',
    isNextCandidateForUnknownSection: ({ context }) => nextCandidateFate(context) === 'unknown-section',
    /** W3C §10.7: after we ignored an offer, candidates that do not fit what we have are its. */
    isNextCandidateOfIgnoredOffer: ({ context }) => {
      if (!context.ignoreOffer) return false;
      const fate = nextCandidateFate(context);
      return fate !== null && fate !== 'apply';
    },
    /** W3C §10.7: a candidate refused while we ignored an offer was that offer's. */
    wasIgnoringOffer: ({ event }) => event.type === 'RTC.CANDIDATE_FAILED' && event.whileIgnoringOffer,
    /** Non-trickle: the local description already holds this generation's candidates. */
    areLocalCandidatesGathered: ({ context }) =>
      context.rtc.iceGatheringState === 'complete' && /\ba=candidate:/.test(sdpOf(context.rtc.localDescription)),
  },
  actions: {
    /** Starts the state's RTC call; its outcome arrives as RTC.OPERATION_DONE or RTC.OPERATION_FAILED. */
    runRtcOperation: ({ context, self }, params: { operation: AwaitedOperation }) => runRtcOperation(context, self, params.operation),
    addNextCandidate: ({ context, self }) => {
      const next = nextSignal(context);
      if (next?.kind === 'candidate') addCandidate(context, self, next.candidate);
    },
    addArrivingCandidate: ({ context, event, self }) => {
      if (event.type === 'REMOTE.CANDIDATE') addCandidate(context, self, event.candidate);
    },
    enqueueRemoteSignal: assign({
      inbox: ({ context, event }) => {
        if (event.type === 'REMOTE.DESCRIPTION') return [...context.inbox, { kind: 'description' as const, description: event.description }];
        if (event.type === 'REMOTE.CANDIDATE') return [...context.inbox, { kind: 'candidate' as const, candidate: event.candidate }];
        return context.inbox;
      },
    }),
    markNegotiationNeeded: assign({ negotiationNeeded: true }),
    /**
     * The awaited first remote offer is taken: the need held for it is dropped, since the answer
     * may meet it (our tracks ride on the offered transceivers). webrtc-pc §4.7.3: back in stable,
     * the engine fires `negotiationneeded` again if anything is still to negotiate; serving the
     * old need would be a redundant second round.
     */
    dropNeedHeldForRemoteOffer: assign({ negotiationNeeded: false }),
    requestIceRestart: assign({ iceRestartWanted: true, negotiationNeeded: true }),
    /** Take a description: the W3C example recomputes ignoreOffer for each description. */
    takeNextDescription: assign({
      current: ({ context }) => nextSignal(context) ?? null,
      inbox: ({ context }) => context.inbox.slice(1),
      ignoreOffer: false,
    }),
    dropNext: assign({ inbox: ({ context }) => context.inbox.slice(1) }),
    holdNextCandidateUntilRemoteDescription: assign({
      earlyCandidates: ({ context }) => {
        const next = nextSignal(context);
        return next ? [...context.earlyCandidates, next].slice(-HELD_CANDIDATES_LIMIT) : context.earlyCandidates;
      },
      inbox: ({ context }) => context.inbox.slice(1),
    }),
    /** The offer takes the pending restart request; it gives it back if it never gets answered. */
    startOffer: assign({
      negotiationNeeded: false,
      offerRestartsIce: ({ context }) => context.iceRestartWanted,
      iceRestartWanted: false,
    }),
    /** Our offer was rolled back or failed: a restart it carried is still wanted. */
    keepIceRestartOfUnansweredOffer: assign({
      iceRestartWanted: ({ context }) => context.iceRestartWanted || context.offerRestartsIce,
      offerRestartsIce: false,
    }),
    storeLocalDescription: assign({
      localDescription: ({ context, event }) => (event.type === 'RTC.OPERATION_DONE' && event.description ? event.description : context.localDescription),
    }),
    /**
     * A remote description is applied: its SDP is remembered (to drop duplicates), its ufrags
     * too (to tell stale candidates), and the candidates held until a remote description was
     * applied go back to the inbox, first: they arrived before anything still in it. One
     * assign, not one per record (each assign copies the context).
     */
    rememberAppliedRemote: assign({
      inbox: ({ context }) => (context.earlyCandidates.length === 0 ? context.inbox : [...context.earlyCandidates, ...context.inbox]),
      earlyCandidates: NOTHING,
      appliedRemoteSdps: ({ context }) => {
        const current = context.current;
        if (current?.kind !== 'description') return context.appliedRemoteSdps;
        return [...context.appliedRemoteSdps, current.description.sdp].slice(-APPLIED_SDP_MEMORY);
      },
      seenRemoteUfrags: ({ context }) => {
        const current = context.current;
        if (current?.kind !== 'description') return context.seenRemoteUfrags;
        const fresh = iceUfragsOf(current.description.sdp).filter((ufrag) => !context.seenRemoteUfrags.includes(ufrag));
        return fresh.length === 0 ? context.seenRemoteUfrags : [...context.seenRemoteUfrags, ...fresh].slice(-UFRAG_MEMORY);
      },
    }),
    clearCurrent: assign({ current: null }),
    /** An offer/answer round is done (ours answered, or theirs answered): counted and reported. */
    completeRound: assign({ negotiationRounds: ({ context }) => context.negotiationRounds + 1, current: null }),
    /** webrtc-pc §10.7: the impolite peer ignores a colliding offer (ignoreOffer = true). */
    ignoreCollidingOffer: assign({ ignoreOffer: true }),
    sendLocalDescription: sendParent(({ context }): NegotiationParentEvent => ({
      type: 'NEGOTIATION.LOCAL_DESCRIPTION',
      description: localDescriptionToSend(context),
    })),
    reportCompleted: sendParent(({ context }, params: { asOfferer: boolean }): NegotiationParentEvent => ({
      type: 'NEGOTIATION.COMPLETED',
      ...completedRound(context, params.asOfferer),
    })),
    /** The failed RTC call of an RTC.OPERATION_FAILED or RTC.CANDIDATE_FAILED event. */
    reportError: sendParent(({ event }): NegotiationParentEvent => {
      if (event.type !== 'RTC.OPERATION_FAILED' && event.type !== 'RTC.CANDIDATE_FAILED') throw new Error(`reportError needs a failed RTC call, got ${event.type}`);
      return { type: 'NEGOTIATION.ERROR', operation: event.operation, error: event.error };
    }),
    reportNotice: sendParent((_, params: { notice: NegotiationNotice; detail: string }): NegotiationParentEvent => ({
      type: 'NEGOTIATION.NOTICE',
      ...params,
    })),
  },
  delays: {
    /** Non-trickle only: how long to wait for gathering before sending what we have. */
    gatheringTimeout: 5000,
    /** `awaitRemoteOffer` only: how long our own offer waits for the remote's first one. */
    firstOfferTimeout: 5000,
  },
});

const run = (operation: AwaitedOperation) => ({ type: 'runRtcOperation', params: { operation } }) as const;
const notice = (n: NegotiationNotice, detail: string) => ({ type: 'reportNotice', params: { notice: n, detail } }) as const;
const DUPLICATE = { guard: 'isNextAlreadyApplied', actions: ['dropNext', notice('duplicate-description', 'already applied')] } as const;

/** A candidate that fits the remote description goes to the engine (see addCandidate). */
const ADD_FITTING_CANDIDATE = { guard: 'canApplyNextCandidate', actions: ['addNextCandidate', 'dropNext'] } as const;

/**
 * Where candidates go in (rest states, answering): one that arrives with nothing queued before
 * it and fits goes straight to the engine, without passing through the inbox; any other one
 * is queued (the region's own REMOTE.CANDIDATE) and taken in order.
 */
const ADD_ARRIVING_CANDIDATE = { 'REMOTE.CANDIDATE': { guard: 'canApplyArrivingCandidate', actions: 'addArrivingCandidate' } } as const;

/**
 * How a rest state takes a remote candidate (the same in every rest state): drop it when it
 * belongs to an ignored offer, a replaced ICE generation or no m-section; hold it when it runs
 * ahead of its remote description; otherwise add it.
 */
const TAKE_NEXT_CANDIDATE = [
  { guard: 'isNextCandidateOfIgnoredOffer', actions: ['dropNext', notice('dropped-candidate', 'belongs to an ignored offer')] },
  { guard: 'isNextCandidateStale', actions: ['dropNext', notice('dropped-candidate', 'ufrag of a replaced ICE generation')] },
  { guard: 'isNextCandidateForUnknownSection', actions: ['dropNext', notice('dropped-candidate', 'names no m-section of the remote description')] },
  { guard: 'isNextCandidateEarly', actions: 'holdNextCandidateUntilRemoteDescription' },
  ADD_FITTING_CANDIDATE,
] as const;

/**
 * How a stable rest state takes the next remote signal after the offer (which it applies): an
 * answer answers nothing in flight (JSEP §5.6: setRemoteDescription(answer) needs
 * have-local-offer, so applying it would be an illegal call), candidates as above.
 */
const TAKE_NEXT_AFTER_OFFER_IN_STABLE = [
  { guard: 'isNextAnAnswer', actions: ['dropNext', notice('stale-answer', 'answer received in stable')] },
  ...TAKE_NEXT_CANDIDATE,
] as const;
const TAKE_REMOTE_OFFER = { guard: 'isNextAnOffer', target: '#negotiation.applyingRemoteOffer', actions: 'takeNextDescription' } as const;

/**
 * Non-trickle: the description goes out once it holds the gathered candidates (the same for an
 * offer and an answer); `sending` is the sibling that sends it.
 */
const GATHERING_CANDIDATES = {
  description: 'Non-trickle: the description goes out once it holds the gathered candidates.',
  always: { guard: 'areLocalCandidatesGathered', target: 'sending' },
  on: { 'ICE.GATHERING_COMPLETE': 'sending' },
  after: { gatheringTimeout: { target: 'sending', actions: notice('sent-without-all-candidates', 'gathering timed out') } },
} as const;

/** After our local offer or answer is applied: send it now (trickle), or once gathered. */
const LOCAL_DESCRIPTION_APPLIED = [{ guard: 'isTrickle', target: 'sending' }, { target: 'gatheringCandidates' }] as const;

/**
 * Perfect negotiation (webrtc-pc §10.7, RFC 8829/9429 JSEP): offers on `negotiationneeded`,
 * answers remote offers, resolves glare by politeness with rollback, and applies trickled
 * candidates in order. Runs as a region of the peer machine.
 */
export const negotiationMachine = negotiationSetup.createMachine({
  id: 'negotiation',
  context: ({ input }) => initialNegotiationContext(input),
  initial: 'starting',
  on: {
    'REMOTE.DESCRIPTION': { actions: 'enqueueRemoteSignal' },
    'REMOTE.CANDIDATE': { actions: 'enqueueRemoteSignal' },
    // W3C §10.7: errors of candidates that belong to an ignored offer are swallowed, and only
    // theirs; any other refusal is reported (it does not stop the negotiation).
    'RTC.CANDIDATE_FAILED': [
      { guard: 'wasIgnoringOffer', actions: notice('candidate-not-applied', 'belongs to an ignored offer') },
      { actions: 'reportError' },
    ],
    'RTC.NEGOTIATION_NEEDED': { actions: 'markNegotiationNeeded' },
    RESTART_ICE: { actions: 'requestIceRestart' },
    CLOSE: '.closed',
  },
  states: {
    starting: {
      description: 'Offers at once (offerOnStart), waits for the remote offer (awaitRemoteOffer), or rests.',
      always: [
        { guard: 'offersOnStart', target: 'makingOffer', actions: 'startOffer' },
        { guard: 'awaitsRemoteOffer', target: 'awaitingFirstOffer' },
        { target: 'stable' },
      ],
    },
    awaitingFirstOffer: {
      description: 'A callee: stable, but our own need waits for the remote offer (or firstOfferTimeout) instead of colliding with it.',
      always: [
        DUPLICATE,
        { ...TAKE_REMOTE_OFFER, actions: ['takeNextDescription', 'dropNeedHeldForRemoteOffer'] },
        ...TAKE_NEXT_AFTER_OFFER_IN_STABLE,
      ],
      on: ADD_ARRIVING_CANDIDATE,
      after: { firstOfferTimeout: 'stable' },
    },
    stable: {
      description: 'Signaling state stable, nothing in flight. Takes the next remote signal, else makes an offer if one is needed.',
      always: [
        DUPLICATE,
        TAKE_REMOTE_OFFER,
        ...TAKE_NEXT_AFTER_OFFER_IN_STABLE,
        { guard: 'isNegotiationNeeded', target: 'makingOffer', actions: 'startOffer' },
      ],
      on: ADD_ARRIVING_CANDIDATE,
    },
    makingOffer: {
      description: 'createOffer, setLocalDescription(offer), send it (W3C makingOffer). A negotiationneeded meanwhile is met by this offer (webrtc-pc §4.7.3).',
      initial: 'creatingOffer',
      on: {
        'RTC.NEGOTIATION_NEEDED': {},
        'RTC.OPERATION_FAILED': { target: 'stable', actions: ['reportError', 'keepIceRestartOfUnansweredOffer', 'clearCurrent'] },
      },
      states: {
        creatingOffer: { entry: run('createOffer'), on: { 'RTC.OPERATION_DONE': { target: 'applyingLocalOffer', actions: 'storeLocalDescription' } } },
        applyingLocalOffer: { entry: run('setLocalDescription'), on: { 'RTC.OPERATION_DONE': LOCAL_DESCRIPTION_APPLIED } },
        gatheringCandidates: GATHERING_CANDIDATES,
        sending: { entry: 'sendLocalDescription', always: '#negotiation.awaitingAnswer' },
      },
    },
    awaitingAnswer: {
      description: 'Our offer is applied (have-local-offer). An answer completes the round; an offer collides (glare).',
      always: [
        DUPLICATE,
        { guard: 'isNextAnAnswer', target: 'applyingRemoteAnswer', actions: 'takeNextDescription' },
        // webrtc-pc §10.7: on collision the polite peer rolls back its offer and takes theirs...
        { guard: and(['isNextAnOffer', 'isPolite']), target: 'rollingBackLocalOffer', actions: 'takeNextDescription' },
        // ...and the impolite peer ignores theirs, with the candidates that follow it.
        {
          guard: and(['isNextAnOffer', not('isPolite')]),
          actions: ['dropNext', 'ignoreCollidingOffer', notice('ignored-colliding-offer', 'impolite peer keeps its own offer')],
        },
        ...TAKE_NEXT_CANDIDATE,
      ],
      on: ADD_ARRIVING_CANDIDATE,
    },
    applyingRemoteAnswer: {
      description: 'setRemoteDescription(answer): back to stable (W3C isSettingRemoteAnswerPending).',
      entry: run('setRemoteDescription'),
      on: {
        'RTC.OPERATION_DONE': {
          target: 'stable',
          actions: ['rememberAppliedRemote', 'completeRound', { type: 'reportCompleted', params: { asOfferer: true } }],
        },
        // An answer the engine refuses (stale, or for another offer) would leave us in
        // have-local-offer for good: roll our offer back and offer again.
        'RTC.OPERATION_FAILED': { target: 'rollingBackUnansweredOffer', actions: 'reportError' },
      },
    },
    rollingBackUnansweredOffer: {
      description: 'The answer was refused: setLocalDescription(rollback), then offer again.',
      entry: run('rollback'),
      on: {
        'RTC.OPERATION_DONE': { target: 'stable', actions: ['markNegotiationNeeded', 'keepIceRestartOfUnansweredOffer', 'clearCurrent'] },
        'RTC.OPERATION_FAILED': { target: 'stable', actions: ['reportError', 'keepIceRestartOfUnansweredOffer', 'clearCurrent'] },
      },
    },
    rollingBackLocalOffer: {
      description: 'Glare, polite side: setLocalDescription(rollback) before taking the remote offer (explicit, no implicit rollback).',
      entry: run('rollback'),
      on: {
        // What made us offer still stands: offer again once stable.
        'RTC.OPERATION_DONE': {
          target: 'applyingRemoteOffer',
          actions: ['markNegotiationNeeded', 'keepIceRestartOfUnansweredOffer', notice('rolled-back-for-remote-offer', 'polite peer yields')],
        },
        'RTC.OPERATION_FAILED': { target: 'awaitingAnswer', actions: ['reportError', 'clearCurrent'] },
      },
    },
    applyingRemoteOffer: {
      description: 'setRemoteDescription(offer), from stable (have-remote-offer next).',
      entry: run('setRemoteDescription'),
      on: {
        'RTC.OPERATION_DONE': { target: 'answering', actions: 'rememberAppliedRemote' },
        'RTC.OPERATION_FAILED': { target: 'stable', actions: ['reportError', 'clearCurrent'] },
      },
    },
    answering: {
      description: 'createAnswer, setLocalDescription(answer), send it: the round is done. Candidates that fit the offer go in meanwhile.',
      initial: 'creatingAnswer',
      on: { ...ADD_ARRIVING_CANDIDATE, 'RTC.OPERATION_FAILED': { target: 'rollingBackRemoteOffer', actions: 'reportError' } },
      // The remote candidates that came with the offer, and those that follow it, go in while
      // the answer is made (addIceCandidate is valid in have-remote-offer, webrtc-pc §4.4.1.6),
      // as a hand-written callee applies those it queued: the engine then starts its
      // connectivity checks as soon as the answer is applied, not after the candidates follow it.
      always: ADD_FITTING_CANDIDATE,
      states: {
        creatingAnswer: { entry: run('createAnswer'), on: { 'RTC.OPERATION_DONE': { target: 'applyingLocalAnswer', actions: 'storeLocalDescription' } } },
        applyingLocalAnswer: { entry: run('setLocalDescription'), on: { 'RTC.OPERATION_DONE': LOCAL_DESCRIPTION_APPLIED } },
        gatheringCandidates: GATHERING_CANDIDATES,
        sending: {
          entry: 'sendLocalDescription',
          always: { target: '#negotiation.stable', actions: ['completeRound', { type: 'reportCompleted', params: { asOfferer: false } }] },
        },
      },
    },
    rollingBackRemoteOffer: {
      description: 'We could not answer: setLocalDescription(rollback) returns to stable.',
      entry: run('rollback'),
      on: {
        'RTC.OPERATION_DONE': { target: 'stable', actions: 'clearCurrent' },
        'RTC.OPERATION_FAILED': { target: 'stable', actions: ['reportError', 'clearCurrent'] },
      },
    },
    closed: {
      description: 'The peer connection is closed; nothing more happens.',
      type: 'final',
    },
  },
});

/** The type of `negotiationMachine`. */
export type NegotiationMachine = typeof negotiationMachine;
