import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { createPeer } from '@parley/core';
import type { DataChannel, Peer } from '@parley/core';
import { createFakeNetwork, createSignalingPair } from '@parley/core/testing';
import {
  DEFAULT_SENDER_HIGH_WATER_MARK,
  FILE_CHUNK_BYTES,
  FileTransferError,
  MAX_FILE_BYTES,
  createFileReceiver,
  createFileSender,
  fileChannelOf,
  sanitizeFileName,
} from '../../src/file-transfer.js';
import type { FileChannel, FileReceiver, IncomingFileEvent, OutgoingTransfer, TransferProgress } from '../../src/file-transfer.js';

// The files channel without a browser: an in-memory FileChannel whose frames stay "pending" until
// the test delivers them, so backpressure, cancellation and ordering are under the test's control.

type Frame = string | ArrayBuffer;

const frameBytes = (frame: Frame): number => (typeof frame === 'string' ? Buffer.byteLength(frame, 'utf8') : frame.byteLength);

/** A channel whose frames are pending until `deliver` hands them, in order, to `onDeliver`. */
class ManualChannel implements FileChannel {
  /** Every frame ever sent, in order. */
  readonly frames: Frame[] = [];
  /** The most bytes ever pending, measured right after each send. */
  maxPending = 0;
  /** How often the sender asked for pendingBytes(): a paused sender must not poll. */
  pendingCalls = 0;
  private readonly inFlight: Frame[] = [];
  private readonly listeners = new Set<() => void>();

  constructor(private readonly onDeliver: (frame: Frame) => void = () => undefined) {}

  send(data: Frame): void {
    this.frames.push(data);
    this.inFlight.push(data);
    this.maxPending = Math.max(this.maxPending, this.pending);
    this.notify();
  }

  pendingBytes(): number {
    this.pendingCalls += 1;
    return this.pending;
  }

  onPendingChange(listener: () => void): () => void {
    // A wrapper per subscription: the same function subscribed twice must count twice.
    const entry = (): void => listener();
    this.listeners.add(entry);
    return () => this.listeners.delete(entry);
  }

  /** Bytes pending, without counting as a call by the sender. */
  get pending(): number {
    return this.inFlight.reduce((sum, frame) => sum + frameBytes(frame), 0);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  /** Delivers up to `count` frames; returns how many. */
  deliver(count = Infinity): number {
    const batch = this.inFlight.splice(0, count);
    for (const frame of batch) this.onDeliver(frame);
    if (batch.length > 0) this.notify();
    return batch.length;
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

/** Deterministic, non-repeating bytes, so a reordered or dropped chunk cannot go unnoticed. */
function bytesOf(size: number, seed = 1): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 1) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

async function bytesOfBlob(blob: Blob): Promise<Uint8Array> {
  return new Uint8Array(await blob.arrayBuffer());
}

/** -1 when equal, else the first index where they differ (a readable failure for megabytes). */
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i += 1) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : length;
}

const macrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function ticks(count: number): Promise<void> {
  for (let i = 0; i < count; i += 1) await macrotask();
}

/** Waits (in macrotasks) until `predicate` holds; fails after `limit` of them. */
async function until(predicate: () => boolean, what: string, limit = 10_000): Promise<void> {
  for (let i = 0; !predicate(); i += 1) {
    if (i >= limit) throw new Error(`gave up waiting for ${what}`);
    await macrotask();
  }
}

function settledFlag(promise: Promise<unknown>): { readonly settled: boolean } {
  const flag = { settled: false };
  promise.then(
    () => (flag.settled = true),
    () => (flag.settled = true),
  );
  return flag;
}

/** Delivers frames in batches of the given sizes, one batch per macrotask, until the transfer settles. */
async function flow(channel: ManualChannel, transfer: OutgoingTransfer, batches: readonly number[] = [Infinity]): Promise<void> {
  const flag = settledFlag(transfer.done);
  for (let i = 0; !flag.settled; i += 1) {
    if (i > 100_000) throw new Error('the transfer made no progress');
    await macrotask();
    channel.deliver(batches[i % batches.length]);
  }
  channel.deliver();
}

function collect(receiver: FileReceiver): { events: IncomingFileEvent[]; completed: { value: boolean } } {
  const events: IncomingFileEvent[] = [];
  const completed = { value: false };
  receiver.events$.subscribe({ next: (event) => events.push(event), complete: () => (completed.value = true) });
  return { events, completed };
}

function watchProgress(transfer: OutgoingTransfer): { values: TransferProgress[]; completed: { value: boolean } } {
  const values: TransferProgress[] = [];
  const completed = { value: false };
  transfer.progress$.subscribe({ next: (value) => values.push(value), complete: () => (completed.value = true) });
  return { values, completed };
}

