// What the data-channel benchmark's pages and its runner share: the transfer plan, how chunks are
// made and checked, what the pages report, and the arithmetic on it. DOM-free and Node-free, so the
// pages (bundled by Vite) and the runner (Node) import the same code.

export const MIB = 1024 * 1024;
export const KIB = 1024;

/**
 * The subjects. `raw`: the RTCDataChannel driven by hand, the standard
 * bufferedAmountLowThreshold / `bufferedamountlow` loop. `parley`: core's data channel handle
 * (`DataChannel`) of a `createPeer` peer, the app pacing itself on its bufferedAmount (the
 * machine's queue + the channel's buffer, as the demo's file transfer does) and resuming on its
 * bufferedAmountLow$, the machine's own queue and backpressure doing the rest. `parleyQueued`:
 * the same handle, every chunk handed to send() at once (the machine's queue holds the whole
 * transfer).
 */
export type Subject = 'raw' | 'parley' | 'parleyQueued';
export const SUBJECTS: readonly Subject[] = ['raw', 'parley', 'parleyQueued'];

export interface TransferPlan {
  readonly totalBytes: number;
  readonly chunkBytes: number;
  /** Nothing more goes to the channel while bufferedAmount + chunk would exceed this. */
  readonly highWaterMark: number;
  /** bufferedAmountLowThreshold: the sender refills the channel when it drains to this. */
  readonly lowWaterMark: number;
}

