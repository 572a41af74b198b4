import { createParty } from '../party.js';
import type { Party, PartyConfig } from '../party.js';

// The interop suite's page: one side of a call in a browser (Chromium, Firefox), the same
// createParty as the Node engines use, with the browser's own RTCPeerConnection, WebSocket and
// fake camera. The suite drives it through `window.interop` (see browsers.ts).

/** What the page offers its driver. */
export interface InteropPage {
  start(config: PartyConfig): Promise<string>;
  party(): Party;
}

declare global {
  interface Window {
    interop?: InteropPage;
  }
}

let party: Party | undefined;

window.interop = {
  start(config) {
    party = createParty(config, {
      RTCPeerConnection,
      async localVideo() {
        const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240 }, audio: false });
        return { track: stream.getVideoTracks()[0]!, stream };
      },
    });
    return party.ready();
  },
  party() {
    if (party === undefined) throw new Error('interop page: start() first');
    return party;
  },
};
