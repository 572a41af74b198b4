import { Observable, Subscription, filter } from 'rxjs';
import { enqueueActions, fromEventObservable, setup } from 'xstate';
import type { ActorRefFrom } from 'xstate';
import type { RtcPort } from '../ports/rtc.js';
import type { SignalingPort } from '../ports/signaling.js';
import { isGroupMessage } from '../protocol/peer-message.js';
import type { GroupMessage, PeerMessage } from '../protocol/peer-message.js';
import { randomSessionId } from './call.machine.js';
import { peerMachine } from './peer.machine.js';
import type { PeerInput } from './peer.types.js';

// A group call: a full mesh of peer machines, one per pair of members, over the room's
// signaling (docs/architecture.md, "Group calls"). This machine holds the membership protocol;
// each pair's negotiation, ICE and recovery are the peer machine's, unchanged.
//
// Membership protocol (peer messages `group-*`, over each member's own pipe):
// - JOIN sends `group-join` (our fresh membership id) to every member of the room.
// - A member in the call answers `group-present` (its membership, and the membership of the join
//   it answers) and opens its pair with us; we open ours when the answer comes, if it answers our
//   current membership (a late answer to a join of ours before a leave is dropped). Members not
//   in the call do not answer.
// - The size cap (`maxMembers`, ourselves included) always turns away the newcomer: a member
//   joined at the cap answers a join `group-full` and opens nothing; a joiner that a
//   `group-full`, or a `group-present` past the cap, reaches leaves everyone it met (state
//   `full`, error `full`); so does a joiner at the cap that a crossing join reaches (both are
//   new: both may yield). Racing joins past the cap may therefore all be turned away, never
//   let in too many; the app may retry.
// - LEAVE sends `group-leave` to every paired member, who drops the pair at once. A member who
//   vanishes from the room's presence (the server's peer-left, after its resume grace) is
//   dropped then.
//
// Pairs: the session of a pair is both memberships in the order of the member ids, so both
// sides name it alike and a rejoin makes a new one (messages of the old pair are then dropped
// by the peer machine as another session's). The member with the smaller id is the impolite
// peer and offers at once; the other is polite and waits for that offer (`awaitRemoteOffer`), so
// the first offers of a pair never collide, and later renegotiations (tracks, ICE restarts,
// from either side) are settled by perfect negotiation (webrtc-pc §10.7). The offer always
// travels behind the message that makes the other side open its pair (our `group-present`, or
// its own `group-join` crossing ours), on the same ordered pipe, so it never arrives first.

/** What a room gives a group call: who we are, who else is in the room, a pipe to each. */
export interface GroupSignaling {
  /** Our member id in the room; `null` until known (e.g. before the signaling server's welcome). */
  readonly selfId$: Observable<string | null>;
  /** The ids of the OTHER members present in the room (presence), now and on every change. */
  readonly members$: Observable<readonly string[]>;
  /** One message pipe per remote member (the same pipe for the same id). */
  portFor(memberId: string): SignalingPort;
}

/** Options of every pair's peer; the group sets the ports, politeness, session and who offers. */
export type GroupPeerOptions = Omit<PeerInput, 'rtc' | 'signaling' | 'polite' | 'session' | 'awaitRemoteOffer' | 'offerOnStart'>;

/** The input of `groupMachine`. */
export interface GroupInput {
  readonly signaling: GroupSignaling;
  /** Called when a pair starts: the app builds that member's connection and adds its local tracks. */
  readonly createRtc: (memberId: string) => RtcPort;
  /** The most members the call holds, ourselves included (default 6, at least 2). */
  readonly maxMembers?: number;
  readonly peer?: GroupPeerOptions;
  /** Makes our membership id at each join (default `randomSessionId`). */
  readonly createMembershipId?: () => string;
}

/** Why a group call could not go on. */
export type GroupErrorCode = 'full';

/** A typed group-call error (in `GroupStatus.error`). */
export interface GroupError {
  readonly code: GroupErrorCode;
  readonly message: string;
}

/**
 * The longest membership id taken from a member: two of them and a dot make a pair session
 * within `PEER_MESSAGE_LIMITS.sessionLength` (128). Group messages with longer ones are ignored.
 */
export const MAX_MEMBERSHIP_LENGTH = 63;

/** The default `maxMembers`. */
export const DEFAULT_MAX_GROUP_MEMBERS = 6;

