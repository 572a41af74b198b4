import type { SenderReport } from '../src/data-channel/plan.js';

// What the sender page measures about itself, the same way for every subject: the channel's
// bufferedAmount right after each send (the most it holds is always right after a send), the
// longest pause between two sends (a stalled transport shows there), and the
// JS heap sampled every 25 ms (reading performance.memory costs a few hundred microseconds) while the transfer runs.

/** A time both pages of one browser can compare: milliseconds since the epoch, sub-millisecond. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

interface MemoryInfo {
  readonly usedJSHeapSize: number;
}

/** usedJSHeapSize (precise with --enable-precise-memory-info), or 0 where the engine has none. */
function usedHeap(): number {
  return (performance as Performance & { memory?: MemoryInfo }).memory?.usedJSHeapSize ?? 0;
}

export interface SenderProbe {
  /** Call just before the first send. */
  start(): void;
  /** Call when the last chunk was handed over. */
  handedOver(): void;
  /** Call when the receiver says it has everything. */
  finish(): SenderReport;
}

/**
 * Wraps `channel.send` with a read of bufferedAmount (a field in Blink, no round trip), so the
 * peak is exact for both subjects and costs each the same.
 */
export function probeSender(channel: RTCDataChannel): SenderProbe {
  let maxBufferedAmount = 0;
  let lastSendAt = 0;
  let longestSendGapMs = 0;
  const send = channel.send.bind(channel) as (data: unknown) => void;
  (channel as unknown as { send: (data: unknown) => void }).send = (data: unknown) => {
    send(data);
    const buffered = channel.bufferedAmount;
    if (buffered > maxBufferedAmount) maxBufferedAmount = buffered;
    const at = performance.now();
    if (lastSendAt > 0 && at - lastSendAt > longestSendGapMs) longestSendGapMs = at - lastSendAt;
    lastSendAt = at;
  };
  let startedAt = 0;
  let handedOverAt = 0;
  let heapBeforeBytes = 0;
  let heapPeakBytes = 0;
  let heapSamples = 0;
  let timer: ReturnType<typeof setInterval> | undefined;
  const sample = (): void => {
    heapSamples += 1;
    heapPeakBytes = Math.max(heapPeakBytes, usedHeap());
  };
  return {
    start() {
      maxBufferedAmount = 0;
      lastSendAt = 0;
      longestSendGapMs = 0;
      heapBeforeBytes = usedHeap();
      heapPeakBytes = heapBeforeBytes;
      timer = setInterval(sample, 25);
      startedAt = now();
    },
    handedOver() {
      handedOverAt = now();
    },
    finish() {
      clearInterval(timer);
      sample();
      return { startedAt, handedOverAt, maxBufferedAmount, longestSendGapMs, heapBeforeBytes, heapPeakBytes, heapSamples };
    },
  };
}
