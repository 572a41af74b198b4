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
  readonly candidateFilter?: CandidateFilter;
  readonly iceRestartBy?: IceRestartPolicy;
  /** ICE restarts tried before the connection is declared failed (default 3). */
  readonly maxIceRestarts?: number;
  /** Data channels this side creates when the peer starts (e.g. a chat channel). */
  readonly dataChannels?: readonly { readonly label: string; readonly init?: DataChannelInit }[];
}

/** Why a peer machine reached a final state (its `output`). */
export type PeerEndReason = 'closed' | 'connection-failed' | 'connect-timeout';

export interface PeerOutput {
  readonly reason: PeerEndReason;
  /** Human-readable detail for logs and UIs. */
  readonly detail?: string;
}