/** One pair of the mesh as this side holds it. */
export interface GroupPair {
  readonly member: string;
  /** The remote member's membership id (from its `group-join` or `group-present`). */
  readonly membership: string;
  /** The pair's session: both memberships, in the order of the member ids. */
  readonly session: string;
  readonly peer: PeerActor;
}

type PeerActor = ActorRefFrom<typeof peerMachine>;

/** The context of `groupMachine`. */
export interface GroupContext {
  readonly signaling: GroupSignaling;
  readonly createRtc: (memberId: string) => RtcPort;
  readonly maxMembers: number;
  readonly peerOptions: GroupPeerOptions;
  readonly createMembershipId: () => string;
  readonly selfId: string | null;
  /** The other members of the room (presence), in the call or not. */
  readonly roomMembers: readonly string[];
  /** Our membership in the call, or in the call we were last in; null before the first join. */
  readonly membership: string | null;
  /** The pairs of the mesh, by member id. */
  readonly pairs: ReadonlyMap<string, GroupPair>;
  /** While joining: the members of the room whose answer to our join we wait for. */
  readonly unanswered: ReadonlySet<string>;
  readonly error: GroupError | null;
}

/** What the app asks of a group call. */
export type GroupUserEvent =
  | { readonly type: 'JOIN' }
  | { readonly type: 'LEAVE' }
  /** Asks one pair's peer for an ICE restart. */
  | { readonly type: 'RESTART_ICE'; readonly member: string };

/** What the room says: our id, its members, and the members' group messages. */
export type GroupRoomEvent =
  | { readonly type: 'SELF'; readonly id: string | null }
  | { readonly type: 'MEMBERS'; readonly members: readonly string[] }
  | { readonly type: 'REMOTE.JOIN' | 'REMOTE.LEAVE' | 'REMOTE.FULL'; readonly member: string; readonly membership: string }
  /** `join`: the membership of the join this answers (ours, or a former one of ours). */
  | { readonly type: 'REMOTE.PRESENT'; readonly member: string; readonly membership: string; readonly join: string };

/** Every event `groupMachine` accepts. */
export type GroupEvent = GroupUserEvent | GroupRoomEvent;

type RemoteEvent = Extract<GroupRoomEvent, { readonly member: string }>;

/** The event of each group message but `group-present`, which also carries the join it answers. */
const REMOTE_EVENT_OF: Readonly<Record<Exclude<GroupMessage['kind'], 'group-present'>, Exclude<RemoteEvent['type'], 'REMOTE.PRESENT'>>> = {
  'group-join': 'REMOTE.JOIN',
  'group-leave': 'REMOTE.LEAVE',
  'group-full': 'REMOTE.FULL',
};

/**
 * The room as events: SELF and MEMBERS as they change, and the `group-*` messages of every
 * member present (their pipes are read from the moment they appear, before MEMBERS says so).
 */
function roomEvents(signaling: GroupSignaling): Observable<GroupRoomEvent> {
  return new Observable<GroupRoomEvent>((subscriber) => {
    const pipes = new Map<string, Subscription>();
    const all = new Subscription(() => {
      for (const pipe of pipes.values()) pipe.unsubscribe();
      pipes.clear();
    });
    all.add(signaling.selfId$.subscribe((id) => subscriber.next({ type: 'SELF', id })));
    all.add(
      signaling.members$.subscribe((members) => {
        for (const member of members) {
          if (pipes.has(member)) continue;
          const messages = signaling
            .portFor(member)
            .messages$.pipe(filter((message: PeerMessage): message is GroupMessage => isGroupMessage(message) && message.session.length <= MAX_MEMBERSHIP_LENGTH));
          pipes.set(
            member,
            messages.subscribe((message) =>
              subscriber.next(
                message.kind === 'group-present'
                  ? { type: 'REMOTE.PRESENT', member, membership: message.session, join: message.join }
                  : { type: REMOTE_EVENT_OF[message.kind], member, membership: message.session },
              ),
            ),
          );
        }
        for (const [member, pipe] of pipes) {
          if (members.includes(member)) continue;
          pipe.unsubscribe();
          pipes.delete(member);
        }
        subscriber.next({ type: 'MEMBERS', members });
      }),
    );
    return all;
  });
}

