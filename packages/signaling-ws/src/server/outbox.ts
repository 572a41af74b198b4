// Sending frames to connections, with write coalescing, and closing them.
//
// Write coalescing: the first frame sent to a socket corks it, and every corked socket is
// uncorked in a microtask, once the callback that is running (one read from one socket, a
// broker answer) has handled all its frames. A burst for one peer (several signals read from
// its partner's socket at once, as trickle ICE sends them; a welcome and what was held for it)
// then costs one writev instead of one per frame; a lone frame waits for nothing. Write
// syscalls are most of the server's CPU under load (apps/bench, signaling benchmark).

import { WebSocket } from 'ws';
import { CLOSE_CODES, type ErrorCode } from '../protocol.js';
import type { WireFrame } from './broker.js';
import type { Connection } from './connection.js';
import { errorMessage, type Logger } from './log.js';

/** Sends frames to connections and closes them. */
export interface Outbox {
  /**
   * Sends one serialized frame (text, or its UTF-8 bytes: a text frame either way); false when it was not sent: the socket is not open, or it is
   * past `maxBufferedBytes` and is closed as a slow consumer instead (its session then holds it).
   */
  readonly send: (conn: Connection, frame: WireFrame) => boolean;
  /** Sends an `error` frame (with `to`, the target of a signal, when given). */
  readonly sendError: (conn: Connection, code: ErrorCode, message: string, to?: string) => void;
  /** Starts the close handshake (RFC 6455 §7.1.2) with `code`; the connection becomes `closing`. */
  readonly close: (conn: Connection, code: number, reason: string) => void;
}

/** `ws` send options: bytes go out as a text frame (RFC 6455 §5.6, opcode 0x1), as text does. */
const TEXT = { binary: false } as const;

/**
 * Creates the outbox. `onServerClose` runs when the server starts closing a connection (before
 * its state becomes `closing`), so that its session can leave the socket at once.
 */
export function createOutbox(maxBufferedBytes: number, log: Logger, onServerClose: (conn: Connection, code: number) => void): Outbox {
  // An array and a flag on each connection, not a Set: no Set allocated per flush and no hash
  // lookup per frame on the relay path.
  let corked: Connection[] = [];

  function flushCorked(): void {
    const list = corked;
    corked = [];
    for (const conn of list) {
      conn.corked = false;
      conn.socket.uncork();
    }
  }

  function send(conn: Connection, frame: WireFrame): boolean {
    const ws = conn.ws;
    if (ws.readyState !== WebSocket.OPEN) return false;
    if (ws.bufferedAmount > maxBufferedBytes) {
      close(conn, CLOSE_CODES.policyViolation, 'slow consumer: too much unsent data');
      return false;
    }
    if (!conn.corked) {
      if (corked.length === 0) queueMicrotask(flushCorked);
      corked.push(conn);
      conn.corked = true;
      conn.socket.cork();
    }
    ws.send(frame, TEXT);
    return true;
  }

  function sendError(conn: Connection, code: ErrorCode, message: string, to?: string): void {
    log({ level: 'warn', event: 'frame-error', conn: conn.cid, peer: conn.session?.id, code });
    send(conn, JSON.stringify(to === undefined ? { type: 'error', code, message } : { type: 'error', code, message, to }));
  }

  function close(conn: Connection, code: number, reason: string): void {
    if (conn.isClosingOrClosed) return;
    onServerClose(conn, code);
    conn.state = { kind: 'closing' };
    const routine = code === CLOSE_CODES.goingAway || code === CLOSE_CODES.serviceRestart;
    log({ level: routine ? 'info' : 'warn', event: 'closing', conn: conn.cid, code, reason });
    try {
      conn.ws.close(code, reason);
    } catch (error) {
      log({ level: 'error', event: 'close-failed', conn: conn.cid, message: errorMessage(error) });
      conn.ws.terminate();
    }
  }

  return { send, sendError, close };
}
