import { BehaviorSubject, Subject } from 'rxjs';
import type { Observable, Subscription } from 'rxjs';
import { createActor } from 'xstate';
import type { ActorOptions, InspectionEvent, Observer, StateValue, Subscription as ActorSubscription } from 'xstate';
import type { DataChannelInit, IceServer, MediaStreamHandle, MediaTrackHandle, RtcPort } from './ports/rtc.js';
import { groupMachine, memberOfPairActorId } from './machines/group.machine.js';
import type { GroupError, GroupPeerOptions, GroupSignaling } from './machines/group.machine.js';
import { isPortReport } from './machines/peer.machine.js';
import type { PeerActor } from './machines/peer.machine.js';
import { dataChannelOf } from './data-channel.js';
import { forwardPeerEvents, peerMachineWithDelays, setIceServers } from './create-peer.js';
import type { PeerAppEvent, PeerDelays } from './create-peer.js';
import { connectionStatusOf, sameConnection } from './create-call.js';
import type { CallConnectionStatus } from './create-call.js';

// An app's handle on the room's group call: the group machine started, its state and each
// member's connection flattened into one status for a UI, the events of every pair's peer
// tagged with the member, and the user's commands (docs/architecture.md, "Group calls").

/** The running `groupMachine` actor behind a `GroupCall` (for inspection and snapshots). */
export type GroupCallActor = ReturnType<typeof createActor<typeof groupMachine>>;

/** The group machine's named delays, in milliseconds. */
export interface GroupDelays {
  /** How long a joiner waits for the room's answers before it counts as joined (default 2000). */
  readonly joinAnswerTimeout: number;
}

/** Options of `createGroupCall`. `P` is the app's RTC port type (e.g. `BrowserRtcPort`). */
export interface CreateGroupCallOptions<P extends RtcPort = RtcPort> {
  /** The room: our id, the other members present, a pipe to each (`groupSignalingOf(client)`). */
  readonly signaling: GroupSignaling;
  /**
   * Called when the pair with `memberId` starts (on each join, rejoin and late joiner): build
   * that member's connection. The tracks given to `addTrack` are added to it right after;
   * tracks the app adds here itself go to that member only. The group's peer owns the port and
   * closes it when the pair ends.
   */
  readonly createRtc: (memberId: string) => P;
  /** The most members the call holds, ourselves included (default 6). */
  readonly maxMembers?: number;
  /** Data channels of every pair (created by the impolite side, received by the other). */
  readonly dataChannels?: readonly { readonly label: string; readonly init?: DataChannelInit }[];
  /** Fresh ICE servers (e.g. a signaling client's `iceServers$`), applied to every pair's port. */
  readonly iceServers$?: Observable<readonly IceServer[]>;
  /** Other options of every pair's peer (trickle, candidate filter, ICE restarts). */
  readonly peer?: Omit<GroupPeerOptions, 'dataChannels'>;
  /** The group's delays and those of every pair's peer. */
  readonly delays?: Partial<GroupDelays & PeerDelays>;
  /** Passed to xstate's createActor: the Stately inspector sees the group, its peers and their children. */
  readonly inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /** A clock for the machines' delays (xstate `SimulatedClock` in tests). */
  readonly clock?: ActorOptions<typeof groupMachine>['clock'];
  /** Makes our membership id at each join (default: random; tests make them predictable). */
  readonly createMembershipId?: () => string;
}

/** The group call's states as an app sees them. */
export type GroupState = 'idle' | 'joining' | 'joined' | 'left' | 'full';

/** One other member in the call, as the UI shows it. */
export interface GroupMemberStatus {
  /** The pair's connection states, as its peer machine last saw them. */
  readonly connection: CallConnectionStatus;
  /** The pair's session id (new on every join and rejoin of either side). */
  readonly session: string;
  /** Whether the pair's peer machine still runs; false once it failed for good (recovery exhausted). */
  readonly running: boolean;
}

/** Everything a group-call UI shows, in one value. */
export interface GroupStatus {
  readonly state: GroupState;
  /** The other members in the call, by member id (those not in the call are not listed). */
  readonly members: ReadonlyMap<string, GroupMemberStatus>;
  /** In `full`: why; null otherwise. */
  readonly error: GroupError | null;
}

