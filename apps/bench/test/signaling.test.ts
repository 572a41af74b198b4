import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { formatProfileSummary, originOf, summarizeCpuProfile } from '../src/signaling/cpu-profile.js';
import type { CpuProfile } from '../src/signaling/cpu-profile.js';
import { crossNodeResults, describeCommands } from '../src/signaling/cross-node.js';
import type { RelayFigures } from '../src/signaling/cross-node.js';
import { LoadGroup } from '../src/signaling/load.js';
import { CANDIDATE_DATA_BYTES, meanDataBytes, negotiation, readStamp, SDP_DATA_BYTES, STAMP_MARKER, stampNow } from '../src/signaling/mix.js';
import { startRedisServer } from '@parley/signaling-ws/testing';
import { io as socketIoClient } from 'socket.io-client';
import type { Socket } from 'socket.io-client';
import { CROSS_NODE_SUBJECTS, SINGLE_NODE_SUBJECTS } from '../src/signaling/protocols.js';
import type { Subject } from '../src/signaling/protocols.js';
import { createRawRelay } from '../src/signaling/raw-relay.js';
import { commandCallsBetween, parseCommandCalls, parseInfoCpuSeconds } from '../src/signaling/redis-cpu.js';
import type { RawRelay } from '../src/signaling/raw-relay.js';
import { startSubjectServer, SUBJECT_SERVERS } from '../src/signaling/servers.js';
import type { SubjectServer } from '../src/signaling/servers.js';
import { goalMet } from '../src/types.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function open(url: string): Promise<{ ws: WebSocket; frames: string[]; next: () => Promise<string> }> {
  const ws = new WebSocket(url);
  const frames: string[] = [];
  let wake: (() => void) | undefined;
  ws.on('message', (data: Buffer) => {
    frames.push(data.toString());
    wake?.();
  });
  cleanups.push(() => ws.terminate());
  const next = async (): Promise<string> => {
    while (frames.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    return frames.shift()!;
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, frames, next }));
    ws.once('error', reject);
  });
}

describe('the message mix', () => {
  it('is one offer and one answer of about 4 KiB and ten candidates of about 200 B, six messages from each side', () => {
    const steps = negotiation();
    expect(steps).toHaveLength(12);
    const sizes = (kind: string): number[] => steps.filter((s) => s.kind === kind).map((s) => Buffer.byteLength(s.data));
    expect(sizes('offer')).toEqual([SDP_DATA_BYTES]);
    expect(sizes('answer')).toEqual([SDP_DATA_BYTES]);
    const candidates = sizes('candidate');
    expect(candidates).toHaveLength(10);
    for (const size of candidates) expect(Math.abs(size - CANDIDATE_DATA_BYTES)).toBeLessThan(60);
    expect(steps.filter((s) => s.from === 'a')).toHaveLength(6);
    expect(steps[0]).toMatchObject({ from: 'a', kind: 'offer' });
    expect(steps.findIndex((s) => s.kind === 'answer')).toBeGreaterThan(0);
    expect(meanDataBytes(steps)).toBeGreaterThan(800);
    // Every data object is JSON with the stamp first, and an SDP a browser would recognise.
    for (const step of steps) {
      expect(step.data.startsWith(STAMP_MARKER)).toBe(true);
      expect(JSON.parse(step.data)).toHaveProperty('session');
    }
    const offer = JSON.parse(steps[0]!.data) as { description: { type: string; sdp: string } };
    expect(offer.description.type).toBe('offer');
    expect(offer.description.sdp).toMatch(/^v=0\r\n[\s\S]*m=audio [\s\S]*m=video [\s\S]*\r\n$/);
  });

  it('reads back the stamp the sender wrote, wherever the envelope puts the data', () => {
    const stamp = stampNow();
    const data = negotiation()[1]!.data.replace('000000000000', stamp);
    expect(readStamp(Buffer.from(`{"type":"signal","from":"abc","data":${data}}`))).toBe(Number(stamp));
    expect(readStamp(Buffer.from(`{"type":"CANDIDATE","src":"x","dst":"y","payload":${data}}`))).toBe(Number(stamp));
    expect(readStamp(Buffer.from('{"type":"pong"}'))).toBe(-1);
  });
});

