import { and, not, or, stateIn } from 'xstate';
import type { AnyStateMachine, AnyStateNode, AnyTransitionDefinition } from 'xstate';

// Mermaid `stateDiagram-v2` drawings of xstate v5 machines, read from the machine's own
// state-node tree (`machine.root`), so a diagram can never disagree with the definition.
// `npm run diagrams` renders docs/machines.md with `renderMachinesDocument`.
//
// The tree is walked once, by `machineChart`: states, initial states and labelled transitions as
// plain data. `toMermaid` renders that chart, and so does the demo's live machine view.
//
// Mermaid puts a state into the first block in which it is mentioned, so every state is declared
// inside its parent's block first, and every transition is written after all declarations.

/** Options of `toMermaid`. */
export interface MermaidOptions {
  /** Layout direction of the diagram; Mermaid's default (top to bottom) when left out. */
  readonly direction?: 'TB' | 'BT' | 'LR' | 'RL';
}

export interface MachineDocumentEntry {
  /** The exported name of the machine, e.g. `negotiationMachine`. */
  readonly name: string;
  /** Section heading, e.g. `Negotiation`. */
  readonly title: string;
  /** One paragraph of markdown under the heading: what the machine is for. */
  readonly summary: string;
  readonly machine: AnyStateMachine;
}

/** One state of a {@link MachineChart}, with its children. */
export interface ChartState {
  /** The state node's id, unique in its machine (`call.peerRunning.active`); the root's is the machine id. */
  readonly id: string;
  /** The state's key in its parent (`active`); the root's is the machine id. */
  readonly key: string;
  /** The keys from the root down to this state (`['peerRunning', 'active']`); empty for the root. */
  readonly path: readonly string[];
  /** What a reader sees: the key, and for a history state which kind it is. */
  readonly label: string;
  readonly type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  /** The ids of the children a compound state starts in (none for other types). */
  readonly initial: readonly string[];
  /** Child states in declaration order. */
  readonly children: readonly ChartState[];
  /** The state's `description`, when it has one. */
  readonly description: string | undefined;
}

/**
 * One transition towards one target. `enclosed`: the transition is declared on the root or on a
 * composite state and its target lies inside that state (or is the state itself), so it leaves
 * whichever of the state's children is active. Mermaid cannot draw an arrow from a block into its
 * own inside, so `toMermaid` writes those as notes on the target.
 */
export interface ChartTransition {
  /** Id of the state that declares the transition. */
  readonly source: string;
  /** Id of the target state. */
  readonly target: string;
  /** xstate's event type (`REMOTE.ACCEPT`, `xstate.done.actor.…`); empty for `always`. */
  readonly eventType: string;
  /** The event for a reader, then the guard in brackets: `done: createOffer [isTrickle]`. */
  readonly label: string;
  readonly enclosed: boolean;
}

/**
 * A machine's statechart as plain data, read from its state-node tree: what `toMermaid` draws.
 * Transitions that only run actions (no target) are left out; order follows the definition.
 */
export interface MachineChart {
  /** The machine's id (also its root state's id). */
  readonly id: string;
  readonly root: ChartState;
  /** Every transition with a target, state by state depth first, in declaration order. */
  readonly transitions: readonly ChartTransition[];
}

const INDENT = '  ';

/** Words of Mermaid's state-diagram grammar that cannot be used as state ids. */
const RESERVED_IDS = new Set(['state', 'note', 'end', 'direction', 'class', 'classDef', 'style', 'as', 'left', 'right', 'of', 'click']);

/**
 * xstate's guard combinators are functions carrying a `check` shared by every instance: known by
 * identity, or by the check's name when the machine was built with another copy of xstate.
 */
type GuardCombinator = ((...args: never[]) => unknown) & {
  readonly check?: unknown;
  readonly guards?: readonly unknown[];
  readonly stateValue?: unknown;
};
type CombinatorKind = 'and' | 'or' | 'not' | 'stateIn';
const COMBINATORS: readonly (readonly [CombinatorKind, unknown])[] = [
  ['and', and([])],
  ['or', or([])],
  ['not', not(() => true)],
  ['stateIn', stateIn('x')],
];

