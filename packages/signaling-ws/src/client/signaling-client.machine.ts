import { assign, emit, enqueueActions, not, sendTo, setup } from 'xstate';
import type { PeerMessage } from '@parley/core';
import { CLOSE_CODES, DEFAULT_RATE_LIMIT } from '../protocol.js';
import type { ClientFrame, IceServerConfig, JoinFrame, PeerInfo, SignalPayload } from '../protocol.js';
import { FATAL_JOIN_ERRORS, SignalingError } from './errors.js';
import { webSocketActor } from './websocket.js';
import type { SocketCommand, SocketEvent } from './websocket.js';

// docs/architecture.md, "Machines": signalingClient: connecting -> joined -> reconnecting (backoff) -> joined | closed.
// The socket lives in `online` (an invoked callback actor); leaving `online` closes it, so
// `reconnecting` and `closed` never hold a socket. Outgoing signals that cannot go out now wait
// in `context.queue` and leave in order right after the next `welcome`, no faster than a token
// bucket allows (`sendBurst` at once, then `sendRate` per second) so that the server's rate limit
// never drops them: a signal waits in the queue while the bucket is empty, and every later one
// waits behind it.

/** What a relayed `signal` carries before validation (the client checks it with `parsePeerMessage`). */
export type SignalData = SignalPayload;

/** This client's identity in its room, from the server's `welcome`. */
export interface SelfInfo {
  readonly id: string;
  readonly name: string;
  readonly room: string;
}

/** A peer message waiting to be sent (while not joined, or over the send rate). */
export interface QueuedSignal {
  readonly to: string;
  readonly data: PeerMessage;
}

/** The input of `signalingClientMachine`. */
export interface SignalingClientInput {
  readonly url: string;
  readonly room: string;
  readonly name: string;
  readonly token?: string;
  /** Bound of the outgoing queue; when full, the newest message is refused (default 1000). */
  readonly maxQueue?: number;
  /** Application-level ping/pong (default true); browsers cannot see WebSocket pings. */
  readonly keepalive?: boolean;
  /** Signals per second once the burst is spent (default 40, under the server's 50). */
  readonly sendRate?: number;
  /** Signals sent at once with a full bucket (default 150, under the server's 200); `Infinity` turns pacing off. */
  readonly sendBurst?: number;
}

/** The lifetime of the TURN credentials last received (see `iceServersRefreshDelay`). */
export interface IceServersExpiry {
  /** `iceServersExpireAt` of the `welcome` or `ice-servers` frame: the server's unix ms. */
  readonly expireAt: number;
  /** `Date.now()` when the frame arrived. */
  readonly receivedAt: number;
}

/** The context of `signalingClientMachine`: identity, members, queue and reconnect state. */
export interface SignalingClientContext {
  readonly url: string;
  readonly room: string;
  readonly name: string;
  readonly token: string | undefined;
  readonly maxQueue: number;
  readonly keepalive: boolean;
  readonly sendRate: number;
  readonly sendBurst: number;
  /**
   * Signals that could go out at `tokensAt` (the client's token bucket). Full on each `welcome`,
   * as the server's bucket is for a new connection; one back every `1 / sendRate` s up to
   * `sendBurst`, counted when a signal goes (`tokensNow`), so no timer runs while none waits.
   */
  readonly tokens: number;
  /** `Date.now()` when `tokens` was counted. */
  readonly tokensAt: number;
  /** Signals that a closing socket handed back, at the head of the queue (they were sent first). */
  readonly requeued: number;
  /** Our identity in the room, from the last `welcome`; kept while reconnecting. */
  readonly self: SelfInfo | null;
  /** Resume token of the last `welcome`, sent with the next `join`. */
  readonly resume: string | null;
  /** The other members of the room (never includes self). */
  readonly peers: readonly PeerInfo[];
  readonly iceServers: readonly IceServerConfig[];
  /**
   * When the TURN credentials in `iceServers` expire (the server's unix ms), and when they
   * arrived (our clock); `null` when they carry none (nothing to refresh).
   */
  readonly iceServersExpiry: IceServersExpiry | null;
  /**
   * Signals not sent yet, in order: waiting for a `welcome`, for a token, or (after a server
   * restart) for their peer to come back.
   */
  readonly queue: readonly QueuedSignal[];
  /**
   * Peers known under an id the server may have forgotten (it restarted), or that a `welcome`
   * after a reconnect did not list: old id -> name.
   */
  readonly formerPeers: readonly PeerInfo[];
  /** Names of peers we were with before a reconnect, not listed since, and not known to have left. */
  readonly awaitingNames: readonly string[];
  /** Reconnect attempts since the last `welcome`; drives the backoff. */
  readonly attempt: number;
  /** Close code and reason of the last socket that went away. */
  readonly lastClose: { readonly code: number; readonly reason: string } | null;
  /** Why the client ended, when it was not the user's `CLOSE`. */
  readonly closeReason: SignalingError | null;
}

