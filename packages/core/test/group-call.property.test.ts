import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import type { PeerMessage } from '../src/index.js';
import { addGroupMember, createFakeNetwork, createFakeRoom, meshViolations, propertyRuns } from '../src/testing/index.js';
import type { GroupMember } from '../src/testing/index.js';
import { collectUnhandledRejections } from './helpers/unhandled-rejections.js';

// Group calls of 3 to 5 members over the fake room and the JSEP-faithful fake network, while
// fast-check's scheduler decides the order of every signaling delivery and every RTC promise:
// members join, leave, vanish from the room, add and replace tracks (group.addTrack and
// replaceTrack, sent to every member) and restart ICE at random, with
// duplicated messages. Invariants: once settled, every member in the call holds a connected,
// stable pair with every other one (same session, equal transceivers, chat open) and nothing
// with anyone else; no illegal RTC call, no error, no unhandled rejection; and after everyone
// leaves and stops, no peer actor, timer or subscription is left.

const RUNS = propertyRuns(100);
const TIMEOUT_MS = Math.max(60_000, RUNS * 1000);
/** Simulated time advanced each time the scheduler runs dry (join window, recovery, backoff). */
const TICK_MS = 250;
const MAX_TICKS = 400;
const IDS = ['a', 'b', 'c', 'd', 'e'] as const;

const unhandled = collectUnhandledRejections();
const stats = new Map<number, number>();

type GroupStep =
  | { readonly kind: 'join' | 'leave' | 'vanish' | 'replaceTrack'; readonly who: number }
  | { readonly kind: 'addTrack'; readonly who: number; readonly media: 'audio' | 'video' }
  | { readonly kind: 'restartIce'; readonly who: number; readonly other: number };

interface GroupScenario {
  readonly size: number;
  /** Who joins at the start (the others may join in the steps). */
  readonly joined: readonly boolean[];
  readonly steps: readonly GroupStep[];
  /** Message i is sent twice when duplicate[i % length] (empty: no duplicates). */
  readonly duplicate: readonly boolean[];
  /** The size cap of every member's group call. */
  readonly maxMembers: number;
}

const scenarioArbitrary: fc.Arbitrary<GroupScenario> = fc.integer({ min: 3, max: 5 }).chain((size) => {
  const who = fc.integer({ min: 0, max: size - 1 });
  // Weighted so that most runs end with a mesh of 3 or more (joins outnumber leaves and vanishes).
  const step: fc.Arbitrary<GroupStep> = fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('join' as const), who }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('leave' as const), who }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('vanish' as const), who }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('addTrack' as const), who, media: fc.constantFrom('audio' as const, 'video' as const) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('restartIce' as const), who, other: who }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('replaceTrack' as const), who }) },
  );
  return fc.record({
    size: fc.constant(size),
    joined: fc.array(fc.integer({ min: 0, max: 3 }).map((n) => n > 0), { minLength: size, maxLength: size }),
    steps: fc.array(step, { maxLength: 8 }),
    duplicate: fc.oneof(fc.constant([] as boolean[]), fc.array(fc.boolean(), { minLength: 1, maxLength: 6 })),
    maxMembers: fc.constantFrom(3, 4, 6),
  });
});

function describeStep(step: GroupStep): string {
  const name = IDS[step.who];
  switch (step.kind) {
    case 'addTrack':
      return `${name} adds ${step.media}`;
    case 'replaceTrack':
      return `${name} replaces its latest track`;
    case 'restartIce':
      return `${name} restarts ICE with ${IDS[step.other]}`;
    default:
      return `${name} ${step.kind}s`;
  }
}

