import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Subject, concat, from } from 'rxjs';
import type { Observable } from 'rxjs';
import { createActor } from 'xstate';
import {
  channelMessagesOf,
  dataChannelMachine,
  payloadByteLength,
  type DataChannelContext,
  type DataChannelEmitted,
  type DataChannelMachineInput,
} from '../src/machines/data-channel.machine.js';
import type { DataChannelEvent, DataChannelPayload, DataChannelPort, DataChannelState } from '../src/ports/rtc.js';

/** Independent oracle for the machine's byte counting. */
function wireBytes(data: DataChannelPayload): number {
  return typeof data === 'string' ? Buffer.byteLength(data, 'utf8') : data.byteLength;
}

/**
 * A stub RTCDataChannel that follows webrtc-pc §6.2 where the machine relies on it: send() throws
 * InvalidStateError unless open and raises bufferedAmount at once; bufferedamountlow fires only
 * when bufferedAmount drains from above bufferedAmountLowThreshold to at or below it.
 */
class StubChannel implements DataChannelPort {
  readonly label = 'chat';
  readonly id = 1;
  readonly ordered = true;
  readonly protocol = '';
  readyState: DataChannelState;
  bufferedAmount = 0;
  bufferedAmountLowThreshold = 0;
  readonly sent: DataChannelPayload[] = [];
  closeCalls = 0;
  /** Set when a send would push bufferedAmount over `highWaterMark` on a non-empty buffer. */
  overflow: string | null = null;
  /** The next send throws this. */
  failNextSend: Error | null = null;
  private readonly subject = new Subject<DataChannelEvent>();
  readonly events$: Observable<DataChannelEvent>;

  constructor(
    state: DataChannelState = 'connecting',
    private readonly highWaterMark = Infinity,
    /** Events the port held for its first subscriber, as the browser adapter's do. */
    held: readonly DataChannelEvent[] = [],
  ) {
    this.readyState = state;
    this.events$ = concat(from(held), this.subject);
  }

  send(data: DataChannelPayload): void {
    if (this.readyState !== 'open') {
      throw Object.assign(new Error('not open'), { name: 'InvalidStateError' });
    }
    if (this.failNextSend) {
      const error = this.failNextSend;
      this.failNextSend = null;
      throw error;
    }
    const size = wireBytes(data);
    if (this.bufferedAmount > 0 && this.bufferedAmount + size > this.highWaterMark && this.overflow === null) {
      this.overflow = `sent ${size} B on top of ${this.bufferedAmount} B`;
    }
    this.sent.push(data);
    this.bufferedAmount += size;
  }

  close(): void {
    this.closeCalls += 1;
    if (this.readyState === 'connecting' || this.readyState === 'open') this.readyState = 'closing';
  }

  // Test controls: what the engine would do.
  open(): void {
    this.readyState = 'open';
    this.subject.next({ type: 'open' });
  }
  drain(bytes: number): void {
    const before = this.bufferedAmount;
    this.bufferedAmount = Math.max(0, before - bytes);
    if (before > this.bufferedAmountLowThreshold && this.bufferedAmount <= this.bufferedAmountLowThreshold) {
      this.subject.next({ type: 'bufferedamountlow' });
    }
  }
  spuriousLow(): void {
    this.subject.next({ type: 'bufferedamountlow' });
  }
  receive(data: string | ArrayBuffer): void {
    this.subject.next({ type: 'message', data });
  }
  remoteClosing(): void {
    this.readyState = 'closing';
    this.subject.next({ type: 'closing' });
  }
  closed(): void {
    this.readyState = 'closed';
    this.subject.next({ type: 'close' });
    this.subject.complete();
  }
  error(error: Error): void {
    this.subject.next({ type: 'error', error });
  }
}

function sendingOf(context: DataChannelContext) {
  const { queue, channel } = context;
  return { queue: queue.toArray(), queuedBytes: queue.queuedBytes, sentBytes: queue.sentBytes, bufferedAmount: channel.bufferedAmount };
}

