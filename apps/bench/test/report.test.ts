import { describe, expect, it } from 'vitest';
import { parseArgs } from '../src/cli.js';
import { README_END, README_START, markdownTable, ratiosSvg, readmeSection, replaceReadmeSection, textReport, textTable } from '../src/report.js';
import type { BenchResult, GoalRatio } from '../src/types.js';
import { goalMet } from '../src/types.js';

const goals: GoalRatio[] = [
  { key: 'callSetup.parleyOverRaw', label: 'call set-up, Parley / raw', value: 1.04, goal: 1.1, kind: 'at-most' },
  { key: 'signaling.throughputOverRawWs', label: 'relay, Parley / raw ws', value: 0.7, goal: 0.8, kind: 'at-least' },
];

const result: BenchResult = {
  name: 'callSetup',
  title: 'Call set-up',
  json: { parleyOverRaw: 1.04 },
  table: { columns: ['subject', 'median ms'], rows: [['raw', '80.1'], ['parley | fast', '83.4']] },
  goals: [goals[0]!],
  notes: ['a note'],
};

describe('goals', () => {
  it('are met on the right side of the goal, the goal itself included', () => {
    expect(goalMet(goals[0]!)).toBe(true);
    expect(goalMet(goals[1]!)).toBe(false);
    expect(goalMet({ ...goals[0]!, value: 1.1 })).toBe(true);
    expect(goalMet({ ...goals[0]!, value: 1.11 })).toBe(false);
    expect(goalMet({ ...goals[1]!, value: 0.8 })).toBe(true);
  });
});

describe('tables', () => {
  it('align columns in text', () => {
    const lines = textTable(result.table).split('\n');
    expect(lines).toHaveLength(4);
    expect(new Set(lines.map((l) => l.length)).size).toBe(1);
    expect(lines[3]).toMatch(/^parley \| fast\s+83\.4$/);
  });

  it('escape pipes in markdown and right-align numbers', () => {
    const md = markdownTable(result.table);
    expect(md.split('\n')[1]).toBe('|---|---:|');
    expect(md).toContain('parley \\| fast');
  });

  it('the report lists every table, note and goal, and says which goals were missed', () => {
    const text = textReport([{ ...result, goals }]);
    expect(text).toContain('Call set-up');
    expect(text).toContain('a note');
    expect(text).toMatch(/callSetup\.parleyOverRaw\)\s+1\.04\s+≤ 1\.1\s+yes/);
    expect(text).toMatch(/signaling\.throughputOverRawWs\)\s+0\.7\s+≥ 0\.8\s+NO/);
  });
});

describe('the SVG chart', () => {
  it('draws one bar per ratio, coloured by its goal, with escaped labels', () => {
    const svg = ratiosSvg([...goals, { ...goals[0]!, label: 'a < b & c' }], 'caption');
    expect(svg.match(/<rect x=/g)).toHaveLength(3);
    expect(svg.match(/fill="#2e7d32"/g)).toHaveLength(2);
    expect(svg.match(/fill="#c62828"/g)).toHaveLength(1);
    expect(svg).toContain('a &lt; b &amp; c');
    expect(svg.startsWith('<svg')).toBe(true);
  });

  it('scales each row to its own goal, so a rate and a ratio are both readable', () => {
    const rate: GoalRatio = { key: 'machines.negotiationsPerSecond', label: 'rate', value: 360, goal: 2000, kind: 'at-least' };
    const svg = ratiosSvg([rate, goals[0]!], 'caption');
    const widths = [...svg.matchAll(/<rect x="330" y="[\d.]+" width="([\d.]+)"/g)].map((m) => Number(m[1]));
    const ticks = [...svg.matchAll(/<line x1="([\d.]+)"/g)].map((m) => Number(m[1]) - 330);
    // 360 of 2000 is 18% of the goal's length; 1.04 of 1.1 is 95% of it.
    expect(widths[0]! / ticks[0]!).toBeCloseTo(0.18, 2);
    expect(widths[1]! / ticks[1]!).toBeCloseTo(1.04 / 1.1, 2);
    expect(Math.max(...widths, ...ticks)).toBeLessThanOrEqual(300);
  });
});

describe('the README section', () => {
  it('replaces only what lies between the markers', () => {
    const readme = `# x\n\n## Performance\n\n${README_START}\nold\n${README_END}\n\n## Development\n`;
    const section = readmeSection([result], 'a machine', '2026-11-21', 'apps/bench/results/ratios.svg');
    const next = replaceReadmeSection(readme, section);
    expect(next).not.toContain('old');
    expect(next).toContain('on 2026-11-21: a machine.');
    expect(next).toContain('![');
    expect(next.endsWith(`${README_END}\n\n## Development\n`)).toBe(true);
    expect(replaceReadmeSection(next, section)).toBe(next);
  });

  it('refuses a README without markers', () => {
    expect(() => replaceReadmeSection('# x\n', 'y')).toThrow(/markers/);
  });
});

describe('command line', () => {
  it('reads --quick and --only, and refuses the rest', () => {
    expect(parseArgs([])).toEqual({ quick: false, only: ['machines', 'signaling', 'dataChannel', 'callSetup', 'mesh'] });
    expect(parseArgs(['--quick', '--only', 'callSetup,machines'])).toEqual({ quick: true, only: ['machines', 'callSetup'] });
    expect(parseArgs(['--only=signaling'])).toEqual({ quick: false, only: ['signaling'] });
    expect(() => parseArgs(['--only', 'nope'])).toThrow(/--only/);
    expect(() => parseArgs(['--only'])).toThrow(/--only/);
    expect(() => parseArgs(['--fast'])).toThrow(/unknown argument/);
  });
});
