import type { IceCandidate } from '../ports/rtc.js';

// The peer protocol: what one peer says to the other through the signaling channel. The server
// relays these as opaque JSON; only the peers read them, and only after `parsePeerMessage`.

/** Why a callee declined an invite. */
export type RejectReason = 'declined' | 'busy' | 'unavailable';
/** Why a caller withdrew an invite before it was answered. */
export type CancelReason = 'cancelled' | 'timeout';
/** Why a call that was set up ended. */
export type ByeReason = 'hangup' | 'connection-failed' | 'error';

/** A description as it travels: offers and answers only carry SDP (rollback is never sent). */
export interface WireDescription {
  readonly type: 'offer' | 'answer' | 'pranswer';
  readonly sdp: string;
}

/** What the caller asks for in an invite (informational: the callee decides what it sends). */
export interface InviteMedia {
  readonly audio: boolean;
  readonly video: boolean;
}

interface Sessioned {
  /** Id of the call (or peer connection) the message belongs to; late messages of an old
   * session are dropped by the receiver. */
  readonly session: string;
}

/** Call control: the caller asks the callee to a call (with the media it intends). */
export type InviteMessage = Sessioned & { readonly kind: 'invite'; readonly media?: InviteMedia };
/** Call control: the callee accepts the invite of the same session. */
export type AcceptMessage = Sessioned & { readonly kind: 'accept' };
/** Call control: the callee declines the invite, with a reason. */
export type RejectMessage = Sessioned & { readonly kind: 'reject'; readonly reason: RejectReason };
/** Call control: the caller withdraws its invite before an answer, with a reason. */
export type CancelMessage = Sessioned & { readonly kind: 'cancel'; readonly reason: CancelReason };
/** Call control: either side ends an active call, with a reason. */
export type ByeMessage = Sessioned & { readonly kind: 'bye'; readonly reason: ByeReason };
/** Negotiation: an SDP offer or answer (RFC 8829 JSEP). */
export type DescriptionMessage = Sessioned & { readonly kind: 'description'; readonly description: WireDescription };
/** `candidate: null` is end-of-candidates. */
export type CandidateMessage = Sessioned & { readonly kind: 'candidate'; readonly candidate: IceCandidate | null };

// Group membership (docs/architecture.md, "Group calls"). In these four `session` is the
// sender's membership: a fresh id each time a member joins a group call, so a pair's session
// (made of both memberships) is new after a rejoin and late messages of the old pair are dropped.

/** Group: the sender joins the room's group call as membership `session` (sent to every member of the room). */
export type GroupJoinMessage = Sessioned & { readonly kind: 'group-join' };
/**
 * Group: the answer of a member in the call to a `group-join`: it is in, as membership `session`.
 * `join` is the membership of the join it answers, so a joiner that left and joined again drops
 * a late answer to its former membership.
 */
export type GroupPresentMessage = Sessioned & { readonly kind: 'group-present'; readonly join: string };
/** Group: the sender (membership `session`) leaves the call; the receiver drops its pair at once. */
export type GroupLeaveMessage = Sessioned & { readonly kind: 'group-leave' };
/** Group: the answer to a `group-join` of membership `session` when the call already holds its maximum. */
export type GroupFullMessage = Sessioned & { readonly kind: 'group-full' };

/**
 * Every message two peers exchange over signaling (the peer protocol); `parsePeerMessage`
 * validates one.
 */
export type PeerMessage =
  | InviteMessage
  | AcceptMessage
  | RejectMessage
  | CancelMessage
  | ByeMessage
  | DescriptionMessage
  | CandidateMessage
  | GroupMessage;

/** The group-call membership messages (see `createGroupCall`). */
export type GroupMessage = GroupJoinMessage | GroupPresentMessage | GroupLeaveMessage | GroupFullMessage;

/** The `kind` of every `PeerMessage`. */
export type PeerMessageKind = PeerMessage['kind'];
/** The messages that carry offer/answer negotiation, as opposed to call control. */
export type NegotiationMessage = DescriptionMessage | CandidateMessage;
/** The call-control messages of a 1:1 call (invite, accept, reject, cancel, bye). */
export type CallControlMessage = Exclude<PeerMessage, NegotiationMessage | GroupMessage>;

/** Every `PeerMessageKind`, for validation and exhaustive tests. */
export const PEER_MESSAGE_KINDS: readonly PeerMessageKind[] = [
  'invite',
  'accept',
  'reject',
  'cancel',
  'bye',
  'description',
  'candidate',
  'group-join',
  'group-present',
  'group-leave',
  'group-full',
];

