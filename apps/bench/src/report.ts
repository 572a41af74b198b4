import { goalMet } from './types.js';
import type { BenchResult, BenchTable, GoalRatio } from './types.js';
import { round } from './stats.js';

// Everything the runner prints or writes, as pure functions of the results (unit-tested).

export function formatNumber(value: number): string {
  return String(round(value));
}

export function goalText(goal: GoalRatio): string {
  return `${goal.kind === 'at-most' ? '≤' : '≥'} ${formatNumber(goal.goal)}`;
}

/** A fixed-width text table for the terminal. */
export function textTable(table: BenchTable): string {
  const rows = [table.columns, ...table.rows];
  const widths = table.columns.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  const line = (row: readonly string[]): string =>
    row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(table.columns), widths.map((w) => '-'.repeat(w)).join('  '), ...table.rows.map(line)].join('\n');
}

function escapeCell(cell: string): string {
  return cell.replaceAll('|', '\\|');
}

export function markdownTable(table: BenchTable): string {
  const head = `| ${table.columns.map(escapeCell).join(' | ')} |`;
  const rule = `|${table.columns.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`;
  const body = table.rows.map((row) => `| ${row.map(escapeCell).join(' | ')} |`);
  return [head, rule, ...body].join('\n');
}

export function goalsTable(goals: readonly GoalRatio[]): BenchTable {
  return {
    columns: ['ratio', 'measured', 'goal', 'met'],
    rows: goals.map((g) => [`${g.label} (${g.key})`, formatNumber(g.value), goalText(g), goalMet(g) ? 'yes' : 'NO']),
  };
}

/** The whole printed report: each benchmark's table and notes, then the goals. */
export function textReport(results: readonly BenchResult[]): string {
  const parts: string[] = [];
  for (const result of results) {
    parts.push(`\n${result.title}\n\n${textTable(result.table)}`);
    for (const note of result.notes) parts.push(`  - ${note}`);
  }
  const goals = results.flatMap((r) => r.goals);
  if (goals.length > 0) parts.push(`\nGoals\n\n${textTable(goalsTable(goals))}`);
  return parts.join('\n');
}

function escapeXml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
}

/**
 * A horizontal bar per goal, with the goal as a tick on the same row. Each row has its own linear
 * scale from 0 (goals mix ratios with rates and milliseconds), so a bar is read against its own
 * tick: green when the goal is met, red when not, for both kinds of goal.
 */
export function ratiosSvg(goals: readonly GoalRatio[], caption: string): string {
  const labelWidth = 330;
  const barWidth = 300;
  const rowHeight = 30;
  const top = 40;
  const width = labelWidth + barWidth + 170;
  const height = top + goals.length * rowHeight + 16;
  const rows = goals.map((g, i) => {
    const y = top + i * rowHeight;
    const max = Math.max(g.value, g.goal) * 1.25;
    const x = (value: number): string => (labelWidth + (Math.max(0, value) / max) * barWidth).toFixed(1);
    const color = goalMet(g) ? '#2e7d32' : '#c62828';
    return [
      `<text x="${labelWidth - 8}" y="${y + 17}" text-anchor="end">${escapeXml(g.label)}</text>`,
      `<rect x="${labelWidth}" y="${y + 5}" width="${(Number(x(g.value)) - labelWidth).toFixed(1)}" height="18" fill="${color}"/>`,
      `<line x1="${x(g.goal)}" x2="${x(g.goal)}" y1="${y + 1}" y2="${y + 27}" stroke="#111" stroke-width="2"/>`,
      `<text x="${labelWidth + barWidth + 8}" y="${y + 18}">${escapeXml(formatNumber(g.value))} (goal ${escapeXml(goalText(g))})</text>`,
    ].join('\n  ');
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">
  <rect width="100%" height="100%" fill="#fff"/>
  <text x="12" y="22" font-size="14" font-weight="bold">${escapeXml(caption)}</text>
  ${rows.join('\n  ')}
</svg>
`;
}

export const README_START = '<!-- bench:start (written by npm run bench; edit apps/bench, not this section) -->';
export const README_END = '<!-- bench:end -->';

/** The README's Performance section body: chart, goals, each table, notes, and the machine. */
export function readmeSection(results: readonly BenchResult[], machine: string, date: string, chartPath: string): string {
  const goals = results.flatMap((r) => r.goals);
  const parts = [
    README_START,
    `Last full run (\`npm run bench\`) on ${date}: ${machine}.`,
    '',
    `![Parley's ratios against their baselines, measured side by side in one run](${chartPath})`,
    '',
    markdownTable(goalsTable(goals)),
  ];
  for (const result of results) {
    parts.push('', `#### ${result.title}`, '', markdownTable(result.table));
    if (result.notes.length > 0) parts.push('', ...result.notes.map((note) => `- ${note}`));
  }
  parts.push(README_END);
  return parts.join('\n');
}

/** Replaces the section between the markers, or throws when the README has none. */
export function replaceReadmeSection(readme: string, section: string): string {
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  if (start < 0 || end < start) throw new Error('README.md has no bench section markers (see apps/bench/src/report.ts)');
  return readme.slice(0, start) + section + readme.slice(end + README_END.length);
}
