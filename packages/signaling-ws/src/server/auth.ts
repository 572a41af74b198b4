// Join tokens: an app server that knows the signaling server's auth secret lets a user into one
// room under one name until an expiry.
//
//   payload = `${room}:${name}:${expiry}`          (expiry: integer unix seconds)
//   token   = base64url(HMAC-SHA256(secret, payload)) + "." + expiry
//
// Room and name match NAME_PATTERN, which has no ':', so the payload is unambiguous. base64url is
// RFC 4648 §5 without padding (43 characters for a SHA-256 MAC). The server recomputes the MAC
// for the room and name of the `join` frame and compares with `timingSafeEqual`; a token for
// another room or name, a malformed token and an expired one are all refused the same way.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { NAME_PATTERN } from '../protocol.js';

const EXPIRY_PATTERN = /^[0-9]{1,12}$/;
/** Unix seconds larger than this are most likely milliseconds passed by mistake (year 5138). */
const MAX_UNIX_SECONDS = 1e11;

function joinTokenMac(secret: string, room: string, name: string, expiry: number): string {
  return createHmac('sha256', secret).update(`${room}:${name}:${expiry}`).digest('base64url');
}

/**
 * Creates a join token for `room` and `name`, valid until `expiresAt` (a Date, or integer unix
 * seconds). Throws a RangeError for an invalid room, name or expiry.
 */
export function createJoinToken(secret: string, room: string, name: string, expiresAt: Date | number): string {
  if (secret.length === 0) throw new RangeError('secret must not be empty');
  if (!NAME_PATTERN.test(room)) throw new RangeError('room must be 1-64 characters of A-Z a-z 0-9 _ . -');
  if (!NAME_PATTERN.test(name)) throw new RangeError('name must be 1-64 characters of A-Z a-z 0-9 _ . -');
  const expiry = typeof expiresAt === 'number' ? expiresAt : Math.floor(expiresAt.getTime() / 1000);
  if (!Number.isSafeInteger(expiry) || expiry < 0 || expiry > MAX_UNIX_SECONDS) {
    throw new RangeError('expiresAt must be a Date or integer unix seconds');
  }
  return `${joinTokenMac(secret, room, name, expiry)}.${expiry}`;
}

/** What `verifyJoinToken` found: `ok`, or why the token is refused. */
export type JoinTokenCheck = 'ok' | 'missing' | 'malformed' | 'expired' | 'bad-signature';

/** Checks a join token against the room and name of a join, at `nowMs`. Never throws. */
export function verifyJoinToken(
  secret: string,
  token: string | undefined,
  room: string,
  name: string,
  nowMs: number,
): JoinTokenCheck {
  if (token === undefined) return 'missing';
  const dot = token.lastIndexOf('.');
  if (dot <= 0) return 'malformed';
  const expiryText = token.slice(dot + 1);
  if (!EXPIRY_PATTERN.test(expiryText)) return 'malformed';
  const expiry = Number(expiryText);
  const given = Buffer.from(token.slice(0, dot), 'utf8');
  const expected = Buffer.from(joinTokenMac(secret, room, name, expiry), 'utf8');
  // Length is not secret (it is fixed for SHA-256); timingSafeEqual needs equal lengths.
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'bad-signature';
  if (expiry * 1000 <= nowMs) return 'expired';
  return 'ok';
}

/** The expiry (unix seconds) written in a join token, or undefined when it has none. Checks no signature. */
export function joinTokenExpiresAt(token: string): number | undefined {
  const expiryText = token.slice(token.lastIndexOf('.') + 1);
  return EXPIRY_PATTERN.test(expiryText) ? Number(expiryText) : undefined;
}