describe('the raw ws relay', () => {
  async function relay(): Promise<RawRelay> {
    const r = await createRawRelay();
    cleanups.push(() => r.close());
    return r;
  }

  it('relays to the named target only, with the sender stamped last so that a forged from loses', async () => {
    const r = await relay();
    const a = await open(`${r.url}?id=alice`);
    const b = await open(`${r.url}?id=bob`);
    const c = await open(`${r.url}?id=carol`);
    a.ws.send(JSON.stringify({ to: 'bob', from: 'carol', data: { n: 1 } }));
    const frame = JSON.parse(await b.next()) as Record<string, unknown>;
    expect(frame).toMatchObject({ to: 'bob', from: 'alice', data: { n: 1 } });
    b.ws.send(JSON.stringify({ to: 'alice', data: { n: 2 } }));
    expect(JSON.parse(await a.next())).toMatchObject({ from: 'bob', data: { n: 2 } });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(c.frames).toEqual([]);
    expect(r.stats().relayed).toBe(2);
  });

  it('drops unknown targets and junk without crashing, and keeps relaying', async () => {
    const r = await relay();
    const a = await open(`${r.url}?id=alice`);
    const b = await open(`${r.url}?id=bob`);
    a.ws.send(JSON.stringify({ to: 'nobody', data: {} }));
    a.ws.send('not json');
    a.ws.send(JSON.stringify({ data: {} }));
    a.ws.send(JSON.stringify([1, 2]));
    a.ws.send(JSON.stringify({ to: 'bob', data: { ok: true } }));
    expect(JSON.parse(await b.next())).toMatchObject({ from: 'alice', data: { ok: true } });
    expect(r.stats()).toMatchObject({ relayed: 1, dropped: 4, clients: 2 });
    // A taken id is refused; the holder keeps it.
    const again = new WebSocket(`${r.url}?id=alice`);
    cleanups.push(() => again.terminate());
    const code = await new Promise<number>((resolve) => again.on('close', (c) => resolve(c)));
    expect(code).toBe(1008);
    a.ws.send(JSON.stringify({ to: 'bob', data: { still: 'alice' } }));
    expect(JSON.parse(await b.next())).toMatchObject({ from: 'alice', data: { still: 'alice' } });
  });
});

/** A subject's nodes in this process: one server, or two nodes on a fresh redis-server. */
async function startNodes(subject: Subject): Promise<SubjectServer[]> {
  const { kind, nodes } = SUBJECT_SERVERS[subject];
  const options: { redisUrl?: string } = {};
  if (nodes > 1) {
    const redis = await startRedisServer();
    cleanups.push(() => redis.close());
    options.redisUrl = redis.url;
  }
  const servers: SubjectServer[] = [];
  for (let i = 0; i < nodes; i++) {
    const server = await startSubjectServer(kind, options);
    cleanups.push(() => server.close());
    servers.push(server);
  }
  return servers;
}

