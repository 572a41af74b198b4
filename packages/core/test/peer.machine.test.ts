import { Subject, merge } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { AnyActorRef, InspectionEvent, SnapshotFrom } from 'xstate';
import { DEFAULT_HIGH_WATER_MARK, createPeer } from '../src/index.js';
import type { CreatePeerOptions, PeerMachine, DataChannel, Peer, PeerAppEvent, RtcPortEvent } from '../src/index.js';
import { createFakeNetwork, createSignalingPair } from '../src/testing/index.js';
import type { FakeNetwork, FakeNetworkOptions, FakeRtcPort, FakeSignalingPort, FakeTrackHandle } from '../src/testing/index.js';
import { sleep, waitFor } from './helpers/wait-for.js';

// The peer composition (negotiation + ICE gathering + connection + data channels) through the
// public `createPeer` helper, two peers over the fake network WITHOUT a scheduler: every fake
// step is a macrotask, so the tests wait on observable conditions with `waitFor`.

// ---- helpers ----



type PeerOptions = Omit<Partial<CreatePeerOptions>, 'rtc' | 'signaling' | 'polite'>;

interface Side {
  readonly name: 'A' | 'B';
  readonly port: FakeRtcPort;
  readonly signaling: FakeSignalingPort;
  readonly peer: Peer;
  /** Everything `events$` delivered (empty when the side was started unsubscribed). */
  readonly events: PeerAppEvent[];
  /** Set when `events$` completes. */
  readonly completed: { value: boolean };
}

interface Pair {
  readonly network: FakeNetwork;
  /** Impolite. */
  readonly a: Side;
  /** Polite. */
  readonly b: Side;
}

const started: Peer[] = [];

afterEach(() => {
  for (const peer of started.splice(0)) if (peer.actor.getSnapshot().status === 'active') peer.close();
});

function startSide(name: 'A' | 'B', port: FakeRtcPort, signaling: FakeSignalingPort, options: PeerOptions, subscribe: boolean): Side {
  const peer = createPeer({ ...options, rtc: port, signaling, polite: name === 'B' });
  started.push(peer);
  const events: PeerAppEvent[] = [];
  const completed = { value: false };
  if (subscribe) {
    peer.events$.subscribe({ next: (event) => events.push(event), complete: () => (completed.value = true) });
  }
  return { name, port, signaling, peer, events, completed };
}

interface PairOptions {
  readonly both?: PeerOptions;
  readonly a?: PeerOptions;
  readonly b?: PeerOptions;
  readonly network?: FakeNetworkOptions;
  /** Runs on the ports before the peers are created (e.g. add a transceiver, like an app's camera). */
  readonly beforeStart?: (ports: { readonly a: FakeRtcPort; readonly b: FakeRtcPort }) => void;
  /** Subscribe to `events$` at once (default true). */
  readonly subscribe?: boolean;
}

function startPair(options: PairOptions = {}): Pair {
  const network = createFakeNetwork(options.network);
  const portA = network.createPort({ name: 'A' });
  const portB = network.createPort({ name: 'B' });
  const [sigA, sigB] = createSignalingPair();
  options.beforeStart?.({ a: portA, b: portB });
  const subscribe = options.subscribe ?? true;
  const a = startSide('A', portA, sigA, { ...options.both, ...options.a }, subscribe);
  const b = startSide('B', portB, sigB, { ...options.both, ...options.b }, subscribe);
  return { network, a, b };
}

const isConnected = (side: Side): boolean =>
  side.port.connectionState === 'connected' && side.peer.actor.getSnapshot().context.connectionState === 'connected';

async function connected(pair: Pair): Promise<void> {
  await waitFor(() => isConnected(pair.a) && isConnected(pair.b), 'both peers connected');
}

function ofType<T extends PeerAppEvent['type']>(events: readonly PeerAppEvent[], type: T): Extract<PeerAppEvent, { type: T }>[] {
  return events.filter((event): event is Extract<PeerAppEvent, { type: T }> => event.type === type);
}

function channelEvent(side: Side, label: string): Extract<PeerAppEvent, { type: 'datachannel' }> | undefined {
  return ofType(side.events, 'datachannel').find((event) => event.label === label);
}

