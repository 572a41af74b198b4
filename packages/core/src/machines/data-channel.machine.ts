import { assertEvent, emit, enqueueActions, fromCallback, setup } from 'xstate';
import type { ActorRefFrom, EventObject } from 'xstate';
import type { DataChannelEvent, DataChannelPayload, DataChannelPort, DataChannelState } from '../ports/rtc.js';

// One RTCDataChannel (webrtc-pc §6.2): its lifecycle `connecting -> open -> closing -> closed`,
// and a send queue with backpressure on `bufferedAmount` so that a fast sender never piles
// megabytes into the channel's own buffer (which engines cap, and then close the channel).
//
// Memory (issue 14): a SEND while the channel keeps up is one event and one targetless
// transition; the queue changes in place (SendQueue) rather than being copied per event, the
// payload is handed to the channel as given, and nothing allocates per send but the event. The
// DataChannel handle spares even that: it adds to the queue itself and sends FLUSH only when the
// machine has to act (see data-channel.ts).
//
// A received message changes no state, so it is no machine event either: the actor that hears the
// channel for the machine (`channelEvents`) emits it to its listeners as it comes, and hands every
// other channel event to the machine. Through the machine, each message cost an event and a copy
// of the context; on a 2-core machine that was about 5 % of a transfer's throughput (apps/bench).

/** The input of `dataChannelMachine`: the data channel port and its send-queue water marks. */
export interface DataChannelMachineInput {
  readonly channel: DataChannelPort;
  /** Queue instead of sending once bufferedAmount + message would exceed this (default 256 KiB). */
  readonly highWaterMark?: number;
  /** bufferedAmountLowThreshold: refill the channel when it drains to this (default 128 KiB). */
  readonly lowWaterMark?: number;
}

/** What users send to the machine. */
export type DataChannelCommand =
  | { readonly type: 'SEND'; readonly data: DataChannelPayload }
  /**
   * Payloads were added to `context.queue` directly (the DataChannel handle does, to spare an
   * event per send): hand on what fits, or report it unsent once closing.
   */
  | { readonly type: 'FLUSH' }
  | { readonly type: 'CLOSE' };

/** The channel's own events (webrtc-pc §6.2), as the machine receives them. */
export type DataChannelSignal =
  | { readonly type: 'CHANNEL.OPEN' }
  | { readonly type: 'CHANNEL.BUFFERED_AMOUNT_LOW' }
  | { readonly type: 'CHANNEL.CLOSING' }
  | { readonly type: 'CHANNEL.CLOSE' }
  | { readonly type: 'CHANNEL.ERROR'; readonly error: Error };

/** Every event the data channel machine takes. */
export type DataChannelMachineEvent = DataChannelCommand | DataChannelSignal;

/**
 * What users observe, with `actor.on(type, handler)`. Nothing is dropped without a `send-failed`.
 * Messages are emitted by the machine's `channelEvents` child (`channelMessagesOf`).
 */
export type DataChannelEmitted =
  | { readonly type: 'open' }
  /** The channel drained to its bufferedAmountLowThreshold (webrtc-pc §6.2) and what was queued went on. */
  | { readonly type: 'bufferedamountlow' }
  | { readonly type: 'close' }
  | { readonly type: 'error'; readonly error: Error }
  | {
      readonly type: 'send-failed';
      readonly reason: 'channel-closed';
      readonly bytes: number;
      readonly data: DataChannelPayload;
    };

