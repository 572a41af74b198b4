import { createGroupCall } from '@parley/core';
import type { DataChannel, GroupAppEvent, GroupCall, GroupDelays, GroupPeerOptions, GroupStatus, PeerConnectionState, PeerDelays } from '@parley/core';
import { groupSignalingOf } from '@parley/signaling-ws/client';
import { keepLoopbackCandidates } from '../../src/index.js';
import { joinRoom } from './room.js';
import type { TrackedClient } from './room.js';
import { createRealPort } from './wrtc.js';
import type { RealScenarioPort } from './wrtc.js';

// One member of a group call on the real stack: a signaling client in a room of a real
// parley-signaling server, and a group call whose per-member peers run over real libwebrtc
// connections (@roamhq/wrtc), loopback only. What the group reported is kept for assertions.

/** The data channel every member of the tests' groups opens with every other member. */
export const CHAT = 'chat';

/** A message a member received, with the member it came from. */
export interface ReceivedMessage {
  readonly from: string;
  readonly data: string;
}

export interface RealGroupMember {
  readonly name: string;
  readonly client: TrackedClient;
  readonly group: GroupCall;
  /** Every RTC port the group created, per remote member id, newest last. */
  readonly ports: ReadonlyMap<string, readonly RealScenarioPort[]>;
  /** What each connection's engine itself reported (connectionstatechange, read at dispatch), per member id. */
  readonly engineStates: ReadonlyMap<string, readonly { readonly at: number; readonly state: string }[]>;
  /** Every app event of the group, in order, with when it was seen. */
  readonly events: readonly { readonly at: number; readonly event: GroupAppEvent }[];
  /** Text messages received on the chat channel, in order. */
  readonly received: readonly ReceivedMessage[];
  /** Our peer id in the room (once welcomed). */
  id(): string;
  status(): GroupStatus;
  /** The connection state of our pair with `memberId`, as the group shows it (undefined: no pair). */
  connectionWith(memberId: string): PeerConnectionState | undefined;
  /** Our newest end of the chat channel with `memberId`. */
  chatWith(memberId: string): DataChannel | undefined;
  /** The connection states our pair with `memberId` went through since event index `since`. */
  connectionStatesWith(memberId: string, since?: number): PeerConnectionState[];
  /** The ICE restarts negotiated on our pair with `memberId` since event index `since`. */
  iceRestartsWith(memberId: string, since?: number): number;
  stop(): void;
}

export interface RealGroupMemberOptions {
  readonly url: string;
  readonly room: string;
  readonly name: string;
  /** The RTCConfiguration of every connection this member makes (default: loopback host candidates). */
  readonly rtcConfiguration?: RTCConfiguration;
  /** Other options of every pair's peer (the candidate filter is always loopback-only). */
  readonly peer?: Omit<GroupPeerOptions, 'dataChannels' | 'candidateFilter'>;
  /** The group's and its peers' delays (default: the machines' own). */
  readonly delays?: Partial<GroupDelays & PeerDelays>;
}

/** Joins the room with a signaling client and creates (does not join) this member's group call. */
export function startGroupMember(options: RealGroupMemberOptions): RealGroupMember {
  const client = joinRoom({ url: options.url, room: options.room, name: options.name });
  const ports = new Map<string, RealScenarioPort[]>();
  const engineStates = new Map<string, { at: number; state: string }[]>();
  const events: { at: number; event: GroupAppEvent }[] = [];
  const received: ReceivedMessage[] = [];
  const chats = new Map<string, DataChannel>();
  let status: GroupStatus | undefined;
  const group = createGroupCall({
    signaling: groupSignalingOf(client.client),
    createRtc: (memberId) => {
      const port = createRealPort(options.rtcConfiguration);
      ports.set(memberId, [...(ports.get(memberId) ?? []), port]);
      const states: { at: number; state: string }[] = [];
      engineStates.set(memberId, states);
      port.pc.addEventListener('connectionstatechange', () => states.push({ at: Date.now(), state: port.pc.connectionState }));
      return port;
    },
    dataChannels: [{ label: CHAT }],
    peer: { ...options.peer, candidateFilter: keepLoopbackCandidates },
    ...(options.delays ? { delays: options.delays } : {}),
  });
  const statuses = group.status$.subscribe((value) => (status = value));
  const appEvents = group.events$.subscribe((event) => {
    events.push({ at: Date.now(), event });
    if (event.type === 'datachannel' && event.label === CHAT) chats.set(event.member, event.channel);
    if (event.type === 'message' && event.label === CHAT && typeof event.data === 'string') received.push({ from: event.member, data: event.data });
  });
  const eventsWith = (memberId: string, since: number): GroupAppEvent[] =>
    events.slice(since).flatMap(({ event }) => (event.member === memberId ? [event] : []));
  return {
    name: options.name,
    client,
    group,
    ports,
    engineStates,
    events,
    received,
    id: () => {
      const id = client.id();
      if (id === undefined) throw new Error(`${options.name} has no id yet`);
      return id;
    },
    status: () => {
      if (status === undefined) throw new Error(`${options.name}'s group reported no status`);
      return status;
    },
    connectionWith: (memberId) => status?.members.get(memberId)?.connection?.connectionState,
    chatWith: (memberId) => chats.get(memberId),
    connectionStatesWith: (memberId, since = 0) =>
      eventsWith(memberId, since).flatMap((event) => (event.type === 'connectionstatechange' ? [event.state] : [])),
    iceRestartsWith: (memberId, since = 0) => eventsWith(memberId, since).filter((event) => event.type === 'negotiated' && event.iceRestart).length,
    stop: () => {
      statuses.unsubscribe();
      appEvents.unsubscribe();
      group.stop();
      for (const list of ports.values()) for (const port of list) port.close();
      client.client.close();
    },
  };
}
