import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { and, fromPromise, not, or, setup, stateIn } from 'xstate';
import { chartDescendants, machineChart, renderMachinesDocument, toMermaid } from '../src/diagram.js';
import type { MachineDocumentEntry } from '../src/diagram.js';

// The list `npm run diagrams` draws (plain JS run by node, so imported by URL: TypeScript would
// look for a declaration file next to it).
const MACHINES_LIST = new URL('../../../scripts/machines-list.mjs', import.meta.url).href;
const { machines } = (await import(MACHINES_LIST)) as { machines: readonly MachineDocumentEntry[] };
const DOCUMENT = new URL('../../../docs/machines.md', import.meta.url);

/** The diagram's lines without indentation (indentation is checked once, in the first test). */
const linesOf = (diagram: string): string[] => diagram.trimEnd().split('\n').map((line) => line.trim());

const fetchThing = fromPromise<number>(() => Promise.resolve(1));

describe('toMermaid', () => {
  it('draws a compound machine: initial, final, events, guards, delays, always and invoke outcomes', () => {
    const machine = setup({
      actors: { fetchThing },
      guards: { isRetryable: () => true, hasData: () => true },
      delays: { fetchTimeout: 1000 },
    }).createMachine({
      id: 'fetcher',
      initial: 'idle',
      states: {
        idle: { on: { FETCH: 'loading', PING: { actions: () => undefined } } },
        loading: {
          invoke: {
            src: 'fetchThing',
            onDone: { target: 'checking' },
            onError: [{ guard: 'isRetryable', target: 'idle' }, { target: 'failed' }],
          },
          after: { fetchTimeout: 'failed', 250: 'idle' },
        },
        checking: { always: [{ guard: 'hasData', target: 'done' }, { target: 'idle' }] },
        failed: { on: { RETRY: { target: 'loading' } } },
        done: { type: 'final' },
      },
    });

    expect(toMermaid(machine)).toBe(
      [
        'stateDiagram-v2',
        '  state "idle" as idle',
        '  state "loading" as loading',
        '  state "checking" as checking',
        '  state "failed" as failed',
        '  state "done" as done',
        '  [*] --> idle',
        '  done --> [*]',
        '  idle --> loading : FETCH',
        '  loading --> checking : done: fetchThing',
        '  loading --> idle : error: fetchThing [isRetryable]<br/>after 250ms',
        '  loading --> failed : error: fetchThing<br/>after fetchTimeout',
        '  checking --> done : always [hasData]',
        '  checking --> idle : always',
        '  failed --> loading : RETRY',
        '',
      ].join('\n'),
    );
  });

  it('nests composite states as blocks with path ids, and draws transitions across levels', () => {
    const machine = setup({}).createMachine({
      id: 'nested',
      initial: 'outer',
      states: {
        outer: {
          initial: 'inner',
          onDone: 'after',
          on: { ABORT: 'after' },
          states: {
            inner: { on: { NEXT: 'finished', JUMP: '#nested.after' } },
            finished: { type: 'final' },
          },
        },
        after: {},
      },
    });

    expect(linesOf(toMermaid(machine, { direction: 'LR' }))).toEqual([
      'stateDiagram-v2',
      'direction LR',
      'state "outer" as outer {',
      'state "inner" as outer_inner',
      'state "finished" as outer_finished',
      '[*] --> outer_inner',
      'outer_finished --> [*]',
      '}',
      'state "after" as after',
      '[*] --> outer',
      'outer --> after : ABORT<br/>done',
      'outer_inner --> outer_finished : NEXT',
      'outer_inner --> after : JUMP',
    ]);
  });

  it('separates parallel regions with --, each region a block with its own initial state', () => {
    const machine = setup({}).createMachine({
      id: 'keyboard',
      type: 'parallel',
      states: {
        caps: { initial: 'off', states: { off: { on: { CAPS: 'on' } }, on: { on: { CAPS: 'off' } } } },
        num: { initial: 'on', states: { on: { on: { NUM: 'off' } }, off: { on: { NUM: 'on' } } } },
      },
    });

    // Mermaid rejects `--` outside a block, so a parallel root is drawn as one.
    expect(linesOf(toMermaid(machine))).toEqual([
      'stateDiagram-v2',
      'state "keyboard" as keyboard {',
      'state "caps" as caps {',
      'state "off" as caps_off',
      'state "on" as caps_on',
      '[*] --> caps_off',
      '}',
      '--',
      'state "num" as num {',
      'state "on" as num_on',
      'state "off" as num_off',
      '[*] --> num_on',
      '}',
      '}',
      'caps_off --> caps_on : CAPS',
      'caps_on --> caps_off : CAPS',
      'num_on --> num_off : NUM',
      'num_off --> num_on : NUM',
    ]);
  });

  it('spells out and / or / not / stateIn guards, parenthesizing nested combinations', () => {
    const machine = setup({
      guards: { isNextAnOffer: () => true, isPolite: () => true, isOpen: () => true, isIdle: () => true },
    }).createMachine({
      id: 'guards',
      initial: 'a',
      states: {
        a: {
          on: {
            BOTH: { guard: and(['isNextAnOffer', 'isPolite']), target: 'b' },
            IMPOLITE: { guard: and(['isNextAnOffer', not('isPolite')]), target: 'b' },
            EITHER: { guard: or(['isOpen', and(['isIdle', not(or(['isPolite', 'isOpen']))])]), target: 'b' },
            PARAMS: { guard: { type: 'isOpen', params: { strict: true } }, target: 'b' },
            INLINE: { guard: function isLate() { return true; }, target: 'b' },
            IN: { guard: stateIn('#guards.b'), target: 'b' },
          },
        },
        b: {},
      },
    });

    const arrow = linesOf(toMermaid(machine)).find((line) => line.startsWith('a --> b : '));
    expect(arrow?.slice('a --> b : '.length).split('<br/>')).toEqual([
      'BOTH [isNextAnOffer and isPolite]',
      'IMPOLITE [isNextAnOffer and not isPolite]',
      'EITHER [isOpen or (isIdle and not (isPolite or isOpen))]',
      'PARAMS [isOpen]',
      'INLINE [isLate]',
      'IN [in #35;guards.b]',
    ]);
  });

  it('names invoked actors by their explicit id, otherwise by src; shows a state onDone as done', () => {
    const machine = setup({ actors: { fetchThing } }).createMachine({
      id: 'invokes',
      initial: 'named',
      states: {
        named: { invoke: { id: 'loader', src: 'fetchThing', onDone: 'anonymous', onError: 'failed' } },
        anonymous: { invoke: { src: 'fetchThing', onDone: 'failed' } },
        failed: { type: 'final' },
      },
    });

    const lines = linesOf(toMermaid(machine));
    expect(lines).toContain('named --> anonymous : done: loader');
    expect(lines).toContain('named --> failed : error: loader');
    expect(lines).toContain('anonymous --> failed : done: fetchThing');
  });

  it('marks history states', () => {
    const machine = setup({}).createMachine({
      id: 'player',
      initial: 'playing',
      states: {
        playing: {
          initial: 'track',
          states: { track: {}, resume: { type: 'history', history: 'deep' }, last: { type: 'history' } },
          on: { PAUSE: 'paused' },
        },
        paused: { on: { RESUME: 'playing.resume' } },
      },
    });

    const lines = linesOf(toMermaid(machine));
    expect(lines).toContain('state "resume (deep history)" as playing_resume');
    expect(lines).toContain('state "last (history)" as playing_last');
    expect(lines).toContain('paused --> playing_resume : RESUME');
  });

  it('leaves out targetless transitions and keeps self-transitions of atomic states', () => {
    const machine = setup({}).createMachine({
      id: 'loops',
      initial: 'a',
      states: { a: { on: { TICK: { actions: () => undefined }, RESET: { target: 'a', reenter: true } } } },
    });

    expect(linesOf(toMermaid(machine))).toEqual(['stateDiagram-v2', 'state "a" as a', '[*] --> a', 'a --> a : RESET']);
  });

  it('turns transitions into a composite state\'s own inside into a note on the target', () => {
    const machine = setup({}).createMachine({
      id: 'enclosed',
      initial: 'running',
      on: { CLOSE: '.closed' },
      states: {
        running: {
          initial: 'one',
          on: { RESTART: '.one' },
          states: { one: { on: { NEXT: 'two' } }, two: {} },
        },
        closed: { type: 'final' },
      },
    });

    const lines = linesOf(toMermaid(machine));
    expect(lines.slice(lines.indexOf('running_one --> running_two : NEXT') + 1)).toEqual([
      'note left of closed',
      'CLOSE (from any state)',
      'end note',
      'note left of running_one',
      'RESTART (from any state in running)',
      'end note',
    ]);
    expect(lines.filter((line) => line.includes('-->') && /CLOSE|RESTART/.test(line))).toEqual([]);
  });

  it('makes ids Mermaid-safe and unique, and escapes labels', () => {
    const machine = setup({}).createMachine({
      id: 'names',
      initial: 'end',
      states: {
        end: { on: { 'GO;NOW': 'a-b' } },
        'a-b': { on: { NEXT: 'a_b' } },
        a_b: {},
        'say "hi"': {},
      },
    });

    expect(linesOf(toMermaid(machine))).toEqual([
      'stateDiagram-v2',
      'state "end" as s_end',
      'state "a-b" as a_b',
      'state "a_b" as a_b_2',
      'state "say #quot;hi#quot;" as say__hi_',
      '[*] --> s_end',
      's_end --> a_b : GO#59;NOW',
      'a_b --> a_b_2 : NEXT',
    ]);
  });
});

