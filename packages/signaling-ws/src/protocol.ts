/**
 * Wire protocol version 1 between a signaling client and the server (docs/architecture.md, "Wire protocol").
 * One JSON object per WebSocket text frame. The server treats `signal.data` as opaque JSON: only
 * its size is bounded here; the peers validate it with core's `parsePeerMessage`.
 *
 * Frames. Client -> server: `join` (room, name, optional join `token` and `resume` token),
 * `signal` (to, data), `leave`, `ping`, `refresh-ice-servers`. Server -> client: `welcome` (id,
 * resume token, peers, iceServers, `iceServersExpireAt` with TURN), `ice-servers` (the answer to
 * `refresh-ice-servers`), `peer-joined`, `peer-left`, `signal` (from, data), `pong`, `error`
 * (code, message, `to` for `unknown-peer` and `undeliverable`).
 *
 * Server behaviour (packages/signaling-ws/src/server):
 * - A `join` with a resume token within the resume grace period gets the same id back with the
 *   frames held meanwhile, and the room hears nothing. A token signed by another process sharing
 *   the resume secret restores the id (`peer-joined` to the room), but never more than a join
 *   would: not after the join token that admitted the peer has expired, not for a session that
 *   ended by `leave` or a clean close, and each token once. A refused restore is a join under the
 *   rules of any join: with an auth secret and no valid join token, `error unauthorized` + 4001.
 * - `leave` or a clean close (1000, 1001) ends the session: `peer-left` to the room at once. Any
 *   other close (1006, heartbeat, 1008 slow consumer, 1009, 4029) keeps it for the grace period.
 * - Frames for a peer in its grace period are held, bounded per peer (count, bytes) and per
 *   server (bytes). A signal that cannot be delivered or held, or that is still held when the
 *   grace ends, is answered to its sender with `error undeliverable` naming the target in `to`.
 * - A client sends `refresh-ice-servers` before `iceServersExpireAt`; the server answers with
 *   `ice-servers` carrying fresh TURN REST credentials and their new expiry.
 * - Draining (SIGTERM): `join` gets `error draining`, new upgrades HTTP 503, and every socket is
 *   closed with 1012: reconnect (to another instance) at once and resume there.
 *
 * @module @parley/signaling-ws/protocol
 */

/** The wire protocol version this package speaks. */
export const WIRE_PROTOCOL_VERSION = 1;

/** Room and peer names: 1-64 characters of `[A-Za-z0-9_.-]`. */
export const NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
/** Server-issued ids and resume tokens are URL-safe and bounded. */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** The longest join or resume token accepted, in characters. */
export const TOKEN_MAX_LENGTH = 1024;

/** A member of a room: its server-issued id and its name. */
export interface PeerInfo {
  readonly id: string;
  readonly name: string;
}

/** An RTCIceServer as sent to pages (webrtc-pc §4.2.1). */
export interface IceServerConfig {
  readonly urls: string | readonly string[];
  readonly username?: string;
  readonly credential?: string;
}

// ---- client -> server ----

/** Client → server: join a room under a name (or resume with a resume token). */
export interface JoinFrame {
  readonly type: 'join';
  readonly room: string;
  readonly name: string;
  readonly token?: string;
  readonly resume?: string;
}
/** `signal.data` as the server sees it: any JSON object, relayed without looking inside. */
export type SignalPayload = Readonly<Record<string, unknown>>;
/**
 * `Data` narrows what a sender puts in `data` (the client sends core `PeerMessage`s); the wire
 * shape is the same for every `Data`.
 */
export interface SignalFrame<Data extends object = SignalPayload> {
  readonly type: 'signal';
  readonly to: string;
  readonly data: Data;
}
/** Client → server: leave the room for good. */
export interface LeaveFrame {
  readonly type: 'leave';
}
/** Client → server: an application-level ping (answered with `pong`). */
export interface PingFrame {
  readonly type: 'ping';
}
/**
 * Asks for fresh ICE servers (new TURN REST credentials) before the ones from `welcome` expire.
 * Answered with an `ice-servers` frame. Only for a joined peer.
 */
export interface RefreshIceServersFrame {
  readonly type: 'refresh-ice-servers';
}
/** Every frame a client sends. */
export type ClientFrame<Data extends object = SignalPayload> =
  | JoinFrame
  | SignalFrame<Data>
  | LeaveFrame
  | PingFrame
  | RefreshIceServersFrame;

// ---- server -> client ----

