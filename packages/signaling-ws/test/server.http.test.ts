// HTTP side: static files, health check, attaching to an app's server, TURN REST credentials,
// graceful shutdown, option validation.

import { createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSignalingServer } from '../src/server/index.js';
import { useServers } from './helpers/server.js';
import { TestSocket } from './helpers/ws-client.js';

const { server, joined, open } = useServers();

/** A raw GET: the path goes out byte for byte (fetch would normalize `..`). */
function get(port: number, path: string, method = 'GET'): Promise<{ status: number; type: string | undefined; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe('static files', () => {
  let base: string;
  let root: string;
  const SECRET = 'TOP-SECRET-OUTSIDE-ROOT';

  beforeAll(() => {
    base = mkdtempSync(join(tmpdir(), 'parley-static-'));
    root = join(base, 'www');
    mkdirSync(join(root, 'sub'), { recursive: true });
    writeFileSync(join(base, 'secret.txt'), SECRET);
    writeFileSync(join(root, 'index.html'), '<!doctype html><title>parley</title>');
    writeFileSync(join(root, 'sub', 'index.html'), '<p>sub</p>');
    const files: Record<string, string> = {
      'app.js': 'export {};',
      'style.css': 'body{}',
      'data.json': '{}',
      'icon.svg': '<svg/>',
      'img.png': 'png',
      'favicon.ico': 'ico',
      'mod.wasm': 'wasm',
      'app.js.map': '{}',
      'notes.txt': 'notes',
      '.env': SECRET,
      'blob.bin': 'bin',
    };
    for (const [name, content] of Object.entries(files)) writeFileSync(join(root, name), content);
    symlinkSync(join(base, 'secret.txt'), join(root, 'link.txt'));
  });

  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('serves files with their content types, index.html for / and for a folder, HEAD too', async () => {
    const srv = await server({ staticDir: root });
    const expected: Array<[string, string]> = [
      ['/', 'text/html; charset=utf-8'],
      ['/index.html', 'text/html; charset=utf-8'],
      ['/app.js', 'text/javascript; charset=utf-8'],
      ['/style.css', 'text/css; charset=utf-8'],
      ['/data.json', 'application/json; charset=utf-8'],
      ['/icon.svg', 'image/svg+xml'],
      ['/img.png', 'image/png'],
      ['/favicon.ico', 'image/x-icon'],
      ['/mod.wasm', 'application/wasm'],
      ['/app.js.map', 'application/json; charset=utf-8'],
      ['/notes.txt', 'text/plain; charset=utf-8'],
      ['/blob.bin', 'application/octet-stream'],
      ['/app.js?v=3', 'text/javascript; charset=utf-8'],
    ];
    for (const [path, type] of expected) {
      const res = await get(srv.port, path);
      expect([path, res.status, res.type]).toEqual([path, 200, type]);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
    }
    expect((await get(srv.port, '/')).body).toContain('<title>parley</title>');
    expect((await get(srv.port, '/sub/')).body).toBe('<p>sub</p>');
    expect((await get(srv.port, '/sub')).body).toBe('<p>sub</p>');
    const head = await get(srv.port, '/app.js', 'HEAD');
    expect([head.status, head.body, head.headers['content-length']]).toEqual([200, '', '10']);
    expect((await get(srv.port, '/missing.js')).status).toBe(404);
    expect((await get(srv.port, '/app.js', 'POST')).status).toBe(405);
  });

  it('refuses every traversal attempt and never leaks a file outside the root', async () => {
    const srv = await server({ staticDir: root });
    const attempts = [
      '/../secret.txt',
      '/..%2fsecret.txt',
      '/%2e%2e/secret.txt',
      '/%2E%2E%2Fsecret.txt',
      '/sub/../../secret.txt',
      '/sub/%2e%2e/%2e%2e/secret.txt',
      '/..%5csecret.txt',
      '/..\\secret.txt',
      '/index.html%00.txt',
      '/%00',
      '/%c0%ae%c0%ae/secret.txt',
      '/%',
      '/.env',
      '/%2eenv',
      '/link.txt',
      `//${base.slice(1)}/secret.txt`,
      `/${'../'.repeat(12)}etc/passwd`,
    ];
    for (const path of attempts) {
      const res = await get(srv.port, path);
      expect([path, res.status]).toEqual([path, 404]);
      expect(res.body).not.toContain(SECRET);
      expect(res.body).not.toContain('root:');
    }
  });

  it('answers /healthz with 200 JSON, with or without static files; no static dir means 404', async () => {
    const srv = await server();
    const health = await get(srv.port, '/healthz');
    expect(health.status).toBe(200);
    expect(health.type).toBe('application/json; charset=utf-8');
    expect(JSON.parse(health.body)).toMatchObject({ status: 'ok', connections: 0, rooms: 0, peers: 0 });
    expect((await get(srv.port, '/')).status).toBe(404);
  });
});

describe('attached to an existing http.Server', () => {
  it('takes upgrades on its path only, leaves the app its requests, and close() leaves the server up', async () => {
    const app: Server = createServer((_req, res) => res.end('app'));
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const port = (app.address() as { port: number }).port;
    const signaling = await createSignalingServer({ server: app, path: '/ws', logger: () => undefined });
    expect(signaling.url).toBe(`ws://127.0.0.1:${port}/ws`);
    const socket = await TestSocket.open(signaling.url);
    await socket.join('attached', 'a');
    expect((await get(port, '/anything')).body).toBe('app');
    expect(signaling.stats()).toMatchObject({ connections: 1, peers: 1, rooms: 1 });
    await signaling.close();
    expect((await socket.closed).code).toBe(1012);
    expect(app.listening).toBe(true);
    expect((await get(port, '/')).body).toBe('app');
    await new Promise<void>((resolve) => app.close(() => resolve()));
  });
});

describe('ICE servers in welcome', () => {
  it('carries STUN urls and TURN REST credentials (coturn use-auth-secret) honouring the ttl', async () => {
    const nowMs = Date.UTC(2031, 5, 1, 12, 0, 0) + 789;
    const srv = await server({
      now: () => nowMs,
      stunUrls: ['stun:stun.example:3478'],
      turn: { urls: ['turn:turn.example:3478?transport=udp', 'turns:turn.example:5349'], secret: 'turn-shared-secret', ttlSeconds: 3600 },
    });
    const { welcome, id } = await joined(srv, 'ice', 'a');
    const iceServers = welcome['iceServers'] as Array<{ urls: string[]; username?: string; credential?: string }>;
    expect(iceServers).toHaveLength(2);
    expect(iceServers[0]).toEqual({ urls: ['stun:stun.example:3478'] });
    const turn = iceServers[1]!;
    expect(turn.urls).toEqual(['turn:turn.example:3478?transport=udp', 'turns:turn.example:5349']);
    const expiry = Math.floor(nowMs / 1000) + 3600;
    expect(turn.username).toBe(`${expiry}:${id}`);
    expect(turn.credential).toBe(createHmac('sha1', 'turn-shared-secret').update(`${expiry}:${id}`).digest('base64'));
    expect(JSON.stringify(welcome)).not.toContain('turn-shared-secret');
    expect(JSON.stringify(srv.logs)).not.toContain(turn.credential);
    // each peer gets its own username
    const other = await joined(srv, 'ice', 'b');
    expect((other.welcome['iceServers'] as Array<{ username?: string }>)[1]!.username).toBe(`${expiry}:${other.id}`);
  });

  it('defaults the TURN ttl to one day', async () => {
    const nowMs = 2_000_000_000_000;
    const srv = await server({ now: () => nowMs, turn: { urls: ['turn:t.example'], secret: 's' } });
    const { welcome, id } = await joined(srv, 'ice', 'a');
    expect((welcome['iceServers'] as Array<{ username?: string }>)[0]!.username).toBe(`${nowMs / 1000 + 86_400}:${id}`);
  });

  it('rejects static credentials and malformed URLs in options', async () => {
    await expect(createSignalingServer({ port: 0, iceServers: [{ urls: 'turn:x', username: 'u', credential: 'p' }] })).rejects.toThrow(TypeError);
    await expect(createSignalingServer({ port: 0, stunUrls: ['http://x'] })).rejects.toThrow(TypeError);
    await expect(createSignalingServer({ port: 0, turn: { urls: ['stun:x'], secret: 's' } })).rejects.toThrow(TypeError);
    await expect(createSignalingServer({ port: 0, maxPayload: -1 })).rejects.toThrow(TypeError);
  });
});

describe('graceful shutdown', () => {
  it('closes every socket with 1012 (service restart), resolves, and refuses new connections', async () => {
    const srv = await server({ resumeGraceMs: 5000 });
    const a = await joined(srv, 'bye', 'a');
    const b = await joined(srv, 'bye', 'b');
    const idle = await open(srv);
    const started = Date.now();
    await srv.close();
    expect(Date.now() - started).toBeLessThan(1500);
    for (const s of [a.socket, b.socket, idle]) expect(await s.closed).toEqual({ code: 1012, reason: 'server restarting: reconnect' });
    expect(srv.server.stats()).toMatchObject({ connections: 0, peers: 0, rooms: 0 });
    await expect(TestSocket.open(srv.url)).rejects.toThrow();
    await srv.close(); // idempotent
    expect(srv.logs.at(-1)).toMatchObject({ event: 'closed' });
  });
});
