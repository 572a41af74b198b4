import type { StatsSample } from '@parley/browser';
import { describe, expect, it, vi } from 'vitest';
import {
  DEFAULT_CHART_THEME,
  DEFAULT_HISTORY_CAPACITY,
  StatsHistory,
  WAITING_FOR_STATS,
  drawStatsChart,
  formatBitrate,
  formatRtt,
  niceAxis,
  toPolyline,
} from '../../src/stats-chart.js';
import type { ChartPoint, PixelPoint } from '../../src/stats-chart.js';

function sample(timestamp: number, rtt: number | null, inBps: number | null, outBps: number | null): StatsSample {
  return {
    timestamp,
    roundTripTimeMs: rtt,
    bitrateInBps: inBps,
    bitrateOutBps: outBps,
    bytesReceived: 0,
    bytesSent: 0,
    bytesSource: 'transport',
    packetsLost: 0,
    packetsReceived: 0,
    selectedCandidatePairId: 'P',
    candidatePairType: 'host',
    localCandidateType: 'host',
    remoteCandidateType: 'host',
  };
}

function point(timestamp: number, rttMs: number | null, inBps: number | null = null, outBps: number | null = null): ChartPoint {
  return { timestamp, rttMs, inBps, outBps };
}

describe('StatsHistory', () => {
  it('keeps the charted numbers of each sample, nulls included', () => {
    const history = new StatsHistory();
    history.push(sample(1000, 12.5, null, null));
    history.push(sample(2000, null, 812_000, 1_400_000));
    expect(history.points()).toEqual([
      { timestamp: 1000, rttMs: 12.5, inBps: null, outBps: null },
      { timestamp: 2000, rttMs: null, inBps: 812_000, outBps: 1_400_000 },
    ]);
    expect(history.latest()).toEqual({ timestamp: 2000, rttMs: null, inBps: 812_000, outBps: 1_400_000 });
  });

  it('holds one minute at 1 Hz by default, dropping the oldest', () => {
    const history = new StatsHistory();
    for (let second = 1; second <= DEFAULT_HISTORY_CAPACITY + 1; second += 1) history.push(sample(second * 1000, second, null, null));
    const timestamps = history.points().map((p) => p.timestamp);
    expect(DEFAULT_HISTORY_CAPACITY).toBe(60);
    expect(timestamps).toHaveLength(60);
    expect(timestamps[0]).toBe(2000);
    expect(timestamps.at(-1)).toBe(61_000);
    expect(history.latest()?.timestamp).toBe(61_000);
  });

  it('holds the capacity it is given', () => {
    const history = new StatsHistory(3);
    for (const timestamp of [1, 2, 3, 4, 5]) history.push(sample(timestamp, timestamp, null, null));
    expect(history.points().map((p) => p.rttMs)).toEqual([3, 4, 5]);
  });

  it('hands out a snapshot that later pushes do not change', () => {
    const history = new StatsHistory(2);
    history.push(sample(1, 1, null, null));
    const before = history.points();
    history.push(sample(2, 2, null, null));
    history.push(sample(3, 3, null, null));
    expect(before.map((p) => p.timestamp)).toEqual([1]);
  });

  it('clear() empties it', () => {
    const history = new StatsHistory();
    history.push(sample(1, 1, 1, 1));
    history.clear();
    expect(history.points()).toEqual([]);
    expect(history.latest()).toBeUndefined();
  });

  it('turns a non-finite number into a gap rather than a point off the chart', () => {
    const history = new StatsHistory();
    history.push(sample(1, Number.NaN, Number.POSITIVE_INFINITY, 5));
    expect(history.latest()).toEqual({ timestamp: 1, rttMs: null, inBps: null, outBps: 5 });
  });

  it('rejects a capacity that is not a positive integer', () => {
    expect(() => new StatsHistory(0)).toThrow(RangeError);
    expect(() => new StatsHistory(1.5)).toThrow(RangeError);
  });
});

