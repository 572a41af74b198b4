// The subjects' servers, started the same way in a child process (server-process.ts) or, for
// the tests, in the test's own process. A cross-node subject runs two of its server's nodes, each
// in its own process, on one redis-server.

import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { SOCKET_IO_SIGNAL_EVENT } from './protocols.js';
import type { Subject } from './protocols.js';

export const HOST = '127.0.0.1';

/**
 * Parley with the limits the benchmark would otherwise hit raised, every check still running:
 * the rate limiter still counts every frame (at 100 000/s per connection, 10x what a load client
 * ever sends), connections per IP and in all are counted (up to 1 000 000 each). Everything else
 * is the default.
 */
export const PARLEY_BENCH_OPTIONS = {
  maxConnectionsPerIp: 1_000_000,
  // The idle-memory runs hold up to 18,000 clients; the server-wide default cap is 10,000.
  maxConnections: 1_000_000,
  messagesPerSecond: 100_000,
  burst: 200_000,
} as const;

/** PeerJS with its defaults, except the connection cap (default 5000) for the idle-memory runs. */
export const PEERJS_BENCH_OPTIONS = { concurrent_limit: 1_000_000 } as const;

/**
 * The servers a subject's processes run: the three single-process relays, a Parley node on the
 * Redis broker, and a socket.io node on the Redis adapter.
 */
export type ServerKind = 'parley' | 'raw' | 'peerjs' | 'parleyRedis' | 'socketioRedis';
export const SERVER_KINDS: readonly ServerKind[] = ['parley', 'raw', 'peerjs', 'parleyRedis', 'socketioRedis'];

/** What server each subject runs and on how many nodes (processes). */
export const SUBJECT_SERVERS: Readonly<Record<Subject, { readonly kind: ServerKind; readonly nodes: number }>> = {
  parley: { kind: 'parley', nodes: 1 },
  raw: { kind: 'raw', nodes: 1 },
  peerjs: { kind: 'peerjs', nodes: 1 },
  parleyCluster: { kind: 'parleyRedis', nodes: 2 },
  socketioCluster: { kind: 'socketioRedis', nodes: 2 },
};

/** Whether the server kind needs a Redis (`startSubjectServer`'s `redisUrl`). */
export function needsRedis(kind: ServerKind): boolean {
  return kind === 'parleyRedis' || kind === 'socketioRedis';
}

/**
 * The socket.io baseline: what a socket.io app relaying signals looks like, with
 * `@socket.io/redis-adapter` over ioredis as its README sets it up (a publishing and a
 * subscribing connection per node). A client emits `signal` with `{ to, data }`, `to` being the
 * peer's socket id; the server emits `signal` with `{ from: socket.id, data }` to that socket's
 * room (every socket is in a room named by its id), which the adapter publishes on Redis for the
 * node that holds it. WebSocket transport only (no long-polling), permessage-deflate off (the
 * default), as Parley and every other subject.
 */
async function startSocketIoNode(redisUrl: string): Promise<SubjectServer> {
  const [{ Server: SocketIoServer }, { createAdapter }, { Redis }] = await Promise.all([
    import('socket.io'),
    import('@socket.io/redis-adapter'),
    import('ioredis'),
  ]);
  const pubClient = new Redis(redisUrl);
  const subClient = pubClient.duplicate();
  const http = createServer();
  const io = new SocketIoServer(http, { transports: ['websocket'], serveClient: false, adapter: createAdapter(pubClient, subClient) });
  io.on('connection', (socket) => {
    socket.on(SOCKET_IO_SIGNAL_EVENT, (message: unknown) => {
      if (typeof message !== 'object' || message === null) return;
      const { to, data } = message as { to?: unknown; data?: unknown };
      if (typeof to === 'string') socket.to(to).emit(SOCKET_IO_SIGNAL_EVENT, { from: socket.id, data });
    });
  });
  // Commands on one ioredis connection run in order: once these PINGs are answered, the
  // adapter's PSUBSCRIBE (sent when the main namespace was created) is in place.
  await Promise.all([pubClient.ping(), subClient.ping()]);
  const port = await listen(http);
  return {
    port,
    url: `ws://${HOST}:${port}/`,
    connections: connectionsOf(http),
    close: async () => {
      await io.close();
      await Promise.allSettled([pubClient.quit(), subClient.quit()]);
    },
  };
}

/** Listens on HOST, a free port; resolves with the port. */
function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : 0);
    });
  });
}

export interface SubjectServer {
  readonly port: number;
  /** `ws://127.0.0.1:PORT/` */
  readonly url: string;
  /** TCP connections open on its listener now (each load client holds one). */
  connections(): Promise<number>;
  close(): Promise<void>;
}

/** What `SubjectServer.connections` reads: the HTTP server's open connections. */
function connectionsOf(server: Server): () => Promise<number> {
  return () => new Promise((resolve, reject) => server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
}

/**
 * Starts one node of a server kind (`redisUrl` for the kinds on Redis). Imports only that
 * server, so that a server process's memory at 0 is its own.
 */
export async function startSubjectServer(kind: ServerKind, options: { readonly redisUrl?: string } = {}): Promise<SubjectServer> {
  const redisUrl = (): string => {
    if (options.redisUrl === undefined) throw new Error(`a ${kind} server needs a Redis URL`);
    return options.redisUrl;
  };
  switch (kind) {
    case 'parley': {
      const { createSignalingServer, silentLogger } = await import('@parley/signaling-ws/server');
      const server = await createSignalingServer({ port: 0, host: HOST, logger: silentLogger, ...PARLEY_BENCH_OPTIONS });
      return { port: server.port, url: `ws://${HOST}:${server.port}/`, connections: connectionsOf(server.httpServer), close: () => server.close() };
    }
    case 'raw': {
      const { createRawRelay } = await import('./raw-relay.js');
      const relay = await createRawRelay({ port: 0, host: HOST });
      return { port: relay.port, url: `ws://${HOST}:${relay.port}/`, connections: connectionsOf(relay.server), close: () => relay.close() };
    }
    case 'peerjs': {
      const { PeerServer } = await import('peer');
      const server = await new Promise<Server>((resolve, reject) => {
        const app = PeerServer({ port: 0, host: HOST, ...PEERJS_BENCH_OPTIONS }, resolve);
        app.on('error', reject);
      });
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      return {
        port,
        url: `ws://${HOST}:${port}/`,
        connections: connectionsOf(server),
        close: async () => {
          server.closeAllConnections();
          await new Promise<void>((resolve) => server.close(() => resolve()));
        },
      };
    }
    case 'parleyRedis': {
      // A node as `parley-signaling --redis URL` runs it: the Redis broker (issue 13), the same
      // options as the single node.
      const { createRedisBroker, createSignalingServer, silentLogger } = await import('@parley/signaling-ws/server');
      const broker = await createRedisBroker({ url: redisUrl() });
      const server = await createSignalingServer({ port: 0, host: HOST, logger: silentLogger, broker, ...PARLEY_BENCH_OPTIONS });
      return {
        port: server.port,
        url: `ws://${HOST}:${server.port}/`,
        connections: connectionsOf(server.httpServer),
        close: async () => {
          await server.close();
          await broker.close();
        },
      };
    }
    case 'socketioRedis':
      return startSocketIoNode(redisUrl());
  }
}

