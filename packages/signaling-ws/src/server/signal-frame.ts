// Signal frames in the layout Parley's client writes, `{"type":"signal","to":"<id>","data":<object>}`,
// and the frame relayed from one: the server's `from` before the client's own bytes of `data`.
//
// The relay hot path's frame check (`readCanonicalSignal`): such a frame recognised and validated
// on its bytes, without decoding it to a string or building its value.
//
// A frame that passes is exactly one that JSON.parse (RFC 8259) accepts and the wire schema
// (protocol.ts, `validateClientFrame`) accepts as a `signal`; the server then relays the client's
// own bytes of `data` behind its own `from`. Anything else (other frames, other key orders,
// escapes in the id, whitespace around the envelope, nesting deeper than `MAX_DEPTH`, bad JSON)
// is not judged here: the server parses and validates it in full, as before, and answers errors
// from there. So this check may only ever say "yes" to frames the full check accepts (the
// property tests in test/signal-frame.test.ts compare the two on generated and mutated frames).

import type { Session } from './session.js';

/** How a client that serializes `{type, to, data}` in that order (as ours does) starts a signal. */
const SIGNAL_HEAD = '{"type":"signal","to":"';
/** Between the id and the data value. */
const SIGNAL_DATA = '","data":';
const HEAD = Buffer.from(SIGNAL_HEAD);
const DATA_KEY = Buffer.from(SIGNAL_DATA);
/** Deeper data goes to the full parse (which has no such limit); the stack below is this deep. */
const MAX_DEPTH = 64;
/** Longest id (ID_PATTERN). */
const MAX_ID_LENGTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

/** Per byte: 1 for the id characters of ID_PATTERN (`[A-Za-z0-9_-]`). */
const ID_BYTE = new Uint8Array(256);
for (const c of Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-')) ID_BYTE[c] = 1;
/** Per byte: 1 for a character that may follow `\` in a JSON string (RFC 8259 §7), `u` aside. */
const SIMPLE_ESCAPE = new Uint8Array(256);
for (const c of Buffer.from('"\\/bfnrt')) SIMPLE_ESCAPE[c] = 1;
/** Per byte: 1 for hex digits. */
const HEX = new Uint8Array(256);
for (const c of Buffer.from('0123456789abcdefABCDEF')) HEX[c] = 1;
/** Per byte: 1 for JSON whitespace (RFC 8259 §2: space, tab, LF, CR). */
const SPACE = new Uint8Array(256);
for (const c of [0x20, 0x09, 0x0a, 0x0d]) SPACE[c] = 1;

/** The closing bytes of the containers open in `jsonValueEnd` (one scan at a time: it is synchronous). */
const CLOSERS = new Uint8Array(MAX_DEPTH);

/** Where a canonical signal's parts are in its bytes (see `readCanonicalSignal`). */
export interface CanonicalSignal {
  /** The target peer id (matches ID_PATTERN). */
  readonly to: string;
  /** Where the data object starts; it ends before the frame's last byte (its closing `}`). */
  readonly dataStart: number;
}

/**
 * The target and the data of `bytes` when it is a signal frame exactly as Parley's client writes
 * it: `{"type":"signal","to":"<id>","data":<object>}`, no whitespace outside `data`, the id as
 * plain characters of ID_PATTERN, `data` a JSON object nested at most 64 deep. Otherwise
 * undefined, and the caller must parse and validate the frame in full: undefined says nothing
 * about whether the frame is valid.
 *
 * `bytes` must be valid UTF-8 (the server checks that first): bytes 0x80 and above are taken as
 * parts of characters inside strings. With three distinct keys in a fixed order, duplicates (where
 * JSON.parse would keep the last) cannot arise.
 */
export function readCanonicalSignal(bytes: Buffer): CanonicalSignal | undefined {
  const end = bytes.length - 1;
  if (end < HEAD.length + 1 + DATA_KEY.length + 2 || bytes[end] !== CLOSE_BRACE) return undefined;
  for (let i = 0; i < HEAD.length; i++) if (bytes[i] !== HEAD[i]) return undefined;
  const toStart = HEAD.length;
  let i = toStart;
  const idLimit = Math.min(end, toStart + MAX_ID_LENGTH);
  while (i < idLimit && ID_BYTE[bytes[i]!] === 1) i++;
  const toEnd = i;
  if (toEnd === toStart) return undefined;
  for (let k = 0; k < DATA_KEY.length; k++, i++) if (bytes[i] !== DATA_KEY[k]) return undefined;
  if (bytes[i] !== OPEN_BRACE || jsonValueEnd(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.length), i, end) !== end) return undefined;
  return { to: bytes.toString('latin1', toStart, toEnd), dataStart: i };
}

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
  frame.set(prefix, 0);
  frame.set(bytes.subarray(dataStart, dataEnd), prefix.length);
  frame[frame.length - 1] = CLOSE_BRACE;
  return frame;
}

/**
 * Where the JSON value starting at `start` (no whitespace before it) ends, if it is valid JSON
 * (RFC 8259) and ends at or before `end`; -1 otherwise (also when nested deeper than MAX_DEPTH).
 * Iterative: containers on a stack of their closing bytes.
 */
