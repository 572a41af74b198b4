// How a load client speaks to each subject: the URL it connects to, how it joins, the envelope
// around the (identical) data of a signal, and where the relayed frame carries the sender.

export type Subject = 'parley' | 'raw' | 'peerjs';
export const SUBJECTS: readonly Subject[] = ['parley', 'raw', 'peerjs'];

export const SUBJECT_LABELS: Readonly<Record<Subject, string>> = {
  parley: 'Parley (@parley/signaling-ws)',
  raw: 'raw ws relay (ceiling)',
  peerjs: 'PeerJS server (peer 1.0.2)',
};

/** The PeerJS message type of each kind of the mix. */
const PEERJS_TYPES = { offer: 'OFFER', answer: 'ANSWER', candidate: 'CANDIDATE' } as const;

export interface ClientProtocol {
  /**
   * How the client joins: `room` sends a Parley `join` and learns ids from `welcome` and
   * `peer-joined`; `url-id` puts a client-chosen id in the URL (raw: connected means
   * registered; PeerJS: registered once the server sends `OPEN`).
   */
  readonly join: 'room' | 'url-id';
  /** The URL for a client with this (client-chosen) id; `base` ends with `/`. */
  url(base: string, id: string): string;
  /** The text before the data object of a signal to `to`; the frame is `head + data + '}'`. */
  signalHead(kind: 'offer' | 'answer' | 'candidate', to: string): string;
  /** Keys of the relayed frame: who sent it (stamped by the server) and the data. */
  readonly fromKey: string;
  readonly dataKey: string;
  /** The keepalive the real client of this protocol sends while idle, if any. */
  readonly keepalive?: { readonly frame: string; readonly intervalMs: number };
}

export const PROTOCOLS: Readonly<Record<Subject, ClientProtocol>> = {
  parley: {
    join: 'room',
    url: (base) => base,
    signalHead: (_kind, to) => `{"type":"signal","to":${JSON.stringify(to)},"data":`,
    fromKey: 'from',
    dataKey: 'data',
    // @parley/signaling-ws/client: an application ping every 25 s while joined.
    keepalive: { frame: '{"type":"ping"}', intervalMs: 25_000 },
  },
  raw: {
    join: 'url-id',
    url: (base, id) => `${base}?id=${encodeURIComponent(id)}`,
    signalHead: (_kind, to) => `{"to":${JSON.stringify(to)},"data":`,
    fromKey: 'from',
    dataKey: 'data',
  },
  peerjs: {
    join: 'url-id',
    url: (base, id) => `${base}peerjs?key=peerjs&id=${encodeURIComponent(id)}&token=${encodeURIComponent(`t${id}`)}`,
    signalHead: (kind, to) => `{"type":"${PEERJS_TYPES[kind]}","dst":${JSON.stringify(to)},"payload":`,
    fromKey: 'src',
    dataKey: 'payload',
    // The peerjs client sends HEARTBEAT every 5 s (its `pingInterval`); the server drops a
    // client silent for `alive_timeout`.
    keepalive: { frame: '{"type":"HEARTBEAT"}', intervalMs: 5_000 },
  },
};
