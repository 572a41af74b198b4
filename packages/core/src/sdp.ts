import type { IceCandidate } from './ports/rtc.js';

// Just enough SDP (RFC 8866) reading for what the machines decide: ICE ufrags (RFC 8839 §5.4)
// and candidate lines (RFC 8839 §5.1). Lines end in CRLF; a lone LF is accepted too.

const LINE_BREAK = /\r?\n/;

/** The `a=ice-ufrag` values of a description, session-level and per m-section. */
export function iceUfragsOf(sdp: string): string[] {
  const ufrags: string[] = [];
  for (const line of sdp.split(LINE_BREAK)) {
    if (line.startsWith('a=ice-ufrag:')) ufrags.push(line.slice('a=ice-ufrag:'.length).trim());
  }
  return ufrags;
}

/**
 * Removes the `a=candidate:` lines that fail `keep` from an SDP, keeping everything else byte
 * for byte. Each line is judged as the IceCandidate a browser would report for it (with the
 * m-section's mid and index, and its ufrag).
 */
export function filterSdpCandidates(sdp: string, keep: (candidate: IceCandidate) => boolean): string {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const lines = sdp.split(LINE_BREAK);
  const kept: string[] = [];
  let mLineIndex = -1;
  let mid: string | null = null;
  let sessionUfrag: string | null = null;
  let sectionUfrag: string | null = null;
  for (const line of lines) {
    if (line.startsWith('m=')) {
      mLineIndex += 1;
      mid = null;
      sectionUfrag = null;
    } else if (line.startsWith('a=mid:')) {
      mid = line.slice('a=mid:'.length).trim();
    } else if (line.startsWith('a=ice-ufrag:')) {
      const ufrag = line.slice('a=ice-ufrag:'.length).trim();
      if (mLineIndex < 0) sessionUfrag = ufrag;
      else sectionUfrag = ufrag;
    } else if (line.startsWith('a=candidate:') && mLineIndex >= 0) {
      const candidate: IceCandidate = {
        candidate: line.slice('a='.length),
        sdpMid: mid,
        sdpMLineIndex: mLineIndex,
        usernameFragment: sectionUfrag ?? sessionUfrag,
      };
      if (!keep(candidate)) continue;
    }
    kept.push(line);
  }
  return kept.join(eol);
}

/**
 * The connection address of a candidate attribute (RFC 8839 §5.1:
 * `candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ...`),
 * or null when the line is not a candidate. mDNS names (`*.local`) are returned as they are.
 */
export function candidateAddress(candidate: IceCandidate): string | null {
  const text = candidate.candidate.startsWith('candidate:') ? candidate.candidate.slice('candidate:'.length) : candidate.candidate;
  const fields = text.trim().split(/\s+/);
  return fields.length >= 8 ? (fields[4] ?? null) : null;
}

/** The candidate type (`host`, `srflx`, `prflx`, `relay`), or null. */
export function candidateType(candidate: IceCandidate): string | null {
  const fields = candidate.candidate.trim().split(/\s+/);
  const typ = fields.indexOf('typ');
  return typ >= 0 ? (fields[typ + 1] ?? null) : null;
}

/** A candidate filter that keeps only candidates whose address is one of `addresses`. */
export function keepCandidateAddresses(...addresses: string[]): (candidate: IceCandidate) => boolean {
  const allowed = new Set(addresses);
  return (candidate) => {
    const address = candidateAddress(candidate);
    return address !== null && allowed.has(address);
  };
}

/** The mids of a description's m-sections, in order (RFC 8843 §7.2 `a=mid`). */
export function midsOf(sdp: string): string[] {
  const mids: string[] = [];
  for (const line of sdp.split(LINE_BREAK)) {
    if (line.startsWith('a=mid:')) mids.push(line.slice('a=mid:'.length).trim());
  }
  return mids;
}

function mediaSectionCount(sdp: string): number {
  return sdp.split(LINE_BREAK).filter((line) => line.startsWith('m=')).length;
}

/** What to do with a remote candidate, given the remote description applied now. */
export type RemoteCandidateFate =
  /** It belongs to the current remote description: addIceCandidate. */
  | 'apply'
  /** It may belong to a remote description not applied yet: keep it until one is. */
  | 'hold'
  /** Its ICE generation (ufrag) was replaced by a restart: it can never apply. */
  | 'stale'
  /** Its ufrag is current but it names an m-section the description does not have. */
  | 'unknown-section';

/**
 * Decides a remote candidate's fate (webrtc-pc §4.4.1.6 addIceCandidate: it rejects with
 * OperationError when the ufrag matches no remote description, or the mid / m-line index names
 * no m-section). `seenUfrags` are the ufrags of remote descriptions applied before.
 */
export function remoteCandidateFate(
  candidate: IceCandidate | null,
  remoteSdp: string | null,
  seenUfrags: readonly string[],
): RemoteCandidateFate {
  if (remoteSdp === null) return 'hold';
  if (candidate === null || candidate.candidate === '') return 'apply'; // end-of-candidates
  const currentUfrags = iceUfragsOf(remoteSdp);
  const ufrag = candidate.usernameFragment;
  if (ufrag && !currentUfrags.includes(ufrag)) return seenUfrags.includes(ufrag) ? 'stale' : 'hold';
  if (candidate.sdpMid !== undefined && candidate.sdpMid !== null) {
    if (midsOf(remoteSdp).includes(candidate.sdpMid)) return 'apply';
    return ufrag ? 'unknown-section' : 'hold';
  }
  if (candidate.sdpMLineIndex !== undefined && candidate.sdpMLineIndex !== null) {
    if (candidate.sdpMLineIndex < mediaSectionCount(remoteSdp)) return 'apply';
    return ufrag ? 'unknown-section' : 'hold';
  }
  return 'apply';
}
