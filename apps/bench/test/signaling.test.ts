import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { LoadGroup } from '../src/signaling/load.js';
import { CANDIDATE_DATA_BYTES, meanDataBytes, negotiation, readStamp, SDP_DATA_BYTES, STAMP_MARKER, stampNow } from '../src/signaling/mix.js';
import { SUBJECTS } from '../src/signaling/protocols.js';
import { createRawRelay } from '../src/signaling/raw-relay.js';
import type { RawRelay } from '../src/signaling/raw-relay.js';
import { startSubjectServer } from '../src/signaling/servers.js';

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

describe('a tiny load run', () => {
  it.each(SUBJECTS)('%s: closed and open loop, every message arrives, each one checked in full', async (subject) => {
    const server = await startSubjectServer(subject);
    cleanups.push(() => server.close());
    const group = new LoadGroup({ subject, url: server.url, tag: 't', verifyAll: true });
    cleanups.push(() => group.close());
    await group.connect(3);
    expect(group.size).toBe(3);
    const closed = await group.runClosed({ window: 2, warmupMs: 50, measureMs: 250 });
    expect(closed.sent).toBeGreaterThan(24);
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
    const group = new LoadGroup({ subject: 'raw', url: await faultyRelay(fault), tag: 'f', verifyAll: fault !== 'drop' });
    cleanups.push(() => group.close());
    await group.connect(2);
    await expect(group.runClosed({ window: 2, warmupMs: 0, measureMs: 150, drainTimeoutMs: 300 })).rejects.toThrow(message);
  });
});
