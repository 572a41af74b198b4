import { WebSocket } from 'ws';
import { createSignalingClient } from '@parley/signaling-ws/client';
import type { SignalingClient, SignalingClientDelays, SignalingClientStatus, SignalingError } from '@parley/signaling-ws/client';

// A signaling client in a room, with what it reported kept for assertions.

export interface TrackedClient {
  readonly client: SignalingClient;
  /** Every status the client went through, in order. */
  readonly statuses: SignalingClientStatus[];
  readonly errors: SignalingError[];
  status(): SignalingClientStatus | undefined;
  /** Our peer id, once welcomed. */
  id(): string | undefined;
  /** The ids of the other members, as last reported. */
  peerIds(): readonly string[];
}

export function joinRoom(options: { readonly url: string; readonly room: string; readonly name: string; readonly delays?: SignalingClientDelays }): TrackedClient {
  const client = createSignalingClient({
    url: options.url,
    room: options.room,
    name: options.name,
    webSocket: WebSocket,
    ...(options.delays ? { delays: options.delays } : {}),
  });
  const statuses: SignalingClientStatus[] = [];
  const errors: SignalingError[] = [];
  let self: string | undefined;
  let peers: readonly string[] = [];
  client.state$.subscribe((status) => statuses.push(status));
  client.errors$.subscribe((error) => errors.push(error));
  client.self$.subscribe((info) => (self = info?.id));
  client.peers$.subscribe((list) => (peers = list.map((peer) => peer.id)));
  return { client, statuses, errors, status: () => statuses.at(-1), id: () => self, peerIds: () => peers };
}
