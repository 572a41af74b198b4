import { createPeer } from '@parley/core';
import type { DataChannel, Peer } from '@parley/core';
import { createSignalingPair } from '@parley/core/testing';
import { afterEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import { candidatePairTypeOf, keepLoopbackCandidates, stats$, summarizeStats } from '../src/index.js';
import type { CandidateType, StatsReportLike, StatsSample, StatsSource } from '../src/index.js';
import { createRealPort } from './helpers/wrtc.js';
import { waitFor } from './helpers/wait.js';

/** A stats report as engines give it: a map of id → stats object, each carrying its own id. */
function report(...stats: Record<string, unknown>[]): Map<string, Record<string, unknown>> {
  return new Map(stats.map((entry) => [entry['id'] as string, { timestamp: 1000, ...entry }]));
}

const localHost = { id: 'L-host', type: 'local-candidate', candidateType: 'host' };
const localRelay = { id: 'L-relay', type: 'local-candidate', candidateType: 'relay' };
const remoteHost = { id: 'R-host', type: 'remote-candidate', candidateType: 'host' };
const remoteSrflx = { id: 'R-srflx', type: 'remote-candidate', candidateType: 'srflx' };

function pair(id: string, local: string, remote: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id, type: 'candidate-pair', localCandidateId: local, remoteCandidateId: remote, state: 'succeeded', nominated: false, ...extra };
}

describe('summarizeStats: the selected candidate pair', () => {
  it('takes a real RTCStatsReport, and stats$ a real RTCPeerConnection (checked by the type checker)', () => {
    expectTypeOf<RTCStatsReport>().toExtend<StatsReportLike>();
    expectTypeOf<RTCPeerConnection>().toExtend<StatsSource>();
  });

  it("takes the transport's selectedCandidatePairId over another nominated pair", () => {
    const sample = summarizeStats(
      report(
        localHost,
        localRelay,
        remoteHost,
        pair('P-host', 'L-host', 'R-host', { nominated: true, bytesSent: 10_000 }),
        pair('P-relay', 'L-relay', 'R-host', { nominated: true, currentRoundTripTime: 0.042 }),
        { id: 'T', type: 'transport', selectedCandidatePairId: 'P-relay', bytesSent: 1, bytesReceived: 2 },
      ),
    );
    expect(sample.selectedCandidatePairId).toBe('P-relay');
    expect(sample.candidatePairType).toBe('relay');
    expect(sample.localCandidateType).toBe('relay');
    expect(sample.remoteCandidateType).toBe('host');
    expect(sample.roundTripTimeMs).toBeCloseTo(42);
  });

  it('falls back to the pair marked selected (Firefox has no transport stats)', () => {
    const sample = summarizeStats(
      report(
        localHost,
        remoteHost,
        remoteSrflx,
        pair('P-host', 'L-host', 'R-host', { nominated: true, bytesSent: 10_000 }),
        pair('P-srflx', 'L-host', 'R-srflx', { selected: true }),
      ),
    );
    expect(sample.selectedCandidatePairId).toBe('P-srflx');
    expect(sample.candidatePairType).toBe('srflx');
  });

  it('falls back to a nominated, succeeded pair; of several, the one that carried the most bytes', () => {
    const sample = summarizeStats(
      report(
        localHost,
        localRelay,
        remoteHost,
        pair('P-busiest-but-checking', 'L-relay', 'R-host', { nominated: true, state: 'in-progress', bytesSent: 90_000 }),
        pair('P-quiet', 'L-relay', 'R-host', { nominated: true, bytesSent: 10, bytesReceived: 10 }),
        pair('P-busy', 'L-host', 'R-host', { nominated: true, bytesSent: 500, bytesReceived: 700 }),
        pair('P-not-nominated', 'L-relay', 'R-host', { bytesSent: 80_000 }),
      ),
    );
    expect(sample.selectedCandidatePairId).toBe('P-busy');
    expect(sample.candidatePairType).toBe('host');
  });

  it('reports nulls and zeros while nothing is selected', () => {
    const sample = summarizeStats(report(localHost, remoteHost, pair('P', 'L-host', 'R-host', { state: 'in-progress' })));
    expect(sample).toMatchObject({
      timestamp: 1000,
      selectedCandidatePairId: null,
      candidatePairType: null,
      localCandidateType: null,
      remoteCandidateType: null,
      roundTripTimeMs: null,
      bitrateInBps: null,
      bitrateOutBps: null,
      bytesSource: null,
      bytesSent: 0,
      bytesReceived: 0,
      packetsLost: 0,
    });
  });

  it('gives a null RTT when the selected pair has no currentRoundTripTime yet, and 0 ms when it is 0', () => {
    const stats = [localHost, remoteHost, { id: 'T', type: 'transport', selectedCandidatePairId: 'P' }];
    expect(summarizeStats(report(...stats, pair('P', 'L-host', 'R-host'))).roundTripTimeMs).toBeNull();
    expect(summarizeStats(report(...stats, pair('P', 'L-host', 'R-host', { currentRoundTripTime: 0 }))).roundTripTimeMs).toBe(0);
  });

  it('ignores entries that are not stats objects and a transport pointing at a missing pair', () => {
    const stats = new Map<string, unknown>([
      ['junk', 42],
      ['T', { id: 'T', type: 'transport', timestamp: 5, selectedCandidatePairId: 'gone' }],
      ['P', { ...pair('P', 'L-host', 'R-host', { nominated: true }), timestamp: 5 }],
      ['L-host', localHost],
      ['R-host', remoteHost],
    ]);
    const sample = summarizeStats(stats);
    expect(sample.selectedCandidatePairId).toBe('P');
    expect(sample.timestamp).toBe(5);
  });
});