/** The session of the pair of `self` and `member`: both memberships, smaller member id first. */
export function pairSessionOf(self: { readonly id: string; readonly membership: string }, member: string, membership: string): string {
  return self.id < member ? `${self.membership}.${membership}` : `${membership}.${self.membership}`;
}

/** The xstate id of a pair's peer actor, from which `memberOfPairActorId` reads the member back. */
export function pairActorId(member: string, session: string): string {
  return `pair:${JSON.stringify([member, session])}`;
}

/** The member of a pair's peer actor id, or null when the id is not a pair's. */
export function memberOfPairActorId(id: string): string | null {
  if (!id.startsWith('pair:')) return null;
  try {
    const parsed = JSON.parse(id.slice('pair:'.length)) as unknown;
    return Array.isArray(parsed) && typeof parsed[0] === 'string' ? parsed[0] : null;
  } catch {
    return null;
  }
}

/** Our id and membership; only while in the call. */
function inCall(context: GroupContext): { readonly id: string; readonly membership: string } {
  if (context.selfId === null || context.membership === null) throw new Error('group machine: not in the call');
  return { id: context.selfId, membership: context.membership };
}

function without<K, V>(map: ReadonlyMap<K, V>, key: K): ReadonlyMap<K, V> {
  const copy = new Map(map);
  copy.delete(key);
  return copy;
}

function withoutMember(set: ReadonlySet<string>, member: string): ReadonlySet<string> {
  const copy = new Set(set);
  copy.delete(member);
  return copy;
}

/** Members other than `member` we hold a pair with. */
function othersPaired(context: GroupContext, member: string): number {
  return context.pairs.size - (context.pairs.has(member) ? 1 : 0);
}

