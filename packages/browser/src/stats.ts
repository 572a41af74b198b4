import { isInvalidStateError } from '@parley/core';
import { Observable } from 'rxjs';

// Call-quality numbers from RTCPeerConnection.getStats() (webrtc-pc §8.2, the objects are those
// of W3C webrtc-stats). `summarizeStats` is a pure function of one report (plus the previous
// sample for rates); `stats$` polls a connection and emits those summaries.

/** webrtc-stats RTCIceCandidateType: how an address was learned (RFC 8445 §5.1.1). */
export type CandidateType = 'host' | 'srflx' | 'prflx' | 'relay';

/** Where the cumulative byte counters (and so the bitrates) of a sample come from. */
export type BytesSource = 'transport' | 'candidate-pair';

/** One getStats() report, summarized. Counters are cumulative; rates compare two samples. */
export interface StatsSample {
  /** The report's timestamp (ms, the stats objects' DOMHighResTimeStamp); 0 for an empty report. */
  readonly timestamp: number;
  /** The selected candidate pair's `currentRoundTripTime`, in ms (STUN consent checks, RFC 7675);
   * null until the engine has measured one, or without a selected pair. */
  readonly roundTripTimeMs: number | null;
  /** Bits per second received since the previous sample; null on the first sample, or when the
   * counters cannot be compared (see `bytesSource`). */
  readonly bitrateInBps: number | null;
  /** Bits per second sent since the previous sample; null as for `bitrateInBps`. */
  readonly bitrateOutBps: number | null;
  /** Cumulative bytes received, from `bytesSource`. */
  readonly bytesReceived: number;
  /** Cumulative bytes sent, from `bytesSource`. */
  readonly bytesSent: number;
  /**
   * `transport`: the sum over the `transport` stats (webrtc-stats RTCTransportStats), which keep
   * counting across a change of selected pair (ICE restart), so they are preferred.
   * `candidate-pair`: the selected pair's own counters, for engines without transport stats
   * (Firefox); they restart with each new pair, so no rate is given across a pair change.
   * null: neither was reported.
   */
  readonly bytesSource: BytesSource | null;
  /** Sum of `packetsLost` over the `inbound-rtp` streams: what this side did not receive. */
  readonly packetsLost: number;
  /** Sum of `packetsReceived` over the `inbound-rtp` streams. */
  readonly packetsReceived: number;
  /** The id of the selected candidate pair's stats, or null while none is selected. */
  readonly selectedCandidatePairId: string | null;
  /** The path the selected pair takes, as its least direct end (see `candidatePairTypeOf`). */
  readonly candidatePairType: CandidateType | null;
  readonly localCandidateType: CandidateType | null;
  readonly remoteCandidateType: CandidateType | null;
}

/** Anything shaped like an RTCStatsReport (a maplike of id → stats object), e.g. a Map. */
export interface StatsReportLike {
  forEach(callback: (stats: unknown, id: string) => void): void;
}

type Stats = Readonly<Record<string, unknown>>;

const CANDIDATE_TYPES: readonly CandidateType[] = ['host', 'srflx', 'prflx', 'relay'];

/**
 * How indirect a path through a candidate of this type is: host (the interface's own address),
 * then prflx (an address the other side saw in connectivity checks; on a LAN or loopback it is
 * often just a host address that arrived before its signaling), then srflx (the address a NAT
 * maps the host to, learned from STUN), then relay (the traffic goes through a TURN server).
 */
const INDIRECTNESS: Readonly<Record<CandidateType, number>> = { host: 0, prflx: 1, srflx: 2, relay: 3 };

/**
 * The type of a candidate pair: relay when either end is relay (the media goes through TURN
 * whatever the other end is), otherwise the less direct end by the order host < prflx < srflx.
 * So host↔host is `host`, host↔srflx is `srflx`, prflx↔srflx is `srflx`. null when an end is
 * unknown and the other end is not relay.
 */
export function candidatePairTypeOf(local: CandidateType | null, remote: CandidateType | null): CandidateType | null {
  if (local === 'relay' || remote === 'relay') return 'relay';
  if (local === null || remote === null) return null;
  return INDIRECTNESS[local] >= INDIRECTNESS[remote] ? local : remote;
}

