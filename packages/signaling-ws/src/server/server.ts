// The Parley signaling server: wire protocol v1 (DESIGN.md, "Wire protocol") over `ws`.
//
// A Connection is one WebSocket; a Session is one peer in one room, and outlives its socket for
// `resumeGraceMs` so that a reconnect with the resume token keeps the peer id and the room is not
// told `peer-left`. Resume tokens are signed (resume-token.ts): a process that did not issue one
// (the server restarted, or another instance with the same `resumeSecret`) can still verify it and
// give the peer its id back. Rooms and presence go through a Broker; sockets never leave this module.

import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { RawData } from 'ws';
import {
  CLOSE_CODES,
  DEFAULT_RATE_LIMIT,
  ID_PATTERN,
  isPlainObject,
  validateClientFrame,
  type ErrorCode,
  type IceServerConfig,
  type JoinFrame,
  type PeerInfo,
} from '../protocol.js';
import { verifyJoinToken } from './auth.js';
import { InMemoryBroker, type Broker, type BrokerJoinResult, type MaybePromise } from './broker.js';
import { createResumeToken, verifyResumeToken, type ResumeClaims } from './resume-token.js';
import { ConnectionCounter, RateLimiter } from './limits.js';
import { errorMessage, jsonLineLogger, safeLogger, type Logger } from './log.js';
import { createStaticHandler, type StaticHandler } from './static.js';
import { createIceServerSource, type TurnOptions } from './turn.js';

/**
 * Options of `createSignalingServer`; every limit has a safe default. Pass `logger` to see
 * the server's log events (e.g. `jsonLineLogger`, as the `parley-signaling` CLI does).
 */
export interface SignalingServerOptions {
  /** Port to listen on when no `server` is given; 0 picks a free port. Default 1337. */
  readonly port?: number;
  /** Address to listen on when no `server` is given. Default `127.0.0.1`. */
  readonly host?: string;
  /**
   * Attach to this HTTP server instead of creating one: only its `upgrade` event is used (and
   * removed again by `close()`); `/healthz` and `staticDir` are not served, the app owns HTTP.
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
  /** Open WebSockets per client address; past it, upgrades get HTTP 429. Default 32. */
  readonly maxConnectionsPerIp?: number;
  /** WebSocket ping interval; a socket silent for a whole interval is terminated. Default 15000. */
  readonly heartbeatIntervalMs?: number;
  /** How long a disconnected peer keeps its id, name and room for a resume. Default 10000; 0 disables resume (and restores from `resumeSecret` tokens). */
  readonly resumeGraceMs?: number;
  /** Signals held for a peer within its grace period (older ones are kept, newer dropped). Default 64. */
  readonly resumeQueueLimit?: number;
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
   * session lives, as before.)
   */
  readonly resumeTokenTtlSeconds?: number;
  /** When set, upgrades whose `Origin` is not in this list (or have none) get HTTP 403. */
  readonly allowedOrigins?: readonly string[];
  /** `stun:` URLs, passed to pages in `welcome.iceServers`. */
  readonly stunUrls?: readonly string[];
  /** Extra ICE servers without credentials, passed through. */
  readonly iceServers?: readonly IceServerConfig[];
  /** TURN REST credentials (coturn `use-auth-secret`) in `welcome.iceServers`. */
  readonly turn?: TurnOptions;
  /** Rooms and presence. Default: a new in-memory broker (closed by `close()`; a given one is not). */
  readonly broker?: Broker;
  /** Serve this folder over HTTP (GET/HEAD) on the same port; needs an own server. */
  readonly staticDir?: string;
  /** Take the client address from the first `X-Forwarded-For` entry (behind a reverse proxy). Default false. */
  readonly trustProxy?: boolean;
  /** Receives log events. Default: one JSON line per event on stdout. */
  readonly logger?: Logger;
  /** Clock in milliseconds (rate limits, token expiry, TURN expiry). Default `Date.now`. */
  readonly now?: () => number;
}

/** Counters of a running server, from `SignalingServer.stats()`. */
export interface SignalingStats {
  /** Open WebSockets. */
  readonly connections: number;
  /** Peers in rooms on this process, including those within their resume grace period. */
  readonly peers: number;
  /** Rooms with at least one peer on this process. */
  readonly rooms: number;
  /** Signals relayed since start. */
  readonly relayed: number;
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
  /** Stops accepting, closes every socket with 1001 and resolves when all are closed. Idempotent. */
  close(): Promise<void>;
}

const DEFAULTS = {
  port: 1337,
  host: '127.0.0.1',
  maxPayload: 64 * 1024,
  messagesPerSecond: DEFAULT_RATE_LIMIT.messagesPerSecond,
  maxPeersPerRoom: 16,
  maxConnectionsPerIp: 32,
  heartbeatIntervalMs: 15_000,
  resumeGraceMs: 10_000,
  resumeQueueLimit: 64,
  resumeTokenTtlSeconds: 86_400,
  maxBufferedBytes: 4 * 1024 * 1024,
} as const;