describe('candidatePairTypeOf', () => {
  const cases: [CandidateType | null, CandidateType | null, CandidateType | null][] = [
    ['host', 'host', 'host'],
    ['host', 'prflx', 'prflx'],
    ['prflx', 'host', 'prflx'],
    ['host', 'srflx', 'srflx'],
    ['srflx', 'prflx', 'srflx'],
    ['prflx', 'srflx', 'srflx'],
    ['relay', 'host', 'relay'],
    ['srflx', 'relay', 'relay'],
    ['relay', null, 'relay'],
    [null, 'relay', 'relay'],
    ['host', null, null],
    [null, 'srflx', null],
    [null, null, null],
  ];
  it.each(cases)('%s ↔ %s is %s', (local, remote, expected) => {
    expect(candidatePairTypeOf(local, remote)).toBe(expected);
  });

  it('reads an unknown candidateType as unknown', () => {
    const sample = summarizeStats(
      report({ id: 'L', type: 'local-candidate', candidateType: 'bogus' }, remoteHost, pair('P', 'L', 'R-host', { selected: true })),
    );
    expect(sample.localCandidateType).toBeNull();
    expect(sample.candidatePairType).toBeNull();
  });
});

describe('summarizeStats: counters and bitrates', () => {
  const selected = [localHost, remoteHost];
  const transport = (timestamp: number, bytesSent: number, bytesReceived: number): Record<string, unknown> => ({
    id: 'T',
    type: 'transport',
    timestamp,
    selectedCandidatePairId: 'P',
    bytesSent,
    bytesReceived,
  });

  it('has no bitrate on the first sample, then bytes over time from the transport counters', () => {
    const first = summarizeStats(report(...selected, pair('P', 'L-host', 'R-host'), transport(1000, 1_000, 4_000)));
    expect(first).toMatchObject({ bytesSource: 'transport', bytesSent: 1_000, bytesReceived: 4_000, bitrateInBps: null, bitrateOutBps: null });

    // 500 ms later: 2 000 bytes more sent (32 kbit/s), 500 more received (8 kbit/s).
    const second = summarizeStats(report(...selected, pair('P', 'L-host', 'R-host'), transport(1500, 3_000, 4_500)), first);
    expect(second.bitrateOutBps).toBe(32_000);
    expect(second.bitrateInBps).toBe(8_000);
  });

  it("uses the transports' counters, summed, even when the pair reports others", () => {
    const sample = summarizeStats(
      report(
        ...selected,
        pair('P', 'L-host', 'R-host', { bytesSent: 7, bytesReceived: 7 }),
        transport(1000, 100, 200),
        { id: 'T2', type: 'transport', bytesSent: 10, bytesReceived: 20 },
      ),
    );
    expect(sample).toMatchObject({ bytesSource: 'transport', bytesSent: 110, bytesReceived: 220 });
  });

  it("falls back to the selected pair's counters, with no rate across a change of pair", () => {
    const pairs = (selectedId: string, bytes: number): Record<string, unknown>[] => [
      { ...pair('P1', 'L-host', 'R-host', { bytesSent: bytes, bytesReceived: bytes }), selected: selectedId === 'P1' },
      { ...pair('P2', 'L-host', 'R-host', { bytesSent: bytes * 2, bytesReceived: bytes * 2 }), selected: selectedId === 'P2' },
    ];
    const first = summarizeStats(report(...selected, ...pairs('P1', 1_000)));
    expect(first).toMatchObject({ bytesSource: 'candidate-pair', bytesSent: 1_000 });
    const samePair = summarizeStats(new Map([...report(...selected, ...pairs('P1', 2_000))].map(([id, s]) => [id, { ...s, timestamp: 2000 }])), first);
    expect(samePair.bitrateOutBps).toBe(8_000);
    const otherPair = summarizeStats(new Map([...report(...selected, ...pairs('P2', 3_000))].map(([id, s]) => [id, { ...s, timestamp: 3000 }])), samePair);
    expect(otherPair.selectedCandidatePairId).toBe('P2');
    expect(otherPair.bitrateOutBps).toBeNull();
    expect(otherPair.bitrateInBps).toBeNull();
  });

  it('gives no bitrate when a counter went down, the source changed, or no time passed', () => {
    const before = summarizeStats(report(...selected, pair('P', 'L-host', 'R-host'), transport(1000, 5_000, 5_000)));
    const reset = summarizeStats(report(...selected, pair('P', 'L-host', 'R-host'), transport(2000, 100, 6_000)), before);
    expect(reset.bitrateOutBps).toBeNull();
    expect(reset.bitrateInBps).toBe(8_000);

    const sameTime = summarizeStats(report(...selected, pair('P', 'L-host', 'R-host'), transport(1000, 6_000, 6_000)), before);
    expect(sameTime.bitrateOutBps).toBeNull();

    const fromPair = summarizeStats(
      new Map([...report(...selected, pair('P', 'L-host', 'R-host', { selected: true, bytesSent: 9_000 }))].map(([id, s]) => [id, { ...s, timestamp: 2000 }])),
      before,
    );
    expect(fromPair.bytesSource).toBe('candidate-pair');
    expect(fromPair.bitrateOutBps).toBeNull();
  });

  it('sums packetsLost and packetsReceived over the inbound-rtp streams only', () => {
    const sample = summarizeStats(
      report(
        { id: 'in-audio', type: 'inbound-rtp', kind: 'audio', packetsLost: 3, packetsReceived: 100 },
        { id: 'in-video', type: 'inbound-rtp', kind: 'video', packetsLost: 4, packetsReceived: 200 },
        { id: 'out-video', type: 'outbound-rtp', kind: 'video', packetsSent: 300 },
        { id: 'remote-in', type: 'remote-inbound-rtp', kind: 'video', packetsLost: 50 },
      ),
    );
    expect(sample.packetsLost).toBe(7);
    expect(sample.packetsReceived).toBe(300);
  });
});

