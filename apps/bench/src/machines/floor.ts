import { assign, createActor, setup } from 'xstate';
import type { AnyStateMachine, EventObject, InspectionEvent } from 'xstate';
import { median } from '../stats.js';
import { emptyTally, negotiateWith, parleySide, verifyTally } from './negotiate.js';

// What xstate itself costs, at the least, and how much of it Parley's peers ask for: the bound
// it puts on machines.overHandWritten, measured in the same run as the ratio (worker.ts `floor`).

/** The least an xstate event and an xstate actor cost here (CPU µs, steady state). */
export interface XstateFloor {
  /** One event to a started actor that takes one transition with one assign. */
  readonly microsPerEvent: number;
  /** One actor created, started and stopped. */
  readonly microsPerActor: number;
}

/** What Parley's two peers ask of xstate per negotiation (xstate's inspection API). */
export interface MachineWork {
  /** Actors created (`@xstate.actor`). */
  readonly actors: number;
  /** Events processed (`@xstate.event`), the `xstate.init` of each actor included. */
  readonly events: number;
  /** Microsteps taken (`@xstate.microstep`). */
  readonly microsteps: number;
}

type RegionEvent = { readonly type: 'NEGOTIATION' } | { readonly type: 'GATHERING' } | { readonly type: 'CONNECTION' };
type FlatEvent = { readonly type: 'STEP' };

/** A region of two states; its event toggles them and counts, as a peer region's event takes a transition and assigns. */
function toggling(event: RegionEvent['type'] | FlatEvent['type']) {
  const count = assign({ count: ({ context }: { context: { readonly count: number } }) => context.count + 1 });
  return {
    initial: 'a',
    states: {
      a: { on: { [event]: { target: 'b', actions: count } } },
      b: { on: { [event]: { target: 'a', actions: count } } },
    },
  } as const;
}

/**
 * The least a machine of the peer's form does: three parallel regions (as the peer's
 * negotiation, ICE gathering and connection), each event one transition in one region with one
 * assign; no guard, no eventless transition, no child, no delay.
 */
export const floorMachine = setup({
  types: { context: {} as { readonly count: number }, events: {} as RegionEvent },
}).createMachine({
  id: 'floor',
  context: { count: 0 },
  type: 'parallel',
  states: { negotiation: toggling('NEGOTIATION'), gathering: toggling('GATHERING'), connection: toggling('CONNECTION') },
});

/**
 * The least any xstate machine does: one region of two states, each event one transition with
 * one assign. What a peer would cost per event if it had no regions and Parley's own work (its
 * guards, actions and state nodes) were free.
 */
export const flatFloorMachine = setup({
  types: { context: {} as { readonly count: number }, events: {} as FlatEvent },
}).createMachine({ id: 'flatFloor', context: { count: 0 }, ...toggling('STEP') });

/** A machine the floor is measured on, and the events it is sent in turn. */
interface FloorSubject {
  readonly machine: AnyStateMachine;
  readonly events: readonly EventObject[];
}

const FLOOR_SUBJECTS = {
  regions: { machine: floorMachine, events: [{ type: 'NEGOTIATION' }, { type: 'GATHERING' }, { type: 'CONNECTION' }] },
  flat: { machine: flatFloorMachine, events: [{ type: 'STEP' }] },
} as const satisfies Record<string, FloorSubject>;

/** Which machine a floor is measured on: the peer's form (`floorMachine`) or `flatFloorMachine`. */
export type FloorShape = keyof typeof FLOOR_SUBJECTS;
export const FLOOR_SHAPES = Object.keys(FLOOR_SUBJECTS) as readonly FloorShape[];

function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/** CPU µs per event over `events` events to one started machine of `subject`. */
function eventRun({ machine, events: sent }: FloorSubject, events: number): number {
  const actor = createActor(machine).start();
  const start = cpuMicros();
  for (let i = 0; i < events; i++) actor.send(sent[i % sent.length]!);
  const micros = (cpuMicros() - start) / events;
  actor.stop();
  return micros;
}

/** CPU µs per machine of `subject` created, started and stopped, over `actors` of them. */
function actorRun({ machine }: FloorSubject, actors: number): number {
  const start = cpuMicros();
  for (let i = 0; i < actors; i++) createActor(machine).start().stop();
  return (cpuMicros() - start) / actors;
}

/** The median of `runs` measured runs after `warmup` runs of `measure(size)`. */
function steadyMedian(measure: (size: number) => number, size: number, warmup: number, runs: number): number {
  for (let i = 0; i < warmup; i++) measure(size);
  return median(Array.from({ length: runs }, () => measure(size)));
}

/** How much the floor measures: events and actors per run, warm-up runs, measured runs. */
export interface FloorSettings {
  readonly eventsPerRun: number;
  readonly actorsPerRun: number;
  readonly warmupRuns: number;
  readonly runs: number;
}

/** About 4 s per shape on this machine. */
export const FLOOR_SETTINGS: FloorSettings = { eventsPerRun: 20_000, actorsPerRun: 10_000, warmupRuns: 10, runs: 5 };

/** xstate's floor in this process on a machine of `shape`: warm-up runs, then the median of measured ones. */
export function measureXstateFloor(shape: FloorShape, settings: FloorSettings = FLOOR_SETTINGS): XstateFloor {
  const subject: FloorSubject = FLOOR_SUBJECTS[shape];
  return {
    microsPerEvent: steadyMedian((size) => eventRun(subject, size), settings.eventsPerRun, settings.warmupRuns, settings.runs),
    microsPerActor: steadyMedian((size) => actorRun(subject, size), settings.actorsPerRun, settings.warmupRuns, settings.runs),
  };
}

/** Actors, events and microsteps of Parley's peers per negotiation, over `negotiations` checked ones. */
export async function countParleyWork(negotiations: number): Promise<MachineWork> {
  const counted = { actors: 0, events: 0, microsteps: 0 };
  const inspect = (event: InspectionEvent): void => {
    if (event.type === '@xstate.actor') counted.actors += 1;
    else if (event.type === '@xstate.event') counted.events += 1;
    else if (event.type === '@xstate.microstep') counted.microsteps += 1;
  };
  const tally = emptyTally();
  const start = parleySide(inspect);
  for (let i = 0; i < negotiations; i++) await negotiateWith(start, tally);
  verifyTally('parley', tally, negotiations);
  return { actors: counted.actors / negotiations, events: counted.events / negotiations, microsteps: counted.microsteps / negotiations };
}

/** What the floor implies for Parley / hand-written (a pure function, unit-tested). */
export interface FloorBound {
  /** xstate's least cost for Parley's work per negotiation, CPU µs. */
  readonly floorMicros: number;
  /** Parley / hand-written if Parley cost only the hand-written loop's work plus that floor. */
  readonly bestRatio: number;
  /** Events per negotiation at the floor's cost that `goal` would allow (with the same actors); may be negative. */
  readonly eventsForGoal: number;
}

/**
 * Parley does at least what the hand-written loop does (the same RTC port calls and signaling
 * messages) and, on top, its machines' work, which costs at least xstate's floor.
 */
export function floorBound(floor: XstateFloor, work: MachineWork, handWrittenMicros: number, goal: number): FloorBound {
  const floorMicros = work.actors * floor.microsPerActor + work.events * floor.microsPerEvent;
  return {
    floorMicros,
    bestRatio: handWrittenMicros / (handWrittenMicros + floorMicros),
    eventsForGoal: (handWrittenMicros / goal - handWrittenMicros - work.actors * floor.microsPerActor) / floor.microsPerEvent,
  };
}
