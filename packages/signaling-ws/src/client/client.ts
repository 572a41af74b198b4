import { BehaviorSubject, Subject } from 'rxjs';
import type { Observable } from 'rxjs';
import { createActor } from 'xstate';
import type { Actor, InspectionEvent, Observer } from 'xstate';
import { parsePeerMessage } from '@parley/core';
import type { PeerMessage, SignalingPort } from '@parley/core';
import { ID_PATTERN, NAME_PATTERN } from '../protocol.js';
import type { IceServerConfig, PeerInfo } from '../protocol.js';
import { SignalingError } from './errors.js';
import { BACKOFF_BASE_MS, BACKOFF_CAP_MS, fullJitterBackoff, signalingClientMachine } from './signaling-client.machine.js';
import type { SelfInfo, SignalData, SignalingClientContext } from './signaling-client.machine.js';
import { globalWebSocket, webSocketActor } from './websocket.js';
import type { WebSocketConstructorLike } from './websocket.js';

/** Timers of the machine, in milliseconds. */
export interface SignalingClientDelays {
  /** Fixed wait before each reconnect; by default exponential backoff with full jitter. */
  readonly reconnectBackoff?: number;
  /** Time between application pings while joined (default 25 s). */
  readonly keepaliveInterval?: number;
  /** How long a pong may take before the connection counts as dead (default 10 s). */
  readonly keepaliveTimeout?: number;
  /** After a server restart, how long messages wait for their peer to rejoin (default 30 s). */
  readonly rejoinGrace?: number;
  /**
   * After TURN credentials arrive, when to ask for fresh ones (`refresh-ice-servers`); by
   * default from their lifetime, see `iceServersRefreshDelay` (80 % of it, at least 1 s).
   */
  readonly iceServersRefresh?: number;
  /** How long a `refresh-ice-servers` waits for its answer before it is sent again (default 10 s). */
  readonly iceServersRetry?: number;
}

/** Options of `createSignalingClient`. */
export interface SignalingClientOptions {
  /** `ws://` or `wss://` address of a Parley signaling server. */
  readonly url: string;
  readonly room: string;
  readonly name: string;
  /** Join token, when the server has an auth secret. */
  readonly token?: string;
  /** WebSocket class; default `globalThis.WebSocket`. In Node 20, pass `ws`'s `WebSocket`. */
  readonly webSocket?: WebSocketConstructorLike;
  /** Bound of the outgoing queue (default 1000); when full, the newest message is refused. */
  readonly maxQueue?: number;
  /** Application-level ping/pong while joined (default true). */
  readonly keepalive?: boolean;
  /**
   * Outgoing signals per second once a burst is spent (default 40). Keep it under the server's
   * `messagesPerSecond` (default 50): the server drops what comes faster and closes with 4029.
   */
  readonly sendRate?: number;
  /**
   * Signals that may go out at once (default 150; e.g. the queue flushed after a reconnect, or a
   * burst of trickled candidates). Keep it under the server's `burst` (default 200). More wait in
   * the queue, in order. `Infinity` turns pacing off.
   */
  readonly sendBurst?: number;
  readonly delays?: SignalingClientDelays;
  /** Reconnect backoff: `random() * min(capMs, baseMs * 2^attempt)`. `random` is for tests. */
  readonly backoff?: { readonly baseMs?: number; readonly capMs?: number; readonly random?: () => number };
  /** xstate inspector (e.g. `createBrowserInspector().inspect`). */
  readonly inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
}

/** Where a signaling client is: connecting, joined, reconnecting after a loss, or closed. */
export type SignalingClientStatus = 'connecting' | 'joined' | 'reconnecting' | 'closed';

/** A validated peer message and the server-stamped id of its sender. */
export interface IncomingSignal {
  readonly from: string;
  readonly message: PeerMessage;
}

/** The running `signalingClientMachine` actor behind a `SignalingClient`. */
export type SignalingClientActor = Actor<typeof signalingClientMachine>;

/**
 * A joined (or joining) signaling client, as `createSignalingClient` returns it: the room's
 * members and the client's state as streams, and a `SignalingPort` per remote peer.
 */
