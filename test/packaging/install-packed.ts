import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// Installs the three packages as a stranger gets them: `npm pack` of each, then `npm install` of
// the tarballs into an app in os.tmpdir(), outside the workspace, with the third-party packages
// the README tells a Node user to add (typescript, @roamhq/wrtc, ws and the type packages).
//
// `npm test` runs without a network (scripts/test.mjs), so the install is `--offline`: npm takes
// every third-party tarball from its cache, where `npm ci` of this workspace put them. The app
// gets a package-lock.json that names, for each third-party package, the version and integrity
// this workspace's lock has (with its registry address, as `npm install` writes it), and for our
// packages the packed tarballs. npm resolves nothing then and fails with ENOTCACHED if a tarball
// declares a dependency the lock does not hold, which is the mistake this test is for.

/** The repository root. */
export const WORKSPACE = fileURLToPath(new URL('../../', import.meta.url));

/** Our packages, by folder under packages/. */
export const PACKAGES = ['core', 'browser', 'signaling-ws'] as const;

/** What a Node user adds next to our packages (README, "Install"), at the workspace's versions. */
const THIRD_PARTY = ['typescript', '@roamhq/wrtc', 'ws', '@types/ws', '@types/node'] as const;

interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  link?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  [key: string]: unknown;
}

interface PackageJson {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  engines?: Record<string, string>;
  bin?: Record<string, string>;
  license?: string;
}

/** One packed package: its tarball and the package.json inside it. */
export interface PackedPackage {
  readonly tarball: string;
  readonly manifest: PackageJson;
  /** Every path in the tarball, without the leading `package/`. */
  readonly files: readonly string[];
}

export interface PackedApp {
  readonly dir: string;
  readonly packed: Readonly<Record<(typeof PACKAGES)[number], PackedPackage>>;
}

function run(command: string, args: readonly string[], cwd: string): string {
  return execFileSync(command, args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NPM_CONFIG_AUDIT: 'false', NPM_CONFIG_FUND: 'false', NPM_CONFIG_UPDATE_NOTIFIER: 'false' },
  });
}

