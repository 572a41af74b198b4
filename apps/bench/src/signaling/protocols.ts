// How a load client speaks to each subject: the URL it connects to, how it joins, the envelope
// around the (identical) data of a signal, and where the relayed frame carries the sender.

/**
 * A subject of the signaling benchmark: a relay (one server process, or two nodes on one Redis)
 * with the protocol its clients speak.
 */
export type Subject = 'parley' | 'raw' | 'peerjs' | 'parleyCluster' | 'socketioCluster';
/** The subjects on one server process, each also measured for idle memory. */
export const SINGLE_NODE_SUBJECTS: readonly Subject[] = ['parley', 'raw', 'peerjs'];
/**
 * The subjects on two server processes sharing one redis-server: the two clients of each pair
 * on different nodes, so that every relayed message crosses Redis.
 */
export const CROSS_NODE_SUBJECTS: readonly Subject[] = ['parleyCluster', 'socketioCluster'];
export const SUBJECTS: readonly Subject[] = [...SINGLE_NODE_SUBJECTS, ...CROSS_NODE_SUBJECTS];

export const SUBJECT_LABELS: Readonly<Record<Subject, string>> = {
  parley: 'Parley (@parley/signaling-ws)',
  raw: 'raw ws relay (ceiling)',
  peerjs: 'PeerJS server (peer 1.0.2)',
  parleyCluster: 'Parley, 2 nodes on Redis (pairs across nodes)',
  socketioCluster: 'socket.io 4.8 + redis-adapter 8.3, 2 nodes (pairs across nodes)',
};

/** The wire protocols the load clients speak. */
export type ProtocolName = 'parley' | 'raw' | 'peerjs' | 'socketio';

/** The protocol each subject's clients speak. */
export const PROTOCOL_OF: Readonly<Record<Subject, ProtocolName>> = {
  parley: 'parley',
  raw: 'raw',
  peerjs: 'peerjs',
  parleyCluster: 'parley',
  socketioCluster: 'socketio',
};

/** The PeerJS message type of each kind of the mix. */
const PEERJS_TYPES = { offer: 'OFFER', answer: 'ANSWER', candidate: 'CANDIDATE' } as const;

/** What a load client does with a frame that is not a relayed signal. */
export type ControlAction = { readonly kind: 'ignore' } | { readonly kind: 'reply'; readonly frame: string } | { readonly kind: 'unexpected' };

export interface ClientProtocol {
  /**
   * How the client joins: `room` sends a Parley `join` and learns ids from `welcome` and
   * `peer-joined`; `url-id` puts a client-chosen id in the URL (raw: connected means
   * registered; PeerJS: registered once the server sends `OPEN`); `socketio` connects to the
   * main namespace and is addressed by the socket id the server gives it.
   */
  readonly join: 'room' | 'url-id' | 'socketio';
  /** The URL for a client with this (client-chosen) id; `base` ends with `/`. */
  url(base: string, id: string): string;
  /** The text before the data object of a signal to `to`; the frame is `head + data + signalTail`. */
  signalHead(kind: 'offer' | 'answer' | 'candidate', to: string): string;
  readonly signalTail: string;
  /** The relayed frame as an object (null when it is not one), for the full check of a signal. */
  decode(text: string): Record<string, unknown> | null;
  /** Keys of the decoded relayed frame: who sent it (stamped by the server) and the data. */
  readonly fromKey: string;
  readonly dataKey: string;
  /** The answer to a frame that carries no signal (keepalives, pings). */
  control(text: string): ControlAction;
  /** The keepalive the real client of this protocol sends while idle, if any. */
  readonly keepalive?: { readonly frame: string; readonly intervalMs: number };
}

