import { and, assign, fromPromise, not, sendParent, setup } from 'xstate';
import type { IceCandidate, RtcPort, SessionDescription } from '../ports/rtc.js';
import type { WireDescription } from '../protocol/peer-message.js';
import { iceUfragsOf, remoteCandidateFate } from '../sdp.js';
import type { RemoteCandidateFate } from '../sdp.js';

// Perfect negotiation (W3C webrtc-pc §10.7 "Perfect Negotiation Example") as a statechart.
//
// The W3C example keeps three flags (makingOffer, ignoreOffer, isSettingRemoteAnswerPending)
// and lets async message handlers interleave. Here every remote description and candidate goes
// through one ordered inbox and is taken only in a rest state (`stable` or `awaitingAnswer`),
// so `makingOffer` and `isSettingRemoteAnswerPending` become states instead of flags:
//   - an offer that arrives while we make ours waits until our offer is applied, and then
//     collides in `awaitingAnswer`, exactly where the example's `makingOffer` would say so;
//   - an offer that arrives while an answer is being applied waits until `stable`, so it is
//     not a collision (the example's `isSettingRemoteAnswerPending`).
// Only `ignoreOffer` remains, in context, because it outlives the state that sets it: it tells
// which candidates belong to the offer we ignored.

/** What the parent relays to the remote peer or reports to the app. */
export type NegotiationParentEvent =
  | { readonly type: 'NEGOTIATION.LOCAL_DESCRIPTION'; readonly description: WireDescription }
  | { readonly type: 'NEGOTIATION.ERROR'; readonly operation: NegotiationOperation; readonly error: Error }
  | { readonly type: 'NEGOTIATION.NOTICE'; readonly notice: NegotiationNotice; readonly detail: string }
  | { readonly type: 'NEGOTIATION.COMPLETED'; readonly round: number; readonly iceRestart: boolean };

export type NegotiationOperation =
  | 'createOffer'
  | 'createAnswer'
  | 'setLocalDescription'
  | 'setRemoteDescription'
  | 'rollback'
  | 'addIceCandidate';

/** Things the machine chose to ignore, reported for debugging (never errors). */
export type NegotiationNotice =
  | 'ignored-colliding-offer'
  | 'rolled-back-for-remote-offer'
  | 'stale-answer'
  | 'duplicate-description'
  | 'dropped-candidate'
  | 'candidate-not-applied'
  | 'sent-without-all-candidates';

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
  /** PROTOTYPE (peer.types.ts `offerOnStart`): offer at once, without waiting for `negotiationneeded`. */
  readonly offerOnStart?: boolean;
}

export type NegotiationEvent =
  /** The RTC port fired `negotiationneeded` (webrtc-pc §4.7.3). */
  | { readonly type: 'NEGOTIATION_NEEDED' }
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

export interface NegotiationContext {
  readonly rtc: RtcPort;
  readonly polite: boolean;
  readonly trickle: boolean;
  /** Remote descriptions and candidates not yet taken, oldest first. */
  readonly inbox: readonly RemoteSignal[];
  /** Candidates that arrived before the remote description they belong to (bounded): taken
   * again right after the next remote description is applied. */
  readonly earlyCandidates: readonly RemoteSignal[];
  /** The remote signal being applied now. */
  readonly current: RemoteSignal | null;
  /** The offer or answer we created and are applying. */
  readonly localDescription: SessionDescription | null;
  /** A `negotiationneeded` not yet served by an offer; never lost while not stable. */
  readonly negotiationNeeded: boolean;
  /** `awaitRemoteOffer`, until the first remote offer is taken (or `firstOfferTimeout`). */
  readonly awaitingRemoteOffer: boolean;
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
  readonly rounds: number;
}

const APPLIED_SDP_MEMORY = 16;
const UFRAG_MEMORY = 32;
const HELD_CANDIDATES_LIMIT = 64;

const toError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));

/** An SDP string a description must carry (every created offer and answer has one). */
function sdpOf(description: SessionDescription | null): string {
  return description?.sdp ?? '';
}

function nextSignal(context: NegotiationContext): RemoteSignal | undefined {
  return context.inbox[0];
}

