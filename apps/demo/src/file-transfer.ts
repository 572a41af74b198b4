import { ReplaySubject, Subject, merge } from 'rxjs';
import type { Observable } from 'rxjs';
import { DataChannelClosedError } from '@parley/core';
import type { DataChannel } from '@parley/core';

// Files over the `files` data channel (ordered, reliable), one transfer at a time per direction:
//
//   text   {"type":"file-start","id","name","size","mime"}
//   binary the file's bytes in order, at most FILE_CHUNK_BYTES per frame
//   text   {"type":"file-end","id"}            or, when the sender gives up,
//   text   {"type":"file-cancel","id"}
//
// The channel is ordered, so frames need no sequence numbers: a binary frame belongs to the
// transfer whose file-start came last. The receiver trusts nothing (the peer may be anyone in
// the room), and a bad frame costs only the transfer it belongs to, never the channel.

/**
 * Bytes per binary frame. RFC 8831 §6.6: without user message interleaving (RFC 8260) one large
 * message holds up every other channel of the association, and a peer need not accept arbitrarily
 * large messages (webrtc-pc §6.2 send() throws above the remote's maxMessageSize). 16 KiB is the
 * size every engine has accepted.
 */
export const FILE_CHUNK_BYTES = 16 * 1024;

/**
 * The sender reads the next slice only while pendingBytes() is at or below this. webrtc-pc §6.2
 * send() throws OperationError once the transport cannot queue more (some engines close the
 * channel instead), and everything queued counts in `bufferedAmount`: a sender that does not
 * watch it reads the whole file into memory and then loses the channel.
 */
export const DEFAULT_SENDER_HIGH_WATER_MARK = 1024 * 1024;

/** Larger offers are refused: the receiver holds a transfer in memory until it completes. */
export const MAX_FILE_BYTES = 2 * 1024 * 1024 * 1024;

/** Longest file name kept, in code points (what common file systems allow). */
const MAX_NAME_LENGTH = 255;
/** Longest transfer id accepted; ours are about 20 characters. */
const MAX_ID_LENGTH = 128;
/** Longest MIME type kept; anything longer is not one a browser produced. */
const MAX_MIME_LENGTH = 255;
/** A control frame is a few hundred bytes (a long name is capped, not refused); far larger is not parsed at all. */
const MAX_CONTROL_FRAME_LENGTH = 64 * 1024;

export type FileTransferErrorCode = 'protocol' | 'too-large' | 'size-mismatch' | 'cancelled' | 'read-failed' | 'channel-closed';

export class FileTransferError extends Error {
  override readonly name = 'FileTransferError';

