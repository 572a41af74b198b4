// Issue 12, hole 3 and the HTTP edge: the client address behind N trusted proxies is the Nth
// X-Forwarded-For entry from the right; slow HTTP requests end (headersTimeout); TCP connections
// still sending their request count per address; a server-wide WebSocket cap; refusals are logged
// at a bounded rate. Hole 5: static files are streamed with pipeline, so an aborted download
// closes its file.

import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createSignalingServer } from '../src/server/index.js';
import { startServer, type StartedServer } from './helpers/server.js';
import { TestSocket, until } from './helpers/ws-client.js';

let srv: StartedServer | undefined;
const sockets: TestSocket[] = [];
const raw: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.terminate();
  for (const s of raw.splice(0)) s.destroy();
  await srv?.close();
  srv = undefined;
});

async function openVia(forwardedFor: string): Promise<TestSocket> {
  const socket = await TestSocket.open(srv!.url, { headers: { 'x-forwarded-for': forwardedFor } });
  sockets.push(socket);
  return socket;
}

/** A TCP connection to the server that has sent `text` (maybe half a request). */
async function tcp(text: string): Promise<Socket> {
  const socket = connect(srv!.port, '127.0.0.1');
  raw.push(socket);
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  if (text.length > 0) socket.write(text);
  return socket;
}

const closed = (socket: Socket): Promise<string> =>
  new Promise((resolve) => {
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
    socket.once('close', () => resolve(received));
  });

describe('--trust-proxy N', () => {
  it('takes the Nth X-Forwarded-For entry from the right, never the one the client wrote', async () => {
    srv = await startServer({ trustProxy: 1, maxConnectionsPerIp: 1 });
    // Our proxy appended the real peer address last; the client wrote whatever it liked before it.
    await openVia('1.1.1.1, 10.0.0.1');
    await openVia('1.1.1.1, 10.0.0.2'); // another client: same spoofed entry, its own slot
    await expect(openVia('2.2.2.2, 10.0.0.1')).rejects.toMatchObject({ status: 429 }); // spoofing buys nothing
    const ips = srv.logs.filter((e) => e.event === 'connect').map((e) => e['ip']);
    expect(ips).toEqual(['10.0.0.1', '10.0.0.2']);
  });

  it('with 2 hops takes the second from the right; with too few entries, the TCP peer', async () => {
    srv = await startServer({ trustProxy: 2 });
    await openVia('6.6.6.6, 203.0.113.7, 10.0.0.9');
    await openVia('10.0.0.9');
    const ips = srv.logs.filter((e) => e.event === 'connect').map((e) => e['ip']);
    expect(ips).toEqual(['203.0.113.7', '127.0.0.1']);
  });
});

describe('slow and numerous connections', () => {
  it('ends a request whose headers do not arrive within headersTimeoutMs (408)', async () => {
    srv = await startServer({ headersTimeoutMs: 200, requestTimeoutMs: 400 });
    const socket = await tcp('GET / HTTP/1.1\r\nHost: x\r\n'); // and never the blank line
    expect(await closed(socket)).toMatch(/^HTTP\/1\.1 408/);
  });

  it('counts TCP connections still sending their request per address', async () => {
    srv = await startServer({ maxConnectionsPerIp: 3 });
    for (let i = 0; i < 3; i++) await tcp('GET / HTTP/1.1\r\n');
    const fourth = await tcp('GET / HTTP/1.1\r\n');
    expect(await closed(fourth)).toBe('');
    await expect(TestSocket.open(srv.url)).rejects.toThrow();
  });

  it('caps WebSockets server-wide (maxConnections): past it, 503', async () => {
    srv = await startServer({ maxConnections: 2 });
    sockets.push(await TestSocket.open(srv.url), await TestSocket.open(srv.url));
    await expect(TestSocket.open(srv.url)).rejects.toMatchObject({ status: 503 });
  });

  it('logs refusals at a bounded rate and counts the ones not logged', async () => {
    srv = await startServer({ allowedOrigins: ['https://ok.example'], now: () => 1_000_000 });
    for (let i = 0; i < 30; i++) await expect(TestSocket.open(srv.url)).rejects.toMatchObject({ status: 403 });
    const refusals = srv.logs.filter((e) => e.event === 'upgrade-refused');
    expect(refusals).toHaveLength(10);
  });
});

describe('static files', () => {
  it('closes the file of every aborted download (stream.pipeline)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-fd-'));
    try {
      const file = join(dir, 'big.bin');
      writeFileSync(file, Buffer.alloc(32 * 1024 * 1024));
      srv = await startServer({ staticDir: dir });
      const openFiles = (): number =>
        readdirSync('/proc/self/fd').filter((fd) => {
          try {
            return readlinkSync(`/proc/self/fd/${fd}`) === file;
          } catch {
            return false;
          }
        }).length;
      for (let i = 0; i < 10; i++) {
        await new Promise<void>((resolve, reject) => {
          const req = request({ host: '127.0.0.1', port: srv!.port, path: '/big.bin' }, (res) => {
            res.once('data', () => {
              req.destroy();
              resolve();
            });
          });
          req.on('error', (error) => (req.destroyed ? undefined : reject(error)));
          req.end();
        });
      }
      await until(() => openFiles() === 0, 'every file to be closed');
      expect(openFiles()).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('logging', () => {
  it('is silent without a logger: nothing on stdout', async () => {
    const written: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    try {
      const server = await createSignalingServer({ port: 0 });
      const peer = await TestSocket.joined(server.url, 'r', 'quiet');
      peer.socket.terminate();
      await server.close();
    } finally {
      process.stdout.write = write;
    }
    expect(written.filter((line) => line.includes('"event"'))).toEqual([]);
  });
});
