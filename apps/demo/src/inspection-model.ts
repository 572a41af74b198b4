// What the live machine view shows, built from xstate v5's inspection stream alone: every actor
// the stream reports (`@xstate.actor`), who started it (the `xstate.init` event's sender), its
// statechart (`machineChart` of its logic, when the logic is a state machine) with the states its
// latest `@xstate.snapshot` is in, and the events it received (`@xstate.event`). Nothing here
// knows Parley's machines: it draws whatever the stream reports. No DOM, so it is unit-tested.
import { chartDescendants, machineChart } from '@parley/core';
import type { ChartState, MachineChart } from '@parley/core';
import type { AnyStateMachine, InspectionEvent } from 'xstate';

/** An actor's snapshot status: running, reached a final state, failed, or stopped by its parent. */
export type ActorStatus = 'active' | 'done' | 'error' | 'stopped';

/** One event an actor received, as the view lists it (no payload is kept). */
export interface SeenEvent {
  /** Order of arrival over the whole model, from 1. */
  readonly seq: number;
  /** The receiving actor's `key` and label. */
  readonly actorKey: number;
  readonly actor: string;
  readonly type: string;
  /** The sending actor's label; null when the event came from outside any actor (the app). */
  readonly from: string | null;
  /** The receiver's states right after it, when the event changed them (`peerRunning.active`). */
  readonly to: string | null;
}

/** One actor as the view draws it. */
export interface InspectedActor {
  /** Unique in the model (actor session ids repeat across actor systems). */
  readonly key: number;
  /** The actor's id (`peer`, `negotiation`, or its session id when it was given none). */
  readonly id: string;
  /** What the view calls it: a root's label, an invoked actor's `src`, else its id. */
  readonly label: string;
  /** The `key` of the actor that started it; null for a root. */
  readonly parentKey: number | null;
  /** The actor's statechart, when its logic is a state machine; null for promise, callback and other logic. */
  readonly chart: MachineChart | null;
  readonly status: ActorStatus;
  /** Ids of the states the machine is in (the root excluded), ancestors included. */
  readonly lit: ReadonlySet<string>;
  /** The innermost active states as paths, e.g. `peerRunning.active`; empty before the first snapshot. */
  readonly states: readonly string[];
  /** The last events it received, oldest first (at most `maxEventsPerActor`). */
  readonly events: readonly SeenEvent[];
  /**
   * The last events that changed its states, oldest first (at most `maxEventsPerActor`): what
   * moved the machine, which a flood of events that move nothing does not push out.
   */
  readonly changes: readonly SeenEvent[];
  /** How many events it received in all. */
  readonly eventCount: number;
}

/** An actor with its place in the tree, as `actors()` lists them. */
export interface ActorInTree {
  readonly actor: InspectedActor;
  /** 0 for a root, 1 for its children, and so on. */
  readonly depth: number;
}

/** Bounds of what the model keeps. */
export interface InspectionModelOptions {
  /** Events kept in the stream of all actors (default 80). */
  readonly maxEvents?: number;
  /** Events kept per actor (default 12). */
  readonly maxEventsPerActor?: number;
  /** Machine actors kept after they stopped, finished or failed, most recent first (default 12). */
  readonly maxEndedMachines?: number;
}

/** The parts of xstate's `Actor` the model reads; `ActorRefLike` leaves them out. */
interface InspectedRef {
  readonly id: string;
  readonly sessionId: string;
  readonly src?: unknown;
  readonly logic?: unknown;
}

interface ActorRecord extends InspectedActor {
  label: string;
  parentKey: number | null;
  status: ActorStatus;
  lit: ReadonlySet<string>;
  states: readonly string[];
  events: SeenEvent[];
  changes: SeenEvent[];
  eventCount: number;
  /** The entries of the events it received, by event, to name the states each one led to. */
  received: WeakMap<object, { -readonly [K in keyof SeenEvent]: SeenEvent[K] }>;
  /** The order in which it ended among all actors, for dropping the oldest ended machines first. */
  endedAt: number | null;
}

const charts = new WeakMap<object, MachineChart>();

function isStateMachine(logic: unknown): logic is AnyStateMachine {
  return typeof logic === 'object' && logic !== null && 'root' in logic && 'config' in logic && typeof (logic as { transition?: unknown }).transition === 'function';
}