  constructor(
    readonly code: FileTransferErrorCode,
    message: string,
    /** The transfer the error ends, when the frame named one. */
    readonly transferId: string | null = null,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The `files` data channel as a transfer needs it. */
export interface FileChannel {
  /** Hands a frame to the channel's send queue (never throws for a full buffer). */
  send(data: string | ArrayBuffer): void;
  /** Bytes handed to send() and not yet on the wire (queued + the channel's bufferedAmount). */
  pendingBytes(): number;
  /** Calls back whenever pendingBytes() may have changed; returns an unsubscribe function. */
  onPendingChange(listener: () => void): () => void;
}

/**
 * A FileChannel over core's data channel handle, whose send queue already holds back what does not
 * fit under the machine's high-water mark. Pending bytes are the handle's `bufferedAmount` (its
 * queue + the channel's own buffer). The sender is woken on `bufferedAmountLow$` (webrtc-pc §6.2:
 * fired when the buffer drains *across* the threshold, the machine's low-water mark, 128 KiB by
 * default) and on every readyState change, so a sender must not pause below that mark or it could
 * wait for an event that never comes; the default 1 MiB is well above it.
 */
export function fileChannelOf(channel: DataChannel): FileChannel {
  const isGone = (): boolean => channel.readyState === 'closing' || channel.readyState === 'closed';
  return {
    send(data) {
      try {
        channel.send(data);
      } catch (error) {
        // The sender needs to know the channel is gone, as a transfer error.
        if (error instanceof DataChannelClosedError) {
          throw new FileTransferError('channel-closed', `the "${channel.label}" data channel is closed`, null, { cause: error });
        }
        throw error;
      }
    },
    // A closing or closed channel has dropped its queue (each payload reported on unsent$), so
    // nothing is pending: a paused sender wakes, sends, and learns that the channel is gone.
    pendingBytes: () => (isGone() ? 0 : channel.bufferedAmount),
    onPendingChange(listener) {
      const subscription = merge(channel.bufferedAmountLow$, channel.state$).subscribe({ next: () => listener(), complete: listener });
      return () => subscription.unsubscribe();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Frames

type ControlFrame =
  | { readonly type: 'file-start'; readonly id: string; readonly name: string; readonly size: number; readonly mime: string }
  | { readonly type: 'file-end'; readonly id: string }
  | { readonly type: 'file-cancel'; readonly id: string };

function encodeFrame(frame: ControlFrame): string {
  return JSON.stringify(frame);
}

/**
 * The name a file is offered and saved under, or '' when nothing is left: no path (a name like
 * `../../.bashrc` must not pick its folder), no control characters (they spoof what the page
 * shows), at most 255 code points.
 */
export function sanitizeFileName(name: string): string {
  // eslint-disable-next-line no-control-regex
  const cleaned = name.replace(/[/\\\u0000-\u001f\u007f-\u009f]/g, '').trim();
  const capped = Array.from(cleaned).slice(0, MAX_NAME_LENGTH).join('').trim();
  // `.` and `..` are path components, not names.
  return /^\.+$/.test(capped) ? '' : capped;
}

/**
 * The MIME type the download is labelled with, or '' for "unknown". The Blob constructor already
 * turns a type with non-printable characters into ''; a type without `/` is no MIME type at all.
 */
function normalizeMime(mime: string): string {
  const trimmed = mime.trim().toLowerCase();
  return trimmed.length <= MAX_MIME_LENGTH && /^[\x20-\x7e]+$/.test(trimmed) && trimmed.includes('/') ? trimmed : '';
}

type ParsedFrame = { readonly ok: true; readonly frame: ControlFrame } | { readonly ok: false; readonly error: FileTransferError };

const refuse = (code: FileTransferErrorCode, message: string, id: string | null = null): ParsedFrame => ({
  ok: false,
  error: new FileTransferError(code, message, id),
});

function parseControlFrame(text: string, maxBytes: number): ParsedFrame {
  if (text.length > MAX_CONTROL_FRAME_LENGTH) return refuse('protocol', `text frame of ${text.length} characters is too long for a control frame`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return refuse('protocol', 'text frame is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return refuse('protocol', 'text frame is not a JSON object');
  const record = value as Record<string, unknown>;
  const type = record['type'];
  if (type !== 'file-start' && type !== 'file-end' && type !== 'file-cancel') {
    return refuse('protocol', `unknown frame type ${JSON.stringify(type) ?? 'undefined'}`);
  }
  const id = record['id'];
  if (typeof id !== 'string' || id === '' || id.length > MAX_ID_LENGTH) {
    return refuse('protocol', `${type} frame needs an id of 1 to ${MAX_ID_LENGTH} characters`);
  }
  if (type !== 'file-start') return { ok: true, frame: { type, id } };

  const name = record['name'];
  const size = record['size'];
  const mime = record['mime'];
  const safeName = typeof name === 'string' ? sanitizeFileName(name) : '';
  if (safeName === '') return refuse('protocol', 'file-start needs a file name (a non-empty string)', id);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    return refuse('protocol', `file-start size ${JSON.stringify(size) ?? 'undefined'} is not a whole number of bytes`, id);
  }
  if (size > maxBytes) return refuse('too-large', `"${safeName}" is ${size} bytes; files of more than ${maxBytes} bytes are refused`, id);
  if (typeof mime !== 'string') return refuse('protocol', 'file-start mime must be a string (empty when unknown)', id);
  return { ok: true, frame: { type, id, name: safeName, size, mime: normalizeMime(mime) } };
}

function isArrayBuffer(data: unknown): data is ArrayBuffer {
  return data instanceof ArrayBuffer || Object.prototype.toString.call(data) === '[object ArrayBuffer]';
}

// ---------------------------------------------------------------------------------------------
// Sender

export interface TransferProgress {
  readonly id: string;
  readonly name: string;
  readonly size: number;
  /** Bytes handed to the channel. */
  readonly bytes: number;
  /** True on the last value only, once file-end is handed to the channel. */
  readonly done: boolean;
}

export interface OutgoingTransfer {
  readonly id: string;
  /** The name as offered to the peer (sanitized like the receiver does it). */
  readonly name: string;
  readonly size: number;
  /**
   * Replays the latest value. Completes after the `done: true` value, or without one when the
   * transfer fails or is cancelled (`done` says why).
   */
  readonly progress$: Observable<TransferProgress>;
  /** Resolves when the last frame is handed to the channel; rejects with FileTransferError. */
  readonly done: Promise<void>;
  /** Sends file-cancel if the peer was told about the file; `done` rejects with 'cancelled'. */
  cancel(): void;
}

export interface FileSender {
  send(file: Blob, name: string): OutgoingTransfer;
  /** Cancels the running and queued transfers (e.g. call ended); later sends fail with 'channel-closed'. */
  close(): void;
}

export interface FileSenderOptions {
  readonly chunkBytes?: number;
  readonly highWaterMark?: number;
  readonly createId?: () => string;
}

/** One outgoing file; `phase` is the whole lifecycle, the rest is what it needs. */
interface Outgoing {
  readonly id: string;
  readonly name: string;
  readonly mime: string;
  readonly file: Blob;
  readonly progress: ReplaySubject<TransferProgress>;
  readonly resolve: () => void;
  readonly reject: (error: FileTransferError) => void;
  phase: 'queued' | 'running' | 'finished';
  /** Whether file-start went out, so the peer must be told if it ends early. */
  announced: boolean;
  /** Re-checks a pause for room, so that cancel() does not wait for the channel to drain. */
  wake: (() => void) | null;
}

let idCounter = 0;

/** Unique per sender and good enough across reloads; crypto.randomUUID needs a secure context. */
function defaultId(): string {
  idCounter += 1;
  return `${Date.now().toString(36)}-${idCounter.toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

function positiveInteger(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`${what} must be a positive integer, got ${value}`);
  return value;
}

export function createFileSender(channel: FileChannel, options: FileSenderOptions = {}): FileSender {
  const chunkBytes = positiveInteger(options.chunkBytes ?? FILE_CHUNK_BYTES, 'chunkBytes');
  const highWaterMark = options.highWaterMark ?? DEFAULT_SENDER_HIGH_WATER_MARK;
  if (!(highWaterMark >= 0)) throw new RangeError(`highWaterMark must be at least 0, got ${highWaterMark}`);
  const createId = options.createId ?? defaultId;
  const queue: Outgoing[] = [];
  let running: Outgoing | null = null;
  let closed = false;

  // A function, not a property read: TypeScript would keep a narrowed `phase` across awaits.
  const isRunning = (job: Outgoing): boolean => job.phase === 'running';

  const progressOf = (job: Outgoing, bytes: number, done: boolean): TransferProgress => ({
    id: job.id,
    name: job.name,
    size: job.file.size,
    bytes,
    done,
  });

  const finish = (job: Outgoing, error?: FileTransferError): void => {
    if (job.phase === 'finished') return;
    const wasQueued = job.phase === 'queued';
    job.phase = 'finished';
    if (wasQueued && queue.includes(job)) queue.splice(queue.indexOf(job), 1);
    job.wake?.();
    if (error) {
      if (job.announced && error.code !== 'channel-closed') {
        try {
          channel.send(encodeFrame({ type: 'file-cancel', id: job.id }));
        } catch {
          // The channel is gone: so is the peer's partial file.
        }
      }
      job.progress.complete();
      job.reject(error);
    } else {
      job.progress.next(progressOf(job, job.file.size, true));
      job.progress.complete();
      job.resolve();
    }
  };

  /** Resolves once pendingBytes() is at or below the mark, or the job was finished meanwhile. */
  const roomFor = (job: Outgoing): Promise<void> => {
    if (channel.pendingBytes() <= highWaterMark) return Promise.resolve();
    return new Promise((resolve) => {
      let settled = false;
      let unsubscribe: (() => void) | null = null;
      const check = (): void => {
        if (settled || (isRunning(job) && channel.pendingBytes() > highWaterMark)) return;
        settled = true;
        job.wake = null;
        unsubscribe?.();
        resolve();
      };
      job.wake = check;
      unsubscribe = channel.onPendingChange(check);
      // The listener may have fired during onPendingChange, before `unsubscribe` was set.
      if (settled) unsubscribe();
    });
  };

  const read = async (job: Outgoing, start: number, end: number): Promise<ArrayBuffer> => {
    let bytes: ArrayBuffer;
    try {
      bytes = await job.file.slice(start, end).arrayBuffer();
    } catch (error: unknown) {
      throw new FileTransferError('read-failed', `could not read "${job.name}": ${String(error)}`, job.id, { cause: error });
    }
    // A File edited on disk after it was picked reads short (or fails) in some engines.
    if (bytes.byteLength !== end - start) {
      throw new FileTransferError('read-failed', `"${job.name}" changed while it was being sent`, job.id);
    }
    return bytes;
  };

  const hand = (job: Outgoing, data: string | ArrayBuffer): void => {
    try {
      channel.send(data);
    } catch (error: unknown) {
      throw error instanceof FileTransferError && error.code === 'channel-closed'
        ? new FileTransferError('channel-closed', error.message, job.id, { cause: error })
        : new FileTransferError('channel-closed', `the channel refused a frame of "${job.name}": ${String(error)}`, job.id, { cause: error });
    }
  };

  /** Each await is followed by isRunning(): a cancel() meanwhile has already told the peer. */
  const transfer = async (job: Outgoing): Promise<void> => {
    job.phase = 'running';
    const size = job.file.size;
    try {
      await roomFor(job);
      if (!isRunning(job)) return;
      hand(job, encodeFrame({ type: 'file-start', id: job.id, name: job.name, size, mime: job.mime }));
      job.announced = true;
      for (let offset = 0; offset < size; ) {
        await roomFor(job);
        if (!isRunning(job)) return;
        const end = Math.min(offset + chunkBytes, size);
        const chunk = await read(job, offset, end);
        if (!isRunning(job)) return;
        hand(job, chunk);
        offset = end;
        // The last chunk's progress is the done value below, so there is one value per chunk.
        if (offset < size) job.progress.next(progressOf(job, offset, false));
      }
      await roomFor(job);
      if (!isRunning(job)) return;
      hand(job, encodeFrame({ type: 'file-end', id: job.id }));
      finish(job);
    } catch (error: unknown) {
      finish(
        job,
        // Reads and sends wrap their own errors; anything else came from the channel's bookkeeping.
        error instanceof FileTransferError ? error : new FileTransferError('channel-closed', `sending "${job.name}" failed: ${String(error)}`, job.id, { cause: error }),
      );
    }
  };

  /** Runs the queue one transfer at a time; `running` is set for as long as the loop runs. */
  const pump = async (): Promise<void> => {
    for (let job = queue.shift(); job !== undefined; job = queue.shift()) {
      running = job;
      await transfer(job);
    }
    running = null;
  };

  return {
    send(file, name) {
      let resolve!: () => void;
      let reject!: (error: FileTransferError) => void;
      const done = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      // Ending a call cancels every transfer; a page that does not await `done` must not see
      // that as an unhandled rejection. Callers that do await it still get the rejection.
      done.catch(() => undefined);
      const job: Outgoing = {
        id: createId(),
        name: sanitizeFileName(name) || 'file',
        mime: normalizeMime(file.type),
        file,
        progress: new ReplaySubject<TransferProgress>(1),
        resolve,
        reject,
        phase: 'queued',
        announced: false,
        wake: null,
      };
      job.progress.next(progressOf(job, 0, false));
      queue.push(job);
      if (closed) {
        finish(job, new FileTransferError('channel-closed', `cannot send "${job.name}": the file sender is closed`, job.id));
      } else if (file.size > MAX_FILE_BYTES) {
        finish(job, new FileTransferError('too-large', `"${job.name}" is ${file.size} bytes; at most ${MAX_FILE_BYTES} can be sent`, job.id));
      } else if (running === null) {
        void pump();
      }
      return {
        id: job.id,
        name: job.name,
        size: file.size,
        progress$: job.progress.asObservable(),
        done,
        cancel: () => finish(job, new FileTransferError('cancelled', `sending "${job.name}" was cancelled`, job.id)),
      };
    },
    close() {
      closed = true;
      for (const job of [...(running ? [running] : []), ...queue]) {
        finish(job, new FileTransferError('cancelled', `sending "${job.name}" was cancelled: the sender closed`, job.id));
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Receiver

export type IncomingFileEvent =
  | { readonly type: 'start'; readonly id: string; readonly name: string; readonly size: number; readonly mime: string }
  | { readonly type: 'progress'; readonly id: string; readonly bytes: number; readonly size: number }
  | { readonly type: 'complete'; readonly id: string; readonly name: string; readonly mime: string; readonly size: number; readonly blob: Blob }
  | { readonly type: 'error'; readonly error: FileTransferError };

export interface FileReceiver {
  /** Feed every frame of the files channel. Never throws: a bad frame becomes an `error` event. */
  receive(data: string | ArrayBuffer): void;
  /** Hot: subscribe before feeding frames. Completes on close(). */
  readonly events$: Observable<IncomingFileEvent>;
  /** Drops a partial transfer (channel closed): emits error channel-closed if one was running. */
  close(): void;
}

export interface FileReceiverOptions {
  /** Offers of more bytes are refused with 'too-large' (default MAX_FILE_BYTES). */
  readonly maxBytes?: number;
}

/** What the receiver is doing; every frame is judged against it. */
type ReceiverState =
  /** Between transfers: only a file-start is expected. */
  | { readonly kind: 'idle' }
  /** Collecting the bytes of an announced file. */
  | {
      readonly kind: 'receiving';
      readonly id: string;
      readonly name: string;
      readonly size: number;
      readonly mime: string;
      readonly chunks: ArrayBuffer[];
      bytes: number;
    }
  /**
   * A transfer failed here (already reported) while the sender, which cannot hear us, goes on:
   * its remaining frames are dropped quietly until its file-end or file-cancel (any id when
   * `id` is unknown) or the next file-start, so that one failure is one error, not thousands.
   */
  | { readonly kind: 'discarding'; readonly id: string | null }
  | { readonly kind: 'closed' };

export function createFileReceiver(options: FileReceiverOptions = {}): FileReceiver {
  const maxBytes = options.maxBytes ?? MAX_FILE_BYTES;
  const events = new Subject<IncomingFileEvent>();
  let state: ReceiverState = { kind: 'idle' };

  /** Reports `error` and ends whatever was running: its partial data is dropped with the state. */
  const fail = (error: FileTransferError, next: ReceiverState): void => {
    state = next;
    events.next({ type: 'error', error });
  };

  const onStart = (frame: Extract<ControlFrame, { type: 'file-start' }>): void => {
    state = { kind: 'receiving', id: frame.id, name: frame.name, size: frame.size, mime: frame.mime, chunks: [], bytes: 0 };
    events.next({ type: 'start', id: frame.id, name: frame.name, size: frame.size, mime: frame.mime });
  };

  const onEnd = (transfer: Extract<ReceiverState, { kind: 'receiving' }>): void => {
    const { id, name, size, mime, chunks, bytes } = transfer;
    if (bytes !== size) {
      fail(new FileTransferError('size-mismatch', `"${name}" ended after ${bytes} of ${size} bytes`, id), { kind: 'idle' });
      return;
    }
    state = { kind: 'idle' };
    const blob = new Blob(chunks, { type: mime });
    events.next({ type: 'complete', id, name, mime, size, blob });
  };

  const onBinary = (data: ArrayBuffer): void => {
    switch (state.kind) {
      case 'idle':
        fail(new FileTransferError('protocol', `binary frame of ${data.byteLength} bytes with no file-start before it`), {
          kind: 'discarding',
          id: null,
        });
        return;
      case 'discarding':
      case 'closed':
        return;
      case 'receiving': {
        const receiving = state;
        if (receiving.bytes + data.byteLength > receiving.size) {
          fail(
            new FileTransferError(
              'size-mismatch',
              `"${receiving.name}" sent more than the ${receiving.size} bytes it announced`,
              receiving.id,
            ),
            { kind: 'discarding', id: receiving.id },
          );
          return;
        }
        receiving.chunks.push(data);
        receiving.bytes += data.byteLength;
        events.next({ type: 'progress', id: receiving.id, bytes: receiving.bytes, size: receiving.size });
        return;
      }
    }
  };

  /** A file-start came while `running` was arriving: its file-end was lost, or the sender is broken. */
  const interrupt = (running: Extract<ReceiverState, { kind: 'receiving' }>): void => {
    fail(new FileTransferError('protocol', `a new file-start came while "${running.name}" was still arriving`, running.id), { kind: 'idle' });
  };

  const onText = (text: string): void => {
    const parsed = parseControlFrame(text, maxBytes);
    const running = state.kind === 'receiving' ? state : null;
    if (!parsed.ok) {
      const { error } = parsed;
      if (error.transferId !== null) {
        // Only a file-start is refused with its id: that transfer's bytes are coming, drop them.
        if (running) interrupt(running);
        fail(error, { kind: 'discarding', id: error.transferId });
      } else if (running) {
        // A garbled frame in the middle of a transfer leaves its bytes in doubt: it ends too.
        fail(new FileTransferError(error.code, `${error.message} (while "${running.name}" was arriving)`, running.id), {
          kind: 'discarding',
          id: running.id,
        });
      } else {
        fail(error, state);
      }
      return;
    }
    const { frame } = parsed;
    switch (frame.type) {
      case 'file-start':
        if (running) interrupt(running);
        onStart(frame);
        return;
      case 'file-end':
      case 'file-cancel':
        if (state.kind === 'discarding' && (state.id === null || state.id === frame.id)) {
          state = { kind: 'idle' };
        } else if (!running || running.id !== frame.id) {
          const when = running ? `while "${running.name}" (${running.id}) was arriving` : 'with no transfer in progress';
          fail(new FileTransferError('protocol', `${frame.type} for ${frame.id} ${when}`, running?.id ?? frame.id), { kind: 'idle' });
        } else if (frame.type === 'file-end') {
          onEnd(running);
        } else {
          fail(new FileTransferError('cancelled', `the sender cancelled "${running.name}"`, running.id), { kind: 'idle' });
        }
        return;
    }
  };

  return {
    receive(data) {
      if (state.kind === 'closed') return;
      try {
        if (typeof data === 'string') onText(data);
        else if (isArrayBuffer(data)) onBinary(data);
        else fail(new FileTransferError('protocol', 'frame is neither text nor an ArrayBuffer'), state.kind === 'receiving' ? { kind: 'discarding', id: state.id } : state);
      } catch (error: unknown) {
        // Only a bug gets here; the channel must keep working all the same.
        fail(new FileTransferError('protocol', `frame could not be handled: ${String(error)}`, null, { cause: error }), { kind: 'idle' });
      }
    },
    events$: events.asObservable(),
    close() {
      if (state.kind === 'closed') return;
      const running = state.kind === 'receiving' ? state : null;
      state = { kind: 'closed' };
      if (running) {
        events.next({
          type: 'error',
          error: new FileTransferError('channel-closed', `the channel closed after ${running.bytes} of ${running.size} bytes of "${running.name}"`, running.id),
        });
      }
      events.complete();
    },
  };
}
