import wrtc from '@roamhq/wrtc';
import { RTCPeerConnection as LibdatachannelPeerConnection } from 'node-datachannel/polyfill';
import { RTCPeerConnection as WeriftPeerConnection } from 'werift';
import type { MediaStreamTrack as WeriftTrack } from 'werift';
import { WebSocket } from 'ws';
import type { PartyEngine } from './party.js';

// The Node engines of the interop suite, as createParty needs them: each engine's own
// RTCPeerConnection class as it ships, the `ws` WebSocket, and for libwebrtc a synthetic camera.

const FRAME = { width: 160, height: 120 };
const FRAME_MS = 33;

/** Stops what the engines started (the synthetic cameras' timers). */
const stops: (() => void)[] = [];
export function stopNodeEngines(): void {
  for (const stop of stops.splice(0)) stop();
}

/** libwebrtc (@roamhq/wrtc): sends a grey 160×120 I420 video from its RTCVideoSource. */
export const libwebrtcEngine: PartyEngine = {
  RTCPeerConnection: wrtc.RTCPeerConnection,
  WebSocket,
  localVideo() {
    const source = new wrtc.nonstandard.RTCVideoSource();
    const data = new Uint8Array((FRAME.width * FRAME.height * 3) / 2).fill(128);
    const timer = setInterval(() => source.onFrame({ ...FRAME, data }), FRAME_MS);
    const track = source.createTrack();
    stops.push(() => {
      clearInterval(timer);
      track.stop();
    });
    return Promise.resolve({ track, stream: new wrtc.MediaStream([track]) });
  },
};

/** werift: receives media as RTP packets (it has no decoder), counted from `onReceiveRtp`. */
export const weriftEngine: PartyEngine = {
  RTCPeerConnection: WeriftPeerConnection as unknown as PartyEngine['RTCPeerConnection'],
  WebSocket,
  countRtp(track, onPacket) {
    (track as WeriftTrack).onReceiveRtp.subscribe(() => onPacket());
  },
};

/** libdatachannel through node-datachannel's W3C polyfill: data channels only. */
export const libdatachannelEngine: PartyEngine = {
  RTCPeerConnection: LibdatachannelPeerConnection as unknown as PartyEngine['RTCPeerConnection'],
  WebSocket,
};
