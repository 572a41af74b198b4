import { assertEvent, assign, enqueueActions, sendParent, setup } from 'xstate';
import type { IceCandidate, IceGatheringState } from '../ports/rtc.js';

// Local ICE candidate gathering (webrtc-pc §4.3.2 RTCIceGatheringState, §4.4.1.6 candidate
// gathering) and its hand-off to the parent `peer` machine: trickled one by one (RFC 8838), or
// collected until gathering completes so that the description can carry them (non-trickle).
// The peer machine runs it as one of its parallel regions (peer.machine.ts), where the hand-offs
// (`sendParent` here) are carried out directly. The gathering state itself is not recorded here:
// the port has it (RtcPort.iceGatheringState), and the app hears its changes from the port
// (`PortReport`); this machine only follows them.

/** The input of `iceGatheringMachine`. */
export interface IceGatheringInput {
  /** Forward each local candidate as soon as it is found (default true, RFC 8838 trickle ICE). */
  readonly trickle?: boolean;
}

/** RTC events, already translated by the parent `peer` machine, and the parent's CLOSE. */
export type IceGatheringEvent =
  | { readonly type: 'RTC.ICE_GATHERING_STATE'; readonly state: IceGatheringState }
  /** `candidate` is null for end-of-candidates (webrtc-pc §4.4.1.6). */
  | { readonly type: 'RTC.ICE_CANDIDATE'; readonly candidate: IceCandidate | null }
  | { readonly type: 'CLOSE' };

/** What this machine asks of its parent (`sendParent`). */
export type IceGatheringParentEvent =
  /** Trickle only: one local candidate, or null for end-of-candidates (RFC 8838 §4). */
  | { readonly type: 'ICE.LOCAL_CANDIDATE'; readonly candidate: IceCandidate | null }
  /**
   * Both modes, once per generation: the candidates collected. Without trickle, every candidate
   * of the generation; with trickle none, each went to the parent as it was found.
   */
  | { readonly type: 'ICE.GATHERING_COMPLETE'; readonly candidates: readonly IceCandidate[] };

/**
 * The context of `iceGatheringMachine`: the candidates gathered in the current generation
 * (whether it is complete is the `complete` state).
 */
export interface IceGatheringContext {
  readonly trickle: boolean;
  /** Incremented each time gathering starts; an ICE restart starts a new generation. */
  readonly generation: number;
  /**
   * Without trickle, the local candidates of the current generation, in the order they were
   * found, for the report at its end; with trickle, none (each is handed over as found).
   */
  readonly candidates: readonly IceCandidate[];
}

/** The candidates of a generation not started (shared: the list is replaced, never mutated). */
const NO_CANDIDATES: readonly IceCandidate[] = Object.freeze([]);

/** The context gathering starts with (the peer machine starts its region with it too). */
export function initialIceGatheringContext(input: IceGatheringInput): IceGatheringContext {
  return { trickle: input.trickle ?? true, generation: 0, candidates: NO_CANDIDATES };
}

/** Does this side trickle its candidates (RFC 8838), or put them in the description? */
function isTrickling(context: IceGatheringContext): boolean {
  return context.trickle;
}

/**
 * Follows ICE gathering (webrtc-pc §4.3.2 RTCIceGatheringState) and trickles each local
 * candidate that passes the candidate filter (RFC 8838).
 */