function combinatorOf(guard: GuardCombinator): CombinatorKind | undefined {
  const check = guard.check;
  if (typeof check !== 'function') return undefined;
  for (const [kind, sample] of COMBINATORS) {
    const sampleCheck = (sample as GuardCombinator).check;
    if (check === sampleCheck || (typeof sampleCheck === 'function' && check.name !== '' && check.name === sampleCheck.name)) {
      return kind;
    }
  }
  return undefined;
}

/**
 * The statechart of a machine as plain data (see {@link MachineChart}): the one walk of the
 * state-node tree that `toMermaid`, `renderMachinesDocument` and the demo's live view share.
 */
export function machineChart(machine: AnyStateMachine): MachineChart {
  const transitions: ChartTransition[] = [];
  const chartOf = (node: AnyStateNode): ChartState => {
    const definitions: AnyTransitionDefinition[] = [...[...node.transitions.values()].flat(), ...(node.always ?? [])];
    for (const transition of definitions) {
      const label = transitionLabel(node, transition);
      for (const target of transition.target ?? []) {
        const enclosed = node === machine.root || (node.type !== 'atomic' && node.type !== 'final' && isAncestorOrSelf(node, target));
        transitions.push({ source: node.id, target: target.id, eventType: String(transition.eventType), label, enclosed });
      }
    }
    // Children after the node's own transitions: depth first, in declaration order.
    const children = childrenOf(node).map(chartOf);
    return {
      id: node.id,
      key: node.key,
      path: node.path,
      label: stateLabel(node),
      type: node.type,
      initial: node.type === 'compound' ? node.initial.target.map((initial) => initial.id) : [],
      children,
      description: node.description,
    };
  };
  const root = chartOf(machine.root);
  return { id: machine.id, root, transitions };
}

/** All states of a chart below `state`, depth first, in declaration order. */
export function* chartDescendants(state: ChartState): Generator<ChartState> {
  for (const child of state.children) {
    yield child;
    yield* chartDescendants(child);
  }
}

/**
 * Mermaid `stateDiagram-v2` source for a machine: composite states as blocks (`[*] -->` their
 * initial state), parallel regions separated by `--`, final states `--> [*]`, one arrow per
 * transition target labelled with its event and `[guard]`. Transitions without a target only
 * run actions and are left out. Order follows the definition, so the output is deterministic.
 */
