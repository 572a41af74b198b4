// The message mix every subject relays: one negotiation is an offer and an answer (SDP of about
// 4 KiB each) and ten trickled ICE candidates (about 200 B each), five from each side. The data
// objects are the same bytes for every subject; only the protocol envelope around them differs.
//
// Each data object starts with a fixed-width send timestamp, `{"t":"<12 digits>",`: the sender
// writes it just before `send`, the receiver (in the same process, on the same clock) reads it
// back without parsing the whole frame.

/** Who sends a step of the negotiation: the caller (`a`) or the callee (`b`). */
export type Side = 'a' | 'b';
export type MessageKind = 'offer' | 'answer' | 'candidate';

export interface MixStep {
  readonly from: Side;
  readonly kind: MessageKind;
  /** The data object as JSON text with the timestamp digits zeroed (`STAMP_ZERO`). */
  readonly data: string;
}

/** Width of the timestamp field: microseconds of `performance.now()`, zero-padded. */
export const STAMP_DIGITS = 12;
export const STAMP_ZERO = '0'.repeat(STAMP_DIGITS);
/** What every data object starts with; the timestamp digits follow it. */
export const STAMP_MARKER = '{"t":"';
export const STAMP_MARKER_BYTES = Buffer.from(STAMP_MARKER);

/** Target sizes of the data objects (JSON text, bytes). */
export const SDP_DATA_BYTES = 4096;
export const CANDIDATE_DATA_BYTES = 200;

const SESSION = 'c7f3a9d2-5b1e-4f08-9a6c-2e4d8b0f1a37';

/** A plausible browser SDP (Chromium-like audio + video + data), cut to `targetBytes` of data JSON. */
function sdp(type: 'offer' | 'answer', targetBytes: number): string {
  const setup = type === 'offer' ? 'actpass' : 'active';
  const head = [
    'v=0',
    `o=- 46117326${type === 'offer' ? '81' : '94'}263874125 2 IN IP4 127.0.0.1`,
    's=-',
    't=0 0',
    'a=group:BUNDLE 0 1 2',
    'a=extmap-allow-mixed',
    'a=msid-semantic: WMS 5b0e2b7c-8d5f-4c1a-b0a2-7f7e6c1d2e3f',
  ];
  const media = (mid: number, kind: string, payloads: number[]): string[] => [
    `m=${kind} 9 UDP/TLS/RTP/SAVPF ${payloads.join(' ')}`,
    'c=IN IP4 0.0.0.0',
    'a=rtcp:9 IN IP4 0.0.0.0',
    `a=ice-ufrag:${type === 'offer' ? 'EsAw' : 'Qk9z'}`,
    `a=ice-pwd:${type === 'offer' ? 'bP+XAvXKsbAj0ZyRhZaHgLy7' : 'Zl4n9CwqT2s+VbE1kYd0pR8m'}`,
    'a=ice-options:trickle',
    `a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:0${mid}`,
    `a=setup:${setup}`,
    `a=mid:${mid}`,
    'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level',
    'a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
    'a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
    'a=sendrecv',
    `a=msid:5b0e2b7c-8d5f-4c1a-b0a2-7f7e6c1d2e3f 9a1b${mid}c2d-3e4f-5a6b-7c8d-9e0f1a2b3c4d`,
    'a=rtcp-mux',
    ...payloads.flatMap((pt) => [
      `a=rtpmap:${pt} ${kind === 'audio' ? 'opus/48000/2' : pt % 2 === 0 ? 'VP8/90000' : 'rtx/90000'}`,
      `a=rtcp-fb:${pt} transport-cc`,
      `a=fmtp:${pt} ${kind === 'audio' ? 'minptime=10;useinbandfec=1' : `apt=${pt - 1}`}`,
    ]),
    `a=ssrc:${1_000_000 + mid * 7919} cname:Yq3H8sXo0mL2aP4t`,
  ];
  const lines = [
    ...head,
    ...media(0, 'audio', [111, 63, 9, 0, 8, 13, 110, 126]),
    ...media(1, 'video', [96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109]),
    'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
    'c=IN IP4 0.0.0.0',
    'a=mid:2',
    'a=sctp-port:5000',
    'a=max-message-size:262144',
  ];
  // Keep whole lines up to the target, then pad the last attribute line to hit it exactly.
  const dataBytes = (text: string): number => Buffer.byteLength(descriptionData(type, text));
  let text = '';
  for (const line of lines) {
    const next = `${text}${line}\r\n`;
    if (dataBytes(next) > targetBytes - 16) break;
    text = next;
  }
  const missing = targetBytes - dataBytes(`${text}a=x-pad:\r\n`);
  return missing >= 0 ? `${text}a=x-pad:${'p'.repeat(missing)}\r\n` : text;
}

