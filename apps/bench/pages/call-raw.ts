// Subject (a): a caller and a callee written the way the seed guides write them (createOffer,
// setLocalDescription, send; setRemoteDescription, createAnswer, setLocalDescription, send;
// trickle with addIceCandidate), made as fast as such code reasonably is: candidates that
// arrive before the remote description are queued and added right after it, nothing waits for
// gathering, and every step starts as soon as the one it needs is done.
//
// With `?media=at-call` the seed guides' order: `await getUserMedia()` on "call" (the caller) or
// on the offer (the callee), then the connection with the tracks.

import { CallPage, DATA_CHANNEL_LABEL, RTC_CONFIGURATION, isSignaledCandidate, joinRoom, keepSignaledCandidatesInSdp } from './call-common.js';
import type { RawSignaling } from './call-common.js';

const page = new CallPage();

function start(signaling: RawSignaling): void {
  let pc: RTCPeerConnection | null = null;
  let remoteDescriptionSet = false;
  const pending: RTCIceCandidateInit[] = [];

  const createPeerConnection = (): RTCPeerConnection => {
    const connection = new RTCPeerConnection(RTC_CONFIGURATION);
    page.watchConnection(connection);
    connection.addEventListener('icecandidate', (event) => {
      if (event.candidate !== null && event.candidate.candidate !== '' && isSignaledCandidate(event.candidate.candidate, page.params.candidateAddress)) {
        signaling.send({ kind: 'candidate', candidate: event.candidate.toJSON() });
      }
    });
    connection.addEventListener('track', (event) => page.showRemoteTrack(event.track));
    const stream = page.media!;
    for (const track of stream.getTracks()) connection.addTrack(track, stream);
    return connection;
  };

  const applyRemote = async (description: RTCSessionDescriptionInit): Promise<void> => {
    await pc!.setRemoteDescription(description);
    remoteDescriptionSet = true;
    for (const candidate of pending.splice(0)) await pc!.addIceCandidate(candidate);
  };

  signaling.onSignal((data) => {
    void (async () => {
      if (data['kind'] === 'description') {
        const description = data['description'] as RTCSessionDescriptionInit;
        if (description.type === 'offer') {
          // The callee answers at once (every subject's callee accepts automatically).
          if (page.params.mediaAtCall) await page.openMedia();
          pc = createPeerConnection();
          await applyRemote(description);
          const answer = await pc.createAnswer();
          await pc.setLocalDescription(answer);
          signaling.send({ kind: 'description', description: { type: answer.type, sdp: keepSignaledCandidatesInSdp(answer.sdp ?? '', page.params.candidateAddress) } });
        } else {
          await applyRemote(description);
        }
      } else if (data['kind'] === 'candidate') {
        const candidate = data['candidate'] as RTCIceCandidateInit;
        if (pc !== null && remoteDescriptionSet) await pc.addIceCandidate(candidate);
        else pending.push(candidate);
      }
    })().catch((error: unknown) => page.problem(`signal: ${String(error)}`));
  });

  page.setCall(() => {
    void (async () => {
      if (page.params.mediaAtCall) await page.openMedia();
      pc = createPeerConnection();
      pc.createDataChannel(DATA_CHANNEL_LABEL);
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      signaling.send({ kind: 'description', description: { type: offer.type, sdp: keepSignaledCandidatesInSdp(offer.sdp ?? '', page.params.candidateAddress) } });
    })().catch((error: unknown) => page.problem(`call: ${String(error)}`));
  });
}

page.publish(
  (async () => {
    const [signaling] = await Promise.all([joinRoom(page.params), page.openMediaBeforeCall()]);
    start(signaling);
    await signaling.remote;
  })(),
);
