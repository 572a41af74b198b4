import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSignalingServer } from '@parley/signaling-ws/server';
import type { SignalingServer, SignalingServerOptions } from '@parley/signaling-ws/server';

// The browser benchmarks' server: one parley-signaling on loopback serving the built bench pages
// (`dist/pages`, from vite.config.ts) and the WebSocket on the same port. Every subject of a
// browser benchmark signals through it (raw code and simple-peer speak its join/signal frames).

export const PAGES_DIR = join(dirname(fileURLToPath(import.meta.url)), 'pages');

export interface PageServer {
  readonly server: SignalingServer;
  /** `http://127.0.0.1:PORT/`; a page is `${origin}name.html`. */
  readonly origin: string;
  /** `ws://127.0.0.1:PORT/`. */
  readonly signalingUrl: string;
  close(): Promise<void>;
}

export async function startPageServer(options: Partial<SignalingServerOptions> = {}): Promise<PageServer> {
  const server = await createSignalingServer({
    host: '127.0.0.1',
    port: 0,
    staticDir: PAGES_DIR,
    // Benchmarks open many pages from one address and send bursts of candidates.
    maxConnectionsPerIp: 10_000,
    messagesPerSecond: 10_000,
    burst: 10_000,
    logger: () => {},
    ...options,
  });
  return {
    server,
    origin: server.httpUrl,
    signalingUrl: server.url,
    close: () => server.close(),
  };
}