const ofType = <T extends IncomingFileEvent['type']>(events: readonly IncomingFileEvent[], type: T) =>
  events.filter((event): event is Extract<IncomingFileEvent, { type: T }> => event.type === type);

const errorsOf = (events: readonly IncomingFileEvent[]): FileTransferError[] => ofType(events, 'error').map((event) => event.error);

async function rejectionOf(promise: Promise<unknown>): Promise<FileTransferError> {
  try {
    await promise;
  } catch (error: unknown) {
    if (error instanceof FileTransferError) return error;
    throw new Error(`rejected with something else: ${String(error)}`, { cause: error });
  }
  throw new Error('resolved, expected a rejection');
}

/** Parses a text frame, or says 'binary'. */
function describeFrame(frame: Frame): { type: string; id?: string } {
  return typeof frame === 'string' ? (JSON.parse(frame) as { type: string; id?: string }) : { type: 'binary' };
}

/** A Blob stand-in that records every slice read and can fail or read short on demand. */
function recordingFile(
  data: Uint8Array<ArrayBuffer>,
  options: { readonly failFrom?: number; readonly shortFrom?: number; readonly type?: string } = {},
): { file: Blob; slices: [number, number][] } {
  const slices: [number, number][] = [];
  const file = {
    size: data.length,
    type: options.type ?? '',
    slice(start: number, end: number) {
      slices.push([start, end]);
      return {
        arrayBuffer: (): Promise<ArrayBuffer> => {
          if (options.failFrom !== undefined && start >= options.failFrom) {
            return Promise.reject(Object.assign(new Error('file gone'), { name: 'NotReadableError' }));
          }
          const stop = options.shortFrom !== undefined && start >= options.shortFrom ? end - 1 : end;
          return Promise.resolve(data.slice(start, stop).buffer);
        },
      };
    },
  };
  return { file: file as unknown as Blob, slices };
}

/** Sends `data` from a fresh sender to a fresh receiver; frames are delivered in `batches`. */
async function roundTrip(
  data: Uint8Array<ArrayBuffer>,
  options: { readonly chunkBytes?: number; readonly highWaterMark?: number; readonly batches?: readonly number[] } = {},
) {
  const receiver = createFileReceiver();
  const received = collect(receiver);
  const channel = new ManualChannel((frame) => receiver.receive(frame));
  const sender = createFileSender(channel, {
    ...(options.chunkBytes === undefined ? {} : { chunkBytes: options.chunkBytes }),
    ...(options.highWaterMark === undefined ? {} : { highWaterMark: options.highWaterMark }),
  });
  const transfer = sender.send(new Blob([data], { type: 'application/octet-stream' }), 'data.bin');
  const progress = watchProgress(transfer);
  await flow(channel, transfer, options.batches);
  await transfer.done;
  const complete = ofType(received.events, 'complete');
  expect(errorsOf(received.events)).toEqual([]);
  expect(complete).toHaveLength(1);
  const blob = complete[0]!.blob;
  return { channel, transfer, progress, events: received.events, blob, bytes: await bytesOfBlob(blob) };
}

describe('constants', () => {
  it('uses 16 KiB frames, a 1 MiB sender high-water mark and a 2 GiB cap', () => {
    expect(FILE_CHUNK_BYTES).toBe(16 * 1024);
    expect(DEFAULT_SENDER_HIGH_WATER_MARK).toBe(1024 * 1024);
    expect(MAX_FILE_BYTES).toBe(2 * 1024 * 1024 * 1024);
  });
});