const isOpen = (channel: DataChannel | undefined): boolean => channel?.readyState === 'open';

/** Waits for the `label` channel on both sides and for both to be open. */
async function openChannels(pair: Pair, label: string): Promise<{ a: DataChannel; b: DataChannel }> {
  await waitFor(
    () => isOpen(channelEvent(pair.a, label)?.channel) && isOpen(channelEvent(pair.b, label)?.channel),
    `data channel '${label}' open on both sides`,
  );
  return { a: channelEvent(pair.a, label)!.channel, b: channelEvent(pair.b, label)!.channel };
}

function messagesOn(side: Side, label: string): (string | ArrayBuffer)[] {
  return ofType(side.events, 'message')
    .filter((event) => event.label === label)
    .map((event) => event.data);
}

type PeerSnapshot = SnapshotFrom<PeerMachine>;

/** The state value of an inspected snapshot, as JSON (inspection snapshots are untyped). */
const valueOf = (snapshot: unknown): string => JSON.stringify((snapshot as { value?: unknown }).value ?? null);

// ---- createPeer ----

describe('createPeer', () => {
  it('returns a started actor, the helpers, and a state$ of snapshots that completes when the peer is done', () => {
    const network = createFakeNetwork();
    const port = network.createPort();
    const [signaling] = createSignalingPair();
    const peer = createPeer({ rtc: port, signaling, polite: false });
    started.push(peer);

    // The Peer members (commands are methods of the handle, state$ is made on first read).
    for (const member of ['actor', 'close', 'createDataChannel', 'events$', 'restartIce', 'state$']) expect(member in peer).toBe(true);
    expect(peer.state$).toBe(peer.state$);
    expect(typeof peer.close).toBe('function');
    expect(typeof peer.createDataChannel).toBe('function');
    expect(typeof peer.restartIce).toBe('function');
    // Already started: running its three regions, and no child actor until a data channel.
    expect(peer.actor.getSnapshot().status).toBe('active');
    expect(peer.actor.getSnapshot().value).toEqual({ running: { negotiation: 'stable', iceGathering: 'new', connection: 'new' } });
    expect(Object.keys(peer.actor.getSnapshot().children)).toEqual([]);

    const snapshots: PeerSnapshot[] = [];
    let completed = false;
    peer.state$.subscribe({ next: (snapshot) => snapshots.push(snapshot), complete: () => (completed = true) });
    // The current snapshot at once (rxjs Observable of xstate snapshots).
    expect(snapshots).toHaveLength(1);
    expect(snapshots[0]!.status).toBe('active');
    expect(snapshots[0]!.context.rtc).toBe(port);

    // A data channel created through the helper: its handle is returned, its actor spawned in context.
    const channel = peer.createDataChannel('files', { ordered: true });
    expect(peer.actor.getSnapshot().context.channels).toEqual([channel.actor]);
    expect(channel.label).toBe('files');
    expect(port.getDataChannels().map((c) => c.label)).toEqual(['files']);
    expect(snapshots.length).toBeGreaterThan(1);

    peer.close();
    expect(completed).toBe(true);
    const last = snapshots[snapshots.length - 1]!;
    expect(last.status).toBe('done');
    expect(last.output).toEqual({ reason: 'closed' });
    expect(port.signalingState).toBe('closed');
    // A late subscriber gets the final snapshot and completion.
    let lateCompleted = false;
    const late: PeerSnapshot[] = [];
    peer.state$.subscribe({ next: (snapshot) => late.push(snapshot), complete: () => (lateCompleted = true) });
    expect(late.map((snapshot) => snapshot.status)).toEqual(['done']);
    expect(lateCompleted).toBe(true);
  });
});

