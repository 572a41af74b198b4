import type { Observable } from 'rxjs';

// The RTC port: a DOM-free mirror of the part of RTCPeerConnection that the machines drive.
// The string unions are copied from W3C webrtc-pc so that a browser's values pass through as is.

/** webrtc-pc §4.3.2 RTCSignalingState. */
export type SignalingState =
  /** No offer/answer exchange in progress. */
  | 'stable'
  /** A local offer has been applied (setLocalDescription(offer)). */
  | 'have-local-offer'
  /** A remote offer has been applied (setRemoteDescription(offer)). */
  | 'have-remote-offer'
  /** A remote offer and a local pranswer have been applied. */
  | 'have-local-pranswer'
  /** A local offer and a remote pranswer have been applied. */
  | 'have-remote-pranswer'
  /** The connection is closed. */
  | 'closed';

/** webrtc-pc §4.3.2 RTCIceGatheringState. */
export type IceGatheringState = 'new' | 'gathering' | 'complete';

/** webrtc-pc §4.3.2 RTCIceConnectionState. */
export type IceConnectionState =
  | 'new'
  | 'checking'
  | 'connected'
  | 'completed'
  | 'disconnected'
  | 'failed'
  | 'closed';

/** webrtc-pc §4.3.2 RTCPeerConnectionState. */
export type PeerConnectionState =
  | 'new'
  | 'connecting'
  | 'connected'
  | 'disconnected'
  | 'failed'
  | 'closed';

/** webrtc-pc §4.8.1.1 RTCSdpType. */
export type SdpType = 'offer' | 'pranswer' | 'answer' | 'rollback';

/** webrtc-pc §4.8.1 RTCSessionDescriptionInit. `sdp` is absent only for rollback. */
export interface SessionDescription {
  readonly type: SdpType;
  readonly sdp?: string;
}

/** webrtc-pc §4.8.2 RTCIceCandidateInit. */
export interface IceCandidate {
  readonly candidate: string;
  readonly sdpMid?: string | null;
  readonly sdpMLineIndex?: number | null;
  readonly usernameFragment?: string | null;
}

/** webrtc-pc §6.2 RTCDataChannelState. */
export type DataChannelState = 'connecting' | 'open' | 'closing' | 'closed';

/** webrtc-pc §6.2 RTCDataChannelInit. */
export interface DataChannelInit {
  readonly ordered?: boolean;
  readonly maxPacketLifeTime?: number;
  readonly maxRetransmits?: number;
  readonly protocol?: string;
  readonly negotiated?: boolean;
  readonly id?: number;
}

/** What travels over a data channel: text, or bytes. */
export type DataChannelPayload = string | ArrayBuffer | ArrayBufferView;

/** Events of one data channel, one typed union (webrtc-pc §6.2 event handlers). */
export type DataChannelEvent =
  | { readonly type: 'open' }
  | { readonly type: 'message'; readonly data: string | ArrayBuffer }
  | { readonly type: 'bufferedamountlow' }
  | { readonly type: 'closing' }
  | { readonly type: 'close' }
  | { readonly type: 'error'; readonly error: Error };

/** A DOM-free mirror of RTCDataChannel. */
export interface DataChannelPort {
  readonly label: string;
  readonly id: number | null;
  readonly ordered: boolean;
  readonly protocol: string;
  readonly readyState: DataChannelState;
  readonly bufferedAmount: number;
  bufferedAmountLowThreshold: number;
  /**
   * Hot stream of the channel's events; completes after `close`. A remote channel may already
   * be `open` when it is handed over (webrtc-pc §6.2 announces it open), so consumers read
   * `readyState` when they subscribe instead of waiting for an `open` event. When the peer
   * connection itself closes, the stream may end without a `close` event.
   */
  readonly events$: Observable<DataChannelEvent>;
  send(data: DataChannelPayload): void;
  close(): void;
}

/**
 * webrtc-pc §4.2.1 RTCIceServer, structurally (core uses no DOM types): a STUN or TURN server,
 * with the TURN credential (e.g. TURN REST credentials from a signaling server's `welcome`).
 */
export interface IceServer {
  readonly urls: string | readonly string[];
  readonly username?: string;
  readonly credential?: string;
}

/**
 * The part of webrtc-pc §4.2.1 RTCConfiguration that `setConfiguration` changes on a running
 * connection: its ICE servers, nothing else. bundlePolicy, rtcpMuxPolicy, certificates,
 * iceTransportPolicy and iceCandidatePoolSize stay as the connection was created (engines
 * reject a change of the first three with InvalidModificationError, §4.4.1.6 "set a
 * configuration"; the port never asks for one).
 */
export interface RtcConfiguration {
  readonly iceServers: readonly IceServer[];
}

