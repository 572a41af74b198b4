import { randomFillSync } from 'node:crypto';
import wrtc from '@roamhq/wrtc';
import { round } from '../stats.js';
import { sleep } from '../timing.js';
import { connectedTo, inRoom, startMeshMember, whenStatus } from './members.js';
import type { MeshMember } from './members.js';

// What one member of a group call uploads at the demo's video settings (apps/demo's local
// media asks for 1280x720 at 30 frames/s; no bitrate cap). In a mesh every member encodes and
// sends its own copy to each other member, so its upload is (members - 1) times what one
// connection carries. Measured on one group pair in this process: a camera stand-in (wrtc's
// nonstandard RTCVideoSource, 1280x720 frames at 30/s: a detailed picture panning sideways,
// so the encoder finds motion in every frame), given once to the sender's group (addTrack), goes
// to the other member, which sends nothing; after a ramp-up (libwebrtc's congestion control
// starts low and climbs), the bytes the connection sent over a fixed window are read from
// getStats (webrtc-stats RTCTransportStats and RTCOutboundRtpStreamStats).

/** The demo's camera constraints (apps/demo/src/local-media.ts VIDEO). */
export const DEMO_VIDEO = { width: 1280, height: 720, frameRate: 30 } as const;

export interface UploadSettings {
  /** Time for congestion control to climb before the window. */
  readonly rampUpMs: number;
  /** The measured window. */
  readonly windowMs: number;
}

export function uploadSettingsFor(quick: boolean): UploadSettings {
  return quick ? { rampUpMs: 4000, windowMs: 4000 } : { rampUpMs: 10_000, windowMs: 10_000 };
}

/** What one connection carried over the window. */
export interface UploadMeasure {
  /** Everything the connection's transport sent (RTP, RTCP, DTLS, SCTP), kbit/s. */
  readonly transportKbps: number;
  /** The video stream's RTP payload and headers (outbound-rtp bytesSent + headerBytesSent), kbit/s. */
  readonly videoRtpKbps: number;
  /** What the encoder sent at the end of the window (it lowers resolution or rate when limited). */
  readonly frameWidth: number | null;
  readonly frameHeight: number | null;
  readonly framesPerSecond: number | null;
  /** webrtc-stats: none, cpu, bandwidth or other. */
  readonly qualityLimitationReason: string | null;
  readonly windowMs: number;
}

type Stats = Record<string, unknown>;

async function statsOf(pc: RTCPeerConnection): Promise<Stats[]> {
  const report = await pc.getStats();
  const all: Stats[] = [];
  report.forEach((stats: Stats) => all.push(stats));
  return all;
}

const numberOf = (stats: Stats | undefined, field: string): number => (typeof stats?.[field] === 'number' ? stats[field] : 0);
const numberOrNull = (stats: Stats | undefined, field: string): number | null => (typeof stats?.[field] === 'number' ? stats[field] : null);

interface Sample {
  readonly at: number;
  readonly transportBytes: number;
  readonly videoBytes: number;
  readonly video: Stats | undefined;
}

async function sample(pc: RTCPeerConnection): Promise<Sample> {
  const all = await statsOf(pc);
  const video = all.find((stats) => stats['type'] === 'outbound-rtp' && stats['kind'] === 'video');
  const transportBytes = all.filter((stats) => stats['type'] === 'transport').reduce((sum, stats) => sum + numberOf(stats, 'bytesSent'), 0);
  return { at: performance.now(), transportBytes, videoBytes: numberOf(video, 'bytesSent') + numberOf(video, 'headerBytesSent'), video };
}

/** Pixels between the random points of the texture: smooth shapes, not noise (which no camera sees). */
const TEXTURE_CELL = 8;

