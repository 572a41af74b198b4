// Rooms, presence and revocations. The server keeps sockets; a broker keeps who is in which room and carries
// already-serialized frames to members. The in-memory broker serves one process; the Redis broker
// (src/server/redis/, `createRedisBroker`) implements the same interface so that peers on
// different server processes ("nodes") share rooms. Methods may return a
// value or a promise (`MaybePromise`): the in-memory broker answers synchronously, so the relay
// hot path allocates no promise.
//
// Revocations are what every process sharing a resume secret must agree on: a session that ended
// by `leave` or a clean close is revoked (its resume tokens restore nothing, anywhere), and each
// resume token restores an id once. A Redis broker keeps them as keys with a TTL (`SET NX PX`).

import type { PeerInfo } from '../protocol.js';

/** A value, or a promise of one (a broker answers in memory at once, a remote one later). */
export type MaybePromise<T> = T | Promise<T>;

/**
 * A serialized frame: its JSON text, or the UTF-8 bytes of that text. The relay forwards a
 * signal as bytes (the client's own bytes of `data` behind the server's `from`: no decoding and
 * re-encoding) to a broker that takes them (`Broker.takesBytes`), else as text.
 */
export type WireFrame = string | Buffer;

/** The text of a frame (its bytes decoded as UTF-8): what is kept of one held for later, so that it holds no shared buffer. */
export function wireFrameText(frame: WireFrame): string {
  return typeof frame === 'string' ? frame : frame.toString('utf8');
}

/**
 * Receives frames published to one member, with the id of the member that
 * sent it when it is a relayed signal (the receiver tells that sender `undeliverable` if it can
 * neither send nor hold the frame). Must not throw.
 */
export type Deliver = (frame: WireFrame, from?: string) => void;

/** A frame held for a member that has no socket, with the member that sent it (if a signal). */
export interface HeldFrame {
  readonly frame: string;
  /** The sender of a relayed signal, told `undeliverable` if the frame is never delivered. */
  readonly from: string | undefined;
}

/** What a broadcast about its `except` member reports: that member's join or its leave. */
export type BroadcastNews = 'joined' | 'left';

/** What `Broker.join` answers: the other members, or why the join is refused. */
export type BrokerJoinResult =
  | {
      readonly ok: true;
      /** The other members, in join order. */
      readonly peers: readonly PeerInfo[];
      /**
       * True when the join took the id over from a member that was still there (a restore with
       * `takeover`): the room was never told that member left, so it is not told it joined.
       */
      readonly takenOver?: boolean;
      /**
       * Frames held for the member before it joined (a takeover: what the previous owner held),
       * in order; the server sends them right after `welcome`. Later ones come through `deliver`.
       */
      readonly held?: readonly HeldFrame[];
    }
  | { readonly ok: false; readonly reason: 'name-taken' | 'id-taken' | 'room-full' };

/** How a member joins (`Broker.join`). */
export interface JoinOptions {
  /**
   * Take the id over if it is a member already under the same name (a restore of a verified,
   * first-use resume token, after its node died or while its old socket lingers elsewhere)
   * instead of answering `id-taken`. The previous owner's `onTakenOver` runs, and the frames it
   * held come to the new member, before any frame published after the takeover.
   */
  readonly takeover?: boolean;
  /**
   * Runs when a later join takes this member over: the member's session ends silently (no
   * `peer-left`, no revocation) and hands back, in order, the frames it held for the member.
   */
  readonly onTakenOver?: () => readonly HeldFrame[];
}

/**
 * Rooms and presence for the server: who is in which room, and delivery to members. The
 * default is `InMemoryBroker`; a shared one (e.g. Redis) lets instances serve one room.
 */
