// The Parley signaling server: wire protocol v1 (docs in src/protocol.ts) over `ws`. This module
// wires the parts together; each lives in a module named for it:
//
//   options.ts     options, defaults, validation        http.ts      upgrade, healthz/readyz, static
//   connection.ts  a WebSocket's lifecycle (states)     relay.ts     frames in, the relay hot path
//   session.ts     a peer's lifecycle, held frames      sessions.ts  join, resume, restore, leave
//   outbox.ts      sending (write coalescing), closing  shutdown.ts  drain on close()
//   broker.ts      rooms, presence, revocations (the seam a Redis broker implements)
//
// Sockets never leave this process; rooms, presence and revocations go through the Broker.

import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { CLOSE_CODES } from '../protocol.js';
import { InMemoryBroker } from './broker.js';
import { Connection } from './connection.js';
import type { ServerContext } from './context.js';
import { capOwnServer, createHttpHandlers, ownServerOptions } from './http.js';
import { ConnectionCounter, RateLimiter } from './limits.js';
import { errorMessage, safeLogger, silentLogger } from './log.js';
import { randomId, resolveOptions, type SignalingServerOptions } from './options.js';
import { createOutbox } from './outbox.js';
import { createFrameHandler } from './relay.js';
import { HeldFrameBudget } from './session.js';
import { createSessions, type Sessions } from './sessions.js';
import { drain } from './shutdown.js';
import { createStaticHandler } from './static.js';
import { createIceServerSource } from './turn.js';

export type { SignalingServerOptions } from './options.js';

/** Sockets pinged per turn of the event loop by the heartbeat (see `heartbeatSlice`). */
const HEARTBEAT_SLICE = 128;

/** Counts for `/healthz`, tests and benchmarks. */
export interface SignalingStats {
  /** Open WebSockets. */
  readonly connections: number;
  /** Peers in rooms on this process, including those within their resume grace period. */
  readonly peers: number;
  /** Rooms with at least one peer on this process. */
  readonly rooms: number;
  /** Signals relayed since start. */
  readonly relayed: number;
  /** Bytes held for peers within their resume grace period. */
  readonly heldBytes: number;
}

/** A running signaling server, as `createSignalingServer` resolves it. */
export interface SignalingServer {
  /** The port actually listened on. */
  readonly port: number;
  readonly host: string;
  /** `ws://host:port/` (with `path`, if given). */
  readonly url: string;
  /** `http://host:port/`. */
  readonly httpUrl: string;
  /** The HTTP server (own or the given one). */
  readonly httpServer: Server;
  stats(): SignalingStats;
  /**
   * Drains and stops: no new upgrades or joins (`/readyz` 503, `/healthz` still 200), every
   * socket closed with 1012, then, once all are closed or `drainTimeoutMs` has passed, the rest
   * terminated and the listener closed. Resolves when done. Idempotent.
   */
  close(): Promise<void>;
}

