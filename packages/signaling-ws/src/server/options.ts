// Options of `createSignalingServer`, their defaults, and their validation into the resolved
// form every module of the server reads (`ResolvedOptions`). Nothing here has a side effect.

import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { DEFAULT_RATE_LIMIT, type IceServerConfig } from '../protocol.js';
import type { Broker } from './broker.js';
import type { Logger } from './log.js';
import type { TurnOptions } from './turn.js';

/** Options of `createSignalingServer`; every one has a default. */
export interface SignalingServerOptions {
  /** Port to listen on when no `server` is given; 0 picks a free port. Default 1337. */
  readonly port?: number;
  /** Address to listen on when no `server` is given. Default `127.0.0.1`. */
  readonly host?: string;
  /**
   * Attach to this HTTP server instead of creating one: only its `upgrade` event is used (and
   * removed again by `close()`); `/healthz`, `/readyz` and `staticDir` are not served, the app
   * owns HTTP (and its timeouts and connection cap).
   */
  readonly server?: Server;
  /** Accept WebSocket upgrades on this path only (e.g. `/ws`). Default: any path. */
  readonly path?: string;
  /** Largest accepted frame in bytes; a larger one closes the socket with 1009. Default 65536. */
  readonly maxPayload?: number;
  /** Sustained messages per second per connection (token bucket refill). Default 50. */
  readonly messagesPerSecond?: number;
  /** Token bucket capacity (a burst allowed at once, e.g. trickle ICE to a whole room). Default `4 * messagesPerSecond`. */
  readonly burst?: number;
  /** Dropped (rate-limited) messages within one second that close with 4029. Default `messagesPerSecond`. */
  readonly rateLimitCloseAfter?: number;
  /** Members per room, counting peers within their resume grace period. Default 16. */
  readonly maxPeersPerRoom?: number;
  /**
   * Per client address: open WebSockets, upgrades under way and sessions within their resume
   * grace period together (and, without `trustProxy`, TCP connections still sending their HTTP
   * request). Past it, upgrades get HTTP 429. Default 32.
   */
  readonly maxConnectionsPerIp?: number;
  /** Open WebSockets on this server; past it, upgrades get HTTP 503 (and, with an own server, TCP connections past it are dropped). Default 10000. */
  readonly maxConnections?: number;
  /** Time a client has to send its HTTP request headers (own server only; Node `headersTimeout`). Default 10000. */
  readonly headersTimeoutMs?: number;
  /** Time a client has to send a whole HTTP request (own server only; Node `requestTimeout`). Default 30000. */
  readonly requestTimeoutMs?: number;
  /** WebSocket ping interval; a socket silent for a whole interval is terminated. Default 15000. */
  readonly heartbeatIntervalMs?: number;
  /** How long a disconnected peer keeps its id, name and room for a resume. Default 10000; 0 disables resume (and restores from `resumeSecret` tokens). */
  readonly resumeGraceMs?: number;
  /** Frames held for one peer within its grace period; past it the senders get `undeliverable`. Default 64. */
  readonly resumeQueueLimit?: number;
  /** Bytes held for one peer within its grace period; past it the senders get `undeliverable`. Default 262144 (256 KiB). */
  readonly maxHeldBytesPerPeer?: number;
  /** Bytes held for all peers of this server within their grace periods; past it the senders get `undeliverable`. Default 67108864 (64 MiB). */
  readonly maxHeldBytes?: number;
  /** Unsent bytes queued on one socket before it is closed as a slow consumer (1008). Default 4 MiB. */
  readonly maxBufferedBytes?: number;
  /** When set, every join needs a join token (see `createJoinToken`), except one that resumes or restores an id. */
  readonly authSecret?: string;
  /**
   * Signs resume tokens (HMAC-SHA256). Give every instance (and every restart) the same secret
   * and a peer that reconnects with its resume token keeps its id across a restart or on another
   * instance. Default: a random secret per process (resume works on this process only).
   */
  readonly resumeSecret?: string;
  /**
   * How old a resume token (issued with each `welcome`) may be to restore an id on a process that
   * did not issue it, in seconds. Default 86400. (On the issuing process a token is valid while its
   * session lives.) With `authSecret`, a restore is also refused once the join token that admitted
   * the peer has expired.
   */
  readonly resumeTokenTtlSeconds?: number;
  /** When set, upgrades whose `Origin` is not in this list (or have none) get HTTP 403. */
  readonly allowedOrigins?: readonly string[];
  /** `stun:` URLs, passed to pages in `welcome.iceServers`. */
  readonly stunUrls?: readonly string[];
  /** Extra ICE servers without credentials, passed through. */
  readonly iceServers?: readonly IceServerConfig[];
  /** TURN REST credentials (coturn `use-auth-secret`) in `welcome.iceServers` and `ice-servers`. */
  readonly turn?: TurnOptions;
  /** Rooms, presence and resume-token revocations. Default: a new in-memory broker (closed by `close()`; a given one is not). */
  readonly broker?: Broker;
  /** Serve this folder over HTTP (GET/HEAD) on the same port; needs an own server. */
  readonly staticDir?: string;
  /**
   * Behind this many reverse proxies (hops you run), each appending to `X-Forwarded-For`: the
   * client address is the Nth entry from the right (never the leftmost, which the client writes).
   * `true` means 1. Default 0: the TCP peer address.
   */
  readonly trustProxy?: number | boolean;
  /**
   * How long `close()` (a drain) waits for clients to close after the 1012 close frame before
   * terminating the rest, in milliseconds. Default 10000.
   */
  readonly drainTimeoutMs?: number;
  /** Receives log events. Default: none (silent); the CLI logs one JSON line per event. */
  readonly logger?: Logger;
  /** Clock in milliseconds (rate limits, token expiry, TURN expiry). Default `Date.now`. */
  readonly now?: () => number;
}