/** A machine's chart, computed once per machine definition. */
function chartOf(logic: unknown): MachineChart | null {
  if (!isStateMachine(logic)) return null;
  let chart = charts.get(logic);
  if (!chart) {
    chart = machineChart(logic);
    charts.set(logic, chart);
  }
  return chart;
}

/**
 * The ids of the states a snapshot `value` names (`'idle'`, `{ peerRunning: 'active' }`, parallel
 * regions as several keys), ancestors included and the root left out. Keys the chart does not
 * have are ignored.
 */
export function litStates(root: ChartState, value: unknown): Set<string> {
  const lit = new Set<string>();
  const visit = (state: ChartState, part: unknown): void => {
    const entries: [string, unknown][] = typeof part === 'string' ? [[part, undefined]] : typeof part === 'object' && part !== null ? Object.entries(part) : [];
    for (const [key, inner] of entries) {
      const child = state.children.find((candidate) => candidate.key === key);
      if (!child) continue;
      lit.add(child.id);
      visit(child, inner);
    }
  };
  visit(root, value);
  return lit;
}

/** The innermost lit states as dotted paths, in the chart's order. */
function innermost(root: ChartState, lit: ReadonlySet<string>): string[] {
  return [...chartDescendants(root)]
    .filter((state) => lit.has(state.id) && !state.children.some((child) => lit.has(child.id)))
    .map((state) => state.path.join('.'));
}

function statusOf(snapshot: unknown): ActorStatus {
  const status = (snapshot as { status?: unknown } | null)?.status;
  return status === 'done' || status === 'error' || status === 'stopped' ? status : 'active';
}

/** xstate names an invoked actor without an id `index.stateId`: its `src` says more. */
const GENERATED_INVOKE_ID = /^\d+\./;

/**
 * The running actors and recent events of one page, fed by xstate's `inspect` option. Bounded:
 * a stopped actor that is not a machine is forgotten at once, ended machines beyond
 * `maxEndedMachines` oldest first, and events beyond the list sizes.
 */
export class InspectionModel {
  private readonly records = new Map<object, ActorRecord>();
  private readonly rootLabels = new WeakMap<object, string>();
  /** Actors dropped after they ended: an event still sent to one does not bring it back. */
  private readonly forgotten = new WeakSet<object>();
  private readonly stream: SeenEvent[] = [];
  private readonly listeners = new Set<() => void>();
  private readonly maxEvents: number;
  private readonly maxEventsPerActor: number;
  private readonly maxEndedMachines: number;
  private seq = 0;
  private ends = 0;
  private nextKey = 1;

  constructor(options: InspectionModelOptions = {}) {
    this.maxEvents = options.maxEvents ?? 80;
    this.maxEventsPerActor = options.maxEventsPerActor ?? 12;
    this.maxEndedMachines = options.maxEndedMachines ?? 12;
  }

  /**
   * An `inspect` function for one actor system (pass it to createActor, createCall, createPeer
   * or the signaling client). `rootLabel` names the system's root actor in the view, e.g.
   * `call with bob`.
   */
  inspector(rootLabel?: string): (event: InspectionEvent) => void {
    return (event) => {
      if (rootLabel !== undefined && event.type === '@xstate.actor' && event.actorRef.sessionId === event.rootId) {
        this.rootLabels.set(event.actorRef, rootLabel);
      }
      this.receive(event);
    };
  }

  /** Takes one inspection event. */
  receive(event: InspectionEvent): void {
    if (this.forgotten.has(event.actorRef)) return;
    switch (event.type) {
      case '@xstate.actor':
        this.recordOf(event.actorRef);
        break;
      case '@xstate.event':
        this.onEvent(event.actorRef, event.sourceRef, event.event);
        break;
      case '@xstate.snapshot':
        this.onSnapshot(event.actorRef, event.snapshot, event.event);
        break;
      default:
        return; // microsteps, actions and transitions: the snapshot that follows says enough
    }
    for (const listener of this.listeners) listener();
  }

