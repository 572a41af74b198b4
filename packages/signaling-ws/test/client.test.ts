import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PeerMessage } from '@parley/core';
import {
  createSignalingClient,
  DEFAULT_SEND_BURST,
  DEFAULT_SEND_RATE,
  ICE_SERVERS_REFRESH_FLOOR_MS,
  ICE_SERVERS_RETRY_MS,
  iceServersRefreshDelay,
  SignalingError,
} from '../src/client/index.js';
import { fullJitterBackoff } from '../src/client/signaling-client.machine.js';
import type { PeerInfo, SignalingClient, SignalingClientOptions, SignalingClientStatus } from '../src/client/index.js';
import { DEFAULT_RATE_LIMIT } from '../src/protocol.js';
import type { ClientFrame, ServerFrame } from '../src/protocol.js';

// Machine and client tests against a hand-driven fake WebSocket: every open, frame and close
// happens exactly when the test says so, and timers are vitest's fake timers.

const OPEN = 1;

interface FakeSockets {
  readonly instances: FakeSocket[];
  readonly latest: () => FakeSocket;
  readonly Constructor: new (url: string) => FakeSocket;
}

class FakeSocket {
  readyState = 0;
  onopen: (() => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  readonly sent: string[] = [];
  readonly closeCalls: { code: number | undefined; reason: string | undefined }[] = [];

  constructor(readonly url: string) {}

  send(data: string): void {
    // Browsers throw InvalidStateError while CONNECTING and drop silently once closing.
    if (this.readyState === 0) throw new Error('InvalidStateError: still connecting');
    if (this.readyState !== OPEN) return;
    this.sent.push(data);
  }
  close(code?: number, reason?: string): void {
    this.closeCalls.push({ code, reason });
    this.readyState = 2;
  }

  // ---- the test drives these ----
  open(): void {
    this.readyState = OPEN;
    this.onopen?.();
  }
  receive(frame: ServerFrame | string | Uint8Array): void {
    this.onmessage?.({ data: typeof frame === 'string' || frame instanceof Uint8Array ? frame : JSON.stringify(frame) });
  }
  drop(code = 1006, reason = ''): void {
    this.readyState = 3;
    this.onerror?.();
    this.onclose?.({ code, reason });
  }
  frames(): ClientFrame[] {
    return this.sent.map((text) => JSON.parse(text) as ClientFrame);
  }
  signals(): { to: string; data: unknown }[] {
    return this.frames().flatMap((frame) => (frame.type === 'signal' ? [{ to: frame.to, data: frame.data }] : []));
  }
}

function fakeSockets(): FakeSockets {
  const instances: FakeSocket[] = [];
  class Recorded extends FakeSocket {
    constructor(url: string) {
      super(url);
      instances.push(this);
    }
  }
  return {
    instances,
    latest: () => {
      const socket = instances.at(-1);
      if (socket === undefined) throw new Error('no socket was opened');
      return socket;
    },
    Constructor: Recorded,
  };
}

const ALICE: PeerInfo = { id: 'a1', name: 'alice' };
const BOB: PeerInfo = { id: 'b1', name: 'bob' };
const CAROL: PeerInfo = { id: 'c1', name: 'carol' };

function welcome(id: string, peers: PeerInfo[] = [BOB], resume = `resume-${id}`): ServerFrame {
  return { type: 'welcome', id, resume, peers, iceServers: [{ urls: 'stun:stun.example.org' }] };
}

function invite(session: string): PeerMessage {
  return { kind: 'invite', session };
}

interface Harness {
  readonly client: SignalingClient;
  readonly sockets: FakeSockets;
  readonly errors: SignalingError[];
  readonly states: SignalingClientStatus[];
  /** Opens the latest socket and answers its join with `frame`. */
  readonly joinWith: (frame?: ServerFrame) => FakeSocket;
}

const clients: SignalingClient[] = [];

function harness(options: Partial<SignalingClientOptions> = {}): Harness {
  const sockets = fakeSockets();
  const client = createSignalingClient({
    url: 'ws://signaling.test/ws',
    room: 'lobby',
    name: 'alice',
    webSocket: sockets.Constructor,
    keepalive: false,
    backoff: { random: () => 0.5 },
    ...options,
  });
  clients.push(client);
  const errors: SignalingError[] = [];
  const states: SignalingClientStatus[] = [];
  client.errors$.subscribe((error) => errors.push(error));
  client.state$.subscribe((state) => states.push(state));
  const joinWith = (frame: ServerFrame = welcome(ALICE.id)): FakeSocket => {
    const socket = sockets.latest();
    socket.open();
    socket.receive(frame);
    return socket;
  };
  return { client, sockets, errors, states, joinWith };
}

function lastValue<T>(source: { subscribe(next: (value: T) => void): { unsubscribe(): void } }): T {
  let value: T | undefined;
  let seen = false;
  source
    .subscribe((next) => {
      value = next;
      seen = true;
    })
    .unsubscribe();
  if (!seen) throw new Error('no current value');
  return value as T;
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  vi.useRealTimers();
});