/** A `width` x `height` luma plane: random values every TEXTURE_CELL pixels, bilinear in between. */
function smoothTexture(width: number, height: number): Uint8Array {
  const columns = Math.ceil(width / TEXTURE_CELL) + 1;
  const rows = Math.ceil(height / TEXTURE_CELL) + 1;
  const points = randomFillSync(new Uint8Array(columns * rows));
  const plane = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const row = Math.floor(y / TEXTURE_CELL);
    const fy = (y % TEXTURE_CELL) / TEXTURE_CELL;
    for (let x = 0; x < width; x++) {
      const column = Math.floor(x / TEXTURE_CELL);
      const fx = (x % TEXTURE_CELL) / TEXTURE_CELL;
      const at = (c: number, r: number): number => points[r * columns + c]!;
      const top = at(column, row) * (1 - fx) + at(column + 1, row) * fx;
      const bottom = at(column, row + 1) * (1 - fx) + at(column + 1, row + 1) * fx;
      plane[y * width + x] = Math.round(top * (1 - fy) + bottom * fy);
    }
  }
  return plane;
}

/** A camera stand-in: frames of `DEMO_VIDEO`'s size at its rate, panning over a detailed texture. */
function startCamera(): { readonly track: MediaStreamTrack; stop(): void } {
  const { width, height, frameRate } = DEMO_VIDEO;
  const source = new wrtc.nonstandard.RTCVideoSource();
  const track = source.createTrack();
  // A texture twice as wide as the frame; each frame is a window on it, 4 pixels further right.
  const textureWidth = width * 2;
  const luma = smoothTexture(textureWidth, height);
  const frame = new Uint8Array((width * height * 3) / 2);
  frame.fill(128, width * height); // grey chroma
  let offset = 0;
  const timer = setInterval(() => {
    offset = (offset + 4) % width;
    for (let row = 0; row < height; row++) frame.set(luma.subarray(row * textureWidth + offset, row * textureWidth + offset + width), row * width);
    source.onFrame({ width, height, data: frame });
  }, 1000 / frameRate);
  return {
    track,
    stop: () => {
      clearInterval(timer);
      track.stop();
    },
  };
}

/** Measures what one connection of a group uploads with the demo's video (see the module comment). */
export async function measureUpload(url: string, room: string, settings: UploadSettings): Promise<UploadMeasure> {
  const camera = startCamera();
  const sender = startMeshMember({ url, room, name: 'sender' });
  const receiver = startMeshMember({ url, room, name: 'receiver' });
  const members: MeshMember[] = [sender, receiver];
  try {
    // Sent once to the group: the group adds it to every pair's connection (here the one pair).
    sender.group.addTrack(camera.track);
    const [senderId, receiverId] = await Promise.all([inRoom(sender, 1, 10_000), inRoom(receiver, 1, 10_000)]);
    receiver.group.join();
    sender.group.join();
    await Promise.all([
      whenStatus(sender, () => connectedTo(sender, [receiverId]), 'the sender connected', 30_000),
      whenStatus(receiver, () => connectedTo(receiver, [senderId]), 'the receiver connected', 30_000),
    ]);
    const pc = sender.group.rtcPorts().get(receiverId)?.pc;
    if (pc === undefined) throw new Error('the sender has no connection to the receiver');
    await sleep(settings.rampUpMs);
    const first = await sample(pc);
    await sleep(settings.windowMs);
    const last = await sample(pc);
    if (last.videoBytes <= first.videoBytes) throw new Error('the sender sent no video during the window');
    const kbps = (bytes: number): number => round((bytes * 8) / (last.at - first.at));
    return {
      transportKbps: kbps(last.transportBytes - first.transportBytes),
      videoRtpKbps: kbps(last.videoBytes - first.videoBytes),
      frameWidth: numberOrNull(last.video, 'frameWidth'),
      frameHeight: numberOrNull(last.video, 'frameHeight'),
      framesPerSecond: numberOrNull(last.video, 'framesPerSecond'),
      qualityLimitationReason: typeof last.video?.['qualityLimitationReason'] === 'string' ? last.video['qualityLimitationReason'] : null,
      windowMs: round(last.at - first.at),
    };
  } finally {
    for (const member of members) member.stop();
    camera.stop();
  }
}

/** A member's upload in a call of `members` people: one copy per other member. */
export function meshUploadKbps(perConnectionKbps: number, members: number): number {
  return round(perConnectionKbps * (members - 1));
}
