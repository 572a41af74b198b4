// Resume tokens: self-verifying, so that a peer keeps its id across a server restart (and, with a
// shared broker, across instances that share the resume secret).
//
//   payload = `pr2:${issuer}:${room}:${name}:${id}:${issuedAt}:${joinExpiresAt}:${nonce}`
//   token   = base64url(payload) + "." + base64url(HMAC-SHA256(resumeSecret, payload))
//
// `pr2` tells this payload apart from anything else signed with the same secret (a join token's
// payload is `room:name:expiry`). `issuer` is a random id of the server process that issued the
// token: a process treats its own tokens as it always has (single use, valid while their session
// lives) and only verifies the signature of tokens from another process. Room, name, id, issuer
// and nonce match patterns without ':', so the payload is unambiguous; `issuedAt` is unix
// seconds; `joinExpiresAt` is the expiry (unix seconds) of the join token that admitted the peer,
// 0 when the server needs none: a restore is refused after it, so that a resume never grants more
// than a join would (every token of a session carries the expiry of its first join); the nonce (16 random bytes) makes every token unguessable and distinct. base64url is
// RFC 4648 §5 without padding. Tokens are at most RESUME_TOKEN_MAX_LENGTH characters; anything
// longer or malformed is refused before a MAC is computed. Never log a token.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ID_PATTERN, NAME_PATTERN } from '../protocol.js';

const VERSION = 'pr2';
const MAC_BYTES = 32;
const NONCE_BYTES = 16;
/** Longest possible token: a 64-character room, name and id make it about 350 characters. */
export const RESUME_TOKEN_MAX_LENGTH = 512;
const BASE64URL_PART = /^[A-Za-z0-9_-]+$/;
const ISSUED_AT_PATTERN = /^[0-9]{1,12}$/;
/** Clock skew tolerated between instances for a token issued "in the future", in seconds. */
const MAX_CLOCK_SKEW_SECONDS = 300;

export interface ResumeClaims {
  /** Random id of the server process that issued the token. */
  readonly issuer: string;
  readonly room: string;
  readonly name: string;
  readonly id: string;
  /** Unix seconds. */
  readonly issuedAt: number;
  /** Expiry of the join token that admitted the peer (unix seconds); 0 when joins need no token. */
  readonly joinExpiresAt: number;
  readonly nonce: string;
}

export type ResumeTokenCheck =
  | { readonly ok: true; readonly claims: ResumeClaims }
  | { readonly ok: false; readonly reason: 'malformed' | 'bad-signature' | 'expired' };

function mac(secret: string, payload: Buffer): Buffer {
  return createHmac('sha256', secret).update(payload).digest();
}

/** Creates a resume token for a peer, issued at `nowMs`. */
export function createResumeToken(
  secret: string,
  claims: Omit<ResumeClaims, 'issuedAt' | 'nonce' | 'joinExpiresAt'> & { readonly joinExpiresAt?: number },
  nowMs: number,
): string {
  const issuedAt = Math.floor(nowMs / 1000);
  const joinExpiresAt = claims.joinExpiresAt ?? 0;
  const nonce = randomBytes(NONCE_BYTES).toString('base64url');
  const payload = Buffer.from(`${VERSION}:${claims.issuer}:${claims.room}:${claims.name}:${claims.id}:${issuedAt}:${joinExpiresAt}:${nonce}`, 'utf8');
  return `${payload.toString('base64url')}.${mac(secret, payload).toString('base64url')}`;
}

/**
 * Checks a resume token's form, signature and age (`ttlSeconds`) at `nowMs`. The caller compares
 * room and name with the join. Never throws.
 */
export function verifyResumeToken(secret: string, token: string, nowMs: number, ttlSeconds: number): ResumeTokenCheck {
  if (token.length > RESUME_TOKEN_MAX_LENGTH) return { ok: false, reason: 'malformed' };
  const dot = token.indexOf('.');
  if (dot <= 0) return { ok: false, reason: 'malformed' };
  const payloadText = token.slice(0, dot);
  const macText = token.slice(dot + 1);
  if (!BASE64URL_PART.test(payloadText) || !BASE64URL_PART.test(macText)) return { ok: false, reason: 'malformed' };
  const payload = Buffer.from(payloadText, 'base64url');
  const given = Buffer.from(macText, 'base64url');
  // One encoding per token: Node decodes leniently (trailing bits), so re-encode and compare.
  if (given.length !== MAC_BYTES || payload.toString('base64url') !== payloadText || given.toString('base64url') !== macText) {
    return { ok: false, reason: 'malformed' };
  }
  if (!timingSafeEqual(given, mac(secret, payload))) return { ok: false, reason: 'bad-signature' };
  // Signed by a server with this secret: the fields were written by createResumeToken, but are
  // still checked (a secret shared with an older or different writer must not get us confused).
  const fields = payload.toString('utf8').split(':');
  if (fields.length !== 8) return { ok: false, reason: 'malformed' };
  const [version, issuer, room, name, id, issuedAtText, joinExpiresAtText, nonce] = fields as [
    string, string, string, string, string, string, string, string,
  ];
  if (
    version !== VERSION ||
    !ID_PATTERN.test(issuer) ||
    !NAME_PATTERN.test(room) ||
    !NAME_PATTERN.test(name) ||
    !ID_PATTERN.test(id) ||
    !ISSUED_AT_PATTERN.test(issuedAtText) ||
    !ISSUED_AT_PATTERN.test(joinExpiresAtText) ||
    !ID_PATTERN.test(nonce)
  ) {
    return { ok: false, reason: 'malformed' };
  }
  const issuedAt = Number(issuedAtText);
  const age = nowMs / 1000 - issuedAt;
  if (age > ttlSeconds || age < -MAX_CLOCK_SKEW_SECONDS) return { ok: false, reason: 'expired' };
  return { ok: true, claims: { issuer, room, name, id, issuedAt, joinExpiresAt: Number(joinExpiresAtText), nonce } };
}
