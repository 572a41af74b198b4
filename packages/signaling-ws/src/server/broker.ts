// Rooms and presence. The server keeps sockets; a broker keeps who is in which room and carries
// already-serialized frames to members. The in-memory broker serves one process; a Redis broker
// (keys with TTLs for membership, pub/sub channels per member and per room) can implement the
// same interface so that peers on different server processes share rooms. Methods may return a
// value or a promise (`MaybePromise`): the in-memory broker answers synchronously, so the relay
// hot path allocates no promise.

import type { PeerInfo } from '../protocol.js';

/** A value, or a promise of one (a broker answers in memory at once, a remote one later). */
export type MaybePromise<T> = T | Promise<T>;

/** Receives frames (serialized JSON text) published to one member. Must not throw. */
export type Deliver = (frame: string) => void;

/** What `Broker.join` answers: the other members, or why the join is refused. */
export type BrokerJoinResult =
  | { readonly ok: true; /** The other members, in join order. */ readonly peers: readonly PeerInfo[] }
  | { readonly ok: false; readonly reason: 'name-taken' | 'id-taken' | 'room-full' };

/**
 * Rooms and presence for the server: who is in which room, and delivery to members. The
 * default is `InMemoryBroker`; a shared one (e.g. Redis) lets instances serve one room.
 */
export interface Broker {
  /**
   * Adds `member` to `room` unless its name or its id is taken there or the room has `maxPeers`
   * members (all checked atomically with the insert). Frames published to the member go to
   * `deliver`. (Ids are random, so `id-taken` only ever answers a peer restoring its id from a
   * resume token while that id is still a member.)
   */
  join(room: string, member: PeerInfo, maxPeers: number, deliver: Deliver): MaybePromise<BrokerJoinResult>;
  /** Removes a member; a no-op for one that is not there. */
  leave(room: string, id: string): MaybePromise<void>;
  /** The members of `room` (empty when it does not exist). */
  members(room: string): MaybePromise<readonly PeerInfo[]>;
  /** Delivers `frame` to member `to` of `room` only; false when `to` is not a member of `room`. */
  publish(room: string, to: string, frame: string): MaybePromise<boolean>;
  /** Delivers `frame` to every member of `room` except `except`. */
  broadcast(room: string, frame: string, except?: string): MaybePromise<void>;
  /** Counts for health checks and benchmarks. */
  stats(): MaybePromise<{ readonly rooms: number; readonly members: number }>;
  /** Releases resources (connections to a backing store). */
  close(): MaybePromise<void>;
}

interface Member {
  readonly info: PeerInfo;
  readonly deliver: Deliver;
}

/** The default broker: rooms in a Map, for one server process. */
export class InMemoryBroker implements Broker {
  private readonly rooms = new Map<string, Map<string, Member>>();
  private memberCount = 0;

  join(room: string, member: PeerInfo, maxPeers: number, deliver: Deliver): BrokerJoinResult {
    let members = this.rooms.get(room);
    if (members === undefined) {
      members = new Map();
      this.rooms.set(room, members);
    }
    if (members.has(member.id)) return { ok: false, reason: 'id-taken' };
    const peers: PeerInfo[] = [];
    for (const other of members.values()) {
      if (other.info.name === member.name) return { ok: false, reason: 'name-taken' };
      peers.push(other.info);
    }
    if (members.size >= maxPeers) return { ok: false, reason: 'room-full' };
    members.set(member.id, { info: { id: member.id, name: member.name }, deliver });
    this.memberCount += 1;
    return { ok: true, peers };
  }

  leave(room: string, id: string): void {
    const members = this.rooms.get(room);
    if (members?.delete(id) !== true) return;
    this.memberCount -= 1;
    if (members.size === 0) this.rooms.delete(room);
  }

  members(room: string): readonly PeerInfo[] {
    const members = this.rooms.get(room);
    return members === undefined ? [] : Array.from(members.values(), (m) => m.info);
  }

  publish(room: string, to: string, frame: string): boolean {
    const member = this.rooms.get(room)?.get(to);
    if (member === undefined) return false;
    member.deliver(frame);
    return true;
  }

  broadcast(room: string, frame: string, except?: string): void {
    const members = this.rooms.get(room);
    if (members === undefined) return;
    for (const [id, member] of members) {
      if (id !== except) member.deliver(frame);
    }
  }

  stats(): { rooms: number; members: number } {
    return { rooms: this.rooms.size, members: this.memberCount };
  }

  close(): void {
    this.rooms.clear();
    this.memberCount = 0;
  }
}
