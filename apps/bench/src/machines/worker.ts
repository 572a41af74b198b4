// The child process of the machines benchmark (index.ts starts it pinned to one core):
//   node worker.js throughput <subject> <negotiations per run> <warm-up runs>
//   node --expose-gc worker.js memory <subject> <peers> <repetitions>
//   node worker.js floor <regions | flat>
//   node worker.js work <negotiations counted>
// prints one JSON line on stdout, progress on stderr. One subject per process: each measured run
// is made in a process of its own (see `throughput`).

import { fileURLToPath } from 'node:url';
import { SUBJECTS, runNegotiations } from './negotiate.js';
import type { Subject } from './negotiate.js';
import { idlePeerBytes } from './memory.js';
import { FLOOR_SHAPES, countParleyWork, measureXstateFloor } from './floor.js';
import type { FloorShape, MachineWork, XstateFloor } from './floor.js';

/** What one throughput process prints: its warm-up runs and its one measured run. */
export interface SubjectThroughputOutput {
  readonly kind: 'throughput';
  readonly subject: Subject;
  /** Negotiations per CPU second of the measured run. */
  readonly rate: number;
  /** The same run per wall-clock second. */
  readonly wallRate: number;
  /** Warm-up runs (not counted), per CPU second. */
  readonly warmupRates: number[];
}

export interface MemoryOutput {
  readonly kind: 'memory';
  readonly subject: Subject;
  /** Heap bytes per idle peer, one per repetition. */
  readonly bytesPerPeer: number[];
}

/** What a floor process prints: xstate's least costs here, on a machine of one shape. */
export interface FloorOutput {
  readonly kind: 'floor';
  readonly shape: FloorShape;
  readonly floor: XstateFloor;
}

/** What the work process prints: what Parley's peers ask of xstate. */
export interface WorkOutput {
  readonly kind: 'work';
  /** Per negotiation. */
  readonly work: MachineWork;
}

const collect = (): void => {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
};

/**
 * Warm-up runs, then one measured run, of one subject in this process. The measured run follows
 * the warm-up directly, in the steady state a running app is in: no forced GC before it (one
 * made the next run 31-38 % slower for both subjects, its first scavenges several times longer
 * and most of the loss in the JavaScript itself), and no run of the other subject in the same
 * process (each subject ran up to 1.7x slower right after the other, whose calls make the fake
 * port's and the signaling pair's shared code polymorphic).
 */
export async function throughput(subject: Subject, negotiations: number, warmup: number): Promise<SubjectThroughputOutput> {
  const warmupRates: number[] = [];
  for (let i = 0; i < warmup; i++) {
    const { cpuMs } = await runNegotiations(subject, negotiations);
    warmupRates.push(negotiations / (cpuMs / 1000));
  }
  const { ms, cpuMs } = await runNegotiations(subject, negotiations);
  return { kind: 'throughput', subject, rate: negotiations / (cpuMs / 1000), wallRate: negotiations / (ms / 1000), warmupRates };
}

async function main(argv: readonly string[]): Promise<void> {
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const [mode, ...rest] = argv;
  if (mode === 'floor') {
    const shape = rest[0] as FloorShape;
    if (!FLOOR_SHAPES.includes(shape)) throw new Error(`unknown floor shape ${rest[0]}`);
    const floor = measureXstateFloor(shape);
    log(`xstate floor (${shape}): ${floor.microsPerEvent.toFixed(2)} µs per event, ${floor.microsPerActor.toFixed(2)} µs per actor`);
    process.stdout.write(`${JSON.stringify({ kind: 'floor', shape, floor } satisfies FloorOutput)}\n`);
    return;
  }
  if (mode === 'work') {
    const work = await countParleyWork(Number(rest[0]));
    log(`Parley per negotiation: ${work.actors} actors, ${work.events} events, ${work.microsteps} microsteps`);
    process.stdout.write(`${JSON.stringify({ kind: 'work', work } satisfies WorkOutput)}\n`);
    return;
  }
  let output: SubjectThroughputOutput | MemoryOutput;
  const subject = rest[0] as Subject;
  if (!SUBJECTS.includes(subject)) throw new Error(`unknown subject ${rest[0]}`);
  if (mode === 'throughput') {
    const [negotiations, warmup] = rest.slice(1).map(Number);
    output = await throughput(subject, negotiations!, warmup!);
    log(`${subject}: warm-up ${output.warmupRates.map((r) => r.toFixed(0)).join(', ')}; measured ${output.rate.toFixed(0)} negotiations per CPU second (${output.wallRate.toFixed(0)} per wall-clock second)`);
  } else if (mode === 'memory') {
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