// webrtc-pc §4.4.1.7 createDataChannel may throw (a negotiated id in use, a bad init): the
// app gets the error, the peer keeps running.
describe('createPeer.createDataChannel failures', () => {
  it('throws the port error for a negotiated id already in use, and the peer keeps running', async () => {
    const pair = startPair({ both: { dataChannels: [{ label: 'sync', init: { negotiated: true, id: 5 } }] } });
    await connected(pair);
    try {
      expect(() => pair.a.peer.createDataChannel('dup', { negotiated: true, id: 5 })).toThrow(/already in use/);
      expect(pair.a.peer.actor.getSnapshot().status).toBe('active');
      expect(pair.a.completed.value).toBe(false);
      expect(pair.a.peer.actor.getSnapshot().context.channels).toHaveLength(1);
    } finally {
      // Were the peer to error, its port and subscriptions would leak: stop them by hand.
      if (pair.a.peer.actor.getSnapshot().status !== 'active') {
        pair.a.port.close();
        pair.a.signaling.close();
      }
    }
  });

  it('throws after close() instead of returning an older channel actor', async () => {
    const pair = startPair({ both: { dataChannels: [{ label: 'chat' }] } });
    await connected(pair);
    const first = pair.a.peer.actor.getSnapshot().context.channels[0];
    expect(first?.id).toBe('channel-0-chat');
    pair.a.peer.close();
    let returned: DataChannel | undefined;
    expect(() => (returned = pair.a.peer.createDataChannel('after-close'))).toThrow(/closed/);
    expect(returned).toBeUndefined();
  });
});

// ---- two peers ----