describe('niceAxis', () => {
  it.each([
    [37, 40, [0, 10, 20, 30, 40]],
    [40, 40, [0, 10, 20, 30, 40]],
    [1, 1, [0, 0.25, 0.5, 0.75, 1]],
    [100, 100, [0, 25, 50, 75, 100]],
    [101, 150, [0, 50, 100, 150]],
    [0.3, 0.3, [0, 0.1, 0.2, 0.3]],
    [1_400_000, 1_500_000, [0, 500_000, 1_000_000, 1_500_000]],
  ])('niceAxis(%s) has max %s and ticks %j', (value, max, ticks) => {
    expect(niceAxis(value)).toEqual({ max, ticks });
  });

  it.each([0, -5, Number.NaN, Number.POSITIVE_INFINITY])('gives the axis of 1 for %s', (value) => {
    expect(niceAxis(value)).toEqual({ max: 1, ticks: [0, 0.25, 0.5, 0.75, 1] });
  });

  it('takes the number of intervals to aim for', () => {
    expect(niceAxis(37, 2)).toEqual({ max: 40, ticks: [0, 20, 40] });
    expect(niceAxis(37, 10)).toEqual({ max: 40, ticks: [0, 5, 10, 15, 20, 25, 30, 35, 40] });
  });

  it('always covers the value tightly with at most tickCount intervals of a nice step', () => {
    for (let exponent = -3; exponent <= 9; exponent += 1) {
      for (const mantissa of [1, 1.01, 1.3, 2, 2.4, 2.51, 3.7, 4.99, 5, 6.1, 7.77, 9.99]) {
        for (const tickCount of [1, 3, 4, 5, 6]) {
          const value = mantissa * 10 ** exponent;
          const { max, ticks } = niceAxis(value, tickCount);
          const step = ticks[1]! - ticks[0]!;
          const stepMantissa = Number((step / 10 ** Math.floor(Math.log10(step) + 1e-9)).toPrecision(6));
          expect(ticks[0]).toBe(0);
          expect(ticks.at(-1)).toBe(max);
          expect(ticks.length - 1).toBeLessThanOrEqual(tickCount);
          expect([1, 2, 2.5, 5]).toContain(stepMantissa);
          expect(max).toBeGreaterThanOrEqual(value);
          expect(max - step).toBeLessThan(value);
        }
      }
    }
  });

  it('rejects a tick count that is not a positive integer', () => {
    expect(() => niceAxis(10, 0)).toThrow(RangeError);
    expect(() => niceAxis(10, 2.5)).toThrow(RangeError);
  });
});

describe('formatBitrate', () => {
  it.each([
    [null, '—'],
    [Number.NaN, '—'],
    [0, '0 bit/s'],
    [640.4, '640 bit/s'],
    [999.6, '1.0 kbit/s'],
    [1_500, '1.5 kbit/s'],
    [9_960, '10 kbit/s'],
    [812_000, '812 kbit/s'],
    [999_960, '1.0 Mbit/s'],
    [1_400_000, '1.4 Mbit/s'],
    [12_345_678, '12 Mbit/s'],
    [2_500_000_000, '2.5 Gbit/s'],
  ])('formats %s as %s', (bps, text) => {
    expect(formatBitrate(bps)).toBe(text);
  });
});

describe('formatRtt', () => {
  it.each([
    [null, '—'],
    [Number.NaN, '—'],
    [0, '0 ms'],
    [0.4, '0.4 ms'],
    [2.5, '2.5 ms'],
    [9.96, '10 ms'],
    [12, '12 ms'],
    [12.4, '12 ms'],
    [1500, '1500 ms'],
  ])('formats %s as %s', (ms, text) => {
    expect(formatRtt(ms)).toBe(text);
  });
});

describe('toPolyline', () => {
  it('maps 0..max to the bottom..top of the plot, spread over its width', () => {
    expect(toPolyline([0, 50, 100], 100, 50, 100)).toEqual([
      [
        [0, 50],
        [50, 25],
        [100, 0],
      ],
    ]);
  });

  it('splits at a null, keeping each value at its own x', () => {
    expect(toPolyline([10, null, 20, 30], 90, 100, 100)).toEqual([
      [[0, 90]],
      [
        [60, 80],
        [90, 70],
      ],
    ]);
  });

  it('leaves no empty polyline for leading, trailing or repeated gaps', () => {
    expect(toPolyline([null, null, 10, null, null, 20, null], 60, 10, 10)).toEqual([[[20, 0]], [[50, 0]]]);
    expect(toPolyline([null, null], 60, 10, 10)).toEqual([]);
    expect(toPolyline([], 60, 10, 10)).toEqual([]);
  });

  it('treats a non-finite value as a gap', () => {
    expect(toPolyline([1, Number.NaN, 1], 10, 10, 1)).toHaveLength(2);
  });

  it('puts the values in the last of `slots` positions, the latest at the right edge', () => {
    expect(toPolyline([10, 20], 100, 100, 100, 5)).toEqual([
      [
        [75, 90],
        [100, 80],
      ],
    ]);
    expect(toPolyline([10], 100, 100, 100, 1)).toEqual([[[100, 90]]]);
  });

  it('clamps values outside 0..max to the edges', () => {
    expect(toPolyline([-5, 150], 10, 100, 100)).toEqual([
      [
        [0, 100],
        [10, 0],
      ],
    ]);
  });

  it('rejects a max that is not positive and fewer slots than values', () => {
    expect(() => toPolyline([1], 10, 10, 0)).toThrow(RangeError);
    expect(() => toPolyline([1, 2, 3], 10, 10, 10, 2)).toThrow(RangeError);
  });
});

