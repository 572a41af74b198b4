// Server frames that tell a peer about the room or about its own signals (wire protocol:
// src/protocol.ts, `peer-left` and error `undeliverable`), built where the server or a broker
// must send them: the sessions module, and the Redis broker when it reaps a dead node's members.

/** `peer-left` for member `id` (ids match ID_PATTERN: no character needs escaping). */
export function peerLeftFrame(id: string): string {
  return `{"type":"peer-left","id":${JSON.stringify(id)}}`;
}

/** Error `undeliverable` for the sender of a signal to `to` that was not delivered, and why. */
export function undeliverableFrame(to: string, why: string): string {
  return JSON.stringify({ type: 'error', code: 'undeliverable', message: `signal not delivered: ${why}`, to });
}