/** Bytes a payload occupies on the wire: UTF-8 for text (webrtc-pc §6.2 send()), byteLength for binary. */
export function payloadByteLength(data: DataChannelPayload): number {
  if (typeof data !== 'string') return data.byteLength;
  // UTF-16 code units to UTF-8 bytes without allocating: a surrogate pair is one 4-byte code
  // point; a lone surrogate becomes U+FFFD (3 bytes), as does any other unit from 0x800 up.
  let bytes = 0;
  for (let i = 0; i < data.length; i++) {
    const unit = data.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && (data.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i += 1;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * The backpressure rule: a payload goes to the channel if it fits under the high-water mark, or
 * if the channel's buffer is empty (so a single message larger than the mark is not stuck forever).
 */
export function fitsUnderHighWaterMark(bufferedAmount: number, size: number, highWaterMark: number): boolean {
  return bufferedAmount === 0 || bufferedAmount + size <= highWaterMark;
}

/**
 * The bufferedAmountLowThreshold to wait on for `headSize` to fit. It is never above the low
 * water mark (hysteresis), and low enough that `bufferedamountlow` (which fires only when the
 * buffer drains *across* the threshold, webrtc-pc §6.2) guarantees the head fits when it comes:
 * with a plain low water mark, a message larger than high - low would wait forever.
 */
export function lowThresholdFor(headSize: number, lowWaterMark: number, highWaterMark: number): number {
  return Math.max(0, Math.min(lowWaterMark, highWaterMark - headSize));
}

/** A payload the queue gave up on, with its size on the wire. */
export interface UnsentPayload {
  readonly data: DataChannelPayload;
  readonly bytes: number;
}

/**
 * The machine's send queue: payloads not yet handed to the channel, in send order, and the bytes
 * handed over so far. It belongs to the actor, as the channel does, and changes in place: an
 * immutable queue, copied by `assign` on every SEND, was O(queue) garbage per send (issue 14).
 * Read it; only the machine's actions change it.
 */
export class SendQueue {
  private payloads: (DataChannelPayload | undefined)[] = [];
  private sizes: number[] = [];
  /** Index of the head in `payloads`: taking from the front is O(1), the spent prefix is cut in bulk. */
  private head = 0;
  private waitingBytes = 0;
  private handedOver = 0;
  private lastFailure: Error | null = null;

  /** Payloads waiting. */
  get length(): number {
    return this.payloads.length - this.head;
  }

  /** Bytes waiting (UTF-8 for text). */
  get queuedBytes(): number {
    return this.waitingBytes;
  }

  /** Bytes handed to `channel.send` so far. */
  get sentBytes(): number {
    return this.handedOver;
  }

  /** What `channel.send` threw in the last transmission, which stopped there; null if it did not throw. */
  get failure(): Error | null {
    return this.lastFailure;
  }

  /** Size of the payload at the head, 0 when empty. */
  get headSize(): number {
    return this.length === 0 ? 0 : (this.sizes[this.head] ?? 0);
  }

  /** The waiting payloads, head first (a copy, for reading). */
  toArray(): DataChannelPayload[] {
    return this.payloads.slice(this.head) as DataChannelPayload[];
  }

  /** Adds a payload at the tail. */
  push(data: DataChannelPayload): void {
    const size = payloadByteLength(data);
    this.payloads.push(data);
    this.sizes.push(size);
    this.waitingBytes += size;
  }

  /**
   * Hands payloads from the head to `channel.send` while the backpressure rule lets them go. Stops
   * at the first that does not fit, or that `send` refuses: that one stays at the head and what
   * `send` threw is `failure`. Never throws.
   */
  transmit(channel: DataChannelPort, highWaterMark: number): void {
    this.lastFailure = null;
    while (this.head < this.payloads.length) {
      const size = this.sizes[this.head] ?? 0;
      if (!fitsUnderHighWaterMark(channel.bufferedAmount, size, highWaterMark)) break;
      try {
        channel.send(this.payloads[this.head] as DataChannelPayload);
      } catch (error: unknown) {
        this.lastFailure = error instanceof Error ? error : new Error(String(error));
        break;
      }
      this.payloads[this.head] = undefined; // the queue no longer holds the bytes
      this.head += 1;
      this.waitingBytes -= size;
      this.handedOver += size;
    }
    this.compact();
  }

  /** Empties the queue; returns what it held, head first. */
  takeAll(): UnsentPayload[] {
    const taken = this.toArray().map((data, i) => ({ data, bytes: this.sizes[this.head + i] ?? 0 }));
    this.payloads = [];
    this.sizes = [];
    this.head = 0;
    this.waitingBytes = 0;
    return taken;
  }

  private compact(): void {
    if (this.head === this.payloads.length) {
      this.payloads.length = 0;
      this.sizes.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.payloads.length) {
      this.payloads.splice(0, this.head);
      this.sizes.splice(0, this.head);
      this.head = 0;
    }
  }
}

/** The data channel machine's context. */
export interface DataChannelContext {
  readonly channel: DataChannelPort;
  readonly label: string;
  readonly highWaterMark: number;
  readonly lowWaterMark: number;
  /** Payloads not yet handed to the channel, and the bytes handed over (changes in place). */
  readonly queue: SendQueue;
}

/**
 * Queue rather than send once the channel's bufferedAmount + the payload would exceed this.
 * 256 KiB: in Chromium (apps/bench data channel suite, two pages over loopback on a loaded
 * 2-core machine) a raw sender that kept up to 1 MiB in the channel stalled in 4 of 5 transfers
 * of 64 MiB (3.4-4.3 s without a byte drained, about 12 MiB/s over the transfer), 512 KiB in
 * 1 of 3, and 64-256 KiB in none of 17, at 36-42 MiB/s. In the bench's own runs with 256 KiB,
 * 2 transfers of 45 (both subjects) paused for 2-3 s, against about half of them with 1 MiB.
 */
export const DEFAULT_HIGH_WATER_MARK = 256 * 1024;
/**
 * The channel's bufferedAmountLowThreshold: a backpressured queue goes on when it drains to this.
 * Half the high-water mark: what is left, about 3.5 ms of sending at 37 MiB/s, covers the trip of
 * `bufferedamountlow` to the sender (Parley / raw 0.952 and 0.962 in the bench with 128 KiB,
 * 0.936 with 64 KiB).
 */
export const DEFAULT_LOW_WATER_MARK = 128 * 1024;

/** The channel's current readyState as an event, so that a change between createActor and start is not missed. */
function readyStateSignal(state: DataChannelState): DataChannelSignal[] {
  switch (state) {
    case 'connecting':
      return [];
    case 'open':
      return [{ type: 'CHANNEL.OPEN' }];
    case 'closing':
      return [{ type: 'CHANNEL.CLOSING' }];
    case 'closed':
      return [{ type: 'CHANNEL.CLOSE' }];
  }
}

const BUFFERED_AMOUNT_LOW: DataChannelSignal = { type: 'CHANNEL.BUFFERED_AMOUNT_LOW' };

/** A message the channel received (webrtc-pc §6.2 `message`): text, or binary as an ArrayBuffer. */
export type ChannelMessage = Extract<DataChannelEvent, { readonly type: 'message' }>;

function toSignal(event: Exclude<DataChannelEvent, ChannelMessage>): DataChannelSignal {
  switch (event.type) {
    case 'open':
      return { type: 'CHANNEL.OPEN' };
    case 'bufferedamountlow':
      return BUFFERED_AMOUNT_LOW;
    case 'closing':
      return { type: 'CHANNEL.CLOSING' };
    case 'close':
      return { type: 'CHANNEL.CLOSE' };
    case 'error':
      return { type: 'CHANNEL.ERROR', error: event.error };
  }
}

/**
 * Hears the channel for the machine, from its readyState at start on: each message is emitted,
 * to this actor's listeners, as it comes; every other event goes to the machine. The one
 * subscription to the port keeps the port's order and takes what it held for its first
 * subscriber (a message that came while a remote channel was adopted included).
 */
const channelEvents = fromCallback<EventObject, { readonly channel: DataChannelPort }, ChannelMessage>(({ input, sendBack, emit: emitMessage }) => {
  for (const signal of readyStateSignal(input.channel.readyState)) sendBack(signal);
  const subscription = input.channel.events$.subscribe((event) => {
    if (event.type === 'message') emitMessage(event);
    else sendBack(toSignal(event));
  });
  return () => subscription.unsubscribe();
});

/** The actor that emits a data channel machine's received messages; undefined once it has ended. */
export function channelMessagesOf(actor: ActorRefFrom<typeof dataChannelMachine>): ActorRefFrom<typeof channelEvents> | undefined {
  return actor.getSnapshot().children.channelEvents;
}

/**
 * One data channel (webrtc-pc §6.2): its open/closing/closed life, and a send queue that applies
 * backpressure with `bufferedAmount` and the water marks. `SEND` events queue data.
 */
export const dataChannelMachine = setup({
  types: {
    input: {} as DataChannelMachineInput,
    context: {} as DataChannelContext,
    events: {} as DataChannelMachineEvent,
    emitted: {} as DataChannelEmitted,
    children: {} as { channelEvents: 'channelEvents' },
  },
  actors: { channelEvents },
  guards: {
    isChannelOpen: ({ context }) => context.channel.readyState === 'open',
    isChannelClosing: ({ context }) => context.channel.readyState === 'closing',
    isChannelClosed: ({ context }) => context.channel.readyState === 'closed',
    didTransmitFail: ({ context }) => context.queue.failure !== null,
    hasQueued: ({ context }) => context.queue.length > 0,
  },
  actions: {
    /** webrtc-pc §6.2: bufferedamountlow fires when bufferedAmount drains to this threshold. */
    applyLowWaterMark: ({ context }) => {
      context.channel.bufferedAmountLowThreshold = context.lowWaterMark;
    },
    armLowThreshold: ({ context }) => {
      context.channel.bufferedAmountLowThreshold = lowThresholdFor(context.queue.headSize, context.lowWaterMark, context.highWaterMark);
    },
    enqueuePayload: ({ context, event }) => {
      assertEvent(event, 'SEND');
      context.queue.push(event.data);
    },
    /** The one place that calls channel.send: from the head of the queue while it fits. */
    transmitQueue: ({ context }) => {
      context.queue.transmit(context.channel, context.highWaterMark);
    },
    emitTransmitError: emit(({ context }) => ({ type: 'error' as const, error: context.queue.failure ?? new Error('send failed') })),
    closeChannel: ({ context }) => {
      context.channel.close();
    },
    emitOpen: emit({ type: 'open' as const }),
    emitBufferedAmountLow: emit({ type: 'bufferedamountlow' as const }),
    emitChannelError: emit(({ event }) => {
      assertEvent(event, 'CHANNEL.ERROR');
      return { type: 'error' as const, error: event.error };
    }),
    emitClose: emit({ type: 'close' as const }),
    /** webrtc-pc §6.2 send(): a channel that is not open cannot send; say so, never drop silently. */
    reportSendFailed: emit(({ event }) => {
      assertEvent(event, 'SEND');
      return {
        type: 'send-failed' as const,
        reason: 'channel-closed' as const,
        bytes: payloadByteLength(event.data),
        data: event.data,
      };
    }),
    failQueued: enqueueActions(({ context, enqueue }) => {
      for (const { data, bytes } of context.queue.takeAll()) {
        enqueue.emit({ type: 'send-failed', reason: 'channel-closed', bytes, data });
      }
    }),
  },
}).createMachine({
  id: 'dataChannel',
  description: 'One RTCDataChannel with a backpressured send queue (webrtc-pc §6.2).',
  context: ({ input }) => ({
    channel: input.channel,
    label: input.channel.label,
    highWaterMark: input.highWaterMark ?? DEFAULT_HIGH_WATER_MARK,
    lowWaterMark: input.lowWaterMark ?? DEFAULT_LOW_WATER_MARK,
    queue: new SendQueue(),
  }),
  entry: 'applyLowWaterMark',
  invoke: {
    id: 'channelEvents',
    src: 'channelEvents',
    input: ({ context }) => ({ channel: context.channel }),
  },
  on: {
    'CHANNEL.ERROR': { actions: 'emitChannelError' },
  },
  initial: 'wrapping',
  states: {
    wrapping: {
      description: 'Transient: start in the state matching channel.readyState (it may already be open).',
      always: [
        { guard: 'isChannelOpen', target: 'open' },
        { guard: 'isChannelClosing', target: 'closing' },
        { guard: 'isChannelClosed', target: 'closed' },
        { target: 'connecting' },
      ],
    },
    connecting: {
      description: 'webrtc-pc "connecting": not yet open; sends are queued and flushed in order on open.',
      on: {
        SEND: { actions: 'enqueuePayload' },
        'CHANNEL.OPEN': 'open',
        'CHANNEL.CLOSING': 'closing',
        'CHANNEL.CLOSE': 'closed',
        CLOSE: { target: 'closing', actions: 'closeChannel' },
      },
    },
    open: {
      description: 'webrtc-pc "open": data flows; the queue drains as the channel buffer allows.',
      entry: 'emitOpen',
      initial: 'flowing',
      on: {
        'CHANNEL.CLOSING': 'closing',
        'CHANNEL.CLOSE': 'closed',
        CLOSE: { target: 'closing', actions: 'closeChannel' },
      },
      states: {
        flowing: {
          description: 'Nothing waits: the queue is flushed on entry, and a SEND goes to the channel at once if it fits.',
          entry: 'transmitQueue',
          on: {
            SEND: { actions: ['enqueuePayload', 'transmitQueue'] },
            FLUSH: { actions: 'transmitQueue' },
            'CHANNEL.BUFFERED_AMOUNT_LOW': { actions: 'emitBufferedAmountLow' },
          },
          always: [
            { guard: 'didTransmitFail', target: 'backpressured', actions: 'emitTransmitError' },
            { guard: 'hasQueued', target: 'backpressured' },
          ],
        },
        backpressured: {
          description: 'The head does not fit under the high-water mark (or send threw): wait for bufferedamountlow.',
          entry: 'armLowThreshold',
          exit: 'applyLowWaterMark',
          on: {
            SEND: { actions: 'enqueuePayload' },
            'CHANNEL.BUFFERED_AMOUNT_LOW': { target: 'flowing', actions: 'emitBufferedAmountLow' },
          },
        },
      },
    },
    closing: {
      description: 'webrtc-pc "closing": nothing more can be sent; what was queued is reported unsent. Messages may still arrive.',
      entry: 'failQueued',
      on: {
        SEND: { actions: 'reportSendFailed' },
        FLUSH: { actions: 'failQueued' },
        'CHANNEL.CLOSE': 'closed',
      },
    },
    closed: {
      description: 'webrtc-pc "closed": final; anything still queued is reported unsent.',
      type: 'final',
      entry: ['failQueued', 'emitClose'],
    },
  },
});