export interface SignalingClient {
  /** The running `signalingClientMachine` actor (for inspection and snapshots). */
  readonly actor: SignalingClientActor;
  readonly state$: Observable<SignalingClientStatus>;
  /** Our identity in the room; `null` until the first welcome. Kept while reconnecting. */
  readonly self$: Observable<SelfInfo | null>;
  /** The other members of the room; the last known list is kept while reconnecting. */
  readonly peers$: Observable<readonly PeerInfo[]>;
  /**
   * The ICE servers to use now: `welcome.iceServers`, then each fresh list the client asked for
   * before the TURN credentials expired (`refresh-ice-servers`), and the list of each new
   * `welcome` after a reconnect. Hand it to a running peer (`createPeer({ iceServers$ })`), which
   * applies each list with `setConfiguration`.
   */
  readonly iceServers$: Observable<readonly IceServerConfig[]>;
  /** Every error: server error frames, refused or invalid messages, fatal close reasons. */
  readonly errors$: Observable<SignalingError>;
  /**
   * Each peer that left the room for good, once: the server's `peer-left` (it waits out its
   * resume grace first, so a peer's reconnect is no departure), or a peer that did not come back
   * within `rejoinGrace` after a server restart. Feed it to a call as `REMOTE.LEFT`.
   */
  readonly peerLeft$: Observable<PeerInfo>;
  /** Every valid peer message from any peer (to notice an incoming invite before having a port). */
  readonly signals$: Observable<IncomingSignal>;
  /** Settles when the client is closed: `null` after `close()`, the fatal error otherwise. */
  readonly closed: Promise<SignalingError | null>;
  /**
   * The signaling port to one remote peer; the same object for the same id. `messages$` is hot
   * (no replay) and completes on close; `send` queues while not joined and is a no-op after close.
   */
  portFor(peerId: string): SignalingPort;
  /** Sends `leave` and closes the socket. Idempotent. */
  close(): void;
}

function statusOf(snapshot: ReturnType<SignalingClientActor['getSnapshot']>): SignalingClientStatus {
  if (snapshot.status !== 'active' || snapshot.matches('closed')) return 'closed';
  if (snapshot.matches('reconnecting')) return 'reconnecting';
  if (snapshot.matches({ online: 'joined' })) return 'joined';
  return 'connecting';
}

/**
 * Joins `room` as `name` and stays joined (docs/architecture.md, "Machines": signalingClient). All streams are hot
 * and backed by BehaviorSubjects (or Subjects for errors and messages); they complete when the
 * client is closed.
 */