const groupSetup = setup({
  types: {
    context: {} as GroupContext,
    events: {} as GroupEvent,
    input: {} as GroupInput,
  },
  actors: {
    peer: peerMachine,
    room: fromEventObservable<GroupRoomEvent, { readonly signaling: GroupSignaling }>(({ input }) => roomEvents(input.signaling)),
  },
  guards: {
    hasIdentity: ({ context }) => context.selfId !== null,
    /** Our id changed from a known one to another known one. */
    isNewIdentity: ({ context, event }) => event.type === 'SELF' && event.id !== null && context.selfId !== null && event.id !== context.selfId,
    /** Everyone in the room at our join answered (or left the room). */
    isAnsweredByAll: ({ context }) => context.unanswered.size === 0,
    isOfCurrentPair: ({ context, event }) =>
      'membership' in event && context.pairs.get(event.member)?.membership === event.membership,
    /** We, the event's member and the others paired would be more than maxMembers. */
    isCallFullFor: ({ context, event }) => 'member' in event && othersPaired(context, event.member) + 2 > context.maxMembers,
    /** The answer to our join is addressed to this membership. */
    isForOurMembership: ({ context, event }) => 'membership' in event && event.membership === context.membership,
    /** A `group-present` answering a join of another membership than ours (a former one, before a leave and rejoin). */
    isForAnotherMembership: ({ context, event }) => event.type === 'REMOTE.PRESENT' && event.join !== context.membership,
  },
  actions: {
    recordSelf: enqueueActions(({ event, enqueue }) => {
      if (event.type === 'SELF') enqueue.assign({ selfId: event.id });
    }),
    recordMembers: enqueueActions(({ event, enqueue }) => {
      if (event.type === 'MEMBERS') enqueue.assign({ roomMembers: event.members });
    }),
    startMembership: enqueueActions(({ context, enqueue }) => {
      enqueue.assign({ membership: context.createMembershipId(), error: null, pairs: new Map(), unanswered: new Set() });
    }),
    /** `group-join` to every member of the room; each answer (or departure) is awaited. */
    announceJoin: enqueueActions(({ context, enqueue }) => {
      const { membership } = inCall(context);
      enqueue(() => {
        for (const member of context.roomMembers) context.signaling.portFor(member).send({ kind: 'group-join', session: membership });
      });
      enqueue.assign({ unanswered: new Set(context.roomMembers) });
    }),
    answerPresent: ({ context, event }) => {
      if (event.type !== 'REMOTE.JOIN') return;
      context.signaling.portFor(event.member).send({ kind: 'group-present', session: inCall(context).membership, join: event.membership });
    },
    /**
     * A `group-present` we do not take (past the cap, or out of the call): `group-leave` with our
     * membership, so the sender drops the pair it opened for us.
     */
    answerLeave: ({ context, event }) => {
      if (event.type !== 'REMOTE.PRESENT' || context.membership === null) return;
      context.signaling.portFor(event.member).send({ kind: 'group-leave', session: context.membership });
    },
    answerFull: ({ context, event }) => {
      if (event.type !== 'REMOTE.JOIN') return;
      context.signaling.portFor(event.member).send({ kind: 'group-full', session: event.membership });
    },
    markAnswered: enqueueActions(({ context, event, enqueue }) => {
      if ('member' in event) enqueue.assign({ unanswered: withoutMember(context.unanswered, event.member) });
    }),
    /**
     * Opens the pair with the member of a join or an answer (replacing the pair of its former
     * membership); one of the same membership is kept as it is (a duplicate, or joins crossing).
     */
    openPair: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'REMOTE.JOIN' && event.type !== 'REMOTE.PRESENT') return;
      const { member, membership } = event;
      const current = context.pairs.get(member);
      if (current?.membership === membership) return;
      if (current !== undefined) enqueue.stopChild(current.peer);
      const self = inCall(context);
      const session = pairSessionOf(self, member, membership);
      const offers = self.id < member;
      enqueue.assign({
        pairs: ({ context: latest, spawn }) =>
          new Map(latest.pairs).set(member, {
            member,
            membership,
            session,
            peer: spawn('peer', {
              id: pairActorId(member, session),
              input: {
                ...latest.peerOptions,
                rtc: latest.createRtc(member),
                signaling: latest.signaling.portFor(member),
                polite: !offers,
                session,
                offerOnStart: offers,
                awaitRemoteOffer: !offers,
              },
            }),
          }),
      });
    }),
    /** Drops the pair of the event's member: its peer is stopped, which closes its connection. */
    closePair: enqueueActions(({ context, event, enqueue }) => {
      if (!('member' in event)) return;
      const pair = context.pairs.get(event.member);
      if (pair === undefined) return;
      enqueue.stopChild(pair.peer);
      enqueue.assign({ pairs: without(context.pairs, event.member) });
    }),
    /** Drops the pairs (and awaited answers) of members no longer in the room. */
    closeVanishedPairs: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'MEMBERS') return;
      const gone = [...context.pairs.keys()].filter((member) => !event.members.includes(member));
      for (const member of gone) enqueue.stopChild((context.pairs.get(member) as GroupPair).peer);
      enqueue.assign({
        pairs: new Map([...context.pairs].filter(([member]) => event.members.includes(member))),
        unanswered: new Set([...context.unanswered].filter((member) => event.members.includes(member))),
      });
    }),
    /** Leaving (or refused): `group-leave` to every paired member, every peer stopped. */
    leaveCall: enqueueActions(({ context, enqueue }) => {
      const membership = context.membership;
      for (const pair of context.pairs.values()) {
        if (membership !== null) enqueue(() => context.signaling.portFor(pair.member).send({ kind: 'group-leave', session: membership }));
        enqueue.stopChild(pair.peer);
      }
      // The membership is kept: a late `group-present` answering it is told we left (answerLeave).
      enqueue.assign({ pairs: new Map(), unanswered: new Set() });
    }),
    recordFull: enqueueActions(({ context, enqueue }) => {
      enqueue.assign({
        error: { code: 'full', message: `the group call already holds its maximum of ${context.maxMembers} members` },
      });
    }),
    restartIce: ({ context, event }) => {
      if (event.type !== 'RESTART_ICE') return;
      const peer = context.pairs.get(event.member)?.peer;
      if (peer?.getSnapshot().status === 'active') peer.send({ type: 'RESTART_ICE' });
    },
  },
  delays: {
    /** How long a joiner waits for the room's answers; members not in the call never answer. */
    joinAnswerTimeout: 2000,
  },
});

/** A join we take: answered `group-present`, paired, and no longer awaited. */
const takeJoin = { actions: ['answerPresent', 'openPair', 'markAnswered'] } as const;
/** Refused from the call: the typed error, and `inCall`'s exit leaves everyone we met. */
const refused = { target: '#group.full', actions: 'recordFull' } as const;
/** The answer to our join from a member we hold no pair with yet: past the cap we are the one too many. */
const takePresent = [
  // A late answer to a former join of ours (we left and joined again): its sender, if still in
  // the call, answers our new join too, and that answer opens the pair.
  { guard: 'isForAnotherMembership' },
  { guard: 'isOfCurrentPair' },
  // Its sender opened a pair for us: answerLeave tells it to drop it.
  { guard: 'isCallFullFor', target: '#group.full', actions: ['recordFull', 'answerLeave'] },
  { actions: ['openPair', 'markAnswered'] },
] as const;