/** How long `close()` waits for clients to answer the close frame before terminating them. */
const CLOSE_WAIT_MS = 2000;
/** Frames received while an asynchronous join is under way, kept and handled after it. */
const JOIN_BACKLOG_LIMIT = 256;
/** A relayed frame is at most this much longer than the client frame (`from` vs `to`, id length). */
const RELAY_GROWTH_BOUND = 96;
/**
 * Nonces of other processes' resume tokens that restored an id here, kept until the token's TTL
 * ends so that each restores at most once per process; past this many, the oldest are forgotten.
 */
const RESTORED_NONCES_LIMIT = 100_000;

function randomId(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

function positiveInteger(name: string, value: number | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min) throw new TypeError(`${name} must be an integer >= ${min}`);
  return value;
}

/** How a client that serializes `{type, to, data}` in that order (as ours does) starts a signal. */
const SIGNAL_HEAD = '{"type":"signal","to":"';
const SIGNAL_DATA = '","data":';
const CLOSE_BRACE = 0x7d;

/**
 * The text of `data` as the client sent it, when the frame (already parsed to `frame`, a valid
 * signal to `to`) is `{"type":"signal","to":"<to>","data":` + that text + `}` and has no keys
 * but these three; otherwise undefined (the server then serializes `data` again). Relaying the
 * client's own text saves a JSON.stringify of up to `maxPayload` bytes per signal.
 *
 * Why the relayed frame is still what the server checked: a top-level key after `data` in the
 * text can only repeat `type`, `to` or `data` (there are three keys), and JSON.parse keeps the
 * last of each, which is what the server validated: `type` "signal", `to` this very id (the
 * text starts with it), `data` an object. The frame relayed is `{"type":"signal","from":"<id>",
 * "data":` + the text + `}`: its only top-level `from` is the server's, whichever duplicate a
 * receiver's parser keeps; `data` stays opaque, as it always was.
 */
function sentDataText(text: string, to: string, frame: Record<string, unknown>): string | undefined {
  const toAt = SIGNAL_HEAD.length;
  const dataAt = toAt + to.length + SIGNAL_DATA.length;
  if (
    text.charCodeAt(text.length - 1) !== CLOSE_BRACE ||
    !text.startsWith(SIGNAL_HEAD) ||
    !text.startsWith(to, toAt) ||
    !text.startsWith(SIGNAL_DATA, toAt + to.length)
  ) {
    return undefined;
  }
  let keys = 0;
  for (const key in frame) {
    if (Object.hasOwn(frame, key) && ++keys > 3) return undefined;
  }
  return text.slice(dataAt, -1);
}

function when<T>(value: MaybePromise<T>, onValue: (value: T) => void, onError: (error: unknown) => void): void {
  if (value instanceof Promise) value.then(onValue, onError);
  else onValue(value);
}

class Connection {
  session: Session | undefined = undefined;
  /** Set while an asynchronous join or resume is under way; frames wait here. */
  backlog: Buffer[] | undefined = undefined;
  joining = false;
  /** Answered a ping, or sent anything, since the last heartbeat tick. */
  alive = true;
  /** The server has started closing it (abuse, shutdown, replaced): later frames are ignored. */
  closing = false;
  closed = false;
  /** The socket is corked: frames sent in this turn of the event loop go out in one write. */
  corked = false;

  constructor(
    readonly ws: WebSocket,
    /** The TCP socket under `ws` (the one its upgrade came on): corked to coalesce writes. */
    readonly socket: Duplex,
    readonly cid: number,
    readonly ip: string,
    readonly limiter: RateLimiter,
  ) {}
}

class Session {
  conn: Connection | undefined = undefined;
  /** Frames for this peer while it has no socket (resume grace period), in order. */
  held: string[] = [];
  graceTimer: NodeJS.Timeout | undefined = undefined;
  /** A connection whose resume of this session waits for the broker; no second resume meanwhile. */
  resuming: Connection | undefined = undefined;
  removed = false;
  /** `{"type":"signal","from":"<id>","data":`: a relayed frame is this, the data, and `}`. */
  readonly signalPrefix: string;
  readonly deliver: (frame: string) => void;

  constructor(
    readonly id: string,
    readonly room: string,
    readonly name: string,
    public resumeToken: string,
    send: (conn: Connection, frame: string) => void,
    heldLimit: number,
  ) {
    this.signalPrefix = `{"type":"signal","from":${JSON.stringify(id)},"data":`;
    this.deliver = (frame) => {
      const conn = this.conn;
      if (conn !== undefined) send(conn, frame);
      else if (!this.removed && this.held.length < heldLimit) this.held.push(frame);
    };
  }
}