export interface Broker {
  /**
   * Adds `member` to `room` unless its name or its id is taken there or the room has `maxPeers`
   * members (all checked atomically with the insert). Frames published to the member go to
   * `deliver`. (Ids are random, so `id-taken` only ever answers a peer restoring its id from a
   * resume token while that id is still a member, unless `options.takeover`.) `deliver` also
   * identifies this membership for `leave`.
   */
  join(room: string, member: PeerInfo, maxPeers: number, deliver: Deliver, options?: JoinOptions): MaybePromise<BrokerJoinResult>;
  /**
   * Removes member `id` of `room` if it is still the membership that joined with `deliver` (not
   * one that another join has taken over since, here or on another node). True when it removed
   * the member: only then is the room told `peer-left`.
   */
  leave(room: string, id: string, deliver: Deliver): MaybePromise<boolean>;
  /** The members of `room` (empty when it does not exist). */
  members(room: string): MaybePromise<readonly PeerInfo[]>;
  /**
   * Delivers `frame` to member `to` of `room` only (its `deliver` gets `from` along); false when
   * `to` is not a member of `room`. `frame` is a Buffer only when `takesBytes` is true.
   */
  publish(room: string, to: string, frame: WireFrame, from?: string): MaybePromise<boolean>;
  /**
   * True when `publish` takes frames as bytes (a Buffer, delivered as it is; the in-memory broker
   * does). Absent or false: `publish` is given text only.
   */
  readonly takesBytes?: boolean;
  /**
   * Delivers `frame` to every member of `room` except `except`. With `news`, the frame reports
   * that `except` joined (`peer-joined`, sent right after its join) or left (`peer-left`, right
   * after `leave` removed it), and goes only to members that joined before that event: a later
   * member's `welcome` reflected it already. (A broker whose joins and leaves are not atomic with
   * this broadcast must filter; in memory nobody can join in between.)
   */
  broadcast(room: string, frame: string, except?: string, news?: BroadcastNews): MaybePromise<void>;
  /**
   * Records `key` as revoked until `untilMs` (unix ms, on the clock that gives `nowMs`), for
   * every process sharing this broker;
   * true when it was not revoked yet (atomically: of two processes revoking the same key at
   * once, one gets true), false when it already was.
   */
  revoke(key: string, untilMs: number, nowMs: number): MaybePromise<boolean>;
  /** Whether `key` is revoked (and its revocation has not run out) at `nowMs`. */
  isRevoked(key: string, nowMs: number): MaybePromise<boolean>;
  /**
   * Whether the broker can serve joins and frames now (false while a backing store is
   * unreachable); `/readyz` answers 503 while it is false. Absent: always ready.
   */
  ready?(): boolean;
  /** Counts for health checks and benchmarks (the Redis broker: this node's members). */
  stats(): MaybePromise<{ readonly rooms: number; readonly members: number }>;
  /** Releases resources (connections to a backing store). */
  close(): MaybePromise<void>;
}

interface Member {
  readonly info: PeerInfo;
  readonly deliver: Deliver;
  readonly onTakenOver: (() => readonly HeldFrame[]) | undefined;
}

/** Revocations kept by the in-memory broker; past this many, the oldest are forgotten. */
const REVOCATIONS_LIMIT = 100_000;

/**
 * The default broker: rooms and revocations in Maps, for the server processes of one Node
 * process (servers given the same instance share them, as processes will share a Redis broker).
 */
export class InMemoryBroker implements Broker {
  /** Frames go to the members' `deliver` as they are published, bytes or text. */
  readonly takesBytes = true;
  private readonly rooms = new Map<string, Map<string, Member>>();
  private memberCount = 0;
  /** Revoked key -> until when (ms); insertion order is roughly age order. */
  private readonly revocations = new Map<string, number>();

  join(room: string, member: PeerInfo, maxPeers: number, deliver: Deliver, options?: JoinOptions): BrokerJoinResult {
    let members = this.rooms.get(room);
    if (members === undefined) {
      members = new Map();
      this.rooms.set(room, members);
    }
    const entry: Member = { info: { id: member.id, name: member.name }, deliver, onTakenOver: options?.onTakenOver };
    const current = members.get(member.id);
    if (current !== undefined) {
      if (options?.takeover !== true || current.info.name !== member.name) return { ok: false, reason: 'id-taken' };
      // Map.set on a present key keeps its place: the member keeps its place in join order.
      members.set(member.id, entry);
      const held = current.onTakenOver?.() ?? [];
      return { ok: true, peers: this.othersOf(members, member.id), takenOver: true, held };
    }
    const peers: PeerInfo[] = [];
    for (const other of members.values()) {
      if (other.info.name === member.name) return { ok: false, reason: 'name-taken' };
      peers.push(other.info);
    }
    if (members.size >= maxPeers) return { ok: false, reason: 'room-full' };
    members.set(member.id, entry);
    this.memberCount += 1;
    return { ok: true, peers };
  }

  private othersOf(members: Map<string, Member>, id: string): PeerInfo[] {
    const peers: PeerInfo[] = [];
    for (const other of members.values()) if (other.info.id !== id) peers.push(other.info);
    return peers;
  }

  leave(room: string, id: string, deliver: Deliver): boolean {
    const members = this.rooms.get(room);
    if (members?.get(id)?.deliver !== deliver) return false;
    members.delete(id);
    this.memberCount -= 1;
    if (members.size === 0) this.rooms.delete(room);
    return true;
  }

  members(room: string): readonly PeerInfo[] {
    const members = this.rooms.get(room);
    return members === undefined ? [] : Array.from(members.values(), (m) => m.info);
  }

  publish(room: string, to: string, frame: WireFrame, from?: string): boolean {
    const member = this.rooms.get(room)?.get(to);
    if (member === undefined) return false;
    member.deliver(frame, from);
    return true;
  }

  revoke(key: string, untilMs: number, now: number): boolean {
    if (this.isRevoked(key, now)) return false;
    for (const [old, until] of this.revocations) {
      if (until > now && this.revocations.size < REVOCATIONS_LIMIT) break;
      this.revocations.delete(old);
    }
    this.revocations.set(key, untilMs);
    return true;
  }

  isRevoked(key: string, nowMs: number): boolean {
    const until = this.revocations.get(key);
    return until !== undefined && until > nowMs;
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
    this.revocations.clear();
    this.memberCount = 0;
  }
}
