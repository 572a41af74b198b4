import type { StatsSample } from '@parley/browser';

// The call panel's live chart of round-trip time and bitrate, fed by stats$ at 1 Hz. The pure
// parts (the history window, the axis, the number formats and the mapping of values to pixels)
// carry the logic; drawStatsChart only lays out two panels and strokes what they return.

/** The numbers of one StatsSample that the chart plots; null where the sample has none. */
export interface ChartPoint {
  readonly timestamp: number;
  readonly rttMs: number | null;
  readonly inBps: number | null;
  readonly outBps: number | null;
}

/** Points the chart holds and spreads over its width by default: one minute at stats$'s 1 Hz. */
export const DEFAULT_HISTORY_CAPACITY = 60;

function finiteOrNull(value: number | null): number | null {
  return value !== null && Number.isFinite(value) ? value : null;
}

/** A fixed-size window of the latest points (default 60 = one minute at 1 Hz). */
export class StatsHistory {
  private readonly window: ChartPoint[] = [];

  constructor(readonly capacity: number = DEFAULT_HISTORY_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`StatsHistory capacity must be a positive integer, got ${capacity}`);
    }
  }

  push(sample: StatsSample): void {
    this.window.push({
      timestamp: sample.timestamp,
      rttMs: finiteOrNull(sample.roundTripTimeMs),
      inBps: finiteOrNull(sample.bitrateInBps),
      outBps: finiteOrNull(sample.bitrateOutBps),
    });
    if (this.window.length > this.capacity) this.window.shift();
  }

  clear(): void {
    this.window.length = 0;
  }

  /** Oldest first; a copy, so later pushes do not change what a caller holds. */
  points(): readonly ChartPoint[] {
    return this.window.slice();
  }

  latest(): ChartPoint | undefined {
    return this.window.at(-1);
  }
}

/** Gridline intervals niceAxis aims for: five lines counting the zero line. */
export const DEFAULT_TICK_COUNT = 4;

/** Step multipliers per power of ten; 10 closes the list so a step always exists. */
const NICE_MULTIPLIERS = [1, 2, 2.5, 5, 10] as const;

/** Rounds off binary float noise (3 × 0.1 = 0.30000000000000004) so ticks print and compare cleanly. */
function withoutFloatNoise(value: number): number {
  return Number(value.toPrecision(12));
}

/** The smallest 1, 2, 2.5 or 5 × 10^n that is >= value (value > 0). */
function niceStepAtLeast(value: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  // The tolerance keeps a value that is already nice, give or take float noise, as it is.
  const multiplier = NICE_MULTIPLIERS.find((candidate) => candidate * magnitude >= value * (1 - 1e-9)) ?? 10;
  return withoutFloatNoise(multiplier * magnitude);
}

/**
 * An axis from 0 whose ticks are multiples of a nice step (1, 2, 2.5 or 5 × 10^n), with at most
 * `tickCount` intervals, and whose maximum is the first tick >= `maxValue`: niceAxis(37) is
 * { max: 40, ticks: [0, 10, 20, 30, 40] }. A maximum that is not positive and finite (an empty or
 * all-zero series) gives the axis of 1: { max: 1, ticks: [0, 0.25, 0.5, 0.75, 1] }.
 */
export function niceAxis(maxValue: number, tickCount: number = DEFAULT_TICK_COUNT): { readonly max: number; readonly ticks: readonly number[] } {
  if (!Number.isInteger(tickCount) || tickCount < 1) {
    throw new RangeError(`niceAxis tickCount must be a positive integer, got ${tickCount}`);
  }
  const value = Number.isFinite(maxValue) && maxValue > 0 ? maxValue : 1;
  const step = niceStepAtLeast(value / tickCount);
  const intervals = Math.max(1, Math.ceil(value / step - 1e-9));
  const ticks = Array.from({ length: intervals + 1 }, (_, index) => withoutFloatNoise(index * step));
  return { max: withoutFloatNoise(intervals * step), ticks };
}

/** About three significant digits: one decimal below 10, whole numbers from 10 ("0.4", "12"). */
function formatMagnitude(value: number): string {
  if (value === 0) return '0';
  const oneDecimal = value.toFixed(1);
  return Math.abs(Number(oneDecimal)) < 10 ? oneDecimal : Math.round(value).toString();
}