describe('two peers over the fake network', () => {
  it('connect, reporting state changes, negotiation rounds, remote tracks and data channels on both sides', async () => {
    const pair = startPair({
      both: { dataChannels: [{ label: 'chat' }] },
      // Like an app adding its microphone before handing the connection over.
      beforeStart: ({ a }) => void a.addTransceiver('audio'),
    });
    await connected(pair);
    await openChannels(pair, 'chat');
    const { a, b } = pair;

    for (const side of [a, b]) {
      const context = side.peer.actor.getSnapshot().context;
      expect(context.connectionState).toBe('connected');
      expect(ofType(side.events, 'signalingstatechange').at(-1)?.state).toBe('stable');
      expect(ofType(side.events, 'iceconnectionstatechange').at(-1)?.state).toBe('connected');
      expect(context.negotiationRounds).toBeGreaterThanOrEqual(1);
      expect(side.port.signalingState).toBe('stable');
      expect(side.port.connectionState).toBe('connected');
      const connection = ofType(side.events, 'connectionstatechange').map((event) => event.state);
      expect(connection).toContain('connecting');
      expect(connection[connection.length - 1]).toBe('connected');
      expect(connection.indexOf('connecting')).toBeLessThan(connection.indexOf('connected'));
      expect(ofType(side.events, 'negotiated').length).toBeGreaterThanOrEqual(1);
      expect(ofType(side.events, 'error')).toEqual([]);
    }
    // A (impolite, it has something to negotiate) offers; B answers.
    expect(ofType(a.events, 'signalingstatechange').map((event) => event.state).slice(0, 2)).toEqual(['have-local-offer', 'stable']);
    expect(ofType(b.events, 'signalingstatechange').map((event) => event.state).slice(0, 2)).toEqual(['have-remote-offer', 'stable']);
    expect(ofType(a.events, 'negotiated')[0]).toEqual({ type: 'negotiated', round: 1, iceRestart: false });
    expect(ofType(b.events, 'negotiated')[0]).toEqual({ type: 'negotiated', round: 1, iceRestart: false });

    // B received A's audio: a track event with the handle of B's matching transceiver.
    const tracks = ofType(b.events, 'track');
    expect(tracks).toHaveLength(1);
    const receiver = b.port.getTransceivers()[0]!;
    expect(tracks[0]!.track).toBe(receiver.receiverTrack);
    expect((tracks[0]!.track as FakeTrackHandle).kind).toBe('audio');
    expect(tracks[0]!.mid).toBe(receiver.mid);
    expect(a.port.getTransceivers()).toHaveLength(1);
    expect(b.port.getTransceivers()).toHaveLength(1);

    // The chat channel: created by A (local), announced to B (remote).
    expect(ofType(a.events, 'datachannel').map(({ label, origin }) => ({ label, origin }))).toEqual([{ label: 'chat', origin: 'local' }]);
    expect(ofType(b.events, 'datachannel').map(({ label, origin }) => ({ label, origin }))).toEqual([{ label: 'chat', origin: 'remote' }]);
    expect(a.peer.actor.getSnapshot().context.channels).toEqual([channelEvent(a, 'chat')!.channel.actor]);
    expect(b.peer.actor.getSnapshot().context.channels).toEqual([channelEvent(b, 'chat')!.channel.actor]);
  });

  it('a track event reaches A when B adds a transceiver later (renegotiation by the polite side)', async () => {
    const pair = startPair({ beforeStart: ({ a }) => void a.addTransceiver('audio') });
    await connected(pair);
    const roundsBefore = ofType(pair.b.events, 'negotiated').length;
    pair.b.port.addTransceiver('video');
    await waitFor(() => ofType(pair.a.events, 'track').length === 1, 'a track event on A');
    const track = ofType(pair.a.events, 'track')[0]!;
    expect((track.track as FakeTrackHandle).kind).toBe('video');
    const videoOnA = pair.a.port.getTransceivers().find((t) => t.kind === 'video');
    expect(track.track).toBe(videoOnA?.receiverTrack);
    await waitFor(() => pair.a.port.getTransceivers().every((t) => t.mid !== null) && pair.b.port.signalingState === 'stable', 'stable');
    expect(ofType(pair.b.events, 'negotiated').length).toBeGreaterThan(roundsBefore);
    expect(pair.a.port.getTransceivers()).toHaveLength(2);
    expect(pair.b.port.getTransceivers()).toHaveLength(2);
  });

  it('carries strings and binary both ways through the channel handles, and a 200 x 16 KiB burst complete and in order', async () => {
    const pair = startPair({ both: { dataChannels: [{ label: 'chat' }] } });
    await connected(pair);
    const channels = await openChannels(pair, 'chat');

    channels.a.send('hello B');
    await waitFor(() => messagesOn(pair.b, 'chat').length === 1, 'the string on B');
    const received = ofType(pair.b.events, 'message')[0]!;
    expect(received).toMatchObject({ type: 'message', label: 'chat', data: 'hello B' });
    expect(received.channel).toBe(channels.b);

    const bytes = new Uint8Array([1, 2, 3, 250, 255]);
    channels.b.send(bytes.buffer.slice(0));
    channels.b.send('and text');
    await waitFor(() => messagesOn(pair.a, 'chat').length === 2, 'binary and text on A');
    const [binary, text] = messagesOn(pair.a, 'chat');
    expect(binary).toBeInstanceOf(ArrayBuffer);
    expect([...new Uint8Array(binary as ArrayBuffer)]).toEqual([1, 2, 3, 250, 255]);
    expect(text).toBe('and text');

    // Backpressure: 3.2 MiB at once is far above the high-water mark.
    const COUNT = 200;
    const SIZE = 16 * 1024;
    const statesSeen = new Set<string>();
    let maxBuffered = 0;
    const watch = channels.a.actor.subscribe((snapshot) => {
      statesSeen.add(JSON.stringify(snapshot.value));
      maxBuffered = Math.max(maxBuffered, snapshot.context.channel.bufferedAmount);
    });
    for (let i = 0; i < COUNT; i++) {
      const chunk = new Uint8Array(SIZE);
      new DataView(chunk.buffer).setUint32(0, i);
      chunk.fill(i % 251, 4);
      channels.a.send(chunk.buffer);
    }
    expect(channels.a.actor.getSnapshot().context.queue.length).toBeGreaterThan(0);
    await waitFor(() => messagesOn(pair.b, 'chat').length === 1 + COUNT, `${COUNT} chunks on B`, 10_000);
    watch.unsubscribe();
    const chunks = messagesOn(pair.b, 'chat').slice(1);
    expect(chunks.every((chunk) => chunk instanceof ArrayBuffer && chunk.byteLength === SIZE)).toBe(true);
    expect(chunks.map((chunk) => new DataView(chunk as ArrayBuffer).getUint32(0))).toEqual(Array.from({ length: COUNT }, (_, i) => i));
    expect(chunks.every((chunk, i) => new Uint8Array(chunk as ArrayBuffer)[SIZE - 1] === i % 251)).toBe(true);
    expect(statesSeen.has(JSON.stringify({ open: 'backpressured' }))).toBe(true);
    expect(maxBuffered).toBeLessThanOrEqual(DEFAULT_HIGH_WATER_MARK);
    expect(channels.a.actor.getSnapshot().context.queue.length).toBe(0);
    expect(channels.a.actor.getSnapshot().context.queue.sentBytes).toBe(7 + COUNT * SIZE);
  }, 15_000);

  it('given the same dataChannels list, makes exactly one channel: created by the impolite side, received by the polite one', async () => {
    const pair = startPair({ both: { dataChannels: [{ label: 'chat' }] } });
    await connected(pair);
    await openChannels(pair, 'chat');
    await sleep(50); // time for a second channel to show up, if one were made
    expect(pair.a.port.getDataChannels().map((c) => c.label)).toEqual(['chat']);
    expect(pair.b.port.getDataChannels().map((c) => c.label)).toEqual(['chat']);
    expect(pair.a.port.operations.filter((op) => op.startsWith('createDataChannel'))).toEqual(['createDataChannel("chat")']);
    expect(pair.b.port.operations.filter((op) => op.startsWith('createDataChannel'))).toEqual([]);
    expect(ofType(pair.a.events, 'datachannel').map((e) => e.origin)).toEqual(['local']);
    expect(ofType(pair.b.events, 'datachannel').map((e) => e.origin)).toEqual(['remote']);
    expect(pair.a.peer.actor.getSnapshot().context.channels).toHaveLength(1);
    expect(pair.b.peer.actor.getSnapshot().context.channels).toHaveLength(1);
  });

  it('creates a negotiated channel on both sides, and the two pair up by id', async () => {
    const pair = startPair({ both: { dataChannels: [{ label: 'sync', init: { negotiated: true, id: 5 } }] } });
    await connected(pair);
    const channels = await openChannels(pair, 'sync');
    for (const side of [pair.a, pair.b]) {
      expect(ofType(side.events, 'datachannel').map(({ label, origin }) => ({ label, origin }))).toEqual([{ label: 'sync', origin: 'local' }]);
      expect(side.port.getDataChannels().map((c) => ({ label: c.label, id: c.id, negotiated: c.negotiated }))).toEqual([
        { label: 'sync', id: 5, negotiated: true },
      ]);
      expect(side.port.illegalCalls).toEqual([]);
    }
    channels.b.send('from B');
    channels.a.send('from A');
    await waitFor(() => messagesOn(pair.a, 'sync').length === 1 && messagesOn(pair.b, 'sync').length === 1, 'a message each way');
    expect(messagesOn(pair.a, 'sync')).toEqual(['from B']);
    expect(messagesOn(pair.b, 'sync')).toEqual(['from A']);
  });

  it('holds events raised before the first subscriber of events$', async () => {
    const pair = startPair({ both: { dataChannels: [{ label: 'chat' }] }, subscribe: false });
    await sleep(0);
    const early: PeerAppEvent[] = [];
    pair.a.peer.events$.subscribe((event) => early.push(event));
    // A's chat channel was created (and its event raised) while the peer started, before this.
    expect(early[0]).toMatchObject({ type: 'datachannel', label: 'chat', origin: 'local' });

    // B subscribes only once everything happened: it still sees it all, in order.
    await waitFor(() => isConnected(pair.b) && pair.b.peer.actor.getSnapshot().context.channels.length === 1, 'B connected with a channel');
    const late: PeerAppEvent[] = [];
    pair.b.peer.events$.subscribe((event) => late.push(event));
    expect(late.find((event) => event.type === 'datachannel')).toMatchObject({ label: 'chat', origin: 'remote' });
    expect(ofType(late, 'connectionstatechange').map((event) => event.state)).toEqual(['connecting', 'connected']);
    expect(ofType(late, 'signalingstatechange')[0]).toEqual({ type: 'signalingstatechange', state: 'have-remote-offer' });
    expect(ofType(late, 'negotiated')).toHaveLength(1);
  });

  it('drops negotiation messages of another session with a notice, without disturbing negotiation', async () => {
    const pair = startPair({ both: { session: 'call-1', dataChannels: [{ label: 'chat' }] } });
    // A stale offer and candidate of an old call reach B before A's real offer.
    const stale = createFakeNetwork().createPort();
    stale.addTransceiver('video');
    const staleOffer = await stale.createOffer();
    pair.a.signaling.send({ kind: 'description', session: 'old-call', description: { type: 'offer', sdp: staleOffer.sdp ?? '' } });
    pair.a.signaling.send({
      kind: 'candidate',
      session: 'old-call',
      candidate: { candidate: 'candidate:1 1 udp 2122260223 10.9.9.9 40000 typ host', sdpMid: '0', sdpMLineIndex: 0 },
    });
    await connected(pair);
    await openChannels(pair, 'chat');

    const notices = ofType(pair.b.events, 'notice').filter((event) => event.notice === 'other-session');
    expect(notices.map((event) => event.detail)).toEqual(['description of session old-call', 'candidate of session old-call']);
    // Only A's offer was applied on B; the stale video section never arrived.
    expect(pair.b.port.operations.filter((op) => op.startsWith('setRemoteDescription'))).toEqual(['setRemoteDescription(offer)']);
    expect(pair.b.port.getTransceivers()).toHaveLength(0);
    expect(pair.b.port.operations.some((op) => op.includes('10.9.9.9'))).toBe(false);
    expect(ofType(pair.b.events, 'error')).toEqual([]);
    expect(pair.b.port.illegalCalls).toEqual([]);
    // Everything the peers sent carries their session.
    expect(pair.b.signaling.sent.every((message) => message.session === 'call-1')).toBe(true);
    expect(pair.b.signaling.sent.length).toBeGreaterThan(0);
  });
});