/** Server → client: joined; the peer id, the resume token, the other members and ICE servers. */
export interface WelcomeFrame {
  readonly type: 'welcome';
  readonly id: string;
  readonly resume: string;
  readonly peers: readonly PeerInfo[];
  readonly iceServers: readonly IceServerConfig[];
  /**
   * When the TURN credentials in `iceServers` expire (unix milliseconds); absent when they carry
   * none. A client sends `refresh-ice-servers` before then.
   */
  readonly iceServersExpireAt?: number;
}
/** The answer to `refresh-ice-servers`: the ICE servers with fresh TURN credentials. */
export interface IceServersFrame {
  readonly type: 'ice-servers';
  readonly iceServers: readonly IceServerConfig[];
  /** As in `welcome`: unix milliseconds, absent when there are no TURN credentials. */
  readonly iceServersExpireAt?: number;
}
/** Server → client: a member joined the room. */
export interface PeerJoinedFrame {
  readonly type: 'peer-joined';
  readonly peer: PeerInfo;
}
/** Server → client: a member left the room for good. */
export interface PeerLeftFrame {
  readonly type: 'peer-left';
  readonly id: string;
}
/** Server → client: a signal from another member, with the server-stamped sender. */
export interface RelayedSignalFrame {
  readonly type: 'signal';
  readonly from: string;
  /** Unvalidated: receivers check it (the client with core's `parsePeerMessage`). */
  readonly data: SignalPayload;
}
/** Server → client: the answer to a `ping`. */
export interface PongFrame {
  readonly type: 'pong';
}
/** Every error code the server sends in an `error` frame. */
export type ErrorCode =
  | 'bad-json'
  | 'bad-message'
  | 'too-large'
  | 'not-joined'
  | 'already-joined'
  | 'unknown-peer'
  | 'room-full'
  | 'unauthorized'
  | 'rate-limited'
  | 'name-taken'
  /** A signal could not be delivered (and is not held for a resume): `to` names its target. */
  | 'undeliverable'
  /** The server is draining (shutting down): no new joins; reconnect elsewhere. */
  | 'draining';
/** Every `ErrorCode`. */
export const ERROR_CODES: readonly ErrorCode[] = [
  'bad-json',
  'bad-message',
  'too-large',
  'not-joined',
  'already-joined',
  'unknown-peer',
  'room-full',
  'unauthorized',
  'rate-limited',
  'name-taken',
  'undeliverable',
  'draining',
];
/** Server → client: a refused frame or request; the connection stays open unless said. */
export interface ErrorFrame {
  readonly type: 'error';
  readonly code: ErrorCode;
  readonly message: string;
  /** With `undeliverable` (and `unknown-peer`): the peer id the signal was addressed to. */
  readonly to?: string;
}
/** Every frame the server sends. */
export type ServerFrame =
  | WelcomeFrame
  | IceServersFrame
  | PeerJoinedFrame
  | PeerLeftFrame
  | RelayedSignalFrame
  | PongFrame
  | ErrorFrame;

/**
 * The server's default per-connection rate limit: a token bucket of `burst` messages refilled at
 * `messagesPerSecond` (every frame counts, `join` and `ping` included). The client paces its own
 * sends below it by default.
 */
export const DEFAULT_RATE_LIMIT = { messagesPerSecond: 50, burst: 200 } as const;

/**
 * WebSocket close codes the server uses (RFC 6455 §7.4.1 and the private range). A client that
 * closes with `normal` or `goingAway` has left (the room is told `peer-left` at once and its
 * resume tokens are revoked); any other close keeps its session for the resume grace period.
 */
export const CLOSE_CODES = {
  /** From a client: it left for good (like `leave`). */
  normal: 1000,
  /** From a client: it left for good (a closed tab sends this). */
  goingAway: 1001,
  protocolError: 1002,
  unsupportedData: 1003,
  /** A slow consumer (too much unsent data): its session stays in grace, frames are held for it. */
  policyViolation: 1008,
  /** A frame larger than the server's maximum payload. */
  messageTooBig: 1009,
  /** The broker failed during a join or resume. */
  internalError: 1011,
  /** The server is restarting or draining: reconnect (to another instance) at once and resume. */
  serviceRestart: 1012,
  /** Private range: this socket was replaced by a connection that resumed its session (and only then). */
  replaced: 4000,
  /** Private range: too many messages per second. */
  rateLimited: 4029,
  /** Private range: join refused (auth or origin). */
  unauthorized: 4001,
  /**
   * Private range, sent by a client: it gave this socket up to reconnect (a keepalive timeout)
   * and will resume. Not a clean close: the server keeps the session for the resume grace.
   */
  reconnecting: 4002,
} as const;

/** The result of parsing a frame: the frame, or the error code and message to answer with. */
export type WireParseResult<T> =
  | { readonly ok: true; readonly frame: T }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

/** True for a JSON object (not null, not an array). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function bad<T>(message: string, code: ErrorCode = 'bad-message'): WireParseResult<T> {
  return { ok: false, code, message };
}

/**
 * Parses one client text frame. Never throws. `text` must already be within the size limit
 * (the server checks bytes before it decodes).
 */
export function parseClientFrame(text: string): WireParseResult<ClientFrame> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return bad('frame is not valid JSON', 'bad-json');
  }
  return validateClientFrame(value);
}

/**
 * Validates an already-parsed client frame (the server parses once and calls this). Never
 * throws. `signal.data` is checked to be an object only: it is opaque to the server.
 */
