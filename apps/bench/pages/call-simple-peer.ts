// Subject (c): simple-peer 9.11 (its prebuilt browser bundle) over the same signaling server:
// the caller is the initiator, the callee makes its peer on the first signal and accepts at once.
// simple-peer always opens a data channel as initiator; the other subjects open one too.
// Its RTCPeerConnection is watched the same way as the other subjects' (`_pc`).
//
// With `?media=at-call` as its README shows: `await getUserMedia()` on "call" (the caller) or on
// the first signal (the callee, which holds the signals meanwhile), then the peer with the stream.

import SimplePeer from 'simple-peer/simplepeer.min.js';
import type SimplePeerType from 'simple-peer';
import { CallPage, DATA_CHANNEL_LABEL, RTC_CONFIGURATION, isSignaledCandidate, joinRoom, keepSignaledCandidatesInSdp } from './call-common.js';
import type { RawSignaling } from './call-common.js';

type Peer = SimplePeerType.Instance & { readonly _pc: RTCPeerConnection };

const page = new CallPage();

function start(signaling: RawSignaling): void {
  let peer: Peer | null = null;

  const createPeer = (initiator: boolean): Peer => {
    const created = new SimplePeer({
      initiator,
      stream: page.media!,
      config: RTC_CONFIGURATION,
      channelName: DATA_CHANNEL_LABEL,
      trickle: true,
      sdpTransform: keepSignaledCandidatesInSdp,
    }) as Peer;
    page.watchConnection(created._pc);
    created.on('signal', (data: SimplePeerType.SignalData) => {
      if (data.type === 'candidate' && data.candidate !== undefined && !isSignaledCandidate(data.candidate.candidate)) return;
      signaling.send(data);
    });
    created.on('track', (track: MediaStreamTrack) => page.showRemoteTrack(track));
    created.on('error', (error: Error) => page.problem(`simple-peer: ${error.message}`));
    return created;
  };

  let held: SimplePeerType.SignalData[] | null = null;
  signaling.onSignal((data) => {
    const signal = data as unknown as SimplePeerType.SignalData;
    if (peer === null && page.params.mediaAtCall) {
      // Media at call: the first signal opens the camera; signals wait for the peer meanwhile.
      if (held !== null) {
        held.push(signal);
        return;
      }
      held = [signal];
      page.openMedia().then(
        () => {
          peer = createPeer(false);
          for (const next of held!) peer.signal(next);
          held = null;
        },
        (error: unknown) => page.problem(`getUserMedia: ${String(error)}`),
      );
      return;
    }
    // The callee accepts automatically: its peer is made on the caller's first signal.
    peer ??= createPeer(false);
    peer.signal(signal);
  });

  page.setCall(() => {
    if (page.params.mediaAtCall) {
      page.openMedia().then(
        () => {
          peer = createPeer(true);
        },
        (error: unknown) => page.problem(`getUserMedia: ${String(error)}`),
      );
    } else peer = createPeer(true);
  });
}

page.publish(
  (async () => {
    const [signaling] = await Promise.all([joinRoom(page.params), page.openMediaBeforeCall()]);
    start(signaling);
    await signaling.remote;
  })(),
);
