#!/usr/bin/env node
// `npm run bench` (everything, minutes) and `npm run bench -- --quick` (under 5 minutes).
// `--only machines,signaling` runs some of them (such a run never touches the README).
// Prints one table per benchmark and the goals; writes results/latest.json; a full run of all
// of them also writes results/ratios.svg and the README's Performance section.

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCHMARKS } from './benchmarks.js';
import { describeMachine, machineInfo } from './machine-info.js';
import { ratiosSvg, readmeSection, replaceReadmeSection, textReport } from './report.js';
import { BENCH_NAMES, goalMet } from './types.js';
import type { BenchName, BenchResult } from './types.js';

const BENCH_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS_DIR = join(BENCH_DIR, 'results');
const README = join(BENCH_DIR, '..', '..', 'README.md');

interface CliOptions {
  readonly quick: boolean;
  readonly only: readonly BenchName[];
}

export function parseArgs(argv: readonly string[]): CliOptions {
  let quick = false;
  let only: BenchName[] = [...BENCH_NAMES];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--quick') quick = true;
    else if (arg === '--only' || arg.startsWith('--only=')) {
      const value = arg === '--only' ? argv[++i] : arg.slice('--only='.length);
      const names = (value ?? '').split(',').filter(Boolean);
      const unknown = names.filter((n) => !BENCH_NAMES.includes(n as BenchName));
      if (names.length === 0 || unknown.length > 0) {
        throw new Error(`--only takes a comma-separated list of ${BENCH_NAMES.join(', ')}; got ${JSON.stringify(value ?? '')}`);
      }
      only = BENCH_NAMES.filter((n) => names.includes(n));
    } else throw new Error(`unknown argument ${JSON.stringify(arg)} (use --quick, --only NAMES)`);
  }
  return { quick, only };
}

/** Reads `a.b` out of the results, so every goal's key is checked to be in the JSON it names. */
function lookup(json: Readonly<Record<string, unknown>>, key: string): unknown {
  return key.split('.').reduce<unknown>((node, part) => (node && typeof node === 'object' ? (node as Record<string, unknown>)[part] : undefined), json);
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  const log = (line: string): void => void process.stderr.write(`[bench] ${line}\n`);
  const machine = machineInfo();
  const started = new Date();
  log(`${options.quick ? 'quick' : 'full'} run of ${options.only.join(', ')} on ${describeMachine(machine)}`);

  const results: BenchResult[] = [];
  const failures: Record<string, string> = {};
  for (const name of options.only) {
    const t0 = performance.now();
    log(`${name}: starting`);
    try {
      results.push(await BENCHMARKS[name].run({ quick: options.quick, log: (line) => log(`${name}: ${line}`) }));
      log(`${name}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } catch (error) {
      failures[name] = error instanceof Error ? (error.stack ?? error.message) : String(error);
      log(`${name}: FAILED: ${failures[name]}`);
    }
  }

  const json: Record<string, unknown> = {
    run: {
      mode: options.quick ? 'quick' : 'full',
      benchmarks: options.only,
      startedAt: started.toISOString(),
      durationSeconds: Math.round((Date.now() - started.getTime()) / 1000),
      machine,
    },
  };
  for (const result of results) json[result.name] = result.json;
  const goals = results.flatMap((r) => r.goals);
  for (const goal of goals) {
    if (lookup(json, goal.key) !== goal.value) throw new Error(`goal ${goal.key} is not the value at that key in the results`);
  }
  json['goals'] = goals.map((g) => ({ ...g, met: goalMet(g) }));
  if (Object.keys(failures).length > 0) json['failures'] = failures;

  process.stdout.write(`${textReport(results)}\n`);
  await mkdir(RESULTS_DIR, { recursive: true });
  await writeFile(join(RESULTS_DIR, 'latest.json'), `${JSON.stringify(json, null, 2)}\n`);
  log(`wrote ${join(RESULTS_DIR, 'latest.json')}`);

  const complete = !options.quick && options.only.length === BENCH_NAMES.length && Object.keys(failures).length === 0;
  if (complete) {
    const date = started.toISOString().slice(0, 10);
    await writeFile(join(RESULTS_DIR, 'ratios.svg'), ratiosSvg(goals, `Parley's goals, ${date} (each row on its own scale; tick: the goal; green: met)`));
    const readme = await readFile(README, 'utf8');
    await writeFile(README, replaceReadmeSection(readme, readmeSection(results, describeMachine(machine), date, 'apps/bench/results/ratios.svg')));
    log('wrote results/ratios.svg and the README Performance section');
  }
  const missed = goals.filter((g) => !goalMet(g)).map((g) => g.key);
  if (missed.length > 0) log(`goals missed: ${missed.join(', ')} (see the notes above)`);
  return Object.keys(failures).length > 0 ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`[bench] ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(2);
    },
  );
}