/** What one pair's peer reports (see `PeerAppEvent`), with the member it is the pair of. */
export type GroupAppEvent = PeerAppEvent & { readonly member: string };

/** The room's group call, as `createGroupCall` returns it. */
export interface GroupCall<P extends RtcPort = RtcPort> {
  readonly actor: GroupCallActor;
  /** The status now and on every change (hot; a subscriber gets the current value first). Completes on `stop()`. */
  readonly status$: Observable<GroupStatus>;
  /** Tracks, data channels, messages, states and errors of every pair, tagged with the member. Hot; completes on `stop()`. */
  readonly events$: Observable<GroupAppEvent>;
  status(): GroupStatus;
  /** Joins the room's call (idle, left or full; otherwise nothing happens). */
  join(): void;
  /** Leaves the call: every member hears `group-leave`, every pair is closed. */
  leave(): void;
  /** Leaves, stops the actor and its peers, completes both streams. Idempotent. */
  stop(): void;
  /**
   * Sends on the channel `label` of every member in the call (queued while a channel connects).
   * Members without such a channel, or whose channel closed, are skipped.
   */
  send(label: string, data: string | ArrayBuffer): void;
  /** Asks the pair with `member` for an ICE restart (the others are not touched). */
  restartIce(member: string): void;
  /**
   * Sends a local track to every member: added now to every pair's connection (webrtc-pc §5.1
   * addTrack; each pair renegotiates on its own) and to the connection of every pair made later,
   * right after `createRtc`. Connections that closed meanwhile are skipped.
   */
  addTrack(track: MediaTrackHandle, ...streams: MediaStreamHandle[]): void;
  /**
   * Sends `next` instead of `current` (added with `addTrack`) to every member, without
   * negotiation (webrtc-pc §5.2 replaceTrack, same kind), e.g. the screen instead of the camera;
   * pairs made later get `next`. Resolves when every connection sends it; rejects with the first
   * error of a connection that is still open.
   */
  replaceTrack(current: MediaTrackHandle, next: MediaTrackHandle): Promise<void>;
  /**
   * The RTC port of each member's pair, as `createRtc` made it: e.g. its `pc` with
   * `@parley/browser`, to read stats or mute a sender.
   */
  rtcPorts(): ReadonlyMap<string, P>;
}

/** The group's state as the app sees it, from the machine's state value. */
export function groupStateOf(value: StateValue): GroupState {
  if (value === 'idle' || value === 'left' || value === 'full') return value;
  if (typeof value === 'object' && 'inCall' in value) return value['inCall'] === 'joined' ? 'joined' : 'joining';
  throw new Error(`group machine: unexpected state ${JSON.stringify(value)}`);
}

function statusOf(snapshot: ReturnType<GroupCallActor['getSnapshot']>): GroupStatus {
  const members = new Map<string, GroupMemberStatus>();
  for (const [member, pair] of snapshot.context.pairs) {
    members.set(member, { connection: connectionStatusOf(pair.peer), session: pair.session, running: pair.peer.getSnapshot().status === 'active' });
  }
  return { state: groupStateOf(snapshot.value), members, error: snapshot.context.error };
}

function sameStatus(a: GroupStatus, b: GroupStatus): boolean {
  if (a.state !== b.state || a.error !== b.error || a.members.size !== b.members.size) return false;
  for (const [member, x] of a.members) {
    const y = b.members.get(member);
    if (y === undefined || x.session !== y.session || x.running !== y.running || !sameConnection(x.connection, y.connection)) return false;
  }
  return true;
}

/** `operation`, or nothing once `peer` has ended (its port's pending promises never settle then). */
function untilPeerEnds(peer: PeerActor | undefined, operation: Promise<void>): Promise<void> {
  if (peer === undefined || peer.getSnapshot().status !== 'active') return Promise.resolve();
  let subscription: ActorSubscription | undefined;
  const ended = new Promise<void>((resolve) => {
    subscription = peer.subscribe({ complete: () => resolve(), error: () => resolve() });
  });
  return Promise.race([operation, ended]).finally(() => subscription?.unsubscribe());
}

