// A real `redis-server` process for tests, benchmarks and the local cluster (`npm run
// start:cluster`): on a free loopback port, in a temporary directory, with persistence off so
// that a restart starts empty (as a Redis that lost its memory does). Never the system service.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Options of `startRedisServer`. */
export interface RedisServerOptions {
  /** The executable (a Valkey build works too). Default `redis-server` on the PATH. */
  readonly executable?: string;
  /** The loopback port. Default: a free one. */
  readonly port?: number;
  /** How long to wait for it to answer PING. Default 10000 ms. */
  readonly startTimeoutMs?: number;
}

/** A running `redis-server` on 127.0.0.1. */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** Whether the process runs now. */
  readonly running: boolean;
  /** Stops it (SIGTERM) and waits for it to exit; keeps the port for `start`. */
  stop(): Promise<void>;
  /** Kills it at once (SIGKILL), as a crash would, and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty: nothing was persisted) and waits until it answers. */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
}

/** A port that was free on 127.0.0.1 a moment ago. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once a PING on `port` is answered with PONG; rejects after `timeoutMs`. */
async function waitForPong(port: number, timeoutMs: number, exited: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const why = exited();
    if (why !== undefined) throw new Error(`redis-server exited before it answered: ${why}`);
    if (await pingOnce(port)) return;
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function pingOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let answer = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1');
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
  });
}

/** Starts a `redis-server` on a free loopback port (persistence off) and waits until it answers. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const executable = options.executable ?? 'redis-server';
  const port = options.port ?? (await freeLoopbackPort());
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  const dir = mkdtempSync(join(tmpdir(), 'parley-redis-'));
  let child: ChildProcess | undefined;
  let exit: Promise<void> = Promise.resolve();

  async function start(): Promise<void> {
    if (child !== undefined) throw new Error('redis-server is already running');
    let exitedWith: string | undefined;
    let stderr = '';
    const spawned = spawn(
      executable,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    spawned.stderr?.on('data', (chunk: Buffer) => {
      if (stderr.length < 4096) stderr += chunk.toString('utf8');
    });
    child = spawned;
    exit = new Promise((resolve) => {
      spawned.once('error', (error) => {
        exitedWith = error.message;
        resolve();
      });
      spawned.once('exit', (code, signal) => {
        exitedWith ??= `code ${String(code)}, signal ${String(signal)}${stderr === '' ? '' : `: ${stderr.trim()}`}`;
        if (child === spawned) child = undefined;
        resolve();
      });
    });
    try {
      await waitForPong(port, startTimeoutMs, () => exitedWith);
    } catch (error) {
      spawned.kill('SIGKILL');
      await exit;
      throw error;
    }
  }

  async function signal(name: NodeJS.Signals): Promise<void> {
    if (child === undefined) return;
    child.kill(name);
    await exit;
  }

  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get running() {
      return child !== undefined;
    },
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    start,
    async close() {
      await signal('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