  /** Calls `listener` after every change; returns the function that stops it. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Every actor kept, depth first: each root in the order it appeared, its children after it. */
  actors(): ActorInTree[] {
    const all = [...this.records.values()].sort((a, b) => a.key - b.key);
    const keys = new Set(all.map((record) => record.key));
    const childrenOf = new Map<number | null, ActorRecord[]>();
    for (const record of all) {
      const parent = record.parentKey !== null && keys.has(record.parentKey) ? record.parentKey : null;
      childrenOf.set(parent, [...(childrenOf.get(parent) ?? []), record]);
    }
    const out: ActorInTree[] = [];
    const visit = (parent: number | null, depth: number): void => {
      for (const actor of childrenOf.get(parent) ?? []) {
        out.push({ actor, depth });
        visit(actor.key, depth + 1);
      }
    };
    visit(null, 0);
    return out;
  }

  /** The last events of all actors, newest first (at most `maxEvents`). */
  events(): readonly SeenEvent[] {
    return [...this.stream].reverse();
  }

  private recordOf(ref: InspectionEvent['actorRef']): ActorRecord {
    const existing = this.records.get(ref);
    if (existing) return existing;
    const inspected = ref as unknown as InspectedRef;
    const chart = chartOf(inspected.logic);
    const record: ActorRecord = {
      key: this.nextKey++,
      id: inspected.id,
      label: this.labelOf(ref),
      parentKey: null,
      chart,
      status: 'active',
      lit: new Set(),
      states: [],
      events: [],
      changes: [],
      eventCount: 0,
      received: new WeakMap(),
      endedAt: null,
    };
    this.records.set(ref, record);
    return record;
  }

  private labelOf(ref: InspectionEvent['actorRef']): string {
    const known = this.records.get(ref)?.label ?? this.rootLabels.get(ref);
    if (known !== undefined) return known;
    const { id, sessionId, src, logic } = ref as unknown as InspectedRef;
    const named = typeof src === 'string' ? src : isStateMachine(logic) ? logic.id : undefined;
    if (id === sessionId || GENERATED_INVOKE_ID.test(id)) return named ?? id;
    return id;
  }

  private onEvent(target: InspectionEvent['actorRef'], source: InspectionEvent['actorRef'] | undefined, event: { readonly type: string }): void {
    const record = this.recordOf(target);
    if (event.type === 'xstate.init' && source !== undefined) {
      // The sender of an actor's init event is the actor that started it (xstate's `_parent`).
      record.parentKey = this.recordOf(source).key;
    }
    if (event.type === 'xstate.init' && source === undefined) record.label = this.labelOf(target);
    const entry: { -readonly [K in keyof SeenEvent]: SeenEvent[K] } = {
      seq: ++this.seq,
      actorKey: record.key,
      actor: record.label,
      type: event.type,
      from: source === undefined ? null : this.labelOf(source),
      to: null,
    };
    record.eventCount += 1;
    record.received.set(event, entry);
    pushBounded(record.events, entry, this.maxEventsPerActor);
    pushBounded(this.stream, entry, this.maxEvents);
  }

  private onSnapshot(ref: InspectionEvent['actorRef'], snapshot: unknown, cause: object): void {
    const record = this.recordOf(ref);
    record.status = statusOf(snapshot);
    if (record.chart) {
      const lit = litStates(record.chart.root, (snapshot as { value?: unknown }).value);
      const states = innermost(record.chart.root, lit);
      const changed = states.join() !== record.states.join();
      record.lit = lit;
      record.states = states;
      const entry = record.received.get(cause);
      if (changed && entry) {
        entry.to = states.join(', ');
        pushBounded(record.changes, entry, this.maxEventsPerActor);
      }
    }
    if (record.status !== 'active' && record.endedAt === null) {
      record.endedAt = ++this.ends;
      this.forgetEnded();
    }
  }

  /** Drops ended actors that are not machines, and the oldest ended machines beyond the bound. */
  private forgetEnded(): void {
    const endedMachines: [object, ActorRecord][] = [];
    for (const [ref, record] of this.records) {
      if (record.endedAt === null) continue;
      if (record.chart === null) this.forget(ref);
      else endedMachines.push([ref, record]);
    }
    endedMachines.sort(([, a], [, b]) => (b.endedAt ?? 0) - (a.endedAt ?? 0));
    for (const [ref] of endedMachines.slice(this.maxEndedMachines)) this.forget(ref);
  }

  private forget(ref: object): void {
    this.records.delete(ref);
    this.forgotten.add(ref);
  }
}

function pushBounded<T>(list: T[], item: T, max: number): void {
  list.push(item);
  if (list.length > max) list.splice(0, list.length - max);
}