describe('signalingClient: joining', () => {
  it('opens the url, sends join with room, name and token, and stores the welcome', () => {
    const { client, sockets, joinWith } = harness({ token: 'tok-1' });
    expect(sockets.instances).toHaveLength(1);
    expect(sockets.latest().url).toBe('ws://signaling.test/ws');
    expect(lastValue(client.state$)).toBe('connecting');
    expect(lastValue(client.self$)).toBeNull();

    const socket = joinWith(welcome('a1', [BOB, CAROL]));
    expect(socket.frames()).toEqual([{ type: 'join', room: 'lobby', name: 'alice', token: 'tok-1' }]);
    expect(lastValue(client.state$)).toBe('joined');
    expect(lastValue(client.self$)).toEqual({ id: 'a1', name: 'alice', room: 'lobby' });
    expect(lastValue(client.peers$)).toEqual([BOB, CAROL]);
    expect(lastValue(client.iceServers$)).toEqual([{ urls: 'stun:stun.example.org' }]);
    expect(client.actor.getSnapshot().context.resume).toBe('resume-a1');
  });

  it('keeps presence from peer-joined and peer-left', () => {
    const { client, sockets, joinWith } = harness();
    joinWith(welcome('a1', [BOB]));
    const seen: string[][] = [];
    client.peers$.subscribe((peers) => seen.push(peers.map((peer) => peer.name)));
    sockets.latest().receive({ type: 'peer-joined', peer: CAROL });
    sockets.latest().receive({ type: 'peer-left', id: BOB.id });
    sockets.latest().receive({ type: 'peer-left', id: 'nobody' });
    expect(seen).toEqual([['bob'], ['bob', 'carol'], ['carol']]);
  });

  it('reports each departure once on peerLeft$, and no peer-left for an id it never knew', () => {
    const { client, sockets, joinWith } = harness();
    joinWith(welcome('a1', [BOB]));
    const left: PeerInfo[] = [];
    client.peerLeft$.subscribe((peer) => left.push(peer));
    sockets.latest().receive({ type: 'peer-joined', peer: CAROL });
    sockets.latest().receive({ type: 'peer-left', id: BOB.id });
    sockets.latest().receive({ type: 'peer-left', id: BOB.id });
    sockets.latest().receive({ type: 'peer-left', id: 'nobody' });
    expect(left).toEqual([BOB]);
  });

  it('ignores presence frames before the welcome', () => {
    const { client, sockets } = harness();
    sockets.latest().open();
    sockets.latest().receive({ type: 'peer-joined', peer: CAROL });
    expect(lastValue(client.peers$)).toEqual([]);
  });
});

describe('signalingClient: outgoing queue', () => {
  it('queues signals while connecting and flushes them in order right after the welcome', () => {
    const { client, sockets, joinWith } = harness();
    const port = client.portFor(BOB.id);
    port.send(invite('s1'));
    sockets.latest().open();
    port.send(invite('s2'));
    expect(sockets.latest().frames()).toEqual([{ type: 'join', room: 'lobby', name: 'alice' }]);

    const socket = joinWith(welcome('a1'));
    port.send(invite('s3'));
    expect(socket.frames().map((frame) => frame.type)).toEqual(['join', 'signal', 'signal', 'signal']);
    expect(socket.signals()).toEqual([
      { to: 'b1', data: invite('s1') },
      { to: 'b1', data: invite('s2') },
      { to: 'b1', data: invite('s3') },
    ]);
    expect(client.actor.getSnapshot().context.queue).toEqual([]);
  });

  it('refuses the newest message when the queue is full, keeping the oldest in order', () => {
    const { client, errors, joinWith } = harness({ maxQueue: 3 });
    const port = client.portFor(BOB.id);
    for (let i = 1; i <= 5; i++) port.send(invite(`s${i}`));
    expect(errors.map((error) => [error.code, error.peerId])).toEqual([
      ['queue-full', 'b1'],
      ['queue-full', 'b1'],
    ]);
    const socket = joinWith();
    expect(socket.signals().map((signal) => (signal.data as PeerMessage).session)).toEqual(['s1', 's2', 's3']);
  });
});

