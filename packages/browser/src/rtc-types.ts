import type {
  DataChannelInit,
  DataChannelPort,
  IceCandidate,
  IceConnectionState,
  IceGatheringState,
  PeerConnectionState,
  SdpType,
  SignalingState,
} from '@parley/core';

// The parts of the W3C WebRTC objects this package's public functions take, as structural types
// of its own: a browser's RTCPeerConnection and @roamhq/wrtc's both fit, and an app in Node type-
// checks without the DOM lib (`lib: ["esnext"]`). Functions that hand an object back keep its
// own type (`createRtcPort(pc).pc` is the RTCPeerConnection you passed).

/**
 * An event listener as the engine calls it, with the engine's own event type (compared
 * bivariantly, as DOM listeners are, so both `(event: Event) => void` and wrtc's fit).
 */
export type EngineEventListener = { listener(event: unknown): void }['listener'];

/** The part of a webrtc-pc §4.8.1 RTCSessionDescription(Init) that Parley reads. */
export interface RtcSessionDescriptionLike {
  readonly type: SdpType;
  readonly sdp?: string;
}

/** A webrtc-pc §4.2.2 RTCIceServer with mutable lists, as `new RTCPeerConnection({ iceServers })` takes it. */
export interface RtcIceServerLike {
  urls: string | string[];
  username?: string;
  credential?: string;
}

/** The part of a webrtc-pc §4.4.1 RTCConfiguration that `loopbackOnly` reads and writes. */
export interface RtcConfigurationLike {
  /** STUN/TURN servers (webrtc-pc §4.2.2 RTCIceServer); `loopbackOnly` sets none. */
  iceServers?: unknown[];
}

/**
 * The attributes of a webrtc-pc §6.2 RTCDataChannel that core's `DataChannelPort` mirrors one to
 * one (the port is the DOM-free copy of them), and `close()`: the same declarations on both sides.
 */
type MirroredDataChannelMembers = 'label' | 'id' | 'ordered' | 'protocol' | 'readyState' | 'bufferedAmount' | 'bufferedAmountLowThreshold' | 'close';

/**
 * The part of a webrtc-pc §6.2 RTCDataChannel that `createDataChannelPort` uses: the attributes
 * the port mirrors (taken from `DataChannelPort`), and what the port replaces (`binaryType`, the
 * DOM's `send` overloads, and event listeners where the port has `events$`).
 */
export interface RtcDataChannelLike extends Pick<DataChannelPort, MirroredDataChannelMembers> {
  binaryType: string;
  send(data: string): void;
  send(data: ArrayBuffer): void;
  send(data: ArrayBufferView<ArrayBuffer>): void;
  close(): void;
  addEventListener(type: string, listener: EngineEventListener): void;
  removeEventListener(type: string, listener: EngineEventListener): void;
}

/**
 * The part of a webrtc-pc §4.4 RTCPeerConnection that `createRtcPort` uses: a browser's
 * `RTCPeerConnection` and `@roamhq/wrtc`'s fit it as they are.
 */
export interface RtcPeerConnectionLike {
  readonly signalingState: SignalingState;
  readonly iceGatheringState: IceGatheringState;
  readonly iceConnectionState: IceConnectionState;
  /** Missing in engines older than webrtc-pc's `connectionState`; derived from ICE then. */
  readonly connectionState?: PeerConnectionState;
  readonly localDescription: RtcSessionDescriptionLike | null;
  readonly remoteDescription: RtcSessionDescriptionLike | null;
  createOffer(options?: { iceRestart?: boolean }): Promise<RtcSessionDescriptionLike>;
  createAnswer(): Promise<RtcSessionDescriptionLike>;
  setLocalDescription(description: RtcSessionDescriptionLike): Promise<void>;
  setRemoteDescription(description: RtcSessionDescriptionLike): Promise<void>;
  addIceCandidate(candidate: IceCandidate): Promise<void>;
  /** Missing in older engines; an ICE restart offer is asked for with `createOffer` then. */
  restartIce?(): void;
  createDataChannel(label: string, init?: DataChannelInit): RtcDataChannelLike;
  addEventListener(type: string, listener: EngineEventListener): void;
  removeEventListener(type: string, listener: EngineEventListener): void;
  close(): void;
}

/**
 * The DOM's `RTCPeerConnection` where the app has the DOM lib, otherwise
 * {@link RtcPeerConnectionLike}: what a `BrowserRtcPort` holds when its type is not given.
 */
export type HostRtcPeerConnection = typeof globalThis extends { RTCPeerConnection: { prototype: infer T } } ? (T extends RtcPeerConnectionLike ? T : RtcPeerConnectionLike) : RtcPeerConnectionLike;

/** A constructor of connections, e.g. `RTCPeerConnection` or `@roamhq/wrtc`'s. */
export type RtcPeerConnectionConstructor<PC extends RtcPeerConnectionLike = RtcPeerConnectionLike> = new (configuration?: RtcConfigurationLike) => PC;

// Media: the helpers hand browser objects back (a MediaStream from getUserMedia), so their types
// are the DOM's own where the app has the DOM lib, and the structural ones below where it has not
// (a Node app type-checks; the helpers need a browser to run).

/** The part of a MediaStreamTrack (Media Capture and Streams §4.3) the helpers use. */
export interface MediaStreamTrackLike {
  readonly kind: string;
  readonly id: string;
  stop(): void;
}

/** The part of a MediaStream (Media Capture and Streams §4.2) the helpers use. */
export interface MediaStreamLike {
  getTracks(): MediaStreamTrackLike[];
}

/** The part of an RTCRtpSender (webrtc-pc §5.2) the sender helpers use. */
export interface RtcRtpSenderLike {
  readonly track: MediaStreamTrackLike | null;
  replaceTrack(track: MediaStreamTrackLike | null): Promise<void>;
}

/**
 * MediaStreamConstraints (Media Capture and Streams §10) in outline: `audio` and `video`, each
 * `true` or a MediaTrackConstraints object. A DOM `MediaStreamConstraints` fits.
 */
export interface MediaStreamConstraintsLike {
  readonly audio?: boolean | object;
  readonly video?: boolean | object;
}

type Host = typeof globalThis;

/** The DOM's `MediaStream` where the app has the DOM lib, otherwise {@link MediaStreamLike}. */
export type HostMediaStream = Host extends { MediaStream: { prototype: infer T } } ? T : MediaStreamLike;
/** The DOM's `MediaStreamTrack` where the app has the DOM lib, otherwise {@link MediaStreamTrackLike}. */
export type HostMediaStreamTrack = Host extends { MediaStreamTrack: { prototype: infer T } } ? T : MediaStreamTrackLike;
/** The DOM's `RTCRtpSender` where the app has the DOM lib, otherwise {@link RtcRtpSenderLike}. */
export type HostRtpSender = Host extends { RTCRtpSender: { prototype: infer T } } ? T : RtcRtpSenderLike;
/** What `getUserMedia` asks: `navigator.mediaDevices` or anything with its `getUserMedia`. */
export interface MediaDevicesLike {
  getUserMedia(constraints: MediaStreamConstraintsLike): Promise<HostMediaStream>;
}
