// Frames from clients: the relay hot path (a well-formed signal from a joined peer) and the
// dispatch of every other frame to its handler (wire protocol: src/protocol.ts).

import { isUtf8 } from 'node:buffer';
import type { RawData } from 'ws';
import { CLOSE_CODES, ID_PATTERN, isPlainObject, validateClientFrame } from '../protocol.js';
import type { Connection } from './connection.js';
import type { ServerContext } from './context.js';
import { errorMessage } from './log.js';
import type { Session } from './session.js';
import type { Sessions } from './sessions.js';

/** A relayed frame is at most this much longer than the client frame (`from` vs `to`, id length). */
const RELAY_GROWTH_BOUND = 96;

/** How a client that serializes `{type, to, data}` in that order (as ours does) starts a signal. */
const SIGNAL_HEAD = '{"type":"signal","to":"';
const SIGNAL_DATA = '","data":';
const CLOSE_BRACE = 0x7d;

/**
 * The text of `data` as the client sent it, when the frame (already parsed to `frame`, a valid
 * signal to `to`) is `{"type":"signal","to":"<to>","data":` + that text + `}` and has no keys
 * but these three; otherwise undefined (the server then serializes `data` again). Relaying the
 * client's own text saves a JSON.stringify of up to `maxPayload` bytes per signal.
 *
 * Why the relayed frame is still what the server checked: a top-level key after `data` in the
 * text can only repeat `type`, `to` or `data` (there are three keys), and JSON.parse keeps the
 * last of each, which is what the server validated: `type` "signal", `to` this very id (the
 * text starts with it), `data` an object. The frame relayed is `{"type":"signal","from":"<id>",
 * "data":` + the text + `}`: its only top-level `from` is the server's, whichever duplicate a
 * receiver's parser keeps; `data` stays opaque, as it always was.
 */
export function sentDataText(text: string, to: string, frame: Record<string, unknown>): string | undefined {
  const toAt = SIGNAL_HEAD.length;
  const dataAt = toAt + to.length + SIGNAL_DATA.length;
  if (
    text.charCodeAt(text.length - 1) !== CLOSE_BRACE ||
    !text.startsWith(SIGNAL_HEAD) ||
    !text.startsWith(to, toAt) ||
    !text.startsWith(SIGNAL_DATA, toAt + to.length)
  ) {
    return undefined;
  }
  let keys = 0;
  for (const key in frame) {
    if (Object.hasOwn(frame, key) && ++keys > 3) return undefined;
  }
  return text.slice(dataAt, -1);
}

/** Handles the frames of connections. */
export interface FrameHandler {
  /** A WebSocket message from `conn` (rate limit, UTF-8, backlog while joining, then the frame). */
  readonly onMessage: (conn: Connection, data: RawData, isBinary: boolean) => void;
  /** One text frame, now (also for frames taken from a join backlog). */
  readonly handleFrame: (conn: Connection, bytes: Buffer) => void;
}

/** Creates the frame handler; `sessions` is read when the first frame arrives. */
export function createFrameHandler(ctx: ServerContext, sessions: () => Sessions): FrameHandler {
  const { options, broker, outbox, log } = ctx;
  const { maxPayload, messagesPerSecond } = options;

  function relay(conn: Connection, session: Session, to: string, data: Record<string, unknown>, frameBytes: number, dataText?: string): void {
    let frame: string;
    try {
      frame = session.signalPrefix + (dataText ?? JSON.stringify(data)) + '}';
    } catch {
      outbox.sendError(conn, 'bad-message', 'data cannot be relayed');
      return;
    }
    // Stamping `from` can make the frame a little longer than the client's: keep it under the
    // limit the receiving clients use.
    if (frameBytes + RELAY_GROWTH_BOUND > maxPayload && Buffer.byteLength(frame) > maxPayload) {
      outbox.sendError(conn, 'too-large', `the relayed signal would exceed ${maxPayload} bytes`);
      return;
    }
    const published = broker.publish(session.room, to, frame, session.id);
    if (published === true) ctx.relayed += 1;
    else if (published === false) outbox.sendError(conn, 'unknown-peer', 'no such peer in this room', to);
    else {
      published.then(
        (ok) => {
          if (ok) ctx.relayed += 1;
          else outbox.sendError(conn, 'unknown-peer', 'no such peer in this room', to);
        },
        (e: unknown) => {
          log({ level: 'error', event: 'broker-error', operation: 'publish', message: errorMessage(e) });
          outbox.sendError(conn, 'undeliverable', 'the signal could not be published', to);
        },
      );
    }
  }

  function handleText(conn: Connection, bytes: Buffer): void {
    let value: unknown;
    const text = bytes.toString('utf8');
    try {
      value = JSON.parse(text);
    } catch {
      outbox.sendError(conn, 'bad-json', 'frame is not valid JSON');
      return;
    }
    // Hot path: a well-formed signal from a joined peer; `data` is opaque (already size-bounded).
    const session = conn.session;
    if (session !== undefined && isPlainObject(value) && value['type'] === 'signal') {
      const to = value['to'];
      const data = value['data'];
      if (typeof to === 'string' && ID_PATTERN.test(to) && isPlainObject(data)) {
        relay(conn, session, to, data, bytes.length, sentDataText(text, to, value));
        return;
      }
    }
    const parsed = validateClientFrame(value);
    if (!parsed.ok) {
      outbox.sendError(conn, parsed.code, parsed.message);
      return;
    }
    const frame = parsed.frame;
    switch (frame.type) {
      case 'join':
        sessions().join(conn, frame);
        return;
      case 'signal':
        if (session === undefined) outbox.sendError(conn, 'not-joined', 'join a room before sending signals');
        else relay(conn, session, frame.to, frame.data, bytes.length);
        return;
      case 'leave':
        sessions().leave(conn);
        return;
      case 'ping':
        outbox.send(conn, '{"type":"pong"}');
        return;
      case 'refresh-ice-servers':
        sessions().refreshIceServers(conn);
        return;
    }
  }

  function handleFrame(conn: Connection, bytes: Buffer): void {
    try {
      handleText(conn, bytes);
    } catch (error) {
      log({ level: 'error', event: 'handler-error', conn: conn.cid, message: errorMessage(error) });
      try {
        outbox.sendError(conn, 'bad-message', 'frame could not be handled');
      } catch {
        // The socket is gone; its close handler cleans up.
      }
    }
  }

  function onMessage(conn: Connection, data: RawData, isBinary: boolean): void {
    if (conn.isClosingOrClosed) return;
    conn.liveness = 'answered';
    const verdict = conn.limiter.take(ctx.now());
    if (verdict !== 'accept') {
      if (verdict === 'abuse') outbox.close(conn, CLOSE_CODES.rateLimited, 'rate limit exceeded');
      else outbox.sendError(conn, 'rate-limited', `more than ${messagesPerSecond} messages per second; message dropped`);
      return;
    }
    if (isBinary || !Buffer.isBuffer(data)) {
      outbox.sendError(conn, 'bad-message', 'binary frames are not accepted: send one JSON object per text frame');
      return;
    }
    // UTF-8 is checked here instead of by ws (same check), so that a bad text frame gets an
    // error frame rather than a 1007 close.
    if (!isUtf8(data)) {
      outbox.sendError(conn, 'bad-json', 'text frame is not valid UTF-8');
      return;
    }
    if (conn.state.kind === 'joining') {
      if (!sessions().addToBacklog(conn, data)) outbox.sendError(conn, 'rate-limited', 'too many frames while joining');
      return;
    }
    handleFrame(conn, data);
  }

  return { onMessage, handleFrame };
}