const BITRATE_UNITS = ['bit/s', 'kbit/s', 'Mbit/s', 'Gbit/s'] as const;

/** '—' for null, '0 bit/s', '640 bit/s', '812 kbit/s', '1.4 Mbit/s' (SI prefixes: 1 kbit = 1000 bit). */
export function formatBitrate(bps: number | null): string {
  if (bps === null || !Number.isFinite(bps)) return '—';
  let scaled = bps;
  let unit = 0;
  // Compare the rounded value so 999.96 kbit/s reads 1.0 Mbit/s, not 1000 kbit/s.
  while (unit < BITRATE_UNITS.length - 1 && Math.abs(Math.round(scaled)) >= 1000) {
    scaled /= 1000;
    unit += 1;
  }
  const number = unit === 0 ? Math.round(scaled).toString() : formatMagnitude(scaled);
  return `${number} ${BITRATE_UNITS[unit]}`;
}

/** '—' for null, '0.4 ms', '12 ms'. */
export function formatRtt(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '—';
  return `${formatMagnitude(ms)} ms`;
}

/** A pixel position, x to the right and y down from the plot area's top-left corner. */
export type PixelPoint = readonly [x: number, y: number];

/**
 * Maps a series to pixels in a `width` × `height` plot whose y axis runs from 0 (bottom) to `max`
 * (top). The values take the last of `slots` evenly spaced x positions, the latest at the right
 * edge, so a window that is not full yet grows in from the right instead of stretching. A null
 * (or non-finite) value is a gap: the result has one polyline per run of values between gaps.
 * Values outside 0..max are clamped to the plot's edges.
 */
export function toPolyline(values: readonly (number | null)[], width: number, height: number, max: number, slots: number = values.length): PixelPoint[][] {
  if (!(max > 0) || !Number.isFinite(max)) throw new RangeError(`toPolyline max must be positive and finite, got ${max}`);
  if (slots < values.length) throw new RangeError(`toPolyline needs at least as many slots (${slots}) as values (${values.length})`);
  const firstSlot = slots - values.length;
  const xOf = (index: number): number => (slots <= 1 ? width : ((firstSlot + index) / (slots - 1)) * width);
  const yOf = (value: number): number => height - Math.min(1, Math.max(0, value / max)) * height;

  const polylines: PixelPoint[][] = [];
  let current: PixelPoint[] | null = null;
  for (const [index, value] of values.entries()) {
    if (value === null || !Number.isFinite(value)) {
      current = null;
      continue;
    }
    if (current === null) {
      current = [];
      polylines.push(current);
    }
    current.push([xOf(index), yOf(value)]);
  }
  return polylines;
}

export interface ChartTheme {
  /** Fills the whole canvas. */
  readonly background: string;
  readonly grid: string;
  readonly text: string;
  readonly rtt: string;
  readonly inbound: string;
  readonly outbound: string;
  /** A CSS font-family list; the chart picks the sizes and weights. */
  readonly font: string;
}

/** The page's dark palette: the chart sits on a panel, in its accent and series colours. */
export const DEFAULT_CHART_THEME: ChartTheme = {
  background: '#151b23',
  grid: '#2a3441',
  text: '#e6edf3',
  rtt: '#2dd4bf',
  inbound: '#60a5fa',
  outbound: '#fbbf24',
  font: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
};

export const WAITING_FOR_STATS = 'waiting for stats…';

/** Layout in CSS pixels. */
const PADDING = 8;
const PANEL_GAP = 12;
const HEADER_HEIGHT = 20;
const TITLE_FONT_PX = 12;
const LABEL_FONT_PX = 10;
const LINE_WIDTH = 1.5;
/** Radius of the dot that shows a value with gaps on both sides (a line needs two points). */
const LONE_POINT_RADIUS = 1.5;
const SWATCH_SIZE = 8;
const LEGEND_GAP = 12;
/** Muted text (tick labels, the waiting note), as opacity of the theme's text colour. */
const MUTED_ALPHA = 0.6;

