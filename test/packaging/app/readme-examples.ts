// The README's examples for the browser and for call control, as a user pastes them (the free
// names they use are declared at the top). Type-checked only (strict, nodenext, DOM lib,
// skipLibCheck off): they need a browser to run.
import { createCall, createPeer, keepCandidateAddresses } from '@parley/core';
import type { SignalingPort } from '@parley/core';
import { attachStream, createRtcPort, getUserMedia, keepLoopbackCandidates, loopbackOnly, setSenderMuted, stats$, switchCamera } from '@parley/browser';
import { compileHints } from '@parley/browser/compile-hints';
import { createSignalingClient } from '@parley/signaling-ws/client';
import { createSignalingServer, jsonLineLogger, silentLogger } from '@parley/signaling-ws/server';
import WebSocket from 'ws';

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

// packages/core/README.md, "A minimal example".
export function coreReadme(): void {
  const client = createSignalingClient({ url: 'wss://signaling.example.com', room: 'demo', name: 'ada' });
  client.peers$.subscribe((peers) => {
    const remote = peers[0];
    if (remote === undefined) return;
    const peer = createPeer({
      rtc: createRtcPort(new RTCPeerConnection()),
      signaling: client.portFor(remote.id),
      polite: remote.name < 'ada',
      dataChannels: [{ label: 'chat' }],
    });
    peer.events$.subscribe((event) => {
      if (event.type === 'message') console.log(event.label, event.data);
      if (event.type === 'connectionstatechange') console.log(event.state);
    });
  });
}

// packages/browser/README.md, "A minimal example".
export async function browserReadme(): Promise<void> {
  const local = await getUserMedia({ video: true, audio: true });
  const pc = new RTCPeerConnection({ iceServers });
  for (const track of local.getTracks()) pc.addTrack(track, local);
  const peer = createPeer({ rtc: createRtcPort(pc), signaling, polite });
  peer.events$.subscribe((e) => {
    if (e.type === 'track' && e.streams[0] !== undefined) void attachStream(remoteVideo, e.streams[0] as MediaStream);
  });
}

// packages/signaling-ws/README.md, "A minimal example", and the README's client.
export async function signalingReadme(): Promise<void> {
  const server = await createSignalingServer({ port: 0, logger: jsonLineLogger });
  const client = createSignalingClient({ url: server.url, room: 'demo', name: 'ada', webSocket: WebSocket });
  client.peers$.subscribe((peers) => console.log(peers));
  client.peerLeft$.subscribe((peer) => console.log(`${peer.name} left`));
  client.close();
  await server.close();
}

// The README's "In Node, with @roamhq/wrtc" with the DOM's RTCPeerConnection type (what
// `import wrtc from '@roamhq/wrtc'` re-exports).
export function inNode(): void {
  const rtc = createRtcPort(new RTCPeerConnection(loopbackOnly()));
  const peer = createPeer({ rtc, signaling, polite: false, candidateFilter: keepLoopbackCandidates });
  peer.close();
}

/** "Bundling for the first call": the plugin as a Vite config lists it (Vite itself is not installed here). */
export const viteConfig = { plugins: [compileHints()] };
