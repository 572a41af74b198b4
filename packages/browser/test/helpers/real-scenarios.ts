import fc from 'fast-check';
import { negotiationOf } from '@parley/core';
import type { PeerMessage } from '@parley/core';
import { createScenarioFaultInjector, createSignalingPair, describeScenario, startTwoPeers } from '@parley/core/testing';
import type { FakeSignalingPort, NegotiationScenario, ScenarioFaults, ScenarioStep, Side, SignalingEnd, TwoPeers } from '@parley/core/testing';
import { keepLoopbackCandidates } from '../../src/index.js';
import { createRealPort } from './wrtc.js';
import { pollUntil, sleep } from './wait.js';
import type { RealScenarioPort } from './wrtc.js';

// The core's negotiation scenarios run on two real libwebrtc peer connections (createRtcPort
// over @roamhq/wrtc), loopback only. There is no scheduler here: the engine's own threads and
// macrotask signaling decide the order, and wall-clock gaps between steps vary the overlap.
// A run is over when every invariant of `startTwoPeers` holds and nothing is in flight.

/** How long a run may take to settle on loopback before it counts as a deadlock. */
export const SETTLE_TIMEOUT_MS = 10_000;

/**
 * The real-time stand-in for the core property test's "the scheduler ran dry": a description
 * held back by `descriptionsAfterCandidates` goes on alone when its sender sends nothing more
 * for this long (e.g. every candidate of that generation was already sent).
 */
const HOLD_LIMIT_MS = 25;

const SIDES: readonly Side[] = ['A', 'B'];
const sideOf = (end: SignalingEnd): Side => (end === 'a' ? 'A' : 'B');

type Resend = (from: SignalingEnd, message: PeerMessage) => void;

interface Interceptor {
  intercept(message: PeerMessage, from: SignalingEnd): readonly PeerMessage[];
  /** True while a message is held back (the run is not quiet yet). */
  holding(): boolean;
  dispose(): void;
}

/**
 * The scenario's signaling faults (core/testing's injector) as an intercept of the signaling
 * pair, with a held description released by a timer instead of by an idle scheduler.
 */
function faultInjector(faults: ScenarioFaults, resend: Resend): Interceptor {
  const timers: Record<SignalingEnd, ReturnType<typeof setTimeout> | undefined> = { a: undefined, b: undefined };
  const injector = createScenarioFaultInjector(faults, {
    onHold: (from) => {
      clearTimeout(timers[from]);
      timers[from] = setTimeout(() => {
        for (const { message } of injector.takeHeld(from)) resend(from, message);
      }, HOLD_LIMIT_MS);
    },
  });
  return {
    intercept: (message, from) => injector.intercept(message, from),
    holding: () => injector.holding(),
    dispose() {
      clearTimeout(timers.a);
      clearTimeout(timers.b);
    },
  };
}

/**
 * Makes glare certain instead of likely: from each side's first offer on, its messages are held
 * until the other side has sent an offer too; then both queues go out in order. Each side then
 * receives the other's offer while its own is out: an offer collision (webrtc-pc §10.7
 * "Perfect Negotiation Example").
 */
function collidingOffersGate(resend: Resend): Interceptor {
  const held: Record<SignalingEnd, PeerMessage[] | null> = { a: null, b: null };
  let open = false;
  const flush = (): void => {
    open = true;
    for (const end of ['a', 'b'] as const) for (const message of held[end] ?? []) resend(end, message);
    held.a = null;
    held.b = null;
  };
  return {
    intercept(message, from) {
      if (open) return [message];
      const queue = held[from];
      if (queue) {
        queue.push(message);
        return [];
      }
      if (message.kind === 'description' && message.description.type === 'offer') {
        held[from] = [message];
        // Released after the current send returns (not re-entrantly inside it).
        if (held.a && held.b) queueMicrotask(flush);
        return [];
      }
      return [message];
    },
    holding: () => !open && (held.a !== null || held.b !== null),
    dispose() {},
  };
}

