import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';

// Child processes for the real-stack fault tests: a process that prints one JSON object per
// line on stdout (the remote-peer fixture's reports), read as it comes, and killed for real
// (parley-signaling processes come from `startSignalingNode` of @parley/signaling-ws/testing). Every child started here is tracked so that `killAllChildren()` (in an
// afterEach) leaves no orphan, whatever the test did.

/** One JSON line from a child's stdout, and when the test process read it. */
export interface JsonLine {
  readonly at: number;
  readonly value: Record<string, unknown>;
}

export interface JsonLineProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Every JSON line so far, in order (non-JSON lines are kept in `stray`). */
  readonly lines: readonly JsonLine[];
  readonly stray: readonly string[];
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Resolves with the first line (already read or still to come) that `matches`; rejects when
   * the process exits first or after `timeoutMs`. */
  waitForLine(matches: (value: Record<string, unknown>) => boolean, timeoutMs: number, what: string): Promise<JsonLine>;
  /** Resolves once the process has exited (at once if it has), with its code or signal. */
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>;
  /** Sends `signal` (default SIGKILL: no handler runs, every socket of the process just dies) and
   * waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const running = new Set<JsonLineProcess>();

/** Starts `node script ...args` with stdout read as JSON lines. */
export function spawnJsonLineProcess(script: string, args: readonly string[], env: Readonly<Record<string, string>> = {}): JsonLineProcess {
  const child = spawn(process.execPath, [script, ...args], {
    env: { PATH: process.env['PATH'] ?? '', ...env },
    // stdin stays open and unused: a child that watches it (the remote-peer fixture) exits when
    // it ends, i.e. when this process dies without running its afterEach.
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not start ${script}`);
  const lines: JsonLine[] = [];
  const stray: string[] = [];
  let stderr = '';
  const waiters = new Set<() => void>();
  let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
      for (const wake of waiters) wake();
    });
  });

  // Always drain stdout: a child blocked on a full pipe would look like a hung server.
  let buffer = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    let newline: number;
    while ((newline = buffer.indexOf('\n')) !== -1) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line === '') continue;
      try {
        const value = JSON.parse(line) as unknown;
        if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
          lines.push({ at: Date.now(), value: value as Record<string, unknown> });
        } else {
          stray.push(line);
        }
      } catch {
        stray.push(line);
      }
    }
    for (const wake of waiters) wake();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });

  const handle: JsonLineProcess = {
    child,
    pid: child.pid,
    lines,
    stray,
    stderr: () => stderr,
    exited,
    waitForLine(matches, timeoutMs, what) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const found = lines.find((line) => matches(line.value));
          if (found !== undefined) {
            done();
            resolve(found);
          } else if (exit !== null) {
            done();
            reject(new Error(`${what}: process ${child.pid} exited (${exit.code ?? exit.signal}) first; stderr: ${stderr}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${what}: not seen within ${timeoutMs} ms; stderr: ${stderr}`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async kill(signal = 'SIGKILL') {
      if (exit === null) child.kill(signal);
      await exited;
      running.delete(handle);
    },
  };
  running.add(handle);
  void exited.then(() => running.delete(handle));
  return handle;
}

/** SIGKILLs every child started by `spawnJsonLineProcess` that is still running, and waits. */
export async function killAllChildren(): Promise<void> {
  await Promise.all([...running].map((child) => child.kill('SIGKILL')));
}
