// Fuzzing the server with fast-check: random frames (invalid JSON, wrong shapes, huge strings,
// deep nesting, binary, invalid UTF-8, unknown types, oversized frames) interleaved with valid
// traffic, from several sockets at once. Invariants:
// - every bad frame is answered by exactly one error frame with a protocol code (checked with a
//   ping/pong fence after each frame), or by a close with a code (oversize: 1009);
// - a valid frame gets at most one error frame; every frame the server sends is well-formed;
// - the server never crashes, and two witnesses in another room keep exchanging numbered
//   signals throughout, with none lost, none reordered and nothing from the fuzzers.

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, parseServerFrame } from '../src/protocol.js';
import { startServer, type StartedServer } from './helpers/server.js';
import { sleep, TestSocket, type Frame } from './helpers/ws-client.js';

const MAX_PAYLOAD = 8192;
const RUNS = Number(process.env['PARLEY_FC_RUNS'] ?? 100);
const CLIENT_TYPES = ['join', 'signal', 'leave', 'ping'];

type Expect = 'error' | 'any' | 'close';
interface Step {
  readonly socket: number;
  readonly expect: Expect;
  /** Built at send time: valid signals target ids known by then. */
  readonly build: (ids: readonly string[]) => { data: string | Buffer; binary: boolean };
}

const text = (expect: Expect, arb: fc.Arbitrary<string>): fc.Arbitrary<Omit<Step, 'socket'>> =>
  arb.map((data) => ({ expect, build: () => ({ data, binary: false }) }));

const notJson = fc
  .oneof(
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.constantFrom('{', '{"type":"join"', '{"type":"ping"}}', "{'type':'ping'}", 'undefined', 'NaN', '{"a":1,}', '\u0000'),
  )
  .filter((s) => {
    try {
      JSON.parse(s);
      return false;
    } catch {
      return true;
    }
  });

const invalidName = fc.oneof(
  fc.string({ maxLength: 70 }).filter((s) => !/^[A-Za-z0-9_.-]{1,64}$/.test(s)),
  fc.integer(),
  fc.constant(null),
  fc.array(fc.string(), { maxLength: 2 }),
);
const validName = fc.stringMatching(/^[A-Za-z0-9_.-]{1,12}$/).filter((s) => s !== 'calm');
const notObject = fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.array(fc.jsonValue(), { maxLength: 3 }), fc.boolean());

const wrongShape = fc
  .oneof(
    fc.jsonValue().filter((v) => typeof v !== 'object' || v === null || Array.isArray(v)),
    fc.record({ type: fc.string().filter((t) => !CLIENT_TYPES.includes(t)) }),
    fc.record({ type: fc.oneof(fc.integer(), fc.constant(null), fc.constant(['join'])), room: validName }),
    fc.dictionary(fc.string().filter((k) => k !== 'type'), fc.jsonValue(), { maxKeys: 3 }),
    fc.record({ type: fc.constant('join'), room: invalidName, name: validName }),
    fc.record({ type: fc.constant('join'), room: validName, name: invalidName }),
    fc.record({ type: fc.constant('join'), room: validName, name: validName, token: fc.oneof(fc.integer(), fc.constant(''), fc.constant(null)) }),
    fc.record({ type: fc.constant('join'), room: validName, name: validName, resume: fc.oneof(fc.integer(), fc.constant(''), fc.constant('x'.repeat(1025))) }),
    fc.record({ type: fc.constant('signal'), to: invalidName.filter((t) => typeof t !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(t)), data: fc.constant({}) }),
    fc.record({ type: fc.constant('signal'), to: fc.constant('abc'), data: notObject }),
  )
  .map((v) => JSON.stringify(v));

const huge = fc.oneof(
  fc.integer({ min: 1000, max: MAX_PAYLOAD - 100 }).map((n) => JSON.stringify({ type: 'nope', x: 'h'.repeat(n) })),
  fc.integer({ min: 100, max: 2000 }).map((n) => JSON.stringify({ type: 'join', room: 'r'.repeat(n), name: 'n' })),
  fc.integer({ min: 100, max: 900 }).map((n) => JSON.stringify({ type: 'join', room: 'r', name: 'n', token: 't'.repeat(n + 1025) })),
);

