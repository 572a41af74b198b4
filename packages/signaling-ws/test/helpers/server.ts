// Test helper: a real signaling server on a random loopback port with a collecting logger.
// Shared by the server, CLI, fuzz and client tests.

import { afterEach } from 'vitest';
import { createSignalingServer, type SignalingServer, type SignalingServerOptions } from '../../src/server/index.js';
import type { LogEvent } from '../../src/server/index.js';
import { TestSocket } from './ws-client.js';

export interface StartedServer {
  /** `ws://127.0.0.1:PORT/`. */
  readonly url: string;
  /** `http://127.0.0.1:PORT/`. */
  readonly httpUrl: string;
  readonly port: number;
  readonly server: SignalingServer;
  /** Every log event so far. */
  readonly logs: LogEvent[];
  /** Closes the server (idempotent). */
  close(): Promise<void>;
}

/**
 * Starts a server on 127.0.0.1 and a random port. Defaults tuned for tests: a short resume
 * grace period and heartbeat, and the collecting logger; any option can be overridden.
 */
export async function startServer(options: SignalingServerOptions = {}): Promise<StartedServer> {
  const logs: LogEvent[] = [];
  const server = await createSignalingServer({
    host: '127.0.0.1',
    port: 0,
    resumeGraceMs: 500,
    heartbeatIntervalMs: 5000,
    logger: (event) => logs.push(event),
    ...options,
  });
  return { url: server.url, httpUrl: server.httpUrl, port: server.port, server, logs, close: () => server.close() };
}

/** Servers and sockets a test file opens, closed after each test (see `useServers`). */
export interface ServerFixture {
  /** Starts a server with the file's defaults, `options` over them. */
  server(options?: SignalingServerOptions): Promise<StartedServer>;
  /** A socket joined to `room` as `name` (`extra` goes into the join frame). */
  joined(srv: StartedServer, room: string, name: string, extra?: Record<string, unknown>): ReturnType<typeof TestSocket.joined>;
  /** An open socket that has sent nothing. */
  open(srv: StartedServer): Promise<TestSocket>;
}

/**
 * For a test file that starts several servers: each test's servers and sockets are closed after
 * it (registers an `afterEach`). `defaults` are passed to every `server()`.
 */
export function useServers(defaults: SignalingServerOptions = {}): ServerFixture {
  const servers: StartedServer[] = [];
  const sockets: TestSocket[] = [];
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.terminate();
    for (const server of servers.splice(0)) await server.close();
  });
  return {
    async server(options = {}) {
      const started = await startServer({ ...defaults, ...options });
      servers.push(started);
      return started;
    },
    async joined(srv, room, name, extra = {}) {
      const result = await TestSocket.joined(srv.url, room, name, extra);
      sockets.push(result.socket);
      return result;
    },
    async open(srv) {
      const socket = await TestSocket.open(srv.url);
      sockets.push(socket);
      return socket;
    },
  };
}
