import { checkChunk, chunkCount, makeChunk } from '../src/data-channel/plan.js';
import type { ConnectOptions, ReceiverReport, SenderReport } from '../src/data-channel/plan.js';
import { now, probeSender } from './data-channel-probe.js';
import type { SenderSide, ReceiverSide } from './data-channel-sides.js';

// The raw subject: an RTCPeerConnection and its RTCDataChannel by hand, signaling with the
// parley-signaling server's join/signal frames over a plain WebSocket. The transfer loop is the
// standard one (webrtc-pc §6.2): send while the chunk fits under the high-water mark, then wait for
// `bufferedamountlow` at the low-water mark.

type Frame =
  | { readonly type: 'welcome'; readonly id: string; readonly peers: readonly { readonly id: string; readonly name: string }[] }
  | { readonly type: 'signal'; readonly from: string; readonly data: SignalData }
  | { readonly type: string };

type SignalData =
  | { readonly kind: 'description'; readonly description: RTCSessionDescriptionInit }
  | { readonly kind: 'candidate'; readonly candidate: RTCIceCandidateInit };

interface RawSignaling {
  readonly welcome: Extract<Frame, { type: 'welcome' }>;
  send(to: string, data: SignalData): void;
  onSignal(handler: (from: string, data: SignalData) => void): void;
  close(): void;
}

function joinRoom(url: string, room: string, name: string): Promise<RawSignaling> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    let handler: (from: string, data: SignalData) => void = () => {};
    socket.onerror = () => reject(new Error(`signaling socket ${url} failed`));
    socket.onopen = () => socket.send(JSON.stringify({ type: 'join', room, name }));
    socket.onmessage = (event: MessageEvent<string>) => {
      const frame = JSON.parse(event.data) as Frame;
      if (frame.type === 'welcome') {
        resolve({
          welcome: frame as Extract<Frame, { type: 'welcome' }>,
          send: (to, data) => socket.send(JSON.stringify({ type: 'signal', to, data })),
          onSignal: (next) => {
            handler = next;
          },
          close: () => socket.close(),
        });
      } else if (frame.type === 'signal') {
        const { from, data } = frame as Extract<Frame, { type: 'signal' }>;
        handler(from, data);
      } else if (frame.type === 'error') {
        reject(new Error(`signaling error: ${event.data}`));
      }
    };
  });
}

/** Loopback only, as docs/architecture.md's browser tests: the candidate filter every subject uses. */
function isLoopback(candidate: RTCIceCandidate): boolean {
  return candidate.address === '127.0.0.1';
}

/** Applies descriptions and candidates in arrival order; candidates wait for the remote description. */
function wireConnection(pc: RTCPeerConnection, signaling: RawSignaling, remote: () => string | null, setRemote: (id: string) => void): void {
  pc.onicecandidate = ({ candidate }) => {
    const to = remote();
    if (candidate && to && isLoopback(candidate)) signaling.send(to, { kind: 'candidate', candidate: candidate.toJSON() });
  };
  let chain = Promise.resolve();
  signaling.onSignal((from, data) => {
    setRemote(from);
    chain = chain.then(async () => {
      if (data.kind === 'description') {
        await pc.setRemoteDescription(data.description);
        if (data.description.type === 'offer') {
          const answer = await pc.createAnswer();
          await pc.setLocalDescription(answer);
          signaling.send(from, { kind: 'description', description: { type: answer.type, sdp: answer.sdp ?? '' } });
        }
      } else {
        await pc.addIceCandidate(data.candidate);
      }
    });
  });
}

export async function rawSender(options: ConnectOptions): Promise<SenderSide> {
  const { plan } = options;
  const signaling = await joinRoom(options.signalingUrl, options.room, 'sender');
  const receiver = signaling.welcome.peers.find((peer) => peer.name === 'receiver');
  if (!receiver) throw new Error('raw sender: the receiver is not in the room');
  const pc = new RTCPeerConnection({ iceServers: [] });
  wireConnection(pc, signaling, () => receiver.id, () => {});
  const channel = pc.createDataChannel('bench');
  channel.binaryType = 'arraybuffer';
  const probe = probeSender(channel);
  const opened = new Promise<void>((resolve) => channel.addEventListener('open', () => resolve(), { once: true }));
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  signaling.send(receiver.id, { kind: 'description', description: { type: offer.type, sdp: offer.sdp ?? '' } });
  await opened;

  return {
    transfer() {
      return new Promise<SenderReport>((resolve) => {
        const count = chunkCount(plan);
        channel.onmessage = () => resolve(probe.finish());
        channel.bufferedAmountLowThreshold = plan.lowWaterMark;
        let next = 0;
        const pump = (): void => {
          while (next < count) {
            if (channel.bufferedAmount + plan.chunkBytes > plan.highWaterMark) return;
            channel.send(makeChunk(plan, next++));
          }
          channel.onbufferedamountlow = null;
          probe.handedOver();
        };
        channel.onbufferedamountlow = pump;
        probe.start();
        pump();
      });
    },
    close() {
      pc.close();
      signaling.close();
    },
  };
}

export async function rawReceiver(options: ConnectOptions): Promise<ReceiverSide> {
  const { plan } = options;
  const signaling = await joinRoom(options.signalingUrl, options.room, 'receiver');
  let sender: string | null = null;
  const pc = new RTCPeerConnection({ iceServers: [] });
  wireConnection(pc, signaling, () => sender, (id) => {
    sender = id;
  });
  const received = new Promise<ReceiverReport>((resolve, reject) => {
    pc.ondatachannel = ({ channel }) => {
      channel.binaryType = 'arraybuffer';
      const count = chunkCount(plan);
      let bytes = 0;
      let messages = 0;
      channel.onmessage = ({ data }: MessageEvent<ArrayBuffer>) => {
        const problem = checkChunk(plan, messages, data);
        if (problem !== null) return reject(new Error(`raw receiver: ${problem}`));
        bytes += data.byteLength;
        messages += 1;
        if (messages === count) {
          const completedAt = now();
          channel.send('done');
          resolve({ completedAt, bytes, messages });
        }
      };
    };
  });
  return {
    received: () => received,
    close() {
      pc.close();
      signaling.close();
    },
  };
}