/**
 * Creates and starts the room's group call (idle until `join()`): a mesh of peer machines, one
 * per other member in the call (docs/architecture.md, "Group calls"). Create it before the
 * room's members can join: their `group-join` is not replayed (the pipes are hot).
 */
export function createGroupCall<P extends RtcPort = RtcPort>(options: CreateGroupCallOptions<P>): GroupCall<P> {
  const { signaling, createRtc, maxMembers, dataChannels, iceServers$, peer, delays, inspect, clock, createMembershipId } = options;
  const { joinAnswerTimeout, ...peerDelays } = delays ?? {};
  const machine = groupMachine.provide({
    actors: { peer: peerMachineWithDelays(Object.keys(peerDelays).length > 0 ? peerDelays : undefined) },
    delays: joinAnswerTimeout !== undefined ? { joinAnswerTimeout } : {},
  });
  const status = new BehaviorSubject<GroupStatus>({ state: 'idle', members: new Map(), error: null });
  const events = new Subject<GroupAppEvent>();
  /** What we listen to on each pair's peer, until it ends or the call stops. */
  const watching = new Map<PeerActor, { readonly snapshots: ActorSubscription; readonly events: Subscription }>();
  let stopped = false;
  let latestIceServers: readonly IceServer[] | undefined;
  const ports = new Map<string, P>();
  /** The tracks given to `addTrack` (as replaced since), for every pair's connection. */
  let tracks: readonly { readonly track: MediaTrackHandle; readonly streams: readonly MediaStreamHandle[] }[] = [];
  /** What each pair's connection sends of those tracks (a replacement counts from its start). */
  const sentOn = new WeakMap<RtcPort, readonly MediaTrackHandle[]>();
  /** The replacement in progress, if any: the next one waits for it. */
  let replacing: Promise<void> = Promise.resolve();

  const unwatch = (peer: PeerActor): void => {
    const watched = watching.get(peer);
    watched?.snapshots.unsubscribe();
    watched?.events.unsubscribe();
    watching.delete(peer);
  };
  /** Listens to a pair's peer from its creation, before it starts (nothing it reports is missed). */
  const watch = (peer: PeerActor, member: string, port: RtcPort): void => {
    watching.set(peer, {
      snapshots: peer.subscribe({ next: () => update(), complete: () => (unwatch(peer), update()), error: () => (unwatch(peer), update()) }),
      events: forwardPeerEvents(peer, port, (event) => {
        if (!stopped) events.next({ ...event, member });
        // The port's state reports change the status without a peer snapshot.
        if (isPortReport(event)) update();
      }),
    });
  };
  const onInspection = (event: InspectionEvent): void => {
    if (event.type === '@xstate.actor') {
      const id = (event.actorRef as { readonly id?: string }).id;
      const member = id === undefined ? null : memberOfPairActorId(id);
      // Only the group's pair actors have ids of that form (the root is `group`).
      // createRtc made the pair's port just before its peer.
      const port = member === null ? undefined : ports.get(member);
      if (member !== null && port !== undefined) watch(event.actorRef as PeerActor, member, port);
    }
    if (typeof inspect === 'function') inspect(event);
    else inspect?.next?.(event);
  };
  const refusedIceServers = (member: string) => (error: Error): void => {
    if (!stopped) events.next({ type: 'error', operation: 'setConfiguration', error, member });
  };

  const actor = createActor(machine, {
    input: {
      signaling,
      createRtc: (member) => {
        const port = createRtc(member);
        ports.set(member, port);
        for (const { track, streams } of tracks) port.addTrack(track, ...streams);
        sentOn.set(port, tracks.map(({ track }) => track));
        if (latestIceServers !== undefined) setIceServers(port, latestIceServers, refusedIceServers(member));
        return port;
      },
      ...(maxMembers !== undefined ? { maxMembers } : {}),
      peer: { ...peer, ...(dataChannels !== undefined ? { dataChannels } : {}) },
      ...(createMembershipId !== undefined ? { createMembershipId } : {}),
    },
    inspect: onInspection,
    ...(clock ? { clock } : {}),
  });

  /** The port of each pair in the call now (ports of closed pairs are forgotten). */
  const rtcPorts = (): ReadonlyMap<string, P> => {
    const pairs = actor.getSnapshot().context.pairs;
    for (const member of ports.keys()) if (!pairs.has(member)) ports.delete(member);
    const current = new Map<string, P>();
    for (const [member, pair] of pairs) {
      const port = ports.get(member);
      if (port !== undefined && pair.peer.getSnapshot().context.rtc === port) current.set(member, port);
    }
    return current;
  };
  const iceServersApplied = iceServers$?.subscribe({
    next: (iceServers) => {
      latestIceServers = iceServers;
      for (const [member, port] of rtcPorts()) setIceServers(port, iceServers, refusedIceServers(member));
    },
    error: (error: unknown) => {
      if (!stopped) events.next({ type: 'error', operation: 'setConfiguration', error: error instanceof Error ? error : new Error(String(error)), member: '' });
    },
  });

  function update(): void {
    if (stopped) return;
    const next = statusOf(actor.getSnapshot());
    if (!sameStatus(status.value, next)) status.next(next);
  }
  actor.subscribe({ next: update, error: () => undefined });
  actor.start();
  update();

  const send = (event: Parameters<GroupCallActor['send']>[0]): void => {
    if (!stopped) actor.send(event);
  };

  return {
    actor,
    status$: status.asObservable(),
    events$: events.asObservable(),
    status: () => status.value,
    join: () => send({ type: 'JOIN' }),
    leave: () => send({ type: 'LEAVE' }),
    restartIce: (member) => send({ type: 'RESTART_ICE', member }),
    send(label, data) {
      for (const pair of actor.getSnapshot().context.pairs.values()) {
        if (pair.peer.getSnapshot().status !== 'active') continue;
        for (const channel of pair.peer.getSnapshot().context.channels) {
          const handle = dataChannelOf(channel);
          if (handle.label !== label || handle.readyState === 'closing' || handle.readyState === 'closed') continue;
          handle.send(data);
        }
      }
    },
    addTrack(track, ...streams) {
      tracks = [...tracks, { track, streams }];
      for (const port of rtcPorts().values()) {
        if (port.connectionState === 'closed') continue;
        port.addTrack(track, ...streams);
        sentOn.set(port, [...(sentOn.get(port) ?? []), track]);
      }
    },
    replaceTrack(current, next) {
      // Pairs made from now on get `next` at once; those that send `current` get it in turn.
      tracks = tracks.map((entry) => (entry.track === current ? { ...entry, track: next } : entry));
      const run = async (): Promise<void> => {
        const pairs = actor.getSnapshot().context.pairs;
        const targets = [...rtcPorts()].filter(([, port]) => port.connectionState !== 'closed' && sentOn.get(port)?.includes(current));
        for (const [, port] of targets) sentOn.set(port, (sentOn.get(port) ?? []).map((track) => (track === current ? next : track)));
        // A pair closed meanwhile never settles its port's promise (the RtcPort contract): its end settles it.
        const outcomes = await Promise.allSettled(targets.map(([member, port]) => untilPeerEnds(pairs.get(member)?.peer, port.replaceTrack(current, next))));
        const failed = outcomes.find((outcome, index) => outcome.status === 'rejected' && targets[index]?.[1].connectionState !== 'closed');
        if (failed?.status === 'rejected') throw failed.reason;
      };
      // One replacement at a time: a sender shows its new track only once replaceTrack is done
      // (webrtc-pc §5.2), so the next one must find it there.
      const replaced = replacing.then(run, run);
      replacing = replaced.catch(() => undefined);
      return replaced;
    },
    rtcPorts,
    stop() {
      if (stopped) return;
      if (actor.getSnapshot().status === 'active') actor.send({ type: 'LEAVE' });
      stopped = true;
      for (const peer of [...watching.keys()]) unwatch(peer);
      iceServersApplied?.unsubscribe();
      actor.stop();
      ports.clear();
      status.complete();
      events.complete();
    },
  };
}
