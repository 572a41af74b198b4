// Signal frames in the layout Parley's client writes, `{"type":"signal","to":"<id>","data":<object>}`,
// and the frame relayed from one: the server's `from` before the client's own bytes of `data`.

import type { Session } from './session.js';

/** How a client that serializes `{type, to, data}` in that order (as ours does) starts a signal. */
const SIGNAL_HEAD = '{"type":"signal","to":"';
/** Between the id and the data value. */
const SIGNAL_DATA = '","data":';
const CLOSE_BRACE = 0x7d;

/**
 * Where the text of `data` starts in `text`, when the frame (already parsed to `frame`, a valid
 * signal to `to`) is `{"type":"signal","to":"<to>","data":` + that text + `}` and has no keys
 * but these three; otherwise -1 (the server then serializes `data` again). Everything before
 * that index is ASCII, so it is also where the data starts in the frame's UTF-8 bytes. Relaying
 * the client's own bytes saves a JSON.stringify of up to `maxPayload` bytes per signal, and its
 * encoding to UTF-8 again.
 *
 * Why the relayed frame is still what the server checked: a top-level key after `data` in the
 * text can only repeat `type`, `to` or `data` (there are three keys), and JSON.parse keeps the
 * last of each, which is what the server validated: `type` "signal", `to` this very id (the
 * text starts with it), `data` an object. The frame relayed is `{"type":"signal","from":"<id>",
 * "data":` + the text + `}`: its only top-level `from` is the server's, whichever duplicate a
 * receiver's parser keeps; `data` stays opaque, as it always was.
 */
export function sentDataStart(text: string, to: string, frame: Record<string, unknown>): number {
  const toAt = SIGNAL_HEAD.length;
  if (
    text.charCodeAt(text.length - 1) !== CLOSE_BRACE ||
    !text.startsWith(SIGNAL_HEAD) ||
    !text.startsWith(to, toAt) ||
    !text.startsWith(SIGNAL_DATA, toAt + to.length)
  ) {
    return -1;
  }
  let keys = 0;
  for (const key in frame) {
    if (Object.hasOwn(frame, key) && ++keys > 3) return -1;
  }
  return toAt + to.length + SIGNAL_DATA.length;
}

/**
 * The frame relayed from the client frame `bytes` as bytes: `session`'s prefix (with its
 * `from`), the client's bytes of `data` (from `dataStart` to the frame's closing brace) and `}`.
 */
export function relayedBytes(session: Session, bytes: Buffer, dataStart: number): Buffer {
  const prefix = session.signalPrefixBytes;
  const dataEnd = bytes.length - 1;
  const frame = Buffer.allocUnsafe(prefix.length + (dataEnd - dataStart) + 1);
  prefix.copy(frame, 0);
  bytes.copy(frame, prefix.length, dataStart, dataEnd);
  frame[frame.length - 1] = CLOSE_BRACE;
  return frame;
}
