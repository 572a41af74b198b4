// What every benchmark gives the runner. A benchmark measures its subjects in one run, on one
// machine, and reports ratios between them: absolute times drift on shared machines, ratios
// measured side by side do much less.

/** The benchmarks, in the order they run; also their keys in `results/latest.json`. */
export type BenchName = 'machines' | 'signaling' | 'dataChannel' | 'callSetup' | 'mesh';
export const BENCH_NAMES: readonly BenchName[] = ['machines', 'signaling', 'dataChannel', 'callSetup', 'mesh'];

export interface BenchOptions {
  /** `--quick`: fewer rounds and smaller loads, the whole run under 5 minutes. */
  readonly quick: boolean;
  /** Progress lines for the person watching (stderr); results go in the returned value. */
  readonly log: (line: string) => void;
}

/** A ratio checked against the goal the issue sets for it. */
export interface GoalRatio {
  /** Dotted JSON path, e.g. `callSetup.parleyOverRaw`. */
  readonly key: string;
  /** Short words for the chart and the table, e.g. "call set-up, Parley / raw (median)". */
  readonly label: string;
  readonly value: number;
  readonly goal: number;
  /** `at-most`: the ratio must be <= goal (times); `at-least`: >= goal (throughputs). */
  readonly kind: 'at-most' | 'at-least';
}

export interface BenchTable {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

export interface BenchResult {
  readonly name: BenchName;
  /** A heading for the printed table, e.g. "Call set-up in Chromium (30 calls per subject)". */
  readonly title: string;
  /** Written under `results[name]` in latest.json: every ratio's key, plus medians, p90s and so on. */
  readonly json: Readonly<Record<string, unknown>>;
  /** One row per subject (or per measure) with the numbers behind the ratios. */
  readonly table: BenchTable;
  readonly goals: readonly GoalRatio[];
  /** Plain sentences: what limited a missed goal, what an experiment gave, caveats. */
  readonly notes: readonly string[];
}

export interface Benchmark {
  readonly name: BenchName;
  run(options: BenchOptions): Promise<BenchResult>;
}

export function goalMet(goal: GoalRatio): boolean {
  return goal.kind === 'at-most' ? goal.value <= goal.goal : goal.value >= goal.goal;
}
