import { Subject } from 'rxjs';
import type { Observable } from 'rxjs';
import type { DataChannelEvent, DataChannelInit, DataChannelPayload, DataChannelPort, DataChannelState } from '../ports/rtc.js';
import { FAKE_MAX_MESSAGE_SIZE, rtcError, utf8ByteLength } from './fake-sdp.js';

// A fake RTCDataChannel (webrtc-pc §6.2) carried by the fake network's SCTP association. Every
// state change happens in a scheduled step; messages travel in order, one step each.

/** A fake data channel: `DataChannelPort` plus the init fields a test may want to check. */
export interface FakeDataChannel extends DataChannelPort {
  readonly negotiated: boolean;
  readonly maxPacketLifeTime: number | null;
  readonly maxRetransmits: number | null;
}

/** What a channel needs from the port that owns it. */
export interface DataChannelHost {
  readonly name: string;
  /** Runs `run` as one asynchronous step (through the scheduler when there is one). */
  step(label: string, run: () => void): void;
  /** True while the SCTP association can carry data (ICE connected, SCTP up). */
  canDeliver(): boolean;
  /** Name of the remote port, for labels. */
  peerName(): string;
  isClosed(): boolean;
  /** Logs an InvalidStateError in the port's `illegalCalls`. */
  recordIllegal(method: string, detail: string): void;
}

type Outgoing =
  | { readonly kind: 'message'; readonly seq: number; readonly data: string | ArrayBuffer; readonly size: number }
  | { readonly kind: 'close' };

/** webrtc-pc §6.2 RTCDataChannel, over the fake SCTP association. */
export class FakeDataChannelImpl implements FakeDataChannel {
  readonly label: string;
  readonly ordered: boolean;
  readonly protocol: string;
  readonly negotiated: boolean;
  readonly maxPacketLifeTime: number | null;
  readonly maxRetransmits: number | null;
  bufferedAmountLowThreshold = 0;
  private currentId: number | null;
  private state: DataChannelState = 'connecting';
  private buffered = 0;
  private readonly subject = new Subject<DataChannelEvent>();
  private readonly outbox: Outgoing[] = [];
  private flushScheduled = false;
  private messageSeq = 0;
  /** The channel at the other end of the SCTP stream, once paired. */
  private remote: FakeDataChannelImpl | null = null;

  readonly events$: Observable<DataChannelEvent> = this.subject.asObservable();

  constructor(
    private readonly host: DataChannelHost,
    label: string,
    init: DataChannelInit = {},
  ) {
    this.label = label;
    this.ordered = init.ordered ?? true;
    this.protocol = init.protocol ?? '';
    this.negotiated = init.negotiated ?? false;
    this.maxPacketLifeTime = init.maxPacketLifeTime ?? null;
    this.maxRetransmits = init.maxRetransmits ?? null;
    // webrtc-pc §4.7.2 createDataChannel: id is used only for negotiated channels; otherwise it is
    // chosen once the DTLS role is known (RFC 8832 §6).
    this.currentId = this.negotiated ? (init.id ?? null) : null;
  }

  /** webrtc-pc §4.7.2 createDataChannel argument checks (TypeError), run before construction. */
  static validateInit(label: string, init: DataChannelInit = {}): void {
    if (utf8ByteLength(label) > 65_535) throw rtcError('TypeError', 'data channel label longer than 65535 bytes');
    if (utf8ByteLength(init.protocol ?? '') > 65_535) throw rtcError('TypeError', 'data channel protocol longer than 65535 bytes');
    if (init.maxPacketLifeTime !== undefined && init.maxRetransmits !== undefined) {
      throw rtcError('TypeError', 'maxPacketLifeTime and maxRetransmits are mutually exclusive');
    }
    if (init.negotiated === true) {
      if (init.id === undefined) throw rtcError('TypeError', 'a negotiated data channel needs an id');
      if (!Number.isInteger(init.id) || init.id < 0 || init.id > 65_534) {
        throw rtcError('TypeError', `data channel id ${init.id} is out of range 0..65534`);
      }
    }
  }

  get id(): number | null {
    return this.currentId;
  }

  get readyState(): DataChannelState {
    return this.state;
  }

  get bufferedAmount(): number {
    return this.buffered;
  }

  /** webrtc-pc §6.2 send(). */
  send(data: DataChannelPayload): void {
    if (this.state !== 'open') {
      this.host.recordIllegal(`RTCDataChannel(${this.label}).send`, `send() while readyState is ${this.state}`);
      throw rtcError('InvalidStateError', `RTCDataChannel.send: readyState is '${this.state}', not 'open'`);
    }
    let payload: string | ArrayBuffer;
    let size: number;
    if (typeof data === 'string') {
      payload = data;
      size = utf8ByteLength(data);
    } else {
      // Binary is copied now: later writes to the caller's buffer must not change what is sent.
      const view = ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
      payload = view.slice().buffer;
      size = view.byteLength;
    }
    if (size > FAKE_MAX_MESSAGE_SIZE) {
      throw rtcError('TypeError', `message of ${size} bytes exceeds maxMessageSize ${FAKE_MAX_MESSAGE_SIZE}`);
    }
    this.buffered += size;
    this.messageSeq += 1;
    this.outbox.push({ kind: 'message', seq: this.messageSeq, data: payload, size });
    this.flush();
  }