function nextCandidateFate(context: NegotiationContext): RemoteCandidateFate | null {
  const next = nextSignal(context);
  if (next?.kind !== 'candidate') return null;
  return remoteCandidateFate(next.candidate, context.rtc.remoteDescription?.sdp ?? null, context.seenRemoteUfrags);
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
  actors: {
    // PROTOTYPE of offerOnStart: one microtask first, so the data channels the peer creates when
    // it starts (after its children start) are in an offer made at once.
    createOffer: fromPromise<SessionDescription, { rtc: RtcPort; iceRestart: boolean }>(async ({ input }) => {
      await Promise.resolve();
      return input.rtc.createOffer(input.iceRestart ? { iceRestart: true } : undefined);
    }),
    createAnswer: fromPromise<SessionDescription, { rtc: RtcPort }>(({ input }) => input.rtc.createAnswer()),
    setLocalDescription: fromPromise<void, { rtc: RtcPort; description: SessionDescription }>(({ input }) =>
      input.rtc.setLocalDescription(input.description),
    ),
    setRemoteDescription: fromPromise<void, { rtc: RtcPort; description: SessionDescription }>(({ input }) =>
      input.rtc.setRemoteDescription(input.description),
    ),
    addIceCandidate: fromPromise<void, { rtc: RtcPort; candidate: IceCandidate | null }>(({ input }) =>
      input.rtc.addIceCandidate(input.candidate),
    ),
  },
  guards: {
    isPolite: ({ context }) => context.polite,
    isTrickle: ({ context }) => context.trickle,
    isNegotiationNeeded: ({ context }) => context.negotiationNeeded,
    isAwaitingRemoteOffer: ({ context }) => context.awaitingRemoteOffer,
    isNextAnOffer: ({ context }) => nextDescriptionType(context) === 'offer',
    isNextAnAnswer: ({ context }) => {
      const type = nextDescriptionType(context);
      return type === 'answer' || type === 'pranswer';
    },
    isNextACandidate: ({ context }) => nextSignal(context)?.kind === 'candidate',
    /** A description we already applied (a duplicate delivery): applying it again would desync. */
    isNextAlreadyApplied: ({ context }) => {
      const next = nextSignal(context);
      return next?.kind === 'description' && context.appliedRemoteSdps.includes(next.description.sdp);
    },
    /** webrtc-pc §4.4.1.6 addIceCandidate: the candidate fits the current remote description. */
    canApplyNextCandidate: ({ context }) => nextCandidateFate(context) === 'apply',
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
    isIgnoringOffer: ({ context }) => context.ignoreOffer,
    hasLocalOffer: ({ context }) => context.rtc.signalingState === 'have-local-offer',
    /** Non-trickle: the local description already holds this generation's candidates. */
    areLocalCandidatesGathered: ({ context }) =>
      context.rtc.iceGatheringState === 'complete' && /\ba=candidate:/.test(sdpOf(context.rtc.localDescription)),
  },
  actions: {
    enqueueDescription: assign({
      inbox: ({ context, event }) =>
        event.type === 'REMOTE.DESCRIPTION'
          ? [...context.inbox, { kind: 'description' as const, description: event.description }]
          : context.inbox,
    }),
    enqueueCandidate: assign({
      inbox: ({ context, event }) =>
        event.type === 'REMOTE.CANDIDATE'
          ? [...context.inbox, { kind: 'candidate' as const, candidate: event.candidate }]
          : context.inbox,
    }),
    markNegotiationNeeded: assign({ negotiationNeeded: true }),
    stopAwaitingRemoteOffer: assign({ awaitingRemoteOffer: false }),
    /**
     * The remote offer we waited for is being applied: the need held for it is dropped, since the
     * answer may meet it (our tracks ride on the offered transceivers). webrtc-pc §4.7.3: back in
     * stable, the engine updates the negotiation-needed flag and fires `negotiationneeded` again
     * if anything is still to negotiate; serving the old need would be a redundant second round.
     */
    takeAwaitedRemoteOffer: assign(({ context }) => (context.awaitingRemoteOffer ? { awaitingRemoteOffer: false, negotiationNeeded: false } : {})),
    requestIceRestart: assign({ iceRestartWanted: true, negotiationNeeded: true }),
    /** Take the head of the inbox as the signal to apply. */
    takeNext: assign({
      current: ({ context }) => nextSignal(context) ?? null,
      inbox: ({ context }) => context.inbox.slice(1),
    }),
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
    /** Early candidates go first: they arrived before anything still in the inbox. */
    releaseEarlyCandidates: assign({
      inbox: ({ context }) => [...context.earlyCandidates, ...context.inbox],
      earlyCandidates: [],
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
      localDescription: (_, description: SessionDescription) => description,
    }),
    rememberAppliedRemote: assign({
      appliedRemoteSdps: ({ context }) => {
        const current = context.current;
        if (current?.kind !== 'description') return context.appliedRemoteSdps;
        return [...context.appliedRemoteSdps, current.description.sdp].slice(-APPLIED_SDP_MEMORY);
      },
      seenRemoteUfrags: ({ context }) => {
        const current = context.current;
        if (current?.kind !== 'description') return context.seenRemoteUfrags;
        const fresh = iceUfragsOf(current.description.sdp).filter((ufrag) => !context.seenRemoteUfrags.includes(ufrag));
        return [...context.seenRemoteUfrags, ...fresh].slice(-UFRAG_MEMORY);
      },
    }),
    /** The answer to our offer is applied: a restart it carried is done. */
    completeOfferRound: assign({ rounds: ({ context }) => context.rounds + 1 }),
    completeAnswerRound: assign({ rounds: ({ context }) => context.rounds + 1 }),
    clearCurrent: assign({ current: null }),
    /** webrtc-pc §10.7: the impolite peer ignores a colliding offer (ignoreOffer = true). */
    ignoreCollidingOffer: assign({ ignoreOffer: true }),
    sendLocalDescription: sendParent(({ context }): NegotiationParentEvent => {
      const description = context.trickle ? context.localDescription : (context.rtc.localDescription ?? context.localDescription);
      return {
        type: 'NEGOTIATION.LOCAL_DESCRIPTION',
        description: { type: description?.type === 'offer' ? 'offer' : 'answer', sdp: sdpOf(description) },
      };
    }),
    reportCompleted: sendParent(({ context }, params: { asOfferer: boolean }): NegotiationParentEvent => ({
      type: 'NEGOTIATION.COMPLETED',
      round: context.rounds,
      iceRestart: params.asOfferer && context.offerRestartsIce,
    })),
    reportError: sendParent((_, params: { operation: NegotiationOperation; error: unknown }): NegotiationParentEvent => ({
      type: 'NEGOTIATION.ERROR',
      operation: params.operation,
      error: toError(params.error),
    })),
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

/**
 * How a rest state takes a remote candidate (the same in `stable` and `awaitingAnswer`):
 * drop it when it belongs to an ignored offer, a replaced ICE generation or no m-section; hold
 * it when it runs ahead of its remote description; otherwise apply it.
 */
const takeNextCandidate = [
  {
    guard: 'isNextCandidateOfIgnoredOffer',
    actions: ['dropNext', { type: 'reportNotice', params: { notice: 'dropped-candidate', detail: 'belongs to an ignored offer' } }],
  },
  {
    guard: 'isNextCandidateStale',
    actions: ['dropNext', { type: 'reportNotice', params: { notice: 'dropped-candidate', detail: 'ufrag of a replaced ICE generation' } }],
  },
  {
    guard: 'isNextCandidateForUnknownSection',
    actions: ['dropNext', { type: 'reportNotice', params: { notice: 'dropped-candidate', detail: 'names no m-section of the remote description' } }],
  },
  { guard: 'isNextCandidateEarly', actions: 'holdNextCandidateUntilRemoteDescription' },
  { guard: 'canApplyNextCandidate', target: 'addingCandidate', actions: 'takeNext' },
] as const;

export const negotiationMachine = negotiationSetup.createMachine({
  id: 'negotiation',
  context: ({ input }) => ({
    rtc: input.rtc,
    polite: input.polite,
    trickle: input.trickle ?? true,
    inbox: [],
    earlyCandidates: [],
    current: null,
    localDescription: null,
    negotiationNeeded: input.offerOnStart ?? false,
    awaitingRemoteOffer: input.awaitRemoteOffer ?? false,
    iceRestartWanted: false,
    offerRestartsIce: false,
    ignoreOffer: false,
    appliedRemoteSdps: [],
    seenRemoteUfrags: [],
    rounds: 0,
  }),
  initial: 'stable',
  on: {
    'REMOTE.DESCRIPTION': { actions: 'enqueueDescription' },
    'REMOTE.CANDIDATE': { actions: 'enqueueCandidate' },
    NEGOTIATION_NEEDED: { actions: 'markNegotiationNeeded' },
    RESTART_ICE: { actions: 'requestIceRestart' },
    CLOSE: '.closed',
  },
  states: {
    stable: {
      description: 'Signaling state stable, nothing in flight. Takes the next remote signal, else makes an offer if one is needed.',
      always: [
        {
          guard: 'isNextAlreadyApplied',
          actions: ['dropNext', { type: 'reportNotice', params: { notice: 'duplicate-description', detail: 'already applied' } }],
        },
        { guard: 'isNextAnOffer', target: 'applyingRemoteOffer', actions: 'takeNextDescription' },
        {
          // JSEP §5.6 (setRemoteDescription answer needs have-local-offer): an answer in stable
          // answers nothing we have in flight; applying it would be an illegal call.
          guard: 'isNextAnAnswer',
          actions: ['dropNext', { type: 'reportNotice', params: { notice: 'stale-answer', detail: 'answer received in stable' } }],
        },
        ...takeNextCandidate,
        { guard: and(['isNegotiationNeeded', not('isAwaitingRemoteOffer')]), target: 'makingOffer', actions: 'startOffer' },
      ],
      after: {
        // No target: the eventless transitions above are taken again after it, and offer.
        firstOfferTimeout: { guard: 'isAwaitingRemoteOffer', actions: 'stopAwaitingRemoteOffer' },
      },
    },

    makingOffer: {
      description: 'createOffer, then setLocalDescription(offer), then send it (W3C makingOffer).',
      // PROTOTYPE (offerOnStart): a negotiationneeded fired while our offer is made is not kept:
      // once the answer brings us back to stable, the engine updates its negotiation-needed flag
      // and fires again if our offer did not meet the need (webrtc-pc §4.7.3).
      on: { NEGOTIATION_NEEDED: {} },
      initial: 'creatingOffer',
      states: {
        creatingOffer: {
          invoke: {
            src: 'createOffer',
            input: ({ context }) => ({ rtc: context.rtc, iceRestart: context.offerRestartsIce }),
            onDone: {
              target: 'applyingLocalOffer',
              actions: { type: 'storeLocalDescription', params: ({ event }) => event.output },
            },
            onError: {
              target: '#negotiation.stable',
              actions: [
                { type: 'reportError', params: ({ event }) => ({ operation: 'createOffer', error: event.error }) },
                'keepIceRestartOfUnansweredOffer',
                'clearCurrent',
              ],
            },
          },
        },
        applyingLocalOffer: {
          invoke: {
            src: 'setLocalDescription',
            input: ({ context }) => ({ rtc: context.rtc, description: context.localDescription ?? { type: 'offer' } }),
            onDone: [
              { guard: 'isTrickle', target: '#negotiation.awaitingAnswer', actions: 'sendLocalDescription' },
              { target: 'gatheringCandidates' },
            ],
            onError: {
              target: '#negotiation.stable',
              actions: [
                { type: 'reportError', params: ({ event }) => ({ operation: 'setLocalDescription', error: event.error }) },
                'keepIceRestartOfUnansweredOffer',
                'clearCurrent',
              ],
            },
          },
        },
        gatheringCandidates: {
          description: 'Non-trickle: the offer goes out once it holds the gathered candidates.',
          always: { guard: 'areLocalCandidatesGathered', target: '#negotiation.awaitingAnswer', actions: 'sendLocalDescription' },
          on: { 'ICE.GATHERING_COMPLETE': { target: '#negotiation.awaitingAnswer', actions: 'sendLocalDescription' } },
          after: {
            gatheringTimeout: {
              target: '#negotiation.awaitingAnswer',
              actions: [
                'sendLocalDescription',
                { type: 'reportNotice', params: { notice: 'sent-without-all-candidates', detail: 'gathering timed out' } },
              ],
            },
          },
        },
      },
    },

    awaitingAnswer: {
      description: 'Our offer is applied (have-local-offer). An answer completes the round; an offer collides (glare).',
      always: [
        {
          guard: 'isNextAlreadyApplied',
          actions: ['dropNext', { type: 'reportNotice', params: { notice: 'duplicate-description', detail: 'already applied' } }],
        },
        { guard: 'isNextAnAnswer', target: 'applyingRemoteAnswer', actions: 'takeNextDescription' },
        // webrtc-pc §10.7: on collision the polite peer rolls back its offer and takes theirs...
        { guard: and(['isNextAnOffer', 'isPolite']), target: 'rollingBackLocalOffer', actions: 'takeNextDescription' },
        // ...and the impolite peer ignores theirs, with the candidates that follow it.
        {
          guard: and(['isNextAnOffer', not('isPolite')]),
          actions: [
            'dropNext',
            'ignoreCollidingOffer',
            { type: 'reportNotice', params: { notice: 'ignored-colliding-offer', detail: 'impolite peer keeps its own offer' } },
          ],
        },
        ...takeNextCandidate,
      ],
    },

    applyingRemoteAnswer: {
      description: 'setRemoteDescription(answer): back to stable (W3C isSettingRemoteAnswerPending).',
      invoke: {
        src: 'setRemoteDescription',
        input: ({ context }) => ({
          rtc: context.rtc,
          description: context.current?.kind === 'description' ? context.current.description : { type: 'answer' },
        }),
        onDone: {
          target: 'stable',
          actions: [
            'rememberAppliedRemote',
            'releaseEarlyCandidates',
            'completeOfferRound',
            { type: 'reportCompleted', params: { asOfferer: true } },
            'clearCurrent',
          ],
        },
        // An answer the engine refuses (stale, or for another offer) would leave us in
        // have-local-offer for good: roll our offer back and offer again.
        onError: {
          target: 'rollingBackUnansweredOffer',
          actions: { type: 'reportError', params: ({ event }) => ({ operation: 'setRemoteDescription', error: event.error }) },
        },
      },
    },

    rollingBackUnansweredOffer: {
      description: 'The answer was refused: setLocalDescription(rollback), then offer again.',
      invoke: {
        src: 'setLocalDescription',
        input: ({ context }) => ({ rtc: context.rtc, description: { type: 'rollback' } }),
        onDone: { target: 'stable', actions: ['markNegotiationNeeded', 'keepIceRestartOfUnansweredOffer', 'clearCurrent'] },
        onError: {
          target: 'stable',
          actions: [
            { type: 'reportError', params: ({ event }) => ({ operation: 'rollback', error: event.error }) },
            'keepIceRestartOfUnansweredOffer',
            'clearCurrent',
          ],
        },
      },
    },

    rollingBackLocalOffer: {
      description: 'Glare, polite side: setLocalDescription(rollback) before taking the remote offer (explicit, no implicit rollback).',
      invoke: {
        src: 'setLocalDescription',
        input: ({ context }) => ({ rtc: context.rtc, description: { type: 'rollback' } }),
        onDone: {
          target: 'applyingRemoteOffer',
          // What made us offer still stands: offer again once stable.
          actions: [
            'markNegotiationNeeded',
            'keepIceRestartOfUnansweredOffer',
            { type: 'reportNotice', params: { notice: 'rolled-back-for-remote-offer', detail: 'polite peer yields' } },
          ],
        },
        onError: {
          target: 'awaitingAnswer',
          actions: [{ type: 'reportError', params: ({ event }) => ({ operation: 'rollback', error: event.error }) }, 'clearCurrent'],
        },
      },
    },

    applyingRemoteOffer: {
      description: 'setRemoteDescription(offer), from stable (have-remote-offer next).',
      entry: 'takeAwaitedRemoteOffer',
      invoke: {
        src: 'setRemoteDescription',
        input: ({ context }) => ({
          rtc: context.rtc,
          description: context.current?.kind === 'description' ? context.current.description : { type: 'offer' },
        }),
        onDone: { target: 'answering', actions: ['rememberAppliedRemote', 'releaseEarlyCandidates'] },
        onError: {
          target: 'stable',
          actions: [
            { type: 'reportError', params: ({ event }) => ({ operation: 'setRemoteDescription', error: event.error }) },
            'clearCurrent',
          ],
        },
      },
    },

    answering: {
      description: 'createAnswer, then setLocalDescription(answer), then send it.',
      initial: 'creatingAnswer',
      states: {
        creatingAnswer: {
          invoke: {
            src: 'createAnswer',
            input: ({ context }) => ({ rtc: context.rtc }),
            onDone: {
              target: 'applyingLocalAnswer',
              actions: { type: 'storeLocalDescription', params: ({ event }) => event.output },
            },
            onError: {
              target: '#negotiation.rollingBackRemoteOffer',
              actions: { type: 'reportError', params: ({ event }) => ({ operation: 'createAnswer', error: event.error }) },
            },
          },
        },
        applyingLocalAnswer: {
          invoke: {
            src: 'setLocalDescription',
            input: ({ context }) => ({ rtc: context.rtc, description: context.localDescription ?? { type: 'answer' } }),
            onDone: [
              {
                guard: 'isTrickle',
                target: '#negotiation.stable',
                actions: ['sendLocalDescription', 'completeAnswerRound', { type: 'reportCompleted', params: { asOfferer: false } }, 'clearCurrent'],
              },
              { target: 'gatheringCandidates' },
            ],
            onError: {
              target: '#negotiation.rollingBackRemoteOffer',
              actions: {
                type: 'reportError',
                params: ({ event }) => ({ operation: 'setLocalDescription', error: event.error }),
              },
            },
          },
        },
        gatheringCandidates: {
          description: 'Non-trickle: the answer goes out once it holds the gathered candidates.',
          always: {
            guard: 'areLocalCandidatesGathered',
            target: '#negotiation.stable',
            actions: ['sendLocalDescription', 'completeAnswerRound', { type: 'reportCompleted', params: { asOfferer: false } }, 'clearCurrent'],
          },
          on: {
            'ICE.GATHERING_COMPLETE': {
              target: '#negotiation.stable',
              actions: ['sendLocalDescription', 'completeAnswerRound', { type: 'reportCompleted', params: { asOfferer: false } }, 'clearCurrent'],
            },
          },
          after: {
            gatheringTimeout: {
              target: '#negotiation.stable',
              actions: [
                'sendLocalDescription',
                { type: 'reportNotice', params: { notice: 'sent-without-all-candidates', detail: 'gathering timed out' } },
                'completeAnswerRound',
                { type: 'reportCompleted', params: { asOfferer: false } },
                'clearCurrent',
              ],
            },
          },
        },
      },
    },

    rollingBackRemoteOffer: {
      description: 'We could not answer: setLocalDescription(rollback) returns to stable.',
      invoke: {
        src: 'setLocalDescription',
        input: ({ context }) => ({ rtc: context.rtc, description: { type: 'rollback' } }),
        onDone: { target: 'stable', actions: 'clearCurrent' },
        onError: {
          target: 'stable',
          actions: [{ type: 'reportError', params: ({ event }) => ({ operation: 'rollback', error: event.error }) }, 'clearCurrent'],
        },
      },
    },

    addingCandidate: {
      description: 'addIceCandidate, one at a time and in arrival order.',
      invoke: {
        src: 'addIceCandidate',
        input: ({ context }) => ({
          rtc: context.rtc,
          candidate: context.current?.kind === 'candidate' ? context.current.candidate : null,
        }),
        onDone: 'returningFromCandidate',
        // W3C §10.7: errors of candidates that belong to an ignored offer are swallowed, and
        // only theirs; any other failure is reported (it does not stop the negotiation).
        onError: [
          {
            guard: 'isIgnoringOffer',
            target: 'returningFromCandidate',
            actions: { type: 'reportNotice', params: { notice: 'candidate-not-applied', detail: 'belongs to an ignored offer' } },
          },
          {
            target: 'returningFromCandidate',
            actions: { type: 'reportError', params: ({ event }) => ({ operation: 'addIceCandidate', error: event.error }) },
          },
        ],
      },
    },

    returningFromCandidate: {
      description: 'Back to the rest state that matches the signaling state.',
      always: [
        { guard: 'hasLocalOffer', target: 'awaitingAnswer', actions: 'clearCurrent' },
        { target: 'stable', actions: 'clearCurrent' },
      ],
    },

    closed: {
      description: 'The peer connection is closed; nothing more happens.',
      type: 'final',
    },
  },
});

export type NegotiationMachine = typeof negotiationMachine;