export interface RealScenarioOptions {
  /** Hold both sides' first offers until both are out, so they surely collide (no faults). */
  readonly forceGlare?: boolean;
  /** Sees every message a side sends (not the re-sends of held ones), e.g. to close mid-offer. */
  readonly onSend?: (message: PeerMessage, from: Side) => void;
  /** Where the test file collects unhandled rejections; reported as violations. */
  readonly unhandledRejections?: unknown[];
}

export interface RealScenario {
  readonly scenario: NegotiationScenario;
  readonly run: TwoPeers;
  readonly ports: Readonly<Record<Side, RealScenarioPort>>;
  readonly signaling: Readonly<Record<Side, FakeSignalingPort>>;
  /** Applies `steps` in order, waiting `gaps[i]` ms before step i; a 0 gap applies it in the
   * same tick as the step before, so the two really collide. */
  applySteps(steps: readonly ScenarioStep[], gaps?: readonly number[]): Promise<void>;
  /** Nothing in flight: no message undelivered or held, no open side mid-negotiation. */
  isQuiet(): boolean;
  /** Waits until the invariants hold and the run is quiet, then returns what still fails (empty
   * when all is well, with a "did not settle" line after `timeoutMs`). */
  settle(timeoutMs?: number): Promise<string[]>;
  /** The violations with the scenario's story and what happened, for a failure message. */
  report(violations: readonly string[]): string;
  /** Closes both peers and the signaling pair; idempotent. */
  dispose(): void;
}

/** Negotiation states in which nothing is in flight (the open side may wait forever for an
 * answer from a side that closed). */
const RESTING_NEGOTIATION_STATES: readonly unknown[] = ['stable', 'awaitingAnswer'];

/** Starts two real peers for `scenario` (nothing applied yet). */
export function startRealScenario(scenario: NegotiationScenario, options: RealScenarioOptions = {}): RealScenario {
  // A real stack has no switch for the network: connectivity steps belong to the fake network.
  if (scenario.steps.some((step) => step.kind === 'connectivity')) {
    throw new Error('startRealScenario: connectivity steps cannot run on real peers (generate scenarios with connectivityLoss: false)');
  }
  const anyFault = Object.values(scenario.faults).some(Boolean);
  if (options.forceGlare && anyFault) throw new Error('startRealScenario: forceGlare is for scenarios without signaling faults');

  let passThrough = false;
  let pair: readonly [FakeSignalingPort, FakeSignalingPort] | null = null;
  const resend: Resend = (from, message) => {
    if (!pair) return;
    passThrough = true;
    try {
      pair[from === 'a' ? 0 : 1].send(message);
    } finally {
      passThrough = false;
    }
  };
  const interceptor = options.forceGlare ? collidingOffersGate(resend) : faultInjector(scenario.faults, resend);
  pair = createSignalingPair({
    intercept: (message, from) => {
      // A re-send of a held message: not a new send (no onSend); the interceptor lets it through.
      if (passThrough) return interceptor.intercept(message, from);
      options.onSend?.(message, sideOf(from));
      return interceptor.intercept(message, from);
    },
  });
  const signaling = { A: pair[0], B: pair[1] };
  const ports = { A: createRealPort(), B: createRealPort() };
  const run = startTwoPeers({ scenario, ports, signaling, peerOptions: { candidateFilter: keepLoopbackCandidates } });
  let disposed = false;

  const isQuiet = (): boolean => {
    if (interceptor.holding() || signaling.A.pending() > 0 || signaling.B.pending() > 0) return false;
    if (run.closed.size === 0) return true; // isSettled already demands stable negotiation.
    return SIDES.filter((side) => !run.closed.has(side)).every((side) => {
      const negotiation = negotiationOf(run.peers[side].actor.getSnapshot());
      return negotiation !== null && RESTING_NEGOTIATION_STATES.includes(negotiation.value) && negotiation.context.inbox.length === 0;
    });
  };

  const dispose = (): void => {
    if (disposed) return;
    disposed = true;
    interceptor.dispose();
    run.dispose();
    signaling.A.close();
    signaling.B.close();
    for (const side of SIDES) if (!ports[side].closed) ports[side].close();
  };

  return {
    scenario,
    run,
    ports,
    signaling,
    async applySteps(steps, gaps = []) {
      for (const [index, step] of steps.entries()) {
        const gap = gaps[index] ?? 0;
        if (gap > 0) await sleep(gap);
        if (disposed) return;
        run.applyStep(step);
      }
    },
    isQuiet,
    async settle(timeoutMs = SETTLE_TIMEOUT_MS) {
      const outcome = await pollUntil(() => run.isSettled() && isQuiet(), timeoutMs);
      const violations = run.violations();
      if (!outcome.held) {
        const inFlight = `A->B ${signaling.A.pending()}, B->A ${signaling.B.pending()}${interceptor.holding() ? ', a description held' : ''}`;
        violations.push(
          `did not settle within ${timeoutMs} ms${isQuiet() ? '' : ` (signals still in flight: ${inFlight})`}; ` +
            `the event loop's longest stall meanwhile: ${outcome.longestGapMs} ms`,
        );
      }
      const unhandled = options.unhandledRejections?.splice(0) ?? [];
      violations.push(...unhandled.map((reason) => `unhandled rejection: ${String(reason)}`));
      return violations;
    },
    report(violations) {
      return [`scenario: «${describeScenario(scenario)}»`, ...violations, '--- what happened ---', ...run.log.slice(-80)].join('\n');
    },
    dispose,
  };
}

