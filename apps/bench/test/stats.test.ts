import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { alternate, mean, median, percentile, round, summarize } from '../src/stats.js';

describe('percentile (nearest rank)', () => {
  it('picks a measured value', () => {
    expect(median([1, 2, 3, 4])).toBe(2);
    expect(median([5, 1, 3])).toBe(3);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90)).toBe(9);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 100)).toBe(10);
    expect(percentile([7], 1)).toBe(7);
  });

  it('refuses an empty sample and a percentile outside (0, 100]', () => {
    expect(() => median([])).toThrow(RangeError);
    expect(() => percentile([1], 0)).toThrow(RangeError);
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(() => mean([])).toThrow(RangeError);
  });

  it('is a member of the sample, monotone in p, and between min and max', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ noNaN: true, min: -1e6, max: 1e6 }), { minLength: 1, maxLength: 50 }), fc.integer({ min: 1, max: 99 }), (xs, p) => {
        const v = percentile(xs, p);
        expect(xs).toContain(v);
        expect(percentile(xs, p + 1)).toBeGreaterThanOrEqual(v);
        const s = summarize(xs);
        expect(s.min).toBeLessThanOrEqual(s.median);
        expect(s.median).toBeLessThanOrEqual(s.p90);
        expect(s.p90).toBeLessThanOrEqual(s.p99);
        expect(s.p99).toBeLessThanOrEqual(s.max);
      }),
    );
  });

  it('does not reorder the caller’s samples', () => {
    const xs = [3, 1, 2];
    median(xs);
    expect(xs).toEqual([3, 1, 2]);
  });
});

describe('round', () => {
  it('keeps three significant digits and whole large numbers', () => {
    expect(round(1.23456)).toBe(1.23);
    expect(round(0.0012345)).toBe(0.00123);
    expect(round(12345.6)).toBe(12346);
    expect(round(0)).toBe(0);
  });
});

describe('alternate', () => {
  it('rotates the order each round so every subject runs in every position', async () => {
    const order: string[] = [];
    const samples = await alternate(['a', 'b', 'c'], 3, (subject, r) => {
      order.push(subject);
      return Promise.resolve(r);
    });
    expect(order).toEqual(['a', 'b', 'c', 'b', 'c', 'a', 'c', 'a', 'b']);
    expect(samples).toEqual({ a: [0, 1, 2], b: [0, 1, 2], c: [0, 1, 2] });
  });
});