/** `npm pack` of one package into `into`; its file list and manifest as npm packed them. */
function pack(name: (typeof PACKAGES)[number], into: string): PackedPackage {
  const out = run('npm', ['pack', '--json', '--pack-destination', into], join(WORKSPACE, 'packages', name));
  const [report] = JSON.parse(out.slice(out.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  if (report === undefined) throw new Error(`npm pack of ${name} reported nothing`);
  const tarball = join(into, report.filename);
  const manifest = JSON.parse(run('tar', ['-xOzf', tarball, 'package/package.json'], into)) as PackageJson;
  return { tarball, manifest, files: report.files.map((f) => f.path) };
}

function integrityOf(file: string): string {
  return `sha512-${createHash('sha512').update(readFileSync(file)).digest('base64')}`;
}

/** npm's registry address of a tarball, which is what `npm install` writes into a lock. */
function registryTarball(name: string, version: string): string {
  const base = name.startsWith('@') ? name.slice(name.indexOf('/') + 1) : name;
  return `https://registry.npmjs.org/${name}/-/${base}-${version}.tgz`;
}

/** Where node would find `dep` from the package at lock path `from` (nested first, then up). */
function locate(lock: Record<string, LockEntry>, from: string, dep: string): string | undefined {
  let dir = from;
  for (;;) {
    const candidate = dir === '' ? `node_modules/${dep}` : `${dir}/node_modules/${dep}`;
    if (lock[candidate] !== undefined && lock[candidate].link !== true) return candidate;
    if (dir === '') return undefined;
    const up = dir.lastIndexOf('/node_modules/');
    dir = up === -1 ? '' : dir.slice(0, up);
  }
}

const LOCK_FLAGS = ['dev', 'devOptional', 'peer', 'extraneous', 'inBundle'];

/**
 * Packs the three packages and installs them, with the README's third-party packages, into a
 * new folder in os.tmpdir(). Throws with npm's output when anything fails.
 */
export function installPackedApp(appSources: string): PackedApp {
  const dir = mkdtempSync(join(tmpdir(), 'parley-packed-'));
  const tarballs = join(dir, 'tarballs');
  mkdirSync(tarballs);
  const packed = Object.fromEntries(PACKAGES.map((name) => [name, pack(name, tarballs)])) as Record<(typeof PACKAGES)[number], PackedPackage>;

  const workspaceLock = (JSON.parse(readFileSync(join(WORKSPACE, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> }).packages;
  const ours = new Map(Object.values(packed).map((p) => [p.manifest.name, p]));
  const rootDependencies: Record<string, string> = {};
  for (const p of ours.values()) rootDependencies[p.manifest.name] = `file:tarballs/${posix.basename(p.tarball)}`;
  for (const name of THIRD_PARTY) {
    const entry = workspaceLock[`node_modules/${name}`];
    if (entry?.version === undefined) throw new Error(`${name} is not in the workspace's package-lock.json`);
    rootDependencies[name] = `^${entry.version}`;
  }

  const lock: Record<string, LockEntry> = { '': { name: 'parley-packed-app', dependencies: rootDependencies } };
  const pending: { from: string; deps: Record<string, string> }[] = [{ from: '', deps: rootDependencies }];
  while (pending.length > 0) {
    const { from, deps } = pending.pop()!;
    for (const dep of Object.keys(deps)) {
      const own = ours.get(dep);
      if (own !== undefined) {
        const path = `node_modules/${dep}`;
        if (lock[path] !== undefined) continue;
        const m = own.manifest;
        lock[path] = {
          version: m.version,
          resolved: `file:tarballs/${posix.basename(own.tarball)}`,
          integrity: integrityOf(own.tarball),
          ...(m.license === undefined ? {} : { license: m.license }),
          ...(m.dependencies === undefined ? {} : { dependencies: m.dependencies }),
          ...(m.optionalDependencies === undefined ? {} : { optionalDependencies: m.optionalDependencies }),
          ...(m.peerDependencies === undefined ? {} : { peerDependencies: m.peerDependencies }),
          ...(m.peerDependenciesMeta === undefined ? {} : { peerDependenciesMeta: m.peerDependenciesMeta }),
          ...(m.bin === undefined ? {} : { bin: m.bin }),
          ...(m.engines === undefined ? {} : { engines: m.engines }),
        };
        pending.push({ from: path, deps: { ...m.dependencies, ...requiredPeers(m) } });
        continue;
      }
      const path = locate(workspaceLock, from, dep) ?? locate(workspaceLock, '', dep);
      if (path === undefined) throw new Error(`${dep} (needed by ${from || 'the app'}) is not in the workspace's package-lock.json`);
      if (lock[path] !== undefined) continue;
      const entry: LockEntry = { ...workspaceLock[path]! };
      for (const flag of LOCK_FLAGS) delete entry[flag];
      if (entry.resolved === undefined && entry.version !== undefined) entry.resolved = registryTarball(dep, entry.version);
      lock[path] = entry;
      pending.push({ from: path, deps: { ...entry.dependencies, ...entry.optionalDependencies, ...requiredPeers(entry) } });
    }
  }

  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'parley-packed-app', private: true, type: 'module', dependencies: rootDependencies }, null, 2)}\n`);
  writeFileSync(join(dir, 'package-lock.json'), `${JSON.stringify({ name: 'parley-packed-app', lockfileVersion: 3, requires: true, packages: lock }, null, 2)}\n`);
  try {
    run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error'], dir);
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    throw new Error(`npm install --offline of the packed packages failed in ${dir}:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
  cpSync(appSources, dir, { recursive: true });
  return { dir, packed };
}

function requiredPeers(m: { peerDependencies?: Record<string, string>; peerDependenciesMeta?: Record<string, { optional?: boolean }> }): Record<string, string> {
  return Object.fromEntries(Object.entries(m.peerDependencies ?? {}).filter(([name]) => m.peerDependenciesMeta?.[name]?.optional !== true));
}

/** Runs a command in the app folder; its stdout, or an Error with stdout and stderr. */
export function runInApp(app: PackedApp, command: string, args: readonly string[]): string {
  try {
    return run(command, args, app.dir);
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed in ${app.dir}:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/** The fixture app's own sources (tsconfigs and .ts files), copied into the installed app. */
export const APP_SOURCES = resolve(fileURLToPath(new URL('./app', import.meta.url)));
