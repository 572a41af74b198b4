import { RTCPeerConnection as LibdatachannelPeerConnection } from 'node-datachannel/polyfill';
import { describe, expect, it } from 'vitest';
import type { RtcPortEvent } from '@parley/core';
import { engineOptions } from '../src/index.js';
import { waitFor } from './helpers/wait.js';
import { ofType, record, trickleUntilConnected, usePorts } from './helpers/ports.js';
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

  it('reports its candidates as offerer only once the answer is applied, so that DTLS never starts before libdatachannel holds the remote fingerprint', async () => {
    // libdatachannel 0.24.5 starts DTLS as soon as ICE connects, and setRemoteDescription hands
    // the answer to ICE before it stores the fingerprint: a peer that already reached our
    // candidate connects at once and its certificate is checked against none (see rtc-port.ts).
    const caller = adopt(new LibdatachannelPeerConnection(engineOptions.libdatachannel()));
    const callee = adopt(new LibdatachannelPeerConnection(engineOptions.libdatachannel()));
    const callerEvents = record(caller);
    const calleeEvents = record(callee);
    // The engine's signaling state as each candidate is reported. Its signalingstatechange
    // events cannot tell: node-datachannel delivers each kind of callback through a thread-safe
    // function of its own, so under load they may come after the candidates that follow them.
    const signalingAtCandidates: string[] = [];
    caller.events$.subscribe((event) => {
      if (event.type === 'icecandidate') signalingAtCandidates.push(caller.signalingState);
    });
    caller.createDataChannel('chat');
    const offer = await caller.createOffer();
    await caller.setLocalDescription(offer);
    await callee.setRemoteDescription(offer);
    const answer = await callee.createAnswer();
    await callee.setLocalDescription(answer);
    // The polyfill lists each candidate it has dispatched as an icecandidate event.
    const dispatched = (caller.pc as unknown as { readonly ext_localCandidates: readonly unknown[] }).ext_localCandidates;
    await waitFor(() => dispatched.length > 0, "the caller's first candidate event");
    expect(caller.signalingState).toBe('have-local-offer');
    expect(ofType(callerEvents, 'icecandidate')).toEqual([]);

    await caller.setRemoteDescription(answer);
    await waitFor(() => ofType(callerEvents, 'icecandidate').some(({ candidate }) => candidate !== null), "the caller's candidates");
    expect(signalingAtCandidates.length).toBeGreaterThan(0);
    expect(signalingAtCandidates.every((state) => state === 'stable')).toBe(true);
    await trickleUntilConnected(caller, callee, callerEvents, calleeEvents);
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
