import { BehaviorSubject, Subject } from 'rxjs';
import type { Observable, Subscription } from 'rxjs';
import { createActor } from 'xstate';
import type { ActorOptions, InspectionEvent, Observer, StateValue, Subscription as ActorSubscription } from 'xstate';
import type { DataChannelInit, IceConnectionState, IceGatheringState, IceServer, PeerConnectionState, RtcPort, SignalingState } from './ports/rtc.js';
import type { InviteMedia } from './protocol/peer-message.js';
import { callMachine } from './machines/call.machine.js';
import type { CallEnd, CallInput, CallPeerOptions, CallRole } from './machines/call.machine.js';
import { isPortReport } from './machines/peer.machine.js';
import type { PeerActor } from './machines/peer.machine.js';
import { dataChannelOf } from './data-channel.js';
import type { DataChannel } from './data-channel.js';
import { createDataChannelOn, forwardPeerEvents, peerMachineWithDelays, setIceServers } from './create-peer.js';
import type { LivePeerOptions, PeerAppEvent, PeerDelays } from './create-peer.js';

// An app's handle on one call line to one remote peer: the call machine started, its state and
// the state of the peer connection it runs flattened into one stream for a UI, and what the
// current peer reports, across calls, on another.

/** The running `callMachine` actor behind a `Call` (for inspection and snapshots). */
export type CallActor = ReturnType<typeof createActor<typeof callMachine>>;

/** The call machine's named delays, in milliseconds. */
export interface CallDelays {
  /** An outgoing invite unanswered this long is cancelled (`no-answer`). */
  readonly ringTimeout: number;
  /** An incoming invite unanswered this long is rejected as unavailable (`missed`). */
  readonly incomingTimeout: number;
}

/** Options of `createCall`: the `callMachine` input plus the delays to use. */
export interface CreateCallOptions extends CallInput {
  /**
   * Options of each call's peer; `iceServers$` (fresh TURN credentials) is applied to the RTC
   * port of the call in progress, and the latest list to each new port right after `createRtc`.
   */
  readonly peer?: CallPeerOptions & LivePeerOptions;
  /**
   * The call's delays and those of the peer it runs (the caller's from its invite, the callee's
   * from accept, or from the ring with `prepareWhileRinging`).
   */
  readonly delays?: Partial<CallDelays & PeerDelays>;
  /** Passed to xstate's createActor: the Stately inspector sees the call, its peer and every child. */
  readonly inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /** A clock for the machines' delays (xstate `SimulatedClock` in tests). */
  readonly clock?: ActorOptions<typeof callMachine>['clock'];
}

/** The call's states as an app sees them (`callStateOf` maps the machine's nested value). */
export type CallState = 'idle' | 'prepared' | 'outgoing' | 'incoming' | 'active' | 'ended';

/** The peer connection's states, as the peer machine last saw them. */
export interface CallConnectionStatus {
  readonly signalingState: SignalingState;
  readonly iceGatheringState: IceGatheringState;
  readonly iceConnectionState: IceConnectionState;
  readonly connectionState: PeerConnectionState;
}

/** Everything a call UI shows, in one value. */
export interface CallStatus {
  readonly state: CallState;
  readonly role: CallRole | null;
  /** The current (or last) call's session id. */
  readonly session: string | null;
  /** The media the caller asked for. */
  readonly media: InviteMedia | null;
  /** While `active`: the peer connection's states; `null` in every other state. */
  readonly connection: CallConnectionStatus | null;
  /** In `ended`: why; `null` in every other state. */
  readonly end: CallEnd | null;
}

/** What the current call's peer reports (see `PeerAppEvent`), with the call it belongs to. */
export type CallAppEvent = PeerAppEvent & { readonly session: string };

/**
 * A call line to one remote peer, as `createCall` returns it: one status for the UI, the events of
 * each call's peer, and the user's commands (call, accept, reject, hang up, ...).
 */
