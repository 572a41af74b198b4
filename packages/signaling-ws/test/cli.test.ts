// The `parley-signaling` CLI as a real process: help, bad options (exit 2), environment
// variables, serving, SIGTERM (clients see 1012, exit 0).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCliOptions } from '../src/server/cli-options.js';
import { startRedisServer } from '../src/testing/index.js';
import { TestSocket } from './helpers/ws-client.js';

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(pkg, 'dist', 'server', 'cli.js');
const children: ChildProcess[] = [];

/** Builds the package when dist is missing or older than the server sources. */
function ensureBuilt(): void {
  const sources = [join(pkg, 'src', 'protocol.ts'), ...readdirSync(join(pkg, 'src', 'server')).map((f) => join(pkg, 'src', 'server', f))];
  const newest = Math.max(...sources.map((f) => statSync(f).mtimeMs));
  if (existsSync(cli) && statSync(cli).mtimeMs >= newest - 1) return;
  // Type errors elsewhere in the package do not stop tsc from emitting the server.
  spawnSync('npx', ['tsc', '-b', pkg], { cwd: resolve(pkg, '..', '..'), stdio: 'ignore' });
  if (!existsSync(cli)) throw new Error(`could not build ${cli}`);
}

function run(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [cli, ...args], { env: { PATH: process.env['PATH'] ?? '', ...env }, encoding: 'utf8', timeout: 10_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

interface Running {
  child: ChildProcess;
  port: number;
  stdout: string[];
  stderr: string[];
  exited: Promise<number | null>;
}

function start(args: string[], env: Record<string, string> = {}): Promise<Running> {
  const child = spawn(process.execPath, [cli, ...args], { env: { PATH: process.env['PATH'] ?? '', ...env } });
  children.push(child);
  const stdout: string[] = [];
  const stderr: string[] = [];
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  return new Promise((res, reject) => {
    let buffer = '';
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk.toString('utf8')));
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      let newline: number;
      while ((newline = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        stdout.push(line);
        const event = JSON.parse(line) as { event?: string; port?: number };
        if (event.event === 'listening') res({ child, port: event.port!, stdout, stderr, exited });
      }
    });
    void exited.then((code) => reject(new Error(`exited with ${code}: ${stderr.join('')}`)));
  });
}

function freePort(): Promise<number> {
  return new Promise((res) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const port = (probe.address() as { port: number }).port;
      probe.close(() => res(port));
    });
  });
}

async function waitUntil(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

let www: string;

beforeAll(() => {
  ensureBuilt();
  www = mkdtempSync(join(tmpdir(), 'parley-cli-'));
  writeFileSync(join(www, 'index.html'), '<title>cli</title>');
}, 60_000);

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  rmSync(www, { recursive: true, force: true });
});