// ---- inspect ----

describe('inspect', () => {
  it('receives the events and snapshots of the peer (its regions: negotiation, iceGathering, connection) and of a spawned data channel', async () => {
    const inspected: InspectionEvent[] = [];
    const pair = startPair({
      a: { inspect: (event) => inspected.push(event), dataChannels: [{ label: 'chat' }] },
    });
    await connected(pair);
    const channel = (await openChannels(pair, 'chat')).a.actor;
    const peer = pair.a.peer.actor;

    const about = (actor: AnyActorRef | undefined, type: InspectionEvent['type']): InspectionEvent[] =>
      inspected.filter((event) => event.type === type && event.actorRef === actor);
    const eventTypes = about(peer, '@xstate.event').map((event) => (event.type === '@xstate.event' ? event.event.type : ''));

    for (const actor of [peer, channel]) expect(about(actor, '@xstate.actor')).toHaveLength(1);
    // The negotiation region took the port's negotiationneeded and its snapshots went through makingOffer.
    expect(eventTypes).toContain('RTC.NEGOTIATION_NEEDED');
    expect(
      about(peer, '@xstate.snapshot').some((event) => event.type === '@xstate.snapshot' && valueOf(event.snapshot).includes('makingOffer')),
    ).toBe(true);
    // The connection region saw the 'connected' report, and the gathering region the candidates.
    expect(
      about(peer, '@xstate.event').some(
        (event) => event.type === '@xstate.event' && event.event.type === 'RTC.CONNECTION_STATE' && (event.event as { state?: string }).state === 'connected',
      ),
    ).toBe(true);
    expect(eventTypes).toContain('RTC.ICE_CANDIDATE');
    // The spawned channel actor's open state is inspected, and it is a child of the peer.
    expect(
      about(channel, '@xstate.snapshot').some((event) => event.type === '@xstate.snapshot' && valueOf(event.snapshot).includes('open')),
    ).toBe(true);
    expect(channel.id).toMatch(/^channel-0-chat$/);
    expect(channel._parent).toBe(pair.a.peer.actor);
    // B was created without inspect: nothing of B's actors reached A's inspector.
    expect(inspected.some((event) => event.actorRef === pair.b.peer.actor)).toBe(false);
  });
});