function start(channel: StubChannel, options: Omit<DataChannelMachineInput, 'channel'> = {}) {
  const actor = createActor(dataChannelMachine, { input: { channel, ...options } });
  const emitted: DataChannelEmitted[] = [];
  actor.on('*', (event) => emitted.push(event));
  const received: (string | ArrayBuffer)[] = [];
  channelMessagesOf(actor)?.on('message', (event) => received.push(event.data));
  actor.start();
  return {
    actor,
    emitted,
    /** What the machine's channelEvents child emitted: the messages received, in order. */
    received,
    send: (data: DataChannelPayload) => actor.send({ type: 'SEND', data }),
    snapshot: () => actor.getSnapshot(),
    /** The send queue and the channel's buffer, as plain numbers. */
    sending: () => sendingOf(actor.getSnapshot().context),
    failed: () => emitted.filter((e) => e.type === 'send-failed'),
  };
}

/**
 * Any UTF-16 code unit (lone surrogates too) mixed with astral code points (surrogate pairs). Not
 * fc.string({ unit: 'binary' }): its first use builds a table for 3 s of CPU, which on a loaded
 * machine's share of the CPU exceeded the test timeout.
 */
function anyText(maxLength = 40): fc.Arbitrary<string> {
  return fc
    .array(
      fc.oneof(
        fc.integer({ min: 0, max: 0xffff }).map((unit) => String.fromCharCode(unit)),
        fc.integer({ min: 0x10000, max: 0x10ffff }).map((codePoint) => String.fromCodePoint(codePoint)),
      ),
      { maxLength },
    )
    .map((parts) => parts.join(''));
}

const bytes = (n: number, fill = 0) => new Uint8Array(n).fill(fill);
const KiB = 1024;

describe('payloadByteLength', () => {
  it('counts UTF-8 bytes for text and byteLength for binary', () => {
    const samples: DataChannelPayload[] = ['', 'abc', 'é', '€', '😀', 'a€😀é', '\ud800', new ArrayBuffer(7), bytes(5), new DataView(new ArrayBuffer(9), 2, 3)];
    expect(samples.map(payloadByteLength)).toEqual([0, 3, 2, 3, 4, 10, 3, 7, 5, 3]);
  });

  it('agrees with Node for any string', () => {
    fc.assert(fc.property(anyText(), (s) => payloadByteLength(s) === Buffer.byteLength(s, 'utf8')), { numRuns: 1000 });
  });
});

