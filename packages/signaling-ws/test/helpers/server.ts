// Test helper: a real signaling server on a random loopback port with a collecting logger.
// Shared by the server, CLI, fuzz and client tests.

import { createSignalingServer, type SignalingServer, type SignalingServerOptions } from '../../src/server/index.js';
import type { LogEvent } from '../../src/server/index.js';

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
