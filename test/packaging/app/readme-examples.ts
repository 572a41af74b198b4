// The README's examples for the browser and for call control, as a user pastes them (the free
// names they use are declared at the top). Type-checked only (strict, nodenext, DOM lib,
// skipLibCheck off): they need a browser to run.
import { createCall, createPeer, keepCandidateAddresses } from '@parley/core';
import type { SignalingPort } from '@parley/core';
import { attachStream, createRtcPort, getUserMedia, setSenderMuted, stats$, switchCamera } from '@parley/browser';
import { createSignalingClient } from '@parley/signaling-ws/client';
import { createSignalingServer, jsonLineLogger, silentLogger } from '@parley/signaling-ws/server';

declare const signaling: SignalingPort;
declare const polite: boolean;
declare const iceServers: RTCIceServer[];
declare const previewVideo: HTMLVideoElement;
declare const remoteVideo: HTMLVideoElement;
declare const newTrack: MediaStreamTrack;
declare function render(...values: unknown[]): void;
declare function showRemote(track: unknown, streams: readonly unknown[]): void;
declare function makeConnectionWithCamera(): RTCPeerConnection;

export async function usingIt(): Promise<void> {
  const client = createSignalingClient({ url: 'wss://signaling.example.com', room: 'demo', name: 'ada' });
  const peer = createPeer({
    rtc: createRtcPort(new RTCPeerConnection({ iceServers })),
    signaling: client.portFor('peer-id'),
    polite: true,
    dataChannels: [{ label: 'chat' }],
    candidateFilter: keepCandidateAddresses('127.0.0.1'),
  });
  peer.events$.subscribe((event) => {
    if (event.type === 'track') showRemote(event.track, event.streams);
    if (event.type === 'message') console.log(event.label, event.data);
    if (event.type === 'connectionstatechange') console.log(event.state);
  });
  peer.state$.subscribe((snapshot) => render(snapshot.context.connectionState));

  const line = createCall({
    signaling: client.portFor('remote-id'),
    createRtc: () => createRtcPort(makeConnectionWithCamera()),
    peer: { dataChannels: [{ label: 'chat' }] },
  });
  line.status$.subscribe((s) => render(s.state, s.connection?.connectionState, s.end?.reason));
  line.events$.subscribe((e) => e.type === 'message' && console.log(e.session, e.label, e.data));
  line.call({ audio: true, video: true });
}

export async function inTheBrowser(): Promise<void> {
  const local = await getUserMedia({ video: true, audio: true });
  const pc = new RTCPeerConnection({ iceServers });
  const senders = local.getTracks().map((track) => pc.addTrack(track, local));
  await attachStream(previewVideo, local, { muted: true });
  const peer = createPeer({ rtc: createRtcPort(pc), signaling, polite });
  peer.events$.subscribe((e) => e.type === 'track' && void attachStream(remoteVideo, e.streams[0] as MediaStream));
  const [audioSender, videoSender] = senders;
  if (audioSender !== undefined) await setSenderMuted(audioSender, true);
  if (videoSender !== undefined) await switchCamera(videoSender, newTrack);
  stats$(pc, { intervalMs: 1000 }).subscribe((s) => render(s.roundTripTimeMs, s.bitrateInBps, s.bitrateOutBps, s.packetsLost, s.candidatePairType));
  createRtcPort(pc).pc.getTransceivers(); // the port keeps the connection's own type
}

export async function serverInCode(): Promise<void> {
  const quiet = await createSignalingServer({ port: 0, logger: silentLogger });
  const logged = await createSignalingServer({ port: 0, logger: jsonLineLogger });
  console.log(quiet.url, logged.stats().connections);
  await Promise.all([quiet.close(), logged.close()]);
}