export interface Call {
  readonly actor: CallActor;
  /** The status now and on every change (hot; a subscriber gets the current value first). */
  readonly status$: Observable<CallStatus>;
  /**
   * Tracks, data channels, messages, state changes, errors and notices of each call's peer, as
   * they happen (hot: subscribe before the call becomes active; with `prepareWhileRinging` the
   * callee's peer reports from the ring on). Completes on `stop()`.
   */
  readonly events$: Observable<CallAppEvent>;
  status(): CallStatus;
  /** The peer of the active call, if any. */
  peer(): PeerActor | undefined;
  /**
   * Rings the remote peer (`idle`, `prepared` or `ended` only; otherwise nothing happens). From
   * `prepared` the invite leaves with the prepared offer and candidates right behind it.
   */
  call(media?: InviteMedia): void;
  /**
   * Prepares the next call as its caller (`idle` or `ended` only): `createRtc` runs now, the
   * offer is made and set and candidates are gathered, and nothing is sent until `call()`, which
   * then has no engine step left before the offer leaves. The connection's ICE agent binds its
   * sockets and asks its STUN and TURN servers for addresses (a TURN allocation is held, and
   * refreshed, until the call), but no packet goes to the remote peer. An incoming invite closes
   * the prepared connection and rings as usual; `cancel()` closes it (back to `idle`).
   */
  prepare(): void;
  /** Takes the ringing incoming call. */
  accept(): void;
  /** Declines the ringing incoming call (`busy` tells the caller so). */
  reject(reason?: 'declined' | 'busy'): void;
  /** Withdraws our ringing invite, or closes a prepared call that was never made. */
  cancel(): void;
  /** Ends the active call. */
  hangup(): void;
  /** Tells the call that the remote peer left the room for good (e.g. from `peerLeft$`). */
  remoteLeft(): void;
  /** Opens a data channel on the active call; it also arrives on events$ as `datachannel`.
   * Throws an InvalidStateError when no call is active, or what the RTC port throws. */
  createDataChannel(label: string, init?: DataChannelInit): DataChannel;
  /** Asks the active call's peer for an ICE restart. */
  restartIce(): void;
  /**
   * Ends whatever is in progress as the user would (withdraws a ringing invite, declines a
   * ringing call, hangs up an active one), then stops the actor and completes both streams.
   * Idempotent.
   */
  stop(): void;
}

/** The call's state as the app sees it, from the machine's state value (`peerRunning` is a detail). */
export function callStateOf(value: StateValue): CallState {
  const leaf = typeof value === 'object' && 'peerRunning' in value ? value['peerRunning'] : value;
  if (leaf === 'idle' || leaf === 'prepared' || leaf === 'outgoing' || leaf === 'incoming' || leaf === 'active' || leaf === 'ended') return leaf;
  throw new Error(`call machine: unexpected state ${JSON.stringify(value)}`);
}

/**
 * The peer connection's four states (also the group's members): the connection state as the
 * peer machine last saw it, the others (`PortReport`) as its port has them now.
 */
export function connectionStatusOf(peer: PeerActor): CallConnectionStatus {
  const { rtc, connectionState } = peer.getSnapshot().context;
  return { signalingState: rtc.signalingState, iceGatheringState: rtc.iceGatheringState, iceConnectionState: rtc.iceConnectionState, connectionState };
}

function statusOf(call: ReturnType<CallActor['getSnapshot']> | undefined, peer: PeerActor | undefined): CallStatus {
  if (call === undefined) return { state: 'idle', role: null, session: null, media: null, connection: null, end: null };
  const state = callStateOf(call.value);
  const context = call.context;
  return {
    state,
    role: context.role,
    session: context.session,
    media: context.media,
    connection: state === 'active' && peer !== undefined ? connectionStatusOf(peer) : null,
    end: state === 'ended' ? context.end : null,
  };
}

/** Whether two connection statuses are the same (null only equals null). */
export function sameConnection(a: CallConnectionStatus | null, b: CallConnectionStatus | null): boolean {
  if (a === null || b === null) return a === b;
  return (
    a.signalingState === b.signalingState &&
    a.iceGatheringState === b.iceGatheringState &&
    a.iceConnectionState === b.iceConnectionState &&
    a.connectionState === b.connectionState
  );
}

function sameStatus(a: CallStatus, b: CallStatus): boolean {
  return (
    a.state === b.state &&
    a.role === b.role &&
    a.session === b.session &&
    a.media === b.media &&
    a.end?.reason === b.end?.reason &&
    a.end?.endedBy === b.end?.endedBy &&
    sameConnection(a.connection, b.connection)
  );
}

function invalidState(message: string): Error {
  return Object.assign(new Error(message), { name: 'InvalidStateError' });
}

/**
 * Creates and starts a call line to one remote peer over `signaling` (docs/architecture.md, "Machines":
 * the call machine). Create it before the remote can ring: an invite that arrives before the
 * line exists is not replayed (the signaling port is hot).
 */
