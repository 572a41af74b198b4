// Reads a V8 CPU profile (`node --cpu-prof` writes one per process on exit) into where the
// process spent its samples: by function (self time) and by where the code comes from (a
// package, Node's own modules, or V8's pseudo-frames such as garbage collection). Used by
// profile.ts to say what limits a relay, from measurement.

/** The parts of a `.cpuprofile` (Chrome DevTools protocol `Profiler.Profile`) read here. */
export interface CpuProfile {
  readonly nodes: readonly {
    readonly id: number;
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
    readonly hitCount?: number;
    readonly children?: readonly number[];
  }[];
  readonly samples?: readonly number[];
  /** Microseconds from the previous sample (the first: from `startTime`), one per sample. */
  readonly timeDeltas?: readonly number[];
}

/** A share of the busy samples (the idle ones left out). */
export interface ProfileShare {
  readonly name: string;
  /** 0..1 of the samples in which the process was not idle. */
  readonly share: number;
}

export interface ProfileSummary {
  /** Samples in which the process was not idle. */
  readonly busySamples: number;
  /** Self time by function, largest first. */
  readonly functions: readonly ProfileShare[];
  /** Self time by origin (`ws`, `@parley/signaling-ws`, `node:internal`, `(garbage collector)`, ...), largest first. */
  readonly origins: readonly ProfileShare[];
  /**
   * Time by the package that asked for it: each sample goes to the innermost frame of its stack
   * that is neither Node's own code nor native (so the writes ioredis makes count as ioredis,
   * those ws makes as ws); V8's pseudo-frames (garbage collector, program) stay as they are.
   */
  readonly packages: readonly ProfileShare[];
  /**
   * Busy stretches: runs of consecutive samples in which the process was not idle, i.e. event
   * loop turns (and what preempted them) during which whatever arrived had to wait. Absent when
   * the profile has no sample timeline.
   */
  readonly stretches?: BusyStretches;
}

/** How many busy stretches lasted at least each of `STRETCH_THRESHOLDS_MS`, and what filled the long ones. */
export interface BusyStretches {
  /** Wall time the profile covers, ms. */
  readonly profileMs: number;
  readonly longestMs: number;
  /** [threshold ms, stretches at least that long]. */
  readonly atLeast: readonly (readonly [number, number])[];
  /** The samples of the stretches of `LONG_STRETCH_MS` or more, by the package that asked. */
  readonly longByPackage: readonly ProfileShare[];
}

export const STRETCH_THRESHOLDS_MS = [1, 5, 10, 20] as const;
/** A stretch this long or longer counts as long (its samples are broken down). */
export const LONG_STRETCH_MS = 5;

/** Where a frame's code comes from: its package, Node's own modules, or V8's pseudo-frame. */
export function originOf(functionName: string, url: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const [first, second] = url.slice(modules + '/node_modules/'.length).split('/');
    return first!.startsWith('@') ? `${first}/${second}` : first!;
  }
  if (url.startsWith('node:')) return url.startsWith('node:internal') ? 'node:internal' : url;
  const parley = /\/packages\/([^/]+)\//.exec(url);
  if (parley !== null) return `@parley/${parley[1]}`;
  return url.includes('/apps/bench/') ? '@parley/bench' : url;
}

function shares(counts: ReadonlyMap<string, number>, total: number, top: number): ProfileShare[] {
  return [...counts]
    .sort(([, a], [, b]) => b - a)
    .slice(0, top)
    .map(([name, count]) => ({ name, share: total === 0 ? 0 : count / total }));
}

