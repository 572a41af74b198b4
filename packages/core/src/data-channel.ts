import { Observable, distinctUntilChanged } from 'rxjs';
import type { ActorRefFrom, SnapshotFrom } from 'xstate';
import type { DataChannelPayload, DataChannelState } from './ports/rtc.js';
import { channelMessagesOf } from './machines/data-channel.machine.js';
import type { dataChannelMachine, UnsentPayload } from './machines/data-channel.machine.js';

// A data channel as an app calls it: the shape of an RTCDataChannel (webrtc-pc §6.2) over the
// data channel machine, which keeps its send queue and backpressure. Streams instead of `on*`
// handlers; the actor stays at `.actor` for those who want the machine.

type DataChannelMachineActor = ActorRefFrom<typeof dataChannelMachine>;
type DataChannelSnapshot = SnapshotFrom<typeof dataChannelMachine>;

/**
 * Thrown by `DataChannel.send` once the channel is closing or closed (webrtc-pc §6.2 send():
 * InvalidStateError). Nothing was queued; `data` is what was not sent.
 */
export class DataChannelClosedError extends Error {
  override readonly name = 'InvalidStateError';

  constructor(
    /** The channel's label. */
    readonly label: string,
    /** Its readyState when the send was refused. */
    readonly readyState: 'closing' | 'closed',
    /** The payload that was not sent. */
    readonly data: DataChannelPayload,
  ) {
    super(`data channel "${label}" is ${readyState}: nothing can be sent on it`);
  }
}

/** Whether the machine is open with nothing held back: what it would send, it sends at once. */
function isFlowing(snapshot: DataChannelSnapshot): boolean {
  const value = snapshot.value;
  return typeof value === 'object' && value.open === 'flowing';
}

/** The channel's readyState as the machine's snapshot says (an ended actor's channel is closed). */
function readyStateOf(snapshot: DataChannelSnapshot): DataChannelState {
  if (snapshot.status !== 'active') return 'closed';
  const value = snapshot.value;
  if (typeof value !== 'string') return 'open'; // { open: 'flowing' | 'backpressured' }
  return value === 'wrapping' ? 'connecting' : value;
}

/** Emitted events of one type as a stream that completes when the actor ends. */
function emittedUntilEnded<T>(actor: DataChannelMachineActor, subscribeTo: (next: (value: T) => void) => { unsubscribe(): void }): Observable<T> {
  return new Observable<T>((subscriber) => {
    const listening = subscribeTo((value) => subscriber.next(value));
    const ending = actor.subscribe({ complete: () => subscriber.complete(), error: () => subscriber.complete() });
    return () => {
      listening.unsubscribe();
      ending.unsubscribe();
    };
  });
}

/**
 * One data channel, called as an RTCDataChannel is: `send(data)`, `close()`, `label`,
 * `readyState`, `bufferedAmount`, and streams for messages and state. Unlike
 * RTCDataChannel.send, `send` never throws for a full buffer and may be called while the
 * channel is still connecting: the machine queues what does not fit under its high-water mark
 * and sends it, in order, as the channel drains (`bufferedamountlow`). Get one from a peer's
 * `datachannel` event or `createDataChannel`; `dataChannelOf(actor)` wraps an actor you hold.
 */
export class DataChannel {
  /** Incoming messages: text as string, binary as ArrayBuffer. Completes when the channel ends. */
  readonly message$: Observable<string | ArrayBuffer>;
  /** readyState now and on every change (`connecting`, `open`, `closing`, `closed`); completes after `closed`. */
  readonly state$: Observable<DataChannelState>;
  /**
   * The channel drained to `bufferedAmountLowThreshold` and whatever was queued went on (the
   * machine's view of `bufferedamountlow`): a sender pacing itself on `bufferedAmount` resumes
   * here. Pace on a mark above the threshold, or this never comes.
   */
  readonly bufferedAmountLow$: Observable<void>;
  /** Errors the channel reports, and what `send` threw inside the engine (the payload stays queued). */
  readonly error$: Observable<Error>;
  /** Payloads that were queued and never sent because the channel closed. */
  readonly unsent$: Observable<UnsentPayload>;