const deep = fc.oneof(
  fc.integer({ min: 10, max: 4000 }).map((d) => '['.repeat(d) + ']'.repeat(d)),
  fc.integer({ min: 10, max: 1300 }).map((d) => '{"a":'.repeat(d) + '1' + '}'.repeat(d)),
  // deep `data` in a well-formed signal to an id nobody has: not-joined or unknown-peer
  fc.integer({ min: 10, max: 1300 }).map((d) => `{"type":"signal","to":"nobody","data":${'{"a":'.repeat(d)}1${'}'.repeat(d)}}`),
);

const badStep: fc.Arbitrary<Omit<Step, 'socket'>> = fc.oneof(
  text('error', notJson),
  text('error', wrongShape),
  text('error', huge),
  text('error', deep),
  fc.uint8Array({ maxLength: 64 }).map((bytes) => ({ expect: 'error' as const, build: () => ({ data: Buffer.from(bytes), binary: true }) })),
  fc
    .uint8Array({ minLength: 1, maxLength: 16 })
    .map((bytes) => Buffer.concat([Buffer.from('{"x":"'), Buffer.from(bytes), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]))
    .map((data) => ({ expect: 'error' as const, build: () => ({ data, binary: false }) })),
);

const oversizeStep: fc.Arbitrary<Omit<Step, 'socket'>> = fc
  .integer({ min: 1, max: 2000 })
  .map((extra) => ({ expect: 'close' as const, build: () => ({ data: JSON.stringify({ type: 'ping', pad: 'o'.repeat(MAX_PAYLOAD + extra) }), binary: false }) }));

const validStep: fc.Arbitrary<Omit<Step, 'socket'>> = fc.oneof(
  fc.record({ room: fc.constantFrom('f1', 'f2'), name: fc.constantFrom('a', 'b', 'c', 'd') }).map(({ room, name }) => ({
    expect: 'any' as const,
    build: () => ({ data: JSON.stringify({ type: 'join', room, name }), binary: false }),
  })),
  fc.record({ pick: fc.nat(), payload: fc.jsonValue({ maxDepth: 3 }) }).map(({ pick, payload }) => ({
    expect: 'any' as const,
    // targets: ids the fuzzers got, the witnesses (another room) and made-up ones
    build: (ids: readonly string[]) => ({
      data: JSON.stringify({ type: 'signal', to: ids.length > 0 ? ids[pick % ids.length] : 'nobody', from: 'forged', data: { payload } }),
      binary: false,
    }),
  })),
  text('any', fc.constant('{"type":"leave"}')),
  text('any', fc.constant('{"type":"ping"}')),
);

const stepArb: fc.Arbitrary<Step> = fc
  .tuple(fc.nat({ max: 2 }), fc.oneof({ weight: 6, arbitrary: badStep }, { weight: 4, arbitrary: validStep }, { weight: 1, arbitrary: oversizeStep }))
  .map(([socket, step]) => ({ socket, ...step }));

function errorFrames(frames: readonly Frame[]): Frame[] {
  return frames.filter((f) => f.type === 'error');
}

let srv: StartedServer;

beforeAll(async () => {
  srv = await startServer({
    maxPayload: MAX_PAYLOAD,
    messagesPerSecond: 100_000,
    maxConnectionsPerIp: 10_000,
    resumeGraceMs: 20,
  });
});

afterAll(async () => {
  await srv.close();
});