/**
 * A group call over the room's signaling: membership (join, answers, leave, presence, the size
 * cap) and a spawned peer machine per other member in the call. `createGroupCall` wraps it for
 * apps; drawn in docs/machines.md.
 */
export const groupMachine = groupSetup.createMachine({
  id: 'group',
  context: ({ input }) => ({
    signaling: input.signaling,
    createRtc: input.createRtc,
    maxMembers: Math.max(2, input.maxMembers ?? DEFAULT_MAX_GROUP_MEMBERS),
    peerOptions: input.peer ?? {},
    createMembershipId: input.createMembershipId ?? (() => randomSessionId()),
    selfId: null,
    roomMembers: [],
    membership: null,
    pairs: new Map(),
    unanswered: new Set(),
    error: null,
  }),
  invoke: { id: 'room', src: 'room', input: ({ context }) => ({ signaling: context.signaling }) },
  on: {
    SELF: { actions: 'recordSelf' },
    MEMBERS: { actions: 'recordMembers' },
  },
  initial: 'idle',
  states: {
    idle: {
      description: 'Not in the call. JOIN joins it.',
      on: { JOIN: 'inCall' },
    },
    inCall: {
      description: 'In the call: joins are answered and paired up to maxMembers; leaves and departures from the room drop their pair.',
      entry: 'startMembership',
      exit: 'leaveCall',
      initial: 'joining',
      on: {
        LEAVE: 'left',
        'REMOTE.LEAVE': { guard: 'isOfCurrentPair', actions: ['closePair', 'markAnswered'] },
        // Presents and fulls answer our own join: towards their sender we are the newcomer.
        'REMOTE.PRESENT': takePresent,
        'REMOTE.FULL': { guard: 'isForOurMembership', ...refused },
        MEMBERS: { actions: ['recordMembers', 'closeVanishedPairs'] },
        // A new id in the room (a server restart without resume): the others see a new member,
        // and drop our old id when it vanishes; so we join again under the new one.
        SELF: { guard: 'isNewIdentity', target: '#group.inCall', reenter: true, actions: 'recordSelf' },
        RESTART_ICE: { actions: 'restartIce' },
      },
      states: {
        joining: {
          description: 'Our join goes to everyone in the room; their answers open our pairs, or say the call is full.',
          initial: 'awaitingIdentity',
          on: {
            // A join crossing ours when we are at the cap: we are as new as its sender, and yield.
            'REMOTE.JOIN': [{ guard: 'isCallFullFor', ...refused }, takeJoin],
          },
          states: {
            awaitingIdentity: {
              description: 'Our id in the room is not known yet (the signaling is still joining the room).',
              always: { guard: 'hasIdentity', target: 'announcing' },
            },
            announcing: {
              description: 'Joins sent; waiting for every member of the room to answer (those not in the call never do).',
              entry: 'announceJoin',
              always: { guard: 'isAnsweredByAll', target: '#group.inCall.joined' },
              after: { joinAnswerTimeout: '#group.inCall.joined' },
            },
          },
        },
        joined: {
          description: 'Joined: late answers still open pairs; a newcomer past the cap is answered group-full.',
          on: {
            // A newcomer past the cap is told so, and opens nothing here.
            'REMOTE.JOIN': [{ guard: 'isCallFullFor', actions: 'answerFull' }, takeJoin],
          },
        },
      },
    },
    left: {
      description: 'We left the call. JOIN joins again, as a new membership.',
      on: { JOIN: 'inCall', 'REMOTE.PRESENT': { actions: 'answerLeave' } },
    },
    full: {
      description: 'The call was full when we joined (error `full`); we left everyone we met. JOIN tries again.',
      on: { JOIN: 'inCall', 'REMOTE.PRESENT': { actions: 'answerLeave' } },
    },
  },
});

/** The type of `groupMachine`. */
export type GroupMachine = typeof groupMachine;
/** A running `groupMachine`. */
export type GroupActor = ActorRefFrom<typeof groupMachine>;