// drawStatsChart against a fake 2D context that records every call and property assignment, and
// a replay of that record into what ended up on the canvas: stroked paths and filled texts.

interface Call {
  readonly name: string;
  readonly args: readonly unknown[];
}

function recordingContext(calls: Call[]): CanvasRenderingContext2D {
  const state: Record<string, unknown> = {};
  const methods = new Proxy(state, {
    get(_, name) {
      if (typeof name !== 'string') return undefined;
      if (name in state) return state[name];
      return (...args: unknown[]) => {
        calls.push({ name, args });
        // measureText: a fixed-pitch font of 6 px per character.
        return name === 'measureText' ? { width: String(args[0]).length * 6 } : undefined;
      };
    },
    set(_, name, value) {
      if (typeof name === 'string') {
        state[name] = value;
        calls.push({ name: `${name}=`, args: [value] });
      }
      return true;
    },
  });
  return methods as unknown as CanvasRenderingContext2D;
}

interface FakeCanvas {
  readonly canvas: HTMLCanvasElement;
  readonly calls: Call[];
  readonly getContext: ReturnType<typeof vi.fn>;
  /** Every assignment to width or height, in order. */
  readonly resizes: string[];
}

function fakeCanvas(options: { cssWidth?: number; cssHeight?: number; ratio?: number | null } = {}): FakeCanvas {
  const calls: Call[] = [];
  const context = recordingContext(calls);
  const resizes: string[] = [];
  const getContext = vi.fn(() => context);
  let width = 300;
  let height = 150;
  const ratio = options.ratio === undefined ? 2 : options.ratio;
  const canvas = {
    clientWidth: options.cssWidth ?? 300,
    clientHeight: options.cssHeight ?? 200,
    get width() {
      return width;
    },
    set width(value: number) {
      resizes.push(`width=${value}`);
      width = value;
    },
    get height() {
      return height;
    },
    set height(value: number) {
      resizes.push(`height=${value}`);
      height = value;
    },
    ownerDocument: { defaultView: ratio === null ? null : { devicePixelRatio: ratio } },
    getContext,
  };
  return { canvas: canvas as unknown as HTMLCanvasElement, calls, getContext, resizes };
}

interface Stroke {
  readonly style: unknown;
  readonly subpaths: PixelPoint[][];
}

interface Text {
  readonly text: string;
  readonly style: unknown;
}

interface Drawing {
  readonly strokes: Stroke[];
  readonly texts: Text[];
  /** Filled arcs (dots), by centre. */
  readonly dots: { readonly style: unknown; readonly at: PixelPoint }[];
}

function replay(calls: readonly Call[]): Drawing {
  const drawing: Drawing = { strokes: [], texts: [], dots: [] };
  let strokeStyle: unknown;
  let fillStyle: unknown;
  let subpaths: PixelPoint[][] = [];
  let arcs: PixelPoint[] = [];
  for (const { name, args } of calls) {
    const [x, y] = args as number[];
    if (name === 'strokeStyle=') strokeStyle = args[0];
    else if (name === 'fillStyle=') fillStyle = args[0];
    else if (name === 'beginPath') {
      subpaths = [];
      arcs = [];
    } else if (name === 'moveTo') subpaths.push([[x!, y!]]);
    else if (name === 'lineTo') subpaths.at(-1)!.push([x!, y!]);
    else if (name === 'arc') arcs.push([x!, y!]);
    else if (name === 'stroke') drawing.strokes.push({ style: strokeStyle, subpaths });
    else if (name === 'fill') drawing.dots.push(...arcs.map((at) => ({ style: fillStyle, at })));
    else if (name === 'fillText') drawing.texts.push({ text: String(args[0]), style: fillStyle });
  }
  return drawing;
}