/** The defaults of `SignalingServerOptions`. */
export const DEFAULTS = {
  port: 1337,
  host: '127.0.0.1',
  maxPayload: 64 * 1024,
  messagesPerSecond: DEFAULT_RATE_LIMIT.messagesPerSecond,
  maxPeersPerRoom: 16,
  maxConnectionsPerIp: 32,
  maxConnections: 10_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  heartbeatIntervalMs: 15_000,
  resumeGraceMs: 10_000,
  resumeQueueLimit: 64,
  maxHeldBytesPerPeer: 256 * 1024,
  maxHeldBytes: 64 * 1024 * 1024,
  resumeTokenTtlSeconds: 86_400,
  maxBufferedBytes: 4 * 1024 * 1024,
  drainTimeoutMs: 10_000,
} as const;

/** Options after validation: every limit a number, every default applied. */
export interface ResolvedOptions {
  readonly port: number;
  readonly host: string;
  readonly path: string | undefined;
  readonly maxPayload: number;
  readonly messagesPerSecond: number;
  readonly burst: number;
  readonly rateLimitCloseAfter: number;
  readonly maxPeersPerRoom: number;
  readonly maxConnectionsPerIp: number;
  readonly maxConnections: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly resumeGraceMs: number;
  readonly resumeQueueLimit: number;
  readonly maxHeldBytesPerPeer: number;
  readonly maxHeldBytes: number;
  readonly resumeTokenTtlSeconds: number;
  readonly maxBufferedBytes: number;
  readonly drainTimeoutMs: number;
  readonly authSecret: string | undefined;
  readonly resumeSecret: string;
  /** Reverse-proxy hops whose `X-Forwarded-For` entries are trusted; 0 = none. */
  readonly trustedProxyHops: number;
  /** Lower-cased origins without trailing slash; undefined = any. */
  readonly allowedOrigins: ReadonlySet<string> | undefined;
}

/** A random URL-safe id of `bytes` random bytes. */
export function randomId(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

function positiveInteger(name: string, value: number | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min) throw new TypeError(`${name} must be an integer >= ${min}`);
  return value;
}

