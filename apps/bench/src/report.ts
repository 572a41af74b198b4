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
 * A horizontal bar per ratio, with its goal as a tick. "Better" is drawn the same way for both
 * kinds: a bar is green when the goal is met. The scale is linear from 0 and shared by all bars.
 */
export function ratiosSvg(goals: readonly GoalRatio[], caption: string): string {
  const labelWidth = 330;
  const barWidth = 360;
  const rowHeight = 30;
  const top = 40;
  const width = labelWidth + barWidth + 90;
  const height = top + goals.length * rowHeight + 40;
  const max = Math.max(1.2, ...goals.flatMap((g) => [g.value, g.goal])) * 1.1;
  const x = (value: number): number => labelWidth + (Math.min(value, max) / max) * barWidth;
  const rows = goals.map((g, i) => {
    const y = top + i * rowHeight;
    const color = goalMet(g) ? '#2e7d32' : '#c62828';
    return [
      `<text x="${labelWidth - 8}" y="${y + 17}" text-anchor="end">${escapeXml(g.label)}</text>`,
      `<rect x="${labelWidth}" y="${y + 5}" width="${(x(g.value) - labelWidth).toFixed(1)}" height="18" fill="${color}"/>`,
      `<line x1="${x(g.goal).toFixed(1)}" x2="${x(g.goal).toFixed(1)}" y1="${y + 1}" y2="${y + 27}" stroke="#111" stroke-width="2"/>`,
      `<text x="${(x(g.value) + 6).toFixed(1)}" y="${y + 18}">${escapeXml(formatNumber(g.value))} (goal ${escapeXml(goalText(g))})</text>`,
    ].join('\n  ');
  });
  const one = x(1).toFixed(1);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">
  <rect width="100%" height="100%" fill="#fff"/>
  <text x="12" y="22" font-size="14" font-weight="bold">${escapeXml(caption)}</text>
  <line x1="${one}" x2="${one}" y1="${top}" y2="${height - 30}" stroke="#999" stroke-dasharray="4 3"/>
  <text x="${one}" y="${height - 14}" text-anchor="middle" fill="#555">1.0 (same as the baseline)</text>
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
