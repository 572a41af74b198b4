// Test helper: RTC ports over real engines, closed after each test, with their events recorded.
// Shared by rtc-port.test.ts (libwebrtc) and rtc-port.engines.test.ts (every Node engine).

import { afterEach } from 'vitest';
import type { RtcPortEvent } from '@parley/core';
import { createRtcPort, keepLoopbackCandidates } from '../../src/index.js';
import type { BrowserRtcPort } from '../../src/index.js';

/**
 * For a test file that wraps connections: `adopt(pc)` is `createRtcPort(pc)`, and every port it
 * made is closed after each test (registers an `afterEach`).
 */
export function usePorts(): { adopt(pc: unknown): BrowserRtcPort } {
  const ports: BrowserRtcPort[] = [];
  afterEach(() => {
    for (const port of ports.splice(0)) port.close();
  });
  return {
    adopt(pc) {
      const port = createRtcPort(pc as RTCPeerConnection);
      ports.push(port);
      return port;
    },
  };
}

/** Collects every event of the port from now on. */
export function record(port: BrowserRtcPort): RtcPortEvent[] {
  const events: RtcPortEvent[] = [];
  port.events$.subscribe((event) => events.push(event));
  return events;
}

/** The recorded events of one type. */
export const ofType = <T extends RtcPortEvent['type']>(events: readonly RtcPortEvent[], type: T) =>
  events.filter((event): event is Extract<RtcPortEvent, { type: T }> => event.type === type);

/**
 * Trickles the loopback candidates each side reports (recorded in `eventsA` and `eventsB`) to the
 * other until both are connected; the descriptions are exchanged already.
 */
export async function trickleUntilConnected(a: BrowserRtcPort, b: BrowserRtcPort, eventsA: RtcPortEvent[], eventsB: RtcPortEvent[]): Promise<void> {
  const trickle = (from: RtcPortEvent[], to: BrowserRtcPort) => {
    let sent = 0;
    return async () => {
      const candidates = ofType(from, 'icecandidate').slice(sent);
      sent += candidates.length;
      for (const { candidate } of candidates) {
        if (candidate === null || keepLoopbackCandidates(candidate)) await to.addIceCandidate(candidate);
      }
    };
  };
  const toB = trickle(eventsA, b);
  const toA = trickle(eventsB, a);
  // Wait for the connectionstatechange events, not the attribute: libwebrtc updates
  // pc.connectionState on its own thread before the event reaches JavaScript, whereas
  // webrtc-pc ("update the connection state") sets both in one task. Polling the attribute
  // raced the event (it failed once in CI: the event log had no 'connected' yet).
  const reachedConnected = (events: RtcPortEvent[]) =>
    ofType(events, 'connectionstatechange').some((event) => event.state === 'connected');
  const deadline = Date.now() + 5000;
  while (!reachedConnected(eventsA) || !reachedConnected(eventsB)) {
    if (Date.now() > deadline) throw new Error(`not connected: A ${a.connectionState}, B ${b.connectionState}`);
    await toB();
    await toA();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * Offer/answer by hand through the ports (explicit descriptions only), then the candidates
 * (`trickleUntilConnected`) until both are connected.
 */
export async function connect(a: BrowserRtcPort, b: BrowserRtcPort, eventsA: RtcPortEvent[], eventsB: RtcPortEvent[]): Promise<void> {
  const offer = await a.createOffer();
  await a.setLocalDescription(offer);
  await b.setRemoteDescription(offer);
  const answer = await b.createAnswer();
  await b.setLocalDescription(answer);
  await a.setRemoteDescription(answer);
  await trickleUntilConnected(a, b, eventsA, eventsB);
}
