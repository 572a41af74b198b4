// Subject (b): Parley as an app uses it (apps/demo/src/app.ts): a signaling client, one call
// line per remote peer made as soon as the peer is known, an RTCPeerConnection made in
// `createRtc` with the local tracks added, wrapped by createRtcPort, candidates filtered with
// keepCandidateAddresses (127.0.0.1, or `?address=`). The callee accepts as soon as the call rings. The caller's createRtc
// runs at call(): its offer and candidates follow the invite while it rings. With
// `?line=prepared` the caller's line is prepared when the page is ready (`call.prepare()`):
// createRtc, the offer and the gathering happen before "call", which only sends them.
//
// With `?media=at-call`, "early transport": createRtc opens the camera and microphone and builds
// the connection at once, without waiting for them. The caller adds one sendrecv transceiver per
// kind; the callee (createRtc runs on accept, before the held offer is applied) turns the
// transceivers the offer creates to sendrecv in their `track` event, which comes before the
// answer is made. Each sender gets its track with replaceTrack when getUserMedia resolves, which
// needs no renegotiation, so negotiation and ICE overlap the camera start.

import { filter, firstValueFrom, tap } from 'rxjs';
import { createCall, keepCandidateAddresses } from '@parley/core';
import type { Call, PeerMessage, SignalingPort } from '@parley/core';
import { createRtcPort } from '@parley/browser';
import type { BrowserRtcPort } from '@parley/browser';
import { createSignalingClient } from '@parley/signaling-ws/client';
import { CallPage, DATA_CHANNEL_LABEL, RTC_CONFIGURATION } from './call-common.js';

const page = new CallPage();

/** What the demo's createRtc does: a connection with the local tracks, wrapped as a port. */
function makeRtc(): BrowserRtcPort {
  const pc = new RTCPeerConnection(RTC_CONFIGURATION);
  page.watchConnection(pc);
  if (page.params.mediaAtCall) return earlyTransport(pc);
  const stream = page.media!;
  for (const track of stream.getTracks()) pc.addTrack(track, stream);
  return createRtcPort(pc);
}

/** Media at call: the connection now, the tracks on its senders when the camera is open. */
function earlyTransport(pc: RTCPeerConnection): BrowserRtcPort {
  const media = page.openMedia();
  const attach = (transceiver: RTCRtpTransceiver, kind: string): void => {
    media
      .then(async (stream) => {
        const track = stream.getTracks().find((t) => t.kind === kind);
        if (track === undefined) throw new Error(`no local ${kind} track`);
        await transceiver.sender.replaceTrack(track);
        page.mark(`track-attached-${kind}`);
      })
      .catch((error: unknown) => {
        if (pc.connectionState !== 'closed') page.problem(`media at call (${kind}): ${String(error)}`);
      });
  };
  if (page.params.role === 'caller') {
    for (const kind of ['audio', 'video']) attach(pc.addTransceiver(kind, { direction: 'sendrecv' }), kind);
  } else {
    // The remote offer makes recvonly transceivers; sendrecv before the answer is created.
    pc.addEventListener('track', (event) => {
      if (event.transceiver.direction === 'recvonly') event.transceiver.direction = 'sendrecv';
      attach(event.transceiver, event.track.kind);
    });
  }
  return createRtcPort(pc);
}

/** What a signaling message is, for the marks: `offer`, `answer`, `candidate`, `invite`, ... */
function messageName(message: PeerMessage): string {
  return message.kind === 'description' ? message.description.type : message.kind;
}

/** The port with a mark for the first of each kind of message sent (`sent-offer`) and received (`got-offer`). */
function marked(port: SignalingPort): SignalingPort {
  return {
    send: (message) => {
      page.markOnce(`sent-${messageName(message)}`);
      port.send(message);
    },
    messages$: port.messages$.pipe(tap((message) => page.markOnce(`got-${messageName(message)}`))),
  };
}

function line(signalingPortFor: (id: string) => ReturnType<ReturnType<typeof createSignalingClient>['portFor']>, remoteId: string): Call {
  const call = createCall({
    signaling: marked(signalingPortFor(remoteId)),
    createRtc: makeRtc,
    peer: { candidateFilter: keepCandidateAddresses(page.params.candidateAddress), dataChannels: [{ label: DATA_CHANNEL_LABEL }] },
    media: { audio: true, video: true },
  });
  call.events$.subscribe((event) => {
    if (event.type === 'track') page.showRemoteTrack(event.track as MediaStreamTrack);
  });
  call.status$.subscribe((status) => {
    if (!(`call-${status.state}` in page.marks)) page.mark(`call-${status.state}`);
    if (status.connection?.connectionState === 'connected' && !('call-status-connected' in page.marks)) page.mark('call-status-connected');
    if (status.state === 'incoming') call.accept();
  });
  page.setCall(() => call.call());
  if (page.params.preparedLine && page.params.role === 'caller') call.prepare();
  return call;
}

page.publish(
  (async () => {
    const client = createSignalingClient({ url: page.params.signalingUrl, room: page.params.room, name: page.params.role });
    const [peers] = await Promise.all([firstValueFrom(client.peers$.pipe(filter((list) => list.length > 0))), page.openMediaBeforeCall()]);
    line((id) => client.portFor(id), peers[0]!.id);
  })(),
);