describe('dataChannelMachine', () => {
  it('sets bufferedAmountLowThreshold to the low water mark at start (default 128 KiB)', () => {
    const a = new StubChannel();
    start(a);
    expect(a.bufferedAmountLowThreshold).toBe(128 * KiB);
    const b = new StubChannel();
    const { snapshot } = start(b, { highWaterMark: 1000, lowWaterMark: 100 });
    expect(b.bufferedAmountLowThreshold).toBe(100);
    expect(snapshot().context).toMatchObject({ label: 'chat', highWaterMark: 1000, lowWaterMark: 100 });
  });

  it.each(['connecting', 'open', 'closing'] as const)('starts in the state matching readyState %s', (state) => {
    const { snapshot } = start(new StubChannel(state));
    expect(snapshot().value).toEqual(state === 'open' ? { open: 'flowing' } : state);
  });

  it('a channel already closed when wrapped is final at once, and says close', () => {
    const { snapshot, emitted } = start(new StubChannel('closed'));
    expect(snapshot().value).toBe('closed');
    expect(snapshot().status).toBe('done');
    expect(emitted).toEqual([{ type: 'close' }]);
  });

  it('an already-open channel emits open when started', () => {
    const { emitted } = start(new StubChannel('open'));
    expect(emitted).toEqual([{ type: 'open' }]);
  });

  it('catches up with a readyState change between createActor and start', () => {
    const channel = new StubChannel('connecting');
    const actor = createActor(dataChannelMachine, { input: { channel } });
    expect(actor.getSnapshot().value).toBe('connecting');
    channel.readyState = 'open'; // its open event fired before anyone subscribed
    actor.start();
    expect(actor.getSnapshot().value).toEqual({ open: 'flowing' });
  });

  it('queues SENDs while connecting and flushes them in order on open (webrtc-pc §6.2)', () => {
    const channel = new StubChannel('connecting');
    const { send, snapshot, emitted, sending } = start(channel);
    send('one');
    send(bytes(10));
    send('three');
    expect(channel.sent).toEqual([]);
    expect(sending()).toMatchObject({ queuedBytes: 3 + 10 + 5, sentBytes: 0 });
    expect(sending().queue).toHaveLength(3);

    channel.open();
    expect(channel.sent).toEqual(['one', bytes(10), 'three']);
    expect(snapshot().value).toEqual({ open: 'flowing' });
    expect(sending()).toEqual({ queue: [], queuedBytes: 0, sentBytes: 18, bufferedAmount: 18 });
    expect(emitted).toEqual([{ type: 'open' }]);
  });

  it('sends at once while open when the queue is empty and it fits', () => {
    const channel = new StubChannel('open');
    const { send, snapshot, sending } = start(channel, { highWaterMark: 100, lowWaterMark: 10 });
    send('héllo');
    expect(channel.sent).toEqual(['héllo']);
    expect(sending()).toMatchObject({ sentBytes: 6, bufferedAmount: 6, queuedBytes: 0 });
    expect(snapshot().value).toEqual({ open: 'flowing' });
  });

  it('queues what does not fit under the high-water mark, keeps order, and flushes on bufferedamountlow', () => {
    const channel = new StubChannel('open', 100);
    const { send, snapshot, sending } = start(channel, { highWaterMark: 100, lowWaterMark: 20 });
    send(bytes(60, 1));
    send(bytes(60, 2)); // 60 + 60 > 100: queued
    send(bytes(1, 3)); // would fit, but the queue is not empty: order first
    expect(channel.sent).toEqual([bytes(60, 1)]);
    expect(snapshot().value).toEqual({ open: 'backpressured' });
    expect(sending()).toMatchObject({ queuedBytes: 61, bufferedAmount: 60 });

    channel.drain(39); // 21 > 20: no event yet
    expect(channel.sent).toHaveLength(1);
    channel.drain(1); // 20: bufferedamountlow
    expect(channel.sent).toEqual([bytes(60, 1), bytes(60, 2), bytes(1, 3)]);
    expect(sending()).toEqual({ queue: [], queuedBytes: 0, bufferedAmount: 81, sentBytes: 121 });
    expect(snapshot().value).toEqual({ open: 'flowing' });
    expect(channel.bufferedAmountLowThreshold).toBe(20);
    expect(channel.overflow).toBeNull();
  });

  it('flushes only what fits on bufferedamountlow and waits again for the rest', () => {
    const channel = new StubChannel('open', 100);
    const { send, snapshot } = start(channel, { highWaterMark: 100, lowWaterMark: 50 });
    for (let i = 0; i < 5; i++) send(bytes(40, i));
    expect(channel.sent).toHaveLength(2); // 80
    channel.drain(30); // 50: low
    expect(channel.sent).toHaveLength(3); // 90
    expect(snapshot().value).toEqual({ open: 'backpressured' });
    channel.drain(90);
    expect(channel.sent).toEqual([0, 1, 2, 3, 4].map((i) => bytes(40, i)));
    expect(channel.overflow).toBeNull();
  });

  it('sends a single message larger than the high-water mark when the buffer is empty', () => {
    const channel = new StubChannel('open');
    const { send, sending } = start(channel, { highWaterMark: 100, lowWaterMark: 10 });
    send(bytes(500));
    expect(channel.sent).toEqual([bytes(500)]);
    expect(sending().bufferedAmount).toBe(500);
  });

  it('an oversized message behind others waits for the buffer to empty (threshold armed at 0), then goes', () => {
    const channel = new StubChannel('open', 100);
    const { send, snapshot } = start(channel, { highWaterMark: 100, lowWaterMark: 10 });
    send(bytes(50));
    send(bytes(500));
    expect(snapshot().value).toEqual({ open: 'backpressured' });
    expect(channel.bufferedAmountLowThreshold).toBe(0);
    channel.drain(45); // 5 <= the low water mark, but the big one still does not fit
    expect(channel.sent).toHaveLength(1);
    channel.drain(5);
    expect(channel.sent).toEqual([bytes(50), bytes(500)]);
    expect(channel.bufferedAmountLowThreshold).toBe(10);
  });

  it('a message between high - low and high is not stuck (threshold armed at high - size)', () => {
    // With the plain low water mark (250), a 900 B message could never follow a 300 B one:
    // bufferedamountlow fires once at 250 (250 + 900 > 1000) and never again.
    const channel = new StubChannel('open', 1000);
    const { send } = start(channel, { highWaterMark: 1000, lowWaterMark: 250 });
    send(bytes(300));
    send(bytes(900));
    expect(channel.bufferedAmountLowThreshold).toBe(100);
    channel.drain(150); // 150
    channel.drain(50); // 100: low, 100 + 900 fits
    expect(channel.sent).toEqual([bytes(300), bytes(900)]);
    expect(channel.overflow).toBeNull();
  });

  it('a spurious bufferedamountlow sends nothing that does not fit', () => {
    const channel = new StubChannel('open', 100);
    const { send, snapshot } = start(channel, { highWaterMark: 100, lowWaterMark: 10 });
    send(bytes(80));
    send(bytes(80));
    channel.spuriousLow();
    expect(channel.sent).toHaveLength(1);
    expect(snapshot().value).toEqual({ open: 'backpressured' });
    channel.drain(80);
    expect(channel.sent).toHaveLength(2);
  });

  it('keeps a payload whose send throws at the head of the queue, emits error, and retries on bufferedamountlow', () => {
    const channel = new StubChannel('open');
    const { send, emitted, sending } = start(channel, { highWaterMark: 100, lowWaterMark: 10 });
    send(bytes(20, 1));
    const boom = Object.assign(new Error('buffer full'), { name: 'OperationError' });
    channel.failNextSend = boom;
    send(bytes(20, 2));
    send(bytes(20, 3));
    expect(channel.sent).toEqual([bytes(20, 1)]);
    expect(emitted).toContainEqual({ type: 'error', error: boom });
    expect(sending()).toMatchObject({ queue: [bytes(20, 2), bytes(20, 3)], queuedBytes: 40, sentBytes: 20 });
    channel.drain(20);
    expect(channel.sent).toEqual([bytes(20, 1), bytes(20, 2), bytes(20, 3)]);
    expect(sending().queue).toEqual([]);
  });

  it('emits bufferedamountlow when the channel drains, after what was queued went on', () => {
    const channel = new StubChannel('open', 100);
    const { actor, send, emitted } = start(channel, { highWaterMark: 100, lowWaterMark: 20 });
    const sentWhenLow: number[] = [];
    actor.on('bufferedamountlow', () => sentWhenLow.push(channel.sent.length));
    send(bytes(60));
    send(bytes(60)); // queued
    channel.drain(40); // 20: low while backpressured
    expect(sentWhenLow).toEqual([2]);
    channel.drain(70); // 10: low while flowing
    expect(sentWhenLow).toEqual([2, 2]);
    expect(emitted.filter((e) => e.type === 'bufferedamountlow')).toHaveLength(2);
  });

  // Issue 14: the sender peaked at 79 MiB of heap where the raw loop peaked at 28. Each SEND
  // copied the queue (assign with a spread) and sent the actor a second event with the outcome.
  it('a SEND that fits is one event and leaves the queue object in place (no copy per send)', () => {
    const channel = new StubChannel('open');
    const events: string[] = [];
    const actor = createActor(dataChannelMachine, {
      input: { channel, highWaterMark: 100, lowWaterMark: 10 },
      inspect: (inspection) => {
        if (inspection.type === '@xstate.event' && inspection.actorRef === actor) events.push(inspection.event.type);
      },
    });
    actor.start();
    const queue = actor.getSnapshot().context.queue;
    events.length = 0;
    for (let i = 0; i < 3; i++) actor.send({ type: 'SEND', data: bytes(10) });
    expect(events).toEqual(['SEND', 'SEND', 'SEND']);
    expect(actor.getSnapshot().context.queue).toBe(queue);
    expect(queue.sentBytes).toBe(30);
    actor.send({ type: 'SEND', data: bytes(80) }); // does not fit: queued, same queue
    expect(actor.getSnapshot().value).toEqual({ open: 'backpressured' });
    expect(actor.getSnapshot().context.queue).toBe(queue);
    expect(queue.queuedBytes).toBe(80);
  });

  it('the queue lets go of what it handed over, and stays in order over many sends', () => {
    const channel = new StubChannel('open', 100);
    const { send, sending } = start(channel, { highWaterMark: 100, lowWaterMark: 50 });
    const all = Array.from({ length: 3000 }, (_, i) => `${i}`.padStart(10, '.'));
    for (const data of all) send(data);
    while (sending().queuedBytes > 0) channel.drain(channel.bufferedAmount);
    expect(channel.sent).toEqual(all);
    expect(sending()).toMatchObject({ queue: [], queuedBytes: 0, sentBytes: 30_000 });
  });

  it('hands received messages to the listeners of its channelEvents child, in order, without a machine event', () => {
    const channel = new StubChannel('open');
    const { snapshot, emitted, received } = start(channel);
    const buffer = new ArrayBuffer(4);
    const before = snapshot();
    channel.receive('hé');
    channel.receive(buffer);
    expect(received).toEqual(['hé', buffer]);
    expect(emitted).toEqual([{ type: 'open' }]);
    // No event reached the machine: its snapshot is the very same object.
    expect(snapshot()).toBe(before);
  });

  it('hands a message the port held for its first subscriber to a listener attached before start', () => {
    const held: DataChannelEvent[] = [{ type: 'message', data: 'early' }, { type: 'bufferedamountlow' }, { type: 'message', data: 'later' }];
    const { received, snapshot } = start(new StubChannel('open', Infinity, held));
    expect(received).toEqual(['early', 'later']);
    expect(snapshot().value).toEqual({ open: 'flowing' });
  });

  it('emits channel errors', () => {
    const channel = new StubChannel('open');
    const { emitted } = start(channel);
    const error = new Error('sctp abort');
    channel.error(error);
    expect(emitted).toContainEqual({ type: 'error', error });
  });

  it('CLOSE closes the channel, reports what is queued, refuses later SENDs, and ends on close', () => {
    const channel = new StubChannel('open', 100);
    const { actor, send, snapshot, emitted, failed, sending } = start(channel, { highWaterMark: 100, lowWaterMark: 10 });
    send(bytes(95));
    send('queued'); // 95 + 6 > 100
    actor.send({ type: 'CLOSE' });
    expect(channel.closeCalls).toBe(1);
    expect(snapshot().value).toBe('closing');
    expect(failed()).toEqual([{ type: 'send-failed', reason: 'channel-closed', bytes: 6, data: 'queued' }]);
    expect(sending()).toMatchObject({ queue: [], queuedBytes: 0 });

    send('late €');
    expect(failed()).toHaveLength(2);
    expect(failed()[1]).toEqual({ type: 'send-failed', reason: 'channel-closed', bytes: 8, data: 'late €' });
    actor.send({ type: 'CLOSE' });
    expect(channel.closeCalls).toBe(1);

    channel.closed();
    expect(snapshot().value).toBe('closed');
    expect(snapshot().status).toBe('done');
    expect(emitted.at(-1)).toEqual({ type: 'close' });
    expect(channel.sent).toEqual([bytes(95)]);
  });

  it('CLOSE while connecting reports the queue and waits for close', () => {
    const channel = new StubChannel('connecting');
    const { actor, send, snapshot, failed } = start(channel);
    send('a');
    actor.send({ type: 'CLOSE' });
    expect(channel.closeCalls).toBe(1);
    expect(snapshot().value).toBe('closing');
    expect(failed()).toEqual([{ type: 'send-failed', reason: 'channel-closed', bytes: 1, data: 'a' }]);
    channel.open(); // too late: ignored
    expect(snapshot().value).toBe('closing');
    channel.closed();
    expect(snapshot().value).toBe('closed');
  });

  it('a remote close while open reports what is still queued', () => {
    const channel = new StubChannel('open');
    const { send, snapshot, emitted, failed } = start(channel, { highWaterMark: 100, lowWaterMark: 10 });
    send(bytes(100));
    send(bytes(3));
    channel.closed();
    expect(snapshot().value).toBe('closed');
    expect(failed()).toEqual([{ type: 'send-failed', reason: 'channel-closed', bytes: 3, data: bytes(3) }]);
    expect(emitted.at(-1)).toEqual({ type: 'close' });
  });

  it('the remote closing procedure (closing event) moves to closing; messages still arrive', () => {
    const channel = new StubChannel('open');
    const { snapshot, received } = start(channel);
    channel.remoteClosing();
    expect(snapshot().value).toBe('closing');
    channel.receive('last words');
    expect(received).toEqual(['last words']);
    channel.closed();
    expect(snapshot().status).toBe('done');
  });

  it.each([
    ['CLOSE', 'connecting'],
    ['close event', 'connecting'],
    ['closing event', 'connecting'],
  ])('%s while %s', (what) => {
    const channel = new StubChannel('connecting');
    const { actor, snapshot } = start(channel);
    if (what === 'CLOSE') actor.send({ type: 'CLOSE' });
    if (what === 'close event') channel.closed();
    if (what === 'closing event') channel.remoteClosing();
    expect(snapshot().value).toBe(what === 'close event' ? 'closed' : 'closing');
  });

  it('a close the channel signals from inside send() waits for the outcome of the flush under way', () => {
    // webrtc-pc queues channel events as tasks, but a port may deliver them synchronously. Here
    // the channel accepts the first payload, closes on the spot, then refuses the second: the
    // first must count as sent, the second be reported once.
    const channel = new StubChannel('connecting');
    const { send, snapshot, emitted, failed, sending } = start(channel);
    send('accepted');
    send('refused');
    const send0 = channel.send.bind(channel);
    channel.send = (data) => {
      send0(data);
      channel.send = send0;
      channel.closed();
    };
    channel.open();
    expect(channel.sent).toEqual(['accepted']);
    expect(snapshot().value).toBe('closed');
    expect(sending().sentBytes).toBe(8);
    expect(failed()).toEqual([{ type: 'send-failed', reason: 'channel-closed', bytes: 7, data: 'refused' }]);
    expect(emitted.filter((e) => e.type === 'error')).toHaveLength(1);
  });

  it('a CLOSE sent from an open listener closes after the queued payloads went out', () => {
    const channel = new StubChannel('connecting');
    const actor = createActor(dataChannelMachine, { input: { channel } });
    const emitted: DataChannelEmitted[] = [];
    actor.on('*', (event) => emitted.push(event));
    actor.on('open', () => actor.send({ type: 'CLOSE' }));
    actor.start();
    actor.send({ type: 'SEND', data: 'queued before open' });
    channel.open();
    expect(channel.sent).toEqual(['queued before open']);
    expect(emitted.filter((e) => e.type === 'send-failed')).toEqual([]);
    expect(actor.getSnapshot().value).toBe('closing');
    expect(channel.closeCalls).toBe(1);
  });

  it('property: any interleaving delivers every payload once, in order, within the high-water mark', () => {
    const HIGH = 1000;
    const LOW = 250;
    const payload = fc.oneof(
      anyText(400),
      fc.integer({ min: 0, max: 1500 }).map((n) => new Uint8Array(n)),
      fc.integer({ min: 0, max: 1500 }).map((n) => new ArrayBuffer(n)),
    );
    const step = fc.oneof(
      { weight: 4, arbitrary: payload.map((data) => ({ kind: 'send' as const, data })) },
      { weight: 2, arbitrary: fc.integer({ min: 1, max: 1200 }).map((n) => ({ kind: 'drain' as const, n })) },
      { weight: 1, arbitrary: fc.constant({ kind: 'low' as const }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'open' as const }) },
    );
    fc.assert(
      fc.property(fc.constantFrom<DataChannelState>('connecting', 'open'), fc.array(step, { maxLength: 60 }), (initial, steps) => {
        const channel = new StubChannel(initial, HIGH);
        const { actor, emitted } = start(channel, { highWaterMark: HIGH, lowWaterMark: LOW });
        // Tag each payload so equal contents stay distinguishable.
        const expected: DataChannelPayload[] = [];
        steps.forEach((s, i) => {
          if (s.kind === 'send') {
            const data = typeof s.data === 'string' ? `${i}:${s.data}` : s.data;
            expected.push(data);
            actor.send({ type: 'SEND', data });
          } else if (s.kind === 'drain') {
            channel.drain(s.n);
          } else if (s.kind === 'low') {
            if (channel.readyState === 'open') channel.spuriousLow();
          } else if (channel.readyState === 'connecting') {
            channel.open();
          }
          expect(channel.overflow).toBeNull();
          const { queue, queuedBytes, sentBytes } = sendingOf(actor.getSnapshot().context);
          expect(queuedBytes).toBe(queue.reduce((sum, d) => sum + wireBytes(d), 0));
          expect(sentBytes).toBe(channel.sent.reduce((sum, d) => sum + wireBytes(d), 0));
        });
        // Let the engine finish: open, then drain until nothing is left.
        if (channel.readyState === 'connecting') channel.open();
        for (let i = 0; i <= expected.length && channel.bufferedAmount > 0; i++) channel.drain(channel.bufferedAmount);
        expect(channel.overflow).toBeNull();
        expect(channel.sent).toHaveLength(expected.length);
        channel.sent.forEach((data, i) => expect(data).toBe(expected[i]));
        expect(sendingOf(actor.getSnapshot().context)).toMatchObject({ queue: [], queuedBytes: 0 });
        expect(actor.getSnapshot().value).toEqual({ open: 'flowing' });
        expect(emitted.filter((e) => e.type !== 'open' && e.type !== 'bufferedamountlow')).toEqual([]);
      }),
      { numRuns: Number(process.env.PARLEY_FC_RUNS ?? 200) },
    );
  });
});