// ---- close ----

describe('close()', () => {
  it('ends the actor done with reason closed, closes the port, completes events$ and emits nothing after; the other side notices', async () => {
    const pair = startPair({ both: { dataChannels: [{ label: 'chat' }] } });
    await connected(pair);
    const channels = await openChannels(pair, 'chat');
    const { a, b } = pair;

    let stateCompleted = false;
    a.peer.state$.subscribe({ complete: () => (stateCompleted = true) });
    a.peer.close();
    const countAtClose = a.events.length;

    expect(a.peer.actor.getSnapshot().status).toBe('done');
    expect(a.peer.actor.getSnapshot().value).toBe('closed');
    expect(a.peer.actor.getSnapshot().output).toEqual({ reason: 'closed' });
    expect(a.port.signalingState).toBe('closed');
    expect(a.port.connectionState).toBe('closed');
    expect(a.port.operations).toContain('close()');
    expect(a.completed.value).toBe(true);
    expect(stateCompleted).toBe(true);
    expect(channels.a.actor.getSnapshot().status).not.toBe('active');
    expect(channels.a.readyState).toBe('closed');

    // Commands after close do nothing and raise nothing.
    a.peer.restartIce();
    await waitFor(() => b.port.connectionState !== 'connected', 'B noticing the loss of A');
    await waitFor(() => b.peer.actor.getSnapshot().context.connectionState !== 'connected', "B's peer leaving connected");
    await waitFor(() => channels.b.actor.getSnapshot().status === 'done', "B's chat channel closed");
    await sleep(100);
    expect(a.events.length).toBe(countAtClose);
    expect(a.port.illegalCalls).toEqual([]);
    expect(['disconnected', 'failed']).toContain(b.peer.actor.getSnapshot().context.connectionState);
    expect(ofType(b.events, 'connectionstatechange').map((event) => event.state)).toContain('disconnected');
  });
});

