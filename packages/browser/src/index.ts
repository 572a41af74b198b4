/**
 * The core RTC port over any W3C RTCPeerConnection (browsers, and @roamhq/wrtc in Node), plus
 * media and stats helpers for apps.
 *
 * @module @parley/browser
 */

export { createRtcPort, toRtcIceServers } from './rtc-port.js';
export type { BrowserRtcPort } from './rtc-port.js';
export { createDataChannelPort } from './data-channel-port.js';
export { keepLoopbackCandidates, loopbackOnly } from './loopback.js';
export { engineOptions } from './engines.js';
export type { ChromiumEngineOptions, EngineName, FirefoxEngineOptions } from './engines.js';
export { MediaAccessError, attachStream, detachStream, getUserMedia, isSenderMuted, setSenderMuted, switchCamera, toMediaAccessError } from './media.js';
export type { AttachStreamOptions, DetachStreamOptions, GetUserMediaOptions, MediaAccessFailure, MediaElementLike, SenderLike, SwitchTrackOptions } from './media.js';
export { candidatePairTypeOf, stats$, summarizeStats } from './stats.js';
export type { BytesSource, CandidateType, StatsReportLike, StatsSample, StatsSource, StatsStreamOptions } from './stats.js';
export type {
  EngineEventListener,
  HostMediaStream,
  HostMediaStreamTrack,
  HostRtcPeerConnection,
  HostRtpSender,
  MediaDevicesLike,
  MediaStreamConstraintsLike,
  MediaStreamLike,
  MediaStreamTrackLike,
  RtcConfigurationLike,
  RtcDataChannelLike,
  RtcIceServerLike,
  RtcPeerConnectionConstructor,
  RtcPeerConnectionLike,
  RtcRtpSenderLike,
  RtcSessionDescriptionLike,
} from './rtc-types.js';