describe('signalingClient: reconnecting', () => {
  it('reconnects after an unexpected close, resumes with the token and flushes what was queued', () => {
    const { client, sockets, joinWith, states } = harness();
    const port = client.portFor(BOB.id);
    const first = joinWith(welcome('a1', [BOB], 'token-1'));
    port.send(invite('before'));
    first.drop(1006);
    expect(lastValue(client.state$)).toBe('reconnecting');
    expect(lastValue(client.self$)).toEqual({ id: 'a1', name: 'alice', room: 'lobby' });
    expect(lastValue(client.peers$)).toEqual([BOB]);

    port.send(invite('during-1'));
    port.send(invite('during-2'));
    expect(sockets.instances).toHaveLength(1);
    vi.advanceTimersByTime(125); // 0.5 * 250 ms
    expect(sockets.instances).toHaveLength(2);
    const second = sockets.latest();
    port.send(invite('during-3'));
    second.open();
    expect(second.frames()).toEqual([{ type: 'join', room: 'lobby', name: 'alice', resume: 'token-1' }]);
    second.receive(welcome('a1', [BOB], 'token-2'));
    port.send(invite('after'));

    expect(second.signals().map((signal) => [signal.to, (signal.data as PeerMessage).session])).toEqual([
      ['b1', 'during-1'],
      ['b1', 'during-2'],
      ['b1', 'during-3'],
      ['b1', 'after'],
    ]);
    expect(first.signals().map((signal) => (signal.data as PeerMessage).session)).toEqual(['before']);
    expect(client.actor.getSnapshot().context.resume).toBe('token-2');
    expect(states).toEqual(['connecting', 'joined', 'reconnecting', 'connecting', 'joined']);
  });

  it('re-queues a signal that hit a closing socket, so it goes out after the reconnect', () => {
    const { client, sockets, joinWith } = harness();
    const port = client.portFor(BOB.id);
    const first = joinWith();
    first.readyState = 2; // the server's close frame arrived; the close event has not yet
    port.send(invite('lost-in-closing'));
    first.drop(1001);
    vi.advanceTimersByTime(125);
    joinWith(welcome('a1'));
    expect(sockets.latest().signals().map((signal) => (signal.data as PeerMessage).session)).toEqual(['lost-in-closing']);
  });

  it('closes a socket it gives up on and never hears from it again', () => {
    const { client, sockets, joinWith } = harness({ keepalive: true, delays: { keepaliveInterval: 1000, keepaliveTimeout: 500 } });
    const first = joinWith();
    vi.advanceTimersByTime(1500);
    expect(lastValue(client.state$)).toBe('reconnecting');
    // Not a clean close: the server would end the session at once and the resume would fail.
    expect(first.closeCalls).toEqual([{ code: 4002, reason: 'client reconnecting' }]);
    first.receive({ type: 'peer-joined', peer: CAROL });
    first.drop(1006);
    expect(lastValue(client.peers$)).toEqual([BOB]);
    expect(lastValue(client.state$)).toBe('reconnecting');
    expect(sockets.instances).toHaveLength(1);
  });

  it('waits exponentially longer, with full jitter from the injected random source, capped at 10 s', () => {
    const draws = [0.5, 0.9, 0.1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.999];
    let index = 0;
    const { sockets } = harness({ backoff: { random: () => draws[index++] ?? 0.5 } });
    const waits: number[] = [];
    for (let attempt = 0; attempt < draws.length; attempt++) {
      sockets.latest().drop(1006); // connection refused before open
      const before = sockets.instances.length;
      let waited = 0;
      while (sockets.instances.length === before) {
        vi.advanceTimersByTime(1);
        waited++;
        if (waited > 20_000) throw new Error('never reconnected');
      }
      waits.push(waited);
    }
    // attempt n waits floor(draw * min(10000, 250 * 2^n)); a zero wait still needs one tick
    expect(waits).toEqual([125, 450, 100, 1000, 2000, 4000, 5000, 5000, 9990]);
    expect(fullJitterBackoff(40, () => 0.999999)).toBe(9999);
  });

  it('starts again from the base delay after a welcome', () => {
    const { sockets, joinWith } = harness();
    sockets.latest().drop();
    vi.advanceTimersByTime(125);
    sockets.latest().drop();
    vi.advanceTimersByTime(250);
    joinWith(); // attempt counter resets
    sockets.latest().drop();
    const before = sockets.instances.length;
    vi.advanceTimersByTime(124);
    expect(sockets.instances).toHaveLength(before);
    vi.advanceTimersByTime(1);
    expect(sockets.instances).toHaveLength(before + 1);
  });
});

describe('signalingClient: keepalive', () => {
  it('pings on an interval while joined and reconnects when a pong does not come in time', () => {
    const { client, sockets, errors, joinWith } = harness({ keepalive: true, delays: { keepaliveInterval: 1000, keepaliveTimeout: 500 } });
    const socket = joinWith();
    const pings = () => socket.frames().filter((frame) => frame.type === 'ping').length;
    vi.advanceTimersByTime(999);
    expect(pings()).toBe(0);
    vi.advanceTimersByTime(1);
    expect(pings()).toBe(1);
    socket.receive({ type: 'pong' });
    vi.advanceTimersByTime(1000);
    expect(pings()).toBe(2);
    vi.advanceTimersByTime(499);
    expect(lastValue(client.state$)).toBe('joined');
    vi.advanceTimersByTime(1);
    expect(lastValue(client.state$)).toBe('reconnecting');
    expect(errors.map((error) => error.code)).toEqual(['keepalive-timeout']);
    vi.advanceTimersByTime(125);
    expect(sockets.instances).toHaveLength(2);
  });

  it('sends no ping when keepalive is off', () => {
    const { joinWith } = harness({ keepalive: false, delays: { keepaliveInterval: 10 } });
    const socket = joinWith();
    vi.advanceTimersByTime(1000);
    expect(socket.frames().map((frame) => frame.type)).toEqual(['join']);
  });
});