/** Every event `signalingClientMachine` accepts. */
export type SignalingClientEvent =
  | SocketEvent
  | { readonly type: 'SEND'; readonly to: string; readonly data: PeerMessage }
  | { readonly type: 'CLOSE' };

/** What `signalingClientMachine` emits: peer messages, members and errors. */
export type SignalingClientEmitted =
  | { readonly type: 'signal'; readonly from: string; readonly data: SignalData }
  | { readonly type: 'error'; readonly error: SignalingError }
  /** A peer left the room for good: the server's `peer-left` (sent after its resume grace), or a
   * peer that did not come back within rejoinGrace after a server restart. */
  | { readonly type: 'peer-left'; readonly peer: PeerInfo };

/** What `signalingClientMachine` ends with. */
export interface SignalingClientOutput {
  /** `null` after `CLOSE`; the fatal error otherwise. */
  readonly reason: SignalingError | null;
}

/** Default `maxQueue`: outgoing peer messages held at most; when full, the newest is refused (`queue-full`). */
export const DEFAULT_MAX_QUEUE = 1000;
/** Default `sendRate`: 80 % of the server's default `messagesPerSecond` (50). */
export const DEFAULT_SEND_RATE = (DEFAULT_RATE_LIMIT.messagesPerSecond * 4) / 5;
/**
 * Default `sendBurst`: 75 % of the server's default burst (200). The margin leaves room for
 * `join`, `ping` and `leave` (they count on the server too) and for frames that the network
 * delivers closer together than they were sent.
 */
export const DEFAULT_SEND_BURST = (DEFAULT_RATE_LIMIT.burst * 3) / 4;
/** The longest `setTimeout` delay (2^31 - 1 ms, html §8.6 timers clamp to a signed 32-bit int). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Fresh TURN credentials are asked for no later than this before the old ones expire. */
export const ICE_SERVERS_REFRESH_MARGIN_MS = 60_000;
/** Never ask for fresh credentials sooner than this after the last ones came (a tiny TTL cannot make the client spin). */
export const ICE_SERVERS_REFRESH_FLOOR_MS = 1000;
/** A `refresh-ice-servers` left unanswered (e.g. dropped by the server's rate limit) is sent again after this. */
export const ICE_SERVERS_RETRY_MS = 10_000;

/**
 * When to ask for fresh TURN credentials, counted from their arrival, for credentials that live
 * `lifetimeMs` from then: at 80 % of the lifetime or `ICE_SERVERS_REFRESH_MARGIN_MS` before
 * expiry, whichever is sooner, but not before half the lifetime (a short TTL would otherwise
 * put the margin before the arrival) and never sooner than `ICE_SERVERS_REFRESH_FLOOR_MS`.
 * A lifetime of one day refreshes after 19.2 h, one of 2 min after 1 min, one of 5 s after 2.5 s.
 * Capped at the longest timer JavaScript keeps (a longer one would fire at once).
 */