describe('fuzzing', () => {
  it('never crashes, answers every bad frame, and never disturbs another room', async () => {
    // Two witnesses in room "calm" exchange numbered signals every few ms during the fuzzing.
    const alice = await TestSocket.joined(srv.url, 'calm', 'alice');
    const bob = await TestSocket.joined(srv.url, 'calm', 'bob');
    await alice.socket.next('peer-joined');
    let sentToBob = 0;
    let sentToAlice = 0;
    const ticker = setInterval(() => {
      alice.socket.signal(bob.id, { seq: ++sentToBob });
      bob.socket.signal(alice.id, { seq: ++sentToAlice });
    }, 3);

    const badAnswered = { error: 0, close: 0 };
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 25 }), async (steps) => {
          const sockets = await Promise.all([0, 1, 2].map(() => TestSocket.open(srv.url)));
          const ids = new Set<string>([alice.id, bob.id, 'AAAAAAAAAAAAAAAAAAAAAA']);
          try {
            await Promise.all(
              sockets.map(async (socket, index) => {
                for (const step of steps.filter((s) => s.socket === index)) {
                  if (socket.closeInfo !== undefined || socket.ws.readyState !== socket.ws.OPEN) return;
                  const mark = socket.all.length;
                  const { data, binary } = step.build([...ids]);
                  socket.sendRaw(data, binary);
                  if (step.expect === 'close') {
                    const closed = await socket.closed;
                    expect(closed.code).toBe(1009);
                    badAnswered.close += 1;
                    return;
                  }
                  // fence: the answer to a frame comes before the answer to the next one
                  socket.send({ type: 'ping' });
                  await socket.waitFor((f) => f.type === 'pong', 5000, `the pong after ${String(data).slice(0, 80)}`);
                  const answers = socket.all.slice(mark);
                  for (const frame of answers) {
                    if (frame.type === 'welcome') ids.add(frame['id'] as string);
                    expect(parseServerFrame(JSON.stringify(frame)).ok).toBe(true);
                  }
                  const errors = errorFrames(answers);
                  for (const e of errors) {
                    expect(ERROR_CODES).toContain(e['code']);
                    expect(typeof e['message']).toBe('string');
                  }
                  if (step.expect === 'error') {
                    expect([String(data).slice(0, 120), errors.length]).toEqual([String(data).slice(0, 120), 1]);
                    badAnswered.error += 1;
                  } else {
                    expect(errors.length).toBeLessThanOrEqual(1);
                  }
                  socket.drain();
                }
              }),
            );
            for (const socket of sockets) expect(socket.malformed).toEqual([]);
          } finally {
            for (const socket of sockets) socket.terminate();
          }
        }),
        { numRuns: RUNS },
      );
    } finally {
      clearInterval(ticker);
    }

    // The witnesses got everything, in order, from each other only.
    const lastToBob = sentToBob;
    const lastToAlice = sentToAlice;
    await bob.socket.waitFor((f) => f.type === 'signal' && (f['data'] as { seq: number }).seq === lastToBob, 5000, 'the last witness signal');
    await alice.socket.waitFor((f) => f.type === 'signal' && (f['data'] as { seq: number }).seq === lastToAlice, 5000, 'the last witness signal');
    for (const [witness, from, count] of [
      [bob, alice.id, lastToBob],
      [alice, bob.id, lastToAlice],
    ] as const) {
      const signals = witness.socket.all.filter((f) => f.type === 'signal');
      expect(signals.every((f) => f['from'] === from)).toBe(true);
      expect(signals.map((f) => (f['data'] as { seq: number }).seq)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
      expect(witness.socket.all.filter((f) => !['signal', 'peer-joined', 'welcome'].includes(String(f.type)))).toEqual([]);
      expect(witness.socket.closeInfo).toBeUndefined();
    }
    expect(lastToBob).toBeGreaterThan(50);
    expect(badAnswered.error).toBeGreaterThan(RUNS);

    // Still healthy: a newcomer joins and gets a pong; no handler ever threw.
    const late = await TestSocket.joined(srv.url, 'after', 'z');
    late.socket.send({ type: 'ping' });
    expect(await late.socket.next('pong')).toEqual({ type: 'pong' });
    expect(srv.logs.filter((e) => e.event === 'handler-error' || e.event === 'server-error')).toEqual([]);
    for (const s of [alice.socket, bob.socket, late.socket]) s.terminate();
    await sleep(10);
  }, 60_000);
});
