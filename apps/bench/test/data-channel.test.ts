import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeWhenInstalled } from '../../../packages/core/test/helpers/describe-when-installed.js';
import { DEFAULT_HIGH_WATER_MARK, DEFAULT_LOW_WATER_MARK } from '@parley/core';
import { chromiumProblem } from '../src/chromium.js';
import { HIGH_WATER_MARK, LOW_WATER_MARK, STALL_MS, countStalledRuns, settingsFor } from '../src/data-channel/index.js';
import {
  KIB,
  MIB,
  SUBJECTS,
  checkChunk,
  checkPlan,
  chunkCount,
  chunkSize,
  makeChunk,
  heapRatio,
  mibPerSecond,
  throughputRatio,
  transferResult,
} from '../src/data-channel/plan.js';
import type { ReceiverReport, SenderReport, TransferPlan } from '../src/data-channel/plan.js';
import { openSession } from '../src/data-channel/session.js';
import type { DataChannelSession } from '../src/data-channel/session.js';

const BUILT_PAGES = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'pages');

const plan: TransferPlan = { totalBytes: 100 * KIB + 10, chunkBytes: 16 * KIB, highWaterMark: 64 * KIB, lowWaterMark: 16 * KIB };

function sender(startedAt: number): SenderReport {
  return { startedAt, handedOverAt: startedAt + 1, maxBufferedAmount: 64 * KIB, longestSendGapMs: 3, heapBeforeBytes: 1000, heapPeakBytes: 5000, heapSamples: 4 };
}

describe('data channel plan', () => {
  it('cuts the transfer into full chunks and a remainder', () => {
    expect(chunkCount(plan)).toBe(7);
    expect(chunkSize(plan, 0)).toBe(16 * KIB);
    expect(chunkSize(plan, 6)).toBe(4 * KIB + 10);
    let total = 0;
    for (let i = 0; i < chunkCount(plan); i++) total += chunkSize(plan, i);
    expect(total).toBe(plan.totalBytes);
    expect(() => chunkSize(plan, 7)).toThrow(RangeError);
  });

  it('refuses plans that cannot run as described', () => {
    expect(() => checkPlan({ ...plan, highWaterMark: 8 * KIB })).toThrow(/hold at least one chunk/);
    expect(() => checkPlan({ ...plan, lowWaterMark: plan.highWaterMark })).toThrow(/below highWaterMark/);
    expect(() => checkPlan({ ...plan, totalBytes: 1.5 })).toThrow(/whole number/);
    expect(checkPlan(plan)).toBe(plan);
  });

  it('stamps each chunk so that a lost, reordered or corrupted one is caught', () => {
    const chunks = [0, 1, 6].map((i) => makeChunk(plan, i));
    expect(checkChunk(plan, 0, chunks[0]!.buffer)).toBeNull();
    expect(checkChunk(plan, 6, chunks[2]!.buffer)).toBeNull();
    expect(checkChunk(plan, 0, chunks[1]!.buffer)).toMatch(/carries index 1/);
    expect(checkChunk(plan, 6, chunks[0]!.buffer)).toMatch(/bytes, expected/);
    const corrupted = makeChunk(plan, 1);
    corrupted[corrupted.length - 1]! ^= 0xff;
    expect(checkChunk(plan, 1, corrupted.buffer)).toMatch(/corrupted/);
  });

  it('computes MiB/s and the ratio of medians', () => {
    expect(mibPerSecond(64 * MIB, 2000)).toBe(32);
    expect(() => mibPerSecond(MIB, 0)).toThrow(RangeError);
    expect(throughputRatio(19, 20)).toBeCloseTo(0.95);
    expect(() => throughputRatio(1, 0)).toThrow(RangeError);
  });

  it('computes the sender peak heap ratio, Parley over raw', () => {
    expect(heapRatio(42 * MIB, 28 * MIB)).toBeCloseTo(1.5);
    expect(() => heapRatio(MIB, 0)).toThrow(RangeError);
  });

  it('times a transfer from the first send to the last byte, and refuses an incomplete one', () => {
    const received: ReceiverReport = { completedAt: 1500, bytes: plan.totalBytes, messages: 7 };
    const result = transferResult('raw', plan, sender(1000), received);
    expect(result.milliseconds).toBe(500);
    expect(result.mibPerSecond).toBeCloseTo(plan.totalBytes / MIB / 0.5);
    expect(result.heapGrowthBytes).toBe(4000);
    expect(() => transferResult('parley', plan, sender(1000), { ...received, bytes: plan.totalBytes - 1 })).toThrow(/got/);
    expect(() => transferResult('parley', plan, sender(1000), { ...received, messages: 6 })).toThrow(/messages/);
  });

  it('counts the runs in which the transport stalled: a pause between sends over STALL_MS', () => {
    const runs = [3, STALL_MS, STALL_MS + 1, 2100].map((longestSendGapMs) => ({ longestSendGapMs }));
    expect(countStalledRuns(runs)).toBe(2);
    expect(countStalledRuns([])).toBe(0);
  });

  it('uses the machine\'s default water marks for every subject, and the issue\'s 64 MiB in a full run', () => {
    expect(HIGH_WATER_MARK).toBe(DEFAULT_HIGH_WATER_MARK);
    expect(LOW_WATER_MARK).toBe(DEFAULT_LOW_WATER_MARK);
    expect(settingsFor(false).plan.totalBytes).toBe(64 * MIB);
    // The goal's two subjects, with at least 11 runs each in the full run.
    expect(settingsFor(false).subjects).toEqual(['raw', 'parley']);
    expect(settingsFor(false).rounds).toBeGreaterThanOrEqual(11);
    expect(settingsFor(true).subjects).toEqual(['raw', 'parley']);
  });
});

describeWhenInstalled('data channel transfer in Chromium (every subject, small)', 'Chromium', chromiumProblem(), () => {
  let session: DataChannelSession | undefined;
  // The machine's default marks: createPeer's data channels run with those.
  const small: TransferPlan = { totalBytes: 2 * MIB + 123, chunkBytes: 16 * KIB, highWaterMark: DEFAULT_HIGH_WATER_MARK, lowWaterMark: DEFAULT_LOW_WATER_MARK };

  beforeAll(async () => {
    if (!existsSync(join(BUILT_PAGES, 'data-channel.html'))) {
      throw new Error(`the bench pages are not built (${BUILT_PAGES}): run npm run build -w @parley/bench`);
    }
    session = await openSession({ staticDir: BUILT_PAGES });
  }, 30_000);

  afterAll(async () => {
    await session?.close();
  });

  for (const subject of SUBJECTS) {
    it(`${subject}: every byte arrives in order, bufferedAmount stays under the high-water mark`, async () => {
      const result = await session!.transfer(subject, small, 20_000);
      expect(result.bytes).toBe(small.totalBytes);
      expect(result.mibPerSecond).toBeGreaterThan(0);
      // The channel was filled to the mark at least once, and never past it.
      expect(result.maxBufferedAmount).toBeGreaterThan(small.highWaterMark - small.chunkBytes);
      expect(result.maxBufferedAmount).toBeLessThanOrEqual(small.highWaterMark);
      expect(result.heapPeakBytes).toBeGreaterThan(0);
    }, 25_000);
  }

  it('refuses a plan whose marks the Parley data channel would not follow', async () => {
    await expect(session!.transfer('parley', { ...small, highWaterMark: 2 * MIB }, 20_000)).rejects.toThrow(/water marks/);
  }, 25_000);
});
