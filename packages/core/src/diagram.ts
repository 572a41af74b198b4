import { and, not, or, stateIn } from 'xstate';
import type { AnyStateMachine, AnyStateNode, AnyTransitionDefinition } from 'xstate';

// Mermaid `stateDiagram-v2` drawings of xstate v5 machines, read from the machine's own
// state-node tree (`machine.root`), so a diagram can never disagree with the definition.
// `npm run diagrams` renders docs/machines.md with `renderMachinesDocument`.
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

/**
 * One transition towards one target. When `from` is a composite state and `to` lies inside it
 * (or is `from` itself), the transition leaves whichever of its states is active: Mermaid cannot
 * draw an arrow from a block into its own inside, so those become notes on the target.
 */
interface Edge {
  readonly from: AnyStateNode;
  readonly to: AnyStateNode;
  readonly label: string;
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
 * Mermaid `stateDiagram-v2` source for a machine: composite states as blocks (`[*] -->` their
 * initial state), parallel regions separated by `--`, final states `--> [*]`, one arrow per
 * transition target labelled with its event and `[guard]`. Transitions without a target only
 * run actions and are left out. Order follows the definition, so the output is deterministic.
 */
export function toMermaid(machine: AnyStateMachine, options: MermaidOptions = {}): string {
  const ids = assignIds(machine.root);
  const idOf = (node: AnyStateNode): string => {
    const id = ids.get(node);
    if (id === undefined) throw new Error(`state node ${node.id} is not part of machine ${machine.id}`);
    return id;
  };

  const root = machine.root;
  const lines: string[] = ['stateDiagram-v2'];
  if (options.direction) lines.push(`${INDENT}direction ${options.direction}`);
  if (root.type === 'parallel') {
    // Mermaid accepts the region separator `--` only inside a block: draw the root as one.
    lines.push(`${INDENT}state "${quoteSafe(root.id)}" as ${idOf(root)} {`, ...declareChildren(root, idOf, 2), `${INDENT}}`);
  } else {
    lines.push(...declareChildren(root, idOf, 1));
  }

  const { edges, enclosed } = collectEdges(machine.root);
  // One arrow per pair of states, its transitions one per line: parallel arrows only add clutter.
  const arrows = new Map<string, string[]>();
  for (const edge of edges) {
    const arrow = `${idOf(edge.from)} --> ${idOf(edge.to)}`;
    arrows.set(arrow, [...(arrows.get(arrow) ?? []), edge.label]);
  }
  for (const [arrow, labels] of arrows) lines.push(`${INDENT}${arrow} : ${labels.join('<br/>')}`);
  for (const [target, inbound] of groupByTarget(enclosed)) {
    const sources = inbound.map((edge) => `${edge.label} (from any state${edge.from.parent ? ` in ${displayPath(edge.from)}` : ''})`);
    lines.push(`${INDENT}note left of ${idOf(target)}`, ...sources.map((text) => `${INDENT}${INDENT}${text}`), `${INDENT}end note`);
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
    const rows = describedStates(entry.machine.root);
    if (rows.length > 0) {
      out.push('', '| State | What it means |', '|---|---|');
      for (const node of rows) out.push(`| \`${displayPath(node)}\` | ${tableCell(node.description ?? '')} |`);
    }
  }
  return `${out.join('\n')}\n`;
}

/** Mermaid ids: the state's path joined with `_` (a drawn root: its id), made safe and unique. */
function assignIds(root: AnyStateNode): Map<AnyStateNode, string> {
  const ids = new Map<AnyStateNode, string>();
  const used = new Set<string>();
  const drawn = root.type === 'parallel' ? [root, ...descendants(root)] : [...descendants(root)];
  for (const node of drawn) {
    let id = (node === root ? root.id : node.path.join('_')).replace(/[^A-Za-z0-9_]/g, '_');
    if (/^[0-9]/.test(id) || RESERVED_IDS.has(id)) id = `s_${id}`;
    let unique = id;
    for (let n = 2; used.has(unique); n++) unique = `${id}_${n}`;
    used.add(unique);
    ids.set(node, unique);
  }
  return ids;
}

/** All state nodes below `node`, depth first, in declaration order. */
function* descendants(node: AnyStateNode): Generator<AnyStateNode> {
  for (const child of childrenOf(node)) {
    yield child;
    yield* descendants(child);
  }
}

function childrenOf(node: AnyStateNode): AnyStateNode[] {
  return Object.values(node.states);
}

/** The declarations of `parent`'s children, nested blocks included, at `depth` indents. */
function declareChildren(parent: AnyStateNode, idOf: (node: AnyStateNode) => string, depth: number): string[] {
  const pad = INDENT.repeat(depth);
  const lines: string[] = [];
  const children = childrenOf(parent);
  children.forEach((child, index) => {
    if (parent.type === 'parallel' && index > 0) lines.push(`${pad}--`);
    const declaration = `${pad}state "${quoteSafe(stateLabel(child))}" as ${idOf(child)}`;
    if (child.type === 'compound' || child.type === 'parallel') {
      lines.push(`${declaration} {`, ...declareChildren(child, idOf, depth + 1), `${pad}}`);
    } else {
      lines.push(declaration);
    }
  });
  if (parent.type === 'compound') {
    for (const initial of parent.initial.target) lines.push(`${pad}[*] --> ${idOf(initial)}`);
  }
  for (const child of children) {
    if (child.type === 'final') lines.push(`${pad}${idOf(child)} --> [*]`);
  }
  return lines;
}

/** A state's key; a history state says which kind it is. */
function stateLabel(node: AnyStateNode): string {
  if (node.type !== 'history') return node.key;
  return `${node.key} (${node.history === 'deep' ? 'deep ' : ''}history)`;
}

/** Every transition with a target, in declaration order: state by state, depth first. */
function collectEdges(root: AnyStateNode): { edges: Edge[]; enclosed: Edge[] } {
  const edges: Edge[] = [];
  const enclosed: Edge[] = [];
  for (const node of [root, ...descendants(root)]) {
    const transitions: AnyTransitionDefinition[] = [...[...node.transitions.values()].flat(), ...(node.always ?? [])];
    for (const transition of transitions) {
      const label = transitionLabel(node, transition);
      for (const target of transition.target ?? []) {
        const edge = { from: node, to: target, label };
        const isEnclosed = node === root || (node.type !== 'atomic' && node.type !== 'final' && isAncestorOrSelf(node, target));
        (isEnclosed ? enclosed : edges).push(edge);
      }
    }
  }
  return { edges, enclosed };
}

function isAncestorOrSelf(ancestor: AnyStateNode, node: AnyStateNode | undefined): boolean {
  for (let current = node; current; current = current.parent) if (current === ancestor) return true;
  return false;
}

function groupByTarget(edges: readonly Edge[]): Map<AnyStateNode, Edge[]> {
  const groups = new Map<AnyStateNode, Edge[]>();
  for (const edge of edges) groups.set(edge.to, [...(groups.get(edge.to) ?? []), edge]);
  return groups;
}

/** `EVENT [guard]`, with xstate's internal event types named for a reader. */
function transitionLabel(source: AnyStateNode, transition: AnyTransitionDefinition): string {
  const event = eventLabel(source, transition);
  const guard = transition.guard === undefined ? '' : ` [${guardLabel(transition.guard, false)}]`;
  return labelSafe(`${event}${guard}`);
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
function displayPath(node: AnyStateNode): string {
  return node.path.length > 0 ? node.path.join('.') : node.id;
}

function describedStates(root: AnyStateNode): AnyStateNode[] {
  return [...descendants(root)].filter((node) => node.description !== undefined && node.description.trim() !== '');
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