describe('parley-signaling', () => {
  it('--help documents every flag and its environment variable, exit 0', () => {
    const { status, stdout } = run(['--help']);
    expect(status).toBe(0);
    for (const word of [
      '--port', '--host', '--static', '--auth-secret', '--turn-url', '--turn-secret', '--turn-ttl', '--stun-url', '--origin',
      '--max-payload', '--redis', 'PARLEY_PORT', 'PORT', 'PARLEY_HOST', 'PARLEY_STATIC', 'PARLEY_AUTH_SECRET', 'PARLEY_TURN_URL',
      'PARLEY_TURN_SECRET', 'PARLEY_TURN_TTL', 'PARLEY_STUN_URL', 'PARLEY_ORIGIN', '1337', '127.0.0.1',
      '--resume-secret', 'PARLEY_RESUME_SECRET', '--resume-token-ttl', 'PARLEY_RESUME_TOKEN_TTL',
      '--trust-proxy N', 'PARLEY_TRUST_PROXY', '--max-connections N', 'PARLEY_MAX_CONNECTIONS', '--headers-timeout',
      'PARLEY_HEADERS_TIMEOUT', '--request-timeout', 'PARLEY_REQUEST_TIMEOUT', '--max-held-frames', 'PARLEY_MAX_HELD_FRAMES',
      '--max-held-bytes-per-peer', 'PARLEY_MAX_HELD_BYTES_PER_PEER', '--max-held-bytes', 'PARLEY_MAX_HELD_BYTES',
      '--drain-timeout', 'PARLEY_DRAIN_TIMEOUT', '/readyz', '1012', 'PARLEY_REDIS_URL', '--redis-prefix', 'PARLEY_REDIS_PREFIX',
      '--redis-heartbeat-ttl', 'PARLEY_REDIS_HEARTBEAT_TTL',
    ]) {
      expect(stdout).toContain(word);
    }
  });

  const bad: Array<[string, string[], Record<string, string>, RegExp]> = [
    ['an unknown flag', ['--bogus'], {}, /Unknown option '--bogus'/],
    ['a non-numeric port', ['--port', 'abc'], {}, /--port must be a whole number/],
    ['a port out of range', ['--port', '70000'], {}, /--port must be between 0 and 65535/],
    ['a bad PARLEY_PORT', [], { PARLEY_PORT: '12x' }, /--port must be a whole number/],
    ['a turn url without secret', ['--turn-url', 'turn:t.example'], {}, /--turn-url needs --turn-secret/],
    ['a turn secret without url', [], { PARLEY_TURN_SECRET: 's' }, /--turn-secret needs at least one --turn-url/],
    ['a non-turn turn url', ['--turn-url', 'http://t', '--turn-secret', 's'], {}, /not a turn: or turns: URL/],
    ['a missing static dir', ['--static', '/nonexistent/parley'], {}, /is not a directory/],
    ['a bad origin', ['--origin', 'example.com'], {}, /is not an origin/],
    ['a --redis that is not a redis URL', ['--redis', 'localhost:6379'], {}, /--redis: "localhost:6379" is not a redis:\/\/ or rediss:\/\/ URL/],
    ['a bad PARLEY_REDIS_URL', [], { PARLEY_REDIS_URL: 'http://x' }, /is not a redis:\/\/ or rediss:\/\/ URL/],
    ['--redis-heartbeat-ttl without --redis', ['--redis-heartbeat-ttl', '900'], {}, /need --redis/],
    ['a stray argument', ['serve'], {}, /unexpected argument "serve"/],
    ['an empty resume secret', ['--resume-secret', ''], {}, /--resume-secret must not be empty/],
    ['a resume token ttl of 0', [], { PARLEY_RESUME_TOKEN_TTL: '0' }, /--resume-token-ttl must be between 1 and/],
    ['a missing value', ['--port'], {}, /argument missing|requires/i],
    ['a trust-proxy that is not a hop count', ['--trust-proxy', 'yes'], {}, /--trust-proxy must be a whole number/],
    ['a max-connections of 0', [], { PARLEY_MAX_CONNECTIONS: '0' }, /--max-connections must be between 1 and/],
  ];
  for (const [what, args, env, message] of bad) {
    it(`exits 2 with a clear message on ${what}`, () => {
      const result = run(args, env);
      expect(result.status).toBe(2);
      expect(result.stderr).toMatch(/^parley-signaling: /);
      expect(result.stderr).toMatch(message);
      expect(result.stdout).toBe('');
    });
  }

  it('reads options from the environment; a flag wins over its variable', () => {
    const fromEnv = parseCliOptions([], {
      PARLEY_PORT: '4000',
      PARLEY_HOST: '0.0.0.0',
      PARLEY_AUTH_SECRET: 'a',
      PARLEY_TURN_URL: 'turn:a.example,turns:b.example',
      PARLEY_TURN_SECRET: 't',
      PARLEY_TURN_TTL: '60',
      PARLEY_STUN_URL: 'stun:s.example',
      PARLEY_ORIGIN: 'https://x.example, https://y.example',
      PARLEY_MAX_PAYLOAD: '2048',
      PARLEY_RESUME_SECRET: 'r',
      PARLEY_RESUME_TOKEN_TTL: '3600',
    });
    expect(fromEnv).toEqual({
      kind: 'run',
      options: {
        port: 4000,
        host: '0.0.0.0',
        authSecret: 'a',
        turn: { urls: ['turn:a.example', 'turns:b.example'], secret: 't', ttlSeconds: 60 },
        stunUrls: ['stun:s.example'],
        allowedOrigins: ['https://x.example', 'https://y.example'],
        maxPayload: 2048,
        resumeSecret: 'r',
        resumeTokenTtlSeconds: 3600,
      },
    });
    expect(parseCliOptions(['--resume-secret', 'flag', '--resume-token-ttl', '60'], { PARLEY_RESUME_SECRET: 'env' })).toMatchObject({
      options: { resumeSecret: 'flag', resumeTokenTtlSeconds: 60 },
    });
    expect(parseCliOptions(['--port', '5'], { PARLEY_PORT: '4000', PORT: '3000' })).toMatchObject({ options: { port: 5 } });
    expect(parseCliOptions([], { PORT: '3000' })).toMatchObject({ options: { port: 3000 } });
    expect(parseCliOptions([], { PARLEY_PORT: '4000', PORT: '3000' })).toMatchObject({ options: { port: 4000 } });
    expect(parseCliOptions(['--origin', 'https://a.example', '--origin', 'https://b.example,https://c.example'], {})).toMatchObject({
      options: { allowedOrigins: ['https://a.example', 'https://b.example', 'https://c.example'] },
    });
    expect(parseCliOptions([], {})).toEqual({ kind: 'run', options: { port: 1337, host: '127.0.0.1' } });
  });

  it('reads the limits of issue 12: proxy hops, connection cap, HTTP timeouts, held frames, drain timeout', () => {
    const args = ['--trust-proxy', '2', '--max-connections', '5', '--headers-timeout', '1000', '--request-timeout', '2000'];
    args.push('--max-held-frames', '8', '--max-held-bytes-per-peer', '4096', '--max-held-bytes', '65536', '--drain-timeout', '500');
    expect(parseCliOptions(args, {})).toEqual({
      kind: 'run',
      options: {
        port: 1337,
        host: '127.0.0.1',
        trustProxy: 2,
        maxConnections: 5,
        headersTimeoutMs: 1000,
        requestTimeoutMs: 2000,
        resumeQueueLimit: 8,
        maxHeldBytesPerPeer: 4096,
        maxHeldBytes: 65536,
        drainTimeoutMs: 500,
      },
    });
    expect(parseCliOptions([], { PARLEY_TRUST_PROXY: '1', PARLEY_DRAIN_TIMEOUT: '0' })).toMatchObject({ options: { trustProxy: 1, drainTimeoutMs: 0 } });
    expect(parseCliOptions(['--trust-proxy', '0'], {})).toEqual({ kind: 'run', options: { port: 1337, host: '127.0.0.1' } });
  });

  it('the committed launcher (the package bin) runs the built CLI, and says how to build when dist is missing', () => {
    const launcher = join(pkg, 'bin', 'parley-signaling.js');
    const help = spawnSync(process.execPath, [launcher, '--help'], { encoding: 'utf8', timeout: 10_000 });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: parley-signaling/);
    const unbuilt = mkdtempSync(join(tmpdir(), 'parley-unbuilt-'));
    try {
      mkdirSync(join(unbuilt, 'bin'));
      copyFileSync(launcher, join(unbuilt, 'bin', 'parley-signaling.js'));
      writeFileSync(join(unbuilt, 'package.json'), '{"type":"module"}');
      const result = spawnSync(process.execPath, [join(unbuilt, 'bin', 'parley-signaling.js'), '--help'], { encoding: 'utf8', timeout: 10_000 });
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/not built yet .*\nRun `npm run build`/s);
    } finally {
      rmSync(unbuilt, { recursive: true, force: true });
    }
  });

  it('drains on SIGTERM: /readyz 503 and /healthz 200 while a client holds on, exit 0 once it is gone', async () => {
    const server = await start(['--port', '0', '--drain-timeout', '60000']);
    const stuck = await TestSocket.joined(`ws://127.0.0.1:${server.port}/`, 'r', 'stuck');
    (stuck.socket.ws as unknown as { _socket: { pause(): void } })._socket.pause(); // never answers the close
    server.child.kill('SIGTERM');
    await waitUntil(() => server.stdout.some((line) => line.includes('"draining"')));
    expect((await fetch(`http://127.0.0.1:${server.port}/readyz`)).status).toBe(503);
    expect((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status).toBe(200);
    stuck.socket.terminate();
    expect(await server.exited).toBe(0);
  });

  it('starts, serves WebSocket and static files, and exits 0 on SIGTERM with clients seeing 1012', async () => {
    const port = await freePort();
    const server = await start(['--static', www, '--stun-url', 'stun:s.example', '--turn-url', 'turn:t.example', '--turn-ttl', '120'], {
      PORT: String(port),
      PARLEY_TURN_SECRET: 'turn-secret',
    });
    expect(server.port).toBe(port);
    await waitUntil(() => server.stderr.join('').includes('\n'));
    expect(server.stderr.join('')).toBe(`Parley signaling on http://127.0.0.1:${port}\n`);
    const page = await fetch(`http://127.0.0.1:${port}/`);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await page.text()).toBe('<title>cli</title>');
    const { socket, welcome, id } = await TestSocket.joined(`ws://127.0.0.1:${port}/`, 'cli', 'a');
    const ice = welcome['iceServers'] as Array<{ urls: unknown; username?: string }>;
    expect(ice[0]).toEqual({ urls: ['stun:s.example'] });
    expect(ice[1]!.username).toMatch(new RegExp(`^\\d+:${id}$`));
    server.child.kill('SIGTERM');
    expect(await socket.closed).toEqual({ code: 1012, reason: 'server restarting: reconnect' });
    expect(await server.exited).toBe(0);
    const events = server.stdout.map((line) => (JSON.parse(line) as { event: string }).event);
    expect(events).toEqual(expect.arrayContaining(['listening', 'connect', 'join', 'signal', 'closed']));
    expect(server.stdout.join('\n')).not.toContain('turn-secret');
  });

  it('requires join tokens with PARLEY_AUTH_SECRET and exits 0 on SIGINT', async () => {
    const server = await start(['--port', '0'], { PARLEY_AUTH_SECRET: 'cli-secret' });
    const socket = await TestSocket.open(`ws://127.0.0.1:${server.port}/`);
    socket.send({ type: 'join', room: 'r', name: 'n' });
    expect(await socket.nextError()).toBe('unauthorized');
    expect((await socket.closed).code).toBe(4001);
    server.child.kill('SIGINT');
    expect(await server.exited).toBe(0);
  });

  it('with PARLEY_RESUME_SECRET a peer keeps its id across a restart of the process, and the secret is not logged', async () => {
    const env = { PARLEY_RESUME_SECRET: 'cli-resume-secret' };
    const first = await start(['--port', '0'], env);
    const { socket, welcome, id } = await TestSocket.joined(`ws://127.0.0.1:${first.port}/`, 'r', 'a');
    first.child.kill('SIGTERM');
    await socket.closed;
    expect(await first.exited).toBe(0);
    const second = await start(['--port', String(first.port)], env);
    const back = await TestSocket.joined(`ws://127.0.0.1:${second.port}/`, 'r', 'a', { resume: welcome['resume'] });
    expect(back.id).toBe(id);
    // another process with another secret cannot verify it
    const other = await start(['--port', '0'], { PARLEY_RESUME_SECRET: 'another-secret' });
    const fresh = await TestSocket.joined(`ws://127.0.0.1:${other.port}/`, 'r', 'a', { resume: welcome['resume'] });
    expect(fresh.id).not.toBe(id);
    for (const server of [second, other]) server.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    expect(await other.exited).toBe(0);
    const logged = [...first.stdout, ...second.stdout, ...other.stdout].join('\n');
    expect(logged).not.toContain('cli-resume-secret');
    expect(logged).not.toContain(welcome['resume'] as string);
    expect(logged).not.toContain(back.welcome['resume'] as string);
  });

  it('exits 1 when the port is taken', async () => {
    const first = await start(['--port', '0']);
    const result = run(['--port', String(first.port)]);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/EADDRINUSE/);
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
  });

  it('--redis (or PARLEY_REDIS_URL): two processes share a room through Redis, and exit 0 on SIGTERM', async () => {
    const redis = await startRedisServer();
    try {
      const one = await start(['--port', '0', '--redis', redis.url]);
      const two = await start(['--port', '0'], { PARLEY_REDIS_URL: redis.url, PARLEY_REDIS_PREFIX: 'parley:' });
      expect(one.stderr.join('')).toMatch(/\(Redis node [0-9a-f]{16}\)/);
      const a = await TestSocket.joined(`ws://127.0.0.1:${one.port}`, 'r', 'a');
      const b = await TestSocket.joined(`ws://127.0.0.1:${two.port}`, 'r', 'b');
      expect(b.welcome['peers']).toEqual([{ id: a.id, name: 'a' }]);
      a.socket.signal(b.id, { hello: 1 });
      expect(await b.socket.next('signal')).toEqual({ type: 'signal', from: a.id, data: { hello: 1 } });
      a.socket.terminate();
      b.socket.terminate();
      one.child.kill('SIGTERM');
      two.child.kill('SIGTERM');
      expect(await one.exited).toBe(0);
      expect(await two.exited).toBe(0);
    } finally {
      await redis.close();
    }
  });
});