export function iceServersRefreshDelay(lifetimeMs: number): number {
  const due = Math.min(lifetimeMs * 0.8, lifetimeMs - ICE_SERVERS_REFRESH_MARGIN_MS);
  return Math.min(MAX_TIMER_MS, Math.max(ICE_SERVERS_REFRESH_FLOOR_MS, Math.floor(Math.max(due, lifetimeMs / 2))));
}

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

/** The name of former peer `id` when we still wait for that name to rejoin (and no current peer has it). */
function awaitedFormerPeer(context: SignalingClientContext, id: string): string | undefined {
  const name = context.formerPeers.find((peer) => peer.id === id)?.name;
  if (name === undefined || !context.awaitingNames.includes(name)) return undefined;
  return context.peers.some((peer) => peer.name === name) ? undefined : name;
}

/** The peer a `peer-left` frame is about: one in the room, or one we wait for since a restart. */
function departedPeer(context: SignalingClientContext, event: SignalingClientEvent): PeerInfo | undefined {
  if (event.type !== 'SERVER.PEER_LEFT') return undefined;
  const id = event.frame.id;
  const present = context.peers.find((peer) => peer.id === id);
  if (present !== undefined) return present;
  return awaitedFormerPeer(context, id) === undefined ? undefined : context.formerPeers.find((peer) => peer.id === id);
}

/** The peers waited for since a restart, by name (the latest id each had), when the wait ends. */
function awaitedFormerPeers(context: SignalingClientContext): readonly PeerInfo[] {
  const byName = new Map<string, PeerInfo>();
  for (const peer of context.formerPeers) if (context.awaitingNames.includes(peer.name)) byName.set(peer.name, peer);
  return [...byName.values()];
}

/**
 * Splits queued signals into those that can go out now (with their resolved target), at most
 * `limit` of them, and the rest, in order. Once the limit is reached every later signal waits,
 * so nothing overtakes a signal that waits for a token.
 */
export function planFlush(
  context: SignalingClientContext,
  queue: readonly QueuedSignal[],
  limit = Infinity,
): { readonly ready: readonly QueuedSignal[]; readonly waiting: readonly QueuedSignal[] } {
  const ready: QueuedSignal[] = [];
  const waiting: QueuedSignal[] = [];
  for (const entry of queue) {
    const to = ready.length < limit ? resolveTarget(context, entry.to) : null;
    if (to === null) waiting.push(entry);
    else ready.push(to === entry.to ? entry : { to, data: entry.data });
  }
  return { ready, waiting };
}

/**
 * What a flush changes: the signals that go out now (at most `tokens` of them), the queue left,
 * and how many signals handed back by a closing socket are still at its head.
 */
function takeReady(context: SignalingClientContext, queue: readonly QueuedSignal[]) {
  const { ready, waiting } = context.tokens >= 1 ? planFlush(context, queue, Math.floor(context.tokens)) : { ready: [], waiting: queue };
  const head = new Set(queue.slice(0, context.requeued));
  const requeued = head.size === 0 ? 0 : waiting.filter((entry) => head.has(entry)).length;
  return { ready, queue: waiting, tokens: context.tokens - ready.length, requeued };
}

/** The tokens in the bucket now: `tokens` at `tokensAt`, plus one every `1 / sendRate` s since, up to `sendBurst`. */
function tokensNow(context: SignalingClientContext, now = Date.now()): number {
  if (context.tokens >= context.sendBurst) return context.tokens;
  return Math.min(context.sendBurst, context.tokens + ((now - context.tokensAt) * context.sendRate) / 1000);
}

/** The expiry a `welcome` or `ice-servers` frame announces, stamped with our clock. */
function expiryOf(expireAt: number | undefined): IceServersExpiry | null {
  return expireAt === undefined ? null : { expireAt, receivedAt: Date.now() };
}

function sendCommand(...frames: ClientFrame<PeerMessage>[]): SocketCommand {
  return { type: 'SOCKET.SEND', frames };
}

function signalFrame({ to, data }: QueuedSignal): ClientFrame<PeerMessage> {
  return { type: 'signal', to, data };
}