describe('signalingClient: errors', () => {
  it.each(['unauthorized', 'room-full', 'name-taken'] as const)('ends closed on a %s join refusal, without retrying', async (code) => {
    const { client, sockets, errors, states, joinWith } = harness();
    const socket = joinWith({ type: 'error', code, message: `refused: ${code}` });
    expect(states).toEqual(['connecting', 'closed']);
    const reason = await client.closed;
    expect(reason).toBeInstanceOf(SignalingError);
    expect(reason).toMatchObject({ code, source: 'server', fatal: true, message: `refused: ${code}` });
    expect(errors).toEqual([reason]);
    expect(socket.closeCalls).toEqual([{ code: 1000, reason: 'client closing' }]);
    vi.advanceTimersByTime(60_000);
    expect(sockets.instances).toHaveLength(1);
  });

  it('ends closed when the server closes with 4001, and with 4000 (identity resumed elsewhere)', async () => {
    const refused = harness();
    refused.sockets.latest().open();
    refused.sockets.latest().drop(4001, 'bad token');
    expect(await refused.client.closed).toMatchObject({ code: 'unauthorized', closeCode: 4001, message: 'bad token', fatal: true });

    const replaced = harness();
    replaced.joinWith().drop(4000, '');
    expect(await replaced.client.closed).toMatchObject({ code: 'replaced', closeCode: 4000, fatal: true });
    vi.advanceTimersByTime(60_000);
    expect(refused.sockets.instances).toHaveLength(1);
    expect(replaced.sockets.instances).toHaveLength(1);
  });

  it('surfaces non-fatal error frames and malformed frames on errors$ and stays joined', () => {
    const { client, errors, sockets, joinWith } = harness();
    const socket = joinWith();
    socket.receive({ type: 'error', code: 'unknown-peer', message: 'no such peer' });
    socket.receive('{not json');
    socket.receive(JSON.stringify({ type: 'error', code: 'made-up', message: 'x' }));
    socket.receive(new Uint8Array([1, 2, 3]));
    expect(sockets.instances).toHaveLength(1);
    expect(errors.map((error) => [error.code, error.source])).toEqual([
      ['unknown-peer', 'server'],
      ['bad-server-frame', 'server'],
      ['bad-server-frame', 'server'],
      ['bad-server-frame', 'server'],
    ]);
    expect(errors.every((error) => !error.fatal)).toBe(true);
    expect(lastValue(client.state$)).toBe('joined');
  });

  it('retries a refused resume later as a fresh join, and reports the refusal', () => {
    const { client, sockets, errors, joinWith } = harness();
    joinWith(welcome('a1', [BOB], 'token-1')).drop(1006);
    vi.advanceTimersByTime(125);
    sockets.latest().open();
    expect(sockets.latest().frames()).toEqual([{ type: 'join', room: 'lobby', name: 'alice', resume: 'token-1' }]);
    sockets.latest().receive({ type: 'error', code: 'bad-message', message: 'the session ended while resuming; join again' });
    expect(errors.map((error) => error.code)).toEqual(['bad-message']);
    expect(lastValue(client.state$)).toBe('reconnecting');
    vi.advanceTimersByTime(250); // second attempt: 0.5 * 500 ms
    sockets.latest().open();
    expect(sockets.latest().frames()).toEqual([{ type: 'join', room: 'lobby', name: 'alice' }]);
    sockets.latest().receive(welcome('a2', [BOB]));
    expect(lastValue(client.self$)).toEqual({ id: 'a2', name: 'alice', room: 'lobby' });
  });

  it('refuses a room or name the server would refuse, at once', () => {
    const { Constructor } = fakeSockets();
    expect(() => createSignalingClient({ url: 'ws://x', room: 'no spaces', name: 'n', webSocket: Constructor })).toThrow(TypeError);
    expect(() => createSignalingClient({ url: 'ws://x', room: 'r', name: 'x'.repeat(65), webSocket: Constructor })).toThrow(TypeError);
  });

  it('reports a missing WebSocket implementation at once', () => {
    const saved = (globalThis as { WebSocket?: unknown }).WebSocket;
    (globalThis as { WebSocket?: unknown }).WebSocket = undefined;
    try {
      expect(() => createSignalingClient({ url: 'ws://x', room: 'r', name: 'n' })).toThrow(/webSocket/);
    } finally {
      (globalThis as { WebSocket?: unknown }).WebSocket = saved;
    }
  });

  it('ends closed with socket-unavailable when the WebSocket constructor throws', async () => {
    const client = createSignalingClient({
      url: 'not a url',
      room: 'r',
      name: 'n',
      webSocket: class {
        constructor() {
          throw new SyntaxError('invalid url');
        }
      } as unknown as SignalingClientOptions['webSocket'] & object,
    });
    expect(await client.closed).toMatchObject({ code: 'socket-unavailable', fatal: true, message: 'invalid url' });
  });
});

describe('signalingClient: ports', () => {
  it('passes on only valid messages from that peer, and reports invalid ones', () => {
    const { client, errors, joinWith } = harness();
    const socket = joinWith(welcome('a1', [BOB, CAROL]));
    const fromBob: PeerMessage[] = [];
    const fromCarol: PeerMessage[] = [];
    client.portFor(BOB.id).messages$.subscribe((message) => fromBob.push(message));
    client.portFor(CAROL.id).messages$.subscribe((message) => fromCarol.push(message));

    socket.receive({ type: 'signal', from: 'b1', data: { kind: 'invite', session: 's1', extra: 'stripped' } });
    socket.receive({ type: 'signal', from: 'b1', data: { kind: 'shutdown', session: 's1' } });
    socket.receive({ type: 'signal', from: 'b1', data: { kind: 'description', session: 's1', description: { type: 'rollback', sdp: '' } } });
    socket.receive({ type: 'signal', from: 'c1', data: { kind: 'bye', session: 's9', reason: 'hangup' } });
    socket.receive({ type: 'signal', from: 'b1', data: { kind: 'candidate', session: 's1', candidate: null } });

    expect(fromBob).toEqual([
      { kind: 'invite', session: 's1' },
      { kind: 'candidate', session: 's1', candidate: null },
    ]);
    expect(fromCarol).toEqual([{ kind: 'bye', session: 's9', reason: 'hangup' }]);
    expect(errors.map((error) => [error.code, error.peerId])).toEqual([
      ['invalid-peer-message', 'b1'],
      ['invalid-peer-message', 'b1'],
    ]);
    expect(errors[0]!.cause).toMatchObject({ name: 'PeerMessageError', code: 'unknown-kind' });
  });

  it('returns the same port for the same id and refuses a malformed id', () => {
    const { client } = harness();
    expect(client.portFor('b1')).toBe(client.portFor('b1'));
    expect(client.portFor('b1')).not.toBe(client.portFor('c1'));
    expect(() => client.portFor('')).toThrow(TypeError);
    expect(() => client.portFor('a b')).toThrow(TypeError);
  });

  it('offers every valid message on signals$ with its sender', () => {
    const { client, joinWith } = harness();
    const socket = joinWith();
    const seen: unknown[] = [];
    client.signals$.subscribe((signal) => seen.push(signal));
    socket.receive({ type: 'signal', from: 'z9', data: { kind: 'accept', session: 's1' } });
    expect(seen).toEqual([{ from: 'z9', message: { kind: 'accept', session: 's1' } }]);
  });
});

