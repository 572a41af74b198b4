import fc from 'fast-check';
import type { NegotiationNeededTiming } from './fake-network.js';

// fast-check arbitraries for negotiation scenarios between two peers, A and B. A scenario is
// plain data that reads as a story when printed ("B is polite; A adds audio; B adds video; ..."),
// so a shrunk counterexample is a scenario a person can replay in their head.

/** One of the two peers of a scenario. */
export type Side = 'A' | 'B';

/** One thing a scenario does to one side (add media, restart ICE, open a data channel, ...). */
export type ScenarioStep =
  | { readonly kind: 'addTransceiver'; readonly side: Side; readonly media: 'audio' | 'video' }
  /** A camera stream: its audio and video tracks added in one task (one `negotiationneeded` or two, see NegotiationNeededTiming). */
  | { readonly kind: 'addStream'; readonly side: Side }
  | { readonly kind: 'createDataChannel'; readonly side: Side; readonly label: string }
  | { readonly kind: 'restartIce'; readonly side: Side }
  | { readonly kind: 'connectivity'; readonly up: boolean }
  | { readonly kind: 'close'; readonly side: Side };

/** Signaling faults applied to every message of a kind (see `createSignalingPair` intercept). */
export interface ScenarioFaults {
  /** Every answer is delivered twice. */
  readonly duplicateAnswers: boolean;
  /** Each answer is delivered once more, stale, just before the sender's next description. */
  readonly replayStaleAnswers: boolean;
  /** Each description is held back until after the next candidate of the same sender. */
  readonly descriptionsAfterCandidates: boolean;
}

/**
 * A negotiation scenario for property tests: who is polite, the steps and the signaling faults.
 */
export interface NegotiationScenario {
  readonly polite: Side;
  /**
   * Each side's engine flavour of `negotiationneeded` on the fake network: 'per-stream' (Firefox,
   * and webrtc-pc as written) or 'per-track' (Chromium). Absent: 'per-stream' on both.
   */
  readonly negotiationNeeded?: Readonly<Record<Side, NegotiationNeededTiming>>;
  /** Run in order, each interleaved by the scheduler with everything else in flight. */
  readonly steps: readonly ScenarioStep[];
  readonly faults: ScenarioFaults;
}

/** Scenario faults that are all off. */
export const NO_FAULTS: ScenarioFaults = { duplicateAnswers: false, replayStaleAnswers: false, descriptionsAfterCandidates: false };

/** One line per step, as a person would tell it. */
export function describeStep(step: ScenarioStep): string {
  switch (step.kind) {
    case 'addTransceiver':
      return `${step.side} adds ${step.media}`;
    case 'addStream':
      return `${step.side} adds a stream (audio and video at once)`;
    case 'createDataChannel':
      return `${step.side} opens data channel "${step.label}"`;
    case 'restartIce':
      return `${step.side} restarts ICE`;
    case 'connectivity':
      return step.up ? 'the network comes back' : 'the network goes down';
    case 'close':
      return `${step.side} hangs up (close)`;
  }
}

/** A scenario as one readable line, e.g. `«B is polite; A adds audio; B adds video»`. */
export function describeScenario(scenario: NegotiationScenario): string {
  const faults = Object.entries(scenario.faults)
    .filter(([, on]) => on)
    .map(([name]) => name);
  const flavours = scenario.negotiationNeeded;
  return [
    `${scenario.polite} is polite`,
    ...(flavours ? [`negotiationneeded fires ${flavours.A} on A, ${flavours.B} on B`] : []),
    ...(faults.length > 0 ? [`signaling faults: ${faults.join(', ')}`] : []),
    ...scenario.steps.map(describeStep),
  ].join('; ');
}

/** Attaches the story as the value's fast-check string form (used in counterexamples). */
function told(scenario: NegotiationScenario): NegotiationScenario {
  return Object.defineProperty({ ...scenario }, fc.toStringMethod, {
    value: () => `«${describeScenario(scenario)}»`,
    enumerable: false,
  });
}

const sideArbitrary: fc.Arbitrary<Side> = fc.constantFrom('A', 'B');
const mediaArbitrary = fc.constantFrom<'audio' | 'video'>('audio', 'video');

/** Each side's negotiationneeded flavour, drawn independently: Firefox with Chromium, and each with itself. */
const flavoursArbitrary: fc.Arbitrary<Readonly<Record<Side, NegotiationNeededTiming>>> = fc.record({
  A: fc.constantFrom<NegotiationNeededTiming>('per-stream', 'per-track'),
  B: fc.constantFrom<NegotiationNeededTiming>('per-stream', 'per-track'),
});

const faultsArbitrary: fc.Arbitrary<ScenarioFaults> = fc.record({
  duplicateAnswers: fc.boolean(),
  replayStaleAnswers: fc.boolean(),
  descriptionsAfterCandidates: fc.boolean(),
});

