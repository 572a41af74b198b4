// HTTP on the signaling port: the WebSocket upgrade (RFC 6455 §4.2) with its admission rules,
// `/healthz` (liveness), `/readyz` (readiness: 503 while draining or while the broker is not
// ready, e.g. Redis unreachable) and static files.
//
// Admission, in order: the path; draining (503); the Origin allow-list (403); the server-wide cap
// on WebSockets (503); the per-address cap (429), counting open WebSockets, upgrades under way and
// sessions in their resume grace period. The client address is the TCP peer, or with
// `trustProxy` N the Nth `X-Forwarded-For` entry from the right (the hops you run append there;
// entries further left are written by the client). Without a trusted proxy, TCP connections
// still sending their request count toward the per-address cap too, and `headersTimeout` /
// `requestTimeout` end slow requests. Refusals are logged at a bounded rate.

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import type { ServerContext } from './context.js';
import { ConnectionCounter } from './limits.js';
import { errorMessage } from './log.js';
import type { StaticHandler } from './static.js';

/** At most this many refusals are logged per second; the rest are counted in the next log line. */
const REFUSAL_LOGS_PER_SECOND = 10;

/** The client address of a request: the TCP peer, or the `hops`th `X-Forwarded-For` entry from the right. */
export function clientAddress(req: IncomingMessage, hops: number): string {
  const direct = req.socket.remoteAddress ?? 'unknown';
  if (hops === 0) return direct;
  const header = req.headers['x-forwarded-for'];
  const entries = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
  // Fewer entries than hops: the request did not come through all of them; trust only TCP.
  return entries.length >= hops ? entries[entries.length - hops]! : direct;
}

/** HTTP handlers of one signaling server. */
export interface HttpHandlers {
  readonly onRequest: (req: IncomingMessage, res: ServerResponse) => void;
  readonly onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** Every TCP connection of an own server (counted per address until it upgrades or closes). */
  readonly onTcpConnection: (socket: Socket) => void;
}

