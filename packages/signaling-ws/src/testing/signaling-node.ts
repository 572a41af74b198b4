// One `parley-signaling` node as a real child process (the built CLI, `dist/server/cli.js`), for
// the cluster tests, benchmarks and `npm run start:cluster`: started on a loopback port, ready
// once it logs `listening`, killed for real (SIGKILL: no handler runs, the kernel closes its
// sockets) or stopped (SIGTERM: the server drains), and started again on the same port.

import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';

/** The built CLI, found from `dist/testing/` and from `src/testing/` alike (tests import the source). */
const CLI = fileURLToPath(new URL('../../dist/server/cli.js', import.meta.url));

/** One JSON log line of a node (`{ time, level, event, ... }`). */
export type NodeLogLine = Readonly<Record<string, unknown>>;

/** Options of `startSignalingNode`. */
export interface SignalingNodeOptions {
  /** The port; 0 (default) for a free one, kept by later `start()`s. */
  readonly port?: number;
  /** The address to listen on. Default 127.0.0.1. */
  readonly host?: string;
  /** `--redis <url>`: the Redis broker. Default: none (the in-memory broker). */
  readonly redisUrl?: string;
  /** The resume secret (passed as PARLEY_RESUME_SECRET: flags show in ps). Shared by a cluster. */
  readonly resumeSecret?: string;
  /** More flags for the CLI (`--resume-grace`, `--static`, `--max-peers`, ...). */
  readonly args?: readonly string[];
  /** More environment variables for the CLI. */
  readonly env?: Readonly<Record<string, string>>;
  /** How long to wait for the `listening` log line. Default 10000 ms. */
  readonly startTimeoutMs?: number;
  /** Receives every stdout line as it comes (e.g. to pass the log through). */
  readonly onLine?: (line: string) => void;
  /** Receives stderr text as it comes. Default: kept for error messages only. */
  readonly onStderr?: (text: string) => void;
}

/** What `status()` answers for one HTTP path. */
export type HttpStatus = number | 'refused';

/** A `parley-signaling` child process on a loopback port. */
export interface SignalingNode {
  /** The port (the same after every `start()`). */
  readonly port: number;
  /** `ws://HOST:PORT/`. */
  readonly url: string;
  /** `http://HOST:PORT/`. */
  readonly httpUrl: string;
  /** Whether the process runs now. */
  readonly running: boolean;
  /** The process id of the current run, if any. */
  readonly pid: number | undefined;
  /** The JSON log lines of the current run, in order (a `start()` begins a new list). */
  readonly logs: readonly NodeLogLine[];
  /** The log lines of the current run whose `event` is `event`. */
  logEvents(event: string): NodeLogLine[];
  /**
   * Resolves with the first log line of the current run (logged already or still to come) that
   * `matches`; rejects when the process exits first or after `timeoutMs`.
   */
  waitForLog(matches: (line: NodeLogLine) => boolean, timeoutMs: number, what: string): Promise<NodeLogLine>;
  /** The HTTP status of `GET path` (`/healthz`, `/readyz`), or `'refused'` when nothing listens. */
  status(path: string): Promise<HttpStatus>;
  /**
   * Polls `GET path` (every 25 ms) until it answers `expected`; rejects with the last answer after
   * `timeoutMs`.
   */
  waitForStatus(path: string, expected: HttpStatus, timeoutMs: number): Promise<void>;
  /** SIGKILL, as a crash would, and waits for the exit. A no-op when it is not running. */
  kill(): Promise<void>;
  /** SIGTERM (the server drains, then exits) and waits for the exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port and waits for `listening`. */
  start(): Promise<void>;
  /** Stderr of the current run so far. */
  stderr(): string;
}

