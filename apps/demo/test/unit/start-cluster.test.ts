import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { createConnection } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { freeLoopbackPort } from '@parley/signaling-ws/testing';

// `npm run start:cluster` (scripts/start-cluster.mjs) as a person runs it: it prints the three
// nodes' addresses on consecutive ports from PORT, each node serves the demo page and is ready
// (it reached its Redis), and SIGINT stops the nodes and Redis: the script exits 0 and nothing
// listens on those ports any more.

const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../scripts/start-cluster.mjs');
const running: ReturnType<typeof spawn>[] = [];

afterEach(() => {
  // The script runs in a process group of its own (detached): a failed test kills the nodes and
  // Redis with it, not only the script.
  for (const child of running.splice(0)) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // the group is gone already
    }
  }
});

/** `GET path` on 127.0.0.1:port: the status and the body, or `refused`. */
function get(port: number, path: string): Promise<{ status: number; body: string } | 'refused'> {
  return new Promise((resolvePromise, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body }));
    });
    req.once('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNREFUSED' ? resolvePromise('refused') : reject(error)));
    req.end();
  });
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

describe('npm run start:cluster', () => {
  it('starts three nodes on consecutive ports serving the demo, prints their addresses, and SIGINT stops all', { timeout: 60_000 }, async () => {
    const first = await freeLoopbackPort();
    const child = spawn(process.execPath, [SCRIPT], {
      env: { PATH: process.env['PATH'] ?? '', PORT: String(first) },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    running.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    const ports = [first, first + 1, first + 2];

    await new Promise<void>((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`no addresses printed within 30 s; stdout: ${stdout.slice(-2000)}; stderr: ${stderr}`)), 30_000);
      const check = (): void => {
        if (ports.every((port) => stdout.includes(`http://localhost:${port}/`))) {
          clearTimeout(timer);
          done();
        }
      };
      child.stdout.on('data', check);
      void exited.then((code) => fail(new Error(`start-cluster exited (${code}) first; stderr: ${stderr}`)));
      check();
    });
    expect(stdout).toContain('Parley cluster: 3 signaling nodes on one Redis (redis://127.0.0.1:');
    for (const port of ports) {
      const page = await get(port, '/');
      expect(page === 'refused' ? page : [page.status, page.body.includes('<html')]).toEqual([200, true]);
      const ready = await get(port, '/readyz');
      expect(ready === 'refused' ? ready : ready.status).toBe(200);
    }
    // The nodes' JSON logs come through, prefixed with their port.
    expect(stdout).toMatch(new RegExp(`\\[:${first + 1}\\] \\{.*"event":"listening"`));

    child.kill('SIGINT');
    expect(await exited).toBe(0);
    for (const port of ports) expect(await get(port, '/healthz')).toBe('refused');
    const redisPort = Number(/redis:\/\/127\.0\.0\.1:(\d+)/.exec(stdout)?.[1]);
    expect(await accepts(redisPort)).toBe(false);
  });
});
