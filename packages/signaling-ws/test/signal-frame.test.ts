// The relay hot path's checks against the full parse + validate they stand in for: on generated
// signal frames (random JSON data, whitespace inside it, random ids) and on mutations of them
// (bytes deleted, inserted, replaced, truncated, sliced), a frame the fast check accepts must be
// one that JSON.parse and the wire schema accept, with the same target and the same data, and the
// frame the server relays from it must parse to that data behind the server's `from`.

import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateClientFrame } from '../src/protocol.js';
import { readCanonicalSignal, relayedBytes, sentDataStart } from '../src/server/signal-frame.js';

import { Session } from '../src/server/session.js';
import type { Connection } from '../src/server/connection.js';

const RUNS = Number(process.env['PARLEY_FC_RUNS'] ?? 1000);

const id = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);
/** JSON objects, with deep nesting and every kind of string (unicode, control characters, quotes). */
const data = fc.dictionary(fc.string({ unit: 'binary' }), fc.jsonValue({ maxDepth: 6 }), { maxKeys: 6 });
const deepData = fc.integer({ min: 1, max: 80 }).map((depth) => {
  let value: unknown = { leaf: [1, 'two', null] };
  for (let d = 1; d < depth; d++) value = d % 2 === 0 ? { d: value } : [value];
  return { d: value };
});
/** The data's JSON text, compact or with whitespace (indents, tabs). */
const dataText = fc.tuple(fc.oneof(data, deepData), fc.constantFrom(undefined, 0, 1, 2, '\t', ' \r\n')).map(([value, indent]) => JSON.stringify(value, null, indent));
const clientFrame = fc.tuple(id, dataText).map(([to, text]) => `{"type":"signal","to":"${to}","data":${text}}`);

/** Bytes that matter to a JSON scanner, for insertions and replacements. */
const interestingByte = fc.oneof(
  fc.constantFrom(...Buffer.from('"\\{}[],:-+.0123456789eEuUtfnrlsa /bx')),
  fc.integer({ min: 0, max: 0x1f }),
  fc.integer({ min: 0, max: 0xff }),
);
type Mutation = (bytes: Buffer) => Buffer;
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.tuple(fc.nat(), interestingByte).map(([at, byte]): Mutation => (b) => {
    const i = at % (b.length + 1);
    return Buffer.concat([b.subarray(0, i), Buffer.of(byte), b.subarray(i)]);
  }),
  fc.tuple(fc.nat(), interestingByte).map(([at, byte]): Mutation => (b) => {
    const copy = Buffer.from(b);
    if (copy.length > 0) copy[at % copy.length] = byte;
    return copy;
  }),
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 8 })).map(([at, n]): Mutation => (b) => {
    const i = at % (b.length + 1);
    return Buffer.concat([b.subarray(0, i), b.subarray(i + n)]);
  }),
  fc.nat().map((at): Mutation => (b) => b.subarray(0, at % (b.length + 1))),
  fc.tuple(fc.nat(), fc.nat(), fc.nat()).map(([from, to, at]): Mutation => (b) => {
    const [s, e] = [from % (b.length + 1), to % (b.length + 1)].sort((x, y) => x - y) as [number, number];
    const i = at % (b.length + 1);
    return Buffer.concat([b.subarray(0, i), b.subarray(s, e), b.subarray(i)]);
  }),
);
const mutatedFrame = fc.tuple(clientFrame, fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([frame, mutations]) =>
  mutations.reduce<Buffer>((bytes, mutate) => mutate(bytes), Buffer.from(frame)),
);

/** The full check: JSON.parse, then the wire schema. */
function fullCheck(bytes: Buffer): { to: string; data: unknown; value: Record<string, unknown> } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  const parsed = validateClientFrame(value);
  if (!parsed.ok || parsed.frame.type !== 'signal') return undefined;
  return { to: parsed.frame.to, data: parsed.frame.data, value: value as Record<string, unknown> };
}

const session = new Session('Sender_1', 'room', 'name', 'token', {} as Connection, 0);

/** What a receiver gets from the frame relayed from `bytes` with its data at `dataStart`. */
function relayedFrame(bytes: Buffer, dataStart: number): unknown {
  return JSON.parse(relayedBytes(session, bytes, dataStart).toString('utf8'));
}

/** The fast check said yes: the full check must agree, and the relayed frame carry that data. */
function expectAgreement(bytes: Buffer): void {
  const fast = readCanonicalSignal(bytes);
  if (fast === undefined) return;
  const full = fullCheck(bytes);
  expect(full, bytes.toString('utf8')).toBeDefined();
  expect(fast.to).toBe(full!.to);
  expect(JSON.parse(bytes.toString('utf8', fast.dataStart, bytes.length - 1))).toEqual(full!.data);
  expect(relayedFrame(bytes, fast.dataStart)).toEqual({ type: 'signal', from: 'Sender_1', data: full!.data });
}