describe('machineChart', () => {
  const machine = setup({ guards: { isReady: () => true } }).createMachine({
    id: 'door',
    initial: 'closed',
    on: { BREAK: '.broken' },
    states: {
      closed: { on: { 'OPEN#1': { guard: 'isReady', target: 'open' }, KNOCK: { actions: () => undefined } } },
      open: {
        type: 'parallel',
        on: { RESET: '.light.off' },
        states: {
          light: { initial: 'off', states: { off: { on: { SWITCH: 'on' } }, on: {} } },
          fan: { initial: 'still', states: { still: {} } },
        },
      },
      broken: { type: 'final', description: 'Beyond repair.' },
    },
  });

  it('lists the states as a tree with ids, keys, paths, types, initial states and descriptions', () => {
    const chart = machineChart(machine);
    expect(chart.id).toBe('door');
    expect(chart.root).toMatchObject({ id: 'door', type: 'compound', initial: ['door.closed'], path: [] });
    expect([...chartDescendants(chart.root)].map((state) => [state.id, state.type, state.path.join('.'), state.initial])).toEqual([
      ['door.closed', 'atomic', 'closed', []],
      ['door.open', 'parallel', 'open', []],
      ['door.open.light', 'compound', 'open.light', ['door.open.light.off']],
      ['door.open.light.off', 'atomic', 'open.light.off', []],
      ['door.open.light.on', 'atomic', 'open.light.on', []],
      ['door.open.fan', 'compound', 'open.fan', ['door.open.fan.still']],
      ['door.open.fan.still', 'atomic', 'open.fan.still', []],
      ['door.broken', 'final', 'broken', []],
    ]);
    expect(chart.root.children.find((state) => state.key === 'broken')?.description).toBe('Beyond repair.');
  });

  it('lists the transitions with targets in declaration order, labels unescaped, enclosed ones marked', () => {
    expect(machineChart(machine).transitions).toEqual([
      { source: 'door', target: 'door.broken', eventType: 'BREAK', label: 'BREAK', enclosed: true },
      { source: 'door.closed', target: 'door.open', eventType: 'OPEN#1', label: 'OPEN#1 [isReady]', enclosed: false },
      { source: 'door.open', target: 'door.open.light.off', eventType: 'RESET', label: 'RESET', enclosed: true },
      { source: 'door.open.light.off', target: 'door.open.light.on', eventType: 'SWITCH', label: 'SWITCH', enclosed: false },
    ]);
    // toMermaid draws the same chart, escaped for Mermaid.
    expect(linesOf(toMermaid(machine))).toContain('closed --> open : OPEN#35;1 [isReady]');
  });
});