function jsonValueEnd(b: Uint8Array, view: DataView, start: number, end: number): number {
  const closers = CLOSERS;
  let depth = 0;
  let i = start;
  // Each turn reads one value at `i` (whitespace skipped), then what may follow it in its container.
  for (;;) {
    while (i < end && SPACE[b[i]!] === 1) i++;
    if (i >= end) return -1;
    let c = b[i]!;
    if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (depth === MAX_DEPTH) return -1;
      const closer = c === OPEN_BRACE ? CLOSE_BRACE : CLOSE_BRACKET;
      i++;
      while (i < end && SPACE[b[i]!] === 1) i++;
      if (i >= end) return -1;
      if (b[i] === closer) {
        i++; // an empty container is a complete value
      } else {
        closers[depth++] = closer;
        if (closer === CLOSE_BRACE) {
          i = memberKeyEnd(b, view, i, end);
          if (i < 0) return -1;
        }
        continue; // its first value
      }
    } else if (c === QUOTE) {
      i = stringEnd(b, view, i, end);
    } else if (c === MINUS || (c >= ZERO && c <= NINE)) {
      i = numberEnd(b, i, end);
    } else if (c === 0x74 /* t */) {
      i = literalEnd(b, i, end, 'true');
    } else if (c === 0x66 /* f */) {
      i = literalEnd(b, i, end, 'false');
    } else if (c === 0x6e /* n */) {
      i = literalEnd(b, i, end, 'null');
    } else {
      return -1;
    }
    if (i < 0) return -1;
    // After a complete value: close containers, or go on to the next member or element.
    for (;;) {
      if (depth === 0) return i;
      while (i < end && SPACE[b[i]!] === 1) i++;
      if (i >= end) return -1;
      c = b[i]!;
      const closer = closers[depth - 1];
      if (c === closer) {
        depth--;
        i++;
        continue;
      }
      if (c !== COMMA) return -1;
      i++;
      if (closer === CLOSE_BRACE) {
        while (i < end && SPACE[b[i]!] === 1) i++;
        i = memberKeyEnd(b, view, i, end);
        if (i < 0) return -1;
      }
      break; // the next value
    }
  }
}

/** After `"key"` and its `:` (whitespace allowed around both) at `i`, or -1. */
function memberKeyEnd(b: Uint8Array, view: DataView, i: number, end: number): number {
  if (i >= end || b[i] !== QUOTE) return -1;
  i = stringEnd(b, view, i, end);
  if (i < 0) return -1;
  while (i < end && SPACE[b[i]!] === 1) i++;
  if (i >= end || b[i] !== COLON) return -1;
  return i + 1;
}

/**
 * After the string whose opening quote is at `i` (RFC 8259 §7), or -1. Plain runs go four bytes
 * at a time (`view` over the same bytes): a word is skipped when none of its bytes is `"`, `\`
 * or below 0x20, by the "has a zero byte" and "has a byte less than n" bit tricks (exact for
 * whether any byte matches; n = 0x20 <= 128).
 */
function stringEnd(b: Uint8Array, view: DataView, i: number, end: number): number {
  i++;
  for (;;) {
    while (i + 4 <= end) {
      const w = view.getInt32(i, true);
      const quote = w ^ 0x22222222;
      const backslash = w ^ 0x5c5c5c5c;
      if ((((quote - 0x01010101) & ~quote) | ((backslash - 0x01010101) & ~backslash) | ((w - 0x20202020) & ~w)) & 0x80808080) break;
      i += 4;
    }
    if (i >= end) return -1;
    const c = b[i]!;
    if (c === QUOTE) return i + 1;
    if (c < 0x20) return -1; // control characters must be escaped
    if (c === BACKSLASH) {
      if (i + 1 >= end) return -1;
      const e = b[i + 1]!;
      if (SIMPLE_ESCAPE[e] === 1) {
        i += 2;
      } else if (e === 0x75 /* u */) {
        if (i + 5 >= end || HEX[b[i + 2]!]! + HEX[b[i + 3]!]! + HEX[b[i + 4]!]! + HEX[b[i + 5]!]! !== 4) return -1;
        i += 6;
      } else {
        return -1;
      }
    } else {
      i++;
    }
  }
}

/** After the number starting at `i` (RFC 8259 §6: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`), or -1. */
function numberEnd(b: Uint8Array, i: number, end: number): number {
  if (b[i] === MINUS) i++;
  if (i >= end) return -1;
  if (b[i] === ZERO) {
    i++;
  } else if (b[i]! > ZERO && b[i]! <= NINE) {
    while (i < end && b[i]! >= ZERO && b[i]! <= NINE) i++;
  } else {
    return -1;
  }
  if (i < end && b[i] === DOT) {
    i++;
    const digits = i;
    while (i < end && b[i]! >= ZERO && b[i]! <= NINE) i++;
    if (i === digits) return -1;
  }
  if (i < end && (b[i] === 0x65 /* e */ || b[i] === 0x45) /* E */) {
    i++;
    if (i < end && (b[i] === PLUS || b[i] === MINUS)) i++;
    const digits = i;
    while (i < end && b[i]! >= ZERO && b[i]! <= NINE) i++;
    if (i === digits) return -1;
  }
  return i;
}

/** After `word` (true, false, null) at `i`, or -1. */
function literalEnd(b: Uint8Array, i: number, end: number, word: string): number {
  if (i + word.length > end) return -1;
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word.charCodeAt(k)) return -1;
  return i + word.length;
}