/** A fake connection whose getStats calls are settled by the test, one by one. */
function controlledSource(): StatsSource & {
  connectionState: string;
  readonly calls: number;
  readonly pending: number;
  maxPending: number;
  resolve(bytesSent: number, timestamp: number): void;
  reject(error: Error): void;
} {
  const waiting: { resolve: (r: Map<string, unknown>) => void; reject: (e: Error) => void }[] = [];
  let calls = 0;
  const source = {
    connectionState: 'connected',
    maxPending: 0,
    get calls() {
      return calls;
    },
    get pending() {
      return waiting.length;
    },
    getStats() {
      calls += 1;
      return new Promise<Map<string, unknown>>((resolve, reject) => {
        waiting.push({ resolve, reject });
        source.maxPending = Math.max(source.maxPending, waiting.length);
      });
    },
    resolve(bytesSent: number, timestamp: number) {
      waiting.shift()!.resolve(new Map([['T', { id: 'T', type: 'transport', timestamp, bytesSent, bytesReceived: 0 }]]));
    },
    reject(error: Error) {
      waiting.shift()!.reject(error);
    },
  };
  return source;
}

describe('stats$ (fake timers, a fake connection)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('polls at once, then intervalMs after each poll settles, never two at a time', async () => {
    vi.useFakeTimers();
    const source = controlledSource();
    const samples: StatsSample[] = [];
    const subscription = stats$(source, { intervalMs: 1000 }).subscribe((sample) => samples.push(sample));
    try {
      expect(source.calls).toBe(1);
      // The poll is slow: time passes, but no second poll starts while the first is pending.
      await vi.advanceTimersByTimeAsync(5000);
      expect(source.calls).toBe(1);
      source.resolve(1_000, 1000);
      await vi.advanceTimersByTimeAsync(0);
      expect(samples).toHaveLength(1);
      expect(samples[0]!.bitrateOutBps).toBeNull();
      await vi.advanceTimersByTimeAsync(999);
      expect(source.calls).toBe(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(source.calls).toBe(2);
      source.resolve(2_000, 2000);
      await vi.advanceTimersByTimeAsync(0);
      expect(samples.map((sample) => sample.bitrateOutBps)).toEqual([null, 8_000]);
      expect(source.maxPending).toBe(1);
    } finally {
      subscription.unsubscribe();
    }
    // Unsubscribed: no more polls.
    await vi.advanceTimersByTimeAsync(10_000);
    expect(source.calls).toBe(2);
  });

  it('skips a single failed poll and keeps the previous sample for the next rate', async () => {
    vi.useFakeTimers();
    const source = controlledSource();
    const samples: StatsSample[] = [];
    const errors: unknown[] = [];
    const subscription = stats$(source, { intervalMs: 100 }).subscribe({ next: (s) => samples.push(s), error: (e) => errors.push(e) });
    try {
      source.resolve(0, 1000);
      await vi.advanceTimersByTimeAsync(100);
      source.reject(new Error('transient'));
      await vi.advanceTimersByTimeAsync(100);
      source.resolve(2_000, 3000);
      await vi.advanceTimersByTimeAsync(0);
      expect(errors).toEqual([]);
      // 2 000 bytes over the 2 s since the last good sample.
      expect(samples.map((sample) => sample.bitrateOutBps)).toEqual([null, 8_000]);
    } finally {
      subscription.unsubscribe();
    }
  });

  it('errors after maxConsecutiveFailures failed polls in a row', async () => {
    vi.useFakeTimers();
    const source = controlledSource();
    let failure: unknown;
    const subscription = stats$(source, { intervalMs: 100, maxConsecutiveFailures: 2 }).subscribe({
      error: (error: unknown) => {
        failure = error;
      },
    });
    try {
      source.reject(new Error('first'));
      await vi.advanceTimersByTimeAsync(100);
      expect(failure).toBeUndefined();
      source.reject(new Error('second'));
      await vi.advanceTimersByTimeAsync(0);
      expect(failure).toBeInstanceOf(Error);
      expect((failure as Error).message).toBe('second');
    } finally {
      subscription.unsubscribe();
    }
  });

  it('completes when the connection is closed before a poll', async () => {
    vi.useFakeTimers();
    const source = controlledSource();
    let completed = false;
    const subscription = stats$(source, { intervalMs: 100 }).subscribe({ complete: () => (completed = true) });
    try {
      source.resolve(0, 1000);
      source.connectionState = 'closed';
      await vi.advanceTimersByTimeAsync(100);
      expect(completed).toBe(true);
      expect(source.calls).toBe(1);
    } finally {
      subscription.unsubscribe();
    }
  });

  it('completes when a poll fails with InvalidStateError (webrtc-pc §8.2: getStats on a closed connection)', async () => {
    vi.useFakeTimers();
    const source = controlledSource();
    let completed = false;
    const errors: unknown[] = [];
    const subscription = stats$(source, { intervalMs: 100, maxConsecutiveFailures: 1 }).subscribe({
      complete: () => (completed = true),
      error: (e) => errors.push(e),
    });
    try {
      source.reject(Object.assign(new Error('closed'), { name: 'InvalidStateError' }));
      await vi.advanceTimersByTimeAsync(0);
      expect(completed).toBe(true);
      expect(errors).toEqual([]);
    } finally {
      subscription.unsubscribe();
    }
  });
});

