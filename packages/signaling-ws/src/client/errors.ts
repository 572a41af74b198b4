import type { ErrorCode } from '../protocol.js';

/** Codes the client raises itself, next to the server's wire-protocol codes. */
export type ClientErrorCode =
  /** The outgoing queue is full; the newest message was refused (older ones are kept). */
  | 'queue-full'
  /** A relayed `signal` failed `parsePeerMessage`; it was dropped, never passed on. */
  | 'invalid-peer-message'
  /** The server sent a frame that is not wire protocol v1; it was ignored. */
  | 'bad-server-frame'
  /** No `pong` within `keepaliveTimeout`: the socket was abandoned and the client reconnects. */
  | 'keepalive-timeout'
  /** The server closed the socket with 4000: another connection resumed this identity. */
  | 'replaced'
  /** After a server restart, a peer with queued messages did not come back within `rejoinGrace`. */
  | 'peer-gone'
  /** The WebSocket could not even be constructed (no implementation, bad URL, blocked scheme). */
  | 'socket-unavailable';

/** Every error code a `SignalingError` can carry: the server's and the client's own. */
export type SignalingErrorCode = ErrorCode | ClientErrorCode;

/** What a `SignalingError` says besides its code and message. */
export interface SignalingErrorDetails {
  /** `server` for error frames and server close codes, `client` for what the client detected. */
  readonly source: 'server' | 'client';
  /** True when the error ended the client (`closed` with this error as the reason). */
  readonly fatal?: boolean;
  /** The remote peer concerned (invalid peer message, refused message, peer gone). */
  readonly peerId?: string;
  /** The WebSocket close code that carried the error, if any. */
  readonly closeCode?: number;
  readonly cause?: unknown;
}

/** Every error the signaling client reports on `errors$` or as its close reason. */
export class SignalingError extends Error {
  override readonly name = 'SignalingError';
  readonly source: 'server' | 'client';
  readonly fatal: boolean;
  readonly peerId: string | undefined;
  readonly closeCode: number | undefined;

  constructor(
    readonly code: SignalingErrorCode,
    message: string,
    details: SignalingErrorDetails,
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.source = details.source;
    this.fatal = details.fatal ?? false;
    this.peerId = details.peerId;
    this.closeCode = details.closeCode;
  }
}

/** Join refusals that retrying cannot fix: the client stops instead of looping. */
export const FATAL_JOIN_ERRORS: readonly ErrorCode[] = ['unauthorized', 'room-full', 'name-taken'];
