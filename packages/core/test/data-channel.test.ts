import { afterEach, describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { BufferUntilSubscribed, DEFAULT_HIGH_WATER_MARK, DEFAULT_LOW_WATER_MARK, DataChannel, DataChannelClosedError, createPeer, dataChannelMachine, dataChannelOf } from '../src/index.js';
import type { DataChannelEvent, DataChannelPort, DataChannelState, Peer, PeerAppEvent } from '../src/index.js';
import { createFakeNetwork, createSignalingPair } from '../src/testing/index.js';
import type { FakeRtcPort } from '../src/testing/index.js';
import { waitFor } from './helpers/wait-for.js';

// The data channel handle (issue 17): a DataChannel called as an RTCDataChannel, over the data
// channel machine of two createPeer peers on the fake network (every fake step a macrotask, so
// the tests wait on observable conditions).

interface Side {
  readonly port: FakeRtcPort;
  readonly peer: Peer;
  readonly events: PeerAppEvent[];
}

const started: Peer[] = [];

afterEach(() => {
  for (const peer of started.splice(0)) peer.close();
});

/** A (impolite) and B (polite), connected over the fake network, every event recorded. */
function startPair(): { a: Side; b: Side } {
  const network = createFakeNetwork();
  const [sigA, sigB] = createSignalingPair();
  const side = (name: 'A' | 'B', signaling: typeof sigA): Side => {
    const port = network.createPort({ name });
    const peer = createPeer({ rtc: port, signaling, polite: name === 'B' });
    started.push(peer);
    const events: PeerAppEvent[] = [];
    peer.events$.subscribe((event) => events.push(event));
    return { port, peer, events };
  };
  return { a: side('A', sigA), b: side('B', sigB) };
}

/** The `datachannel` event's handle for `label` on a side, once it came. */
function channelOn(side: Side, label: string): DataChannel | undefined {
  for (const event of side.events) if (event.type === 'datachannel' && event.label === label) return event.channel;
  return undefined;
}

/** The remote handle for `label` on B, once announced. */
async function remoteOf(b: Side, label: string): Promise<DataChannel> {
  await waitFor(() => channelOn(b, label) !== undefined, `'${label}' announced on B`);
  return channelOn(b, label)!;
}

function collect<T>(subscribe: (next: (value: T) => void, complete: () => void) => void): { values: T[]; completed: { value: boolean } } {
  const values: T[] = [];
  const completed = { value: false };
  subscribe(
    (value) => values.push(value),
    () => (completed.value = true),
  );
  return { values, completed };
}

const KIB = 1024;

describe('DataChannel, the handle', () => {
  it('comes with the datachannel event on both sides, is what createDataChannel returns, and keeps the actor at .actor', async () => {
    const { a, b } = startPair();
    const local = a.peer.createDataChannel('chat', { protocol: 'json' });
    expect(local).toBeInstanceOf(DataChannel);
    expect(channelOn(a, 'chat')).toBe(local);
    expect(a.peer.actor.getSnapshot().context.channels).toContain(local.actor);
    expect(dataChannelOf(local.actor)).toBe(local);
    expect(local).toMatchObject({ label: 'chat', protocol: 'json', ordered: true, readyState: 'connecting', bufferedAmount: 0 });

    const remote = await remoteOf(b, 'chat');
    expect(remote).toBeInstanceOf(DataChannel);
    expect(b.peer.actor.getSnapshot().context.channels).toContain(remote.actor);
    await waitFor(() => local.readyState === 'open' && remote.readyState === 'open', 'open on both sides');
    expect(remote.id).toBe(local.id);
    local.send('hi');
    await waitFor(() => b.events.some((event) => event.type === 'message'), 'the message on B');
    const message = b.events.find((event) => event.type === 'message');
    expect(message).toMatchObject({ type: 'message', label: 'chat', data: 'hi' });
    expect(message?.type === 'message' && message.channel).toBe(remote);
  });

  it('queues what is sent before open and sends it, in order, once open', async () => {
    const { a, b } = startPair();
    const local = a.peer.createDataChannel('early');
    local.send('one');
    local.send(new Uint8Array([1, 2, 3]));
    local.send('three');
    expect(local.readyState).toBe('connecting');
    expect(local.bufferedAmount).toBe(3 + 3 + 5);
    // They may arrive with the channel: read them from B's events, recorded from the start.
    const received = (): (string | ArrayBuffer)[] => b.events.flatMap((event) => (event.type === 'message' && event.label === 'early' ? [event.data] : []));
    await waitFor(() => received().length === 3, 'three messages on B');
    expect(received().map((data) => (typeof data === 'string' ? data : [...new Uint8Array(data)]))).toEqual(['one', [1, 2, 3], 'three']);
    await waitFor(() => local.bufferedAmount === 0, 'everything on the wire');
  });

  it('carries strings and binary (ArrayBuffer, and a view with an offset) on message$, binary as ArrayBuffer', async () => {
    const { a, b } = startPair();
    const local = a.peer.createDataChannel('data');
    const remote = await remoteOf(b, 'data');
    const received = collect<string | ArrayBuffer>((next) => remote.message$.subscribe(next));
    const backing = new Uint8Array([9, 9, 4, 5, 6, 9]);
    local.send('héllo');
    local.send(new Uint8Array([1, 2, 3]).buffer);
    local.send(backing.subarray(2, 5));
    await waitFor(() => received.values.length === 3, 'three messages on B');
    const [text, buffer, view] = received.values;
    expect(text).toBe('héllo');
    expect(buffer).toBeInstanceOf(ArrayBuffer);
    expect([...new Uint8Array(buffer as ArrayBuffer)]).toEqual([1, 2, 3]);
    expect(view).toBeInstanceOf(ArrayBuffer);
    expect([...new Uint8Array(view as ArrayBuffer)]).toEqual([4, 5, 6]);
  });

  it('holds the channel buffer under the high-water mark: a burst waits in the queue and arrives whole and in order', async () => {
    const { a, b } = startPair();
    const local = a.peer.createDataChannel('bulk');
    const remote = await remoteOf(b, 'bulk');
    await waitFor(() => local.readyState === 'open', 'open');
    const received = collect<string | ArrayBuffer>((next) => remote.message$.subscribe(next));
    const port = local.actor.getSnapshot().context.channel;
    let maxPortBuffered = 0;
    const watch = local.actor.subscribe(() => (maxPortBuffered = Math.max(maxPortBuffered, port.bufferedAmount)));
    const COUNT = 200;
    const SIZE = 16 * KIB;
    for (let i = 0; i < COUNT; i++) {
      const chunk = new Uint8Array(SIZE);
      new DataView(chunk.buffer).setUint32(0, i);
      local.send(chunk);
    }
    // 3.2 MiB given; the high-water mark's worth in the channel's buffer, the rest in the machine's queue.
    const inChannel = DEFAULT_HIGH_WATER_MARK / SIZE;
    expect(local.bufferedAmount).toBe(COUNT * SIZE);
    expect(port.bufferedAmount).toBe(DEFAULT_HIGH_WATER_MARK);
    expect(local.actor.getSnapshot().context.queue.length).toBe(COUNT - inChannel);
    await waitFor(() => received.values.length === COUNT, `${COUNT} chunks on B`, 10_000);
    watch.unsubscribe();
    expect(maxPortBuffered).toBeLessThanOrEqual(DEFAULT_HIGH_WATER_MARK);
    expect(received.values.map((chunk) => new DataView(chunk as ArrayBuffer).getUint32(0))).toEqual(Array.from({ length: COUNT }, (_, i) => i));
    expect(local.bufferedAmount).toBe(0);
  }, 15_000);

  it('lets a sender pace itself on bufferedAmount and bufferedAmountLow$, so the queue never holds the transfer', async () => {
    const { a, b } = startPair();
    const local = a.peer.createDataChannel('paced');
    const remote = await remoteOf(b, 'paced');
    await waitFor(() => local.readyState === 'open', 'open');
    const received = collect<string | ArrayBuffer>((next) => remote.message$.subscribe(next));
    const COUNT = 300;
    const SIZE = 16 * KIB;
    const MARK = DEFAULT_HIGH_WATER_MARK - SIZE; // above bufferedAmountLowThreshold, within the high-water mark
    expect(MARK).toBeGreaterThan(DEFAULT_LOW_WATER_MARK);
    expect(local.bufferedAmountLowThreshold).toBe(DEFAULT_LOW_WATER_MARK);
    expect(MARK + SIZE).toBeLessThanOrEqual(DEFAULT_HIGH_WATER_MARK);
    let next = 0;
    let mostGiven = 0;
    let mostQueued = 0;
    const pump = (): void => {
      while (next < COUNT && local.bufferedAmount <= MARK) {
        local.send(new Uint8Array(SIZE).fill(next % 251));
        next += 1;
        mostGiven = Math.max(mostGiven, local.bufferedAmount);
        mostQueued = Math.max(mostQueued, local.actor.getSnapshot().context.queue.queuedBytes);
      }
    };
    const pacing = local.bufferedAmountLow$.subscribe(pump);
    pump();
    await waitFor(() => received.values.length === COUNT, `${COUNT} chunks on B`, 10_000);
    pacing.unsubscribe();
    expect(next).toBe(COUNT);
    expect(mostGiven).toBeLessThanOrEqual(MARK + SIZE);
    expect(mostQueued).toBe(0); // the channel's own buffer (below the high-water mark) took every chunk at once
    expect(received.values.every((chunk, i) => new Uint8Array(chunk as ArrayBuffer)[SIZE - 1] === i % 251)).toBe(true);
  }, 15_000);

  // Issue 14: an xstate event costs about 5 KB of garbage; a sender pushing 16 KiB chunks made
  // one per chunk. The handle adds to the machine's queue itself and wakes the machine only
  // when something stays queued.
  it('sends what fits with no event to the machine, and one FLUSH when the channel buffer is full', async () => {
    const { a, b } = startPair();
    const local = a.peer.createDataChannel('quiet');
    const remote = await remoteOf(b, 'quiet');
    await waitFor(() => local.readyState === 'open', 'open');
    const received = collect<string | ArrayBuffer>((next) => remote.message$.subscribe(next));
    const events: string[] = [];
    const watching = local.actor.system.inspect({
      next: (inspection) => {
        if (inspection.type === '@xstate.event' && inspection.actorRef === local.actor) events.push(inspection.event.type);
      },
    });
    const SIZE = 16 * KIB;
    const fitting = DEFAULT_HIGH_WATER_MARK / SIZE;
    for (let i = 0; i < fitting; i++) local.send(new Uint8Array(SIZE).fill(i)); // exactly the high-water mark
    expect(events).toEqual([]);
    expect(local.actor.getSnapshot().value).toEqual({ open: 'flowing' });
    local.send(new Uint8Array(SIZE).fill(fitting)); // does not fit
    expect(events).toEqual(['FLUSH']);
    expect(local.actor.getSnapshot().value).toEqual({ open: 'backpressured' });
    local.send(new Uint8Array(SIZE).fill(fitting + 1)); // queued behind it, no event
    expect(events).toEqual(['FLUSH']);
    await waitFor(() => received.values.length === fitting + 2, `${fitting + 2} chunks on B`, 10_000);
    watching.unsubscribe();
    expect(received.values.map((chunk) => new Uint8Array(chunk as ArrayBuffer)[0])).toEqual(Array.from({ length: fitting + 2 }, (_, i) => i));
    expect(local.actor.getSnapshot().context.queue.sentBytes).toBe((fitting + 2) * SIZE);
  }, 15_000);

  it('state$ says connecting, open, closing, closed in that order and completes; close() is idempotent', async () => {
    const { a, b } = startPair();
    const local = a.peer.createDataChannel('states');
    const states = collect<DataChannelState>((next, complete) => local.state$.subscribe({ next, complete }));
    const remote = await remoteOf(b, 'states');
    const remoteStates = collect<DataChannelState>((next, complete) => remote.state$.subscribe({ next, complete }));
    await waitFor(() => local.readyState === 'open' && remote.readyState === 'open', 'open on both sides');
    local.close();
    local.close();
    expect(local.readyState).toBe('closing');
    await waitFor(() => states.completed.value && remoteStates.completed.value, 'both state$ complete');
    expect(states.values).toEqual(['connecting', 'open', 'closing', 'closed']);
    expect(remoteStates.values).toEqual(['open', 'closing', 'closed']);
    expect(local.readyState).toBe('closed');
  });

  it('send after close throws DataChannelClosedError (an InvalidStateError) and sends nothing', async () => {
    const { a, b } = startPair();
    const local = a.peer.createDataChannel('gone');
    const remote = await remoteOf(b, 'gone');
    const received = collect<string | ArrayBuffer>((next, complete) => remote.message$.subscribe({ next, complete }));
    await waitFor(() => local.readyState === 'open', 'open');
    local.close();
    let thrown: unknown;
    try {
      local.send('too late');
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(DataChannelClosedError);
    expect(thrown).toMatchObject({ name: 'InvalidStateError', label: 'gone', readyState: 'closing', data: 'too late' });
    await waitFor(() => local.readyState === 'closed' && received.completed.value, 'closed, and message$ complete on B');
    expect(() => local.send(new Uint8Array(1))).toThrow(DataChannelClosedError);
    expect(() => local.send('x')).toThrow(/"gone" is closed/);
    expect(received.values).toEqual([]);
  });

  it('reports on unsent$ what was queued when the channel closed', () => {
    const { a } = startPair();
    const local = a.peer.createDataChannel('unsent');
    const unsent = collect<{ data: unknown; bytes: number }>((next) => local.unsent$.subscribe(next));
    local.send('queued');
    local.send(new Uint8Array(4));
    local.close(); // still connecting: nothing was sent
    expect(unsent.values).toEqual([
      { data: 'queued', bytes: 6 },
      { data: new Uint8Array(4), bytes: 4 },
    ]);
    expect(local.bufferedAmount).toBe(0);
  });

  it('is closed once its peer has closed', async () => {
    const { a } = startPair();
    const local = a.peer.createDataChannel('with-peer');
    const states = collect<DataChannelState>((next, complete) => local.state$.subscribe({ next, complete }));
    a.peer.close();
    await waitFor(() => states.completed.value, 'state$ complete');
    expect(local.readyState).toBe('closed');
    expect(states.values.at(-1)).toBe('closed');
    expect(() => local.send('x')).toThrow(DataChannelClosedError);
  });
});

describe('DataChannel.message$: messages come from the channel, not through the machine', () => {
  /** A channel port whose events wait for its first subscriber, as the browser adapter's do. */
  function heldChannel(): { port: DataChannelPort; events: BufferUntilSubscribed<DataChannelEvent> } {
    const events = new BufferUntilSubscribed<DataChannelEvent>();
    let readyState: DataChannelState = 'open';
    const port: DataChannelPort = {
      label: 'chat',
      id: 1,
      ordered: true,
      protocol: '',
      get readyState() {
        return readyState;
      },
      bufferedAmount: 0,
      bufferedAmountLowThreshold: 0,
      events$: events.observable,
      send: () => undefined,
      close: () => {
        readyState = 'closed';
        events.next({ type: 'close' });
        events.complete();
      },
    };
    return { port, events };
  }

  it('a handle taken before its actor starts (a remote channel being adopted) gets what the channel held, then the rest, and completes at close', () => {
    const { port, events } = heldChannel();
    events.next({ type: 'open' });
    events.next({ type: 'message', data: 'early' });
    const actor = createActor(dataChannelMachine, { input: { channel: port } });
    const handle = dataChannelOf(actor);
    const received = collect<string | ArrayBuffer>((next, complete) => handle.message$.subscribe({ next, complete }));
    actor.start();
    expect(received.values).toEqual(['early']);
    events.next({ type: 'message', data: 'later' });
    expect(received.values).toEqual(['early', 'later']);
    expect(handle.readyState).toBe('open');
    handle.close();
    expect(received.completed.value).toBe(true);
    expect(handle.readyState).toBe('closed');
  });
});
