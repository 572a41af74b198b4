// Pure helpers of the call set-up benchmark: from the two pages' timestamps of one call to the
// durations it reports, and from many calls to medians, p90s and ratios. No browser here.

import { median, percentile, round } from '../stats.js';

/** What one page reports (pages/call-common.ts `SideTimes`); times are epoch milliseconds. */
export interface SideTimes {
  readonly role: 'caller' | 'callee';
  readonly call: number | null;
  readonly connected: number;
  readonly firstFrame: number;
  readonly marks: Readonly<Record<string, number>>;
}

/** Durations of one call, in ms from the caller's "call" (t0). */
export interface CallDurations {
  readonly callerConnected: number;
  readonly calleeConnected: number;
  /** "Connected on both sides": the later of the two sides' `connected`. */
  readonly connected: number;
  /** The caller's first decoded and presented frame of the callee's video. */
  readonly callerFirstFrame: number;
  readonly calleeFirstFrame: number;
  /** Both sides see the other's video: the later of the two first frames. */
  readonly firstFrame: number;
  /** Each side's set-up steps, in ms from t0 (for profiling). */
  readonly marks: { readonly caller: Readonly<Record<string, number>>; readonly callee: Readonly<Record<string, number>> };
}

function relative(marks: Readonly<Record<string, number>>, t0: number): Record<string, number> {
  return Object.fromEntries(
    Object.entries(marks)
      .map(([name, time]) => [name, time - t0] as const)
      .sort((a, b) => a[1] - b[1]),
  );
}

/** One call's durations; throws when the two pages' reports do not belong together. */
export function callDurations(caller: SideTimes, callee: SideTimes): CallDurations {
  if (caller.role !== 'caller' || callee.role !== 'callee') throw new Error(`expected a caller and a callee, got ${caller.role} and ${callee.role}`);
  const t0 = caller.call;
  if (t0 === null) throw new Error('the caller reported no call time');
  const callerConnected = caller.connected - t0;
  const calleeConnected = callee.connected - t0;
  const callerFirstFrame = caller.firstFrame - t0;
  const calleeFirstFrame = callee.firstFrame - t0;
  return {
    callerConnected,
    calleeConnected,
    connected: Math.max(callerConnected, calleeConnected),
    callerFirstFrame,
    calleeFirstFrame,
    firstFrame: Math.max(callerFirstFrame, calleeFirstFrame),
    marks: { caller: relative(caller.marks, t0), callee: relative(callee.marks, t0) },
  };
}

export type DurationKey = Exclude<keyof CallDurations, 'marks'>;
export const DURATION_KEYS: readonly DurationKey[] = ['connected', 'callerConnected', 'calleeConnected', 'firstFrame', 'callerFirstFrame', 'calleeFirstFrame'];

export interface MedianP90 {
  readonly median: number;
  readonly p90: number;
}

/** Median and p90 (ms, rounded) of every duration over a subject's calls. */
export function summarizeCalls(calls: readonly CallDurations[]): Record<DurationKey, MedianP90> {
  if (calls.length === 0) throw new RangeError('no calls to summarize');
  return Object.fromEntries(
    DURATION_KEYS.map((key) => {
      const samples = calls.map((call) => call[key]);
      return [key, { median: round(median(samples)), p90: round(percentile(samples, 90)) }];
    }),
  ) as Record<DurationKey, MedianP90>;
}

/** Median over the calls of each set-up step that every call has, ms from t0 (for profiling). */
export function medianMarks(calls: readonly CallDurations[], side: 'caller' | 'callee'): Record<string, number> {
  const names = Object.keys(calls[0]?.marks[side] ?? {}).filter((name) => calls.every((call) => name in call.marks[side]));
  return Object.fromEntries(
    names
      .map((name) => [name, round(median(calls.map((call) => call.marks[side][name]!)))] as const)
      .sort((a, b) => a[1] - b[1]),
  );
}

/** Ratio of medians of one duration (e.g. Parley's connected over raw's), rounded. */
export function medianRatio(numerator: readonly CallDurations[], denominator: readonly CallDurations[], key: DurationKey = 'connected'): number {
  return round(median(numerator.map((c) => c[key])) / median(denominator.map((c) => c[key])));
}
