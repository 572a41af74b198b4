// Fake SDP for the fake RTC port: realistic enough text (RFC 8866 lines, JSEP/RFC 9429 section
// layout, BUNDLE, trickle ICE attributes) that tests and logs read like the real thing, and a
// parser for exactly what `renderSdp` writes. Garbage is rejected the way browsers do, with an
// error named `OperationError` (webrtc-pc §4.4.1.6: RTCError "sdp-syntax-error").

/** webrtc-pc §5.4 RTCRtpTransceiverDirection. */
export type RtpTransceiverDirection = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';
/** The kind of a fake media section. */
export type MediaKind = 'audio' | 'video';
export type SectionKind = MediaKind | 'application';

/** One m= section (RFC 8866 §5.14) as the fake writes it. */
export interface SdpSection {
  readonly kind: SectionKind;
  readonly mid: string;
  /** 9 (trickle placeholder, RFC 8840) or 0 for a rejected section (RFC 3264 §6). */
  readonly port: number;
  /** Media direction attribute (RFC 3264 §5.1); `sendrecv` for the application section. */
  readonly direction: RtpTransceiverDirection;
}

/** Everything the fake needs from a description. One ICE transport: BUNDLE, one ufrag. */
export interface SdpModel {
  readonly sessionId: string;
  readonly version: number;
  /** The `a=x-fake-port` line: which fake port wrote this SDP. */
  readonly portId: string;
  readonly ufrag: string;
  readonly pwd: string;
  readonly fingerprint: string;
  /** RFC 8842 §5: the offerer says actpass, the answerer picks active (it is the DTLS client). */
  readonly setup: 'actpass' | 'active' | 'passive';
  readonly sections: readonly SdpSection[];
  /** `candidate:...` attribute values carried in the SDP (non-trickle, or gathered so far). */
  readonly candidates: readonly string[];
  /** RFC 8840 §8.2 `a=end-of-candidates`. */
  readonly endOfCandidates: boolean;
}

