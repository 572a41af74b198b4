import { filter, firstValueFrom, map } from 'rxjs';
import { createPeer } from '@parley/core';
import type { DataChannel, Peer } from '@parley/core';
import { createRtcPort, keepLoopbackCandidates } from '@parley/browser';
import { createSignalingClient } from '@parley/signaling-ws/client';
import type { SignalingClient } from '@parley/signaling-ws/client';
import { checkChunk, chunkCount, makeChunk } from '../src/data-channel/plan.js';
import type { ConnectOptions, ReceiverReport, SenderReport } from '../src/data-channel/plan.js';
import { now, probeSender } from './data-channel-probe.js';
import type { ReceiverSide, SenderSide } from './data-channel-sides.js';

// The Parley subjects, written as an app would: the signaling client joins the room, createPeer
// runs perfect negotiation over a createRtcPort port, and every chunk goes through the data
// channel handle's send() (the machine's send queue and bufferedamountlow backpressure, high
// 1 MiB and low 256 KiB by default: the same marks the raw subject uses).

/** Joins the room; resolves once joined (signaling set-up is not timed). */
async function join(options: ConnectOptions, name: string): Promise<SignalingClient> {
  const client = createSignalingClient({ url: options.signalingUrl, room: options.room, name });
  await firstValueFrom(client.state$.pipe(filter((state) => state === 'joined')));
  return client;
}

/** Waits for `other` in the room, then starts a peer with it (the sender is the impolite side). */
async function peerWith(client: SignalingClient, name: string, other: string): Promise<{ peer: Peer; pc: RTCPeerConnection }> {
  const remote = await firstValueFrom(
    client.peers$.pipe(
      map((peers) => peers.find((peer) => peer.name === other)),
      filter((peer) => peer !== undefined),
    ),
  );
  const pc = new RTCPeerConnection({ iceServers: [] });
  const peer = createPeer({
    rtc: createRtcPort(pc),
    signaling: client.portFor(remote.id),
    polite: name === 'receiver',
    candidateFilter: keepLoopbackCandidates,
  });
  return { peer, pc };
}

/**
 * Sends through the handle, the app pacing itself on its bufferedAmount (the machine's queue plus
 * the channel's buffer) and resuming on bufferedAmountLow$: the raw loop's shape.
 */
function paced(channel: DataChannel, options: ConnectOptions, onHandedOver: () => void): void {
  const { plan } = options;
  const count = chunkCount(plan);
  let next = 0;
  const pump = (): void => {
    while (next < count && channel.bufferedAmount <= plan.highWaterMark) channel.send(makeChunk(plan, next++));
    if (next === count) {
      subscription.unsubscribe();
      onHandedOver();
    }
  };
  const subscription = channel.bufferedAmountLow$.subscribe(pump);
  pump();
}

/** Hands every chunk to the handle at once: the machine's queue holds them and its backpressure paces the channel. */
function queuedAtOnce(channel: DataChannel, options: ConnectOptions, onHandedOver: () => void): void {
  const { plan } = options;
  const count = chunkCount(plan);
  for (let i = 0; i < count; i++) channel.send(makeChunk(plan, i));
  onHandedOver();
}

export async function parleySender(options: ConnectOptions): Promise<SenderSide> {
  const client = await join(options, 'sender');
  const { peer, pc } = await peerWith(client, 'sender', 'receiver');
  // The probe reads the RTCDataChannel itself; the peer creates it through the port.
  const created: RTCDataChannel[] = [];
  const createDataChannel = pc.createDataChannel.bind(pc);
  pc.createDataChannel = (label: string, init?: RTCDataChannelInit) => {
    const channel = createDataChannel(label, init);
    created.push(channel);
    return channel;
  };
  const channel = peer.createDataChannel('bench');
  const rtcChannel = created[0];
  if (!rtcChannel) throw new Error('parley sender: the peer created no RTCDataChannel');
  const probe = probeSender(rtcChannel);
  // createPeer's channels run with the machine's default marks: the plan must name those.
  const { highWaterMark, lowWaterMark } = channel.actor.getSnapshot().context;
  if (highWaterMark !== options.plan.highWaterMark || lowWaterMark !== options.plan.lowWaterMark) {
    throw new Error(`parley sender: the actor's water marks are ${highWaterMark}/${lowWaterMark}, the plan's ${options.plan.highWaterMark}/${options.plan.lowWaterMark}`);
  }
  await firstValueFrom(channel.state$.pipe(filter((state) => state === 'open')));
  return {
    transfer() {
      return new Promise<SenderReport>((resolve) => {
        const done = channel.message$.subscribe(() => {
          done.unsubscribe();
          resolve(probe.finish());
        });
        probe.start();
        (options.subject === 'parleyQueued' ? queuedAtOnce : paced)(channel, options, () => probe.handedOver());
      });
    },
    close() {
      peer.close();
      client.close();
    },
  };
}

export async function parleyReceiver(options: ConnectOptions): Promise<ReceiverSide> {
  const { plan } = options;
  const client = await join(options, 'receiver');
  let peer: Peer | undefined;
  const received = peerWith(client, 'receiver', 'sender').then(
    (made) =>
      new Promise<ReceiverReport>((resolve, reject) => {
        peer = made.peer;
        const subscription = made.peer.events$.subscribe((event) => {
          if (event.type !== 'datachannel') return;
          subscription.unsubscribe();
          const channel = event.channel;
          const count = chunkCount(plan);
          let bytes = 0;
          let messages = 0;
          channel.message$.subscribe((data) => {
            if (typeof data === 'string') return reject(new Error('parley receiver: a text message arrived'));
            const problem = checkChunk(plan, messages, data);
            if (problem !== null) return reject(new Error(`parley receiver: ${problem}`));
            bytes += data.byteLength;
            messages += 1;
            if (messages === count) {
              const completedAt = now();
              channel.send('done');
              resolve({ completedAt, bytes, messages });
            }
          });
        });
      }),
  );
  return {
    received: () => received,
    close() {
      peer?.close();
      client.close();
    },
  };
}
