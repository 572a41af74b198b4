import { BehaviorSubject, Observable } from 'rxjs';
import type { GroupSignaling } from '../machines/group.machine.js';
import type { SignalingPort } from '../ports/signaling.js';
import type { PeerMessage } from '../protocol/peer-message.js';
import { createSignalingPair } from './signaling-pair.js';
import type { FakeScheduler } from './fake-network.js';
import type { FakeSignalingPort } from './signaling-pair.js';

// An in-memory room for group calls: presence as a signaling server reports it, and a fake
// signaling pair between every two members (ordered per direction, each delivery one scheduled
// step). Presence changes at once for everyone, before any message of the newcomer can arrive,
// as a server announces peer-joined before it relays the newcomer's first message.

/** Options of `createFakeRoom`. */
export interface FakeRoomOptions {
  /** Drives every message delivery (fast-check `fc.scheduler()` fits); default one macrotask each. */
  readonly scheduler?: FakeScheduler;
  /** Sees every message sent from `from` to `to`; returns what travels instead (`[]` drops, `[m, m]` duplicates). */
  readonly intercept?: (message: PeerMessage, from: string, to: string) => readonly PeerMessage[];
}

/** One member of a `FakeRoom`: its `GroupSignaling`, and its pipes for tests. */
export interface FakeRoomMember {
  readonly id: string;
  readonly signaling: GroupSignaling;
  /** The pipe from this member to `other` (created on first use). */
  pipeTo(other: string): FakeSignalingPort;
  /** Whether it is still in the room. */
  readonly present: boolean;
}

/** A room of members with presence and pairwise signaling, as `createFakeRoom` returns it. */
export interface FakeRoom {
  /** A new member enters with id `id` (unique in the room's life, as server ids are). */
  enter(id: string): FakeRoomMember;
  /** The member vanishes (the server's peer-left): gone from everyone's presence, its pipes closed. */
  vanish(id: string): void;
  /** The members present, in order of entry. */
  readonly present: readonly string[];
  /** Every pipe ever made, for checking nothing is left undelivered. */
  pipes(): readonly FakeSignalingPort[];
  /** Subscriptions open now to any member's `selfId$`, `members$` or pipe messages (0 once every group call stopped). */
  openSubscriptions(): number;
}

/** Creates an empty `FakeRoom`. */
export function createFakeRoom(options: FakeRoomOptions = {}): FakeRoom {
  const members = new Map<string, { readonly members$: BehaviorSubject<readonly string[]>; readonly self$: BehaviorSubject<string | null>; present: boolean }>();
  /** pipes.get(a).get(b): the end a uses to talk to b. */
  const pipes = new Map<string, Map<string, FakeSignalingPort>>();
  const all: FakeSignalingPort[] = [];
  let subscriptions = 0;
  /** `source`, counting its open subscriptions. */
  const counted = <T>(source: Observable<T>): Observable<T> =>
    new Observable<T>((subscriber) => {
      subscriptions += 1;
      const inner = source.subscribe(subscriber);
      return () => {
        subscriptions -= 1;
        inner.unsubscribe();
      };
    });

  const presentIds = (): string[] => [...members].filter(([, m]) => m.present).map(([id]) => id);
  const publishPresence = (): void => {
    const ids = presentIds();
    for (const id of ids) {
      const member = members.get(id);
      member?.members$.next(ids.filter((other) => other !== id));
    }
  };
  const pipe = (from: string, to: string): FakeSignalingPort => {
    const existing = pipes.get(from)?.get(to);
    if (existing !== undefined) return existing;
    const [a, b] = createSignalingPair({
      ...(options.scheduler ? { scheduler: options.scheduler } : {}),
      names: [from, to],
      ...(options.intercept
        ? { intercept: (message: PeerMessage, end: 'a' | 'b') => options.intercept!(message, end === 'a' ? from : to, end === 'a' ? to : from) }
        : {}),
    });
    if (!pipes.has(from)) pipes.set(from, new Map());
    if (!pipes.has(to)) pipes.set(to, new Map());
    pipes.get(from)!.set(to, a);
    pipes.get(to)!.set(from, b);
    all.push(a, b);
    // A member that already vanished hears nothing and says nothing.
    if (members.get(from)?.present === false) a.close();
    if (members.get(to)?.present === false) b.close();
    return a;
  };

  return {
    enter(id) {
      if (members.has(id)) throw new Error(`createFakeRoom: ${id} was already in the room (ids are never reused)`);
      const member = { members$: new BehaviorSubject<readonly string[]>([]), self$: new BehaviorSubject<string | null>(id), present: true };
      members.set(id, member);
      publishPresence();
      const ports = new Map<string, SignalingPort>();
      const signaling: GroupSignaling = {
        selfId$: counted(member.self$),
        members$: counted(member.members$),
        portFor: (other): SignalingPort => {
          let port = ports.get(other);
          if (port === undefined) {
            const end = pipe(id, other);
            port = { messages$: counted(end.messages$), send: (message) => end.send(message) };
            ports.set(other, port);
          }
          return port;
        },
      };
      return {
        id,
        signaling,
        pipeTo: (other) => pipe(id, other),
        get present() {
          return member.present;
        },
      };
    },
    vanish(id) {
      const member = members.get(id);
      if (member === undefined || !member.present) return;
      member.present = false;
      for (const end of pipes.get(id)?.values() ?? []) end.close();
      for (const [other, ends] of pipes) if (other !== id) ends.get(id)?.close();
      member.members$.next([]);
      publishPresence();
    },
    get present() {
      return presentIds();
    },
    pipes: () => all,
    openSubscriptions: () => subscriptions,
  };
}