/** The busy samples of a profile by function and by origin, the `top` largest of each. */
export function summarizeCpuProfile(profile: CpuProfile, top = 15): ProfileSummary {
  const hits = new Map<number, number>();
  if (profile.samples !== undefined) for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
  else for (const node of profile.nodes) hits.set(node.id, node.hitCount ?? 0);
  const byFunction = new Map<string, number>();
  const byOrigin = new Map<string, number>();
  const byPackage = new Map<string, number>();
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parents = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
  /** The origin of the innermost frame at or above `id` that is not Node's or native code. */
  const packageOf = (id: number): string => {
    const leaf = nodes.get(id)!.callFrame;
    const leafOrigin = originOf(leaf.functionName, leaf.url);
    if (leaf.url === '' && leafOrigin !== '(native)') return leafOrigin;
    for (let at: number | undefined = id; at !== undefined; at = parents.get(at)) {
      const { functionName, url } = nodes.get(at)!.callFrame;
      const origin = originOf(functionName, url);
      if (url !== '' && !origin.startsWith('node:')) return origin;
    }
    return leafOrigin;
  };
  let busy = 0;
  for (const node of profile.nodes) {
    const count = hits.get(node.id) ?? 0;
    const { functionName, url, lineNumber } = node.callFrame;
    if (count === 0 || functionName === '(idle)') continue;
    busy += count;
    const file = url === '' ? '' : ` ${url.slice(url.lastIndexOf('/') + 1)}:${lineNumber + 1}`;
    const name = `${functionName || '(anonymous)'}${file}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + count);
    const origin = originOf(functionName, url);
    byOrigin.set(origin, (byOrigin.get(origin) ?? 0) + count);
    const owner = packageOf(node.id);
    byPackage.set(owner, (byPackage.get(owner) ?? 0) + count);
  }
  const stretches = profile.timeDeltas === undefined || profile.samples === undefined ? undefined : busyStretches(profile.samples, profile.timeDeltas, nodes, packageOf, top);
  return {
    busySamples: busy,
    functions: shares(byFunction, busy, top),
    origins: shares(byOrigin, busy, top),
    packages: shares(byPackage, busy, top),
    ...(stretches === undefined ? {} : { stretches }),
  };
}

/** The busy stretches of a sample timeline (a stretch lasts from its first sample to its last). */
function busyStretches(
  samples: readonly number[],
  timeDeltas: readonly number[],
  nodes: ReadonlyMap<number, CpuProfile['nodes'][number]>,
  packageOf: (id: number) => string,
  top: number,
): BusyStretches {
  const lengths: number[] = [];
  const long = new Map<string, number>();
  let longSamples = 0;
  let t = 0;
  let start: number | undefined;
  let last = 0;
  let ids: number[] = [];
  const close = (): void => {
    if (start === undefined) return;
    const ms = (last - start) / 1000;
    lengths.push(ms);
    if (ms >= LONG_STRETCH_MS) {
      for (const id of ids) long.set(packageOf(id), (long.get(packageOf(id)) ?? 0) + 1);
      longSamples += ids.length;
    }
    start = undefined;
    ids = [];
  };
  for (let i = 0; i < samples.length; i++) {
    t += timeDeltas[i] ?? 0;
    const id = samples[i]!;
    if (nodes.get(id)?.callFrame.functionName === '(idle)') {
      close();
      continue;
    }
    start ??= t;
    last = t;
    ids.push(id);
  }
  close();
  return {
    profileMs: t / 1000,
    longestMs: Math.max(0, ...lengths),
    atLeast: STRETCH_THRESHOLDS_MS.map((ms) => [ms, lengths.filter((length) => length >= ms).length] as const),
    longByPackage: shares(long, longSamples, top),
  };
}

/** A summary as lines of text: `  12.3%  name`. */
export function formatProfileSummary(summary: ProfileSummary): string {
  const line = ({ name, share }: ProfileShare): string => `  ${(share * 100).toFixed(1).padStart(5)}%  ${name}`;
  return [
    `${summary.busySamples} busy samples; by the package that asked (Node's and native work counted to its caller):`,
    ...summary.packages.map(line),
    'by origin (self):',
    ...summary.origins.map(line),
    'by function (self):',
    ...summary.functions.map(line),
    ...(summary.stretches === undefined
      ? []
      : [
          `busy stretches over ${Math.round(summary.stretches.profileMs)} ms: ${summary.stretches.atLeast.map(([ms, n]) => `${n} of >= ${ms} ms`).join(', ')}; longest ${summary.stretches.longestMs.toFixed(1)} ms; in those of >= ${LONG_STRETCH_MS} ms, by the package that asked:`,
          ...summary.stretches.longByPackage.map(line),
        ]),
  ].join('\n');
}