describe('sender -> receiver round trip', () => {
  it.each([
    ['empty', 0],
    ['one byte', 1],
    ['exactly one chunk', FILE_CHUNK_BYTES],
    ['one chunk and a byte', FILE_CHUNK_BYTES + 1],
    ['about 3 MiB', 3 * 1024 * 1024 + 123],
  ])('%s (%i bytes) arrives byte for byte, in 16 KiB frames between file-start and file-end', async (_label, size) => {
    const data = bytesOf(size, size + 7);
    const { channel, transfer, progress, events, blob, bytes } = await roundTrip(data);

    expect(firstDifference(bytes, data)).toBe(-1);
    expect(blob.size).toBe(size);
    expect(blob.type).toBe('application/octet-stream');

    const frames = channel.frames.map(describeFrame);
    const chunks = Math.ceil(size / FILE_CHUNK_BYTES);
    expect(frames[0]).toEqual({ type: 'file-start', id: transfer.id, name: 'data.bin', size, mime: 'application/octet-stream' });
    expect(frames.at(-1)).toEqual({ type: 'file-end', id: transfer.id });
    expect(frames.slice(1, -1).every((frame) => frame.type === 'binary')).toBe(true);
    const binary = channel.frames.filter((frame): frame is ArrayBuffer => typeof frame !== 'string');
    expect(binary).toHaveLength(chunks);
    expect(binary.every((frame) => frame.byteLength > 0 && frame.byteLength <= FILE_CHUNK_BYTES)).toBe(true);

    // Sender: one value per chunk at most (plus the initial 0; an empty file has 0 then done), rising, the last one done.
    expect(progress.values.length).toBeLessThanOrEqual(Math.max(chunks, 1) + 1);
    expect(progress.values[0]).toEqual({ id: transfer.id, name: 'data.bin', size, bytes: 0, done: false });
    expect(progress.values.at(-1)).toEqual({ id: transfer.id, name: 'data.bin', size, bytes: size, done: true });
    expect(progress.values.filter((value) => value.done)).toHaveLength(1);
    if (size === 0) expect(progress.values.map((value) => [value.bytes, value.done])).toEqual([[0, false], [0, true]]);
    for (let i = 1; size > 0 && i < progress.values.length; i += 1) {
      expect(progress.values[i]!.bytes).toBeGreaterThan(progress.values[i - 1]!.bytes);
    }
    expect(progress.completed.value).toBe(true);

    // Receiver: start, one progress per chunk, complete.
    expect(events[0]).toEqual({ type: 'start', id: transfer.id, name: 'data.bin', size, mime: 'application/octet-stream' });
    const received = ofType(events, 'progress');
    expect(received).toHaveLength(chunks);
    expect(received.at(-1)?.bytes ?? 0).toBe(size);
    expect(events.at(-1)).toMatchObject({ type: 'complete', id: transfer.id, name: 'data.bin', size, mime: 'application/octet-stream' });
  });

  it('replays the latest progress to a late subscriber, also after the transfer is done', async () => {
    const { transfer } = await roundTrip(bytesOf(40_000));
    const late = watchProgress(transfer);
    expect(late.values).toEqual([{ id: transfer.id, name: 'data.bin', size: 40_000, bytes: 40_000, done: true }]);
    expect(late.completed.value).toBe(true);
  });

  it('property: any size, chunk size, high-water mark and delivery split arrives intact, within the mark', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer({ min: 256, max: 32 * 1024 }),
        fc.integer({ min: 0, max: 96 * 1024 }),
        fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1, max: 0x7fffffff }),
        async (size, chunkBytes, highWaterMark, batches, seed) => {
          const data = bytesOf(size, seed);
          const { channel, bytes } = await roundTrip(data, { chunkBytes, highWaterMark, batches });
          expect(firstDifference(bytes, data)).toBe(-1);
          const binary = channel.frames.filter((frame): frame is ArrayBuffer => typeof frame !== 'string');
          expect(binary).toHaveLength(Math.ceil(size / chunkBytes));
          expect(binary.every((frame) => frame.byteLength <= chunkBytes)).toBe(true);
          // A frame is sent only while at or below the mark, so at most one frame over it.
          const largestFrame = Math.max(...channel.frames.map(frameBytes));
          expect(channel.maxPending).toBeLessThanOrEqual(highWaterMark + largestFrame);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('sender backpressure', () => {
  it('stops reading above the high-water mark without polling, and resumes as the channel drains', async () => {
    const chunkBytes = 1024;
    const highWaterMark = 4 * 1024;
    const data = bytesOf(64 * 1024, 3);
    const receiver = createFileReceiver();
    const received = collect(receiver);
    const channel = new ManualChannel((frame) => receiver.receive(frame));
    const { file, slices } = recordingFile(data);
    const sender = createFileSender(channel, { chunkBytes, highWaterMark });
    const transfer = sender.send(file, 'big.bin');
    const flag = settledFlag(transfer.done);

    await until(() => channel.pending > highWaterMark, 'the sender to fill the channel');
    await ticks(20);
    const stalledAt = channel.frames.length;
    const calls = channel.pendingCalls;
    await ticks(50);
    // Paused: nothing sent, nothing read ahead, pendingBytes() not polled, one listener waiting.
    expect(channel.frames.length).toBe(stalledAt);
    expect(channel.pendingCalls).toBe(calls);
    expect(channel.listenerCount).toBe(1);
    expect(slices).toHaveLength(channel.frames.filter((frame) => typeof frame !== 'string').length);
    expect(channel.maxPending).toBeLessThanOrEqual(highWaterMark + chunkBytes);
    expect(flag.settled).toBe(false);

    let drains = 0;
    while (!flag.settled) {
      drains += 1;
      if (drains > 1000) throw new Error('the sender did not resume');
      const before = channel.frames.length;
      channel.deliver(2);
      await until(() => flag.settled || channel.pending > highWaterMark, 'the sender to refill the channel');
      if (!flag.settled) expect(channel.frames.length).toBeGreaterThan(before);
    }
    channel.deliver();
    await transfer.done;

    expect(drains).toBeGreaterThan(10);
    expect(channel.maxPending).toBeLessThanOrEqual(highWaterMark + chunkBytes);
    expect(channel.listenerCount).toBe(0);
    // Read in slices of at most one chunk, each once, in order.
    expect(slices.every(([start, end], i) => end - start <= chunkBytes && start === (slices[i - 1]?.[1] ?? 0))).toBe(true);
    expect(slices.at(-1)?.[1]).toBe(data.length);
    const complete = ofType(received.events, 'complete');
    expect(complete).toHaveLength(1);
    expect(firstDifference(await bytesOfBlob(complete[0]!.blob), data)).toBe(-1);
  });
});

describe('sender queue, cancel, failures', () => {
  it('sends two queued files one after the other, in order', async () => {
    const receiver = createFileReceiver();
    const received = collect(receiver);
    const channel = new ManualChannel((frame) => receiver.receive(frame));
    const sender = createFileSender(channel, { chunkBytes: 1000, highWaterMark: 3000 });
    const first = bytesOf(25_000, 1);
    const second = bytesOf(17_000, 2);
    const a = sender.send(new Blob([first], { type: 'image/png' }), 'a.png');
    const b = sender.send(new Blob([second]), 'b.txt');
    expect(a.id).not.toBe(b.id);
    const bFlag = settledFlag(b.done);
    let aDoneWhenBStarted: boolean | null = null;
    const aFlag = settledFlag(a.done);
    for (let i = 0; !bFlag.settled; i += 1) {
      if (i > 10_000) throw new Error('no progress');
      await macrotask();
      if (aDoneWhenBStarted === null && channel.frames.some((frame) => describeFrame(frame).id === b.id)) aDoneWhenBStarted = aFlag.settled;
      channel.deliver(3);
    }
    channel.deliver();
    await Promise.all([a.done, b.done]);

    expect(aDoneWhenBStarted).toBe(true);
    const ids = channel.frames.map(describeFrame).filter((frame) => frame.type !== 'binary');
    expect(ids).toEqual([
      { type: 'file-start', id: a.id, name: 'a.png', size: first.length, mime: 'image/png' },
      { type: 'file-end', id: a.id },
      { type: 'file-start', id: b.id, name: 'b.txt', size: second.length, mime: '' },
      { type: 'file-end', id: b.id },
    ]);
    const complete = ofType(received.events, 'complete');
    expect(complete.map((event) => [event.id, event.name, event.mime])).toEqual([
      [a.id, 'a.png', 'image/png'],
      [b.id, 'b.txt', ''],
    ]);
    expect(firstDifference(await bytesOfBlob(complete[0]!.blob), first)).toBe(-1);
    expect(firstDifference(await bytesOfBlob(complete[1]!.blob), second)).toBe(-1);
  });

  it('cancel mid-transfer: file-cancel goes out at once, the receiver reports cancelled, the next file still arrives', async () => {
    const receiver = createFileReceiver();
    const received = collect(receiver);
    const channel = new ManualChannel((frame) => receiver.receive(frame));
    const sender = createFileSender(channel, { chunkBytes: 1000, highWaterMark: 2000 });
    const first = sender.send(new Blob([bytesOf(50_000)]), 'first.bin');
    const progress = watchProgress(first);
    // Let a few chunks through, then leave the sender paused on a full channel.
    for (let i = 0; i < 3; i += 1) {
      await until(() => channel.pending > 2000, 'the channel to fill');
      channel.deliver();
    }
    await until(() => channel.pending > 2000, 'the channel to fill');
    expect(ofType(received.events, 'progress').length).toBeGreaterThan(2);

    first.cancel();
    // Cancelled without waiting for the channel to drain.
    const error = await rejectionOf(first.done);
    expect(error).toMatchObject({ code: 'cancelled', transferId: first.id });
    expect(describeFrame(channel.frames.at(-1)!)).toEqual({ type: 'file-cancel', id: first.id });
    expect(progress.completed.value).toBe(true);
    expect(progress.values.some((value) => value.done)).toBe(false);
    first.cancel(); // idempotent

    const second = sender.send(new Blob([bytesOf(5000, 9)]), 'second.bin');
    await flow(channel, second);
    await second.done;

    // Nothing of the first transfer after its file-cancel.
    const frames = channel.frames.map(describeFrame);
    const cancelAt = frames.findIndex((frame) => frame.type === 'file-cancel');
    expect(frames[cancelAt + 1]).toMatchObject({ type: 'file-start', id: second.id });
    expect(frames.filter((frame) => frame.type === 'file-cancel')).toHaveLength(1);

    const errors = errorsOf(received.events);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'cancelled', transferId: first.id });
    const complete = ofType(received.events, 'complete');
    expect(complete.map((event) => event.id)).toEqual([second.id]);
    expect(firstDifference(await bytesOfBlob(complete[0]!.blob), bytesOf(5000, 9))).toBe(-1);
  });

  it('cancelling a queued transfer sends nothing for it', async () => {
    const channel = new ManualChannel();
    const sender = createFileSender(channel, { chunkBytes: 1000, highWaterMark: 1000 });
    const running = sender.send(new Blob([bytesOf(10_000)]), 'running.bin');
    const queued = sender.send(new Blob([bytesOf(10_000)]), 'queued.bin');
    const progress = watchProgress(queued);
    queued.cancel();
    expect(await rejectionOf(queued.done)).toMatchObject({ code: 'cancelled', transferId: queued.id });
    expect(progress.completed.value).toBe(true);
    await flow(channel, running);
    await running.done;
    await ticks(5);
    expect(channel.frames.map(describeFrame).some((frame) => frame.id === queued.id)).toBe(false);
  });

  it('cancelling a transfer that waits for room before its file-start stops listening to the channel at once', async () => {
    const channel = new ManualChannel();
    const sender = createFileSender(channel, { highWaterMark: 0 });
    const first = sender.send(new Blob([bytesOf(10)]), 'first.bin');
    const firstFlag = settledFlag(first.done);
    await until(() => {
      if (firstFlag.settled) return true;
      channel.deliver();
      return false;
    }, 'the first file handed over');
    expect(channel.pending).toBeGreaterThan(0);
    // first's file-end is still pending, so second waits before announcing itself.
    const second = sender.send(new Blob([bytesOf(10)]), 'second.bin');
    await ticks(5);
    expect(channel.listenerCount).toBe(1);
    second.cancel();
    expect(channel.listenerCount).toBe(0);
    expect(await rejectionOf(second.done)).toMatchObject({ code: 'cancelled' });
    expect(channel.frames.map(describeFrame).some((frame) => frame.id === second.id)).toBe(false);
  });

  it('a file that cannot be read: file-cancel, done rejects read-failed, the next file still goes', async () => {
    const receiver = createFileReceiver();
    const received = collect(receiver);
    const channel = new ManualChannel((frame) => receiver.receive(frame));
    const sender = createFileSender(channel, { chunkBytes: 1000 });
    const broken = sender.send(recordingFile(bytesOf(5000), { failFrom: 2000 }).file, 'broken.bin');
    const edited = sender.send(recordingFile(bytesOf(5000), { shortFrom: 3000 }).file, 'edited.bin');
    const fine = sender.send(new Blob([bytesOf(3000, 5)]), 'fine.bin');
    await flow(channel, fine);

    const brokenError = await rejectionOf(broken.done);
    expect(brokenError).toMatchObject({ code: 'read-failed', transferId: broken.id });
    expect(brokenError.cause).toMatchObject({ name: 'NotReadableError' });
    expect(await rejectionOf(edited.done)).toMatchObject({ code: 'read-failed', transferId: edited.id });
    await fine.done;

    const frames = channel.frames.map(describeFrame);
    expect(frames.filter((frame) => frame.id === broken.id).map((frame) => frame.type)).toEqual(['file-start', 'file-cancel']);
    expect(frames.filter((frame) => frame.id === edited.id).map((frame) => frame.type)).toEqual(['file-start', 'file-cancel']);
    // Two chunks of `broken` and three of `edited` went out before their reads failed.
    expect(frames.filter((frame) => frame.type === 'binary')).toHaveLength(2 + 3 + 3);
    expect(errorsOf(received.events).map((error) => [error.code, error.transferId])).toEqual([
      ['cancelled', broken.id],
      ['cancelled', edited.id],
    ]);
    expect(ofType(received.events, 'complete').map((event) => event.id)).toEqual([fine.id]);
  });

  it('close() cancels the running and the queued transfers; later sends fail with channel-closed', async () => {
    const channel = new ManualChannel();
    const sender = createFileSender(channel, { chunkBytes: 1000, highWaterMark: 1000 });
    const running = sender.send(new Blob([bytesOf(10_000)]), 'running.bin');
    const queued = sender.send(new Blob([bytesOf(10_000)]), 'queued.bin');
    await until(() => channel.pending > 1000, 'the channel to fill');

    sender.close();
    expect(await rejectionOf(running.done)).toMatchObject({ code: 'cancelled', transferId: running.id });
    expect(await rejectionOf(queued.done)).toMatchObject({ code: 'cancelled', transferId: queued.id });
    expect(describeFrame(channel.frames.at(-1)!)).toEqual({ type: 'file-cancel', id: running.id });
    expect(channel.listenerCount).toBe(0);

    const count = channel.frames.length;
    const late = sender.send(new Blob([bytesOf(10)]), 'late.bin');
    expect(await rejectionOf(late.done)).toMatchObject({ code: 'channel-closed' });
    channel.deliver();
    await ticks(10);
    expect(channel.frames).toHaveLength(count);
  });

  it('a channel that refuses frames fails the transfer with channel-closed, and no cancel is attempted on it', async () => {
    const sent: Frame[] = [];
    let attempts = 0;
    const channel: FileChannel = {
      send(data) {
        attempts += 1;
        if (sent.length === 3) throw new Error('InvalidStateError: not open');
        sent.push(data);
      },
      pendingBytes: () => 0,
      onPendingChange: () => () => undefined,
    };
    const sender = createFileSender(channel, { chunkBytes: 100 });
    const transfer = sender.send(new Blob([bytesOf(1000)]), 'x.bin');
    expect(await rejectionOf(transfer.done)).toMatchObject({ code: 'channel-closed', transferId: transfer.id });
    expect(sent.map(describeFrame).map((frame) => frame.type)).toEqual(['file-start', 'binary', 'binary']);
    expect(attempts).toBe(4);
  });

  it('refuses a file above MAX_FILE_BYTES before sending anything, and sanitizes the offered name', async () => {
    const channel = new ManualChannel();
    const sender = createFileSender(channel);
    const huge = { size: MAX_FILE_BYTES + 1, type: '', slice: () => new Blob() } as unknown as Blob;
    const transfer = sender.send(huge, 'huge.iso');
    expect(await rejectionOf(transfer.done)).toMatchObject({ code: 'too-large', transferId: transfer.id });

    const named = sender.send(new Blob([bytesOf(3)]), '../secret/\u0007report.pdf');
    expect(named.name).toBe('..secretreport.pdf');
    await flow(channel, named);
    expect(describeFrame(channel.frames[0]!)).toMatchObject({ type: 'file-start', name: '..secretreport.pdf' });
  });

  it('uses createId for transfer ids', async () => {
    const channel = new ManualChannel();
    let n = 0;
    const sender = createFileSender(channel, { createId: () => `t${++n}` });
    const transfer = sender.send(new Blob([bytesOf(1)]), 'one');
    expect(transfer.id).toBe('t1');
    await flow(channel, transfer);
    expect(channel.frames.map(describeFrame).map((frame) => frame.id)).toEqual(['t1', undefined, 't1']);
  });
});