  /** webrtc-pc §6.2 close(): the closing procedure runs after buffered messages are sent. */
  close(): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    // The side that calls close() gets no `closing` event (only a remotely started close fires one).
    this.state = 'closing';
    if (this.remote === null) {
      this.host.step(`${this.host.name}: data channel '${this.label}' closed`, () => this.finishClose());
      return;
    }
    this.outbox.push({ kind: 'close' });
    this.flush();
  }

  // ---- driven by the fake network ----

  /** Announces the channel as open (webrtc-pc §6.2 "announce the data channel as open"). */
  announceOpen(id: number | null): void {
    if (this.state !== 'connecting') return;
    if (this.currentId === null) this.currentId = id;
    this.state = 'open';
    this.emit({ type: 'open' });
  }

  /** Marks an in-band announced (remote) channel open before its datachannel event fires. */
  markOpen(id: number): void {
    this.currentId = id;
    this.state = 'open';
  }

  pair(remote: FakeDataChannelImpl): void {
    this.remote = remote;
    remote.remote = this;
  }

  get paired(): boolean {
    return this.remote !== null;
  }

  /** Emits `open` for a channel marked open by `markOpen` (after the datachannel event). */
  emitOpen(): void {
    if (this.state === 'open') this.emit({ type: 'open' });
  }

  /** Starts delivering queued messages, one scheduled step each, if the association is up. */
  flush(): void {
    if (this.flushScheduled || this.outbox.length === 0 || this.host.isClosed() || !this.host.canDeliver()) return;
    const head = this.outbox[0]!;
    const route = `${this.host.name}->${this.host.peerName()}`;
    const label =
      head.kind === 'message'
        ? `${route}: '${this.label}' message ${head.seq} (${head.size} bytes)`
        : `${route}: '${this.label}' closing (stream reset)`;
    this.flushScheduled = true;
    this.host.step(label, () => {
      this.flushScheduled = false;
      if (this.host.isClosed() || !this.host.canDeliver()) return;
      const item = this.outbox.shift();
      if (item) this.deliver(item);
      this.flush();
    });
  }

  /** The owning port closed: closed at once, no events (webrtc-pc close(): channels are "closed abruptly"). */
  abortSilently(): FakeDataChannelImpl | null {
    this.outbox.length = 0;
    if (this.state !== 'closed') {
      this.state = 'closed';
      this.subject.complete();
    }
    return this.remote;
  }

  /** The remote end went away (its port closed): closed with a close event. */
  remoteAborted(): void {
    if (this.state === 'closed') return;
    this.outbox.length = 0;
    this.state = 'closed';
    this.emit({ type: 'close' });
    this.subject.complete();
  }

  private deliver(item: Outgoing): void {
    const remote = this.remote;
    if (item.kind === 'message') {
      const before = this.buffered;
      this.buffered -= item.size;
      // webrtc-pc §6.2 bufferedamountlow: fired when bufferedAmount decreases from above the
      // threshold to at or below it.
      if (before > this.bufferedAmountLowThreshold && this.buffered <= this.bufferedAmountLowThreshold) {
        this.emit({ type: 'bufferedamountlow' });
      }
      // A negotiated channel with no counterpart: the remote SCTP stack drops the message.
      // webrtc-pc §6.2 "receiving messages": discarded unless the receiver is open.
      if (remote && remote.state === 'open') {
        remote.emit({ type: 'message', data: typeof item.data === 'string' ? item.data : item.data.slice(0) });
      }
      return;
    }
    // Stream reset reached the other side (RFC 8831 §6.7): it starts closing, with an event.
    if (remote && remote.state === 'open') {
      remote.state = 'closing';
      remote.outbox.length = 0;
      remote.emit({ type: 'closing' });
    }
    this.host.step(`${this.host.name}<->${this.host.peerName()}: data channel '${this.label}' closed`, () => {
      this.finishClose();
      remote?.finishClose();
    });
  }

  private finishClose(): void {
    if (this.state === 'closed' || this.host.isClosed()) return;
    this.state = 'closed';
    this.outbox.length = 0;
    this.emit({ type: 'close' });
    this.subject.complete();
  }

  private emit(event: DataChannelEvent): void {
    if (this.host.isClosed()) return;
    this.subject.next(event);
  }
}
