import v8 from 'node:v8';
import vm from 'node:vm';
import { createFakeNetwork, createSignalingPair } from '@parley/core/testing';
import type { FakeRtcPort } from '@parley/core/testing';
import { describe, expect, it } from 'vitest';
import { FULL, QUICK, machinesResult } from '../src/machines/index.js';
import { HandWrittenPeer, START, SUBJECTS, emptyTally, microtaskScheduler, negotiate, runNegotiations, verifyTally } from '../src/machines/negotiate.js';
import type { Subject } from '../src/machines/negotiate.js';
import { idlePeerBytes } from '../src/machines/memory.js';
import { countParleyWork, flatFloorMachine, floorBound, floorMachine, measureXstateFloor } from '../src/machines/floor.js';
import { createActor } from 'xstate';
import { goalMet } from '../src/types.js';

describe('machines benchmark: the work of one run', () => {
  it.each(SUBJECTS)('%s completes 20 negotiations: offer, answer, candidates both ways, connected on both sides', async (subject) => {
    const { tally, ms } = await runNegotiations(subject, 20, { stallMs: 4000 });
    expect(ms).toBeGreaterThan(0);
    expect(tally).toEqual({
      negotiations: 20,
      connectedSides: 40,
      offers: 20,
      answers: 20,
      // two host candidates per side (the fake port's default) and one end-of-candidates each way
      candidates: 80,
      endOfCandidates: 40,
      illegalCalls: 0,
    });
  });

  it('both subjects send the same messages in a negotiation', async () => {
    const kinds: Record<string, string[]> = {};
    for (const subject of SUBJECTS) {
      const tally = emptyTally();
      await negotiate(subject, tally);
      kinds[subject] = Object.entries(tally).map(([k, v]) => `${k}=${v}`);
    }
    expect(kinds['parley']).toEqual(kinds['handWritten']);
  });

  it('the check fails loudly when a negotiation is incomplete', () => {
    const tally = { ...emptyTally(), negotiations: 3, connectedSides: 5, offers: 3, answers: 3, candidates: 12, endOfCandidates: 6 };
    expect(() => verifyTally('parley', tally, 3)).toThrow(/5 sides connected, expected 6/);
    expect(() => verifyTally('handWritten', { ...tally, connectedSides: 6, illegalCalls: 1 }, 3)).toThrow(/illegal RTC call/);
    expect(() => verifyTally('handWritten', { ...tally, connectedSides: 6, candidates: 0 }, 3)).toThrow(/candidates crossed/);
  });

  it('a side that never connects stalls the run, which then fails', async () => {
    const original = START.handWritten;
    // A "subject" that ignores everything: nothing is ever negotiated.
    (START as Record<Subject, typeof original>).handWritten = () => ({ close: () => undefined });
    try {
      await expect(runNegotiations('handWritten', 1, { stallMs: 200 })).rejects.toThrow(/stalled after 0 of 1/);
    } finally {
      (START as Record<Subject, typeof original>).handWritten = original;
    }
  });
});

