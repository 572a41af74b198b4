import type { Observable } from 'rxjs';
import { Subscription } from 'rxjs';
import { createActor } from 'xstate';
import type { ActorOptions, InspectionEvent, Observer, SnapshotFrom, Subscription as ActorSubscription } from 'xstate';
import { isInvalidStateError } from './ports/rtc.js';
import type { DataChannelInit, IceServer, RtcPort } from './ports/rtc.js';
import { peerMachine } from './machines/peer.machine.js';
import { listenToPortReports } from './machines/peer.machine.js';
import type { DataChannelActor, PeerActor, PeerEmitted, PortReport } from './machines/peer.machine.js';
import { dataChannelOf, withDataChannelHandle } from './data-channel.js';
import type { DataChannel, WithDataChannelHandle } from './data-channel.js';
import type { PeerInput } from './machines/peer.types.js';
import { BufferUntilSubscribed, snapshots$ } from './rx.js';

/** The named delays of the peer's machines, in milliseconds. */
export interface PeerDelays {
  /** `disconnected` for longer than this starts ICE recovery (connection machine). */
  readonly disconnectedGrace: number;
  /** Wait after each ICE restart before trying again (connection machine). */
  readonly iceRestartBackoff: number;
  /** From `connecting` to `connected` at most this long, else recovery (connection machine). */
  readonly connectTimeout: number;
  /** Non-trickle only: how long to wait for gathering before sending (negotiation machine). */
  readonly gatheringTimeout: number;
  /** With `awaitRemoteOffer`: how long our first offer waits for the remote's (negotiation machine). */
  readonly firstOfferTimeout: number;
}

/** Options of a running peer that the app may feed while it runs. */
export interface LivePeerOptions {
  /**
   * Fresh ICE servers for the running connection, e.g. a signaling client's `iceServers$`
   * (TURN credentials refreshed before they expire). Each list, the current one on subscription
   * included, is applied with `rtc.setConfiguration` (ICE servers only, see RtcConfiguration):
   * the allocation in use is kept, and when the connection fails the recovery's ICE restart
   * gathers with these credentials.
   */
  readonly iceServers$?: Observable<readonly IceServer[]>;
}

/**
 * Options of `createPeer`: the `peerMachine` input (ports, politeness, data channels, candidate
 * filter), live options, delays and an optional xstate inspector.
 */
export interface CreatePeerOptions extends PeerInput, LivePeerOptions {
  readonly delays?: Partial<PeerDelays>;
  /** Passed to xstate's createActor: the Stately inspector sees the peer and every child. */
  readonly inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /** A clock for the machines' delays (xstate `SimulatedClock` in tests). */
  readonly clock?: ActorOptions<typeof peerMachine>['clock'];
}

/**
 * Everything a peer reports, plus data-channel messages and refused ICE server lists. A
 * `datachannel` event carries the channel's handle (`DataChannel`; its machine at
 * `channel.actor`), not the actor the peer emits.
 */
export type PeerAppEvent =
  | Exclude<PeerEmitted, { readonly type: 'datachannel' }>
  | PortReport
  | WithDataChannelHandle<Extract<PeerEmitted, { readonly type: 'datachannel' }>>
  | { readonly type: 'message'; readonly label: string; readonly data: string | ArrayBuffer; readonly channel: DataChannel }
  /** The RTC port refused a list from `iceServers$` (e.g. a TURN URL without credentials); the old list stays. */
  | { readonly type: 'error'; readonly operation: 'setConfiguration'; readonly error: Error };

/**
 * One running peer connection, as `createPeer` returns it: its events and state as streams, and
 * the commands an app gives it (data channels, ICE restart, close).
 */
export interface Peer {
  /** The started peer actor (send it CREATE_DATA_CHANNEL, RESTART_ICE, CLOSE; read snapshots). */
  readonly actor: PeerActor;
  readonly state$: Observable<SnapshotFrom<typeof peerMachine>>;
  /** Tracks, data channels, messages, state changes, errors and notices. Events raised before
   * the first subscriber are held for it. */
  readonly events$: Observable<PeerAppEvent>;
  /** Creates a data channel now; it also arrives on events$ as `datachannel` (origin local).
   * Throws what the RTC port throws (e.g. OperationError for a negotiated id in use), or an
   * InvalidStateError once the peer has ended. */
  createDataChannel(label: string, init?: DataChannelInit): DataChannel;
  /** Asks for an ICE restart (the impolite side offers one). Does nothing once the peer has ended. */
  restartIce(): void;
  /** Closes the peer and its port; the peer ends with reason `closed`. Idempotent. */
  close(): void;
}

/**
 * Passes on everything a peer actor emits, the reports (`PortReport`) of its port `rtc` (the
 * port in its input) while it runs, and every message of each of its data channels as a
 * `message` event, in the order they happen. Unsubscribe to stop.
 */