/** JSON text as an object (not an array), or null. */
export function jsonObject(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

const IGNORE: ControlAction = { kind: 'ignore' };
const UNEXPECTED: ControlAction = { kind: 'unexpected' };

/**
 * Socket.IO over its WebSocket transport, as `socket.io-client` 4 speaks it (Engine.IO protocol
 * v4, socket.io-parser protocol v5): packets are text frames, the first digit the Engine.IO
 * packet type (0 open, 2 ping, 3 pong, 4 message), a message's next digit the Socket.IO packet
 * type (0 CONNECT, 2 EVENT); an event is `42["name",arg]`.
 */
export const SOCKET_IO = {
  /** Engine.IO v4 over the WebSocket transport only (no HTTP long-polling first). */
  path: 'socket.io/?EIO=4&transport=websocket',
  /** CONNECT to the main namespace `/`; the server answers `40{"sid":"<socket id>"}`. */
  connect: '40',
  ping: '2',
  pong: '3',
  /** An EVENT packet of the main namespace: `42["name",...args]`. */
  eventPrefix: '42',
} as const;

/** The name of the event the bench's socket.io app relays (servers.ts). */
export const SOCKET_IO_SIGNAL_EVENT = 'signal';

/** A Socket.IO EVENT packet of the main namespace as `[name, ...args]`, or null. */
export function decodeSocketIoEvent(text: string): unknown[] | null {
  if (!text.startsWith(SOCKET_IO.eventPrefix)) return null;
  try {
    const value: unknown = JSON.parse(text.slice(SOCKET_IO.eventPrefix.length));
    return Array.isArray(value) && typeof value[0] === 'string' ? value : null;
  } catch {
    return null;
  }
}

export const PROTOCOLS: Readonly<Record<ProtocolName, ClientProtocol>> = {
  parley: {
    join: 'room',
    url: (base) => base,
    signalHead: (_kind, to) => `{"type":"signal","to":${JSON.stringify(to)},"data":`,
    signalTail: '}',
    decode: jsonObject,
    fromKey: 'from',
    dataKey: 'data',
    control: (text) => (text === '{"type":"pong"}' ? IGNORE : UNEXPECTED),
    // @parley/signaling-ws/client: an application ping every 25 s while joined.
    keepalive: { frame: '{"type":"ping"}', intervalMs: 25_000 },
  },
  raw: {
    join: 'url-id',
    url: (base, id) => `${base}?id=${encodeURIComponent(id)}`,
    signalHead: (_kind, to) => `{"to":${JSON.stringify(to)},"data":`,
    signalTail: '}',
    decode: jsonObject,
    fromKey: 'from',
    dataKey: 'data',
    control: () => UNEXPECTED,
  },
  peerjs: {
    join: 'url-id',
    url: (base, id) => `${base}peerjs?key=peerjs&id=${encodeURIComponent(id)}&token=${encodeURIComponent(`t${id}`)}`,
    signalHead: (kind, to) => `{"type":"${PEERJS_TYPES[kind]}","dst":${JSON.stringify(to)},"payload":`,
    signalTail: '}',
    decode: jsonObject,
    fromKey: 'src',
    dataKey: 'payload',
    control: () => UNEXPECTED,
    // The peerjs client sends HEARTBEAT every 5 s (its `pingInterval`); the server drops a
    // client silent for `alive_timeout`.
    keepalive: { frame: '{"type":"HEARTBEAT"}', intervalMs: 5_000 },
  },
  socketio: {
    join: 'socketio',
    url: (base) => `${base}${SOCKET_IO.path}`,
    // What `socket.emit('signal', { to, data })` sends: the event packet, the argument as JSON.
    signalHead: (_kind, to) => `${SOCKET_IO.eventPrefix}["${SOCKET_IO_SIGNAL_EVENT}",{"to":${JSON.stringify(to)},"data":`,
    signalTail: '}]',
    decode: (text) => {
      const event = decodeSocketIoEvent(text);
      const arg: unknown = event?.[0] === SOCKET_IO_SIGNAL_EVENT ? event[1] : undefined;
      return typeof arg === 'object' && arg !== null ? (arg as Record<string, unknown>) : null;
    },
    fromKey: 'from',
    dataKey: 'data',
    // The server pings (every pingInterval, 25 s by default) and the client answers, as
    // socket.io-client does; nothing else should come on an established socket.
    control: (text) => (text === SOCKET_IO.ping ? { kind: 'reply', frame: SOCKET_IO.pong } : UNEXPECTED),
  },
};