describe('signalingClient: server restart (new ids, or ids restored from the resume token)', () => {
  function restart(h: Harness, frame: ServerFrame): FakeSocket {
    h.sockets.latest().drop(1006);
    vi.advanceTimersByTime(125);
    return h.joinWith(frame);
  }

  it('keeps messages for a peer until it rejoins under a new id, then sends them there in order', () => {
    const h = harness();
    const port = h.client.portFor(BOB.id);
    h.joinWith(welcome('a1', [BOB, CAROL]));
    h.sockets.latest().drop(1006);
    port.send(invite('m1'));
    h.client.portFor(CAROL.id).send(invite('c1'));
    port.send(invite('m2'));
    vi.advanceTimersByTime(125);
    const socket = h.joinWith(welcome('a2', [{ id: 'c2', name: 'carol' }])); // new id: the server forgot us
    expect(socket.signals()).toEqual([{ to: 'c2', data: invite('c1') }]);

    port.send(invite('m3')); // through the old port, still for bob
    expect(socket.signals()).toHaveLength(1);
    socket.receive({ type: 'peer-joined', peer: { id: 'b2', name: 'bob' } });
    port.send(invite('m4'));
    expect(socket.signals().slice(1)).toEqual([
      { to: 'b2', data: invite('m1') },
      { to: 'b2', data: invite('m2') },
      { to: 'b2', data: invite('m3') },
      { to: 'b2', data: invite('m4') },
    ]);
    expect(lastValue(h.client.self$)).toEqual({ id: 'a2', name: 'alice', room: 'lobby' });
  });

  it('lets a port opened under the old id hear the peer under its new id', () => {
    const h = harness();
    h.joinWith(welcome('a1', [BOB]));
    const heard: PeerMessage[] = [];
    h.client.portFor(BOB.id).messages$.subscribe((message) => heard.push(message));
    const socket = restart(h, welcome('a2', [{ id: 'b2', name: 'bob' }]));
    socket.receive({ type: 'signal', from: 'b2', data: { kind: 'invite', session: 'x' } });
    expect(heard).toEqual([invite('x')]);
  });

  it('drops the messages of a peer that does not come back within rejoinGrace, with an error', () => {
    const h = harness({ delays: { rejoinGrace: 5000 } });
    h.joinWith(welcome('a1', [BOB]));
    h.sockets.latest().drop(1006);
    h.client.portFor(BOB.id).send(invite('m1'));
    h.client.portFor(BOB.id).send(invite('m2'));
    vi.advanceTimersByTime(125);
    const left: PeerInfo[] = [];
    h.client.peerLeft$.subscribe((peer) => left.push(peer));
    const socket = h.joinWith(welcome('a2', []));
    vi.advanceTimersByTime(4999);
    expect(h.errors).toEqual([]);
    expect(left).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(h.errors.map((error) => [error.code, error.peerId])).toEqual([['peer-gone', 'b1']]);
    expect(left).toEqual([BOB]); // its departure, once the wait is over
    expect(h.client.actor.getSnapshot().context.queue).toEqual([]);
    h.client.portFor(BOB.id).send(invite('m3')); // no longer waited for: the server judges
    expect(socket.signals()).toEqual([{ to: 'b1', data: invite('m3') }]);
  });

  it('stops waiting for a peer that left while the server stayed up (same id, its peer-left held for us)', () => {
    const h = harness();
    h.joinWith(welcome('a1', [BOB, CAROL]));
    h.sockets.latest().drop(1006);
    h.client.portFor(BOB.id).send(invite('m1'));
    vi.advanceTimersByTime(125);
    const left: PeerInfo[] = [];
    h.client.peerLeft$.subscribe((peer) => left.push(peer));
    const socket = h.joinWith(welcome('a1', [CAROL]));
    expect(socket.signals()).toEqual([]);
    expect(left).toEqual([]); // not listed is not gone: it may still come back
    socket.receive({ type: 'peer-left', id: BOB.id }); // held by the server while we were away
    expect(left).toEqual([BOB]);
    expect(socket.signals()).toEqual([{ to: 'b1', data: invite('m1') }]); // the server judges now
    expect(h.client.actor.getSnapshot().context.awaitingNames).toEqual([]);
    expect(h.errors).toEqual([]);
  });

  it('waits for a peer the restarted server has not seen yet when it gave us our id back (same id)', () => {
    const h = harness();
    h.joinWith(welcome('a1', [BOB, CAROL]));
    h.sockets.latest().drop(1006);
    h.client.portFor(BOB.id).send(invite('m1'));
    h.client.portFor(CAROL.id).send(invite('c1'));
    h.client.portFor(BOB.id).send(invite('m2'));
    vi.advanceTimersByTime(125);
    // The server restarted with the same resume secret: our id is restored, the room is empty.
    const socket = h.joinWith(welcome('a1', []));
    expect(socket.signals()).toEqual([]);
    socket.receive({ type: 'peer-joined', peer: CAROL }); // carol restored her id too
    expect(socket.signals()).toEqual([{ to: CAROL.id, data: invite('c1') }]);
    h.client.portFor(BOB.id).send(invite('m3')); // still behind m1 and m2
    socket.receive({ type: 'peer-joined', peer: BOB });
    expect(socket.signals().slice(1)).toEqual([
      { to: 'b1', data: invite('m1') },
      { to: 'b1', data: invite('m2') },
      { to: 'b1', data: invite('m3') },
    ]);
    expect(lastValue(h.client.self$)).toEqual({ id: 'a1', name: 'alice', room: 'lobby' });
    expect(h.errors).toEqual([]);
  });
});

