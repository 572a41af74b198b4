// One WebSocket and where it is in its life. The lifecycle is one discriminated union
// (`ConnectionState`), not a set of flags:
//
//   awaiting-join ──join──▶ joining ──broker answered──▶ joined ──leave──▶ awaiting-join
//        │                    │  (frames wait in its backlog)  │
//        └────────────────────┴──────── server closes ────────┴──▶ closing ──▶ closed
//                                       socket closes ───────────────────────▶ closed
//
// A joined connection holds its Session; when the socket goes away the session lives on (in its
// resume grace period, session.ts) and the connection is `closed` for good.

import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { RateLimiter } from './limits.js';
import type { Session } from './session.js';

/** Where a connection is in its life (see the diagram at the top of connection.ts). */
export type ConnectionState =
  /** Open, not in a room: `join` is the frame it may send. */
  | { readonly kind: 'awaiting-join' }
  /**
   * A join, resume or restore waits for the broker. Frames that arrive meanwhile wait in
   * `backlog` (bounded) and are handled, in order, once it has an answer.
   */
  | { readonly kind: 'joining'; readonly backlog: Buffer[] }
  /** A member of a room through `session`. */
  | { readonly kind: 'joined'; readonly session: Session }
  /** The server sent a close frame (abuse, slow consumer, drain, replaced): later frames are ignored. */
  | { readonly kind: 'closing' }
  /** The socket is closed; nothing more happens to this connection. */
  | { readonly kind: 'closed' };

/** Whether a socket answered since the last heartbeat tick (RFC 6455 §5.5.2 ping/pong). */
export type Liveness = 'answered' | 'awaiting-pong';

/** One WebSocket of a client. */
export class Connection {
  state: ConnectionState = { kind: 'awaiting-join' };
  liveness: Liveness = 'answered';
  /** The socket is corked by the outbox: frames sent in this turn go out in one write (outbox.ts). */
  corked = false;

  constructor(
    readonly ws: WebSocket,
    /** The TCP socket under `ws` (the one its upgrade came on): corked to coalesce writes. */
    readonly socket: Duplex,
    /** A number for logs. */
    readonly cid: number,
    /** The client address (see `trustProxy`): its slot in the per-address cap. */
    readonly ip: string,
    readonly limiter: RateLimiter,
  ) {}

  /** The session of a joined connection, else undefined. */
  get session(): Session | undefined {
    return this.state.kind === 'joined' ? this.state.session : undefined;
  }

  /** True once the server or the client has started closing it. */
  get isClosingOrClosed(): boolean {
    return this.state.kind === 'closing' || this.state.kind === 'closed';
  }
}
