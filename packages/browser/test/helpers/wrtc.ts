import wrtc from '@roamhq/wrtc';
import type { ScenarioPort } from '@parley/core/testing';
import { createRtcPort, loopbackOnly } from '../../src/index.js';
import type { BrowserRtcPort } from '../../src/index.js';

// Real peer connections from @roamhq/wrtc (libwebrtc in Node) for the real-stack tests. Every
// connection made here is loopback-only: no ICE servers unless a test passes its own (TURN on
// 127.0.0.1), and the tests' peers use `keepLoopbackCandidates` as their candidate filter.

export const { RTCPeerConnection } = wrtc;

/** A new libwebrtc RTCPeerConnection; `iceServers` default to none (loopback host candidates). */
export function createWrtcConnection(configuration: RTCConfiguration = {}): RTCPeerConnection {
  const init = configuration.iceServers === undefined ? loopbackOnly(configuration) : configuration;
  return new RTCPeerConnection(init);
}

/** A real port the scenario harness can add media to: createRtcPort plus transceiver access. */
export type RealScenarioPort = BrowserRtcPort & ScenarioPort;

export function createRealPort(configuration: RTCConfiguration = {}): RealScenarioPort {
  const port = createRtcPort(createWrtcConnection(configuration));
  return Object.assign(port, {
    addTransceiver: (kind: 'audio' | 'video') => port.pc.addTransceiver(kind),
    getTransceivers: () => port.pc.getTransceivers(),
  });
}