/**
 * Runs `scenario` on real peers until it settles and throws a readable report when an invariant
 * fails. Always cleans up.
 */
export async function checkRealScenario(
  scenario: NegotiationScenario,
  gaps: readonly number[] = [],
  options: RealScenarioOptions & { readonly settleTimeoutMs?: number } = {},
): Promise<void> {
  const real = startRealScenario(scenario, options);
  try {
    await real.applySteps(scenario.steps, gaps);
    const violations = await real.settle(options.settleTimeoutMs);
    if (violations.length > 0) throw new Error(real.report(violations));
  } finally {
    real.dispose();
  }
}

/**
 * The engine quirk the generated scenarios steer around. libwebrtc in @roamhq/wrtc 0.10 (the
 * rollback bug of crbug.com/1032987): when a side rolls back a local offer that introduced the
 * data m-section (its first data channel) and then applies a remote offer, its answer rejects the
 * data section (port 0) or leaves it out, and its data channels never open; where the remote
 * offer had no data section, `negotiationneeded` then fires after every round, an endless
 * renegotiation. Only the polite side rolls back (webrtc-pc §10.7), so in generated scenarios
 * the impolite side opens every data channel; the polite side opening one mid-call, with no
 * collision, is a named example. `negotiation.real.test.ts` pins the quirk down, so an engine
 * that fixes it shows up there.
 */
export function impoliteOpensDataChannels(scenario: NegotiationScenario): NegotiationScenario {
  const impolite: Side = scenario.polite === 'A' ? 'B' : 'A';
  const steps = scenario.steps.map((step): ScenarioStep => (step.kind === 'createDataChannel' ? { ...step, side: impolite } : step));
  const moved: NegotiationScenario = { ...scenario, steps };
  // Keep the story as fast-check's printed form of the value (as the core arbitraries do).
  return Object.defineProperty(moved, fc.toStringMethod, { value: () => `«${describeScenario(moved)}»`, enumerable: false });
}

/** Milliseconds before each step: mostly 0 (same tick as the step before) or a few ms (the
 * step lands mid-negotiation), sometimes long enough for a round to finish. */
export function stepGapsArbitrary(length = 24): fc.Arbitrary<number[]> {
  return fc.array(fc.constantFrom(0, 0, 1, 5, 15, 40), { minLength: length, maxLength: length });
}

/** Gaps for scenarios made of (A, B) pairs: the B step of each pair lands in A's tick. */
export function simultaneousPairs(gaps: readonly number[]): number[] {
  return gaps.map((gap, index) => (index % 2 === 1 ? 0 : gap));
}