export function validateClientFrame(value: unknown): WireParseResult<ClientFrame> {
  if (!isPlainObject(value)) return bad('frame must be a JSON object');
  switch (value['type']) {
    case 'join': {
      const { room, name, token, resume } = value;
      if (typeof room !== 'string' || !NAME_PATTERN.test(room)) return bad('room must be 1-64 characters of A-Z a-z 0-9 _ . -');
      if (typeof name !== 'string' || !NAME_PATTERN.test(name)) return bad('name must be 1-64 characters of A-Z a-z 0-9 _ . -');
      if (token !== undefined && (typeof token !== 'string' || token.length === 0 || token.length > TOKEN_MAX_LENGTH)) {
        return bad(`token must be a string of 1-${TOKEN_MAX_LENGTH} characters`);
      }
      if (resume !== undefined && (typeof resume !== 'string' || resume.length === 0 || resume.length > TOKEN_MAX_LENGTH)) {
        return bad(`resume must be a string of 1-${TOKEN_MAX_LENGTH} characters`);
      }
      return {
        ok: true,
        frame: {
          type: 'join',
          room,
          name,
          ...(token !== undefined ? { token } : {}),
          ...(resume !== undefined ? { resume } : {}),
        },
      };
    }
    case 'signal': {
      const { to, data } = value;
      if (typeof to !== 'string' || !ID_PATTERN.test(to)) return bad('to must be a peer id');
      if (!isPlainObject(data)) return bad('data must be a JSON object');
      return { ok: true, frame: { type: 'signal', to, data } };
    }
    case 'leave':
      return { ok: true, frame: { type: 'leave' } };
    case 'ping':
      return { ok: true, frame: { type: 'ping' } };
    case 'refresh-ice-servers':
      return { ok: true, frame: { type: 'refresh-ice-servers' } };
    default:
      return bad('unknown frame type');
  }
}

function expiryOf(value: unknown): WireParseResult<number | undefined> {
  if (value === undefined) return { ok: true, frame: undefined };
  return typeof value === 'number' && Number.isFinite(value) ? { ok: true, frame: value } : bad('iceServersExpireAt must be a number');
}

/**
 * Parses one server text frame, for clients. Never throws; a client that gets a malformed
 * frame reports it and keeps the connection.
 */
export function parseServerFrame(text: string): WireParseResult<ServerFrame> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return bad('frame is not valid JSON', 'bad-json');
  }
  if (!isPlainObject(value)) return bad('frame must be a JSON object');
  const isPeer = (p: unknown): p is PeerInfo =>
    isPlainObject(p) && typeof p['id'] === 'string' && typeof p['name'] === 'string';
  switch (value['type']) {
    case 'welcome': {
      const { id, resume, peers, iceServers } = value;
      if (typeof id !== 'string' || typeof resume !== 'string') return bad('welcome needs id and resume');
      if (!Array.isArray(peers) || !peers.every(isPeer)) return bad('welcome.peers must be a list of {id, name}');
      if (!Array.isArray(iceServers)) return bad('welcome.iceServers must be a list');
      const expiry = expiryOf(value['iceServersExpireAt']);
      if (!expiry.ok) return bad(expiry.message);
      return {
        ok: true,
        frame: {
          type: 'welcome',
          id,
          resume,
          peers,
          iceServers: iceServers as IceServerConfig[],
          ...(expiry.frame !== undefined ? { iceServersExpireAt: expiry.frame } : {}),
        },
      };
    }
    case 'ice-servers': {
      const { iceServers } = value;
      if (!Array.isArray(iceServers)) return bad('ice-servers.iceServers must be a list');
      const expiry = expiryOf(value['iceServersExpireAt']);
      if (!expiry.ok) return bad(expiry.message);
      return {
        ok: true,
        frame: {
          type: 'ice-servers',
          iceServers: iceServers as IceServerConfig[],
          ...(expiry.frame !== undefined ? { iceServersExpireAt: expiry.frame } : {}),
        },
      };
    }
    case 'peer-joined':
      return isPeer(value['peer']) ? { ok: true, frame: { type: 'peer-joined', peer: value['peer'] } } : bad('peer-joined needs peer');
    case 'peer-left':
      return typeof value['id'] === 'string' ? { ok: true, frame: { type: 'peer-left', id: value['id'] } } : bad('peer-left needs id');
    case 'signal': {
      const { from, data } = value;
      if (typeof from !== 'string' || !isPlainObject(data)) return bad('signal needs from and data');
      return { ok: true, frame: { type: 'signal', from, data } };
    }
    case 'pong':
      return { ok: true, frame: { type: 'pong' } };
    case 'error': {
      const { code, message, to } = value;
      if (typeof code !== 'string' || !(ERROR_CODES as readonly string[]).includes(code) || typeof message !== 'string') {
        return bad('error needs a known code and a message');
      }
      if (to !== undefined && typeof to !== 'string') return bad('error.to must be a peer id');
      return { ok: true, frame: { type: 'error', code: code as ErrorCode, message, ...(to !== undefined ? { to } : {}) } };
    }
    default:
      return bad('unknown frame type');
  }
}
