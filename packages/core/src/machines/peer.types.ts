import type { DataChannelInit, IceCandidate, RtcPort } from '../ports/rtc.js';
import type { SignalingPort } from '../ports/signaling.js';

/** Keeps or drops an ICE candidate (local and remote, trickled and in SDP). */
export type CandidateFilter = (candidate: IceCandidate) => boolean;

/** Who restarts ICE when the connection fails: the impolite peer only (default), or either. */
export type IceRestartPolicy = 'impolite' | 'either';

/** Input of the `peer` machine: one RTC port, one signaling pipe to the remote peer. */
export interface PeerInput {
  readonly rtc: RtcPort;
  readonly signaling: SignalingPort;
  /** The polite peer rolls back its own offer on collision (W3C perfect negotiation). */
  readonly polite: boolean;
  /** Stamped on every outgoing negotiation message; incoming ones of another session are dropped. */
  readonly session?: string;
  /** Trickle ICE (default true). Without it the description is sent once gathering completes. */
  readonly trickle?: boolean;
  /**
   * This side answers the first offer (a callee): its own first offer waits until the remote's
   * is applied, so tracks added before the call's offer arrives cause no glare (default false).
   */
  readonly awaitRemoteOffer?: boolean;
  /**
   * This side makes the first offer (a caller): it offers as soon as the peer starts, with the
   * tracks and data channels it has then, instead of waiting for the engine's
   * `negotiationneeded` task (webrtc-pc §4.7.3). A later `negotiationneeded` still negotiates
   * what the first offer did not carry (default false).
   */
  readonly offerOnStart?: boolean;
  readonly candidateFilter?: CandidateFilter;
  readonly iceRestartBy?: IceRestartPolicy;
  /** ICE restarts tried before the connection is declared failed (default 3). */
  readonly maxIceRestarts?: number;
  /** Data channels this side creates when the peer starts (e.g. a chat channel). */
  readonly dataChannels?: readonly { readonly label: string; readonly init?: DataChannelInit }[];
}

/** Why a peer machine reached a final state (its `output`). */
export type PeerEndReason =
  /** Closed by the app, or the port reported `closed`. */
  | 'closed'
  /** The connection failed (or stayed disconnected) and ICE restarts did not bring it back. */
  | 'connection-failed'
  /** The connection never got connected within `connectTimeout`, restarts included. */
  | 'connect-timeout'
  /**
   * The connection could not be established or recovered while a TURN server refused our
   * credentials (STUN error 401 or 441, RFC 8489 §14.8 and RFC 8656 §18): typically expired
   * TURN REST credentials. Fetch fresh ones (e.g. rejoin signaling) before calling again.
   */
  | 'turn-unauthorized';

/** The end reasons that mean failure. */
export type PeerFailureReason = Exclude<PeerEndReason, 'closed'>;

export interface PeerOutput {
  readonly reason: PeerEndReason;
  /** Human-readable detail for logs and UIs. */
  readonly detail?: string;
}