/** Throws on a plan that cannot be carried out as described (so a typo fails before a browser starts). */
export function checkPlan(plan: TransferPlan): TransferPlan {
  const { totalBytes, chunkBytes, highWaterMark, lowWaterMark } = plan;
  for (const [name, value] of Object.entries(plan)) {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a whole number of bytes, got ${value}`);
  }
  if (chunkBytes < STAMP_BYTES) throw new RangeError(`chunkBytes must be at least ${STAMP_BYTES} (the stamp), got ${chunkBytes}`);
  if (totalBytes < chunkBytes) throw new RangeError(`totalBytes (${totalBytes}) must be at least one chunk (${chunkBytes})`);
  if (highWaterMark < chunkBytes) throw new RangeError(`highWaterMark (${highWaterMark}) must hold at least one chunk (${chunkBytes})`);
  if (lowWaterMark >= highWaterMark) throw new RangeError(`lowWaterMark (${lowWaterMark}) must be below highWaterMark (${highWaterMark})`);
  return plan;
}

export function chunkCount(plan: TransferPlan): number {
  return Math.ceil(plan.totalBytes / plan.chunkBytes);
}

/** Size of chunk `index`: every chunk is full but the last, which holds the remainder. */
export function chunkSize(plan: TransferPlan, index: number): number {
  const count = chunkCount(plan);
  if (!Number.isInteger(index) || index < 0 || index >= count) throw new RangeError(`chunk ${index} is not in 0..${count - 1}`);
  return index === count - 1 ? plan.totalBytes - index * plan.chunkBytes : plan.chunkBytes;
}

/** Bytes of each chunk that carry its stamp: its index first, a hash of the index last. */
export const STAMP_BYTES = 8;

function indexHash(index: number): number {
  return Math.imul(index + 1, 0x9e3779b1) >>> 0;
}

/**
 * A fresh chunk (every subject allocates one per send, so a queued chunk is never overwritten):
 * its index in the first 4 bytes and a hash of it in the last 4 (little-endian), so the receiver
 * can tell a lost, reordered, truncated or corrupted chunk without hashing 64 MiB.
 */
export function makeChunk(plan: TransferPlan, index: number): Uint8Array<ArrayBuffer> {
  const size = chunkSize(plan, index);
  const chunk = new Uint8Array(size);
  const view = new DataView(chunk.buffer);
  view.setUint32(0, index, true);
  view.setUint32(size - 4, indexHash(index), true);
  return chunk;
}

/** Null when `data` is chunk `index` as makeChunk made it, else what is wrong with it. */
export function checkChunk(plan: TransferPlan, index: number, data: ArrayBuffer): string | null {
  const size = chunkSize(plan, index);
  if (data.byteLength !== size) return `chunk ${index}: ${data.byteLength} bytes, expected ${size}`;
  const view = new DataView(data);
  const stamped = view.getUint32(0, true);
  if (stamped !== index) return `chunk ${index}: carries index ${stamped} (lost or reordered chunks)`;
  if (view.getUint32(size - 4, true) !== indexHash(index)) return `chunk ${index}: its end stamp is corrupted`;
  return null;
}

/** What connects a page to its peer for one transfer (signaling set-up is not timed). */
export interface ConnectOptions {
  readonly role: 'sender' | 'receiver';
  readonly subject: Subject;
  /** A fresh room per transfer: the two pages of one transfer meet there. */
  readonly room: string;
  readonly signalingUrl: string;
  readonly plan: TransferPlan;
}

/** The sender's account of one transfer. Times are `performance.timeOrigin + performance.now()`. */
export interface SenderReport {
  /** Just before the first send. */
  readonly startedAt: number;
  /** When the last chunk was handed over (to the channel, or to the Parley handle). */
  readonly handedOverAt: number;
  /** Largest RTCDataChannel.bufferedAmount read right after any send (both subjects read it alike). */
  readonly maxBufferedAmount: number;
  /** Longest time between two sends: the channel did not drain to the low-water mark meanwhile. */
  readonly longestSendGapMs: number;
  /** usedJSHeapSize just before the first send (after a forced GC). */
  readonly heapBeforeBytes: number;
  /** Largest usedJSHeapSize sampled during the transfer (every 25 ms, and at its end). */
  readonly heapPeakBytes: number;
  readonly heapSamples: number;
}

export interface ReceiverReport {
  /** When the last byte arrived. */
  readonly completedAt: number;
  readonly bytes: number;
  readonly messages: number;
}

export interface TransferResult {
  readonly subject: Subject;
  readonly bytes: number;
  readonly milliseconds: number;
  readonly mibPerSecond: number;
  readonly maxBufferedAmount: number;
  readonly longestSendGapMs: number;
  readonly heapPeakBytes: number;
  readonly heapGrowthBytes: number;
}

/** MiB per second of `bytes` moved in `milliseconds`. */
export function mibPerSecond(bytes: number, milliseconds: number): number {
  if (!(milliseconds > 0)) throw new RangeError(`a transfer must take some time, got ${milliseconds} ms`);
  return bytes / MIB / (milliseconds / 1000);
}

/** One transfer's numbers, from both pages' reports; throws if the receiver did not get it all. */
export function transferResult(subject: Subject, plan: TransferPlan, sender: SenderReport, receiver: ReceiverReport): TransferResult {
  if (receiver.bytes !== plan.totalBytes) throw new Error(`${subject}: the receiver got ${receiver.bytes} bytes of ${plan.totalBytes}`);
  if (receiver.messages !== chunkCount(plan)) throw new Error(`${subject}: the receiver got ${receiver.messages} messages of ${chunkCount(plan)}`);
  const milliseconds = receiver.completedAt - sender.startedAt;
  return {
    subject,
    bytes: receiver.bytes,
    milliseconds,
    mibPerSecond: mibPerSecond(receiver.bytes, milliseconds),
    maxBufferedAmount: sender.maxBufferedAmount,
    longestSendGapMs: sender.longestSendGapMs,
    heapPeakBytes: sender.heapPeakBytes,
    heapGrowthBytes: Math.max(0, sender.heapPeakBytes - sender.heapBeforeBytes),
  };
}

/** Parley's median over raw's median: the goal's ratio (>= 0.95 is the goal). */
export function throughputRatio(parleyMedian: number, rawMedian: number): number {
  if (!(rawMedian > 0)) throw new RangeError(`raw median throughput must be > 0, got ${rawMedian}`);
  return parleyMedian / rawMedian;
}

/** Parley's sender peak heap over raw's (medians of the runs' peaks): the goal's ratio (<= 1.5 is the goal). */
export function heapRatio(parleyPeakBytes: number, rawPeakBytes: number): number {
  if (!(rawPeakBytes > 0)) throw new RangeError(`raw sender peak heap must be > 0, got ${rawPeakBytes}`);
  return parleyPeakBytes / rawPeakBytes;
}
