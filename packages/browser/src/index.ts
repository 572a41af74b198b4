// @parley/browser: the core RTC port over any W3C RTCPeerConnection (browsers, and
// @roamhq/wrtc in Node), plus media and stats helpers for apps.
export { createRtcPort } from './rtc-port.js';
export type { BrowserRtcPort } from './rtc-port.js';
export { createDataChannelPort } from './data-channel-port.js';
export { keepLoopbackCandidates, loopbackOnly } from './loopback.js';
