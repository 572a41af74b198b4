// ICE servers for `welcome.iceServers`. TURN uses the coturn "TURN REST API" scheme
// (draft-uberti-behave-turn-rest-00, coturn `use-auth-secret` + `static-auth-secret`):
//
//   username   = `${unixExpirySeconds}:${peerId}`
//   credential = base64(HMAC-SHA1(secret, username))
//
// so a page only ever sees a credential that expires; the shared secret stays on the server.

import { createHmac } from 'node:crypto';
import type { IceServerConfig } from '../protocol.js';

/**
 * TURN REST credentials (coturn `use-auth-secret`): the TURN URLs, the shared secret and the
 * credentials' lifetime.
 */
export interface TurnOptions {
  /** `turn:` / `turns:` URLs of the TURN server(s). */
  readonly urls: readonly string[];
  /** The coturn `static-auth-secret`. */
  readonly secret: string;
  /** Lifetime of a credential; default 86400 (one day). */
  readonly ttlSeconds?: number;
}

/** Default lifetime of TURN credentials, in seconds (one day). */
export const DEFAULT_TURN_TTL_SECONDS = 86_400;

const STUN_URL = /^stuns?:[^\s]+$/i;
const TURN_URL = /^turns?:[^\s]+$/i;

/** Time-limited TURN credentials for one peer. */
export function turnCredentials(
  secret: string,
  peerId: string,
  nowMs: number,
  ttlSeconds: number = DEFAULT_TURN_TTL_SECONDS,
): { username: string; credential: string; expiresAt: number } {
  const expiresAt = Math.floor(nowMs / 1000) + ttlSeconds;
  const username = `${expiresAt}:${peerId}`;
  const credential = createHmac('sha1', secret).update(username).digest('base64');
  return { username, credential, expiresAt };
}

/** The ICE servers for one peer, and when their TURN credentials expire (unix ms; none without TURN). */
export interface PeerIceServers {
  readonly iceServers: IceServerConfig[];
  readonly expiresAtMs: number | undefined;
}

/** Builds the ICE servers of a `welcome` or `ice-servers` frame. */
export interface IceServerSource {
  /** The list for one peer, with fresh TURN credentials if there is TURN. */
  forPeer(peerId: string, nowMs: number): PeerIceServers;
}

/**
 * Validates the ICE options once and returns a per-peer builder. Throws a TypeError for a
 * malformed URL, a non-positive TTL, or a static `iceServers` entry with a credential (static
 * TURN passwords must never reach a page: use `turn` instead).
 */
export function createIceServerSource(options: {
  readonly stunUrls?: readonly string[] | undefined;
  readonly iceServers?: readonly IceServerConfig[] | undefined;
  readonly turn?: TurnOptions | undefined;
}): IceServerSource {
  const fixed: IceServerConfig[] = [];
  const stunUrls = options.stunUrls ?? [];
  for (const url of stunUrls) {
    if (!STUN_URL.test(url)) throw new TypeError(`not a stun: URL: ${url}`);
  }
  if (stunUrls.length > 0) fixed.push({ urls: [...stunUrls] });
  for (const server of options.iceServers ?? []) {
    if (server.username !== undefined || server.credential !== undefined) {
      throw new TypeError('iceServers must not carry static credentials; use the turn option (TURN REST credentials)');
    }
    fixed.push({ urls: typeof server.urls === 'string' ? server.urls : [...server.urls] });
  }
  const turn = options.turn;
  if (turn === undefined) return { forPeer: () => ({ iceServers: fixed, expiresAtMs: undefined }) };
  if (turn.urls.length === 0) throw new TypeError('turn.urls must not be empty');
  for (const url of turn.urls) {
    if (!TURN_URL.test(url)) throw new TypeError(`not a turn: URL: ${url}`);
  }
  if (turn.secret.length === 0) throw new TypeError('turn.secret must not be empty');
  const ttl = turn.ttlSeconds ?? DEFAULT_TURN_TTL_SECONDS;
  if (!Number.isSafeInteger(ttl) || ttl <= 0) throw new TypeError('turn.ttlSeconds must be a positive integer');
  const urls = [...turn.urls];
  return {
    forPeer(peerId, nowMs) {
      const { username, credential, expiresAt } = turnCredentials(turn.secret, peerId, nowMs, ttl);
      return { iceServers: [...fixed, { urls, username, credential }], expiresAtMs: expiresAt * 1000 };
    },
  };
}
