import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import {
  createFakeNetwork,
  createScenarioFaultInjector,
  createSignalingPair,
  describeStep,
  glareScenarioArbitrary,
  negotiationScenarioArbitrary,
  propertyRuns,
  renegotiationBurstArbitrary,
  startTwoPeers,
} from '../src/testing/index.js';
import type { NegotiationScenario } from '../src/testing/index.js';
import { collectUnhandledRejections } from './helpers/unhandled-rejections.js';

// Two peers negotiate over the JSEP-faithful fake network while fast-check's scheduler decides
// the order of every signaling delivery and every RTC promise. Invariants, for every order:
// no illegal RTC call, no error, no unhandled rejection, no deadlock, and both sides end stable
// and connected with the same transceivers and open data channels (or closed, silently).

const RUNS = propertyRuns(100);
/** Each run takes a few ms; the budget grows with PARLEY_FC_RUNS. */
const TIMEOUT_MS = Math.max(60_000, RUNS * 100);
/** Simulated time advanced each time the scheduler runs dry (xstate delays: recovery, backoff). */
const TICK_MS = 250;
const MAX_TICKS = 400;

const unhandled = collectUnhandledRejections();

async function runScenario(s: fc.Scheduler, scenario: NegotiationScenario): Promise<{ violations: string[]; log: readonly string[] }> {
  const clock = new SimulatedClock();
  const network = createFakeNetwork({ scheduler: s });
  // Each side behaves as its drawn engine does (negotiationneeded per stream, Firefox, or per track, Chromium).
  const ports = {
    A: network.createPort({ name: 'A', ...(scenario.negotiationNeeded ? { negotiationNeeded: scenario.negotiationNeeded.A } : {}) }),
    B: network.createPort({ name: 'B', ...(scenario.negotiationNeeded ? { negotiationNeeded: scenario.negotiationNeeded.B } : {}) }),
  };
  const faults = createScenarioFaultInjector(scenario.faults);
  const [a, b] = createSignalingPair({ scheduler: s, intercept: faults.intercept });
  const run = startTwoPeers({
    scenario,
    ports,
    signaling: { A: a, B: b },
    setConnectivity: (up) => network.setConnectivity(up),
    clock,
  });
  s.scheduleSequence(scenario.steps.map((step) => ({ label: describeStep(step), builder: () => Promise.resolve(run.applyStep(step)) })));
  for (let tick = 0; tick < MAX_TICKS; tick++) {
    await s.waitIdle();
    const held = faults.takeHeld();
    for (const { from, message } of held) (from === 'a' ? a : b).send(message);
    if (held.length > 0) continue;
    if (run.isSettled() && s.count() === 0) break;
    clock.increment(TICK_MS);
  }
  const violations = run.violations();
  if (unhandled.length > 0) violations.push(...unhandled.splice(0).map((reason) => `unhandled rejection: ${String(reason)}`));
  run.dispose();
  return { violations, log: run.log };
}

async function checkScenarios(arbitrary: fc.Arbitrary<NegotiationScenario>, runs = RUNS): Promise<void> {
  await fc.assert(
    fc.asyncProperty(fc.scheduler(), arbitrary, async (s, scenario) => {
      const { violations, log } = await runScenario(s, scenario);
      if (violations.length > 0) {
        throw new Error(`${violations.join('\n')}\n--- what happened ---\n${log.slice(-60).join('\n')}`);
      }
    }),
    { numRuns: runs },
  );
}

describe('perfect negotiation over the fake network, any delivery order', { timeout: TIMEOUT_MS }, () => {
  it('glare: both sides offer at once, with either politeness', async () => {
    await checkScenarios(glareScenarioArbitrary());
  });

  it('ten rounds of simultaneous addTransceiver end with equal counts', async () => {
    await checkScenarios(renegotiationBurstArbitrary(10));
  });

  it('renegotiation, data channels and ICE restarts with duplicated, stale and reordered signaling', async () => {
    await checkScenarios(negotiationScenarioArbitrary({ maxSteps: 10, faults: true }));
  });

  it('connectivity loss is recovered by an ICE restart', async () => {
    await checkScenarios(negotiationScenarioArbitrary({ maxSteps: 6, connectivityLoss: true, faults: false }));
  });

  it('a close at any point: no event after close, no illegal call, no unhandled rejection', async () => {
    await checkScenarios(negotiationScenarioArbitrary({ maxSteps: 6, close: true, faults: true }));
  });
});

describe('the invariants can fail', () => {
  it('a peer that never answers leaves the run unsettled with a readable reason', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), glareScenarioArbitrary(), async (s, scenario) => {
        const network = createFakeNetwork({ scheduler: s });
        const ports = { A: network.createPort({ name: 'A' }), B: network.createPort({ name: 'B' }) };
        // B's outgoing messages are all lost.
        const [a, b] = createSignalingPair({ scheduler: s, intercept: (message, from) => (from === 'b' ? [] : [message]) });
        const run = startTwoPeers({ scenario, ports, signaling: { A: a, B: b } });
        for (const step of scenario.steps) run.applyStep(step);
        await s.waitIdle();
        const violations = run.violations();
        run.dispose();
        expect(violations.length).toBeGreaterThan(0);
        expect(violations.join('\n')).toMatch(/not connected|signaling state|negotiation is/);
      }),
      { numRuns: 10 },
    );
  });
});