/** Creates the HTTP handlers; `onConnection` takes an upgraded WebSocket. */
export function createHttpHandlers(
  ctx: ServerContext,
  attached: boolean,
  wss: WebSocketServer,
  staticHandler: StaticHandler | undefined,
  stats: () => Record<string, number>,
  onConnection: (ws: WebSocket, socket: Duplex, ip: string, origin: string | undefined) => void,
): HttpHandlers {
  const { options, log } = ctx;
  /** TCP connections per peer address that have not upgraded yet (own server, no trusted proxy). */
  const pendingTcp = new ConnectionCounter(options.maxConnectionsPerIp);
  /** Gives a TCP connection's pending slot back (once): on close, or when it upgrades. */
  const releaseTcpSlot = new WeakMap<Duplex, () => void>();
  let refusalWindowStart = 0;
  let refusalsLogged = 0;
  let refusalsNotLogged = 0;

  function logRefusal(status: number, why: string, ip: string): void {
    const now = ctx.now();
    if (now - refusalWindowStart >= 1000) {
      refusalWindowStart = now;
      refusalsLogged = 0;
    }
    if (refusalsLogged >= REFUSAL_LOGS_PER_SECOND) {
      refusalsNotLogged += 1;
      return;
    }
    refusalsLogged += 1;
    log({ level: 'warn', event: 'upgrade-refused', status, why, ip, ...(refusalsNotLogged > 0 ? { notLogged: refusalsNotLogged } : {}) });
    refusalsNotLogged = 0;
  }

  function refuse(socket: Duplex, status: number, text: string, why: string, ip: string): void {
    logRefusal(status, why, ip);
    if (socket.writable) {
      socket.end(
        `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(why) + 1}\r\n\r\n${why}\n`,
      );
    }
    socket.destroy();
  }

  function onTcpConnection(socket: Socket): void {
    if (options.trustedProxyHops > 0) return; // every connection comes from a proxy: it limits them
    const address = socket.remoteAddress ?? 'unknown';
    if (!pendingTcp.tryAcquire(address)) {
      logRefusal(0, 'too many connections from this address', address);
      socket.destroy();
      return;
    }
    let counted = true;
    const release = (): void => {
      if (counted) pendingTcp.release(address);
      counted = false;
    };
    socket.once('close', release);
    releaseTcpSlot.set(socket, release);
  }

  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', (error) => log({ level: 'warn', event: 'socket-error', message: errorMessage(error) }));
    // From here on the socket counts in `clientSlots` (an upgrade under way, then a WebSocket).
    releaseTcpSlot.get(socket)?.();
    try {
      if (options.path !== undefined) {
        const url = req.url ?? '/';
        const query = url.indexOf('?');
        if ((query === -1 ? url : url.slice(0, query)) !== options.path) {
          // On an app's server another upgrade listener may want it.
          if (!attached) refuse(socket, 404, 'Not Found', 'no WebSocket here', '');
          return;
        }
      }
      const ip = clientAddress(req, options.trustedProxyHops);
      if (ctx.phase === 'draining') {
        refuse(socket, 503, 'Service Unavailable', 'server shutting down', ip);
        return;
      }
      const origin = req.headers.origin;
      if (options.allowedOrigins !== undefined && (origin === undefined || !options.allowedOrigins.has(origin.toLowerCase()))) {
        refuse(socket, 403, 'Forbidden', 'origin not allowed', ip);
        return;
      }
      if (ctx.connections.size >= options.maxConnections) {
        refuse(socket, 503, 'Service Unavailable', 'server at its connection limit', ip);
        return;
      }
      if (!ctx.clientSlots.tryAcquire(ip)) {
        refuse(socket, 429, 'Too Many Requests', 'too many connections from this address', ip);
        return;
      }
      // The slot is taken now (an upgrade under way counts); give it back unless the handshake
      // completes (ws answers a bad handshake with 400 itself and never calls back).
      let upgraded = false;
      socket.once('close', () => {
        if (!upgraded) ctx.clientSlots.release(ip);
      });
      wss.handleUpgrade(req, socket, head, (ws) => {
        upgraded = true;
        onConnection(ws, socket, ip, origin);
      });
    } catch (error) {
      log({ level: 'error', event: 'upgrade-error', message: errorMessage(error) });
      socket.destroy();
    }
  }

  function json(req: IncomingMessage, res: ServerResponse, status: number, value: unknown): void {
    const body = JSON.stringify(value);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    res.on('error', () => undefined);
    const url = req.url ?? '/';
    const path = url.split('?', 1)[0];
    if (req.method === 'GET' || req.method === 'HEAD') {
      if (path === '/healthz') {
        // Liveness: the process answers, draining or not.
        json(req, res, 200, { status: 'ok', ...stats() });
        return;
      }
      if (path === '/readyz') {
        // Readiness: take no new clients while draining, nor while the broker cannot serve them.
        const status = ctx.phase !== 'running' ? 'draining' : ctx.broker.ready?.() === false ? 'broker-unavailable' : 'ready';
        json(req, res, status === 'ready' ? 200 : 503, { status });
        return;
      }
    }
    if (staticHandler === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('not found\n');
      return;
    }
    staticHandler(req, res).catch((error: unknown) => {
      log({ level: 'error', event: 'http-error', message: errorMessage(error) });
      res.destroy();
    });
  }

  return { onRequest, onUpgrade, onTcpConnection };
}

/** Node's HTTP server options for an own server: slow requests end (RFC 9110 §15.5.9, 408). */
export function ownServerOptions(ctx: ServerContext): { headersTimeout: number; requestTimeout: number; connectionsCheckingInterval: number } {
  const { headersTimeoutMs, requestTimeoutMs } = ctx.options;
  return {
    headersTimeout: headersTimeoutMs,
    requestTimeout: Math.max(requestTimeoutMs, headersTimeoutMs),
    // Node checks the timeouts at this interval (default 30 s): a fraction of the shorter one.
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeoutMs / 4))),
  };
}

/** Applies the server-wide cap on TCP connections to an own server. */
export function capOwnServer(server: Server, ctx: ServerContext): void {
  // Past it Node drops new TCP connections at once; WebSockets are capped at upgrade (503).
  server.maxConnections = ctx.options.maxConnections + ctx.options.maxConnectionsPerIp;
}
