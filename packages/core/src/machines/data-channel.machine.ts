import { concat, defer, map, of } from 'rxjs';
import type { Observable } from 'rxjs';
import { assertEvent, assign, emit, enqueueActions, fromEventObservable, setup } from 'xstate';
import type { DataChannelEvent, DataChannelPayload, DataChannelPort, DataChannelState } from '../ports/rtc.js';

// One RTCDataChannel (webrtc-pc §6.2): its lifecycle `connecting -> open -> closing -> closed`,
// and a send queue with backpressure on `bufferedAmount` so that a fast sender never piles
// megabytes into the channel's own buffer (which engines cap, and then close the channel).

/** The input of `dataChannelMachine`: the data channel port and its send-queue water marks. */
export interface DataChannelMachineInput {
  readonly channel: DataChannelPort;
  /** Queue instead of sending once bufferedAmount + message would exceed this (default 1 MiB). */
  readonly highWaterMark?: number;
  /** bufferedAmountLowThreshold: refill the channel when it drains to this (default 256 KiB). */
  readonly lowWaterMark?: number;
}

/** What users send to the machine. */
export type DataChannelCommand =
  | { readonly type: 'SEND'; readonly data: DataChannelPayload }
  | { readonly type: 'CLOSE' };

/** The channel's own events (webrtc-pc §6.2), as the machine receives them. */
export type DataChannelSignal =
  | { readonly type: 'CHANNEL.OPEN' }
  | { readonly type: 'CHANNEL.MESSAGE'; readonly data: string | ArrayBuffer }
  /** `bufferedAmount` is sampled when the event is delivered. */
  | { readonly type: 'CHANNEL.BUFFERED_AMOUNT_LOW'; readonly bufferedAmount: number }
  | { readonly type: 'CHANNEL.CLOSING' }
  | { readonly type: 'CHANNEL.CLOSE' }
  | { readonly type: 'CHANNEL.ERROR'; readonly error: Error };

/** Internal: the outcome of handing queued payloads to `channel.send`, sent by `transmitQueue`. */
export interface QueueTransmittedEvent {
  readonly type: 'QUEUE.TRANSMITTED';
  /** Payloads sent, from the head of the queue. */
  readonly count: number;
  readonly bytes: number;
  /** channel.bufferedAmount after the sends. */
  readonly bufferedAmount: number;
  /** Why it stopped: queue handed over, next one does not fit, or `send` threw. */
  readonly stoppedBy: 'drained' | 'full' | 'error';
  readonly error?: Error;
}

/**
 * Every event `dataChannelMachine` accepts: the app's commands, the channel's own events and the
 * queue's progress.
 */
export type DataChannelMachineEvent = DataChannelCommand | DataChannelSignal | QueueTransmittedEvent;

/** What users observe, with `actor.on(type, handler)`. Nothing is dropped without a `send-failed`. */
export type DataChannelEmitted =
  | { readonly type: 'open' }
  | { readonly type: 'message'; readonly data: string | ArrayBuffer }
  | { readonly type: 'close' }
  | { readonly type: 'error'; readonly error: Error }
  | {
      readonly type: 'send-failed';
      readonly reason: 'channel-closed';
      readonly bytes: number;
      readonly data: DataChannelPayload;
    };

/** The context of `dataChannelMachine`: the channel, its send queue and its counters. */
export interface DataChannelContext {
  readonly channel: DataChannelPort;
  readonly label: string;
  readonly highWaterMark: number;
  readonly lowWaterMark: number;
  /** Payloads not yet handed to the channel, in send order. */
  readonly queue: readonly DataChannelPayload[];
  readonly queuedBytes: number;
  /** channel.bufferedAmount as of the last send or bufferedamountlow. */
  readonly bufferedAmount: number;
  /** Bytes handed to channel.send. */
  readonly sentBytes: number;
  readonly receivedBytes: number;
  readonly messagesReceived: number;
}

/** Default high water mark of a data channel's send queue, in bytes: sending pauses above it. */
export const DEFAULT_HIGH_WATER_MARK = 1024 * 1024;
/**
 * Default low water mark, in bytes: sending resumes when `bufferedAmount` falls to it
 * (`bufferedamountlow`, webrtc-pc §6.2).
 */
export const DEFAULT_LOW_WATER_MARK = 256 * 1024;