describe('stats$ over two real libwebrtc peers on loopback', () => {
  it('reports a host pair, an RTT and the bitrate of data-channel traffic, and completes on close', async () => {
    const CHUNK_BYTES = 16 * 1024;
    const [signalingA, signalingB] = createSignalingPair();
    const portA = createRealPort();
    const portB = createRealPort();
    const peers: Peer[] = [];
    const subscriptions: { unsubscribe(): void }[] = [];
    let pusher: ReturnType<typeof setInterval> | undefined;
    let closed = false;
    const closePeers = (): void => {
      if (closed) return;
      closed = true;
      for (const peer of peers) peer.close();
      // The peers own their ports; this covers a port whose peer failed to be created.
      if (peers.length < 2) [portA, portB].forEach((port) => port.close());
    };
    try {
      peers.push(createPeer({ rtc: portA, signaling: signalingA, polite: false, candidateFilter: keepLoopbackCandidates, dataChannels: [{ label: 'bulk' }] }));
      peers.push(createPeer({ rtc: portB, signaling: signalingB, polite: true, candidateFilter: keepLoopbackCandidates, dataChannels: [{ label: 'bulk' }] }));
      const [peerA, peerB] = peers as [Peer, Peer];
      let channel: DataChannel | undefined;
      let open = false;
      subscriptions.push(
        peerA.events$.subscribe((event) => {
          if (event.type !== 'datachannel') return;
          channel = event.channel;
          subscriptions.push(event.channel.state$.subscribe((state) => (open ||= state === 'open')));
        }),
      );
      let bytesDelivered = 0;
      subscriptions.push(
        peerB.events$.subscribe((event) => {
          if (event.type === 'message' && typeof event.data !== 'string') bytesDelivered += event.data.byteLength;
        }),
      );
      await waitFor(() => open, 'the data channel to open');

      const samplesA: StatsSample[] = [];
      const samplesB: StatsSample[] = [];
      let completedA = false;
      let completedB = false;
      const failures: unknown[] = [];
      subscriptions.push(
        stats$(portA.pc, { intervalMs: 100 }).subscribe({ next: (s) => samplesA.push(s), error: (e) => failures.push(e), complete: () => (completedA = true) }),
        stats$(portB.pc, { intervalMs: 100 }).subscribe({ next: (s) => samplesB.push(s), error: (e) => failures.push(e), complete: () => (completedB = true) }),
      );

      // A steady flow, so that whole sampling intervals fall inside it.
      let bytesPushed = 0;
      pusher = setInterval(() => {
        channel!.send(new Uint8Array(CHUNK_BYTES));
        bytesPushed += CHUNK_BYTES;
      }, 10);
      // An interval whose bitrate accounts for at least one whole chunk: keepalives (STUN
      // consent, SCTP heartbeats) are a few hundred bytes a second, far below 16 KiB a sample.
      const carriedAChunk = (samples: StatsSample[], rate: (s: StatsSample) => number | null): boolean =>
        samples.some((sample, i) => {
          const bitsPerSecond = rate(sample);
          const previous = samples[i - 1];
          return bitsPerSecond !== null && previous !== undefined && (bitsPerSecond * (sample.timestamp - previous.timestamp)) / 1000 / 8 >= CHUNK_BYTES;
        });
      // The first samples may say prflx: a connectivity check can reach a peer before the
      // trickled candidate it came from, and libwebrtc relabels the pair host once that arrives.
      await waitFor(
        () =>
          samplesA.some((s) => s.candidatePairType === 'host' && s.roundTripTimeMs !== null) && carriedAChunk(samplesA, (s) => s.bitrateOutBps),
        'A to report a host pair, an RTT, and outgoing data',
      );
      await waitFor(
        () =>
          samplesB.some((s) => s.candidatePairType === 'host') && carriedAChunk(samplesB, (s) => s.bitrateInBps),
        'B to report a host pair and incoming data',
      );
      clearInterval(pusher);
      pusher = undefined;

      // The counters cover what was delivered: once B has everything, A's next samples count at
      // least those bytes as sent, and B's at least those as received.
      await waitFor(() => bytesDelivered === bytesPushed, 'B to receive every chunk pushed');
      const delivered = bytesDelivered;
      const countA = samplesA.length;
      const countB = samplesB.length;
      await waitFor(() => samplesA.length > countA && samplesB.length > countB, 'a sample from each side after delivery');
      expect(samplesA.at(-1)!.bytesSent).toBeGreaterThanOrEqual(delivered);
      expect(samplesB.at(-1)!.bytesReceived).toBeGreaterThanOrEqual(delivered);
      expect(samplesA.at(-1)!.bytesSource).toBe('transport');
      expect(samplesA.find((s) => s.roundTripTimeMs !== null)!.roundTripTimeMs).toBeGreaterThanOrEqual(0);
      // Loopback only: no sample may show a server-reflexive or relayed path.
      expect([...samplesA, ...samplesB].filter((s) => s.candidatePairType === 'srflx' || s.candidatePairType === 'relay')).toEqual([]);
      expect(samplesA[0]!.bitrateOutBps).toBeNull();

      closePeers();
      await waitFor(() => completedA && completedB, 'both stats streams to complete', 2_000);
      expect(failures).toEqual([]);
    } finally {
      if (pusher !== undefined) clearInterval(pusher);
      for (const subscription of subscriptions) subscription.unsubscribe();
      closePeers();
    }
  });
});