async function runScenario(s: fc.Scheduler, scenario: GroupScenario): Promise<{ violations: string[]; log: string[] }> {
  const log: string[] = [];
  const replaceErrors: string[] = [];
  const clock = new SimulatedClock();
  const network = createFakeNetwork({ scheduler: s });
  let sent = 0;
  const room = createFakeRoom({
    scheduler: s,
    intercept: (message: PeerMessage, from, to) => {
      const twice = scenario.duplicate.length > 0 && scenario.duplicate[sent % scenario.duplicate.length] === true;
      sent += 1;
      if (message.kind.startsWith('group-')) log.push(`${from}->${to}: ${message.kind} ${message.session}${twice ? ' (twice)' : ''}`);
      return twice ? [message, message] : [message];
    },
  });
  const members: GroupMember[] = IDS.slice(0, scenario.size).map((id) => addGroupMember(room, network, id, { clock, maxMembers: scenario.maxMembers }));
  const apply = (step: GroupStep): void => {
    log.push(`step: ${describeStep(step)}`);
    const member = members[step.who] as GroupMember;
    if (!member.room.present) return;
    switch (step.kind) {
      case 'join':
        return member.group.join();
      case 'leave':
        return member.group.leave();
      case 'vanish':
        return room.vanish(member.id);
      case 'addTrack':
        member.addTrack(step.media);
        return;
      case 'replaceTrack':
        // Settles once every pair sends the new track, or ended meanwhile; a rejection is a violation.
        member.replaceLatestTrack()?.catch((error: unknown) => replaceErrors.push(`${member.id}: replaceTrack failed: ${String(error)}`));
        return;
      case 'restartIce':
        return member.group.restartIce(IDS[step.other] as string);
    }
  };
  members.forEach((member, index) => {
    if (scenario.joined[index]) member.group.join();
  });
  s.scheduleSequence(scenario.steps.map((step) => ({ label: describeStep(step), builder: () => Promise.resolve(apply(step)) })));
  const settle = async (done: () => boolean): Promise<void> => {
    for (let tick = 0; tick < MAX_TICKS; tick++) {
      await s.waitIdle();
      if (done() && s.count() === 0) return;
      clock.increment(TICK_MS);
    }
  };
  await settle(() => meshViolations(members).length === 0);
  const violations = meshViolations(members);
  violations.push(...replaceErrors);
  for (const member of members) {
    const size = member.group.status().members.size;
    if (size + 1 > scenario.maxMembers) violations.push(`${member.id} is in a call of ${size + 1}, above the cap of ${scenario.maxMembers}`);
  }
  const inCall = members.filter((m) => m.room.present && m.group.status().state === 'joined').length;
  stats.set(inCall, (stats.get(inCall) ?? 0) + 1);

  // Everyone leaves: nothing may be left running.
  for (const member of members) member.group.leave();
  await settle(() => true);
  for (const member of members) {
    const snapshot = member.group.actor.getSnapshot();
    if (snapshot.context.pairs.size > 0) violations.push(`${member.id} left but holds ${snapshot.context.pairs.size} pair(s)`);
    const children = Object.keys(snapshot.children).filter((id) => id !== 'room');
    if (children.length > 0) violations.push(`${member.id} left but its group still runs ${children.join(', ')}`);
    const running = member.peers.filter((peer) => peer.getSnapshot().status === 'active').length;
    if (running > 0) violations.push(`${member.id} left but ${running} peer actor(s) still run`);
    const timers = Object.keys(member.group.actor.system.getSnapshot()._scheduledEvents);
    if (timers.length > 0) violations.push(`${member.id} left but ${timers.length} timer(s) are scheduled: ${timers.join(', ')}`);
    const open = member.ports.filter((port) => port.connectionState !== 'closed').map((port) => port.name);
    if (open.length > 0) violations.push(`${member.id} left but ports ${open.join(', ')} are open`);
    member.group.stop();
  }
  if (room.openSubscriptions() > 0) violations.push(`${room.openSubscriptions()} subscription(s) to the room are open after every group call stopped`);
  if (unhandled.length > 0) violations.push(...unhandled.splice(0).map((reason) => `unhandled rejection: ${String(reason)}`));
  return { violations, log };
}

describe('group calls over the fake network, any delivery order', { timeout: TIMEOUT_MS }, () => {
  it('3 to 5 members joining, leaving, vanishing, adding tracks and restarting ICE end in a connected mesh, and leave nothing running', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), scenarioArbitrary, async (s, scenario) => {
        const { violations, log } = await runScenario(s, scenario);
        if (violations.length > 0) throw new Error(`${violations.join('\n')}\n--- what happened ---\n${log.slice(-60).join('\n')}`);
      }),
      { numRuns: RUNS },
    );
    // The runs must reach real meshes, not only calls of one or two (the scenario weights see to it).
    const meshes = [...stats].filter(([inCall]) => inCall >= 3).reduce((sum, [, runs]) => sum + runs, 0);
    expect(meshes, [...stats].sort().map(([n, runs]) => `${runs} run(s) ended with ${n} in the call`).join('; ')).toBeGreaterThan(RUNS / 10);
  });
});
