// One peer in one room. A Session outlives its socket for the resume grace period so that a
// reconnect with the resume token keeps the peer id and the room is not told `peer-left`.
// Its lifecycle is one discriminated union (`SessionState`):
//
//   connected ──socket gone──▶ in-grace ──resume──▶ resuming ──broker answered──▶ connected
//       │                        │  (frames held, bounded)      │ (socket gone: in-grace again)
//       └── leave / clean close ─┴── grace over / shutdown ─────┴──▶ ended
//
// Frames for a session without a socket are held (per session: count and bytes; per server:
// bytes, `HeldFrameBudget`); a frame that cannot be held is answered to its sender with
// `undeliverable`, so nothing is dropped without the sender knowing.

import type { Deliver, HeldFrame } from './broker.js';
import type { Connection } from './connection.js';

export type { HeldFrame } from './broker.js';

/** Where a session is in its life (see the diagram at the top of session.ts). */
export type SessionState =
  | { readonly kind: 'connected'; readonly conn: Connection }
  /** No socket: frames are held; `ip` keeps its slot in the per-address cap until it ends. */
  | { readonly kind: 'in-grace'; held: HeldFrame[]; heldBytes: number; readonly timer: NodeJS.Timeout | undefined; readonly ip: string }
  /**
   * A connection's resume waits for the broker; no second resume meanwhile. Frames go to
   * `previous` (the socket it was still bound to, which the resume replaces) or are held. `ip` is
   * the client slot it kept in grace (none when it came from `connected`).
   */
  | {
      readonly kind: 'resuming';
      readonly conn: Connection;
      held: HeldFrame[];
      heldBytes: number;
      readonly ip: string | undefined;
      previous: Connection | undefined;
    }
  /** Out of the room for good. */
  | { readonly kind: 'ended' };

/** How a session ended, for logs and for what the room and the resume tokens are told. */
export type EndReason =
  | 'leave'
  | 'clean-close'
  | 'resume-grace-expired'
  | 'disconnected'
  | 'disconnected-while-joining'
  | 'shutdown'
  /** A restore on another node (or server) took the id over: the room hears nothing. */
  | 'taken-over';

/** The server-wide bound on bytes held for peers within their grace periods. */
export class HeldFrameBudget {
  private used = 0;

  constructor(private readonly limit: number) {}

  /** Takes `bytes` from the budget; false (nothing taken) when they do not fit. */
  take(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }

  /** Gives `bytes` back. */
  give(bytes: number): void {
    this.used -= bytes;
  }

  /** Bytes held now. */
  get bytes(): number {
    return this.used;
  }
}

/** One peer in one room. */
export class Session {
  state: SessionState;
  /** `{"type":"signal","from":"<id>","data":`: a relayed frame is this, the data, and `}`. */
  readonly signalPrefix: string;
  /** `signalPrefix` in UTF-8, for frames relayed as bytes. */
  readonly signalPrefixBytes: Buffer;
  /**
   * Unix seconds after which a restore of this session is refused (the expiry of the join token
   * that admitted it, carried into every resume token); 0 when joins need no token.
   */
  readonly joinExpiresAt: number;
  /** Where the broker delivers this session's frames; also names its membership for `Broker.leave`. */
  sink: Deliver = () => undefined;

  constructor(
    readonly id: string,
    readonly room: string,
    readonly name: string,
    public resumeToken: string,
    conn: Connection,
    joinExpiresAt: number,
  ) {
    this.state = { kind: 'connected', conn };
    this.signalPrefix = `{"type":"signal","from":${JSON.stringify(id)},"data":`;
    this.signalPrefixBytes = Buffer.from(this.signalPrefix);
    this.joinExpiresAt = joinExpiresAt;
  }

  /** The socket it is bound to, if any. */
  get conn(): Connection | undefined {
    return this.state.kind === 'connected' ? this.state.conn : undefined;
  }

  /** True once it left its room for good. */
  get ended(): boolean {
    return this.state.kind === 'ended';
  }
}