/** Starts `parley-signaling` as a child process and resolves once it logs `listening`. */
export async function startSignalingNode(options: SignalingNodeOptions = {}): Promise<SignalingNode> {
  const host = options.host ?? '127.0.0.1';
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  let port = options.port ?? 0;
  let child: ChildProcess | undefined;
  let exit: Promise<void> = Promise.resolve();
  let exitedWith: string | undefined;
  let logs: NodeLogLine[] = [];
  let stderr = '';
  const wakers = new Set<() => void>();
  const wake = (): void => {
    for (const waker of wakers) waker();
  };

  function waitForLog(matches: (line: NodeLogLine) => boolean, timeoutMs: number, what: string): Promise<NodeLogLine> {
    const run = logs;
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        wakers.delete(check);
      };
      const check = (): void => {
        const found = run.find(matches);
        if (found !== undefined) {
          done();
          resolve(found);
        } else if (run !== logs || exitedWith !== undefined) {
          done();
          reject(new Error(`${what}: parley-signaling on port ${port} exited first (${exitedWith ?? 'restarted'}); stderr: ${stderr}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${what}: not logged by parley-signaling on port ${port} within ${timeoutMs} ms; stderr: ${stderr}`));
      }, timeoutMs);
      wakers.add(check);
      check();
    });
  }

  async function start(): Promise<void> {
    if (child !== undefined) throw new Error(`parley-signaling on port ${port} is already running`);
    const args = ['--host', host, '--port', String(port)];
    if (options.redisUrl !== undefined) args.push('--redis', options.redisUrl);
    args.push(...(options.args ?? []));
    const env: Record<string, string> = { PATH: process.env['PATH'] ?? '', ...options.env };
    if (options.resumeSecret !== undefined) env['PARLEY_RESUME_SECRET'] = options.resumeSecret;
    const run: NodeLogLine[] = [];
    logs = run;
    stderr = '';
    exitedWith = undefined;
    const spawned = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child = spawned;
    // Always read stdout: a child blocked on a full pipe would look like a hung server.
    let buffer = '';
    spawned.stdout?.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      let newline: number;
      while ((newline = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        options.onLine?.(line);
        try {
          const value = JSON.parse(line) as unknown;
          if (typeof value === 'object' && value !== null && !Array.isArray(value)) run.push(value as NodeLogLine);
        } catch {
          // not a log line
        }
      }
      wake();
    });
    spawned.stderr?.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      if (stderr.length < 16_384) stderr += text;
      options.onStderr?.(text);
    });
    exit = new Promise((resolve) => {
      spawned.once('error', (error) => {
        exitedWith ??= error.message;
        if (child === spawned) child = undefined;
        wake();
        resolve();
      });
      spawned.once('exit', (code, signal) => {
        exitedWith ??= `code ${String(code)}, signal ${String(signal)}`;
        if (child === spawned) child = undefined;
        wake();
        resolve();
      });
    });
    const listening = await waitForLog((line) => line['event'] === 'listening', startTimeoutMs, 'listening');
    const listeningPort = listening['port'];
    if (typeof listeningPort !== 'number') throw new Error(`parley-signaling logged no port: ${JSON.stringify(listening)}`);
    port = listeningPort;
  }

  async function signal(name: NodeJS.Signals): Promise<void> {
    if (child === undefined) return;
    child.kill(name);
    await exit;
  }

  try {
    await start();
  } catch (error) {
    await signal('SIGKILL');
    throw error;
  }
  return {
    get port() {
      return port;
    },
    get url() {
      return `ws://${host}:${port}/`;
    },
    get httpUrl() {
      return `http://${host}:${port}/`;
    },
    get running() {
      return child !== undefined;
    },
    get pid() {
      return child?.pid;
    },
    get logs() {
      return logs;
    },
    logEvents: (event) => logs.filter((line) => line['event'] === event),
    waitForLog,
    status: (path) => httpStatus(host, port, path),
    async waitForStatus(path, expected, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const answer = await httpStatus(host, port, path);
        if (answer === expected) return;
        if (Date.now() > deadline) throw new Error(`GET ${path} on port ${port}: still ${answer}, not ${expected}, after ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    kill: () => signal('SIGKILL'),
    stop: () => signal('SIGTERM'),
    async start() {
      try {
        await start();
      } catch (error) {
        await signal('SIGKILL');
        throw error;
      }
    },
    stderr: () => stderr,
  };
}

/** `GET path` on a fresh connection (no keep-alive: a killed node must not answer from a pool). */
function httpStatus(host: string, port: number, path: string): Promise<HttpStatus> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, method: 'GET', agent: false, timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('timeout', () => req.destroy(new Error(`GET ${path} on port ${port}: no answer within 5000 ms`)));
    req.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED') resolve('refused');
      else reject(error);
    });
    req.end();
  });
}