// ---- recovery ----

describe('connection recovery', () => {
  // The backoff must outlast one restart round plus ICE checks (a handful of macrotasks, tens
  // of ms on a loaded machine): a restart requested before the previous one connected supersedes
  // it, and with 30 ms the restarts can keep superseding each other and never reconnect.
  const delays = { disconnectedGrace: 20, iceRestartBackoff: 150, connectTimeout: 500 };

  it('restarts ICE from the impolite side when connectivity drops, and both sides reconnect when it returns', async () => {
    // A generous attempt budget: the test decides when connectivity returns, not a race with
    // the backoff schedule.
    const pair = startPair({ both: { delays, maxIceRestarts: 20, dataChannels: [{ label: 'chat' }] } });
    await connected(pair);
    const channels = await openChannels(pair, 'chat');
    const restartsBefore = ofType(pair.a.events, 'negotiated').filter((event) => event.iceRestart).length;
    expect(restartsBefore).toBe(0);

    pair.network.setConnectivity(false);
    await waitFor(() => pair.a.peer.actor.getSnapshot().context.connectionState !== 'connected', 'A losing the connection');
    await waitFor(() => ofType(pair.a.events, 'negotiated').some((event) => event.iceRestart), 'an ICE-restart negotiation by A');
    pair.network.setConnectivity(true);
    await connected(pair);

    // The impolite side restarted ICE; the polite one never offered a restart.
    expect(pair.a.port.operations).toContain('createOffer({iceRestart: true})');
    expect(pair.b.port.operations).not.toContain('createOffer({iceRestart: true})');
    expect(ofType(pair.b.events, 'negotiated').some((event) => event.iceRestart)).toBe(false);
    for (const side of [pair.a, pair.b]) {
      expect(side.peer.actor.getSnapshot().status).toBe('active');
      expect(ofType(side.events, 'error')).toEqual([]);
      expect(side.port.illegalCalls).toEqual([]);
    }
    // The data channel survived.
    channels.a.send('still there?');
    await waitFor(() => messagesOn(pair.b, 'chat').includes('still there?'), 'a message after recovery');
  });

  it('ends both peers done with reason connection-failed after maxIceRestarts when connectivity never returns', async () => {
    const pair = startPair({ both: { delays, maxIceRestarts: 2 } , beforeStart: ({ a }) => void a.addTransceiver('audio') });
    await connected(pair);
    pair.network.setConnectivity(false);
    await waitFor(
      () => pair.a.peer.actor.getSnapshot().status === 'done' && pair.b.peer.actor.getSnapshot().status === 'done',
      'both peers done',
    );
    for (const side of [pair.a, pair.b]) {
      const snapshot = side.peer.actor.getSnapshot();
      expect(snapshot.value).toBe('failed');
      expect(snapshot.output).toMatchObject({ reason: 'connection-failed' });
      expect(snapshot.output?.detail).toContain('(2)');
      expect(side.port.signalingState).toBe('closed');
      expect(side.completed.value).toBe(true);
    }
    // Restart offers come from the impolite side only: the first at once, the second unless it
    // was merged into the first because that round was still in flight (deferred to the next offer).
    const restartOffers = pair.a.port.operations.filter((op) => op === 'createOffer({iceRestart: true})').length;
    expect(restartOffers).toBeGreaterThanOrEqual(1);
    expect(restartOffers).toBeLessThanOrEqual(2);
    expect(pair.b.port.operations.filter((op) => op === 'createOffer({iceRestart: true})')).toHaveLength(0);
  });
});

