import { createGroupCall } from '../create-group-call.js';
import type { CreateGroupCallOptions, GroupAppEvent, GroupCall } from '../create-group-call.js';
import { memberOfPairActorId } from '../machines/group.machine.js';
import { negotiationOf } from '../machines/peer.machine.js';
import type { PeerActor } from '../machines/peer.machine.js';
import type { FakeLocalTrack, FakeNetwork, FakeRtcPort } from './fake-network.js';
import type { FakeRoom, FakeRoomMember } from './fake-room.js';

// Members of a fake room, each with a group call over the fake network, and the invariants a
// settled mesh must hold. Used by the group-call unit and property tests.

/** One member of `startGroupMembers`: its room membership, group call and what it saw. */
export interface GroupMember {
  readonly id: string;
  readonly room: FakeRoomMember;
  readonly group: GroupCall<FakeRtcPort>;
  /** Every port `createRtc` made for it, in order. */
  readonly ports: readonly FakeRtcPort[];
  /** Every event of its group call. */
  readonly events: readonly GroupAppEvent[];
  /** Every `error` event, as a readable line. */
  readonly errors: readonly string[];
  /** Every pair's peer actor the group call ever created. */
  readonly peers: readonly PeerActor[];
  /** Adds a new local track of `kind` with `group.addTrack` (sent to every member, now and later). */
  addTrack(kind: 'audio' | 'video'): FakeLocalTrack;
  /** Replaces the latest track added with `addTrack` by a new one of its kind (`group.replaceTrack`); null when none. */
  replaceLatestTrack(): Promise<FakeLocalTrack> | null;
  /** The tracks it sends to every member now (`addTrack`, as replaced since). */
  readonly tracks: readonly FakeLocalTrack[];
}

/** Options of `addGroupMember`. */
export interface GroupMemberOptions extends Partial<Omit<CreateGroupCallOptions<FakeRtcPort>, 'signaling' | 'createRtc'>> {
  /** Media each new pair's port carries from the start (as an app adds its camera in createRtc). */
  readonly media?: readonly ('audio' | 'video')[];
  /** The network of the pair with `remote` (default: the one given), e.g. to fail one pair alone. */
  readonly networkFor?: (remote: string) => FakeNetwork;
}

/**
 * Enters `id` into the room and starts its group call over `network` (not joined yet).
 * Memberships are `<id>m1`, `<id>m2`, ... so runs read well.
 */
export function addGroupMember(room: FakeRoom, network: FakeNetwork, id: string, options: GroupMemberOptions = {}): GroupMember {
  const { media = ['audio'], networkFor = () => network, ...groupOptions } = options;
  const tracks: FakeLocalTrack[] = [];
  let trackCount = 0;
  const newTrack = (kind: 'audio' | 'video'): FakeLocalTrack => ({ kind, id: `${id}-${kind}-${(trackCount += 1)}` });
  const member = room.enter(id);
  const ports: FakeRtcPort[] = [];
  const events: GroupAppEvent[] = [];
  const errors: string[] = [];
  const peers: PeerActor[] = [];
  let memberships = 0;
  const group = createGroupCall<FakeRtcPort>({
    dataChannels: [{ label: 'chat' }],
    createMembershipId: () => `${id}m${(memberships += 1)}`,
    inspect: (event) => {
      const id = (event.actorRef as { readonly id?: string }).id;
      if (event.type === '@xstate.actor' && id !== undefined && memberOfPairActorId(id) !== null) peers.push(event.actorRef as PeerActor);
    },
    ...groupOptions,
    signaling: member.signaling,
    createRtc: (remote) => {
      const port = networkFor(remote).createPort({ name: `${id}>${remote}#${ports.length + 1}` });
      for (const kind of media) port.addTransceiver(kind);
      ports.push(port);
      return port;
    },
  });
  group.events$.subscribe((event) => {
    events.push(event);
    if (event.type === 'error') errors.push(`${id} (pair with ${event.member}): ${event.operation} failed: ${event.error.name}: ${event.error.message}`);
  });
  return {
    id,
    room: member,
    group,
    ports,
    events,
    errors,
    peers,
    tracks,
    addTrack(kind) {
      const track = newTrack(kind);
      tracks.push(track);
      group.addTrack(track);
      return track;
    },
    replaceLatestTrack() {
      const current = tracks[tracks.length - 1];
      if (current === undefined) return null;
      const next = newTrack(current.kind);
      tracks[tracks.length - 1] = next;
      return group.replaceTrack(current, next).then(() => next);
    },
  };
}

