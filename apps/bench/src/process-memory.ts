import { readFile } from 'node:fs/promises';

// Memory of another process as the kernel counts it (proc(5), /proc/PID/status): VmRSS is what it
// holds in RAM now, VmHWM the most it has held. Linux only, as the bench's machines are.

export interface ProcessMemory {
  readonly rssBytes: number;
  readonly peakRssBytes: number;
}

export async function processMemory(pid: number): Promise<ProcessMemory> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
    if (!match) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(match[1]) * 1024;
  };
  return { rssBytes: kib('VmRSS'), peakRssBytes: kib('VmHWM') };
}