/** Waits (in macrotasks) until `done` holds, or fails after `ms`. */
async function until(done: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!done()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

describe('the hand-written loop under glare (both sides offer at once)', () => {
  it('ends stable and connected on both sides, with every transceiver negotiated', async () => {
    for (let i = 0; i < 10; i++) {
      const network = createFakeNetwork({ scheduler: microtaskScheduler });
      const a = network.createPort({ name: 'A' });
      const b = network.createPort({ name: 'B' });
      a.addTransceiver('audio');
      b.addTransceiver('video');
      const [sa, sb] = createSignalingPair({ scheduler: microtaskScheduler });
      const impolite = new HandWrittenPeer(a, sa, false);
      const polite = new HandWrittenPeer(b, sb, true);
      const settled = (port: FakeRtcPort): boolean =>
        port.signalingState === 'stable' && port.connectionState === 'connected' && port.getTransceivers().every((t) => t.mid !== null);
      await until(() => settled(a) && settled(b) && sa.pending() === 0 && sb.pending() === 0 && !a.negotiationNeeded && !b.negotiationNeeded);
      expect(a.getTransceivers()).toHaveLength(2);
      expect(b.getTransceivers()).toHaveLength(2);
      // The offers collided: both were sent, the polite side rolled its own back.
      expect(sa.sent.filter((m) => m.kind === 'description' && m.description.type === 'offer').length).toBeGreaterThanOrEqual(1);
      expect(sb.sent.filter((m) => m.kind === 'description' && m.description.type === 'offer').length).toBeGreaterThanOrEqual(1);
      expect(b.operations).toContain('setLocalDescription(rollback)');
      // Only the swallowed candidates of the ignored offer (W3C §10.7) may have been refused.
      expect(a.illegalCalls.filter((call) => !call.method.startsWith('addIceCandidate'))).toEqual([]);
      expect(b.illegalCalls).toEqual([]);
      expect(impolite.errors).toEqual([]);
      expect(polite.errors).toEqual([]);
      impolite.close();
      polite.close();
    }
  });
});

describe('memory per idle peer', () => {
  it('counts the peer, not its port: Parley holds more than the hand-written object, both more than 0', () => {
    // vitest's workers run without --expose-gc: get V8's gc() the documented-for-tests way.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const collect = (): void => {
      gc();
      gc();
    };
    const parley = idlePeerBytes('parley', 200, collect);
    const handWritten = idlePeerBytes('handWritten', 200, collect);
    expect(handWritten).toBeGreaterThan(200); // two subscriptions and the object: hundreds of bytes at least
    expect(parley).toBeGreaterThan(handWritten); // two actors (the peer and its ports) with their snapshots
  });
});

describe("xstate's floor and what Parley asks of it", () => {
  it("counts Parley's actors, events and microsteps per negotiation with xstate's inspection API", async () => {
    // A tripwire as much as a check: each number moves the floor bound of machines.overHandWritten.
    // Two actors (one machine per peer, its regions inside); the events are listed in the profile note.
    expect(await countParleyWork(10)).toEqual({ actors: 2, events: 33, microsteps: 42 });
  });

  it('measures the floor on a machine whose every event takes one transition in one of its three regions', () => {
    const actor = createActor(floorMachine).start();
    actor.send({ type: 'NEGOTIATION' });
    actor.send({ type: 'CONNECTION' });
    expect(actor.getSnapshot().value).toEqual({ negotiation: 'b', gathering: 'a', connection: 'b' });
    expect(actor.getSnapshot().context.count).toBe(2);
    actor.stop();
    const floor = measureXstateFloor('regions', { eventsPerRun: 2000, actorsPerRun: 500, warmupRuns: 1, runs: 3 });
    expect(floor.microsPerEvent).toBeGreaterThan(0);
    expect(floor.microsPerActor).toBeGreaterThan(floor.microsPerEvent);
  });

  it('measures the least any machine costs on one of two states and no regions, each event one transition', () => {
    const actor = createActor(flatFloorMachine).start();
    actor.send({ type: 'STEP' });
    expect(actor.getSnapshot().value).toBe('b');
    actor.send({ type: 'STEP' });
    expect(actor.getSnapshot().value).toBe('a');
    expect(actor.getSnapshot().context.count).toBe(2);
    actor.stop();
    const flat = measureXstateFloor('flat', { eventsPerRun: 2000, actorsPerRun: 500, warmupRuns: 1, runs: 3 });
    expect(flat.microsPerEvent).toBeGreaterThan(0);
    expect(flat.microsPerActor).toBeGreaterThan(flat.microsPerEvent);
  });

  it('bounds Parley / hand-written by the hand-written work plus the floor of Parley\'s actors and events', () => {
    const bound = floorBound({ microsPerEvent: 5, microsPerActor: 20 }, { actors: 2, events: 30, microsteps: 40 }, 100, 0.25);
    expect(bound.floorMicros).toBe(2 * 20 + 30 * 5);
    expect(bound.bestRatio).toBeCloseTo(100 / (100 + 190), 10);
    // 0.25 allows 400 µs: 100 of hand-written work, 40 of actors, so 260 / 5 = 52 events
    expect(bound.eventsForGoal).toBeCloseTo(52, 10);
    expect(floorBound({ microsPerEvent: 5, microsPerActor: 500 }, { actors: 2, events: 30, microsteps: 40 }, 100, 0.25).eventsForGoal).toBeLessThan(0);
  });
});