/** Lowest axis maxima, so a quiet call (loopback RTT under 1 ms, an idle link) is not magnified into noise. */
const RTT_AXIS_FLOOR_MS = 10;
const BITRATE_AXIS_FLOOR_BPS = 10_000;

interface Rect {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

interface Series {
  readonly values: readonly (number | null)[];
  readonly color: string;
  /** The legend, which is also the latest value. */
  readonly legend: string;
}

interface Panel {
  readonly title: string;
  readonly series: readonly Series[];
  readonly axisFloor: number;
  readonly formatTick: (value: number) => string;
}

function largestValue(series: readonly Series[]): number {
  let largest = 0;
  for (const { values } of series) {
    for (const value of values) if (value !== null && Number.isFinite(value)) largest = Math.max(largest, value);
  }
  return largest;
}

/** The header: the title on the left, each series' swatch and legend on the right. */
function drawHeader(context: CanvasRenderingContext2D, theme: ChartTheme, area: Rect, panel: Panel): void {
  const middle = area.y + HEADER_HEIGHT / 2;
  context.textBaseline = 'middle';
  context.font = `600 ${TITLE_FONT_PX}px ${theme.font}`;
  context.textAlign = 'left';
  context.fillStyle = theme.text;
  context.fillText(panel.title, area.x, middle);

  context.font = `${TITLE_FONT_PX}px ${theme.font}`;
  context.textAlign = 'right';
  let right = area.x + area.width;
  for (const series of [...panel.series].reverse()) {
    const textWidth = context.measureText(series.legend).width;
    context.fillStyle = series.color;
    context.fillText(series.legend, right, middle);
    context.fillRect(right - textWidth - SWATCH_SIZE - 4, middle - SWATCH_SIZE / 2, SWATCH_SIZE, SWATCH_SIZE);
    right -= textWidth + SWATCH_SIZE + 4 + LEGEND_GAP;
  }
}

/** Horizontal gridlines at the ticks, each labelled just below its line (0 needs no label). */
function drawGrid(context: CanvasRenderingContext2D, theme: ChartTheme, plot: Rect, axis: ReturnType<typeof niceAxis>, formatTick: (value: number) => string): void {
  // Half-pixel offsets put 1px lines on whole device pixels instead of blurring them over two.
  const yOf = (tick: number): number => Math.round(plot.y + plot.height - (tick / axis.max) * plot.height) + 0.5;
  context.strokeStyle = theme.grid;
  context.lineWidth = 1;
  context.beginPath();
  for (const tick of axis.ticks) {
    context.moveTo(plot.x, yOf(tick));
    context.lineTo(plot.x + plot.width, yOf(tick));
  }
  context.stroke();

  context.globalAlpha = MUTED_ALPHA;
  context.fillStyle = theme.text;
  context.font = `${LABEL_FONT_PX}px ${theme.font}`;
  context.textAlign = 'left';
  context.textBaseline = 'top';
  for (const tick of axis.ticks) {
    if (tick !== 0) context.fillText(formatTick(tick), plot.x + 2, yOf(tick) + 2);
  }
  context.globalAlpha = 1;
}

/** One path per series (a moveTo per run between gaps), and a dot for a value alone between gaps. */
function drawSeries(context: CanvasRenderingContext2D, plot: Rect, max: number, slots: number, series: Series): void {
  const polylines = toPolyline(series.values, plot.width, plot.height, max, slots);
  context.strokeStyle = series.color;
  context.fillStyle = series.color;
  context.lineWidth = LINE_WIDTH;
  context.lineJoin = 'round';
  context.lineCap = 'round';
  context.beginPath();
  for (const polyline of polylines) {
    if (polyline.length < 2) continue;
    polyline.forEach(([x, y], index) => {
      if (index === 0) context.moveTo(plot.x + x, plot.y + y);
      else context.lineTo(plot.x + x, plot.y + y);
    });
  }
  context.stroke();
  for (const polyline of polylines) {
    const [lone] = polyline;
    if (polyline.length !== 1 || lone === undefined) continue;
    context.beginPath();
    context.arc(plot.x + lone[0], plot.y + lone[1], LONE_POINT_RADIUS, 0, 2 * Math.PI);
    context.fill();
  }
}

function drawPanel(context: CanvasRenderingContext2D, theme: ChartTheme, area: Rect, panel: Panel, slots: number, empty: boolean): void {
  drawHeader(context, theme, area, panel);
  const plot: Rect = { x: area.x, y: area.y + HEADER_HEIGHT, width: area.width, height: Math.max(0, area.height - HEADER_HEIGHT) };
  const axis = niceAxis(Math.max(largestValue(panel.series), panel.axisFloor));
  drawGrid(context, theme, plot, axis, panel.formatTick);
  if (empty) {
    context.globalAlpha = MUTED_ALPHA;
    context.fillStyle = theme.text;
    context.font = `${TITLE_FONT_PX}px ${theme.font}`;
    context.textAlign = 'center';
    context.textBaseline = 'middle';
    context.fillText(WAITING_FOR_STATS, plot.x + plot.width / 2, plot.y + plot.height / 2);
    context.globalAlpha = 1;
    return;
  }
  for (const series of panel.series) drawSeries(context, plot, axis.max, slots, series);
}

/**
 * Draws two stacked panels on the canvas: RTT (ms) on top, bitrate in and out below (two lines,
 * legend), each with its nice axis, gridlines and the latest value as text. Handles
 * devicePixelRatio (sizes the backing store from the canvas's CSS size), nulls as gaps in the
 * line, an empty history (draws axes and "waiting for stats…"). The points are spread over at
 * least DEFAULT_HISTORY_CAPACITY slots, latest at the right. A canvas without a layout size
 * (not in the document, or hidden) is left alone.
 */
export function drawStatsChart(canvas: HTMLCanvasElement, points: readonly ChartPoint[], theme: Partial<ChartTheme> = {}): void {
  const colors: ChartTheme = { ...DEFAULT_CHART_THEME, ...theme };
  const cssWidth = canvas.clientWidth;
  const cssHeight = canvas.clientHeight;
  if (cssWidth <= 0 || cssHeight <= 0) return;
  const context = canvas.getContext('2d');
  if (context === null) return;

  // `||`, not `??`: a ratio of 0 would size the backing store to nothing, so it counts as missing.
  const ratio = canvas.ownerDocument.defaultView?.devicePixelRatio || 1;
  const backingWidth = Math.round(cssWidth * ratio);
  const backingHeight = Math.round(cssHeight * ratio);
  // Assigning width or height clears the canvas and resets the context even to the same value,
  // so only on a resize; the transform is set every time, which also undoes a reset.
  if (canvas.width !== backingWidth) canvas.width = backingWidth;
  if (canvas.height !== backingHeight) canvas.height = backingHeight;
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.fillStyle = colors.background;
  context.fillRect(0, 0, cssWidth, cssHeight);

  const latest = points.at(-1);
  const slots = Math.max(points.length, DEFAULT_HISTORY_CAPACITY);
  const empty = points.length === 0;
  const panelHeight = Math.max(0, (cssHeight - 2 * PADDING - PANEL_GAP) / 2);
  const width = Math.max(0, cssWidth - 2 * PADDING);

  const rtt: Panel = {
    title: 'Round-trip time',
    series: [{ values: points.map((point) => point.rttMs), color: colors.rtt, legend: formatRtt(latest?.rttMs ?? null) }],
    axisFloor: RTT_AXIS_FLOOR_MS,
    formatTick: formatRtt,
  };
  const bitrate: Panel = {
    title: 'Bitrate',
    series: [
      { values: points.map((point) => point.inBps), color: colors.inbound, legend: `in ${formatBitrate(latest?.inBps ?? null)}` },
      { values: points.map((point) => point.outBps), color: colors.outbound, legend: `out ${formatBitrate(latest?.outBps ?? null)}` },
    ],
    axisFloor: BITRATE_AXIS_FLOOR_BPS,
    formatTick: formatBitrate,
  };
  drawPanel(context, colors, { x: PADDING, y: PADDING, width, height: panelHeight }, rtt, slots, empty);
  drawPanel(context, colors, { x: PADDING, y: PADDING + panelHeight + PANEL_GAP, width, height: panelHeight }, bitrate, slots, empty);
}