export function toMermaid(machine: AnyStateMachine, options: MermaidOptions = {}): string {
  const chart = machineChart(machine);
  const root = chart.root;
  const states = new Map<string, ChartState>([root, ...chartDescendants(root)].map((state) => [state.id, state]));
  const stateOf = (id: string): ChartState => {
    const state = states.get(id);
    if (state === undefined) throw new Error(`state node ${id} is not part of machine ${machine.id}`);
    return state;
  };
  const ids = assignIds(root);
  const idOf = (state: ChartState): string => {
    const id = ids.get(state);
    if (id === undefined) throw new Error(`state node ${state.id} is not part of machine ${machine.id}`);
    return id;
  };

  const lines: string[] = ['stateDiagram-v2'];
  if (options.direction) lines.push(`${INDENT}direction ${options.direction}`);
  if (root.type === 'parallel') {
    // Mermaid accepts the region separator `--` only inside a block: draw the root as one.
    lines.push(`${INDENT}state "${quoteSafe(root.id)}" as ${idOf(root)} {`, ...declareChildren(root, stateOf, idOf, 2), `${INDENT}}`);
  } else {
    lines.push(...declareChildren(root, stateOf, idOf, 1));
  }

  // One arrow per pair of states, its transitions one per line: parallel arrows only add clutter.
  const arrows = new Map<string, string[]>();
  for (const edge of chart.transitions.filter((transition) => !transition.enclosed)) {
    const arrow = `${idOf(stateOf(edge.source))} --> ${idOf(stateOf(edge.target))}`;
    arrows.set(arrow, [...(arrows.get(arrow) ?? []), labelSafe(edge.label)]);
  }
  for (const [arrow, labels] of arrows) lines.push(`${INDENT}${arrow} : ${labels.join('<br/>')}`);
  for (const [target, inbound] of groupByTarget(chart.transitions.filter((transition) => transition.enclosed))) {
    const sources = inbound.map((edge) => {
      const from = stateOf(edge.source);
      return `${labelSafe(edge.label)} (from any state${from === root ? '' : ` in ${displayPath(from)}`})`;
    });
    lines.push(`${INDENT}note left of ${idOf(stateOf(target))}`, ...sources.map((text) => `${INDENT}${INDENT}${text}`), `${INDENT}end note`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * The whole docs/machines.md: a contents list, then per machine its summary, its diagram and a
 * table of the states' `description`s.
 */
export function renderMachinesDocument(entries: readonly MachineDocumentEntry[]): string {
  const out: string[] = [
    '# Machines',
    '',
    '<!-- Generated by `npm run diagrams` from the machine definitions: do not edit by hand. -->',
    '',
    'Each diagram is drawn from the machine definition itself (`packages/core/src/diagram.ts`);',
    '`npm run diagrams` rewrites this file, and a test fails when it is out of date.',
    'Arrows are labelled with the event, then the guard in brackets: `done: X` / `error: X` are the',
    'outcomes of the invoked actor `X`, `after X` a named delay, `always` an eventless transition.',
    'A note `EVENT (from any state in X)` on a state is a transition declared on the composite state',
    '`X` (or on the whole machine) into that state. Transitions that only run actions (no target) are',
    'not drawn.',
    '',
  ];
  for (const entry of entries) out.push(`- [${entry.title}](#${anchorOf(entry.title)}): \`${entry.name}\``);
  for (const entry of entries) {
    out.push('', `## ${entry.title}`, '', `\`${entry.name}\` (id \`${entry.machine.id}\`). ${entry.summary.trim()}`, '');
    out.push('```mermaid', toMermaid(entry.machine).trimEnd(), '```');
    const rows = describedStates(machineChart(entry.machine).root);
    if (rows.length > 0) {
      out.push('', '| State | What it means |', '|---|---|');
      for (const state of rows) out.push(`| \`${displayPath(state)}\` | ${tableCell(state.description ?? '')} |`);
    }
  }
  return `${out.join('\n')}\n`;
}

/** Mermaid ids: the state's path joined with `_` (a drawn root: its id), made safe and unique. */
function assignIds(root: ChartState): Map<ChartState, string> {
  const ids = new Map<ChartState, string>();
  const used = new Set<string>();
  const drawn = root.type === 'parallel' ? [root, ...chartDescendants(root)] : [...chartDescendants(root)];
  for (const state of drawn) {
    let id = (state === root ? root.id : state.path.join('_')).replace(/[^A-Za-z0-9_]/g, '_');
    if (/^[0-9]/.test(id) || RESERVED_IDS.has(id)) id = `s_${id}`;
    let unique = id;
    for (let n = 2; used.has(unique); n++) unique = `${id}_${n}`;
    used.add(unique);
    ids.set(state, unique);
  }
  return ids;
}

function childrenOf(node: AnyStateNode): AnyStateNode[] {
  return Object.values(node.states);
}

/** The declarations of `parent`'s children, nested blocks included, at `depth` indents. */
function declareChildren(parent: ChartState, stateOf: (id: string) => ChartState, idOf: (state: ChartState) => string, depth: number): string[] {
  const pad = INDENT.repeat(depth);
  const lines: string[] = [];
  parent.children.forEach((child, index) => {
    if (parent.type === 'parallel' && index > 0) lines.push(`${pad}--`);
    const declaration = `${pad}state "${quoteSafe(child.label)}" as ${idOf(child)}`;
    if (child.type === 'compound' || child.type === 'parallel') {
      lines.push(`${declaration} {`, ...declareChildren(child, stateOf, idOf, depth + 1), `${pad}}`);
    } else {
      lines.push(declaration);
    }
  });
  for (const initial of parent.initial) lines.push(`${pad}[*] --> ${idOf(stateOf(initial))}`);
  for (const child of parent.children) {
    if (child.type === 'final') lines.push(`${pad}${idOf(child)} --> [*]`);
  }
  return lines;
}

/** A state's key; a history state says which kind it is. */
function stateLabel(node: AnyStateNode): string {
  if (node.type !== 'history') return node.key;
  return `${node.key} (${node.history === 'deep' ? 'deep ' : ''}history)`;
}

function isAncestorOrSelf(ancestor: AnyStateNode, node: AnyStateNode | undefined): boolean {
  for (let current = node; current; current = current.parent) if (current === ancestor) return true;
  return false;
}

function groupByTarget(edges: readonly ChartTransition[]): Map<string, ChartTransition[]> {
  const groups = new Map<string, ChartTransition[]>();
  for (const edge of edges) groups.set(edge.target, [...(groups.get(edge.target) ?? []), edge]);
  return groups;
}

/** `EVENT [guard]`, with xstate's internal event types named for a reader. */
function transitionLabel(source: AnyStateNode, transition: AnyTransitionDefinition): string {
  const event = eventLabel(source, transition);
  const guard = transition.guard === undefined ? '' : ` [${guardLabel(transition.guard, false)}]`;
  return `${event}${guard}`;
}

function eventLabel(source: AnyStateNode, transition: AnyTransitionDefinition): string {
  const type = String(transition.eventType);
  if (type === '') return 'always';
  const actorOutcome = /^xstate\.(done|error)\.actor\.(.*)$/.exec(type);
  if (actorOutcome) return `${actorOutcome[1]}: ${invokedName(source, actorOutcome[2] ?? '')}`;
  const snapshot = /^xstate\.snapshot\.(.*)$/.exec(type);
  if (snapshot) return `snapshot: ${invokedName(source, snapshot[1] ?? '')}`;
  if (type.startsWith('xstate.after.')) {
    const delayed = source.after.find((after) => after.eventType === type);
    const delay = delayed?.delay;
    if (typeof delay === 'number') return `after ${delay}ms`;
    if (typeof delay === 'string') return `after ${delay}`;
    return 'after (computed delay)';
  }
  if (type === `xstate.done.state.${source.id}`) return 'done';
  if (type.startsWith('xstate.done.state.')) return `done: ${type.slice('xstate.done.state.'.length)}`;
  return type;
}

/** An invoked actor by the id its author gave, else by its `src` (xstate ids them `index.stateId`). */
function invokedName(source: AnyStateNode, actorId: string): string {
  const index = source.invoke.findIndex((invoke) => invoke.id === actorId);
  const invoke = source.invoke[index];
  if (invoke && actorId === `${index}.${source.id}` && typeof invoke.src === 'string') return invoke.src;
  return actorId;
}

/** Guard names; `and`/`or`/`not`/`stateIn` spelled out, nested ones in parentheses. */
function guardLabel(guard: unknown, nested: boolean): string {
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'function') {
    const combinator = guard as GuardCombinator;
    const parts = combinator.guards ?? [];
    const wrap = (text: string): string => (nested ? `(${text})` : text);
    switch (combinatorOf(combinator)) {
      case 'and':
        return wrap(parts.map((part) => guardLabel(part, true)).join(' and '));
      case 'or':
        return wrap(parts.map((part) => guardLabel(part, true)).join(' or '));
      case 'not':
        return `not ${guardLabel(parts[0], true)}`;
      case 'stateIn':
        return `in ${typeof combinator.stateValue === 'string' ? combinator.stateValue : JSON.stringify(combinator.stateValue)}`;
      case undefined:
        return guard.name || 'inline guard';
    }
  }
  if (typeof guard === 'object' && guard !== null && 'type' in guard && typeof guard.type === 'string') return guard.type;
  return 'guard';
}

/** `parent.child` for tables and notes. */
function displayPath(state: ChartState): string {
  return state.path.length > 0 ? state.path.join('.') : state.id;
}

function describedStates(root: ChartState): ChartState[] {
  return [...chartDescendants(root)].filter((state) => state.description !== undefined && state.description.trim() !== '');
}

/** Mermaid reads `;` as a statement end and `#` as an entity start; `:` opens a label. */
function labelSafe(text: string): string {
  return text.replace(/[#;]/g, (char) => (char === '#' ? '#35;' : '#59;'));
}

function quoteSafe(text: string): string {
  return labelSafe(text).replace(/"/g, '#quot;');
}

function tableCell(text: string): string {
  return text.replace(/\s+/g, ' ').replace(/\|/g, '\\|').trim();
}

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to dashes. */
function anchorOf(title: string): string {
  return title
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}