// ---- TURN credential refusals ----

describe('TURN credential refusals (icecandidateerror 401/441 from a turn: URL)', () => {
  const delays = { disconnectedGrace: 20, iceRestartBackoff: 60, connectTimeout: 150 };

  /** The fake port with extra RTC events pushed in, as an engine reports icecandidateerror. */
  function withInjectedEvents(port: FakeRtcPort): { rtc: FakeRtcPort; inject: (event: RtcPortEvent) => void } {
    const injected = new Subject<RtcPortEvent>();
    const events$ = merge(port.events$, injected);
    const rtc = new Proxy(port, {
      get(target, property) {
        if (property === 'events$') return events$;
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    return { rtc, inject: (event) => injected.next(event) };
  }

  function startRefusedPair(connectivity: boolean) {
    const network = createFakeNetwork();
    network.setConnectivity(connectivity);
    const a = withInjectedEvents(network.createPort({ name: 'A' }));
    const b = network.createPort({ name: 'B' });
    const [sigA, sigB] = createSignalingPair();
    const options = { delays, maxIceRestarts: 1, dataChannels: [{ label: 'chat' }] };
    const peerA = createPeer({ ...options, rtc: a.rtc, signaling: sigA, polite: false });
    const peerB = createPeer({ ...options, rtc: b, signaling: sigB, polite: true });
    started.push(peerA, peerB);
    return { network, inject: a.inject, peerA, peerB };
  }

  const refusal: RtcPortEvent = { type: 'icecandidateerror', errorCode: 401, errorText: 'Unauthorized', url: 'turn:127.0.0.1:3478?transport=udp' };

  it('a connection that never connects after a refusal ends turn-unauthorized, with the refusal in the detail', async () => {
    const { inject, peerA } = startRefusedPair(false);
    inject({ type: 'icecandidateerror', errorCode: 701, errorText: 'STUN server address is incompatible.', url: 'stun:127.0.0.1:3478' });
    inject(refusal);
    await waitFor(() => peerA.actor.getSnapshot().status === 'done', 'A done', 5000);
    expect(peerA.actor.getSnapshot().output).toEqual({
      reason: 'turn-unauthorized',
      detail: 'TURN server refused the credentials: 401 Unauthorized (turn:127.0.0.1:3478?transport=udp); ICE restart attempts exhausted (1)',
    });
  });

  it('other ICE server errors (701, a stun: URL) do not change the reason', async () => {
    const { inject, peerA } = startRefusedPair(false);
    inject({ type: 'icecandidateerror', errorCode: 701, errorText: 'STUN server address is incompatible.', url: 'stun:127.0.0.1:3478' });
    inject({ type: 'icecandidateerror', errorCode: 401, errorText: 'Unauthorized', url: 'stun:127.0.0.1:3478' });
    await waitFor(() => peerA.actor.getSnapshot().status === 'done', 'A done', 5000);
    expect(peerA.actor.getSnapshot().output?.reason).not.toBe('turn-unauthorized');
  });

  it('a refusal before the connection connected does not explain a later failure', async () => {
    const { network, inject, peerA, peerB } = startRefusedPair(true);
    inject(refusal);
    await waitFor(
      () => peerA.actor.getSnapshot().context.connectionState === 'connected' && peerB.actor.getSnapshot().context.connectionState === 'connected',
      'both connected',
    );
    network.setConnectivity(false);
    await waitFor(() => peerA.actor.getSnapshot().status === 'done', 'A done', 5000);
    expect(peerA.actor.getSnapshot().output?.reason).toBe('connection-failed');
  });
});
