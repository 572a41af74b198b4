import { fromCallback } from 'xstate';
import type { PeerMessage } from '@parley/core';
import { CLOSE_CODES, parseServerFrame } from '../protocol.js';
import type { ClientFrame, ServerFrame } from '../protocol.js';

// The W3C WebSocket surface the client needs (html §9.3), which browsers and `ws` both implement.
// Handler parameters are typed `never` so that both the DOM's and `ws`'s event types fit.

/** `WebSocket.readyState` values (html §9.3.1). */
export const READY_STATE = { connecting: 0, open: 1, closing: 2, closed: 3 } as const;

/** The part of a WebSocket (browsers' or the `ws` package's) the client uses. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((event: never) => unknown) | null;
  onmessage: ((event: never) => unknown) | null;
  onclose: ((event: never) => unknown) | null;
  onerror: ((event: never) => unknown) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** The global `WebSocket` of a browser, or `ws`'s class in Node. */
export type WebSocketConstructorLike = new (url: string) => WebSocketLike;

interface MessageEventLike {
  readonly data: unknown;
}
interface CloseEventLike {
  readonly code: number;
  readonly reason: string;
}

export interface SocketInput {
  readonly url: string;
}

/**
 * What the machine tells its socket: frames to send, in order. A batch, so that a flush is one
 * statically declared action (see `sendReadySignals`) rather than one built at run time.
 */
export type SocketCommand = { readonly type: 'SOCKET.SEND'; readonly frames: readonly ClientFrame<PeerMessage>[] };

/** What the socket tells the machine: its lifecycle, then each server frame as its own event. */
export type SocketEvent =
  | { readonly type: 'SOCKET.OPENED' }
  | { readonly type: 'SOCKET.CLOSED'; readonly code: number; readonly reason: string }
  | { readonly type: 'SOCKET.UNAVAILABLE'; readonly message: string }
  /** `send` was called while the socket was closing: the frame never left, the machine re-queues it. */
  | { readonly type: 'SOCKET.SEND_FAILED'; readonly frame: ClientFrame<PeerMessage> }
  | { readonly type: 'SERVER.WELCOME'; readonly frame: Extract<ServerFrame, { type: 'welcome' }> }
  | { readonly type: 'SERVER.ICE_SERVERS'; readonly frame: Extract<ServerFrame, { type: 'ice-servers' }> }
  | { readonly type: 'SERVER.PEER_JOINED'; readonly frame: Extract<ServerFrame, { type: 'peer-joined' }> }
  | { readonly type: 'SERVER.PEER_LEFT'; readonly frame: Extract<ServerFrame, { type: 'peer-left' }> }
  | { readonly type: 'SERVER.SIGNAL'; readonly frame: Extract<ServerFrame, { type: 'signal' }> }
  | { readonly type: 'SERVER.PONG' }
  | { readonly type: 'SERVER.ERROR'; readonly frame: Extract<ServerFrame, { type: 'error' }> }
  | { readonly type: 'SERVER.BAD_FRAME'; readonly message: string };

/** One server frame as a machine event; parsed once, here. */
export function serverFrameEvent(data: unknown): SocketEvent {
  if (typeof data !== 'string') return { type: 'SERVER.BAD_FRAME', message: 'binary frame (wire protocol v1 is text only)' };
  const parsed = parseServerFrame(data);
  if (!parsed.ok) return { type: 'SERVER.BAD_FRAME', message: parsed.message };
  const frame = parsed.frame;
  switch (frame.type) {
    case 'welcome':
      return { type: 'SERVER.WELCOME', frame };
    case 'ice-servers':
      return { type: 'SERVER.ICE_SERVERS', frame };
    case 'peer-joined':
      return { type: 'SERVER.PEER_JOINED', frame };
    case 'peer-left':
      return { type: 'SERVER.PEER_LEFT', frame };
    case 'signal':
      return { type: 'SERVER.SIGNAL', frame };
    case 'pong':
      return { type: 'SERVER.PONG' };
    case 'error':
      return { type: 'SERVER.ERROR', frame };
  }
}

const ignore = (): void => {};

/**
 * One WebSocket connection as a callback actor: opens on start, forwards lifecycle and frames as
 * events, sends `SOCKET.SEND` frames, and closes when the invoking state is left: with 4002
 * `reconnecting` when it holds a session (welcomed, no `leave` sent), so the server keeps the
 * session for the resume (a clean 1000 would end it at once); else with 1000 (RFC 6455 §7.4.1).
 * Handlers are detached first, so a socket that was given up can never talk to the machine again.
 */
export function webSocketActor(WebSocketImpl: WebSocketConstructorLike | undefined) {
  return fromCallback<SocketCommand, SocketInput>(({ input, sendBack, receive }) => {
    const send = (event: SocketEvent): void => sendBack(event);
    const Implementation = WebSocketImpl ?? globalWebSocket();
    if (Implementation === undefined) {
      send({ type: 'SOCKET.UNAVAILABLE', message: 'no WebSocket implementation: pass options.webSocket (e.g. the ws package)' });
      return undefined;
    }
    let socket: WebSocketLike;
    try {
      socket = new Implementation(input.url);
    } catch (error) {
      send({ type: 'SOCKET.UNAVAILABLE', message: error instanceof Error ? error.message : String(error) });
      return undefined;
    }
    socket.onopen = () => send({ type: 'SOCKET.OPENED' });
    let holdsSession = false;
    socket.onmessage = (event: MessageEventLike) => {
      const frameEvent = serverFrameEvent(event.data);
      if (frameEvent.type === 'SERVER.WELCOME') holdsSession = true;
      send(frameEvent);
    };
    // An `error` is always followed by `close` (html §9.3.4), which is what the machine acts on.
    socket.onerror = ignore;
    socket.onclose = (event: CloseEventLike) => send({ type: 'SOCKET.CLOSED', code: event.code, reason: event.reason });

    receive((command) => {
      for (const frame of command.frames) {
        if (socket.readyState === READY_STATE.open) {
          socket.send(JSON.stringify(frame));
          if (frame.type === 'leave') holdsSession = false;
        } else send({ type: 'SOCKET.SEND_FAILED', frame });
      }
    });

    return () => {
      socket.onopen = ignore;
      socket.onmessage = ignore;
      socket.onclose = ignore;
      socket.onerror = ignore; // `ws` throws on an `error` event without a listener
      if (socket.readyState === READY_STATE.connecting || socket.readyState === READY_STATE.open) {
        if (holdsSession) socket.close(CLOSE_CODES.reconnecting, 'client reconnecting');
        else socket.close(CLOSE_CODES.normal, 'client closing');
      }
    };
  });
}

/** The default socket: the environment's global `WebSocket` (browsers, Node 22+). */
export function globalWebSocket(): WebSocketConstructorLike | undefined {
  return (globalThis as { WebSocket?: WebSocketConstructorLike }).WebSocket;
}
