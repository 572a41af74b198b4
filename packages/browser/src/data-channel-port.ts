import { BufferUntilSubscribed } from '@parley/core';
import type { DataChannelEvent, DataChannelPayload, DataChannelPort, DataChannelState } from '@parley/core';
import type { RtcDataChannelLike } from './rtc-types.js';

// A W3C RTCDataChannel (webrtc-pc §6.2) as a core DataChannelPort: every event on one typed,
// hot stream, every method forwarded. Binary messages arrive as ArrayBuffer (binaryType is set
// to 'arraybuffer' here, webrtc-pc §6.2 "binaryType"), so a browser's default Blob never
// reaches the machines.

const CHANNEL_EVENTS = ['open', 'message', 'bufferedamountlow', 'closing', 'close', 'error'] as const;

/** The RTCErrorEvent fields we read (webrtc-pc §12.1); engines without RTCError give an Event. */
interface ErrorEventLike {
  readonly error?: unknown;
  readonly message?: unknown;
}

function errorOf(event: Event): Error {
  const { error, message } = event as Event & ErrorEventLike;
  if (error instanceof Error) return error;
  if (typeof error === 'object' && error !== null) {
    const { name, message: inner } = error as { name?: unknown; message?: unknown };
    return Object.assign(new Error(typeof inner === 'string' ? inner : 'data channel error'), {
      name: typeof name === 'string' ? name : 'OperationError',
    });
  }
  return Object.assign(new Error(typeof message === 'string' && message !== '' ? message : 'data channel error'), {
    name: 'OperationError',
  });
}

/** The channel's payload as an ArrayBuffer when it is binary (engines differ on views and Blobs). */
function binaryOf(data: unknown): string | ArrayBuffer | null {
  if (typeof data === 'string' || data instanceof ArrayBuffer) return data;
  if (ArrayBuffer.isView(data)) {
    return data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
  }
  return null;
}

/**
 * Wraps an RTCDataChannel. Events raised before the first subscriber are held for it, so a
 * message that arrives while the machines adopt a remote channel is never lost; the stream
 * completes after `close`.
 */
export function createDataChannelPort(channel: RtcDataChannelLike): DataChannelPort {
  channel.binaryType = 'arraybuffer';
  const events = new BufferUntilSubscribed<DataChannelEvent>();

  const onEvent = (event: Event): void => {
    switch (event.type) {
      case 'open':
        return events.next({ type: 'open' });
      case 'message': {
        const data = binaryOf((event as MessageEvent<unknown>).data);
        if (data === null) {
          return events.next({ type: 'error', error: Object.assign(new Error('a Blob message arrived although binaryType is "arraybuffer"'), { name: 'NotSupportedError' }) });
        }
        return events.next({ type: 'message', data });
      }
      case 'bufferedamountlow':
        return events.next({ type: 'bufferedamountlow' });
      case 'closing':
        return events.next({ type: 'closing' });
      case 'error':
        return events.next({ type: 'error', error: errorOf(event) });
      case 'close':
        events.next({ type: 'close' });
        for (const type of CHANNEL_EVENTS) channel.removeEventListener(type, onEvent);
        events.complete();
        return;
    }
  };
  for (const type of CHANNEL_EVENTS) channel.addEventListener(type, onEvent);

  return {
    get label() {
      return channel.label;
    },
    get id() {
      return channel.id;
    },
    get ordered() {
      return channel.ordered;
    },
    get protocol() {
      return channel.protocol;
    },
    get readyState(): DataChannelState {
      return channel.readyState;
    },
    get bufferedAmount() {
      return channel.bufferedAmount;
    },
    get bufferedAmountLowThreshold() {
      return channel.bufferedAmountLowThreshold;
    },
    set bufferedAmountLowThreshold(value: number) {
      channel.bufferedAmountLowThreshold = value;
    },
    events$: events.observable,
    send(data: DataChannelPayload) {
      // The DOM overloads take each payload kind separately (webrtc-pc §6.2 send()).
      if (typeof data === 'string') channel.send(data);
      else if (data instanceof ArrayBuffer) channel.send(data);
      else channel.send(data as ArrayBufferView<ArrayBuffer>);
    },
    close() {
      channel.close();
    },
  };
}