/** An Error with a WebIDL/DOMException-style name (`InvalidStateError`, `OperationError`, ...). */
export class FakeRtcError extends Error {
  override readonly name: string;
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

export function rtcError(name: string, message: string): Error {
  if (name === 'TypeError') return new TypeError(message);
  return new FakeRtcError(name, message);
}

const CRLF = '\r\n';
const MEDIA_PROTO = 'UDP/TLS/RTP/SAVPF';
const DATA_PROTO = 'UDP/DTLS/SCTP';
/** RFC 8841 §6 a=max-message-size the fake announces (and enforces in send, webrtc-pc §6.2). */
export const FAKE_MAX_MESSAGE_SIZE = 262_144;

export function renderSdp(model: SdpModel): string {
  const lines: string[] = [
    'v=0',
    `o=- ${model.sessionId} ${model.version} IN IP4 127.0.0.1`,
    's=-',
    't=0 0',
  ];
  const bundled = model.sections.filter((section) => section.port !== 0).map((section) => section.mid);
  if (bundled.length > 0) lines.push(`a=group:BUNDLE ${bundled.join(' ')}`);
  lines.push('a=msid-semantic: WMS', `a=x-fake-port:${model.portId}`);
  model.sections.forEach((section, index) => {
    if (section.kind === 'application') {
      lines.push(`m=application ${section.port} ${DATA_PROTO} webrtc-datachannel`);
    } else {
      lines.push(`m=${section.kind} ${section.port} ${MEDIA_PROTO} ${section.kind === 'audio' ? 111 : 96}`);
    }
    lines.push(
      'c=IN IP4 0.0.0.0',
      `a=ice-ufrag:${model.ufrag}`,
      `a=ice-pwd:${model.pwd}`,
      'a=ice-options:trickle',
      `a=fingerprint:sha-256 ${model.fingerprint}`,
      `a=setup:${model.setup}`,
      `a=mid:${section.mid}`,
    );
    if (section.kind === 'application') {
      lines.push('a=sctp-port:5000', `a=max-message-size:${FAKE_MAX_MESSAGE_SIZE}`);
    } else {
      lines.push(`a=${section.direction}`, 'a=rtcp-mux');
      lines.push(section.kind === 'audio' ? 'a=rtpmap:111 opus/48000/2' : 'a=rtpmap:96 VP8/90000');
    }
    // One ICE transport (BUNDLE): its candidates are listed under the first m= section, the
    // one whose mid is the BUNDLE tag (RFC 9143 §7.1). Simplification: never on the others.
    if (index === 0) {
      for (const candidate of model.candidates) lines.push(`a=${candidate}`);
      if (model.endOfCandidates) lines.push('a=end-of-candidates');
    }
  });
  return lines.join(CRLF) + CRLF;
}

/** Parses SDP written by `renderSdp`; anything else is an `OperationError`. */
export function parseSdp(sdp: string): SdpModel {
  const garbage = (why: string): Error => rtcError('OperationError', `Failed to parse SessionDescription: ${why}`);
  const lines = sdp.split(/\r?\n/).filter((line) => line.length > 0);
  if (lines[0] !== 'v=0') throw garbage('expected v=0 as the first line');
  const origin = /^o=- (\d+) (\d+) IN IP4 \S+$/.exec(lines.find((line) => line.startsWith('o=')) ?? '');
  if (!origin) throw garbage('missing or malformed o= line');
  let portId: string | null = null;
  let ufrag: string | null = null;
  let pwd: string | null = null;
  let fingerprint: string | null = null;
  let setup: SdpModel['setup'] | null = null;
  let endOfCandidates = false;
  const candidates: string[] = [];
  const sections: SdpSection[] = [];
  let current: { kind: SectionKind; port: number; mid: string | null; direction: RtpTransceiverDirection } | null = null;
  const closeSection = (): void => {
    if (!current) return;
    if (current.mid === null) throw garbage(`m=${current.kind} section ${sections.length} has no a=mid`);
    sections.push({ kind: current.kind, mid: current.mid, port: current.port, direction: current.direction });
    current = null;
  };
  for (const line of lines) {
    if (line.startsWith('m=')) {
      closeSection();
      const media = /^m=(audio|video|application) (\d+) (\S+) (.+)$/.exec(line);
      if (!media) throw garbage(`unsupported m= line "${line}"`);
      const kind = media[1] as SectionKind;
      const expectedProto = kind === 'application' ? DATA_PROTO : MEDIA_PROTO;
      if (media[3] !== expectedProto) throw garbage(`unexpected protocol in "${line}"`);
      current = { kind, port: Number(media[2]), mid: null, direction: 'sendrecv' };
      continue;
    }
    if (!line.startsWith('a=')) continue;
    const attribute = line.slice(2);
    const colon = attribute.indexOf(':');
    const key = colon < 0 ? attribute : attribute.slice(0, colon);
    const value = colon < 0 ? '' : attribute.slice(colon + 1);
    switch (key) {
      case 'x-fake-port':
        portId = value;
        break;
      case 'ice-ufrag':
        if (ufrag !== null && ufrag !== value) throw garbage('more than one ICE ufrag in a BUNDLE-only description');
        ufrag = value;
        break;
      case 'ice-pwd':
        pwd = value;
        break;
      case 'fingerprint':
        fingerprint = value.replace(/^sha-256 /, '');
        break;
      case 'setup':
        if (value !== 'actpass' && value !== 'active' && value !== 'passive') throw garbage(`bad a=setup:${value}`);
        setup = value;
        break;
      case 'mid':
        if (!current) throw garbage('a=mid outside of an m= section');
        current.mid = value;
        break;
      case 'sendrecv':
      case 'sendonly':
      case 'recvonly':
      case 'inactive':
        if (current) current.direction = key;
        break;
      case 'candidate':
        if (!parseCandidate(attribute)) throw garbage(`malformed candidate "${attribute}"`);
        candidates.push(attribute);
        break;
      case 'end-of-candidates':
        endOfCandidates = true;
        break;
      default:
        break;
    }
  }
  closeSection();
  if (portId === null) throw garbage('not an SDP written by a fake port (no a=x-fake-port)');
  if (sections.length > 0 && (ufrag === null || pwd === null)) throw garbage('missing a=ice-ufrag / a=ice-pwd');
  if (sections.length > 0 && (fingerprint === null || setup === null)) throw garbage('missing a=fingerprint / a=setup');
  const mids = new Set(sections.map((section) => section.mid));
  if (mids.size !== sections.length) throw garbage('duplicate a=mid values');
  return {
    sessionId: origin[1]!,
    version: Number(origin[2]),
    portId,
    ufrag: ufrag ?? '',
    pwd: pwd ?? '',
    fingerprint: fingerprint ?? '',
    setup: setup ?? 'actpass',
    sections,
    candidates,
    endOfCandidates,
  };
}

/** The parts of an RFC 8839 §5.1 candidate-attribute the fake looks at. */
export interface ParsedCandidate {
  readonly foundation: string;
  readonly component: number;
  readonly transport: string;
  readonly priority: number;
  readonly address: string;
  readonly port: number;
  readonly type: string;
  readonly ufrag: string | null;
}

/** Parses `candidate:...` (with or without a leading `a=`); null when it is not a candidate. */
export function parseCandidate(text: string): ParsedCandidate | null {
  const match =
    /^(?:a=)?candidate:(\S{1,32}) (\d{1,3}) (udp|tcp) (\d{1,10}) (\S+) (\d{1,5}) typ (host|srflx|prflx|relay)((?: \S+ \S+)*)$/i.exec(
      text,
    );
  if (!match) return null;
  const extensions = (match[8] ?? '').trim().split(' ');
  const ufragIndex = extensions.indexOf('ufrag');
  return {
    foundation: match[1]!,
    component: Number(match[2]),
    transport: match[3]!.toLowerCase(),
    priority: Number(match[4]),
    address: match[5]!,
    port: Number(match[6]),
    type: match[7]!,
    ufrag: ufragIndex >= 0 ? (extensions[ufragIndex + 1] ?? null) : null,
  };
}

/** A host candidate in the shape libwebrtc writes (RFC 8839 §5.1, priority per RFC 8445 §5.1.2). */
export function hostCandidate(foundation: number, port: number, ufrag: string): string {
  return `candidate:${foundation} 1 udp 2122260223 127.0.0.1 ${port} typ host generation 0 ufrag ${ufrag} network-id 1`;
}

/** JSEP §5.3.1 / RFC 3264 §6.1: what an answerer may do, given its wish and the offer. */
export function answerDirection(local: RtpTransceiverDirection, offered: RtpTransceiverDirection): RtpTransceiverDirection {
  const send = sends(local) && receives(offered);
  const recv = receives(local) && sends(offered);
  return directionOf(send, recv);
}

/** The direction seen from the other side (sendonly <-> recvonly). */
export function reverseDirection(direction: RtpTransceiverDirection): RtpTransceiverDirection {
  return directionOf(receives(direction), sends(direction));
}

export function sends(direction: RtpTransceiverDirection): boolean {
  return direction === 'sendrecv' || direction === 'sendonly';
}

export function receives(direction: RtpTransceiverDirection): boolean {
  return direction === 'sendrecv' || direction === 'recvonly';
}

function directionOf(send: boolean, recv: boolean): RtpTransceiverDirection {
  if (send && recv) return 'sendrecv';
  if (send) return 'sendonly';
  if (recv) return 'recvonly';
  return 'inactive';
}

/** Byte length of a string once UTF-8 encoded (lone surrogates count as U+FFFD, 3 bytes). */
export function utf8ByteLength(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}