/** The signal an event asks to queue: a new SEND, or a signal the closing socket handed back. */
function signalToQueue(event: SignalingClientEvent): QueuedSignal | null {
  if (event.type === 'SEND') return { to: event.to, data: event.data };
  if (event.type === 'SOCKET.SEND_FAILED' && event.frame.type === 'signal') return { to: event.frame.to, data: event.frame.data };
  return null; // a join, leave or ping that did not leave is moot
}

function queueFullError(to: string, maxQueue: number): SignalingError {
  return new SignalingError('queue-full', `outgoing queue is full (${maxQueue} messages); the newest message to ${to} was refused`, {
    source: 'client',
    peerId: to,
  });
}

/**
 * The context a client starts with, returned as a spread of one literal: xstate builds the
 * first context and copies it on every `assign` with `Object.assign`, and V8 makes those copies
 * fast-mode objects only from a spread's map; from the 22-field literal itself each one is a
 * dictionary-mode object (see `initialPeerContext` in @parley/core's peer machine).
 */
function initialSignalingClientContext(input: SignalingClientInput): SignalingClientContext {
  const context: SignalingClientContext = {
    url: input.url,
    room: input.room,
    name: input.name,
    token: input.token,
    maxQueue: input.maxQueue ?? DEFAULT_MAX_QUEUE,
    keepalive: input.keepalive ?? true,
    sendRate: input.sendRate ?? DEFAULT_SEND_RATE,
    sendBurst: input.sendBurst ?? DEFAULT_SEND_BURST,
    tokens: input.sendBurst ?? DEFAULT_SEND_BURST,
    tokensAt: 0,
    requeued: 0,
    self: null,
    resume: null,
    peers: [],
    iceServers: [],
    iceServersExpiry: null,
    queue: [],
    formerPeers: [],
    awaitingNames: [],
    attempt: 0,
    lastClose: null,
    closeReason: null,
  };
  return { ...context };
}