describe('receiver validation', () => {
  const start = (id: string, size: unknown, name: unknown = 'a.bin', mime: unknown = 'application/octet-stream'): string =>
    JSON.stringify({ type: 'file-start', id, name, size, mime });
  const end = (id: string): string => JSON.stringify({ type: 'file-end', id });
  const cancel = (id: string): string => JSON.stringify({ type: 'file-cancel', id });
  const bin = (length: number, fill = 0xee): ArrayBuffer => new Uint8Array(length).fill(fill).buffer;

  const good = bytesOf(5, 42);
  const goodTransfer: Frame[] = [start('good', 5, 'good.txt', 'text/plain'), good.slice(0, 3).buffer, good.slice(3).buffer, end('good')];

  /** Feeds `frames`, then a good transfer; returns the errors and checks the good one arrived intact. */
  async function feed(frames: readonly Frame[], options: { readonly maxBytes?: number } = {}): Promise<FileTransferError[]> {
    const receiver = createFileReceiver(options);
    const { events } = collect(receiver);
    for (const frame of [...frames, ...goodTransfer]) expect(() => receiver.receive(frame)).not.toThrow();
    const complete = ofType(events, 'complete');
    expect(complete.map((event) => [event.id, event.name, event.mime, event.size])).toEqual([['good', 'good.txt', 'text/plain', 5]]);
    expect(firstDifference(await bytesOfBlob(complete[0]!.blob), good)).toBe(-1);
    return errorsOf(events);
  }

  it('a good transfer alone raises no error', async () => {
    expect(await feed([])).toEqual([]);
  });

  it.each<[string, Frame[], FileTransferError['code'], string | null]>([
    ['text that is not JSON', ['{"type":"file-start",'], 'protocol', null],
    ['JSON that is not an object', ['[1,2]'], 'protocol', null],
    ['JSON null', ['null'], 'protocol', null],
    ['an unknown frame type', [JSON.stringify({ type: 'file-chunk', id: 'x' })], 'protocol', null],
    ['a frame without an id', [JSON.stringify({ type: 'file-end' })], 'protocol', null],
    ['an over-long text frame', ['x'.repeat(100_000)], 'protocol', null],
    ['binary frames with no transfer in progress', [bin(4), bin(4), bin(4)], 'protocol', null],
    ['file-end with no transfer in progress', [end('nope')], 'protocol', 'nope'],
    ['file-cancel with no transfer in progress', [cancel('nope')], 'protocol', 'nope'],
    ['a file-start while one is running', [start('a', 10), bin(4)], 'protocol', 'a'],
    ['a name that is not a string', [start('a', 4, 42), bin(4), end('a')], 'protocol', 'a'],
    ['an empty name', [start('a', 4, ''), bin(4), end('a')], 'protocol', 'a'],
    ['a name of only blanks, separators and control characters', [start('a', 4, ' /\\\n\u0000 '), bin(4), end('a')], 'protocol', 'a'],
    ['a negative size', [start('a', -1), end('a')], 'protocol', 'a'],
    ['a fractional size', [start('a', 1.5), bin(1), end('a')], 'protocol', 'a'],
    ['a size given as a string', [start('a', '4'), bin(4), end('a')], 'protocol', 'a'],
    ['a size above 2^53', [start('a', 2 ** 53), bin(4), end('a')], 'protocol', 'a'],
    ['a missing size', [start('a', undefined), bin(4), end('a')], 'protocol', 'a'],
    ['a mime type that is not a string', [start('a', 4, 'a.bin', null), bin(4), end('a')], 'protocol', 'a'],
    ['a size above maxBytes, with its chunks still coming', [start('a', 101), bin(100), bin(1), end('a')], 'too-large', 'a'],
    ['more bytes than announced', [start('a', 3), bin(2), bin(2), end('a')], 'size-mismatch', 'a'],
    // Refused at the frame that overflows, not at file-end: the next file-start is then no interruption.
    ['more bytes than announced, and no file-end', [start('a', 3), bin(2), bin(2), bin(2)], 'size-mismatch', 'a'],
    ['file-end before all the bytes came', [start('a', 10), bin(4), end('a')], 'size-mismatch', 'a'],
    ['file-end for another transfer', [start('a', 10), bin(4), end('b')], 'protocol', 'a'],
    ['a garbled frame in the middle of a transfer', [start('a', 10), bin(4), 'garbage', bin(6), end('a')], 'protocol', 'a'],
    ['file-cancel from the sender', [start('a', 10), bin(4), cancel('a')], 'cancelled', 'a'],
  ])('%s: one typed error, the partial data is dropped, the next transfer arrives', async (_label, frames, code, transferId) => {
    const errors = await feed(frames, { maxBytes: 100 });
    expect(errors.map((error) => [error.code, error.transferId])).toEqual([[code, transferId]]);
    expect(errors[0]).toBeInstanceOf(FileTransferError);
    expect(errors[0]!.name).toBe('FileTransferError');
    expect(errors[0]!.message.length).toBeGreaterThan(10);
  });

  it('accepts a file of exactly maxBytes', () => {
    const receiver = createFileReceiver({ maxBytes: 4 });
    const { events } = collect(receiver);
    for (const frame of [start('a', 4), bin(4), end('a')]) receiver.receive(frame);
    expect(ofType(events, 'complete').map((event) => event.size)).toEqual([4]);
  });

  it('strips path separators and control characters from names, and caps them at 255 code points', () => {
    expect(sanitizeFileName('  ../../etc/pass\u0000wd\n ')).toBe('....etcpasswd');
    expect(sanitizeFileName('C:\\Users\\me\\photo.jpg')).toBe('C:Usersmephoto.jpg');
    expect(sanitizeFileName('\u202eevil\u0085.txt')).toBe('\u202eevil.txt');
    expect(sanitizeFileName('..')).toBe('');
    expect(sanitizeFileName('.bashrc')).toBe('.bashrc');
    const long = sanitizeFileName('😀'.repeat(300));
    expect(Array.from(long)).toHaveLength(255);
    expect(long).toBe('😀'.repeat(255));

    const receiver = createFileReceiver();
    const { events } = collect(receiver);
    receiver.receive(start('n', 0, `../${'x'.repeat(400)}\u0001`, 'IMAGE/PNG'));
    expect(events[0]).toEqual({ type: 'start', id: 'n', name: `..${'x'.repeat(253)}`, size: 0, mime: 'image/png' });
  });

  it('close() mid-transfer reports channel-closed and completes events$; later frames are ignored', () => {
    const receiver = createFileReceiver();
    const { events, completed } = collect(receiver);
    receiver.receive(start('a', 10));
    receiver.receive(bin(4));
    receiver.close();
    expect(errorsOf(events).map((error) => [error.code, error.transferId])).toEqual([['channel-closed', 'a']]);
    expect(completed.value).toBe(true);
    expect(() => receiver.receive(bin(6))).not.toThrow();
    receiver.close();
    expect(errorsOf(events)).toHaveLength(1);
  });

  it('close() between transfers reports nothing', () => {
    const receiver = createFileReceiver();
    const { events, completed } = collect(receiver);
    receiver.close();
    expect(events).toEqual([]);
    expect(completed.value).toBe(true);
  });
});