  constructor(
    /** The data channel machine's actor, for those who want the machine itself. */
    readonly actor: DataChannelMachineActor,
  ) {
    // Messages come from the actor that hears the channel for the machine, not from the machine.
    this.message$ = emittedUntilEnded(actor, (next) => channelMessagesOf(actor)?.on('message', (event) => next(event.data)) ?? { unsubscribe: () => undefined });
    this.bufferedAmountLow$ = emittedUntilEnded(actor, (next) => actor.on('bufferedamountlow', () => next(undefined)));
    this.error$ = emittedUntilEnded(actor, (next) => actor.on('error', (event) => next(event.error)));
    this.unsent$ = emittedUntilEnded(actor, (next) => actor.on('send-failed', ({ data, bytes }) => next({ data, bytes })));
    this.state$ = new Observable<DataChannelState>((subscriber) => {
      const report = (): void => subscriber.next(this.readyState);
      const finish = (): void => {
        report();
        subscriber.complete();
      };
      report();
      const subscription = actor.subscribe({ next: report, complete: finish, error: finish });
      return () => subscription.unsubscribe();
    }).pipe(distinctUntilChanged());
  }

  /** The label it was created with (webrtc-pc §6.2). */
  get label(): string {
    return this.actor.getSnapshot().context.label;
  }

  /** The SCTP stream id, null until negotiated. */
  get id(): number | null {
    return this.actor.getSnapshot().context.channel.id;
  }

  /** Whether messages arrive in order. */
  get ordered(): boolean {
    return this.actor.getSnapshot().context.channel.ordered;
  }

  /** The subprotocol it was created with. */
  get protocol(): string {
    return this.actor.getSnapshot().context.channel.protocol;
  }

  /** `connecting`, `open`, `closing` or `closed` (webrtc-pc §6.2 RTCDataChannelState). */
  get readyState(): DataChannelState {
    return readyStateOf(this.actor.getSnapshot());
  }

  /**
   * Bytes given to `send` and not yet on the wire: the machine's queue plus the channel's own
   * bufferedAmount (webrtc-pc §6.2), read now.
   */
  get bufferedAmount(): number {
    const { queue, channel } = this.actor.getSnapshot().context;
    return queue.queuedBytes + channel.bufferedAmount;
  }

  /** When `bufferedAmountLow$` fires: the machine's low-water mark (default 128 KiB). */
  get bufferedAmountLowThreshold(): number {
    return this.actor.getSnapshot().context.lowWaterMark;
  }

  /**
   * Sends text (as UTF-8) or bytes (as given, not copied: do not change them until sent). While
   * connecting, or while the channel's buffer is full, it is queued and sent in order later.
   * Throws DataChannelClosedError once the channel is closing or closed.
   */
  send(data: DataChannelPayload): void {
    const snapshot = this.actor.getSnapshot();
    const state = readyStateOf(snapshot);
    if (state === 'closing' || state === 'closed') throw new DataChannelClosedError(snapshot.context.label, state, data);
    // What a SEND event would do, without the event (an xstate macrostep allocates about 5 KB,
    // issue 14): the payload joins the machine's queue at once, so order holds however sends
    // and events interleave. While connecting or backpressured the machine flushes the queue
    // on its own; in `flowing` the queue is handed on here by the machine's own rule, and the
    // machine hears of it (FLUSH) only when something stays queued: it then waits for
    // bufferedamountlow, reports a send error, or, closing meanwhile, reports the payload unsent.
    const { queue, channel, highWaterMark } = snapshot.context;
    queue.push(data);
    if (!isFlowing(snapshot)) return;
    queue.transmit(channel, highWaterMark);
    if (queue.length > 0) this.actor.send({ type: 'FLUSH' });
  }

  /** Closes the channel; what is still queued is reported on `unsent$`. Idempotent. */
  close(): void {
    const state = this.readyState;
    if (state === 'connecting' || state === 'open') this.actor.send({ type: 'CLOSE' });
  }
}

const handles = new WeakMap<DataChannelMachineActor, DataChannel>();

/** The handle of a data channel actor: the same one for the same actor, every time. */
export function dataChannelOf(actor: DataChannelMachineActor): DataChannel {
  let handle = handles.get(actor);
  if (handle === undefined) {
    handle = new DataChannel(actor);
    handles.set(actor, handle);
  }
  return handle;
}

/** An event that carries a data channel actor, carrying its handle instead. */
export type WithDataChannelHandle<TEvent extends { readonly channel: DataChannelMachineActor }> = Omit<TEvent, 'channel'> & {
  readonly channel: DataChannel;
};

/** Replaces the actor in `event.channel` with its handle (the actor stays at `channel.actor`). */
export function withDataChannelHandle<TEvent extends { readonly channel: DataChannelMachineActor }>(event: TEvent): WithDataChannelHandle<TEvent> {
  return { ...event, channel: dataChannelOf(event.channel) };
}