/**
 * The signaling client: connect, join, stay joined (heartbeat, reconnect with jittered backoff,
 * resume the peer id), queue and rate-limit sends. `createSignalingClient` wraps it.
 */
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
    /** Until `refresh-ice-servers` goes out: see `iceServersRefreshDelay`. */
    iceServersRefresh: ({ context }) => {
      const expiry = context.iceServersExpiry;
      return iceServersRefreshDelay(expiry === null ? Infinity : expiry.expireAt - expiry.receivedAt);
    },
    iceServersRetry: ICE_SERVERS_RETRY_MS,
    /** One token back; whole milliseconds rounded up, so timer granularity never speeds it up. */
    /**
     * Until the bucket holds a whole token again, from when it was last counted; whole
     * milliseconds rounded up, so timer granularity never speeds it up (a timer that finds a
     * token short waits again for the rest).
     */
    nextToken: ({ context }) => Math.max(1, Math.ceil(((1 - context.tokens) * 1000) / context.sendRate) - (Date.now() - context.tokensAt)),
  },
  guards: {
    isFatalJoinError: ({ event }) => event.type === 'SERVER.ERROR' && FATAL_JOIN_ERRORS.includes(event.frame.code),
    isRefusedByServer: ({ event }) => event.type === 'SOCKET.CLOSED' && event.code === CLOSE_CODES.unauthorized,
    isReplacedByAnotherConnection: ({ event }) => event.type === 'SOCKET.CLOSED' && event.code === CLOSE_CODES.replaced,
    isKeepaliveEnabled: ({ context }) => context.keepalive,
    hasExpiringIceServers: ({ context }) => context.iceServersExpiry !== null,
    isAwaitedPeer: ({ context, event }) => event.type === 'SERVER.PEER_JOINED' && context.awaitingNames.includes(event.frame.peer.name),
    isAwaitingPeers: ({ context }) => context.awaitingNames.length > 0,
    isAwaitedPeerGone: ({ context, event }) =>
      event.type === 'SERVER.PEER_LEFT' && awaitedFormerPeer(context, event.frame.id) !== undefined,
    isKnownPeerLeaving: ({ context, event }) => departedPeer(context, event) !== undefined,
    isRateLimited: ({ event }) => event.type === 'SERVER.ERROR' && event.frame.code === 'rate-limited',
    isMootFrame: ({ event }) => event.type === 'SOCKET.SEND_FAILED' && event.frame.type !== 'signal',
    isQueueFull: ({ context }) => context.queue.length >= context.maxQueue,
    canSendAtOnce: ({ context, event }) =>
      event.type === 'SEND' && context.queue.length === 0 && tokensNow(context) >= 1 && resolveTarget(context, event.to) !== null,
    /**
     * A signal whose peer is here waits in the queue, and the bucket had no whole token for it
     * when it was last counted (each flush counts it first, and sends all it can).
     */
    isWaitingForToken: ({ context }) => context.tokens < 1 && context.queue.some((entry) => resolveTarget(context, entry.to) !== null),
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
      return sendCommand(frame);
    }),
    sendLeave: sendTo('socket', sendCommand({ type: 'leave' })),
    sendPing: sendTo('socket', sendCommand({ type: 'ping' })),
    sendRefreshIceServers: sendTo('socket', sendCommand({ type: 'refresh-ice-servers' })),
    /** Fresh TURN credentials (the answer to `refresh-ice-servers`): `iceServers$` fires with them. */
    storeIceServers: assign(({ event }) => {
      if (event.type !== 'SERVER.ICE_SERVERS') return {};
      return { iceServers: event.frame.iceServers, iceServersExpiry: expiryOf(event.frame.iceServersExpireAt) };
    }),

    storeWelcome: assign(({ context, event }) => {
      if (event.type !== 'SERVER.WELCOME') return {};
      const welcome = event.frame;
      // A new id means the server forgot us (it restarted): every id it gave out before is gone.
      const identityLost = context.self !== null && context.self.id !== welcome.id;
      // With the same id, a peer we knew that the welcome does not list either left while we were
      // away (the server kept our session: its `peer-left` follows among the held frames) or has
      // not rejoined yet (the server restarted and restored our id from the signed resume token).
      // Either way, wait for it by name until it rejoins, a `peer-left` says it is gone, or
      // rejoinGrace ends; messages to it are not sent into an `unknown-peer` meanwhile.
      const listed = new Set(welcome.peers.map((peer) => peer.id));
      const missing = context.self === null ? [] : identityLost ? context.peers : context.peers.filter((peer) => !listed.has(peer.id));
      const present = new Set(welcome.peers.map((peer) => peer.name));
      const awaited = [...context.awaitingNames, ...missing.map((peer) => peer.name)];
      return {
        self: { id: welcome.id, name: context.name, room: context.room },
        resume: welcome.resume,
        peers: welcome.peers,
        iceServers: welcome.iceServers,
        iceServersExpiry: expiryOf(welcome.iceServersExpireAt),
        formerPeers: missing.length > 0 ? [...context.formerPeers, ...missing] : context.formerPeers,
        awaitingNames: [...new Set(awaited)].filter((name) => !present.has(name)),
        attempt: 0,
        // A new connection: the server's bucket for it is full, so ours is too.
        tokens: context.sendBurst,
        tokensAt: Date.now(),
        requeued: 0,
      };
    }),
    /**
     * A flush, as two actions: the signals whose peer is here go out, in queue order, as many as
     * there are tokens; then the queue keeps the rest. Both read the context as it was before the
     * flush. (Declared once here, never built while an action runs: the client's SEND is often
     * handled inside another machine's action, e.g. a peer sending its offer, and xstate warns
     * about action creators called there.)
     */
    sendReadySignals: sendTo('socket', ({ context }) => sendCommand(...takeReady(context, context.queue).ready.map(signalFrame))),
    keepUnsentSignals: assign(({ context }) => {
      const { ready, ...rest } = takeReady(context, context.queue);
      return ready.length === 0 ? {} : rest;
    }),
    /** The tokens that came back since they were last counted, counted now (before a flush reads them). */
    refillTokens: assign(({ context }) => {
      const now = Date.now();
      return { tokens: tokensNow(context, now), tokensAt: now };
    }),
    /** The server dropped a frame: its bucket is empty, so empty ours and go on at `sendRate`. */
    emptyBucket: assign(() => ({ tokens: 0, tokensAt: Date.now() })),
    /**
     * Queues a signal. One handed back by a closing socket goes to the head (behind the ones
     * handed back before it): it was sent before everything still queued.
     */
    queueSignal: assign(({ context, event }) => {
      const queued = signalToQueue(event);
      if (queued === null) return {};
      if (event.type === 'SEND') return { queue: [...context.queue, queued] };
      const at = Math.min(context.requeued, context.queue.length);
      return { queue: [...context.queue.slice(0, at), queued, ...context.queue.slice(at)], requeued: at + 1 };
    }),
    reportQueueFull: emit(({ context, event }) => ({
      type: 'error',
      error: queueFullError(signalToQueue(event)?.to ?? '?', context.maxQueue),
    })),
    /** Straight to the socket: nothing queued is ahead of it, a token is left and its peer is here. */
    sendSignalAtOnce: sendTo('socket', ({ context, event }) => {
      if (event.type !== 'SEND') throw new Error(`sendSignalAtOnce on ${event.type}`);
      return sendCommand(signalFrame({ to: resolveTarget(context, event.to) ?? event.to, data: event.data }));
    }),
    spendToken: assign(({ context }) => {
      const now = Date.now();
      return { tokens: tokensNow(context, now) - 1, tokensAt: now };
    }),
    addPeer: assign(({ context, event }) => {
      if (event.type !== 'SERVER.PEER_JOINED') return {};
      const peer = event.frame.peer;
      return {
        peers: [...context.peers.filter((known) => known.id !== peer.id), peer],
        awaitingNames: context.awaitingNames.filter((name) => name !== peer.name),
      };
    }),
    /** A peer we waited for left for good (its `peer-left` was held for us): the server judges its messages now. */
    stopAwaitingPeer: assign(({ context, event }) => {
      if (event.type !== 'SERVER.PEER_LEFT') return {};
      const name = awaitedFormerPeer(context, event.frame.id);
      return name === undefined ? {} : { awaitingNames: context.awaitingNames.filter((awaited) => awaited !== name) };
    }),
    removePeer: assign(({ context, event }) => {
      if (event.type !== 'SERVER.PEER_LEFT' || !context.peers.some((peer) => peer.id === event.frame.id)) return {};
      return { peers: context.peers.filter((peer) => peer.id !== event.frame.id) };
    }),
    reportPeerLeft: emit(({ context, event }) => {
      const peer = departedPeer(context, event);
      if (peer === undefined) throw new Error(`reportPeerLeft on ${event.type} for a peer we do not know`);
      return { type: 'peer-left', peer } as const;
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
      for (const peer of awaitedFormerPeers(context)) enqueue.emit({ type: 'peer-left', peer });
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
  context: ({ input }) => initialSignalingClientContext(input),
  output: ({ context }) => ({ reason: context.closeReason }),
  initial: 'online',
  on: {
    SEND: [{ guard: 'isQueueFull', actions: 'reportQueueFull' }, { actions: 'queueSignal' }],
  },
  states: {
    online: {
      description: 'A socket exists; leaving this state closes it (1000, or 4002 to resume).',
      invoke: { id: 'socket', src: 'webSocket', input: ({ context }) => ({ url: context.url }) },
      initial: 'connecting',
      on: {
        'SOCKET.CLOSED': [
          { guard: 'isRefusedByServer', target: 'closed', actions: 'endWithServerClose' },
          { guard: 'isReplacedByAnotherConnection', target: 'closed', actions: 'endWithServerClose' },
          { target: 'reconnecting', actions: 'rememberClose' },
        ],
        'SOCKET.UNAVAILABLE': { target: 'closed', actions: 'endWithSocketUnavailable' },
        'SOCKET.SEND_FAILED': [
          { guard: 'isMootFrame' },
          { guard: 'isQueueFull', actions: 'reportQueueFull' },
          { actions: 'queueSignal' },
        ],
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
                'SERVER.WELCOME': { target: '#signalingClient.online.joined', actions: ['storeWelcome', 'sendReadySignals', 'keepUnsentSignals'] },
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
          description: 'A member of the room: signals go out as tokens allow, presence is tracked.',
          type: 'parallel',
          on: {
            SEND: [
              { guard: 'canSendAtOnce', actions: ['sendSignalAtOnce', 'spendToken'] },
              { guard: 'isQueueFull', actions: 'reportQueueFull' },
              // Behind the queue (its peer may still be expected back, or tokens ran out); with
              // tokens left, whatever waits ahead is for an absent peer: what can go, goes.
              { actions: ['queueSignal', 'refillTokens', 'sendReadySignals', 'keepUnsentSignals'] },
            ],
            'SERVER.PEER_JOINED': [{ guard: 'isAwaitedPeer', actions: ['addPeer', 'refillTokens', 'sendReadySignals', 'keepUnsentSignals'] }, { actions: 'addPeer' }],
            'SERVER.PEER_LEFT': [
              {
                guard: 'isAwaitedPeerGone',
                actions: ['reportPeerLeft', 'removePeer', 'stopAwaitingPeer', 'refillTokens', 'sendReadySignals', 'keepUnsentSignals'],
              },
              { guard: 'isKnownPeerLeaving', actions: ['reportPeerLeft', 'removePeer'] },
            ],
            'SERVER.SIGNAL': { actions: 'emitSignal' },
            'SERVER.ERROR': [{ guard: 'isRateLimited', actions: ['reportServerError', 'emptyBucket'] }, { actions: 'reportServerError' }],
          },
          after: {
            rejoinGrace: { guard: 'isAwaitingPeers', actions: 'dropMessagesForAbsentPeers' },
          },
          states: {
            keepalive: {
              initial: 'live',
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
            iceServers: {
              description: 'TURN credentials expire (welcome.iceServersExpireAt): fresh ones are asked for in time.',
              initial: 'checking',
              on: {
                // The answer, or a later one after a retry: the timer starts again from the new expiry.
                'SERVER.ICE_SERVERS': { target: '.checking', actions: 'storeIceServers' },
              },
              states: {
                checking: {
                  description: 'Just received: do these credentials expire?',
                  always: [{ guard: 'hasExpiringIceServers', target: 'valid' }, { target: 'lasting' }],
                },
                lasting: {
                  description: 'No TURN credentials, or none that expire: nothing to refresh.',
                },
                valid: {
                  description: 'Credentials valid; refresh-ice-servers goes out after iceServersRefresh (before they expire).',
                  after: { iceServersRefresh: { target: 'refreshing' } },
                },
                refreshing: {
                  description: 'refresh-ice-servers sent; waiting for ice-servers, asking again after iceServersRetry.',
                  entry: 'sendRefreshIceServers',
                  after: { iceServersRetry: { target: 'refreshing', reenter: true } },
                },
              },
            },
            pacing: {
              initial: 'open',
              states: {
                open: {
                  description: 'Nothing waits for a token: signals go out at once while the bucket has tokens (one back every 1/sendRate s, up to sendBurst). No timer runs.',
                  always: { guard: 'isWaitingForToken', target: 'waitingForToken' },
                },
                waitingForToken: {
                  description: 'Signals wait and the bucket is empty: the next goes when its token is back (nextToken).',
                  always: { guard: not('isWaitingForToken'), target: 'open' },
                  after: { nextToken: { target: 'waitingForToken', reenter: true, actions: ['refillTokens', 'sendReadySignals', 'keepUnsentSignals'] } },
                },
              },
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
