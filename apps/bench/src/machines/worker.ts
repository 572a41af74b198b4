// The child process of the machines benchmark (index.ts starts it pinned to one core):
//   node worker.js throughput <negotiations per run> <runs> <warm-up runs>
//   node --expose-gc worker.js memory <subject> <peers> <repetitions>
// prints one JSON line on stdout, progress on stderr.

import { fileURLToPath } from 'node:url';
import { alternate } from '../stats.js';
import { SUBJECTS, runNegotiations } from './negotiate.js';
import type { Subject } from './negotiate.js';
import { idlePeerBytes } from './memory.js';

export interface ThroughputOutput {
  readonly kind: 'throughput';
  /** Negotiations per CPU second of each measured run, per subject, in the order they ran. */
  readonly rates: Readonly<Record<Subject, number[]>>;
  /** The same runs per wall-clock second (lower when other processes take the CPU). */
  readonly wallRates: Readonly<Record<Subject, number[]>>;
  /** Warm-up runs (not counted), per subject, per CPU second. */
  readonly warmupRates: Readonly<Record<Subject, number[]>>;
}

export interface MemoryOutput {
  readonly kind: 'memory';
  readonly subject: Subject;
  /** Heap bytes per idle peer, one per repetition. */
  readonly bytesPerPeer: number[];
}

const collect = (): void => {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
};

export async function throughput(negotiations: number, runs: number, warmup: number, log: (line: string) => void): Promise<ThroughputOutput> {
  const wallRates: Record<Subject, number[]> = { parley: [], handWritten: [] };
  let counting = false;
  const measure = async (subject: Subject): Promise<number> => {
    collect(); // garbage left by the previous run is not this run's
    const { ms, cpuMs } = await runNegotiations(subject, negotiations);
    if (counting) wallRates[subject].push(negotiations / (ms / 1000));
    return negotiations / (cpuMs / 1000);
  };
  const warmupRates = await alternate(SUBJECTS, warmup, (subject) => measure(subject));
  log(`warm-up: ${SUBJECTS.map((s) => `${s} ${warmupRates[s].map((r) => r.toFixed(0)).join(', ')}`).join('; ')} negotiations/s`);
  counting = true;
  const rates = await alternate(SUBJECTS, runs, async (subject, round) => {
    const rate = await measure(subject);
    log(`round ${round + 1}/${runs}: ${subject} ${rate.toFixed(0)} negotiations per CPU second (${wallRates[subject].at(-1)!.toFixed(0)} per wall-clock second)`);
    return rate;
  });
  return { kind: 'throughput', rates, wallRates, warmupRates };
}

async function main(argv: readonly string[]): Promise<void> {
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const [mode, ...rest] = argv;
  let output: ThroughputOutput | MemoryOutput;
  if (mode === 'throughput') {
    const [negotiations, runs, warmup] = rest.map(Number);
    output = await throughput(negotiations!, runs!, warmup!, log);
  } else if (mode === 'memory') {
    const subject = rest[0] as Subject;
    if (!SUBJECTS.includes(subject)) throw new Error(`unknown subject ${rest[0]}`);
    const [peers, repetitions] = rest.slice(1).map(Number);
    if (!(globalThis as { gc?: unknown }).gc) throw new Error('memory mode needs node --expose-gc');
    const bytesPerPeer: number[] = [];
    for (let i = 0; i < repetitions!; i++) bytesPerPeer.push(idlePeerBytes(subject, peers!, collect));
    output = { kind: 'memory', subject, bytesPerPeer };
  } else {
    throw new Error(`unknown mode ${String(mode)} (throughput or memory)`);
  }
  process.stdout.write(`${JSON.stringify(output)}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}