/** Creates a signaling server and resolves once it listens (or is attached). */
export async function createSignalingServer(options: SignalingServerOptions = {}): Promise<SignalingServer> {
  const maxPayload = positiveInteger('maxPayload', options.maxPayload, DEFAULTS.maxPayload, 256);
  const messagesPerSecond = positiveInteger('messagesPerSecond', options.messagesPerSecond, DEFAULTS.messagesPerSecond);
  const burst = positiveInteger('burst', options.burst, 4 * messagesPerSecond);
  const rateLimitCloseAfter = positiveInteger('rateLimitCloseAfter', options.rateLimitCloseAfter, messagesPerSecond);
  const maxPeersPerRoom = positiveInteger('maxPeersPerRoom', options.maxPeersPerRoom, DEFAULTS.maxPeersPerRoom);
  const maxConnectionsPerIp = positiveInteger('maxConnectionsPerIp', options.maxConnectionsPerIp, DEFAULTS.maxConnectionsPerIp);
  const heartbeatIntervalMs = positiveInteger('heartbeatIntervalMs', options.heartbeatIntervalMs, DEFAULTS.heartbeatIntervalMs, 10);
  const resumeGraceMs = positiveInteger('resumeGraceMs', options.resumeGraceMs, DEFAULTS.resumeGraceMs, 0);
  const resumeQueueLimit = positiveInteger('resumeQueueLimit', options.resumeQueueLimit, DEFAULTS.resumeQueueLimit, 0);
  const resumeTokenTtlSeconds = positiveInteger('resumeTokenTtlSeconds', options.resumeTokenTtlSeconds, DEFAULTS.resumeTokenTtlSeconds);
  const maxBufferedBytes = positiveInteger('maxBufferedBytes', options.maxBufferedBytes, DEFAULTS.maxBufferedBytes);
  const port = positiveInteger('port', options.port, DEFAULTS.port, 0);
  if (port > 65_535) throw new TypeError('port must be at most 65535');
  const host = options.host ?? DEFAULTS.host;
  if (options.authSecret?.length === 0) throw new TypeError('authSecret must not be empty');
  if (options.resumeSecret?.length === 0) throw new TypeError('resumeSecret must not be empty');
  const resumeSecret = options.resumeSecret ?? randomId(32);
  /** This process, in the resume tokens it issues: its own tokens are never "restored" here. */
  const issuer = randomId(9);
  if (options.server !== undefined && options.staticDir !== undefined) {
    throw new TypeError('staticDir needs an own server: do not pass `server` with it');
  }
  const iceServers = createIceServerSource(options);
  const allowedOrigins =
    options.allowedOrigins === undefined
      ? undefined
      : new Set(options.allowedOrigins.map((o) => o.trim().toLowerCase().replace(/\/+$/, '')));
  const now = options.now ?? Date.now;
  const log = safeLogger(options.logger ?? jsonLineLogger);
  const ownBroker = options.broker === undefined;
  const broker: Broker = options.broker ?? new InMemoryBroker();
  const staticHandler: StaticHandler | undefined =
    options.staticDir === undefined ? undefined : createStaticHandler(options.staticDir);

  const connections = new Set<Connection>();
  const sessionsByToken = new Map<string, Session>();
  /** Nonce of a restoring resume token -> when its TTL ends (ms); insertion order is roughly age order. */
  const restoredNonces = new Map<string, number>();
  const localRooms = new Map<string, number>();
  const ipCounter = new ConnectionCounter(maxConnectionsPerIp);
  let nextCid = 1;
  let relayed = 0;
  let closing: Promise<void> | undefined;

  // UTF-8 is checked in onMessage instead of by ws (same check, `buffer.isUtf8`), so that a bad
  // text frame gets an error frame rather than a 1007 close.
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload,
    perMessageDeflate: false,
    clientTracking: false,
    skipUTF8Validation: true,
  });
  wss.on('error', (error) => log({ level: 'error', event: 'server-error', message: errorMessage(error) }));

  // ---- sending ----

  // Write coalescing: the first frame sent to a socket corks it, and every corked socket is
  // uncorked in a microtask, once the callback that is running (one read from one socket, a
  // broker answer) has handled all its frames. A burst for one peer (several signals read from
  // its partner's socket at once, as trickle ICE sends them; a welcome and what was held for it)
  // then costs one writev instead of one per frame; a lone frame waits for nothing. Write
  // syscalls are most of the server's CPU under load (apps/bench, signaling benchmark).
  let corkedConnections: Connection[] = [];
  let flushScheduled = false;

  function flushCorked(): void {
    flushScheduled = false;
    const list = corkedConnections;
    corkedConnections = [];
    for (const conn of list) {
      conn.corked = false;
      conn.socket.uncork();
    }
  }

  function send(conn: Connection, frame: string): void {
    const ws = conn.ws;
    if (ws.readyState !== WebSocket.OPEN) return;
    if (ws.bufferedAmount > maxBufferedBytes) {
      closeConnection(conn, CLOSE_CODES.policyViolation, 'slow consumer: too much unsent data');
      return;
    }
    if (!conn.corked) {
      conn.corked = true;
      conn.socket.cork();
      corkedConnections.push(conn);
      if (!flushScheduled) {
        flushScheduled = true;
        queueMicrotask(flushCorked);
      }
    }
    ws.send(frame);
  }

  function sendError(conn: Connection, code: ErrorCode, message: string): void {
    log({ level: 'warn', event: 'frame-error', conn: conn.cid, peer: conn.session?.id, code });
    send(conn, JSON.stringify({ type: 'error', code, message }));
  }

  function closeConnection(conn: Connection, code: number, reason: string): void {
    if (conn.closing) return;
    conn.closing = true;
    log({ level: code === CLOSE_CODES.goingAway ? 'info' : 'warn', event: 'closing', conn: conn.cid, code, reason });
    try {
      conn.ws.close(code, reason);
    } catch (error) {
      log({ level: 'error', event: 'close-failed', conn: conn.cid, message: errorMessage(error) });
      conn.ws.terminate();
    }
  }

  // ---- sessions ----

  function countRoom(room: string, delta: number): void {
    const count = (localRooms.get(room) ?? 0) + delta;
    if (count <= 0) localRooms.delete(room);
    else localRooms.set(room, count);
  }

  function brokerFailed(operation: string, error: unknown): void {
    log({ level: 'error', event: 'broker-error', operation, message: errorMessage(error) });
  }

  /** Takes a peer out of its room for good and tells the others `peer-left`. */
  function removeSession(session: Session, why: string): void {
    if (session.removed) return;
    session.removed = true;
    session.held = [];
    clearTimeout(session.graceTimer);
    sessionsByToken.delete(session.resumeToken);
    countRoom(session.room, -1);
    log({ level: 'info', event: 'peer-left', peer: session.id, room: session.room, why });
    const left = `{"type":"peer-left","id":${JSON.stringify(session.id)}}`;
    when(
      broker.leave(session.room, session.id),
      () => when(broker.broadcast(session.room, left, session.id), () => undefined, (e) => brokerFailed('broadcast', e)),
      (e) => brokerFailed('leave', e),
    );
  }

  /** The socket of a session went away without `leave`: keep the session for a resume. */
  function detach(session: Session): void {
    session.conn = undefined;
    if (closing !== undefined || resumeGraceMs === 0) {
      removeSession(session, closing !== undefined ? 'shutdown' : 'disconnected');
      return;
    }
    clearTimeout(session.graceTimer);
    session.graceTimer = setTimeout(() => removeSession(session, 'resume-grace-expired'), resumeGraceMs);
    session.graceTimer.unref();
  }

  /** Binds a session to a connection, sends `welcome` and whatever was held meanwhile. */
  function welcome(conn: Connection, session: Session, peers: readonly PeerInfo[], how: 'joined' | 'resumed' | 'restored'): void {
    conn.session = session;
    session.conn = conn;
    const others = peers.filter((p) => p.id !== session.id).map((p) => ({ id: p.id, name: p.name }));
    send(
      conn,
      JSON.stringify({
        type: 'welcome',
        id: session.id,
        resume: session.resumeToken,
        peers: others,
        iceServers: iceServers.forPeer(session.id, now()),
      }),
    );
    const held = session.held;
    session.held = [];
    for (const frame of held) send(conn, frame);
    log({
      level: 'info',
      event: 'join',
      conn: conn.cid,
      peer: session.id,
      room: session.room,
      name: session.name,
      resumed: how === 'resumed',
      restored: how === 'restored',
      held: held.length,
    });
  }

  // ---- frames ----

  function handleJoin(conn: Connection, frame: JoinFrame): void {
    if (conn.session !== undefined || conn.joining) {
      sendError(conn, 'already-joined', 'this connection has already joined a room');
      return;
    }
    if (frame.resume !== undefined) {
      const session = sessionsByToken.get(frame.resume);
      if (session === undefined) {
        const claims = restorableClaims(conn, frame, frame.resume);
        if (claims !== undefined) {
          restoreJoin(conn, frame, claims);
          return;
        }
      } else if (!session.removed && session.resuming === undefined && session.room === frame.room && session.name === frame.name) {
        resume(conn, session, frame);
        return;
      }
    }
    // No resume token, or one that is unknown, used up, expired or for another room or name:
    // wire protocol v1 makes that a normal join with a fresh id.
    freshJoin(conn, frame);
  }

  function issueResumeToken(room: string, name: string, id: string): string {
    return createResumeToken(resumeSecret, { issuer, room, name, id }, now());
  }

  /**
   * The claims of a resume token that this process did not issue but that verifies (signature,
   * age, room and name of the join) and has not restored an id here before; otherwise undefined.
   * This process's own tokens are valid only while their session lives (`sessionsByToken`).
   */
  function restorableClaims(conn: Connection, frame: JoinFrame, token: string): ResumeClaims | undefined {
    if (resumeGraceMs === 0) return undefined; // resume is off
    const check = verifyResumeToken(resumeSecret, token, now(), resumeTokenTtlSeconds);
    let why: string;
    if (!check.ok) why = check.reason;
    else if (check.claims.issuer === issuer) why = 'used-up';
    else if (check.claims.room !== frame.room || check.claims.name !== frame.name) why = 'other-room-or-name';
    else if (restoredNonces.has(check.claims.nonce)) why = 'used-up';
    else return check.claims;
    // Never the token itself: it is a credential.
    log({ level: 'info', event: 'resume-token-unusable', conn: conn.cid, room: frame.room, why });
    return undefined;
  }

  /**
   * A join that restores the peer id of a verified resume token from another process (or an
   * earlier run of this one): the room on this process knows nothing of it, so it is told
   * `peer-joined` as for any join. It needs no join token even with `authSecret`, like a resume:
   * the resume token is itself a credential signed by a server (with the resume secret), bound to
   * this room and name and to an age limit, and it was handed only to a peer that had been let in
   * (with a valid join token, when there is an auth secret). If the id or the name is held by a
   * live or in-grace member, it is a fresh join (with its rules, a join token included).
   */
  function restoreJoin(conn: Connection, frame: JoinFrame, claims: ResumeClaims): void {
    const session = new Session(claims.id, frame.room, frame.name, issueResumeToken(frame.room, frame.name, claims.id), send, resumeQueueLimit);
    conn.joining = true;
    const joined = broker.join(frame.room, { id: session.id, name: session.name }, maxPeersPerRoom, session.deliver);
    if (joined instanceof Promise) conn.backlog ??= [];
    when(
      joined,
      (result) => {
        if (!result.ok && result.reason !== 'room-full') {
          // The id or the name is in use: not a restore. (A full room is full for a fresh join too.)
          conn.joining = false;
          log({ level: 'info', event: 'resume-token-unusable', conn: conn.cid, room: frame.room, why: result.reason });
          if (!conn.closed) freshJoin(conn, frame); // drains the backlog once it has an answer
          return;
        }
        if (result.ok) rememberRestored(claims);
        finishJoin(conn, session, frame, result, 'restored');
      },
      (error) => {
        brokerFailed('join', error);
        conn.joining = false;
        closeConnection(conn, CLOSE_CODES.internalError, 'join failed');
      },
    );
  }

  /** Each token of another process restores an id here once (until its TTL ends). */
  function rememberRestored(claims: ResumeClaims): void {
    const at = now();
    for (const [nonce, until] of restoredNonces) {
      if (until > at && restoredNonces.size < RESTORED_NONCES_LIMIT) break;
      restoredNonces.delete(nonce);
    }
    restoredNonces.set(claims.nonce, (claims.issuedAt + resumeTokenTtlSeconds) * 1000);
  }

  /** A join under a new id: auth, then name uniqueness and room size (atomically, in the broker). */
  function freshJoin(conn: Connection, frame: JoinFrame): void {
    if (options.authSecret !== undefined) {
      const check = verifyJoinToken(options.authSecret, frame.token, frame.room, frame.name, now());
      if (check !== 'ok') {
        sendError(conn, 'unauthorized', check === 'missing' ? 'a join token is required' : `join token refused (${check})`);
        closeConnection(conn, CLOSE_CODES.unauthorized, 'unauthorized');
        return;
      }
    }
    const id = randomId(16);
    const session = new Session(id, frame.room, frame.name, issueResumeToken(frame.room, frame.name, id), send, resumeQueueLimit);
    conn.joining = true;
    const joined = broker.join(frame.room, { id: session.id, name: session.name }, maxPeersPerRoom, session.deliver);
    if (joined instanceof Promise) conn.backlog ??= [];
    when(
      joined,
      (result) => finishJoin(conn, session, frame, result, 'joined'),
      (error) => {
        brokerFailed('join', error);
        conn.joining = false;
        closeConnection(conn, CLOSE_CODES.internalError, 'join failed');
      },
    );
  }

  function finishJoin(conn: Connection, session: Session, frame: JoinFrame, result: BrokerJoinResult, how: 'joined' | 'restored'): void {
    conn.joining = false;
    if (!result.ok) {
      const reason = result.reason;
      if (reason === 'id-taken') {
        // 16 random bytes collided: practically never; try again under a new id.
        if (!conn.closed) freshJoin(conn, frame);
        return;
      }
      sendError(conn, reason, reason === 'room-full' ? `room is full (${maxPeersPerRoom} peers)` : 'name is taken in this room');
      drainBacklog(conn);
      return;
    }
    sessionsByToken.set(session.resumeToken, session);
    countRoom(session.room, 1);
    if (conn.closed) {
      removeSession(session, 'disconnected-while-joining');
      return;
    }
    welcome(conn, session, result.peers, how);
    const joinedFrame = JSON.stringify({ type: 'peer-joined', peer: { id: session.id, name: session.name } });
    when(broker.broadcast(session.room, joinedFrame, session.id), () => undefined, (e) => brokerFailed('broadcast', e));
    drainBacklog(conn);
  }

  /**
   * Takes a session over from `conn`. Nothing changes for the session until the broker has
   * answered (its socket, if it still has one, keeps it; its token stays valid): a resume that
   * cannot complete leaves it as it was.
   */
  function resume(conn: Connection, session: Session, frame: JoinFrame): void {
    // The resume came within the grace period: the session waits for it, however slow the broker.
    clearTimeout(session.graceTimer);
    session.graceTimer = undefined;
    session.resuming = conn;
    conn.joining = true;
    const members = broker.members(session.room);
    if (members instanceof Promise) conn.backlog ??= [];
    when(
      members,
      (peers) => finishResume(conn, session, frame, peers),
      (error) => {
        brokerFailed('members', error);
        conn.joining = false;
        session.resuming = undefined;
        if (!session.removed && session.conn === undefined) detach(session);
        closeConnection(conn, CLOSE_CODES.internalError, 'resume failed');
      },
    );
  }

  function finishResume(conn: Connection, session: Session, frame: JoinFrame, peers: readonly PeerInfo[]): void {
    conn.joining = false;
    session.resuming = undefined;
    if (conn.closed) {
      // The resuming socket is gone: the session goes on as before (its grace period restarts).
      if (!session.removed && session.conn === undefined) detach(session);
      return;
    }
    if (session.removed) {
      // It ended meanwhile (its socket sent leave, or the server is shutting down): the token is
      // now unknown, and an unknown token is a normal join, under the same rules as any other.
      freshJoin(conn, frame); // drains the backlog once it has an answer
      return;
    }
    const previous = session.conn;
    if (previous !== undefined) {
      // Still bound to a socket the client has given up on (our heartbeat has not noticed yet).
      // The only place that sends 4000: this socket is being replaced by the resumed one.
      previous.session = undefined;
      session.conn = undefined;
      closeConnection(previous, CLOSE_CODES.replaced, 'replaced by a resumed connection');
    }
    // A grace timer may have restarted while the broker answered (the old socket closed).
    clearTimeout(session.graceTimer);
    session.graceTimer = undefined;
    // Resume tokens are single-use: the welcome carries a fresh one.
    sessionsByToken.delete(session.resumeToken);
    session.resumeToken = issueResumeToken(session.room, session.name, session.id);
    sessionsByToken.set(session.resumeToken, session);
    welcome(conn, session, peers, 'resumed');
    drainBacklog(conn);
  }

  function handleLeave(conn: Connection): void {
    const session = conn.session;
    if (session === undefined) {
      sendError(conn, 'not-joined', conn.joining ? 'a join is under way' : 'join a room first');
      return;
    }
    conn.session = undefined;
    session.conn = undefined;
    removeSession(session, 'leave');
  }

  function relay(conn: Connection, session: Session, to: string, data: Record<string, unknown>, frameBytes: number, dataText?: string): void {
    let frame: string;
    try {
      frame = session.signalPrefix + (dataText ?? JSON.stringify(data)) + '}';
    } catch {
      sendError(conn, 'bad-message', 'data cannot be relayed');
      return;
    }
    // Stamping `from` can make the frame a little longer than the client's: keep it under the
    // limit the receiving clients use.
    if (frameBytes + RELAY_GROWTH_BOUND > maxPayload && Buffer.byteLength(frame) > maxPayload) {
      sendError(conn, 'too-large', `the relayed signal would exceed ${maxPayload} bytes`);
      return;
    }
    const published = broker.publish(session.room, to, frame);
    if (published === true) relayed += 1;
    else if (published === false) sendError(conn, 'unknown-peer', 'no such peer in this room');
    else {
      published.then(
        (ok) => {
          if (ok) relayed += 1;
          else sendError(conn, 'unknown-peer', 'no such peer in this room');
        },
        (e) => brokerFailed('publish', e),
      );
    }
  }

  function handleText(conn: Connection, bytes: Buffer): void {
    let value: unknown;
    const text = bytes.toString('utf8');
    try {
      value = JSON.parse(text);
    } catch {
      sendError(conn, 'bad-json', 'frame is not valid JSON');
      return;
    }
    // Hot path: a well-formed signal from a joined peer; `data` is opaque (already size-bounded).
    const session = conn.session;
    if (session !== undefined && isPlainObject(value) && value['type'] === 'signal') {
      const to = value['to'];
      const data = value['data'];
      if (typeof to === 'string' && ID_PATTERN.test(to) && isPlainObject(data)) {
        relay(conn, session, to, data, bytes.length, sentDataText(text, to, value));
        return;
      }
    }
    const parsed = validateClientFrame(value);
    if (!parsed.ok) {
      sendError(conn, parsed.code, parsed.message);
      return;
    }
    const frame = parsed.frame;
    switch (frame.type) {
      case 'join':
        handleJoin(conn, frame);
        return;
      case 'signal':
        if (session === undefined) sendError(conn, 'not-joined', 'join a room before sending signals');
        else relay(conn, session, frame.to, frame.data, bytes.length);
        return;
      case 'leave':
        handleLeave(conn);
        return;
      case 'ping':
        send(conn, '{"type":"pong"}');
        return;
    }
  }

  function handleFrame(conn: Connection, bytes: Buffer): void {
    try {
      handleText(conn, bytes);
    } catch (error) {
      log({ level: 'error', event: 'handler-error', conn: conn.cid, message: errorMessage(error) });
      try {
        sendError(conn, 'bad-message', 'frame could not be handled');
      } catch {
        // The socket is gone; its close handler cleans up.
      }
    }
  }

  function drainBacklog(conn: Connection): void {
    const backlog = conn.backlog;
    conn.backlog = undefined;
    if (backlog === undefined) return;
    for (let i = 0; i < backlog.length; i += 1) {
      if (conn.joining) {
        // Another asynchronous join started: keep the rest for after it.
        conn.backlog = backlog.slice(i);
        return;
      }
      handleFrame(conn, backlog[i]!);
    }
  }

  function onMessage(conn: Connection, data: RawData, isBinary: boolean): void {
    if (conn.closing) return;
    conn.alive = true;
    const verdict = conn.limiter.take(now());
    if (verdict !== 'accept') {
      if (verdict === 'abuse') closeConnection(conn, CLOSE_CODES.rateLimited, 'rate limit exceeded');
      else sendError(conn, 'rate-limited', `more than ${messagesPerSecond} messages per second; message dropped`);
      return;
    }
    if (isBinary || !Buffer.isBuffer(data)) {
      sendError(conn, 'bad-message', 'binary frames are not accepted: send one JSON object per text frame');
      return;
    }
    if (!isUtf8(data)) {
      sendError(conn, 'bad-json', 'text frame is not valid UTF-8');
      return;
    }
    if (conn.backlog !== undefined) {
      if (conn.backlog.length >= JOIN_BACKLOG_LIMIT) sendError(conn, 'rate-limited', 'too many frames while joining');
      else conn.backlog.push(data);
      return;
    }
    handleFrame(conn, data);
  }

  function onClose(conn: Connection, code: number, reason: Buffer): void {
    if (conn.closed) return;
    conn.closed = true;
    conn.backlog = undefined;
    connections.delete(conn);
    ipCounter.release(conn.ip);
    log({ level: 'info', event: 'disconnect', conn: conn.cid, peer: conn.session?.id, code, reason: reason.toString('utf8').slice(0, 123) });
    const session = conn.session;
    conn.session = undefined;
    if (session !== undefined && session.conn === conn) detach(session);
  }

  function onConnection(ws: WebSocket, socket: Duplex, ip: string, origin: string | undefined): void {
    const conn = new Connection(ws, socket, nextCid++, ip, new RateLimiter(messagesPerSecond, burst, rateLimitCloseAfter, now()));
    connections.add(conn);
    log({ level: 'info', event: 'connect', conn: conn.cid, ip, origin });
    ws.on('error', (error) => log({ level: 'warn', event: 'socket-error', conn: conn.cid, message: errorMessage(error) }));
    ws.on('pong', () => {
      conn.alive = true;
    });
    ws.on('message', (data, isBinary) => onMessage(conn, data, isBinary));
    ws.on('close', (code, reason) => onClose(conn, code, reason));
    if (closing !== undefined) closeConnection(conn, CLOSE_CODES.goingAway, 'server shutting down');
  }

  // ---- HTTP ----

  function refuseUpgrade(socket: Duplex, status: number, text: string, why: string, ip: string): void {
    log({ level: 'warn', event: 'upgrade-refused', status, why, ip });
    if (socket.writable) {
      socket.end(
        `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(why) + 1}\r\n\r\n${why}\n`,
      );
    }
    socket.destroy();
  }

  function clientAddress(req: IncomingMessage): string {
    if (options.trustProxy === true) {
      const forwarded = req.headers['x-forwarded-for'];
      const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
      if (first !== undefined && first.length > 0) return first;
    }
    return req.socket.remoteAddress ?? 'unknown';
  }

  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', (error) => log({ level: 'warn', event: 'socket-error', message: errorMessage(error) }));
    try {
      if (options.path !== undefined) {
        const url = req.url ?? '/';
        const query = url.indexOf('?');
        if ((query === -1 ? url : url.slice(0, query)) !== options.path) {
          // On an app's server another upgrade listener may want it.
          if (options.server === undefined) refuseUpgrade(socket, 404, 'Not Found', 'no WebSocket here', '');
          return;
        }
      }
      const ip = clientAddress(req);
      if (closing !== undefined) {
        refuseUpgrade(socket, 503, 'Service Unavailable', 'server shutting down', ip);
        return;
      }
      const origin = req.headers.origin;
      if (allowedOrigins !== undefined && (origin === undefined || !allowedOrigins.has(origin.toLowerCase()))) {
        refuseUpgrade(socket, 403, 'Forbidden', 'origin not allowed', ip);
        return;
      }
      if (!ipCounter.tryAcquire(ip)) {
        refuseUpgrade(socket, 429, 'Too Many Requests', 'too many connections from this address', ip);
        return;
      }
      // The slot is taken now; give it back unless the handshake completes (ws answers a bad
      // handshake with 400 itself and never calls back).
      let upgraded = false;
      socket.once('close', () => {
        if (!upgraded) ipCounter.release(ip);
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

  function stats(): SignalingStats {
    return { connections: connections.size, peers: sessionsByToken.size, rooms: localRooms.size, relayed };
  }

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    res.on('error', () => undefined);
    const url = req.url ?? '/';
    if ((req.method === 'GET' || req.method === 'HEAD') && (url === '/healthz' || url.startsWith('/healthz?'))) {
      const body = JSON.stringify({ status: 'ok', ...stats() });
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
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

  const httpServer = options.server ?? createServer(onRequest);
  const onHttpError = (error: Error): void => log({ level: 'error', event: 'http-error', message: errorMessage(error) });
  const onClientError = (error: Error, socket: Duplex): void => {
    log({ level: 'warn', event: 'http-client-error', message: errorMessage(error) });
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    socket.destroy();
  };
  httpServer.on('upgrade', onUpgrade);
  if (options.server === undefined) {
    httpServer.on('clientError', onClientError);
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(port, host, () => {
        httpServer.off('error', reject);
        resolve();
      });
    });
  }
  httpServer.on('error', onHttpError);

  const address = httpServer.address();
  const boundPort = typeof address === 'object' && address !== null ? address.port : port;
  const boundHost = options.server === undefined ? host : typeof address === 'object' && address !== null ? address.address : host;
  const urlHost = boundHost.includes(':') ? `[${boundHost}]` : boundHost;
  const url = `ws://${urlHost}:${boundPort}${options.path ?? '/'}`;
  const httpUrl = `http://${urlHost}:${boundPort}/`;

  const heartbeat = setInterval(() => {
    for (const conn of connections) {
      if (!conn.alive) {
        log({ level: 'warn', event: 'heartbeat-timeout', conn: conn.cid, peer: conn.session?.id });
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      try {
        conn.ws.ping();
      } catch {
        conn.ws.terminate();
      }
    }
  }, heartbeatIntervalMs);
  heartbeat.unref();

  log({ level: 'info', event: 'listening', url, httpUrl, host: boundHost, port: boundPort, attached: options.server !== undefined });

  async function shutdown(): Promise<void> {
    clearInterval(heartbeat);
    httpServer.off('upgrade', onUpgrade);
    const ownServer = options.server === undefined;
    const serverClosed = ownServer
      ? new Promise<void>((resolve) => httpServer.close(() => resolve()))
      : Promise.resolve();
    const open = [...connections];
    for (const conn of open) closeConnection(conn, CLOSE_CODES.goingAway, 'server shutting down');
    const allClosed = Promise.all(
      open.filter((conn) => !conn.closed).map((conn) => new Promise<void>((resolve) => conn.ws.once('close', () => resolve()))),
    );
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      allClosed.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), CLOSE_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      for (const conn of connections) conn.ws.terminate();
      await allClosed;
    }
    for (const session of [...sessionsByToken.values()]) removeSession(session, 'shutdown');
    if (ownBroker) await broker.close();
    if (ownServer) {
      httpServer.closeAllConnections();
      await serverClosed;
      httpServer.off('clientError', onClientError);
    }
    httpServer.off('error', onHttpError);
    wss.close();
    log({ level: 'info', event: 'closed' });
  }

  return {
    port: boundPort,
    host: boundHost,
    url,
    httpUrl,
    httpServer,
    stats,
    close() {
      closing ??= shutdown();
      return closing;
    },
  };
}
