import { execFileSync } from 'node:child_process';
import { cpus, totalmem, release, platform, arch } from 'node:os';
import { CHROMIUM_PATH } from './chromium.js';

/** What the run ran on, for the README and latest.json: ratios are only comparable on one machine. */
export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly os: string;
  readonly node: string;
  readonly chromium: string | null;
}

function chromiumVersion(): string | null {
  try {
    return execFileSync(CHROMIUM_PATH, ['--version'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export function machineInfo(): MachineInfo {
  const cores = cpus();
  return {
    cpu: cores[0]?.model.trim() ?? 'unknown',
    cores: cores.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${platform()} ${release()} ${arch()}`,
    node: process.version,
    chromium: chromiumVersion(),
  };
}

export function describeMachine(info: MachineInfo): string {
  const browser = info.chromium ? `, ${info.chromium}` : '';
  return `${info.cpu}, ${info.cores} cores, ${info.memoryGiB} GiB, ${info.os}, Node ${info.node}${browser}`;
}