export function forwardPeerEvents(actor: PeerActor, rtc: RtcPort, next: (event: PeerAppEvent) => void): Subscription {
  const subscriptions = new Subscription();
  listenToPortReports(rtc, (report) => {
    if (!subscriptions.closed) next(report);
  });
  subscriptions.add(
    actor.on('*', (event) => {
      if (event.type !== 'datachannel') return next(event);
      // The app gets the channel's handle; the peer machine emits its actor.
      const opened = withDataChannelHandle(event);
      next(opened);
      const channel = opened.channel;
      subscriptions.add(channel.message$.subscribe((data) => next({ type: 'message', label: event.label, data, channel })));
    }),
  );
  return subscriptions;
}

/**
 * Creates a data channel on a running peer actor, synchronously, and returns its actor. Throws
 * what the RTC port throws (as the peer's `error` for `createDataChannel`), or an
 * InvalidStateError when the peer has ended.
 */
export function createDataChannelOn(actor: PeerActor, label: string, init?: DataChannelInit): DataChannelActor {
  if (actor.getSnapshot().status !== 'active') {
    throw Object.assign(new Error(`cannot create data channel "${label}": the peer is closed or has failed`), { name: 'InvalidStateError' });
  }
  const before = actor.getSnapshot().context.channels.length;
  let refused: Error | undefined;
  const listening = actor.on('error', (event) => {
    if (event.operation === 'createDataChannel') refused = event.error;
  });
  actor.send({ type: 'CREATE_DATA_CHANNEL', label, ...(init ? { init } : {}) });
  listening.unsubscribe();
  if (refused) throw refused;
  const channels = actor.getSnapshot().context.channels;
  const created = channels[channels.length - 1];
  if (channels.length === before || !created) throw new Error(`data channel "${label}" was not created`);
  return created;
}

/**
 * Applies one list of `iceServers$` to a running peer's port (webrtc-pc §4.4.1.6
 * setConfiguration, ICE servers only). A port that is closed, or none yet, is skipped; a list
 * the port refuses goes to `refused`.
 */
export function setIceServers(port: RtcPort | undefined, iceServers: readonly IceServer[], refused: (error: Error) => void): void {
  if (port === undefined || port.connectionState === 'closed') return;
  try {
    port.setConfiguration({ iceServers });
  } catch (error) {
    // Closed meanwhile (the adapter's own check): nothing to configure any more.
    if (!isInvalidStateError(error)) refused(error instanceof Error ? error : new Error(String(error)));
  }
}

/**
 * The peer machine with its named delays replaced. `createPeer` takes `delays` directly; a call
 * runs its peer as a child, so give the call machine this one:
 * `callMachine.provide({ actors: { peer: peerMachineWithDelays({ connectTimeout: 5000 }) } })`.
 */
export function peerMachineWithDelays(delays: Partial<PeerDelays> | undefined): typeof peerMachine {
  return delays ? peerMachine.provide({ delays }) : peerMachine;
}

/**
 * Creates and starts a peer: one RTC port, one signaling pipe, perfect negotiation, trickle ICE
 * and the connection recovery policy. The peer owns the port: `close()` closes it.
 */
export function createPeer(options: CreatePeerOptions): Peer {
  const { delays, inspect, clock, iceServers$, ...input } = options;
  const actor = createActor(peerMachineWithDelays(delays), {
    input,
    ...(inspect ? { inspect } : {}),
    ...(clock ? { clock } : {}),
  });

  const events = new BufferUntilSubscribed<PeerAppEvent>();
  const subscriptions = forwardPeerEvents(actor, input.rtc, (event) => events.next(event));
  if (iceServers$ !== undefined) {
    const refused = (error: Error): void => events.next({ type: 'error', operation: 'setConfiguration', error });
    subscriptions.add(
      iceServers$.subscribe({
        next: (iceServers) => setIceServers(input.rtc, iceServers, refused),
        error: (error: unknown) => refused(error instanceof Error ? error : new Error(String(error))),
      }),
    );
  }
  const finish = (): void => {
    subscriptions.unsubscribe();
    events.complete();
  };
  const done = actor.subscribe({ complete: finish, error: finish });
  actor.start();
  return new RunningPeer(actor, events.observable, done, finish);
}

/**
 * The `Peer` that `createPeer` returns. Its commands are methods and `state$` is made on first
 * read, so an idle peer holds no closure or observable per command (issue 14, memory).
 */
class RunningPeer implements Peer {
  private state: Observable<SnapshotFrom<typeof peerMachine>> | null = null;

  /**
   * @param done the subscription that calls `finish` when the actor ends
   * @param finish stops forwarding events and completes `events$`
   */
  constructor(
    readonly actor: PeerActor,
    readonly events$: Observable<PeerAppEvent>,
    private readonly done: ActorSubscription,
    private readonly finish: () => void,
  ) {}

  get state$(): Observable<SnapshotFrom<typeof peerMachine>> {
    return (this.state ??= snapshots$(this.actor));
  }

  createDataChannel(label: string, init?: DataChannelInit): DataChannel {
    return dataChannelOf(createDataChannelOn(this.actor, label, init));
  }

  restartIce(): void {
    // A stopped actor would only log that the event was dropped.
    if (this.actor.getSnapshot().status === 'active') this.actor.send({ type: 'RESTART_ICE' });
  }

  close(): void {
    if (this.actor.getSnapshot().status === 'active') this.actor.send({ type: 'CLOSE' });
    this.done.unsubscribe();
    this.finish();
  }
}