function descriptionData(type: 'offer' | 'answer', text: string): string {
  return JSON.stringify({ t: STAMP_ZERO, kind: 'description', session: SESSION, description: { type, sdp: text } });
}

function candidateData(index: number, side: Side): string {
  const port = 50_000 + index * 17 + (side === 'a' ? 0 : 5);
  const candidate =
    index % 2 === 0
      ? `candidate:${842_163_049 + index} 1 udp 2122260223 192.168.1.${side === 'a' ? 20 : 31} ${port} typ host generation 0 ufrag ${side === 'a' ? 'EsAw' : 'Qk9z'} network-id 1`
      : `candidate:${1_467_250_027 + index} 1 udp 1686052607 203.0.113.${side === 'a' ? 7 : 9} ${port} typ srflx raddr 192.168.1.20 rport ${port} generation 0`;
  return JSON.stringify({
    t: STAMP_ZERO,
    kind: 'candidate',
    session: SESSION,
    candidate: { candidate, sdpMid: '0', sdpMLineIndex: 0 },
  });
}

/**
 * One negotiation, in the order a caller and callee send it: the offer, the caller's first
 * candidates, the answer, then both sides trickling the rest. 12 messages, 2 of about 4 KiB.
 */
export function negotiation(): readonly MixStep[] {
  const offer: MixStep = { from: 'a', kind: 'offer', data: descriptionData('offer', sdp('offer', SDP_DATA_BYTES)) };
  const answer: MixStep = { from: 'b', kind: 'answer', data: descriptionData('answer', sdp('answer', SDP_DATA_BYTES)) };
  const candidate = (side: Side, index: number): MixStep => ({ from: side, kind: 'candidate', data: candidateData(index, side) });
  return [
    offer,
    candidate('a', 0),
    candidate('a', 1),
    answer,
    candidate('b', 0),
    candidate('a', 2),
    candidate('b', 1),
    candidate('a', 3),
    candidate('b', 2),
    candidate('a', 4),
    candidate('b', 3),
    candidate('b', 4),
  ];
}

/** Mean data bytes per message of the mix. */
export function meanDataBytes(steps: readonly MixStep[]): number {
  return steps.reduce((sum, step) => sum + Buffer.byteLength(step.data), 0) / steps.length;
}

/** `performance.now()` as the fixed-width stamp text. */
export function stampNow(): string {
  return String(Math.round(performance.now() * 1000)).padStart(STAMP_DIGITS, '0');
}

/**
 * Reads the stamp of a received frame: microseconds, or -1 when the frame carries no stamp (a
 * control frame such as `pong` or `peer-joined`).
 */
export function readStamp(frame: Buffer): number {
  const at = frame.indexOf(STAMP_MARKER_BYTES);
  if (at < 0) return -1;
  const start = at + STAMP_MARKER_BYTES.length;
  if (start + STAMP_DIGITS > frame.length) return -1;
  let value = 0;
  for (let i = start; i < start + STAMP_DIGITS; i++) {
    const digit = frame[i]! - 48;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}