describe('signalingClient: close', () => {
  it('sends leave, closes with 1000, ends closed; close() is idempotent', async () => {
    const { client, sockets, joinWith } = harness();
    const socket = joinWith();
    client.close();
    client.close();
    expect(socket.frames().map((frame) => frame.type)).toEqual(['join', 'leave']);
    expect(socket.closeCalls).toEqual([{ code: 1000, reason: 'client closing' }]);
    expect(await client.closed).toBeNull();
    vi.advanceTimersByTime(60_000);
    expect(sockets.instances).toHaveLength(1);
  });

  it('completes its streams and reports sends after close', () => {
    const { client, joinWith } = harness();
    joinWith();
    const port = client.portFor(BOB.id);
    let completed = 0;
    const errors: string[] = [];
    client.peers$.subscribe({ complete: () => completed++ });
    client.state$.subscribe({ complete: () => completed++ });
    port.messages$.subscribe({ complete: () => completed++ });
    client.errors$.subscribe({ next: (error) => errors.push(error.code), complete: () => completed++ });
    client.close();
    expect(completed).toBe(4);
    port.send(invite('late')); // a no-op, not a throw
    expect(errors).toEqual([]);
    expect(client.actor.getSnapshot().status).toBe('done');
  });

  it('closes without leave while the socket is still opening, and from reconnecting', async () => {
    const opening = harness();
    opening.client.close();
    expect(opening.sockets.latest().sent).toEqual([]);
    expect(opening.sockets.latest().closeCalls).toEqual([{ code: 1000, reason: 'client closing' }]);
    expect(await opening.client.closed).toBeNull();

    const waiting = harness();
    waiting.joinWith().drop(1006);
    waiting.client.close();
    vi.advanceTimersByTime(60_000);
    expect(waiting.sockets.instances).toHaveLength(1);
    expect(await waiting.client.closed).toBeNull();
  });
});