describe('a tiny load run', () => {
  it.each([...SINGLE_NODE_SUBJECTS, ...CROSS_NODE_SUBJECTS])('%s: closed and open loop, every message arrives, each one checked in full', async (subject) => {
    const servers = await startNodes(subject);
    const group = new LoadGroup({ subject, urls: servers.map((s) => s.url), tag: 't', verifyAll: true });
    cleanups.push(() => group.close());
    await group.connect(3);
    expect(group.size).toBe(3);
    // Every node holds one end of each pair: with two nodes, every message crosses Redis.
    for (const server of servers) expect(await server.connections()).toBe(6 / servers.length);
    // A measured window of 1 s: in a suite run beside two CPU burners nothing at all arrived within
    // one of 250 ms (the loop had gone on before and after it).
    const closed = await group.runClosed({ window: 2, warmupMs: 50, measureMs: 1000 });
    // More than the first window of each pair (2 x 3) was sent: the loop went on as answers came
    // back. How many more in 1 s is a speed, which the bench measures, not this test (a
    // cross-node run sent 12 in 250 ms in one suite run on a loaded machine).
    expect(closed.sent).toBeGreaterThan(6);
    expect(closed.received).toBe(closed.sent);
    expect(closed.verified).toBe(closed.received);
    expect(closed.messages).toBeGreaterThan(0);
    expect(closed.latenciesMs).toHaveLength(closed.messages);
    for (const latency of closed.latenciesMs) expect(latency).toBeGreaterThan(0);
    const open = await group.runOpen({ rate: 400, warmupMs: 0, measureMs: 250 });
    // The rate itself is not checked here: on a busy machine the generator falls behind and then
    // catches up across the window's edges (28 % short in one run under two CPU burners, 24 % over
    // in another); how close it keeps to the offered rate is what the bench reports.
    expect(open.sent).toBeGreaterThan(0);
    expect(open.received).toBe(open.sent);
    expect(open.verified).toBe(open.sent);
  });

  /** A relay on the raw protocol that misbehaves in the given way. */
  async function faultyRelay(fault: 'wrong-from' | 'drop' | 'alter'): Promise<string> {
    const server = createServer();
    const wss = new WebSocketServer({ server });
    const clients = new Map<string, WebSocket>();
    let count = 0;
    wss.on('connection', (ws, req) => {
      const id = new URL(req.url ?? '', 'http://x').searchParams.get('id')!;
      clients.set(id, ws);
      ws.on('message', (data: Buffer) => {
        const frame = JSON.parse(data.toString()) as { to: string; data: Record<string, unknown> };
        count += 1;
        if (fault === 'drop' && count % 7 === 0) return;
        if (fault === 'alter') frame.data['extra'] = 1;
        const from = fault === 'wrong-from' ? frame.to : id;
        clients.get(frame.to)?.send(JSON.stringify({ ...frame, from }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => {
      for (const ws of clients.values()) ws.terminate();
      return new Promise((resolve) => server.close(resolve));
    });
    return `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  }

  it.each([
    ['wrong-from', /got a signal from/],
    ['alter', /altered data/],
    ['drop', /messages never arrived/],
  ] as const)('fails when the relay gets it wrong (%s)', async (fault, message) => {
    const group = new LoadGroup({ subject: 'raw', urls: [await faultyRelay(fault)], tag: 'f', verifyAll: fault !== 'drop' });
    cleanups.push(() => group.close());
    await group.connect(2);
    await expect(group.runClosed({ window: 2, warmupMs: 0, measureMs: 150, drainTimeoutMs: 300 })).rejects.toThrow(message);
  });
});

describe('a Parley relay that repeats a peer-joined', () => {
  /**
   * A relay on Parley's wire protocol (join, welcome, peer-joined, signal) that tells the second
   * member of a room `peer-joined` for the first one again after its welcome (as a cluster's
   * join can race its broadcast), or, with `stranger`, for a peer that is not there.
   */
  async function repeatingRelay(stranger: boolean): Promise<string> {
    const server = createServer();
    const wss = new WebSocketServer({ server });
    const rooms = new Map<string, { id: string; name: string; ws: WebSocket }[]>();
    const byId = new Map<string, WebSocket>();
    const owed = new Map<string, string>();
    let next = 0;
    wss.on('connection', (ws) => {
      const id = `id${next++}`;
      byId.set(id, ws);
      ws.on('message', (data: Buffer) => {
        const frame = JSON.parse(data.toString()) as { type: string; room?: string; name?: string; to?: string; data?: unknown };
        if (frame.type === 'join') {
          const members = rooms.get(frame.room!) ?? [];
          ws.send(JSON.stringify({ type: 'welcome', id, resume: 'r', peers: members.map((m) => ({ id: m.id, name: m.name })) }));
          for (const m of members) m.ws.send(JSON.stringify({ type: 'peer-joined', peer: { id, name: frame.name } }));
          const first = members[0];
          if (first !== undefined) owed.set(id, JSON.stringify({ type: 'peer-joined', peer: { id: stranger ? 'nobody' : first.id, name: first.name } }));
          rooms.set(frame.room!, [...members, { id, name: frame.name!, ws }]);
        } else if (frame.type === 'signal') {
          // The repeat comes before the first signal to that member, after its handshake.
          const repeat = owed.get(frame.to!);
          owed.delete(frame.to!);
          if (repeat !== undefined) byId.get(frame.to!)?.send(repeat);
          byId.get(frame.to!)?.send(JSON.stringify({ type: 'signal', from: id, data: frame.data }));
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => {
      for (const ws of byId.values()) ws.terminate();
      return new Promise((resolve) => server.close(resolve));
    });
    return `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  }

  it("counts a callee's repeated peer-joined for its caller, and relays on", async () => {
    const group = new LoadGroup({ subject: 'parleyCluster', urls: [await repeatingRelay(false)], tag: 'r', verifyAll: true });
    cleanups.push(() => group.close());
    await group.connect(2);
    const run = await group.runClosed({ window: 2, warmupMs: 0, measureMs: 150 });
    expect(run.received).toBe(run.sent);
    expect(run.repeatedPeerJoined).toBe(2);
  });

  it('fails on a peer-joined for a peer that is not the partner', async () => {
    const group = new LoadGroup({ subject: 'parleyCluster', urls: [await repeatingRelay(true)], tag: 's' });
    cleanups.push(() => group.close());
    await group.connect(1);
    await expect(group.runClosed({ window: 2, warmupMs: 0, measureMs: 100 })).rejects.toThrow(/unexpected frame .*nobody/);
  });
});

describe("the socket.io baseline's nodes", () => {
  it('relay a signal between socket.io-client sockets on different nodes, to the socket id, with the sender as from', async () => {
    const [one, two] = await startNodes('socketioCluster');
    const connect = async (server: SubjectServer): Promise<Socket> => {
      const socket = socketIoClient(`http://127.0.0.1:${server.port}`, { transports: ['websocket'], reconnection: false });
      cleanups.push(() => socket.disconnect());
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('connect_error', reject);
      });
      return socket;
    };
    const alice = await connect(one!);
    const bob = await connect(two!);
    const received = new Promise<unknown>((resolve) => bob.once('signal', resolve));
    alice.emit('signal', { to: bob.id, data: { sdp: 'v=0' } });
    expect(await received).toEqual({ from: alice.id, data: { sdp: 'v=0' } });
    // Not to the sender's own socket, and nothing for a frame without a target.
    const echoed: unknown[] = [];
    alice.on('signal', (message: unknown) => echoed.push(message));
    bob.emit('signal', { data: { lost: true } });
    const back = new Promise<unknown>((resolve) => alice.once('signal', resolve));
    bob.emit('signal', { to: alice.id, data: { n: 2 } });
    expect(await back).toEqual({ from: bob.id, data: { n: 2 } });
    expect(echoed).toEqual([{ from: bob.id, data: { n: 2 } }]);
  });
});

describe("Redis's INFO, as the bench reads it", () => {
  it('adds user and system CPU seconds, and fails on an INFO without them', () => {
    const info = '# CPU\r\nused_cpu_sys:1.250000\r\nused_cpu_user:2.500000\r\nused_cpu_sys_children:9.000000\r\nused_cpu_user_children:9.000000\r\n';
    expect(parseInfoCpuSeconds(info)).toBeCloseTo(3.75, 9);
    expect(() => parseInfoCpuSeconds('# CPU\r\nused_cpu_sys:1.0\r\n')).toThrow(/used_cpu_user/);
  });

  it('counts calls per command between two readings, leaving out commands not called', () => {
    const before = parseCommandCalls('# Commandstats\r\ncmdstat_publish:calls=10,usec=50,usec_per_call=5.00\r\ncmdstat_ping:calls=2,usec=1,usec_per_call=0.50\r\n');
    const after = parseCommandCalls(
      '# Commandstats\r\ncmdstat_publish:calls=25,usec=90,usec_per_call=3.60\r\ncmdstat_ping:calls=2,usec=1,usec_per_call=0.50\r\ncmdstat_evalsha:calls=4,usec=40,usec_per_call=10.00\r\n',
    );
    expect(before.get('publish')).toBe(10);
    expect(commandCallsBetween(before, after)).toEqual(new Map([['publish', 15], ['evalsha', 4]]));
  });
});

describe('the cross-node goals', () => {
  const figures = (msgsPerSecond: number, p99Ms: number, serverUs: number, redisUs?: number): RelayFigures => ({
    msgsPerSecondMedian: msgsPerSecond,
    p50Ms: p99Ms / 4,
    p99Ms,
    serverCpuUsPerMsg: serverUs,
    serverCpuShare: 0.9,
    loadCpuShare: 0.45,
    repeatedPeerJoined: 0,
    ...(redisUs === undefined ? {} : { redisCpuUsPerMsg: redisUs, redisCpuShare: 0.3, redisCommandsPerMsg: { publish: 1 } }),
  });

  it('are the ratios of the medians (and the p99 across nodes), judged against the issue goals', () => {
    const result = crossNodeResults({ single: figures(60_000, 0.6, 12), parley: figures(45_000, 1.5, 20, 5), socketIo: figures(30_000, 2, 40, 8), latencyRate: 2000 });
    expect(result.json).toMatchObject({ crossNodeOverSingleNode: 0.75, crossNodeOverSocketIo: 1.5, crossNodeP99Ms: 1.5, crossNodeCapacityOverSingleNode: 0.48, crossNodeCapacityOverSocketIo: 1.92, crossNodeCeilingOverSingleNode: 1.2 });
    expect(result.goals.map((g) => [g.key, g.value, goalMet(g)])).toEqual([
      ['signaling.crossNodeOverSingleNode', 0.75, true],
      ['signaling.crossNodeP99Ms', 1.5, true],
      ['signaling.crossNodeOverSocketIo', 1.5, true],
    ]);
    expect(result.notes.join('\n')).not.toMatch(/Goal missed/);
    expect(result.notes.find((note) => note.startsWith('Across nodes (closed loop'))).toMatch(/Redis commands per message: publish 1/);
    expect(result.notes.join('\n')).not.toMatch(/repeatedPeerJoined/);
    const repeated = crossNodeResults({ single: figures(60_000, 0.6, 12), parley: { ...figures(45_000, 1.5, 20, 5), repeatedPeerJoined: 3 }, socketIo: figures(30_000, 2, 40, 8), latencyRate: 2000 });
    expect(repeated.notes.find((note) => note.startsWith('Found:'))).toMatch(/welcome already listed 3 time\(s\)/);
  });

  it('say which goal was missed, with the figures behind it', () => {
    const result = crossNodeResults({ single: figures(60_000, 0.6, 12), parley: figures(30_000, 4, 30, 10), socketIo: figures(40_000, 2, 25, 5), latencyRate: 2000 });
    expect(result.goals.map(goalMet)).toEqual([false, false, false]);
    const missed = result.notes.filter((note) => note.startsWith('Goal missed'));
    expect(missed).toHaveLength(3);
    expect(missed[0]).toMatch(/relayed 0\.5 of one node's msgs\/s .*40 µs of relay CPU across nodes against 12 µs/);
    expect(missed[1]).toMatch(/p99 across two Parley nodes was 4 ms/);
    expect(missed[2]).toMatch(/relayed 0\.75 of two socket\.io nodes' msgs\/s .*40 µs against socket\.io's 30 µs/);
  });
});

describe('a CPU profile, summarized', () => {
  // A tiny profile: main -> ws sendFrame -> node:net write -> (native) writev; main -> ioredis
  // sendCommand -> writeBuffer (native); GC; idle.
  const frame = (id: number, functionName: string, url: string, children: number[] = []): CpuProfile['nodes'][number] => ({
    id,
    callFrame: { functionName, url, lineNumber: id },
    children,
  });
  const profile: CpuProfile = {
    nodes: [
      frame(1, '(root)', '', [2, 7, 8]),
      frame(2, 'main', 'file:///app/packages/signaling-ws/dist/server/relay.js', [3, 5]),
      frame(3, 'sendFrame', 'file:///app/node_modules/ws/lib/sender.js', [4]),
      frame(4, 'writeGeneric', 'node:internal/stream_base_commons', [9]),
      frame(5, 'sendCommand', 'file:///app/node_modules/ioredis/built/Redis.js', [6]),
      frame(6, 'writeBuffer', ''),
      frame(7, '(garbage collector)', ''),
      frame(8, '(idle)', ''),
      frame(9, 'writev', ''),
    ],
    samples: [9, 9, 9, 6, 6, 2, 7, 8, 8, 8, 8, 4],
    // 1 ms apart: a busy stretch from 1 to 7 ms, idle, then one busy sample at 12 ms.
    timeDeltas: Array.from({ length: 12 }, () => 1000),
  };

  it('tells where code comes from', () => {
    expect(originOf('x', 'file:///a/node_modules/@socket.io/redis-adapter/dist/index.js')).toBe('@socket.io/redis-adapter');
    expect(originOf('x', 'file:///a/node_modules/ws/lib/sender.js')).toBe('ws');
    expect(originOf('x', 'node:internal/streams/writable')).toBe('node:internal');
    expect(originOf('emit', 'node:events')).toBe('node:events');
    expect(originOf('x', 'file:///work/packages/signaling-ws/dist/server/relay.js')).toBe('@parley/signaling-ws');
    expect(originOf('(garbage collector)', '')).toBe('(garbage collector)');
    expect(originOf('writev', '')).toBe('(native)');
  });

  it('leaves idle out, and counts native and Node work to the package that asked for it', () => {
    const summary = summarizeCpuProfile(profile);
    expect(summary.busySamples).toBe(8);
    const asObject = (shares: readonly { name: string; share: number }[]): Record<string, number> => Object.fromEntries(shares.map((s) => [s.name, s.share]));
    expect(asObject(summary.packages)).toEqual({ ws: 4 / 8, ioredis: 2 / 8, '@parley/signaling-ws': 1 / 8, '(garbage collector)': 1 / 8 });
    expect(asObject(summary.origins)).toEqual({ '(native)': 5 / 8, 'node:internal': 1 / 8, '@parley/signaling-ws': 1 / 8, '(garbage collector)': 1 / 8 });
    expect(summary.functions[0]).toEqual({ name: 'writev', share: 3 / 8 });
    expect(formatProfileSummary(summary)).toMatch(/8 busy samples.*\n\s+50\.0%\s+ws\n/);
  });

  it('finds the busy stretches (event loop turns that made arrivals wait) and what filled the long ones', () => {
    const { stretches } = summarizeCpuProfile(profile);
    expect(stretches).toMatchObject({ profileMs: 12, longestMs: 6, atLeast: [[1, 1], [5, 1], [10, 0], [20, 0]] });
    const byPackage = Object.fromEntries(stretches!.longByPackage.map((s) => [s.name, s.share]));
    expect(byPackage).toEqual({ ws: 3 / 7, ioredis: 2 / 7, '@parley/signaling-ws': 1 / 7, '(garbage collector)': 1 / 7 });
    expect(formatProfileSummary(summarizeCpuProfile(profile))).toMatch(/busy stretches over 12 ms: 1 of >= 1 ms, 1 of >= 5 ms, 0 of >= 10 ms, 0 of >= 20 ms; longest 6\.0 ms/);
    // Without a timeline there is nothing to say about stretches.
    expect(summarizeCpuProfile({ nodes: profile.nodes, samples: profile.samples! }).stretches).toBeUndefined();
  });
});

describe("a subject's Redis commands per message, in words", () => {
  it('lists the relay commands, largest first, and sums up the background ones', () => {
    expect(describeCommands({ publish: 1, evalsha: 1, hget: 1, exists: 0.0017, time: 0.0009 })).toBe(
      'evalsha 1, hget 1, publish 1; 2 background commands below 0.01 per message',
    );
    expect(describeCommands({ publish: 2.5 })).toBe('publish 2.5');
    expect(describeCommands({ time: 0.001 })).toBe('1 background command below 0.01 per message');
    expect(describeCommands(undefined)).toBe('none');
  });
});