export const iceGatheringMachine = setup({
  types: {
    // xstate's type-only marker ({} happens to satisfy an input whose fields are all optional).
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    input: {} as IceGatheringInput,
    context: {} as IceGatheringContext,
    events: {} as IceGatheringEvent,
  },
  guards: {
    isGatheringReported: ({ event }) => event.type === 'RTC.ICE_GATHERING_STATE' && event.state === 'gathering',
    isCompleteReported: ({ event }) => event.type === 'RTC.ICE_GATHERING_STATE' && event.state === 'complete',
    /** webrtc-pc §4.4.1.6: a null candidate means gathering has finished for this generation. */
    isEndOfCandidates: ({ event }) => event.type === 'RTC.ICE_CANDIDATE' && event.candidate === null,
    /**
     * Some engines (Firefox) also fire a candidate whose `candidate` string is empty: the
     * end-of-candidates marker of a single media section (webrtc-pc §4.8.2). It is not a
     * candidate, and the null candidate that follows covers every section.
     */
    isSectionEndMarker: ({ event }) => event.type === 'RTC.ICE_CANDIDATE' && event.candidate?.candidate === '',
  },
  actions: {
    startGeneration: assign({
      generation: ({ context }) => context.generation + 1,
      candidates: NO_CANDIDATES,
    }),
    /**
     * RFC 8838 §4: trickle each candidate as soon as it is found; without trickle, collect it for
     * the report at the generation's end. (One action, no context copy per trickled candidate.)
     */
    takeCandidate: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'RTC.ICE_CANDIDATE');
      if (isTrickling(context)) {
        enqueue.sendParent({ type: 'ICE.LOCAL_CANDIDATE', candidate: event.candidate } satisfies IceGatheringParentEvent);
      } else if (event.candidate !== null) {
        enqueue.assign({ candidates: [...context.candidates, event.candidate] });
      }
    }),
    /** RFC 8838 §8.2 end-of-candidates, at most once per generation (only `complete` sends it). */
    forwardEndOfCandidates: enqueueActions(({ context, enqueue }) => {
      if (isTrickling(context)) {
        enqueue.sendParent({ type: 'ICE.LOCAL_CANDIDATE', candidate: null } satisfies IceGatheringParentEvent);
      }
    }),
    reportGatheringComplete: sendParent(
      ({ context }) =>
        ({ type: 'ICE.GATHERING_COMPLETE', candidates: context.candidates }) satisfies IceGatheringParentEvent,
    ),
  },
}).createMachine({
  id: 'iceGathering',
  description: 'Local ICE candidate gathering, trickled or collected (webrtc-pc §4.3.2, RFC 8838).',
  context: ({ input }) => initialIceGatheringContext(input),
  initial: 'new',
  on: {
    CLOSE: '.closed',
  },
  states: {
    new: {
      description: 'webrtc-pc "new": nothing gathered yet (no local description applied).',
      on: {
        'RTC.ICE_GATHERING_STATE': [
          { guard: 'isGatheringReported', target: 'gathering', actions: 'startGeneration' },
          { guard: 'isCompleteReported', target: 'complete', actions: 'startGeneration' },
        ],
        // Engines may fire the first candidate before icegatheringstatechange: it starts gathering.
        'RTC.ICE_CANDIDATE': [
          { guard: 'isEndOfCandidates', target: 'complete', actions: 'startGeneration' },
          { guard: 'isSectionEndMarker' },
          { target: 'gathering', actions: ['startGeneration', 'takeCandidate'] },
        ],
      },
    },
    gathering: {
      description: 'webrtc-pc "gathering": the ICE agent is finding local candidates of one generation.',
      on: {
        'RTC.ICE_GATHERING_STATE': { guard: 'isCompleteReported', target: 'complete' },
        // Whichever comes first of the null candidate and the "complete" state ends the generation.
        'RTC.ICE_CANDIDATE': [
          { guard: 'isEndOfCandidates', target: 'complete' },
          { guard: 'isSectionEndMarker' },
          { actions: 'takeCandidate' },
        ],
      },
    },
    complete: {
      description: 'webrtc-pc "complete": the generation has ended; a restart gathers a new one.',
      entry: ['forwardEndOfCandidates', 'reportGatheringComplete'],
      on: {
        // ICE restart (webrtc-pc §4.4.1.5): a new generation, announced by either signal first.
        // The late twin of the end signal (null candidate or "complete" state) is ignored here.
        'RTC.ICE_GATHERING_STATE': { guard: 'isGatheringReported', target: 'gathering', actions: 'startGeneration' },
        'RTC.ICE_CANDIDATE': [
          { guard: 'isEndOfCandidates' },
          { guard: 'isSectionEndMarker' },
          { target: 'gathering', actions: ['startGeneration', 'takeCandidate'] },
        ],
      },
    },
    closed: {
      description: 'The peer connection is closed; nothing more is gathered.',
      type: 'final',
    },
  },
});
