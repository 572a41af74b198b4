// Frames from clients: the relay hot path (a well-formed signal from a joined peer) and the
// dispatch of every other frame to its handler (wire protocol: src/protocol.ts).

import { isUtf8 } from 'node:buffer';
import type { RawData } from 'ws';
import { CLOSE_CODES, ID_PATTERN, isPlainObject, validateClientFrame } from '../protocol.js';
import type { WireFrame } from './broker.js';
import type { Connection } from './connection.js';
import type { ServerContext } from './context.js';
import { errorMessage } from './log.js';
import type { Session } from './session.js';
import { readCanonicalSignal, relayedBytes, sentDataStart } from './signal-frame.js';
import type { Sessions } from './sessions.js';

/** A relayed frame is at most this much longer than the client frame (`from` vs `to`, id length). */
const RELAY_GROWTH_BOUND = 96;

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

  /** The frame relayed from the client frame `bytes` with its data at `dataStart`: bytes if the broker takes them. */
  function relayedFrame(session: Session, bytes: Buffer, dataStart: number): WireFrame {
    return broker.takesBytes === true ? relayedBytes(session, bytes, dataStart) : session.signalPrefix + bytes.toString('utf8', dataStart, bytes.length - 1) + '}';
  }

  /** The frame relayed with `data` serialized again (a client frame in another layout). */
  function reserialized(conn: Connection, session: Session, data: Record<string, unknown>): string | undefined {
    try {
      return session.signalPrefix + JSON.stringify(data) + '}';
    } catch {
      outbox.sendError(conn, 'bad-message', 'data cannot be relayed');
      return undefined;
    }
  }

  /** Publishes `frame`, relayed from a client frame of `clientBytes` bytes, to `to`. */
  function relay(conn: Connection, session: Session, to: string, frame: WireFrame, clientBytes: number): void {
    // Stamping `from` can make the frame a little longer than the client's: keep it under the
    // limit the receiving clients use.
    if (typeof frame === 'string' ? clientBytes + RELAY_GROWTH_BOUND > maxPayload && Buffer.byteLength(frame) > maxPayload : frame.length > maxPayload) {
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
    const session = conn.session;
    // Hot path: a signal from a joined peer, in the client's layout, checked on its bytes.
    if (session !== undefined) {
      const signal = readCanonicalSignal(bytes);
      if (signal !== undefined) {
        relay(conn, session, signal.to, relayedFrame(session, bytes, signal.dataStart), bytes.length);
        return;
      }
    }
    let value: unknown;
    const text = bytes.toString('utf8');
    try {
      value = JSON.parse(text);
    } catch {
      outbox.sendError(conn, 'bad-json', 'frame is not valid JSON');
      return;
    }
    if (session !== undefined && isPlainObject(value) && value['type'] === 'signal') {
      const to = value['to'];
      const data = value['data'];
      if (typeof to === 'string' && ID_PATTERN.test(to) && isPlainObject(data)) {
        const dataStart = sentDataStart(text, to, value);
        const frame = dataStart >= 0 ? relayedFrame(session, bytes, dataStart) : reserialized(conn, session, data);
        if (frame !== undefined) relay(conn, session, to, frame, bytes.length);
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
        // (A valid signal from a joined peer was relayed above.)
        outbox.sendError(conn, 'not-joined', 'join a room before sending signals');
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