/** Validates `options` and applies the defaults; throws a TypeError naming a bad option. */
export function resolveOptions(options: SignalingServerOptions): ResolvedOptions {
  const messagesPerSecond = positiveInteger('messagesPerSecond', options.messagesPerSecond, DEFAULTS.messagesPerSecond);
  const port = positiveInteger('port', options.port, DEFAULTS.port, 0);
  if (port > 65_535) throw new TypeError('port must be at most 65535');
  if (options.authSecret?.length === 0) throw new TypeError('authSecret must not be empty');
  if (options.resumeSecret?.length === 0) throw new TypeError('resumeSecret must not be empty');
  if (options.server !== undefined && options.staticDir !== undefined) {
    throw new TypeError('staticDir needs an own server: do not pass `server` with it');
  }
  const trustProxy = options.trustProxy;
  const trustedProxyHops =
    trustProxy === true ? 1 : trustProxy === false || trustProxy === undefined ? 0 : positiveInteger('trustProxy', trustProxy, 0, 0);
  return {
    port,
    host: options.host ?? DEFAULTS.host,
    path: options.path,
    maxPayload: positiveInteger('maxPayload', options.maxPayload, DEFAULTS.maxPayload, 256),
    messagesPerSecond,
    burst: positiveInteger('burst', options.burst, 4 * messagesPerSecond),
    rateLimitCloseAfter: positiveInteger('rateLimitCloseAfter', options.rateLimitCloseAfter, messagesPerSecond),
    maxPeersPerRoom: positiveInteger('maxPeersPerRoom', options.maxPeersPerRoom, DEFAULTS.maxPeersPerRoom),
    maxConnectionsPerIp: positiveInteger('maxConnectionsPerIp', options.maxConnectionsPerIp, DEFAULTS.maxConnectionsPerIp),
    maxConnections: positiveInteger('maxConnections', options.maxConnections, DEFAULTS.maxConnections),
    headersTimeoutMs: positiveInteger('headersTimeoutMs', options.headersTimeoutMs, DEFAULTS.headersTimeoutMs),
    requestTimeoutMs: positiveInteger('requestTimeoutMs', options.requestTimeoutMs, DEFAULTS.requestTimeoutMs),
    heartbeatIntervalMs: positiveInteger('heartbeatIntervalMs', options.heartbeatIntervalMs, DEFAULTS.heartbeatIntervalMs, 10),
    resumeGraceMs: positiveInteger('resumeGraceMs', options.resumeGraceMs, DEFAULTS.resumeGraceMs, 0),
    resumeQueueLimit: positiveInteger('resumeQueueLimit', options.resumeQueueLimit, DEFAULTS.resumeQueueLimit, 0),
    maxHeldBytesPerPeer: positiveInteger('maxHeldBytesPerPeer', options.maxHeldBytesPerPeer, DEFAULTS.maxHeldBytesPerPeer, 0),
    maxHeldBytes: positiveInteger('maxHeldBytes', options.maxHeldBytes, DEFAULTS.maxHeldBytes, 0),
    resumeTokenTtlSeconds: positiveInteger('resumeTokenTtlSeconds', options.resumeTokenTtlSeconds, DEFAULTS.resumeTokenTtlSeconds),
    maxBufferedBytes: positiveInteger('maxBufferedBytes', options.maxBufferedBytes, DEFAULTS.maxBufferedBytes),
    drainTimeoutMs: positiveInteger('drainTimeoutMs', options.drainTimeoutMs, DEFAULTS.drainTimeoutMs, 0),
    authSecret: options.authSecret,
    resumeSecret: options.resumeSecret ?? randomId(32),
    trustedProxyHops,
    allowedOrigins:
      options.allowedOrigins === undefined
        ? undefined
        : new Set(options.allowedOrigins.map((o) => o.trim().toLowerCase().replace(/\/+$/, ''))),
  };
}