describe('signalingClient: pacing under the server rate limit', () => {
  const sessionsSent = (socket: FakeSocket): string[] => socket.signals().map((signal) => (signal.data as PeerMessage).session);
  const numbered = (from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_, i) => `m${from + i}`);

  it('defaults to a bucket under the server default: 150 at once, then 40 per second', () => {
    expect(DEFAULT_SEND_BURST).toBe(150);
    expect(DEFAULT_SEND_RATE).toBe(40);
    expect(DEFAULT_SEND_BURST).toBeLessThan(DEFAULT_RATE_LIMIT.burst);
    expect(DEFAULT_SEND_RATE).toBeLessThan(DEFAULT_RATE_LIMIT.messagesPerSecond);
  });

  it('flushes a long queue after the welcome at the paced rate, in order, later sends behind it', () => {
    const { client, errors, joinWith } = harness();
    const port = client.portFor(BOB.id);
    for (let i = 1; i <= 600; i++) port.send(invite(`m${i}`));
    const socket = joinWith();
    expect(sessionsSent(socket)).toEqual(numbered(1, 150));
    port.send(invite('late')); // queued behind the 450 still waiting
    vi.advanceTimersByTime(24);
    expect(socket.signals()).toHaveLength(150);
    vi.advanceTimersByTime(1);
    expect(sessionsSent(socket)).toEqual(numbered(1, 151));
    vi.advanceTimersByTime(975); // one second after the welcome: 40 more
    expect(sessionsSent(socket)).toEqual(numbered(1, 190));
    vi.advanceTimersByTime(10_250); // 450 tokens after the welcome
    expect(sessionsSent(socket)).toEqual(numbered(1, 600));
    vi.advanceTimersByTime(24);
    expect(socket.signals()).toHaveLength(600);
    vi.advanceTimersByTime(1);
    expect(sessionsSent(socket)).toEqual([...numbered(1, 600), 'late']);
    expect(client.actor.getSnapshot().context.queue).toEqual([]);
    expect(errors).toEqual([]);
    // Idle, the bucket fills up again (the 150 below go at once) and no timer runs for it.
    vi.advanceTimersByTime(150 * 25);
    expect(client.actor.getSnapshot().matches({ online: { joined: { pacing: 'open' } } })).toBe(true);
    for (let i = 1; i <= 150; i++) port.send(invite(`n${i}`));
    expect(socket.signals()).toHaveLength(751);
  });

  it('runs no timer while no signal waits for a token: a few signals cost no wake-ups', () => {
    const { client, joinWith } = harness();
    const socket = joinWith();
    const timers = vi.getTimerCount();
    const port = client.portFor(BOB.id);
    for (let i = 1; i <= 5; i++) port.send(invite(`m${i}`));
    expect(sessionsSent(socket)).toEqual(numbered(1, 5));
    expect(vi.getTimerCount()).toBe(timers);
    expect(client.actor.getSnapshot().matches({ online: { joined: { pacing: 'open' } } })).toBe(true);
  });

  it('paces ordinary sends too, with the rate and burst given', () => {
    const { client, joinWith } = harness({ sendRate: 10, sendBurst: 3 });
    const socket = joinWith();
    const port = client.portFor(BOB.id);
    for (let i = 1; i <= 5; i++) port.send(invite(`m${i}`));
    expect(sessionsSent(socket)).toEqual(['m1', 'm2', 'm3']);
    vi.advanceTimersByTime(100);
    expect(sessionsSent(socket)).toEqual(['m1', 'm2', 'm3', 'm4']);
    vi.advanceTimersByTime(100);
    expect(sessionsSent(socket)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
    expect(lastValue(client.state$)).toBe('joined');
  });

  it('lets a signal for a peer that is here pass one that waits for an absent peer, but never one that waits for a token', () => {
    const h = harness({ sendRate: 10, sendBurst: 2 });
    h.joinWith(welcome('a1', [BOB, CAROL]));
    h.sockets.latest().drop(1006);
    h.client.portFor(BOB.id).send(invite('b-1'));
    vi.advanceTimersByTime(125);
    const socket = h.joinWith(welcome('a2', [{ id: 'c2', name: 'carol' }])); // server restarted: bob not back yet
    expect(socket.signals()).toEqual([]);
    h.client.portFor(CAROL.id).send(invite('c-1'));
    h.client.portFor(CAROL.id).send(invite('c-2'));
    h.client.portFor(CAROL.id).send(invite('c-3')); // no token left
    expect(sessionsSent(socket)).toEqual(['c-1', 'c-2']);
    socket.receive({ type: 'peer-joined', peer: { id: 'b2', name: 'bob' } });
    expect(sessionsSent(socket)).toEqual(['c-1', 'c-2']);
    vi.advanceTimersByTime(200);
    expect(socket.signals().slice(2)).toEqual([
      { to: 'b2', data: invite('b-1') },
      { to: 'c2', data: invite('c-3') },
    ]);
  });

  it('reports rate-limited from the server, stays joined, and waits for a fresh token', () => {
    const { client, errors, joinWith } = harness({ sendRate: 10, sendBurst: 5 });
    const socket = joinWith();
    const port = client.portFor(BOB.id);
    port.send(invite('m1'));
    socket.receive({ type: 'error', code: 'rate-limited', message: 'more than 50 messages per second; message dropped' });
    expect(errors.map((error) => [error.code, error.source, error.fatal])).toEqual([['rate-limited', 'server', false]]);
    expect(lastValue(client.state$)).toBe('joined');
    port.send(invite('m2'));
    expect(sessionsSent(socket)).toEqual(['m1']);
    vi.advanceTimersByTime(100);
    expect(sessionsSent(socket)).toEqual(['m1', 'm2']);
  });

  it('puts signals a closing socket hands back at the head of the queue, in their order', () => {
    const { client, sockets, joinWith } = harness({ sendRate: 10, sendBurst: 1 });
    const first = joinWith();
    const port = client.portFor(BOB.id);
    for (const session of ['m1', 'm2', 'm3', 'm4']) port.send(invite(session));
    expect(sessionsSent(first)).toEqual(['m1']);
    first.readyState = 2; // closing: the next two paced sends bounce
    vi.advanceTimersByTime(200);
    expect(client.actor.getSnapshot().context.queue.map((entry) => entry.data.session)).toEqual(['m2', 'm3', 'm4']);
    first.drop(1001);
    vi.advanceTimersByTime(125);
    const second = joinWith();
    expect(sessionsSent(second)).toEqual(['m2']);
    vi.advanceTimersByTime(200);
    expect(sessionsSent(second)).toEqual(['m2', 'm3', 'm4']);
    expect(sockets.instances).toHaveLength(2);
  });

  it('sends everything at once with sendBurst Infinity (no pacing)', () => {
    const { client, joinWith } = harness({ sendBurst: Infinity });
    const port = client.portFor(BOB.id);
    for (let i = 1; i <= 600; i++) port.send(invite(`m${i}`));
    const socket = joinWith();
    for (let i = 601; i <= 700; i++) port.send(invite(`m${i}`));
    expect(sessionsSent(socket)).toEqual(numbered(1, 700));
    expect(client.actor.getSnapshot().matches({ online: { joined: { pacing: 'open' } } })).toBe(true);
  });

  it('refuses a rate or burst it cannot use', () => {
    const { Constructor } = fakeSockets();
    const base = { url: 'ws://x', room: 'r', name: 'n', webSocket: Constructor };
    for (const sendRate of [0, -1, Number.NaN, Infinity]) expect(() => createSignalingClient({ ...base, sendRate })).toThrow(/sendRate/);
    for (const sendBurst of [0, 1.5, -3, Number.NaN]) expect(() => createSignalingClient({ ...base, sendBurst })).toThrow(/sendBurst/);
  });
});

