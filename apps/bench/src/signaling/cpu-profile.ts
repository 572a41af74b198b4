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
}

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
  return { busySamples: busy, functions: shares(byFunction, busy, top), origins: shares(byOrigin, busy, top), packages: shares(byPackage, busy, top) };
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
  ].join('\n');
}