export function createSignalingClient(options: SignalingClientOptions): SignalingClient {
  const WebSocketImpl = options.webSocket ?? globalWebSocket();
  if (WebSocketImpl === undefined) {
    throw new TypeError('createSignalingClient: no global WebSocket here; pass options.webSocket (in Node: the `ws` package)');
  }
  // The server would refuse these with bad-message on every attempt: fail now instead.
  if (!NAME_PATTERN.test(options.room)) throw new TypeError(`createSignalingClient: room must be 1-64 characters of A-Z a-z 0-9 _ . -`);
  if (!NAME_PATTERN.test(options.name)) throw new TypeError(`createSignalingClient: name must be 1-64 characters of A-Z a-z 0-9 _ . -`);
  if (options.sendRate !== undefined && !(Number.isFinite(options.sendRate) && options.sendRate > 0)) {
    throw new TypeError('createSignalingClient: sendRate must be a finite number > 0');
  }
  if (options.sendBurst !== undefined && !(options.sendBurst === Infinity || (Number.isSafeInteger(options.sendBurst) && options.sendBurst >= 1))) {
    throw new TypeError('createSignalingClient: sendBurst must be an integer >= 1, or Infinity');
  }
  const random = options.backoff?.random ?? Math.random;
  const baseMs = options.backoff?.baseMs ?? BACKOFF_BASE_MS;
  const capMs = options.backoff?.capMs ?? BACKOFF_CAP_MS;
  const { reconnectBackoff, ...fixedDelays } = options.delays ?? {};
  const machine = signalingClientMachine.provide({
    actors: { webSocket: webSocketActor(WebSocketImpl) },
    delays: {
      reconnectBackoff:
        reconnectBackoff ?? (({ context }: { context: SignalingClientContext }) => fullJitterBackoff(context.attempt, random, baseMs, capMs)),
      ...fixedDelays,
    },
  });
  const actor = createActor(machine, {
    input: {
      url: options.url,
      room: options.room,
      name: options.name,
      ...(options.token !== undefined ? { token: options.token } : {}),
      ...(options.maxQueue !== undefined ? { maxQueue: options.maxQueue } : {}),
      ...(options.keepalive !== undefined ? { keepalive: options.keepalive } : {}),
      ...(options.sendRate !== undefined ? { sendRate: options.sendRate } : {}),
      ...(options.sendBurst !== undefined ? { sendBurst: options.sendBurst } : {}),
    },
    ...(options.inspect !== undefined ? { inspect: options.inspect } : {}),
  });

  const initial = actor.getSnapshot();
  const state = new BehaviorSubject<SignalingClientStatus>(statusOf(initial));
  const self = new BehaviorSubject<SelfInfo | null>(initial.context.self);
  const peers = new BehaviorSubject<readonly PeerInfo[]>(initial.context.peers);
  const iceServers = new BehaviorSubject<readonly IceServerConfig[]>(initial.context.iceServers);
  const errors = new Subject<SignalingError>();
  const signals = new Subject<IncomingSignal>();
  const peerLeft = new Subject<PeerInfo>();
  const ports = new Map<string, { readonly port: SignalingPort; readonly messages: Subject<PeerMessage> }>();
  let finished = false;
  let resolveClosed: (reason: SignalingError | null) => void = () => {};
  const closed = new Promise<SignalingError | null>((resolve) => (resolveClosed = resolve));

  const finish = (reason: SignalingError | null): void => {
    if (finished) return;
    finished = true;
    for (const subject of [state, self, peers, iceServers, errors, signals, peerLeft]) subject.complete();
    for (const { messages } of ports.values()) messages.complete();
    resolveClosed(reason);
  };

  const deliver = (from: string, data: SignalData): void => {
    const parsed = parsePeerMessage(data);
    if (!parsed.ok) {
      errors.next(
        new SignalingError('invalid-peer-message', `dropped an invalid message from ${from}: ${parsed.error.message}`, {
          source: 'client',
          peerId: from,
          cause: parsed.error,
        }),
      );
      return;
    }
    const message = parsed.message;
    ports.get(from)?.messages.next(message);
    // After a server restart, a port opened under a peer's old id keeps hearing that peer (by name).
    const { peers: current, formerPeers } = actor.getSnapshot().context;
    const name = current.find((peer) => peer.id === from)?.name;
    if (name !== undefined) {
      for (const former of formerPeers) {
        if (former.name === name && former.id !== from) ports.get(former.id)?.messages.next(message);
      }
    }
    signals.next({ from, message });
  };

  actor.on('signal', (event) => deliver(event.from, event.data));
  actor.on('error', (event) => errors.next(event.error));
  actor.on('peer-left', (event) => peerLeft.next(event.peer));
  actor.subscribe({
    next: (snapshot) => {
      if (finished) return;
      const status = statusOf(snapshot);
      if (status !== state.value) state.next(status);
      if (snapshot.context.self !== self.value) self.next(snapshot.context.self);
      if (snapshot.context.peers !== peers.value) peers.next(snapshot.context.peers);
      if (snapshot.context.iceServers !== iceServers.value) iceServers.next(snapshot.context.iceServers);
      if (snapshot.status === 'done') finish(snapshot.output?.reason ?? null);
    },
    error: (error: unknown) => {
      const reason = new SignalingError('socket-unavailable', `signaling client failed: ${String(error)}`, {
        source: 'client',
        fatal: true,
        cause: error,
      });
      errors.next(reason);
      state.next('closed');
      finish(reason);
    },
  });
  actor.start();

  const portFor = (peerId: string): SignalingPort => {
    if (!ID_PATTERN.test(peerId)) throw new TypeError(`portFor: ${JSON.stringify(peerId)} is not a peer id`);
    const existing = ports.get(peerId);
    if (existing !== undefined) return existing.port;
    const messages = new Subject<PeerMessage>();
    if (finished) messages.complete();
    const port: SignalingPort = {
      messages$: messages.asObservable(),
      send: (message) => {
        if (finished) return; // closed: nothing can be delivered any more, and errors$ has completed
        actor.send({ type: 'SEND', to: peerId, data: message });
      },
    };
    ports.set(peerId, { port, messages });
    return port;
  };

  return {
    actor,
    state$: state.asObservable(),
    self$: self.asObservable(),
    peers$: peers.asObservable(),
    iceServers$: iceServers.asObservable(),
    errors$: errors.asObservable(),
    signals$: signals.asObservable(),
    peerLeft$: peerLeft.asObservable(),
    closed,
    portFor,
    close: () => {
      if (!finished) actor.send({ type: 'CLOSE' });
    },
  };
}