describe('signalingClient: TURN credential refresh', () => {
  /** A TURN entry whose credential says which issue it is; expiring `ttlMs` from now. */
  const turnList = (issue: number) => [{ urls: 'stun:stun.example.org' }, { urls: ['turn:turn.example.org'], username: `u${issue}`, credential: `c${issue}` }];
  const turnWelcome = (ttlMs: number, issue = 1): ServerFrame => ({ ...welcome(ALICE.id), iceServers: turnList(issue), iceServersExpireAt: Date.now() + ttlMs } as ServerFrame);
  const iceServersFrame = (ttlMs: number, issue: number): ServerFrame => ({ type: 'ice-servers', iceServers: turnList(issue), iceServersExpireAt: Date.now() + ttlMs });
  const refreshes = (socket: FakeSocket) => socket.frames().filter((frame) => frame.type === 'refresh-ice-servers').length;
  const usernames = (lists: readonly (readonly { username?: string }[])[]) => lists.map((list) => list.find((ice) => ice.username !== undefined)?.username ?? null);

  it('computes the refresh from the lifetime: 80 %, a minute before expiry at the latest, not before half, never under the floor', () => {
    expect(iceServersRefreshDelay(86_400_000)).toBe(69_120_000); // one day: 80 %
    expect(iceServersRefreshDelay(600_000)).toBe(480_000); // 10 min: 80 % (2 min before)
    expect(iceServersRefreshDelay(120_000)).toBe(60_000); // 2 min: a minute before expiry
    expect(iceServersRefreshDelay(100_000)).toBe(50_000); // under 2 min: half the lifetime
    expect(iceServersRefreshDelay(5000)).toBe(2500);
    expect(iceServersRefreshDelay(1500)).toBe(ICE_SERVERS_REFRESH_FLOOR_MS);
    expect(iceServersRefreshDelay(-60_000)).toBe(ICE_SERVERS_REFRESH_FLOOR_MS); // already expired (or a skewed clock)
    expect(iceServersRefreshDelay(100 * 365 * 86_400_000)).toBe(2 ** 31 - 1); // longer than a timer can wait
  });

  it('asks for fresh credentials before they expire and fires iceServers$ with each new list', () => {
    const { client, joinWith, errors } = harness();
    const seen: (readonly { username?: string }[])[] = [];
    client.iceServers$.subscribe((list) => seen.push(list));
    const socket = joinWith(turnWelcome(5000));
    expect(usernames(seen)).toEqual([null, 'u1']);

    vi.advanceTimersByTime(2499);
    expect(refreshes(socket)).toBe(0);
    vi.advanceTimersByTime(1);
    expect(refreshes(socket)).toBe(1);
    expect(socket.frames().at(-1)).toEqual({ type: 'refresh-ice-servers' });
    socket.receive(iceServersFrame(5000, 2));
    expect(usernames(seen)).toEqual([null, 'u1', 'u2']);
    expect(lastValue(client.iceServers$)).toEqual(turnList(2));

    // Each answer starts the next timer from its own expiry.
    for (let issue = 3; issue <= 6; issue++) {
      vi.advanceTimersByTime(2500);
      expect(refreshes(socket)).toBe(issue - 1);
      socket.receive(iceServersFrame(5000, issue));
    }
    expect(usernames(seen).slice(-5)).toEqual(['u2', 'u3', 'u4', 'u5', 'u6']);
    expect(errors).toEqual([]);
    expect(lastValue(client.state$)).toBe('joined');
  });

  it('never asks when the ICE servers carry no expiry', () => {
    const { joinWith } = harness();
    const socket = joinWith(welcome(ALICE.id));
    vi.advanceTimersByTime(7 * 86_400_000);
    expect(refreshes(socket)).toBe(0);
  });

  it('asks again after iceServersRetry while no answer comes, and no sooner', () => {
    const { joinWith } = harness();
    const socket = joinWith(turnWelcome(600_000));
    vi.advanceTimersByTime(480_000);
    expect(refreshes(socket)).toBe(1);
    vi.advanceTimersByTime(ICE_SERVERS_RETRY_MS - 1);
    expect(refreshes(socket)).toBe(1);
    vi.advanceTimersByTime(1);
    expect(refreshes(socket)).toBe(2);
    socket.receive(iceServersFrame(600_000, 2));
    vi.advanceTimersByTime(479_999);
    expect(refreshes(socket)).toBe(2);
  });

  it('does not spin on credentials that are already expired: one ask per floor at most', () => {
    const { joinWith } = harness();
    const socket = joinWith(turnWelcome(-30_000));
    vi.advanceTimersByTime(ICE_SERVERS_REFRESH_FLOOR_MS - 1);
    expect(refreshes(socket)).toBe(0);
    for (let issue = 2; issue <= 11; issue++) {
      vi.advanceTimersByTime(ICE_SERVERS_REFRESH_FLOOR_MS);
      socket.receive(iceServersFrame(-30_000, issue)); // the server's clock is far behind ours
    }
    expect(refreshes(socket)).toBe(10);
  });

  it('takes the fresh list of each welcome after a reconnect, and restarts the timer from it', () => {
    const { client, sockets, joinWith } = harness();
    const first = joinWith(turnWelcome(5000, 1));
    vi.advanceTimersByTime(2000);
    first.drop(1006);
    vi.advanceTimersByTime(125);
    const second = joinWith(turnWelcome(10_000, 2));
    expect(sockets.instances).toHaveLength(2);
    expect(lastValue(client.iceServers$)).toEqual(turnList(2));
    vi.advanceTimersByTime(4999); // the old timer (due 500 ms after the reconnect) is gone
    expect(refreshes(first) + refreshes(second)).toBe(0);
    vi.advanceTimersByTime(1);
    expect(refreshes(second)).toBe(1);
  });

  it('takes a fixed iceServersRefresh delay when given one', () => {
    const { joinWith } = harness({ delays: { iceServersRefresh: 700 } });
    const socket = joinWith(turnWelcome(86_400_000));
    vi.advanceTimersByTime(699);
    expect(refreshes(socket)).toBe(0);
    vi.advanceTimersByTime(1);
    expect(refreshes(socket)).toBe(1);
  });
});