/** Bounds on what a peer may send; anything larger is rejected before it reaches a machine. */
export const PEER_MESSAGE_LIMITS = {
  sessionLength: 128,
  sdpLength: 60 * 1024,
  candidateLength: 1024,
  sdpMidLength: 64,
  usernameFragmentLength: 256,
  maxMLineIndex: 1023,
} as const;

const SESSION_PATTERN = /^[A-Za-z0-9_.:-]+$/;
const REJECT_REASONS: readonly RejectReason[] = ['declined', 'busy', 'unavailable'];
const CANCEL_REASONS: readonly CancelReason[] = ['cancelled', 'timeout'];
const BYE_REASONS: readonly ByeReason[] = ['hangup', 'connection-failed', 'error'];
const DESCRIPTION_TYPES: readonly WireDescription['type'][] = ['offer', 'answer', 'pranswer'];

/** Why `parsePeerMessage` refused a value. */
export type PeerMessageErrorCode = 'not-an-object' | 'unknown-kind' | 'invalid-field' | 'too-large';

/** Why an incoming value is not a peer message; `path` names the offending field. */
export class PeerMessageError extends Error {
  override readonly name = 'PeerMessageError';
  constructor(
    readonly code: PeerMessageErrorCode,
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

/** What `parsePeerMessage` returns: the message, or a typed error. */
export type PeerMessageParseResult =
  | { readonly ok: true; readonly message: PeerMessage }
  | { readonly ok: false; readonly error: PeerMessageError };

type Fields = Readonly<Record<string, unknown>>;

function isPlainObject(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function fail(code: PeerMessageErrorCode, path: string, message: string): PeerMessageParseResult {
  return { ok: false, error: new PeerMessageError(code, path, message) };
}

function checkString(value: unknown, path: string, maxLength: number, allowEmpty = false): PeerMessageParseResult | null {
  if (typeof value !== 'string') return fail('invalid-field', path, `${path} must be a string`);
  if (!allowEmpty && value.length === 0) return fail('invalid-field', path, `${path} must not be empty`);
  if (value.length > maxLength) return fail('too-large', path, `${path} is longer than ${maxLength} characters`);
  return null;
}

function checkOneOf<T extends string>(value: unknown, path: string, allowed: readonly T[]): PeerMessageParseResult | null {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    return fail('invalid-field', path, `${path} must be one of ${allowed.join(', ')}`);
  }
  return null;
}

function parseCandidate(value: unknown): PeerMessageParseResult | IceCandidate | null {
  if (value === null) return null;
  if (!isPlainObject(value)) return fail('invalid-field', 'candidate', 'candidate must be an object or null');
  const bad = checkString(value['candidate'], 'candidate.candidate', PEER_MESSAGE_LIMITS.candidateLength, true);
  if (bad) return bad;
  const sdpMid = value['sdpMid'];
  if (sdpMid !== undefined && sdpMid !== null) {
    const badMid = checkString(sdpMid, 'candidate.sdpMid', PEER_MESSAGE_LIMITS.sdpMidLength, true);
    if (badMid) return badMid;
  }
  const index = value['sdpMLineIndex'];
  if (
    index !== undefined &&
    index !== null &&
    !(typeof index === 'number' && Number.isInteger(index) && index >= 0 && index <= PEER_MESSAGE_LIMITS.maxMLineIndex)
  ) {
    return fail('invalid-field', 'candidate.sdpMLineIndex', 'candidate.sdpMLineIndex must be a small non-negative integer');
  }
  const ufrag = value['usernameFragment'];
  if (ufrag !== undefined && ufrag !== null) {
    const badUfrag = checkString(ufrag, 'candidate.usernameFragment', PEER_MESSAGE_LIMITS.usernameFragmentLength, true);
    if (badUfrag) return badUfrag;
  }
  // Copy only the known fields: nothing unvalidated rides along into a machine.
  return {
    candidate: value['candidate'] as string,
    ...(sdpMid !== undefined ? { sdpMid: sdpMid as string | null } : {}),
    ...(index !== undefined ? { sdpMLineIndex: index } : {}),
    ...(ufrag !== undefined ? { usernameFragment: ufrag as string | null } : {}),
  };
}

function isResult(value: unknown): value is PeerMessageParseResult {
  return isPlainObject(value) && typeof value['ok'] === 'boolean';
}

/**
 * Validates an untrusted value (usually `JSON.parse` output) as a peer message. Returns a new
 * object holding only the known fields, or a typed error; never throws.
 */
export function parsePeerMessage(input: unknown): PeerMessageParseResult {
  if (!isPlainObject(input)) return fail('not-an-object', '', 'a peer message must be a JSON object');
  const kind = input['kind'];
  if (typeof kind !== 'string' || !(PEER_MESSAGE_KINDS as readonly string[]).includes(kind)) {
    return fail('unknown-kind', 'kind', `unknown peer message kind ${JSON.stringify(kind)?.slice(0, 40) ?? 'undefined'}`);
  }
  const badSession = checkString(input['session'], 'session', PEER_MESSAGE_LIMITS.sessionLength);
  if (badSession) return badSession;
  const session = input['session'] as string;
  if (!SESSION_PATTERN.test(session)) {
    return fail('invalid-field', 'session', 'session may hold only letters, digits and _ . : -');
  }

  switch (kind as PeerMessageKind) {
    case 'invite': {
      const media = input['media'];
      if (media === undefined) return { ok: true, message: { kind: 'invite', session } };
      if (!isPlainObject(media) || typeof media['audio'] !== 'boolean' || typeof media['video'] !== 'boolean') {
        return fail('invalid-field', 'media', 'media must be {audio: boolean, video: boolean}');
      }
      return { ok: true, message: { kind: 'invite', session, media: { audio: media['audio'], video: media['video'] } } };
    }
    case 'accept':
      return { ok: true, message: { kind: 'accept', session } };
    case 'reject': {
      const bad = checkOneOf(input['reason'], 'reason', REJECT_REASONS);
      if (bad) return bad;
      return { ok: true, message: { kind: 'reject', session, reason: input['reason'] as RejectReason } };
    }
    case 'cancel': {
      const bad = checkOneOf(input['reason'], 'reason', CANCEL_REASONS);
      if (bad) return bad;
      return { ok: true, message: { kind: 'cancel', session, reason: input['reason'] as CancelReason } };
    }
    case 'bye': {
      const bad = checkOneOf(input['reason'], 'reason', BYE_REASONS);
      if (bad) return bad;
      return { ok: true, message: { kind: 'bye', session, reason: input['reason'] as ByeReason } };
    }
    case 'description': {
      const description = input['description'];
      if (!isPlainObject(description)) return fail('invalid-field', 'description', 'description must be an object');
      const badType = checkOneOf(description['type'], 'description.type', DESCRIPTION_TYPES);
      if (badType) return badType;
      const badSdp = checkString(description['sdp'], 'description.sdp', PEER_MESSAGE_LIMITS.sdpLength);
      if (badSdp) return badSdp;
      return {
        ok: true,
        message: {
          kind: 'description',
          session,
          description: { type: description['type'] as WireDescription['type'], sdp: description['sdp'] as string },
        },
      };
    }
    case 'candidate': {
      if (!('candidate' in input)) return fail('invalid-field', 'candidate', 'candidate is required (null for end of candidates)');
      const candidate = parseCandidate(input['candidate']);
      if (isResult(candidate)) return candidate;
      return { ok: true, message: { kind: 'candidate', session, candidate } };
    }
    case 'group-present': {
      const badJoin = checkString(input['join'], 'join', PEER_MESSAGE_LIMITS.sessionLength);
      if (badJoin) return badJoin;
      const join = input['join'] as string;
      if (!SESSION_PATTERN.test(join)) return fail('invalid-field', 'join', 'join may hold only letters, digits and _ . : -');
      return { ok: true, message: { kind: 'group-present', session, join } };
    }
    case 'group-join':
    case 'group-leave':
    case 'group-full':
      return { ok: true, message: { kind: kind as Exclude<GroupMessage['kind'], 'group-present'>, session } };
  }
}

/** True for the messages that carry negotiation (descriptions and candidates). */
export function isNegotiationMessage(message: PeerMessage): message is NegotiationMessage {
  return message.kind === 'description' || message.kind === 'candidate';
}

/** True for the group-call membership messages (`group-join`, `group-present`, `group-leave`, `group-full`). */
export function isGroupMessage(message: PeerMessage): message is GroupMessage {
  return message.kind === 'group-join' || message.kind === 'group-present' || message.kind === 'group-leave' || message.kind === 'group-full';
}

/** True for the call-control messages of a 1:1 call (invite, accept, reject, cancel, bye). */
export function isCallControlMessage(message: PeerMessage): message is CallControlMessage {
  return !isNegotiationMessage(message) && !isGroupMessage(message);
}
