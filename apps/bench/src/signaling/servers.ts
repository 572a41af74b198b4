// The three subjects' servers, started the same way in a child process (server-process.ts) or,
// for the tests, in the test's own process.

import type { Server } from 'node:http';
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

export interface SubjectServer {
  readonly port: number;
  /** `ws://127.0.0.1:PORT/` */
  readonly url: string;
  close(): Promise<void>;
}

/** Imports only the subject's own server, so that a server process's memory at 0 is its own. */
export async function startSubjectServer(subject: Subject): Promise<SubjectServer> {
  switch (subject) {
    case 'parley': {
      const { createSignalingServer, silentLogger } = await import('@parley/signaling-ws/server');
      const server = await createSignalingServer({ port: 0, host: HOST, logger: silentLogger, ...PARLEY_BENCH_OPTIONS });
      return { port: server.port, url: `ws://${HOST}:${server.port}/`, close: () => server.close() };
    }
    case 'raw': {
      const { createRawRelay } = await import('./raw-relay.js');
      const relay = await createRawRelay({ port: 0, host: HOST });
      return { port: relay.port, url: `ws://${HOST}:${relay.port}/`, close: () => relay.close() };
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
        close: async () => {
          server.closeAllConnections();
          await new Promise<void>((resolve) => server.close(() => resolve()));
        },
      };
    }
  }
}