/** Creates a signaling server and resolves once it listens (or is attached). */
export async function createSignalingServer(options: SignalingServerOptions = {}): Promise<SignalingServer> {
  const resolved = resolveOptions(options);
  const log = safeLogger(options.logger ?? silentLogger);
  const ownBroker = options.broker === undefined;
  const broker = options.broker ?? new InMemoryBroker();
  const attached = options.server !== undefined;
  const staticHandler = options.staticDir === undefined ? undefined : createStaticHandler(options.staticDir);

  const ctx: ServerContext = {
    options: resolved,
    log,
    broker,
    outbox: createOutbox(resolved.maxBufferedBytes, log, (conn) => sessions.serverClosing(conn)),
    now: options.now ?? Date.now,
    issuer: randomId(9),
    iceServers: createIceServerSource(options),
    connections: new Set(),
    sessionsByToken: new Map(),
    localRooms: new Map(),
    clientSlots: new ConnectionCounter(resolved.maxConnectionsPerIp),
    heldBudget: new HeldFrameBudget(resolved.maxHeldBytes),
    phase: 'running',
    relayed: 0,
  };
  const frames = createFrameHandler(ctx, () => sessions);
  const sessions: Sessions = createSessions(ctx, frames.handleFrame);
  let nextCid = 1;
  let closing: Promise<void> | undefined;

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: resolved.maxPayload,
    perMessageDeflate: false,
    clientTracking: false,
    skipUTF8Validation: true, // checked in relay.ts, answered with an error frame
  });
  wss.on('error', (error) => log({ level: 'error', event: 'server-error', message: errorMessage(error) }));

  function onConnection(ws: WebSocket, socket: Duplex, ip: string, origin: string | undefined): void {
    const limiter = new RateLimiter(resolved.messagesPerSecond, resolved.burst, resolved.rateLimitCloseAfter, ctx.now());
    const conn = new Connection(ws, socket, nextCid++, ip, limiter);
    ctx.connections.add(conn);
    log({ level: 'info', event: 'connect', conn: conn.cid, ip, origin });
    ws.on('error', (error) => log({ level: 'warn', event: 'socket-error', conn: conn.cid, message: errorMessage(error) }));
    ws.on('pong', () => {
      conn.liveness = 'answered';
    });
    ws.on('message', (data, isBinary) => frames.onMessage(conn, data, isBinary));
    ws.on('close', (code, reason) => {
      if (conn.state.kind === 'closed') return;
      ctx.connections.delete(conn);
      ctx.clientSlots.release(conn.ip);
      log({ level: 'info', event: 'disconnect', conn: conn.cid, peer: conn.session?.id, code, reason: reason.toString('utf8').slice(0, 123) });
      sessions.socketClosed(conn, code);
    });
    if (ctx.phase === 'draining') ctx.outbox.close(conn, CLOSE_CODES.serviceRestart, 'server restarting: reconnect');
  }

  function stats(): SignalingStats {
    return { connections: ctx.connections.size, peers: ctx.sessionsByToken.size, rooms: ctx.localRooms.size, relayed: ctx.relayed, heldBytes: ctx.heldBudget.bytes };
  }

  const http = createHttpHandlers(ctx, attached, wss, staticHandler, () => ({ ...stats() }), onConnection);
  const httpServer = options.server ?? createServer(ownServerOptions(ctx), http.onRequest);
  const onHttpError = (error: Error): void => log({ level: 'error', event: 'http-error', message: errorMessage(error) });
  const onClientError = (error: Error, socket: Duplex): void => {
    log({ level: 'warn', event: 'http-client-error', message: errorMessage(error) });
    // A request that timed out (headersTimeout/requestTimeout) gets 408, anything else 400.
    const timedOut = (error as NodeJS.ErrnoException).code === 'ERR_HTTP_REQUEST_TIMEOUT';
    if (socket.writable) socket.end(`HTTP/1.1 ${timedOut ? '408 Request Timeout' : '400 Bad Request'}\r\nConnection: close\r\n\r\n`);
    socket.destroy();
  };
  httpServer.on('upgrade', http.onUpgrade);
  if (!attached) {
    capOwnServer(httpServer, ctx);
    httpServer.on('connection', http.onTcpConnection);
    httpServer.on('clientError', onClientError);
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(resolved.port, resolved.host, () => {
        httpServer.off('error', reject);
        resolve();
      });
    });
  }
  httpServer.on('error', onHttpError);

  const address = httpServer.address();
  const boundPort = typeof address === 'object' && address !== null ? address.port : resolved.port;
  const boundHost = !attached ? resolved.host : typeof address === 'object' && address !== null ? address.address : resolved.host;
  const urlHost = boundHost.includes(':') ? `[${boundHost}]` : boundHost;
  const url = `ws://${urlHost}:${boundPort}${resolved.path ?? '/'}`;
  const httpUrl = `http://${urlHost}:${boundPort}/`;

  // RFC 6455 §5.5.2: a socket that answered nothing (no pong, no frame) for a whole interval is
  // dead. Each tick goes through the sockets in slices, yielding to I/O between them: a ping is a
  // write of its own, and pinging thousands of sockets in one callback held the event loop for
  // tens of milliseconds every interval (36-40 ms with 1,000 sockets under the profiler), which
  // every frame arriving meanwhile waited out.
  function heartbeatSlice(conns: readonly Connection[], from: number): void {
    const end = Math.min(conns.length, from + HEARTBEAT_SLICE);
    for (let i = from; i < end; i += 1) {
      const conn = conns[i]!;
      if (conn.isClosingOrClosed || !ctx.connections.has(conn)) continue;
      if (conn.liveness === 'awaiting-pong') {
        log({ level: 'warn', event: 'heartbeat-timeout', conn: conn.cid, peer: conn.session?.id });
        conn.ws.terminate();
        continue;
      }
      conn.liveness = 'awaiting-pong';
      try {
        conn.ws.ping();
      } catch {
        conn.ws.terminate();
      }
    }
    if (end < conns.length) setImmediate(heartbeatSlice, conns, end);
  }
  const heartbeat = setInterval(() => heartbeatSlice([...ctx.connections], 0), resolved.heartbeatIntervalMs);
  heartbeat.unref();

  log({ level: 'info', event: 'listening', url, httpUrl, host: boundHost, port: boundPort, attached });

  async function release(): Promise<void> {
    if (ownBroker) await broker.close();
    if (!attached) {
      const serverClosed = new Promise<void>((resolve) => httpServer.close(() => resolve()));
      httpServer.closeAllConnections();
      await serverClosed;
      httpServer.off('clientError', onClientError);
      httpServer.off('connection', http.onTcpConnection);
    }
    httpServer.off('error', onHttpError);
    wss.close();
  }

  return {
    port: boundPort,
    host: boundHost,
    url,
    httpUrl,
    httpServer,
    stats,
    close() {
      closing ??= drain(ctx, {
        stopAccepting: () => {
          clearInterval(heartbeat);
          httpServer.off('upgrade', http.onUpgrade);
        },
        endSessions: () => sessions.endAll(),
        release,
      });
      return closing;
    },
  };
}
