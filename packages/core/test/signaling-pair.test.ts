import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { PeerMessage } from '../src/protocol/peer-message.js';
import { createSignalingPair } from '../src/testing/index.js';
import type { FakeSignalingPort } from '../src/testing/index.js';

const until = async (condition: () => boolean): Promise<void> => {
  for (let i = 0; i < 1_000 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 0));
  if (!condition()) throw new Error('condition never became true');
};

const offer: PeerMessage = { kind: 'description', session: 's1', description: { type: 'offer', sdp: 'v=0\r\n' } };
const candidate = (n: number): PeerMessage => ({
  kind: 'candidate',
  session: 's1',
  candidate: { candidate: `candidate:${n} 1 udp 1 127.0.0.1 ${1000 + n} typ host`, sdpMid: '0', sdpMLineIndex: 0 },
});

function collect(port: FakeSignalingPort): PeerMessage[] {
  const seen: PeerMessage[] = [];
  port.messages$.subscribe((message) => seen.push(message));
  return seen;
}

describe('createSignalingPair', () => {
  it('delivers asynchronously, as a validated JSON copy', async () => {
    const [a, b] = createSignalingPair();
    const atB = collect(b);
    const withExtra = { ...offer, extra: 'not on the wire' } as PeerMessage;
    a.send(withExtra);
    expect(atB).toEqual([]);
    expect(a.pending()).toBe(1);
    await until(() => atB.length === 1);
    expect(atB[0]).toEqual(offer);
    expect(atB[0]).not.toBe(withExtra);
    expect(a.sent).toEqual([withExtra]);
    expect(b.received).toEqual([offer]);
    expect(a.pending()).toBe(0);
  });

  it('throws loudly on a message that is not a valid peer message', () => {
    const [a] = createSignalingPair();
    expect(() => a.send({ kind: 'description', session: 's1', description: { type: 'rollback', sdp: '' } } as unknown as PeerMessage)).toThrow(
      /invalid peer message/,
    );
    expect(() => a.send({ kind: 'accept', session: 'bad session!' })).toThrow(/session/);
  });

  it('is hot: every subscriber sees each message once, a late one only later messages', async () => {
    const [a, b] = createSignalingPair();
    const first = collect(b);
    const second = collect(b);
    a.send(candidate(1));
    await until(() => first.length === 1);
    const late = collect(b);
    a.send(candidate(2));
    await until(() => first.length === 2);
    expect(first).toEqual([candidate(1), candidate(2)]);
    expect(second).toEqual(first);
    expect(late).toEqual([candidate(2)]);
  });

  it('lets intercept drop, duplicate and rewrite messages', async () => {
    const [a, b] = createSignalingPair({
      intercept: (message, from) => {
        if (from === 'b') return [message];
        if (message.kind === 'candidate') return [];
        if (message.kind === 'invite') return [message, message];
        if (message.kind === 'bye') return [{ ...message, reason: 'error' }];
        return [message];
      },
    });
    const atB = collect(b);
    const atA = collect(a);
    a.send(candidate(1));
    a.send({ kind: 'invite', session: 's2' });
    a.send({ kind: 'bye', session: 's2', reason: 'hangup' });
    b.send(candidate(7));
    await until(() => atB.length === 3 && atA.length === 1);
    expect(atB).toEqual([
      { kind: 'invite', session: 's2' },
      { kind: 'invite', session: 's2' },
      { kind: 'bye', session: 's2', reason: 'error' },
    ]);
    expect(atA).toEqual([candidate(7)]);
    expect(a.sent).toHaveLength(3);
  });

  it('close() stops delivery to that end and drops its later sends; what it sent still arrives', async () => {
    const [a, b] = createSignalingPair();
    const atA = collect(a);
    const atB = collect(b);
    let completed = false;
    a.messages$.subscribe({ complete: () => (completed = true) });
    a.send(candidate(1));
    b.send(candidate(2));
    a.close();
    a.send(candidate(3));
    b.send(candidate(4));
    expect(completed).toBe(true);
    expect(a.closed).toBe(true);
    await until(() => atB.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(atB).toEqual([candidate(1)]);
    expect(atA).toEqual([]);
    expect(b.pending()).toBe(0);
  });

  it('labels each scheduled delivery with the message it delivers', async () => {
    const labels: string[] = [];
    const [a, b] = createSignalingPair({
      scheduler: {
        schedule<T>(task: Promise<T>, label?: string): Promise<T> {
          labels.push(label ?? '');
          return task;
        },
      },
    });
    const atB = collect(b);
    a.send({ kind: 'invite', session: 's1' });
    a.send(offer);
    b.send({ kind: 'candidate', session: 's1', candidate: null });
    await until(() => atB.length === 2 && labels.length === 3);
    expect(labels).toEqual(['A->B: invite', 'B->A: candidate(end)', 'A->B: description(offer)']);
  });

  it('keeps per-direction order under any scheduling (fc.scheduler)', async () => {
    type Send = { readonly from: 'a' | 'b'; readonly n: number; readonly dropped: boolean };
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(fc.record({ from: fc.constantFrom<'a' | 'b'>('a', 'b'), n: fc.nat(1000), dropped: fc.boolean() }), { maxLength: 30 }),
        async (s, sends: Send[]) => {
          const [a, b] = createSignalingPair({
            scheduler: s,
            // Dropped messages must leave no hole in the order of the others.
            intercept: (message) => (message.kind === 'candidate' && message.candidate?.sdpMid === 'drop' ? [] : [message]),
          });
          const atA = collect(a);
          const atB = collect(b);
          const message = (send: Send, index: number): PeerMessage => ({
            kind: 'candidate',
            session: `s${index}`,
            candidate: { candidate: `candidate:${send.n} 1 udp 1 127.0.0.1 9 typ host`, sdpMid: send.dropped ? 'drop' : '0' },
          });
          // Sends are themselves interleaved with deliveries by the scheduler.
          const sending = s.scheduleSequence(
            sends.map((send, index) => ({
              label: `send ${index} from ${send.from}`,
              builder: () => {
                (send.from === 'a' ? a : b).send(message(send, index));
                return Promise.resolve();
              },
            })),
          );
          await s.waitIdle();
          expect(sending.done).toBe(true);
          const expected = (from: 'a' | 'b'): PeerMessage[] =>
            sends.flatMap((send, index) => (send.from === from && !send.dropped ? [message(send, index)] : []));
          expect(atB).toEqual(expected('a'));
          expect(atA).toEqual(expected('b'));
          expect(a.pending() + b.pending()).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });
});