/** Bytes a payload occupies on the wire: UTF-8 for text (webrtc-pc §6.2 send()), byteLength for binary. */
export function payloadByteLength(data: DataChannelPayload): number {
  if (typeof data !== 'string') return data.byteLength;
  let bytes = 0;
  for (const char of data) {
    // A lone surrogate becomes U+FFFD (3 bytes) in UTF-8, which the 0xffff branch also counts.
    const codePoint = char.codePointAt(0) ?? 0;
    bytes += codePoint < 0x80 ? 1 : codePoint < 0x800 ? 2 : codePoint < 0x10000 ? 3 : 4;
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

/** Sends from the head of `queue` while the rule allows; never throws, reports what happened. */
function transmitFromHead(
  channel: DataChannelPort,
  queue: readonly DataChannelPayload[],
  highWaterMark: number,
): QueueTransmittedEvent {
  let count = 0;
  let bytes = 0;
  for (const payload of queue) {
    const size = payloadByteLength(payload);
    if (!fitsUnderHighWaterMark(channel.bufferedAmount, size, highWaterMark)) {
      return { type: 'QUEUE.TRANSMITTED', count, bytes, bufferedAmount: channel.bufferedAmount, stoppedBy: 'full' };
    }
    try {
      channel.send(payload);
    } catch (error: unknown) {
      return {
        type: 'QUEUE.TRANSMITTED',
        count,
        bytes,
        bufferedAmount: channel.bufferedAmount,
        stoppedBy: 'error',
        error: error instanceof Error ? error : new Error(String(error)),
      };
    }
    count += 1;
    bytes += size;
  }
  return { type: 'QUEUE.TRANSMITTED', count, bytes, bufferedAmount: channel.bufferedAmount, stoppedBy: 'drained' };
}

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

function toSignal(event: DataChannelEvent, channel: DataChannelPort): DataChannelSignal {
  switch (event.type) {
    case 'open':
      return { type: 'CHANNEL.OPEN' };
    case 'message':
      return { type: 'CHANNEL.MESSAGE', data: event.data };
    case 'bufferedamountlow':
      return { type: 'CHANNEL.BUFFERED_AMOUNT_LOW', bufferedAmount: channel.bufferedAmount };
    case 'closing':
      return { type: 'CHANNEL.CLOSING' };
    case 'close':
      return { type: 'CHANNEL.CLOSE' };
    case 'error':
      return { type: 'CHANNEL.ERROR', error: event.error };
  }
}

function channelSignals(channel: DataChannelPort): Observable<DataChannelSignal> {
  return defer(() =>
    concat(of(...readyStateSignal(channel.readyState)), channel.events$.pipe(map((event) => toSignal(event, channel)))),
  );
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
  },
  actors: {
    channelEvents: fromEventObservable(({ input }: { input: { channel: DataChannelPort } }) =>
      channelSignals(input.channel),
    ),
  },
  guards: {
    isChannelOpen: ({ context }) => context.channel.readyState === 'open',
    isChannelClosing: ({ context }) => context.channel.readyState === 'closing',
    isChannelClosed: ({ context }) => context.channel.readyState === 'closed',
    didTransmitFail: ({ event }) => event.type === 'QUEUE.TRANSMITTED' && event.stoppedBy === 'error',
    isChannelBufferFull: ({ event }) => event.type === 'QUEUE.TRANSMITTED' && event.stoppedBy === 'full',
    /** Were payloads queued while the last batch was being handed over? */
    hasMoreQueued: ({ context, event }) => event.type === 'QUEUE.TRANSMITTED' && context.queue.length > event.count,
  },
  actions: {
    /** webrtc-pc §6.2: bufferedamountlow fires when bufferedAmount drains to this threshold. */
    applyLowWaterMark: ({ context }) => {
      context.channel.bufferedAmountLowThreshold = context.lowWaterMark;
    },
    armLowThreshold: ({ context }) => {
      const head = context.queue[0];
      const headSize = head === undefined ? 0 : payloadByteLength(head);
      context.channel.bufferedAmountLowThreshold = lowThresholdFor(headSize, context.lowWaterMark, context.highWaterMark);
    },
    enqueuePayload: assign(({ context, event }) => {
      assertEvent(event, 'SEND');
      return {
        queue: [...context.queue, event.data],
        queuedBytes: context.queuedBytes + payloadByteLength(event.data),
      };
    }),
    /** The one place that calls channel.send; its outcome comes back as QUEUE.TRANSMITTED. */
    transmitQueue: ({ context, self }) => {
      self.send(transmitFromHead(context.channel, context.queue, context.highWaterMark));
    },
    recordTransmission: assign(({ context, event }) => {
      assertEvent(event, 'QUEUE.TRANSMITTED');
      return {
        queue: context.queue.slice(event.count),
        queuedBytes: context.queuedBytes - event.bytes,
        sentBytes: context.sentBytes + event.bytes,
        bufferedAmount: event.bufferedAmount,
      };
    }),
    emitTransmitError: emit(({ event }) => {
      assertEvent(event, 'QUEUE.TRANSMITTED');
      return { type: 'error' as const, error: event.error ?? new Error('send failed') };
    }),
    recordBufferedAmount: assign({
      bufferedAmount: ({ event }) => {
        assertEvent(event, 'CHANNEL.BUFFERED_AMOUNT_LOW');
        return event.bufferedAmount;
      },
    }),
    /** `sending` is atomic: an event that would leave it waits behind the pending QUEUE.TRANSMITTED. */
    deferUntilTransmitted: ({ event, self }) => {
      self.send(event);
    },
    closeChannel: ({ context }) => {
      context.channel.close();
    },
    recordMessage: assign(({ context, event }) => {
      assertEvent(event, 'CHANNEL.MESSAGE');
      return {
        receivedBytes: context.receivedBytes + payloadByteLength(event.data),
        messagesReceived: context.messagesReceived + 1,
      };
    }),
    emitOpen: emit({ type: 'open' as const }),
    emitMessage: emit(({ event }) => {
      assertEvent(event, 'CHANNEL.MESSAGE');
      return { type: 'message' as const, data: event.data };
    }),
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
      for (const data of context.queue) {
        enqueue.emit({ type: 'send-failed', reason: 'channel-closed', bytes: payloadByteLength(data), data });
      }
      enqueue.assign({ queue: [], queuedBytes: 0 });
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
    queue: [],
    queuedBytes: 0,
    bufferedAmount: input.channel.bufferedAmount,
    sentBytes: 0,
    receivedBytes: 0,
    messagesReceived: 0,
  }),
  entry: 'applyLowWaterMark',
  invoke: {
    id: 'channelEvents',
    src: 'channelEvents',
    input: ({ context }) => ({ channel: context.channel }),
  },
  on: {
    // webrtc-pc §6.2: messages may still arrive while the channel is closing.
    'CHANNEL.MESSAGE': { actions: ['recordMessage', 'emitMessage'] },
    'CHANNEL.ERROR': { actions: 'emitChannelError' },
    'CHANNEL.BUFFERED_AMOUNT_LOW': { actions: 'recordBufferedAmount' },
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
      initial: 'sending',
      on: {
        'CHANNEL.CLOSING': 'closing',
        'CHANNEL.CLOSE': 'closed',
        CLOSE: { target: 'closing', actions: 'closeChannel' },
      },
      states: {
        sending: {
          description: 'Handing queued payloads to channel.send from the head while they fit.',
          entry: 'transmitQueue',
          on: {
            SEND: { actions: 'enqueuePayload' },
            'QUEUE.TRANSMITTED': [
              { guard: 'didTransmitFail', target: 'backpressured', actions: ['recordTransmission', 'emitTransmitError'] },
              { guard: 'isChannelBufferFull', target: 'backpressured', actions: 'recordTransmission' },
              { guard: 'hasMoreQueued', target: 'sending', reenter: true, actions: 'recordTransmission' },
              { target: 'idle', actions: 'recordTransmission' },
            ],
            'CHANNEL.CLOSING': { actions: 'deferUntilTransmitted' },
            'CHANNEL.CLOSE': { actions: 'deferUntilTransmitted' },
            CLOSE: { actions: 'deferUntilTransmitted' },
          },
        },
        idle: {
          description: 'Everything sent so far is in the channel; a SEND goes out at once if it fits.',
          on: {
            SEND: { target: 'sending', actions: 'enqueuePayload' },
          },
        },
        backpressured: {
          description: 'The head does not fit under the high-water mark (or send threw): wait for bufferedamountlow.',
          entry: 'armLowThreshold',
          exit: 'applyLowWaterMark',
          on: {
            SEND: { actions: 'enqueuePayload' },
            'CHANNEL.BUFFERED_AMOUNT_LOW': { target: 'sending', actions: 'recordBufferedAmount' },
          },
        },
      },
    },
    closing: {
      description: 'webrtc-pc "closing": nothing more can be sent; what was queued is reported unsent.',
      entry: 'failQueued',
      on: {
        SEND: { actions: 'reportSendFailed' },
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