function isStats(value: unknown): value is Stats {
  return typeof value === 'object' && value !== null;
}

function numberField(stats: Stats | undefined, field: string): number | undefined {
  const value = stats?.[field];
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function stringField(stats: Stats | undefined, field: string): string | undefined {
  const value = stats?.[field];
  return typeof value === 'string' ? value : undefined;
}

function candidateTypeOf(stats: Stats | undefined): CandidateType | null {
  const type = stringField(stats, 'candidateType');
  return CANDIDATE_TYPES.find((known) => known === type) ?? null;
}

function pairBytes(pair: Stats): number {
  return (numberField(pair, 'bytesSent') ?? 0) + (numberField(pair, 'bytesReceived') ?? 0);
}

/**
 * The selected candidate pair (webrtc-stats RTCTransportStats.selectedCandidatePairId). Engines
 * without transport stats mark it on the pair instead: Firefox with a non-standard
 * `selected: true`, others only as nominated and succeeded (RFC 8445 §8.1.1). libwebrtc can
 * report several pairs nominated and succeeded at once (each side nominates from its own view),
 * so among those the one that carried the most bytes is taken: it is the one in use.
 */
function selectedPairOf(all: readonly Stats[], byId: ReadonlyMap<string, Stats>): Stats | undefined {
  for (const transport of all.filter((stats) => stats['type'] === 'transport')) {
    const pair = byId.get(stringField(transport, 'selectedCandidatePairId') ?? '');
    if (pair?.['type'] === 'candidate-pair') return pair;
  }
  const pairs = all.filter((stats) => stats['type'] === 'candidate-pair');
  const markedSelected = pairs.find((pair) => pair['selected'] === true);
  if (markedSelected) return markedSelected;
  const nominated = pairs.filter((pair) => pair['nominated'] === true && pair['state'] === 'succeeded');
  return nominated.reduce<Stats | undefined>((best, pair) => (best === undefined || pairBytes(pair) > pairBytes(best) ? pair : best), undefined);
}

interface ByteCounters {
  readonly source: BytesSource | null;
  readonly sent: number;
  readonly received: number;
}

function byteCountersOf(all: readonly Stats[], selectedPair: Stats | undefined): ByteCounters {
  const transports = all.filter(
    (stats) => stats['type'] === 'transport' && (numberField(stats, 'bytesSent') !== undefined || numberField(stats, 'bytesReceived') !== undefined),
  );
  if (transports.length > 0) {
    const sum = (field: string): number => transports.reduce((total, stats) => total + (numberField(stats, field) ?? 0), 0);
    return { source: 'transport', sent: sum('bytesSent'), received: sum('bytesReceived') };
  }
  if (selectedPair) {
    return { source: 'candidate-pair', sent: numberField(selectedPair, 'bytesSent') ?? 0, received: numberField(selectedPair, 'bytesReceived') ?? 0 };
  }
  return { source: null, sent: 0, received: 0 };
}

/** Bits per second between two cumulative byte counts, or null when they are not comparable. */
function bitrate(bytesNow: number, bytesBefore: number, elapsedMs: number): number | null {
  const bytes = bytesNow - bytesBefore;
  // A counter that went down was restarted (a new transport or pair): no rate across it.
  if (bytes < 0 || elapsedMs <= 0) return null;
  return (bytes * 8 * 1000) / elapsedMs;
}

/**
 * Summarizes one getStats() report. Pass the previous sample of the same connection to get
 * bitrates (bytes over the time between the two reports); the first sample has null bitrates.
 */
export function summarizeStats(report: StatsReportLike, previous?: StatsSample): StatsSample {
  const all: Stats[] = [];
  const byId = new Map<string, Stats>();
  report.forEach((stats, id) => {
    if (!isStats(stats)) return;
    all.push(stats);
    byId.set(id, stats);
  });

  const timestamp = all.reduce((latest, stats) => Math.max(latest, numberField(stats, 'timestamp') ?? 0), 0);
  const selectedPair = selectedPairOf(all, byId);
  const selectedCandidatePairId = stringField(selectedPair, 'id') ?? null;
  const localCandidateType = candidateTypeOf(byId.get(stringField(selectedPair, 'localCandidateId') ?? ''));
  const remoteCandidateType = candidateTypeOf(byId.get(stringField(selectedPair, 'remoteCandidateId') ?? ''));
  const roundTripSeconds = numberField(selectedPair, 'currentRoundTripTime');
  const bytes = byteCountersOf(all, selectedPair);

  const inbound = all.filter((stats) => stats['type'] === 'inbound-rtp');
  const sumInbound = (field: string): number => inbound.reduce((total, stats) => total + (numberField(stats, field) ?? 0), 0);

  const comparable =
    previous !== undefined &&
    bytes.source !== null &&
    bytes.source === previous.bytesSource &&
    (bytes.source === 'transport' || selectedCandidatePairId === previous.selectedCandidatePairId);
  const elapsedMs = previous === undefined ? 0 : timestamp - previous.timestamp;

  return {
    timestamp,
    roundTripTimeMs: roundTripSeconds === undefined ? null : roundTripSeconds * 1000,
    bitrateInBps: comparable ? bitrate(bytes.received, previous.bytesReceived, elapsedMs) : null,
    bitrateOutBps: comparable ? bitrate(bytes.sent, previous.bytesSent, elapsedMs) : null,
    bytesReceived: bytes.received,
    bytesSent: bytes.sent,
    bytesSource: bytes.source,
    packetsLost: sumInbound('packetsLost'),
    packetsReceived: sumInbound('packetsReceived'),
    selectedCandidatePairId,
    candidatePairType: candidatePairTypeOf(localCandidateType, remoteCandidateType),
    localCandidateType,
    remoteCandidateType,
  };
}

/** What `stats$` polls: an RTCPeerConnection, or anything with its getStats and states. */
export interface StatsSource {
  getStats(): Promise<StatsReportLike>;
  readonly connectionState?: string;
  readonly signalingState?: string;
}

/** Options of `stats$`: how often to poll and how many failed polls to bear. */
export interface StatsStreamOptions {
  /** Time from the end of one poll to the start of the next, in ms (default 1000). */
  readonly intervalMs?: number;
  /** Error the stream after this many failed polls in a row (default 3); one failure is skipped. */
  readonly maxConsecutiveFailures?: number;
}

/** webrtc-pc close(): both states become `closed` (older engines only have the signaling state). */
function isClosed(source: StatsSource): boolean {
  return source.connectionState === 'closed' || source.signalingState === 'closed';
}

/**
 * Polls `source.getStats()` and emits a `StatsSample` per report, the first right away. Polls
 * never overlap: the next starts `intervalMs` after the previous one settled. The stream completes
 * when the connection is closed (seen before a poll, or as the reason a poll failed: webrtc-pc
 * §8.2 getStats rejects with InvalidStateError on a closed connection; libwebrtc in Node rejects
 * with a plain Error, so the state is checked too). A single failed poll is skipped; the stream
 * errors only after `maxConsecutiveFailures` failures in a row.
 */
export function stats$(source: StatsSource, options: StatsStreamOptions = {}): Observable<StatsSample> {
  const intervalMs = options.intervalMs ?? 1000;
  const maxConsecutiveFailures = options.maxConsecutiveFailures ?? 3;
  return new Observable<StatsSample>((subscriber) => {
    let previous: StatsSample | undefined;
    let failures = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;

    const scheduleNextPoll = (): void => {
      timer = setTimeout(poll, intervalMs);
    };
    const onReport = (report: StatsReportLike): void => {
      if (subscriber.closed) return;
      failures = 0;
      previous = summarizeStats(report, previous);
      subscriber.next(previous);
      scheduleNextPoll();
    };
    const onFailure = (error: unknown): void => {
      if (subscriber.closed) return;
      if (isClosed(source) || isInvalidStateError(error)) {
        subscriber.complete();
        return;
      }
      failures += 1;
      if (failures >= maxConsecutiveFailures) subscriber.error(error);
      else scheduleNextPoll();
    };
    function poll(): void {
      timer = undefined;
      if (isClosed(source)) {
        subscriber.complete();
        return;
      }
      let report: Promise<StatsReportLike>;
      try {
        report = source.getStats();
      } catch (error) {
        onFailure(error);
        return;
      }
      report.then(onReport, onFailure);
    }

    poll();
    return () => {
      if (timer !== undefined) clearTimeout(timer);
    };
  });
}
