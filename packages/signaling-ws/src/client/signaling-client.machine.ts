import { assign, emit, enqueueActions, sendTo, setup } from 'xstate';
import { CLOSE_CODES } from '../protocol.js';
import type { ClientFrame, IceServerConfig, JoinFrame, PeerInfo, SignalFrame } from '../protocol.js';
import { FATAL_JOIN_ERRORS, SignalingError } from './errors.js';
import { webSocketActor } from './websocket.js';
import type { SocketEvent } from './websocket.js';

// DESIGN.md, "Machines" item 7: connecting -> joined -> reconnecting (backoff) -> joined | closed.
// The socket lives in `online` (an invoked callback actor); leaving `online` closes it, so
// `reconnecting` and `closed` never hold a socket. Outgoing signals that cannot go out now wait
// in `context.queue` and leave in order right after the next `welcome`.

/** Opaque peer-message payload, as the wire carries it. */
export type SignalData = SignalFrame['data'];

export interface SelfInfo {
  readonly id: string;
  readonly name: string;
  readonly room: string;
}

export interface QueuedSignal {
  readonly to: string;
  readonly data: SignalData;
}

export interface SignalingClientInput {
  readonly url: string;
  readonly room: string;
  readonly name: string;
  readonly token?: string;
  /** Bound of the outgoing queue; when full, the newest message is refused (default 1000). */
  readonly maxQueue?: number;
  /** Application-level ping/pong (default true); browsers cannot see WebSocket pings. */
  readonly keepalive?: boolean;
}

export interface SignalingClientContext {
  readonly url: string;
  readonly room: string;
  readonly name: string;
  readonly token: string | undefined;
  readonly maxQueue: number;
  readonly keepalive: boolean;
  /** Our identity in the room, from the last `welcome`; kept while reconnecting. */
  readonly self: SelfInfo | null;
  /** Resume token of the last `welcome`, sent with the next `join`. */
  readonly resume: string | null;
  /** The other members of the room (never includes self). */
  readonly peers: readonly PeerInfo[];
  readonly iceServers: readonly IceServerConfig[];
  /** Signals waiting for a `welcome` (or, after a server restart, for their peer to come back). */
  readonly queue: readonly QueuedSignal[];
  /** Peers known under an id the server has forgotten (it restarted): old id -> name. */
  readonly formerPeers: readonly PeerInfo[];
  /** Names of peers we were with before the server restarted and that have not rejoined yet. */
  readonly awaitingNames: readonly string[];
  /** Reconnect attempts since the last `welcome`; drives the backoff. */
  readonly attempt: number;
  /** Close code and reason of the last socket that went away. */
  readonly lastClose: { readonly code: number; readonly reason: string } | null;
  /** Why the client ended, when it was not the user's `CLOSE`. */
  readonly closeReason: SignalingError | null;
}

export type SignalingClientEvent =
  | SocketEvent
  | { readonly type: 'SEND'; readonly to: string; readonly data: SignalData }
  | { readonly type: 'CLOSE' };

export type SignalingClientEmitted =
  | { readonly type: 'signal'; readonly from: string; readonly data: SignalData }
  | { readonly type: 'error'; readonly error: SignalingError };

export interface SignalingClientOutput {
  /** `null` after `CLOSE`; the fatal error otherwise. */
  readonly reason: SignalingError | null;
}

export const DEFAULT_MAX_QUEUE = 1000;
export const BACKOFF_BASE_MS = 250;
export const BACKOFF_CAP_MS = 10_000;

/**
 * Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And
 * Jitter"): a uniform draw in [0, min(cap, base * 2^attempt)).
 */
export function fullJitterBackoff(
  attempt: number,
  random: () => number = Math.random,
  baseMs: number = BACKOFF_BASE_MS,
  capMs: number = BACKOFF_CAP_MS,
): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/**
 * Where a signal to `to` goes now: the id itself when that peer is here (or unknown to us: the
 * server judges), the new id of the same name when the server restarted and handed out new ids,
 * or `null` (keep it queued) while that peer has not come back yet.
 */
export function resolveTarget(context: SignalingClientContext, to: string): string | null {
  if (context.peers.some((peer) => peer.id === to)) return to;
  const name = context.formerPeers.find((peer) => peer.id === to)?.name;
  if (name === undefined) return to;
  const current = context.peers.find((peer) => peer.name === name);
  if (current !== undefined) return current.id;
  return context.awaitingNames.includes(name) ? null : to;
}