/** What one side adds in a glare round: one track, or a whole stream (audio and video in one task). */
const glareAddArbitrary = (side: Side): fc.Arbitrary<ScenarioStep> =>
  fc.oneof(
    mediaArbitrary.map((media): ScenarioStep => ({ kind: 'addTransceiver', side, media })),
    fc.constant<ScenarioStep>({ kind: 'addStream', side }),
  );

/** Both sides want to negotiate at the same moment (glare), with either politeness. */
export function glareScenarioArbitrary(): fc.Arbitrary<NegotiationScenario> {
  return fc
    .record({ polite: sideArbitrary, addA: glareAddArbitrary('A'), addB: glareAddArbitrary('B'), negotiationNeeded: flavoursArbitrary })
    .map(({ polite, addA, addB, negotiationNeeded }) => told({ polite, negotiationNeeded, steps: [addA, addB], faults: NO_FAULTS }));
}

/** `rounds` rounds in which both sides add a transceiver at once. */
export function renegotiationBurstArbitrary(rounds = 10): fc.Arbitrary<NegotiationScenario> {
  return fc
    .record({
      polite: sideArbitrary,
      media: fc.array(fc.tuple(mediaArbitrary, mediaArbitrary), { minLength: rounds, maxLength: rounds }),
      faults: faultsArbitrary,
      negotiationNeeded: flavoursArbitrary,
    })
    .map(({ polite, media, faults, negotiationNeeded }) =>
      told({
        polite,
        negotiationNeeded,
        steps: media.flatMap(([a, b]): ScenarioStep[] => [
          { kind: 'addTransceiver', side: 'A', media: a },
          { kind: 'addTransceiver', side: 'B', media: b },
        ]),
        faults,
      }),
    );
}

/** Bounds of the scenarios `negotiationScenarioArbitrary` generates. */
export interface ScenarioConstraints {
  readonly maxSteps?: number;
  readonly restartIce?: boolean;
  readonly dataChannels?: boolean;
  readonly connectivityLoss?: boolean;
  readonly close?: boolean;
  readonly faults?: boolean;
}

/**
 * A mix of renegotiations, data channels, ICE restarts, network loss and (optionally) a close.
 * The network always comes back before the end, and nothing follows a close.
 */
export function negotiationScenarioArbitrary(constraints: ScenarioConstraints = {}): fc.Arbitrary<NegotiationScenario> {
  const {
    maxSteps = 8,
    restartIce = true,
    dataChannels = true,
    connectivityLoss = false,
    close = false,
    faults = true,
  } = constraints;
  const stepArbitraries: fc.Arbitrary<ScenarioStep>[] = [
    fc.record({ kind: fc.constant('addTransceiver' as const), side: sideArbitrary, media: mediaArbitrary }),
    fc.record({ kind: fc.constant('addStream' as const), side: sideArbitrary }),
  ];
  if (dataChannels) {
    stepArbitraries.push(
      fc.record({ kind: fc.constant('createDataChannel' as const), side: sideArbitrary, label: fc.constantFrom('chat', 'file', 'game') }),
    );
  }
  if (restartIce) stepArbitraries.push(fc.record({ kind: fc.constant('restartIce' as const), side: sideArbitrary }));
  if (connectivityLoss) stepArbitraries.push(fc.constant({ kind: 'connectivity' as const, up: false }));

  return fc
    .record({
      polite: sideArbitrary,
      // The first step makes sure there is something to negotiate.
      first: fc.record({ kind: fc.constant('addTransceiver' as const), side: sideArbitrary, media: mediaArbitrary }),
      rest: fc.array(fc.oneof(...stepArbitraries), { maxLength: maxSteps - 1 }),
      closer: close ? fc.option(sideArbitrary, { nil: null }) : fc.constant(null),
      faults: faults ? faultsArbitrary : fc.constant(NO_FAULTS),
      negotiationNeeded: flavoursArbitrary,
    })
    .map(({ polite, first, rest, closer, faults: chosenFaults, negotiationNeeded }) => {
      const steps: ScenarioStep[] = [first, ...rest];
      if (steps.some((step) => step.kind === 'connectivity')) steps.push({ kind: 'connectivity', up: true });
      if (closer) steps.push({ kind: 'close', side: closer });
      return told({ polite, negotiationNeeded, steps, faults: chosenFaults });
    });
}

/** Runs per property: at least 100 in CI, `PARLEY_FC_RUNS` raises (or lowers) it. */
export function propertyRuns(defaultRuns = 100): number {
  const fromEnvironment = Number((globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.['PARLEY_FC_RUNS']);
  return Number.isInteger(fromEnvironment) && fromEnvironment > 0 ? fromEnvironment : defaultRuns;
}