// The adapter over core's data channel handle and its machine, two peers on core's fake network: frames go
// through the machine's send queue and the fake SCTP association (one message per macrotask).
describe('fileChannelOf over core data channel handles', () => {
  const peers: Peer[] = [];
  afterEach(() => {
    for (const peer of peers.splice(0)) peer.close();
  });

  async function openFilesChannel() {
    const network = createFakeNetwork();
    const [sigA, sigB] = createSignalingPair();
    const a = createPeer({ rtc: network.createPort({ name: 'A' }), signaling: sigA, polite: false });
    const b = createPeer({ rtc: network.createPort({ name: 'B' }), signaling: sigB, polite: true });
    peers.push(a, b);
    const receiver = createFileReceiver();
    const received = collect(receiver);
    let remote: DataChannel | null = null;
    b.events$.subscribe((event) => {
      if (event.type === 'datachannel' && event.label === 'files') remote = event.channel;
      if (event.type === 'message' && event.label === 'files') receiver.receive(event.data);
    });
    const local = a.createDataChannel('files', { ordered: true });
    const isOpen = (channel: DataChannel | null): boolean => channel?.readyState === 'open';
    await until(() => isOpen(local) && isOpen(remote), 'the files channel open on both sides', 20_000);
    return { a, b, local, received };
  }

  it('carries a file larger than the machine high-water mark, byte for byte, within the sender mark', async () => {
    const { local, received } = await openFilesChannel();
    const channel = fileChannelOf(local);
    let maxPending = 0;
    const watched: FileChannel = {
      send(data) {
        channel.send(data);
        maxPending = Math.max(maxPending, channel.pendingBytes());
      },
      pendingBytes: () => channel.pendingBytes(),
      onPendingChange: (listener) => channel.onPendingChange(listener),
    };
    const highWaterMark = 256 * 1024;
    const sender = createFileSender(watched, { highWaterMark });
    const data = bytesOf(1536 * 1024, 11);
    const transfer = sender.send(new Blob([data], { type: 'video/webm' }), 'clip.webm');
    await transfer.done;
    await until(() => ofType(received.events, 'complete').length > 0 || errorsOf(received.events).length > 0, 'the file on B', 50_000);

    expect(errorsOf(received.events)).toEqual([]);
    const [complete] = ofType(received.events, 'complete');
    expect(complete).toMatchObject({ id: transfer.id, name: 'clip.webm', mime: 'video/webm', size: data.length });
    expect(firstDifference(await bytesOfBlob(complete!.blob), data)).toBe(-1);
    // The mark held, and was reached: the sender really did wait for the channel to drain.
    expect(maxPending).toBeLessThanOrEqual(highWaterMark + FILE_CHUNK_BYTES);
    expect(maxPending).toBeGreaterThan(highWaterMark);
    expect(local.actor.getSnapshot().context.queue.sentBytes).toBeGreaterThanOrEqual(data.length);
  });

  it('a closed channel fails the transfer with channel-closed instead of waiting forever', async () => {
    const { a, local, received } = await openFilesChannel();
    const sender = createFileSender(fileChannelOf(local), { highWaterMark: 64 * 1024 });
    const transfer = sender.send(new Blob([bytesOf(1024 * 1024)]), 'cut.bin');
    await until(() => ofType(received.events, 'progress').length > 0, 'the first bytes on B', 20_000);
    a.close();
    expect(await rejectionOf(transfer.done)).toMatchObject({ code: 'channel-closed', transferId: transfer.id });
  });
});