/** Splits queued signals into those that can go out now (with their resolved target) and the rest. */
export function planFlush(
  context: SignalingClientContext,
  queue: readonly QueuedSignal[],
): { readonly ready: readonly QueuedSignal[]; readonly waiting: readonly QueuedSignal[] } {
  const ready: QueuedSignal[] = [];
  const waiting: QueuedSignal[] = [];
  for (const entry of queue) {
    const to = resolveTarget(context, entry.to);
    if (to === null) waiting.push(entry);
    else ready.push(to === entry.to ? entry : { to, data: entry.data });
  }
  return { ready, waiting };
}

function signalCommand(to: string, data: SignalData) {
  return { type: 'SOCKET.SEND', frame: { type: 'signal', to, data } satisfies ClientFrame } as const;
}

function queueFullError(to: string, maxQueue: number): SignalingError {
  return new SignalingError('queue-full', `outgoing queue is full (${maxQueue} messages); the newest message to ${to} was refused`, {
    source: 'client',
    peerId: to,
  });
}

export const signalingClientMachine = setup({
  types: {
    context: {} as SignalingClientContext,
    events: {} as SignalingClientEvent,
    input: {} as SignalingClientInput,
    emitted: {} as SignalingClientEmitted,
    output: {} as SignalingClientOutput,
  },
  actors: {
    // The default uses the global WebSocket; `createSignalingClient` provides the one it is given.
    webSocket: webSocketActor(undefined),
  },
  delays: {
    reconnectBackoff: ({ context }) => fullJitterBackoff(context.attempt),
    keepaliveInterval: 25_000,
    keepaliveTimeout: 10_000,
    rejoinGrace: 30_000,
  },
  guards: {
    isFatalJoinError: ({ event }) => event.type === 'SERVER.ERROR' && FATAL_JOIN_ERRORS.includes(event.frame.code),
    isRefusedByServer: ({ event }) => event.type === 'SOCKET.CLOSED' && event.code === CLOSE_CODES.unauthorized,
    isReplacedByAnotherConnection: ({ event }) => event.type === 'SOCKET.CLOSED' && event.code === CLOSE_CODES.replaced,
    isKeepaliveEnabled: ({ context }) => context.keepalive,
    isAwaitedPeer: ({ context, event }) => event.type === 'SERVER.PEER_JOINED' && context.awaitingNames.includes(event.frame.peer.name),
    isAwaitingPeers: ({ context }) => context.awaitingNames.length > 0,
  },
  actions: {
    sendJoin: sendTo('socket', ({ context }) => {
      const frame: JoinFrame = {
        type: 'join',
        room: context.room,
        name: context.name,
        ...(context.token !== undefined ? { token: context.token } : {}),
        ...(context.resume !== null ? { resume: context.resume } : {}),
      };
      return { type: 'SOCKET.SEND', frame } as const;
    }),
    sendLeave: sendTo('socket', { type: 'SOCKET.SEND', frame: { type: 'leave' } } as const),
    sendPing: sendTo('socket', { type: 'SOCKET.SEND', frame: { type: 'ping' } } as const),

    storeWelcome: assign(({ context, event }) => {
      if (event.type !== 'SERVER.WELCOME') return {};
      const welcome = event.frame;
      // A new id means the server forgot us (it restarted): every id it gave out before is gone.
      const identityLost = context.self !== null && context.self.id !== welcome.id;
      const present = new Set(welcome.peers.map((peer) => peer.name));
      const awaited = identityLost ? [...context.awaitingNames, ...context.peers.map((peer) => peer.name)] : context.awaitingNames;
      return {
        self: { id: welcome.id, name: context.name, room: context.room },
        resume: welcome.resume,
        peers: welcome.peers,
        iceServers: welcome.iceServers,
        formerPeers: identityLost ? [...context.formerPeers, ...context.peers] : context.formerPeers,
        awaitingNames: [...new Set(awaited)].filter((name) => !present.has(name)),
        attempt: 0,
      };
    }),
    /** Sends every queued signal whose peer is here, in queue order; the rest stay queued. */
    flushQueue: enqueueActions(({ context, enqueue }) => {
      if (context.queue.length === 0) return;
      const { ready, waiting } = planFlush(context, context.queue);
      for (const { to, data } of ready) enqueue.sendTo('socket', signalCommand(to, data));
      enqueue.assign({ queue: waiting });
    }),
    /** While not joined: queue, or refuse the newest message when the queue is full. */
    enqueueSignal: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'SEND' && event.type !== 'SOCKET.SEND_FAILED') return;
      const entry = event.type === 'SEND' ? { to: event.to, data: event.data } : event.frame.type === 'signal' ? event.frame : null;
      if (entry === null) return; // a join, leave or ping that did not leave is moot
      if (context.queue.length >= context.maxQueue) {
        enqueue.emit({ type: 'error', error: queueFullError(entry.to, context.maxQueue) });
        return;
      }
      enqueue.assign({ queue: [...context.queue, { to: entry.to, data: entry.data }] });
    }),
    /** While joined: straight to the socket, unless its peer is still expected back. */
    sendOrQueueSignal: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'SEND') return;
      const to = resolveTarget(context, event.to);
      if (to !== null) {
        enqueue.sendTo('socket', signalCommand(to, event.data));
      } else if (context.queue.length >= context.maxQueue) {
        enqueue.emit({ type: 'error', error: queueFullError(event.to, context.maxQueue) });
      } else {
        enqueue.assign({ queue: [...context.queue, { to: event.to, data: event.data }] });
      }
    }),
    addPeer: assign(({ context, event }) => {
      if (event.type !== 'SERVER.PEER_JOINED') return {};
      const peer = event.frame.peer;
      return {
        peers: [...context.peers.filter((known) => known.id !== peer.id), peer],
        awaitingNames: context.awaitingNames.filter((name) => name !== peer.name),
      };
    }),
    removePeer: assign(({ context, event }) => {
      if (event.type !== 'SERVER.PEER_LEFT' || !context.peers.some((peer) => peer.id === event.frame.id)) return {};
      return { peers: context.peers.filter((peer) => peer.id !== event.frame.id) };
    }),
    emitSignal: emit(({ event }) => {
      if (event.type !== 'SERVER.SIGNAL') throw new Error(`emitSignal on ${event.type}`);
      return { type: 'signal', from: event.frame.from, data: event.frame.data } as const;
    }),
    reportServerError: emit(({ event }) => {
      if (event.type !== 'SERVER.ERROR') throw new Error(`reportServerError on ${event.type}`);
      return { type: 'error', error: new SignalingError(event.frame.code, event.frame.message, { source: 'server' }) } as const;
    }),
    reportBadFrame: emit(({ event }) => {
      const message = event.type === 'SERVER.BAD_FRAME' ? event.message : 'bad frame';
      return { type: 'error', error: new SignalingError('bad-server-frame', message, { source: 'server' }) } as const;
    }),
    reportKeepaliveTimeout: emit({
      type: 'error',
      error: new SignalingError('keepalive-timeout', 'no pong from the server in time; reconnecting', { source: 'client' }),
    }),
    /** Gives up on peers that did not come back after a server restart: their messages are dropped. */
    dropMessagesForAbsentPeers: enqueueActions(({ context, enqueue }) => {
      const { waiting } = planFlush(context, context.queue);
      const dropped = new Map<string, number>();
      for (const entry of waiting) dropped.set(entry.to, (dropped.get(entry.to) ?? 0) + 1);
      for (const [to, count] of dropped) {
        const error = new SignalingError('peer-gone', `peer ${to} did not come back after the server restarted; ${count} queued message(s) dropped`, {
          source: 'client',
          peerId: to,
        });
        enqueue.emit({ type: 'error', error });
      }
      // Entries that can go (re-queued from a closing socket) wait for the next welcome as usual.
      enqueue.assign({ queue: context.queue.filter((entry) => !waiting.includes(entry)), awaitingNames: [] });
    }),
    rememberClose: assign(({ event }) => (event.type === 'SOCKET.CLOSED' ? { lastClose: { code: event.code, reason: event.reason } } : {})),
    forgetResumeToken: assign({ resume: null }),
    countReconnectAttempt: assign(({ context }) => ({ attempt: context.attempt + 1 })),
    endWithJoinError: enqueueActions(({ event, enqueue }) => {
      if (event.type !== 'SERVER.ERROR') return;
      const error = new SignalingError(event.frame.code, event.frame.message, { source: 'server', fatal: true });
      enqueue.assign({ closeReason: error });
      enqueue.emit({ type: 'error', error });
    }),
    endWithServerClose: enqueueActions(({ event, enqueue }) => {
      if (event.type !== 'SOCKET.CLOSED') return;
      const replaced = event.code === CLOSE_CODES.replaced;
      const error = new SignalingError(
        replaced ? 'replaced' : 'unauthorized',
        event.reason || (replaced ? 'another connection resumed this identity' : 'the server refused the connection'),
        { source: 'server', fatal: true, closeCode: event.code },
      );
      enqueue.assign({ closeReason: error, lastClose: { code: event.code, reason: event.reason } });
      enqueue.emit({ type: 'error', error });
    }),
    endWithSocketUnavailable: enqueueActions(({ event, enqueue }) => {
      if (event.type !== 'SOCKET.UNAVAILABLE') return;
      const error = new SignalingError('socket-unavailable', event.message, { source: 'client', fatal: true });
      enqueue.assign({ closeReason: error });
      enqueue.emit({ type: 'error', error });
    }),
  },
}).createMachine({
  id: 'signalingClient',
  description: 'Joins a room on a Parley signaling server and stays joined: reconnects, resumes, queues.',
  context: ({ input }) => ({
    url: input.url,
    room: input.room,
    name: input.name,
    token: input.token,
    maxQueue: input.maxQueue ?? DEFAULT_MAX_QUEUE,
    keepalive: input.keepalive ?? true,
    self: null,
    resume: null,
    peers: [],
    iceServers: [],
    queue: [],
    formerPeers: [],
    awaitingNames: [],
    attempt: 0,
    lastClose: null,
    closeReason: null,
  }),
  output: ({ context }) => ({ reason: context.closeReason }),
  initial: 'online',
  on: {
    SEND: { actions: 'enqueueSignal' },
  },
  states: {
    online: {
      description: 'A socket exists; leaving this state closes it (code 1000).',
      invoke: { id: 'socket', src: 'webSocket', input: ({ context }) => ({ url: context.url }) },
      initial: 'connecting',
      on: {
        'SOCKET.CLOSED': [
          { guard: 'isRefusedByServer', target: 'closed', actions: 'endWithServerClose' },
          { guard: 'isReplacedByAnotherConnection', target: 'closed', actions: 'endWithServerClose' },
          { target: 'reconnecting', actions: 'rememberClose' },
        ],
        'SOCKET.UNAVAILABLE': { target: 'closed', actions: 'endWithSocketUnavailable' },
        'SOCKET.SEND_FAILED': { actions: 'enqueueSignal' },
        'SERVER.ERROR': { actions: 'reportServerError' },
        'SERVER.BAD_FRAME': { actions: 'reportBadFrame' },
        CLOSE: { target: '.leaving' },
      },
      states: {
        connecting: {
          description: 'Opening the socket, then waiting for the welcome to our join.',
          initial: 'opening',
          states: {
            opening: {
              description: 'WebSocket CONNECTING; nothing can be sent yet.',
              on: {
                'SOCKET.OPENED': { target: 'joining', actions: 'sendJoin' },
                CLOSE: { target: '#signalingClient.closed' },
              },
            },
            joining: {
              description: 'join sent (with the resume token, if any); waiting for welcome.',
              on: {
                'SERVER.WELCOME': { target: '#signalingClient.online.joined', actions: ['storeWelcome', 'flushQueue'] },
                'SERVER.ERROR': [
                  { guard: 'isFatalJoinError', target: '#signalingClient.closed', actions: 'endWithJoinError' },
                  // Any other answer to a join (a resume the server could not honour, a rate limit):
                  // try again later as a fresh join.
                  { target: '#signalingClient.reconnecting', actions: ['reportServerError', 'forgetResumeToken'] },
                ],
              },
            },
          },
        },
        joined: {
          description: 'A member of the room: signals go straight out, presence is tracked.',
          initial: 'live',
          on: {
            SEND: { actions: 'sendOrQueueSignal' },
            'SERVER.PEER_JOINED': [{ guard: 'isAwaitedPeer', actions: ['addPeer', 'flushQueue'] }, { actions: 'addPeer' }],
            'SERVER.PEER_LEFT': { actions: 'removePeer' },
            'SERVER.SIGNAL': { actions: 'emitSignal' },
          },
          after: {
            rejoinGrace: { guard: 'isAwaitingPeers', actions: 'dropMessagesForAbsentPeers' },
          },
          states: {
            live: {
              description: 'Connection believed alive; a ping goes out after keepaliveInterval.',
              after: { keepaliveInterval: { guard: 'isKeepaliveEnabled', target: 'awaitingPong', actions: 'sendPing' } },
            },
            awaitingPong: {
              description: 'ping sent; no pong within keepaliveTimeout means the connection is dead.',
              on: { 'SERVER.PONG': { target: 'live' } },
              after: { keepaliveTimeout: { target: '#signalingClient.reconnecting', actions: 'reportKeepaliveTimeout' } },
            },
          },
        },
        leaving: {
          description: 'CLOSE: leave goes out on the still-open socket before it is closed with 1000.',
          entry: 'sendLeave',
          always: { target: '#signalingClient.closed' },
        },
      },
    },
    reconnecting: {
      description: 'No socket; waiting reconnectBackoff (exponential, full jitter) before the next one.',
      after: { reconnectBackoff: { target: 'online', actions: 'countReconnectAttempt' } },
      on: { CLOSE: { target: 'closed' } },
    },
    closed: {
      description: 'Done, by CLOSE or a fatal error (context.closeReason); the socket is closed.',
      type: 'final',
    },
  },
});
