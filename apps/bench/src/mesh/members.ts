import wrtc from '@roamhq/wrtc';
import { WebSocket } from 'ws';
import { createGroupCall } from '@parley/core';
import type { GroupCall, GroupStatus } from '@parley/core';
import { createRtcPort, keepLoopbackCandidates, loopbackOnly } from '@parley/browser';
import type { BrowserRtcPort } from '@parley/browser';
import { createSignalingClient, groupSignalingOf } from '@parley/signaling-ws/client';
import type { SignalingClient } from '@parley/signaling-ws/client';
import { withTimeout } from '../timing.js';

// Members of a group call in this Node process: each a signaling client in a room of a real
// parley-signaling on loopback and a group call (createGroupCall) whose pairs run over
// libwebrtc connections from @roamhq/wrtc, loopback candidates only.

/** The data channel every pair opens, as the demo's group chat does. */
export const MESH_CHANNEL = 'chat';

/**
 * How long a member joining a call waits for the answers of room members who are not in it.
 * The machine's 2 s default is for people; here it only makes the set-up before a measurement
 * wait, and no measured interval contains it (the measured joiner is answered by everyone).
 */
const JOIN_ANSWER_TIMEOUT_MS = 300;

export interface MeshMember {
  readonly name: string;
  readonly client: SignalingClient;
  readonly group: GroupCall<BrowserRtcPort>;
  /** Our id in the room (known once `inRoom` resolved). */
  id(): string;
  status(): GroupStatus;
  /** Calls `listener` with every status from now on; returns the unsubscribe. */
  onStatus(listener: () => void): () => void;
  /** Leaves the call, closes every connection and the signaling client. */
  stop(): void;
}

export interface MeshMemberOptions {
  readonly url: string;
  readonly room: string;
  readonly name: string;
}

/** A signaling client in `room` and its group call, created (not joined). */
export function startMeshMember(options: MeshMemberOptions): MeshMember {
  const client = createSignalingClient({ url: options.url, room: options.room, name: options.name, webSocket: WebSocket });
  let self: string | null = null;
  const selfSubscription = client.self$.subscribe((info) => (self = info?.id ?? null));
  const group = createGroupCall<BrowserRtcPort>({
    signaling: groupSignalingOf(client),
    createRtc: () => createRtcPort(new wrtc.RTCPeerConnection(loopbackOnly({}))),
    dataChannels: [{ label: MESH_CHANNEL }],
    peer: { candidateFilter: keepLoopbackCandidates },
    delays: { joinAnswerTimeout: JOIN_ANSWER_TIMEOUT_MS },
  });
  return {
    name: options.name,
    client,
    group,
    id: () => {
      if (self === null) throw new Error(`${options.name} is not in the room yet`);
      return self;
    },
    status: () => group.status(),
    onStatus: (listener) => {
      const subscription = group.status$.subscribe(listener);
      return () => subscription.unsubscribe();
    },
    stop: () => {
      selfSubscription.unsubscribe();
      group.stop();
      client.close();
    },
  };
}

/** Epoch milliseconds with sub-millisecond precision: comparable across the bench's processes. */
export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Resolves once the member knows its id and sees `others` other members in the room. */
export function inRoom(member: MeshMember, others: number, timeoutMs: number): Promise<string> {
  let subscription: { unsubscribe(): void } | undefined;
  const reached = new Promise<string>((resolve) => {
    const check = (): void => {
      const context = member.client.actor.getSnapshot().context;
      if (context.peers.length === others && context.self !== null) resolve(context.self.id);
    };
    subscription = member.client.actor.subscribe(check);
    check();
  });
  return withTimeout(reached, timeoutMs, () => new Error(`${member.name}: timed out after ${timeoutMs} ms waiting to see ${others} others in the room`)).finally(() =>
    subscription?.unsubscribe(),
  );
}

/** The member joined, holding a connected pair with each of `others` (and no one else). */
export function connectedTo(member: MeshMember, others: readonly string[]): boolean {
  const status = member.status();
  if (status.state !== 'joined' || status.members.size !== others.length) return false;
  return others.every((other) => status.members.get(other)?.connection.connectionState === 'connected');
}

/**
 * Resolves with `epochNow()` at the first status after which `condition` holds (at once if it
 * holds already); rejects after `timeoutMs` naming `what`.
 */
export function whenStatus(member: MeshMember, condition: () => boolean, what: string, timeoutMs: number): Promise<number> {
  let unsubscribe: (() => void) | undefined;
  const reached = new Promise<number>((resolve) => {
    unsubscribe = member.onStatus(() => {
      if (condition()) resolve(epochNow());
    });
  });
  return withTimeout(reached, timeoutMs, () => new Error(`${member.name}: timed out after ${timeoutMs} ms waiting for ${what}: ${describe(member)}`)).finally(() =>
    unsubscribe?.(),
  );
}

/** The member's state and view of its pairs, for an error message. */
export function describe(member: MeshMember): string {
  const status = member.status();
  const pairs = [...status.members].map(([id, pair]) => `${id.slice(0, 6)} ${pair.connection.connectionState}`);
  return `${member.name} ${status.state} [${pairs.join(', ')}]`;
}