describe('machines result', () => {
  const throughput = {
    kind: 'throughput' as const,
    rates: { parley: [1000, 1200, 1100], handWritten: [4000, 4400, 4200] },
    wallRates: { parley: [900, 1000, 950], handWritten: [3000, 3100, 3200] },
    warmupRates: { parley: [500], handWritten: [2000] },
  };
  const memory = {
    parley: { kind: 'memory' as const, subject: 'parley' as const, bytesPerPeer: [20_000, 21_000] },
    handWritten: { kind: 'memory' as const, subject: 'handWritten' as const, bytesPerPeer: [1_500, 1_600] },
  };
  const measured = {
    floors: { regions: { microsPerEvent: 6, microsPerActor: 20 }, flat: { microsPerEvent: 3, microsPerActor: 10 } },
    work: { actors: 2, events: 30, microsteps: 40 },
  };

  it('reports medians, the ratio of medians, memory and settings, with the goal on negotiationsPerSecond', () => {
    const result = machinesResult(throughput, memory, QUICK, true, measured);
    expect(result.name).toBe('machines');
    expect(result.json['negotiationsPerSecond']).toBe(1100);
    expect(result.json['overHandWritten']).toBe(round3(1100 / 4200));
    expect(result.json['handWrittenNegotiationsPerSecond']).toBe(4200);
    expect(result.json['wallClockOverHandWritten']).toBe(round3(950 / 3100));
    expect(result.json['parley']).toMatchObject({ idlePeerBytes: 20_000, samples: [1000, 1200, 1100] });
    expect(result.json['handWritten']).toMatchObject({ idlePeerBytes: 1_500 });
    expect(result.json['settings']).toMatchObject({ ...QUICK, pinnedToOneCpu: true });
    expect(result.json['memoryOverHandWritten']).toBe(round3(20_000 / 1_500));
    expect(result.goals).toEqual([
      expect.objectContaining({ key: 'machines.negotiationsPerSecond', value: 1100, goal: 2000, kind: 'at-least' }),
      expect.objectContaining({ key: 'machines.overHandWritten', value: round3(1100 / 4200), goal: 0.35, kind: 'at-least' }),
      expect.objectContaining({ key: 'machines.memoryOverHandWritten', value: round3(20_000 / 1_500), goal: 5, kind: 'at-most' }),
    ]);
    expect(result.goals.map(goalMet)).toEqual([false, false, false]);
    expect(result.notes.some((note) => note.startsWith('Goal missed'))).toBe(true);
    // hand-written 1e6 / 4200 = 238 µs; floor 2 x 20 + 30 x 6 = 220 µs
    expect(result.json['atXstateFloor']).toEqual({ floorMicrosPerNegotiation: 220, bestOverHandWritten: round3(238.095 / 458.095), eventsForGoal: round3((238.095 / 0.35 - 238.095 - 40) / 6) });
    expect(result.notes.find((note) => note.startsWith('Goal missed: Parley / hand-written'))).toContain(`could not exceed ${String(round3(238.095 / 458.095))} here`);
    // flat: 2 x 10 + 30 x 3 = 110 µs
    expect(result.json['atXstateFlatFloor']).toEqual({ floorMicrosPerNegotiation: 110, bestOverHandWritten: round3(238.095 / 348.095) });
    expect(result.notes.find((note) => note.startsWith('Goal missed: Parley / hand-written'))).toContain(`would reach ${String(round3(238.095 / 348.095))}.`);
    expect(result.table.rows).toHaveLength(2);
    for (const row of result.table.rows) expect(row).toHaveLength(result.table.columns.length);
  });

  it('says when the child was not pinned, and has no missed-goal note when the goal is met', () => {
    const fast = { ...throughput, rates: { parley: [2500, 2600, 2700], handWritten: [4000, 4100, 4200] } };
    const lean = { ...memory, parley: { ...memory.parley, bytesPerPeer: [6_000, 6_200] } };
    const result = machinesResult(fast, lean, FULL, false, measured);
    expect(result.goals.map(goalMet)).toEqual([true, true, true]);
    expect(result.notes.some((note) => note.includes('taskset is not available'))).toBe(true);
    expect(result.notes.some((note) => note.startsWith('Goal missed'))).toBe(false);
  });
});

function round3(value: number): number {
  return Number(value.toPrecision(3));
}
