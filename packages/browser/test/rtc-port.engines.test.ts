import { RTCPeerConnection as LibdatachannelPeerConnection } from 'node-datachannel/polyfill';
import { describe, expect, it } from 'vitest';
import type { RtcPortEvent } from '@parley/core';
import { engineOptions } from '../src/index.js';
import { waitFor } from './helpers/wait.js';
import { record, usePorts } from './helpers/ports.js';
import { createWrtcConnection } from './helpers/wrtc.js';

// What createRtcPort evens out between engines (README, "Interop"), each on the real engine that
// departs from W3C, in this process: node-datachannel's polyfill (libdatachannel) and libwebrtc
// (@roamhq/wrtc). The interop suite (test/interop) found each of these in a real call.

const { adopt } = usePorts();

const negotiationNeeded = (events: readonly RtcPortEvent[]): number => events.filter((event) => event.type === 'negotiationneeded').length;

describe('createRtcPort over node-datachannel (polyfill)', () => {
  it('reports negotiationneeded for the first data channel, which the polyfill never fires (webrtc-pc §6.1)', async () => {
    const port = adopt(new LibdatachannelPeerConnection(engineOptions.libdatachannel()));
    const events = record(port);
    port.createDataChannel('chat');
    await waitFor(() => negotiationNeeded(events) === 1, 'negotiationneeded for the first channel');
    port.createDataChannel('second');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(negotiationNeeded(events)).toBe(1);
  });
});

describe('createRtcPort over libwebrtc (@roamhq/wrtc)', () => {
  it("accepts a candidate with an sdpMid and a null sdpMLineIndex (libdatachannel's form; webrtc-pc §4.8.1.1)", async () => {
    const a = adopt(createWrtcConnection());
    const b = adopt(createWrtcConnection());
    const eventsA = record(a);
    a.createDataChannel('chat');
    const offer = await a.createOffer();
    await a.setLocalDescription(offer);
    await b.setRemoteDescription(offer);
    await waitFor(() => eventsA.some((event) => event.type === 'icecandidate' && event.candidate !== null), "A's first candidate");
    const first = eventsA.find((event): event is Extract<RtcPortEvent, { type: 'icecandidate' }> => event.type === 'icecandidate' && event.candidate !== null)!;
    await expect(b.addIceCandidate({ candidate: first.candidate!.candidate, sdpMid: first.candidate!.sdpMid ?? '0', sdpMLineIndex: null })).resolves.toBeUndefined();
  });
});