/** Opaque media handles: core passes them through, the app and the browser adapter use them. */
export type MediaTrackHandle = unknown;
/** An opaque media stream (a `MediaStream` in browsers): core passes it through untouched. */
export type MediaStreamHandle = unknown;

/** Every RTCPeerConnection event the machines react to, as one typed union. */
export type RtcPortEvent =
  | { readonly type: 'negotiationneeded' }
  /** `candidate` is null for end-of-candidates (webrtc-pc §4.4.1.6). */
  | { readonly type: 'icecandidate'; readonly candidate: IceCandidate | null }
  | { readonly type: 'icecandidateerror'; readonly errorCode: number; readonly errorText: string; readonly url: string }
  | { readonly type: 'signalingstatechange'; readonly state: SignalingState }
  | { readonly type: 'icegatheringstatechange'; readonly state: IceGatheringState }
  | { readonly type: 'iceconnectionstatechange'; readonly state: IceConnectionState }
  | { readonly type: 'connectionstatechange'; readonly state: PeerConnectionState }
  | {
      readonly type: 'track';
      readonly track: MediaTrackHandle;
      readonly streams: readonly MediaStreamHandle[];
      readonly mid: string | null;
    }
  | { readonly type: 'datachannel'; readonly channel: DataChannelPort };

/** The `type` of every `RtcPortEvent`. */
export type RtcPortEventType = RtcPortEvent['type'];

/**
 * The part of RTCPeerConnection the machines drive. Adapters wrap a real connection
 * (`@parley/browser`), tests use the fake one from `@parley/core/testing`.
 *
 * Contract: `events$` never errors. Events raised before the first subscriber are buffered and
 * delivered to it (so a `negotiationneeded` fired by tracks added before the machines start is
 * never lost); after that it is hot. After `close()` it emits nothing more (it need not
 * complete), every method but `close()` and `restartIce()` (which do nothing, webrtc-pc
 * §4.4.1.9 and §4.4.1.6) rejects or throws an Error named `InvalidStateError`, and promises
 * pending at close never settle.
 */
export interface RtcPort {
  readonly signalingState: SignalingState;
  readonly iceGatheringState: IceGatheringState;
  readonly iceConnectionState: IceConnectionState;
  readonly connectionState: PeerConnectionState;
  readonly localDescription: SessionDescription | null;
  readonly remoteDescription: SessionDescription | null;
  readonly events$: Observable<RtcPortEvent>;
  createOffer(options?: { readonly iceRestart?: boolean }): Promise<SessionDescription>;
  createAnswer(): Promise<SessionDescription>;
  setLocalDescription(description: SessionDescription): Promise<void>;
  setRemoteDescription(description: SessionDescription): Promise<void>;
  /** `null` signals end-of-candidates for the current remote description. */
  addIceCandidate(candidate: IceCandidate | null): Promise<void>;
  restartIce(): void;
  /**
   * webrtc-pc §4.4.1.6 setConfiguration, for the ICE servers only: the ICE agent uses
   * `configuration.iceServers` from its next gathering on (an ICE restart, e.g. the connection
   * machine's recovery, allocates with the new TURN credentials); the transport in use is kept.
   * Synchronous, as in webrtc-pc. Throws InvalidStateError after `close()`, or what the engine
   * throws for a malformed list (e.g. a TURN URL without credentials: InvalidAccessError).
   */
  setConfiguration(configuration: RtcConfiguration): void;
  createDataChannel(label: string, init?: DataChannelInit): DataChannelPort;
  /**
   * webrtc-pc §5.1 addTrack: sends the local `track` (a MediaStreamTrack in browsers), as part of
   * `streams`, on a new or reused transceiver; the connection then needs negotiation (§4.7.3
   * `negotiationneeded`), which the peer machine carries out. Throws InvalidStateError after
   * `close()`, InvalidAccessError when the track is already sent on this connection.
   */
  addTrack(track: MediaTrackHandle, ...streams: MediaStreamHandle[]): void;
  /**
   * webrtc-pc §5.2 RTCRtpSender.replaceTrack on the sender that sends `current`: `next` (of the
   * same kind) is sent instead, without negotiation. Rejects InvalidStateError after `close()`,
   * InvalidAccessError when no sender of this connection sends `current`, TypeError when the
   * kinds differ.
   */
  replaceTrack(current: MediaTrackHandle, next: MediaTrackHandle): Promise<void>;
  close(): void;
}

/** Error names an RTC implementation uses (WebIDL DOMException names). */
export type RtcErrorName =
  | 'InvalidStateError'
  | 'InvalidAccessError'
  | 'InvalidModificationError'
  | 'OperationError'
  | 'TypeError'
  | 'SyntaxError'
  | 'NotSupportedError';

/** True when `error` is the DOMException-like error a browser raises for a wrong-state call. */
export function isInvalidStateError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { name?: unknown }).name === 'InvalidStateError';
}