function strokesIn(drawing: Drawing, style: string): Stroke[] {
  return drawing.strokes.filter((stroke) => stroke.style === style && stroke.subpaths.length > 0);
}

/** Each panel's grid as drawn: its gridlines' common x extent and y positions, top to bottom. */
function grids(drawing: Drawing): { readonly left: number; readonly right: number; readonly ys: number[] }[] {
  return strokesIn(drawing, DEFAULT_CHART_THEME.grid).map(({ subpaths }) => ({
    left: subpaths[0]![0]![0],
    right: subpaths[0]![1]![0],
    ys: subpaths.map((line) => line[0]![1]).sort((a, b) => a - b),
  }));
}

const RTT = DEFAULT_CHART_THEME.rtt;
const INBOUND = DEFAULT_CHART_THEME.inbound;
const OUTBOUND = DEFAULT_CHART_THEME.outbound;

describe('drawStatsChart', () => {
  it('sizes the backing store from the CSS size and the device pixel ratio, and draws in CSS pixels', () => {
    const fake = fakeCanvas({ cssWidth: 320, cssHeight: 180, ratio: 2 });
    drawStatsChart(fake.canvas, []);
    expect(fake.canvas.width).toBe(640);
    expect(fake.canvas.height).toBe(360);
    expect(fake.calls).toContainEqual({ name: 'setTransform', args: [2, 0, 0, 2, 0, 0] });
  });

  it('resizes the backing store only when the size changed (a resize clears the canvas)', () => {
    const fake = fakeCanvas({ cssWidth: 320, cssHeight: 180, ratio: 1.5 });
    drawStatsChart(fake.canvas, []);
    drawStatsChart(fake.canvas, [point(1, 10)]);
    expect(fake.resizes).toEqual(['width=480', 'height=270']);
    expect(fake.calls.filter((call) => call.name === 'setTransform')).toHaveLength(2);
  });

  it('takes a ratio of 1 without a window', () => {
    const fake = fakeCanvas({ cssWidth: 320, cssHeight: 180, ratio: null });
    drawStatsChart(fake.canvas, []);
    expect(fake.canvas.width).toBe(320);
    expect(fake.calls).toContainEqual({ name: 'setTransform', args: [1, 0, 0, 1, 0, 0] });
  });

  it('leaves a canvas without a layout size alone', () => {
    const fake = fakeCanvas({ cssWidth: 0, cssHeight: 200 });
    drawStatsChart(fake.canvas, [point(1, 10)]);
    expect(fake.getContext).not.toHaveBeenCalled();
    expect(fake.resizes).toEqual([]);
  });

  it('draws both axes and "waiting for stats…" for an empty history, and no series', () => {
    const fake = fakeCanvas();
    drawStatsChart(fake.canvas, []);
    const drawing = replay(fake.calls);
    expect(drawing.texts.filter((t) => t.text === WAITING_FOR_STATS)).toHaveLength(2);
    const panels = grids(drawing);
    expect(panels).toHaveLength(2);
    expect(panels[0]!.ys).toHaveLength(5);
    expect(panels[1]!.ys).toHaveLength(5);
    // The RTT panel sits above the bitrate panel.
    expect(Math.max(...panels[0]!.ys)).toBeLessThan(Math.min(...panels[1]!.ys));
    expect(drawing.texts.map((t) => t.text)).toEqual(expect.arrayContaining(['Round-trip time', 'Bitrate', '10 ms', '10 kbit/s', '—', 'in —', 'out —']));
    expect(strokesIn(drawing, RTT)).toEqual([]);
    expect(strokesIn(drawing, INBOUND)).toEqual([]);
    expect(strokesIn(drawing, OUTBOUND)).toEqual([]);
  });

  it('splits a line at a null into two subpaths', () => {
    const fake = fakeCanvas();
    drawStatsChart(fake.canvas, [point(1, 10), point(2, 20), point(3, null), point(4, 30), point(5, 40)]);
    const drawing = replay(fake.calls);
    expect(drawing.texts.map((t) => t.text)).not.toContain(WAITING_FOR_STATS);
    const [rtt, ...others] = strokesIn(drawing, RTT);
    expect(others).toEqual([]);
    expect(rtt!.subpaths).toHaveLength(2);
    const [before, after] = rtt!.subpaths;
    expect(before).toHaveLength(2);
    expect(after).toHaveLength(2);
    // The gap keeps its slot: the step across it is twice the step between neighbours.
    const step = before![1]![0] - before![0]![0];
    expect(after![0]![0] - before![1]![0]).toBeCloseTo(2 * step);
    // Larger values are higher up.
    const ys = [...before!, ...after!].map(([, y]) => y);
    expect(ys).toEqual([...ys].sort((a, b) => b - a));
  });

  it('places the latest point at the right edge and spreads a minute over the width', () => {
    const fake = fakeCanvas();
    drawStatsChart(fake.canvas, [point(1, 20), point(2, 40)]);
    const drawing = replay(fake.calls);
    const [rttGrid] = grids(drawing);
    const [line] = strokesIn(drawing, RTT)[0]!.subpaths;
    const [older, newer] = line!;
    expect(newer![0]).toBeCloseTo(rttGrid!.right);
    expect(newer![0] - older![0]).toBeCloseTo((rttGrid!.right - rttGrid!.left) / (DEFAULT_HISTORY_CAPACITY - 1));
    // 40 ms is the axis maximum (niceAxis(40) = 40): the top gridline; 20 ms halfway down.
    const top = rttGrid!.ys[0]!;
    const bottom = rttGrid!.ys.at(-1)!;
    expect(Math.abs(newer![1] - top)).toBeLessThanOrEqual(1);
    expect(Math.abs(older![1] - (top + bottom) / 2)).toBeLessThanOrEqual(1);
  });

  it('draws a value alone between gaps as a dot, since a one-point line shows nothing', () => {
    const fake = fakeCanvas();
    drawStatsChart(fake.canvas, [point(1, 10), point(2, null), point(3, 15), point(4, null)]);
    const drawing = replay(fake.calls);
    expect(drawing.dots.filter((dot) => dot.style === RTT)).toHaveLength(2);
    expect(strokesIn(drawing, RTT)).toEqual([]);
  });

  it('prints the latest values in the series colours and scales the bitrate axis to both lines', () => {
    const fake = fakeCanvas();
    drawStatsChart(fake.canvas, [point(1, 37, 700_000, 1_000_000), point(2, 12, 812_000, 1_400_000)]);
    const drawing = replay(fake.calls);
    expect(drawing.texts).toContainEqual({ text: '12 ms', style: RTT });
    expect(drawing.texts).toContainEqual({ text: 'in 812 kbit/s', style: INBOUND });
    expect(drawing.texts).toContainEqual({ text: 'out 1.4 Mbit/s', style: OUTBOUND });
    // RTT axis: niceAxis(37) = 40; bitrate axis: niceAxis(1.4 Mbit/s) = 1.5 Mbit/s.
    expect(drawing.texts.map((t) => t.text)).toEqual(expect.arrayContaining(['40 ms', '1.5 Mbit/s']));
    expect(strokesIn(drawing, INBOUND)[0]!.subpaths).toHaveLength(1);
    expect(strokesIn(drawing, OUTBOUND)[0]!.subpaths).toHaveLength(1);
  });

  it("shows '—' for a series whose latest value is missing, whatever came before", () => {
    const fake = fakeCanvas();
    drawStatsChart(fake.canvas, [point(1, 30, 700_000, 1_000_000), point(2, null, null, 900_000)]);
    const texts = replay(fake.calls).texts;
    expect(texts).toContainEqual({ text: '—', style: RTT });
    expect(texts).toContainEqual({ text: 'in —', style: INBOUND });
    expect(texts).toContainEqual({ text: 'out 900 kbit/s', style: OUTBOUND });
  });

  it('takes colours and the font family from a partial theme', () => {
    const fake = fakeCanvas();
    drawStatsChart(fake.canvas, [point(1, 10, 1, 1), point(2, 20, 2, 2)], { rtt: 'hotpink', font: 'Inter' });
    const drawing = replay(fake.calls);
    expect(strokesIn(drawing, 'hotpink')).toHaveLength(1);
    expect(strokesIn(drawing, RTT)).toEqual([]);
    expect(strokesIn(drawing, INBOUND)).toHaveLength(1);
    const fonts = fake.calls.filter((call) => call.name === 'font=').map((call) => String(call.args[0]));
    expect(fonts.length).toBeGreaterThan(0);
    expect(fonts.every((font) => font.endsWith('px Inter'))).toBe(true);
    expect(fake.calls).toContainEqual({ name: 'fillStyle=', args: [DEFAULT_CHART_THEME.background] });
  });
});
