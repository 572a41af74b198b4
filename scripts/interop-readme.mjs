// `npm run interop:readme`: writes the README's Interop table from the interop suite's last run
// (packages/browser/test/interop/last-run.json, written by `node scripts/test.mjs --project
// interop`), between the interop markers, as `npm run bench` does for the Performance section.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(ROOT, 'packages/browser/test/interop/last-run.json');
const README = join(ROOT, 'README.md');
export const README_START = '<!-- interop:start (written by npm run interop:readme from the interop suite; edit packages/browser/test/interop, not this section) -->';
export const README_END = '<!-- interop:end -->';

/** What each check means, in the table's legend. */
const CHECKS = {
  connected: 'connected, `chat` channel open',
  data: 'a message both ways',
  'glare-channels': 'both open a channel at once',
  'glare-transceivers': 'both add a transceiver at once (offers cross)',
  'ice-restart': 'ICE restart, then a message',
  media: 'video both ways, frames decoded',
  'media-rtp': 'video to werift, RTP packets counted',
};

const cell = (text) => String(text).replace(/\|/g, '\\|');

/** The Markdown section from one run of the suite. */
export function interopSection(results) {
  const lines = [];
  lines.push(`Last run: ${results.date.slice(0, 10)}, ${results.pairs.length} pairs in ${results.wallSeconds} s (wall, \`node scripts/test.mjs --project interop\`, 2 cores).`);
  lines.push('');
  lines.push('| engine | version |', '| --- | --- |');
  for (const [engine, version] of Object.entries(results.engines)) lines.push(`| ${engine} | ${cell(version)} |`);
  lines.push('');
  lines.push(`| pair | set-up (ms, call → connected) | ${Object.keys(CHECKS).join(' | ')} |`);
  lines.push(`| --- | ---: | ${Object.keys(CHECKS).map(() => ':---:').join(' | ')} |`);
  for (const pair of results.pairs) {
    const marks = Object.keys(CHECKS).map((check) => (pair.covered.includes(check) ? '✓' : '–'));
    lines.push(`| ${pair.pair[0]} ↔ ${pair.pair[1]} | ${pair.setupMs} | ${marks.join(' | ')} |`);
  }
  lines.push('');
  lines.push(`Checks: ${Object.entries(CHECKS).map(([check, meaning]) => `**${check}**: ${meaning}`).join('; ')}. – means not run for that pair:`);
  lines.push('');
  const reasons = new Map();
  for (const pair of results.pairs) for (const reason of pair.notCovered) reasons.set(reason, [...(reasons.get(reason) ?? []), `${pair.pair[0]} ↔ ${pair.pair[1]}`]);
  for (const [reason, pairs] of reasons) lines.push(`- ${pairs.join(', ')}: ${cell(reason)}`);
  return lines.join('\n');
}

/** `readme` with the section between the markers replaced. */
export function spliceInterop(readme, section) {
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  if (start < 0 || end < start) throw new Error(`README.md has no interop markers (${README_START} ... ${README_END})`);
  return `${readme.slice(0, start + README_START.length)}\n${section}\n${readme.slice(end)}`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const results = JSON.parse(readFileSync(RESULTS, 'utf8'));
  writeFileSync(README, spliceInterop(readFileSync(README, 'utf8'), interopSection(results)));
  console.log(`README.md: interop table from ${RESULTS} (${results.pairs.length} pairs)`);
}