/**
 * What does not hold in a settled mesh, as sentences: every member in the call holds a pair
 * with every other member in the call, and only with them; each pair is connected and stable on
 * both sides, with the same session and equal transceivers, and its chat channels open; no
 * port made an illegal call; no error was reported; members out of the call hold nothing.
 */
export function meshViolations(members: readonly GroupMember[]): string[] {
  const found: string[] = [];
  const inCall = members.filter((m) => m.room.present && (m.group.status().state === 'joined' || m.group.status().state === 'joining'));
  const inCallIds = new Set(inCall.map((m) => m.id));
  for (const member of members) {
    for (const port of member.ports) {
      for (const call of port.illegalCalls) found.push(`${port.name} made an illegal call: ${call.method} in ${call.state} (${call.detail})`);
    }
    found.push(...member.errors.map((line) => `error reported: ${line}`));
    const status = member.group.status();
    if (status.state === 'joining') found.push(`${member.id} is still joining`);
    if (!inCallIds.has(member.id)) {
      if (status.members.size > 0) found.push(`${member.id} is ${status.state} but holds pairs with ${[...status.members.keys()].join(', ')}`);
      const open = member.ports.filter((port) => port.connectionState !== 'closed').map((port) => port.name);
      if (open.length > 0) found.push(`${member.id} is ${status.state} but its ports ${open.join(', ')} are not closed`);
      continue;
    }
    const expected = [...inCallIds].filter((id) => id !== member.id).sort();
    const held = [...status.members.keys()].sort();
    if (expected.join() !== held.join()) found.push(`${member.id} holds pairs with [${held.join(', ')}], expected [${expected.join(', ')}]`);
  }
  for (const a of inCall) {
    for (const b of inCall) {
      if (a.id >= b.id) continue;
      const pairA = a.group.actor.getSnapshot().context.pairs.get(b.id);
      const pairB = b.group.actor.getSnapshot().context.pairs.get(a.id);
      if (pairA === undefined || pairB === undefined) continue; // reported above
      const name = `${a.id}<->${b.id}`;
      if (pairA.session !== pairB.session) found.push(`${name}: sessions differ (${pairA.session} / ${pairB.session})`);
      const portA = a.group.rtcPorts().get(b.id);
      const portB = b.group.rtcPorts().get(a.id);
      if (portA === undefined || portB === undefined) {
        found.push(`${name}: a port is missing`);
        continue;
      }
      for (const [side, port, pair] of [
        [a.id, portA, pairA],
        [b.id, portB, pairB],
      ] as const) {
        if (port.signalingState !== 'stable') found.push(`${name}: ${side} is ${port.signalingState}`);
        if (port.connectionState !== 'connected') found.push(`${name}: ${side} is ${port.connectionState}, not connected`);
        const negotiation = negotiationOf(pair.peer.getSnapshot());
        if (negotiation === null) found.push(`${name}: ${side}'s peer ended`);
        else {
          if (negotiation.value !== 'stable') found.push(`${name}: ${side} negotiation is ${JSON.stringify(negotiation.value)}`);
          if (negotiation.context.negotiationNeeded) found.push(`${name}: ${side} still needs to negotiate`);
        }
        const unnegotiated = port.getTransceivers().filter((t) => t.mid === null).length;
        if (unnegotiated > 0) found.push(`${name}: ${side} has ${unnegotiated} transceiver(s) never negotiated`);
        const sender = side === a.id ? a : b;
        const sent = port.getTransceivers().map((t) => t.senderTrack);
        const missing = sender.tracks.filter((track) => !sent.includes(track)).map((track) => track.id);
        if (missing.length > 0) found.push(`${name}: ${side} does not send ${missing.join(', ')}`);
        const channels = pair.peer.getSnapshot().context.channels;
        if (!channels.some((channel) => channel.getSnapshot().matches('open'))) found.push(`${name}: ${side} has no open data channel`);
      }
      if (portA.getTransceivers().length !== portB.getTransceivers().length) {
        found.push(`${name}: transceiver counts differ (${portA.getTransceivers().length} / ${portB.getTransceivers().length})`);
      }
    }
  }
  return found;
}