describe('readCanonicalSignal (the relay hot path) against JSON.parse + validateClientFrame', () => {
  it("takes every frame in the client's layout with data up to 64 deep, with its target and data", () => {
    fc.assert(
      fc.property(clientFrame, (frame) => {
        const bytes = Buffer.from(frame);
        const fast = readCanonicalSignal(bytes);
        const full = fullCheck(bytes)!;
        expect(full).toBeDefined();
        const depth = nesting(full.data);
        if (depth > 64) {
          expect(fast).toBeUndefined(); // left to the full parse, which has no such limit
          return;
        }
        expect(fast, frame).toBeDefined();
        expectAgreement(bytes);
      }),
      { numRuns: RUNS },
    );
  });

  it('accepts a mutated frame only when the full check accepts it, with the same target and data', () => {
    fc.assert(
      fc.property(mutatedFrame, (bytes) => {
        fc.pre(isUtf8(bytes)); // the server answers bad UTF-8 before either check
        expectAgreement(bytes);
      }),
      { numRuns: RUNS * 5 },
    );
  });

  it('rejects the JSON grammar errors a scanner can get wrong', () => {
    const frame = (text: string): Buffer => Buffer.from(`{"type":"signal","to":"Peer_2","data":{"v":${text}}}`);
    const bad = ['01', '-', '-01', '1.', '.5', '1e', '1E+', '1.e3', '+1', '0x1', 'NaN', 'Infinity', 'tru', 'nul', 'True', '"a', '"\\x"', '"\\u12g4"', '"\\u123"',
      '"\u0001"', '"\t"', '"a\nb"', '[1,]', '[,1]', '{"a":1,}', '{"a"}', '{"a" 1}', '{1:2}', "'a'", '[1 2]', '{"a":1 "b":2}', '[', ']', '}', '"\\"'];
    // Every control character, at every offset of a word, in a long plain string (the scan skips
    // plain runs four bytes at a time).
    for (let c = 0; c < 0x20; c++) {
      for (let at = 0; at < 8; at++) bad.push(`"${'a'.repeat(at)}${String.fromCharCode(c)}${'b'.repeat(13)}"`);
    }
    for (const text of bad) {
      expect(() => void JSON.parse(`{"v":${text}}`), text).toThrow();
      expect(readCanonicalSignal(frame(text)), text).toBeUndefined();
    }
    const good = ['0', '-0', '-0.5e-3', '1E+9', '123.456', '"\\u12aF\\n\\/\\"\\\\"', '"é😀"', 'true', 'false', 'null', '[]', '{}', '[ 1 , { "a" : [ ] } ]', ' \t\r\n1'];
    for (const text of good) {
      expect(readCanonicalSignal(frame(text)), text).toBeDefined();
      expectAgreement(frame(text));
    }
  });

  it('leaves everything but the exact client layout to the full check', () => {
    const others = [
      '{"to":"Peer_2","type":"signal","data":{}}',
      '{"type":"signal","to":"Peer_2","data":{} }',
      ' {"type":"signal","to":"Peer_2","data":{}}',
      '{"type":"signal", "to":"Peer_2","data":{}}',
      '{"type":"signal","to":"Peer\\u005f2","data":{}}',
      '{"type":"signal","to":"Peer_2","data":[]}',
      '{"type":"signal","to":"Peer_2","data":null}',
      '{"type":"signal","to":"","data":{}}',
      `{"type":"signal","to":"${'a'.repeat(65)}","data":{}}`,
      '{"type":"signal","to":"Peer_2","data":{},"data":{}}',
      '{"type":"signal","to":"Peer_2","data":{}}\n',
    ];
    for (const text of others) expect(readCanonicalSignal(Buffer.from(text)), text).toBeUndefined();
  });
});

describe('sentDataStart (the data relayed as the client wrote it, after the full parse)', () => {
  it('on generated and mutated frames the full check accepts, the relayed frame carries the validated data', () => {
    fc.assert(
      fc.property(fc.oneof(clientFrame.map((f) => Buffer.from(f)), mutatedFrame), (bytes) => {
        fc.pre(isUtf8(bytes));
        const full = fullCheck(bytes);
        if (full === undefined) return;
        const at = sentDataStart(bytes.toString('utf8'), full.to, full.value);
        if (at < 0) return;
        expect(relayedFrame(bytes, at)).toEqual({ type: 'signal', from: 'Sender_1', data: full.data });
      }),
      { numRuns: RUNS * 5 },
    );
  });
});

/** How deep containers nest in `value` (an object holding a scalar: 1). */
function nesting(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  let deepest = 0;
  for (const child of Object.values(value)) deepest = Math.max(deepest, nesting(child));
  return deepest + 1;
}