describe('renderMachinesDocument', () => {
  const machine = setup({}).createMachine({
    id: 'door',
    initial: 'closed',
    states: {
      closed: { description: 'Shut | not locked.', on: { OPEN: 'open' } },
      open: { description: 'Wide\nopen.', on: { CLOSE: 'closed' } },
      ajar: {},
    },
  });

  it('renders a contents list, the summary, the diagram and a table of state descriptions', () => {
    const document = renderMachinesDocument([{ name: 'doorMachine', title: 'Door', summary: 'A door.', machine }]);

    expect(document).toContain('- [Door](#door): `doorMachine`\n');
    expect(document).toContain(
      ['## Door', '', '`doorMachine` (id `door`). A door.', '', '```mermaid', toMermaid(machine).trimEnd(), '```', ''].join('\n'),
    );
    expect(document.endsWith(['| State | What it means |', '|---|---|', '| `closed` | Shut \\| not locked. |', '| `open` | Wide open. |', ''].join('\n'))).toBe(
      true,
    );
  });

  it('is deterministic', () => {
    const entries = [{ name: 'doorMachine', title: 'Door', summary: 'A door.', machine }];
    expect(renderMachinesDocument(entries)).toBe(renderMachinesDocument(entries));
  });
});

describe('docs/machines.md', () => {
  it('lists at least the negotiation machine, each entry once', () => {
    const names = machines.map((entry) => entry.name);
    expect(names).toContain('negotiationMachine');
    expect(new Set(names).size).toBe(names.length);
  });

  it('is up to date with the machine definitions (run `npm run diagrams` when this fails)', () => {
    let committed: string;
    try {
      committed = readFileSync(DOCUMENT, 'utf8');
    } catch {
      committed = '(missing)';
    }
    expect(committed, 'docs/machines.md is stale: run `npm run diagrams` and commit the result').toBe(
      renderMachinesDocument(machines),
    );
  });
});
