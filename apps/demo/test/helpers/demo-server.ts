import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSignalingServer } from '@parley/signaling-ws/server';
import type { SignalingServer, TurnOptions } from '@parley/signaling-ws/server';

// The demo as `npm start` serves it: one parley-signaling server with the built page on the
// WebSocket's port, in this process, on a random loopback port.

export const DEMO_DIST = resolve(dirname(fileURLToPath(import.meta.url)), '../../dist');

export interface DemoServer {
  readonly port: number;
  /** The page's address for a person: `http://localhost:PORT/?room=…&name=…&ice=loopback`. */
  pageUrl(room: string, name: string, extra?: Record<string, string>): string;
  /** Stops the server (every socket closed) and starts a new one on the same port and secret. */
  restart(options?: { readonly downMs?: number }): Promise<void>;
  close(): Promise<void>;
}

export interface DemoServerOptions {
  /** How long the server keeps a dropped peer before telling the room it left (default 1 s). */
  readonly resumeGraceMs?: number;
  /** TURN REST credentials for `welcome.iceServers` (a coturn's URL and secret). */
  readonly turn?: TurnOptions;
}

/**
 * The page's address on `port` for a person: `http://localhost:PORT/?room=…&name=…&ice=loopback`
 * (localhost, not 127.0.0.1: a secure context, so getUserMedia is offered).
 */
export function demoPageUrl(port: number, room: string, name: string, extra: Record<string, string> = {}): string {
  const params = new URLSearchParams({ room, name, ice: 'loopback', ...extra });
  return `http://localhost:${port}/?${params.toString()}`;
}

export async function startDemoServer(options: DemoServerOptions = {}): Promise<DemoServer> {
  if (!existsSync(resolve(DEMO_DIST, 'index.html'))) {
    throw new Error(`the demo page is not built (${DEMO_DIST}/index.html is missing): run npm run build`);
  }
  const resumeSecret = `demo-test-${Math.random().toString(36).slice(2)}`;
  const start = (port: number): Promise<SignalingServer> =>
    createSignalingServer({
      host: '127.0.0.1',
      port,
      staticDir: DEMO_DIST,
      resumeSecret,
      resumeGraceMs: options.resumeGraceMs ?? 1000,
      logger: () => undefined,
      ...(options.turn ? { turn: options.turn } : {}),
    });
  let server = await start(0);
  const port = server.port;
  return {
    port,
    pageUrl: (room, name, extra) => demoPageUrl(port, room, name, extra),
    async restart({ downMs = 500 } = {}) {
      await server.close();
      await new Promise((resolve) => setTimeout(resolve, downMs));
      server = await start(port);
    },
    close: () => server.close(),
  };
}