export function createCall(options: CreateCallOptions): Call {
  const { delays, inspect, clock, peer: peerOptions, ...callInput } = options;
  const { iceServers$, ...peer } = peerOptions ?? {};
  const { ringTimeout, incomingTimeout, ...peerDelays } = delays ?? {};
  const callDelays = {
    ...(ringTimeout !== undefined ? { ringTimeout } : {}),
    ...(incomingTimeout !== undefined ? { incomingTimeout } : {}),
  };
  const machine = callMachine.provide({
    actors: { peer: peerMachineWithDelays(Object.keys(peerDelays).length > 0 ? peerDelays : undefined) },
    delays: callDelays,
  });
  const status = new BehaviorSubject<CallStatus>(statusOf(undefined, undefined));
  const events = new Subject<CallAppEvent>();
  let watching: { readonly snapshots: ActorSubscription; readonly events: Subscription } | undefined;
  let stopped = false;

  const unwatch = (): void => {
    watching?.snapshots.unsubscribe();
    watching?.events.unsubscribe();
    watching = undefined;
  };
  /**
   * Listens to a call's peer from the moment it is created, before it starts: what it reports
   * while starting (a data channel it opens at once, its first state changes) is not missed.
   */
  const watch = (peer: PeerActor, port: RtcPort): void => {
    unwatch();
    watching = {
      snapshots: peer.subscribe({ next: () => update(), error: () => undefined }),
      events: forwardPeerEvents(peer, port, (event) => {
        events.next({ ...event, session: peer.getSnapshot().context.session });
        // The port's state reports change the status without a peer snapshot.
        if (isPortReport(event)) update();
      }),
    };
  };
  /**
   * The peer's actor is created right after `createRtc` (its input), before it starts: an
   * inspection observer is registered there, sees the actor created, watches it and leaves.
   * xstate builds an inspection event for every event, action, microstep and snapshot of every
   * actor in the system while any observer is registered, so none stays registered for this.
   */
  let findingPeer: ActorSubscription | undefined;
  const watchNextPeer = (): void => {
    findingPeer ??= actor.system.inspect((event) => {
      // Only the call's own child is invoked with the id `peer` (the root is the call).
      if (event.type !== '@xstate.actor' || (event.actorRef as { readonly id?: string }).id !== 'peer') return;
      findingPeer?.unsubscribe();
      findingPeer = undefined;
      // The port createRtc just made is this peer's.
      if (rtc !== undefined) watch(event.actorRef as PeerActor, rtc);
    });
  };
  // The port of the call in progress and the latest ICE servers, for `iceServers$`.
  let rtc: RtcPort | undefined;
  let latestIceServers: readonly IceServer[] | undefined;
  const refusedIceServers = (error: Error): void => {
    events.next({ type: 'error', operation: 'setConfiguration', error, session: actor.getSnapshot().context.session ?? '' });
  };
  const input: CallInput = {
    ...callInput,
    peer,
    createRtc: () => {
      rtc = callInput.createRtc();
      if (latestIceServers !== undefined) setIceServers(rtc, latestIceServers, refusedIceServers);
      watchNextPeer();
      return rtc;
    },
  };
  const actor = createActor(machine, { input, ...(inspect ? { inspect } : {}), ...(clock ? { clock } : {}) });
  const iceServersApplied = iceServers$?.subscribe({
    next: (iceServers) => {
      latestIceServers = iceServers;
      setIceServers(rtc, iceServers, refusedIceServers);
    },
    error: (error: unknown) => refusedIceServers(error instanceof Error ? error : new Error(String(error))),
  });

  const currentPeer = (): PeerActor | undefined => {
    const snapshot = actor.getSnapshot();
    return snapshot.matches({ peerRunning: 'active' }) ? snapshot.children.peer : undefined;
  };
  function update(): void {
    if (stopped) return;
    const next = statusOf(actor.getSnapshot(), currentPeer());
    if (!sameStatus(status.value, next)) status.next(next);
  }

  actor.subscribe({ next: update, error: () => undefined });
  actor.start();
  update();

  const send = (event: Parameters<CallActor['send']>[0]): void => {
    if (!stopped) actor.send(event);
  };

  return {
    actor,
    status$: status.asObservable(), // update() publishes only changes
    events$: events.asObservable(),
    status: () => status.value,
    peer: currentPeer,
    call: (media) => send(media ? { type: 'CALL', media } : { type: 'CALL' }),
    prepare: () => send({ type: 'PREPARE' }),
    accept: () => send({ type: 'ACCEPT' }),
    reject: (reason) => send(reason ? { type: 'REJECT', reason } : { type: 'REJECT' }),
    cancel: () => send({ type: 'CANCEL' }),
    hangup: () => send({ type: 'HANGUP' }),
    remoteLeft: () => send({ type: 'REMOTE.LEFT' }),
    createDataChannel(label, init) {
      const peer = currentPeer();
      if (peer === undefined) throw invalidState(`cannot create data channel "${label}": no call is active`);
      return dataChannelOf(createDataChannelOn(peer, label, init));
    },
    restartIce: () => {
      const peer = currentPeer();
      if (peer?.getSnapshot().status === 'active') peer.send({ type: 'RESTART_ICE' });
    },
    stop() {
      if (stopped) return;
      const snapshot = actor.getSnapshot();
      if (snapshot.status === 'active') {
        const state = callStateOf(snapshot.value);
        if (state === 'outgoing' || state === 'prepared') actor.send({ type: 'CANCEL' });
        else if (state === 'incoming') actor.send({ type: 'REJECT' });
        else if (state === 'active') actor.send({ type: 'HANGUP' });
      }
      stopped = true;
      findingPeer?.unsubscribe();
      unwatch();
      iceServersApplied?.unsubscribe();
      actor.stop();
      status.complete();
      events.complete();
    },
  };
}
