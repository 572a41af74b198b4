import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../chromium.js';
import { startPageServer } from '../page-server.js';
import { alternate, round } from '../stats.js';
import type { BenchOptions, BenchResult, Benchmark, GoalRatio } from '../types.js';
import { medianMarks, medianRatio, summarizeCalls } from './measure.js';
import type { CallDurations, DurationKey } from './measure.js';
import type { FirefoxPairResult } from './firefox-pair.js';
import { SETTLE_MS, runCall } from './trial.js';
import type { CallSubjectPage } from './trial.js';

// Issue 6, "call set-up": two headless Chromium pages call each other through a real
// parley-signaling on loopback, (a) hand-written seed-guide code, (b) Parley, (c) simple-peer,
// plus experiments as extra rows. Every subject: the same fake camera and microphone opened
// before "call", `iceServers: []`, loopback candidates only, one data channel opened by the
// caller, the callee accepting automatically. Subjects alternate call by call.
//
// Experiment "media at call" (not a goal): the camera and microphone are opened by each subject
// when it calls or is called, the way it naturally would: raw and simple-peer await getUserMedia
// and then make the connection with the tracks; Parley's createRtc starts the transport at once
// (sendrecv transceivers) and attaches the tracks with replaceTrack when they open.
//
// Experiment "prepared line" (not a goal): Parley's caller prepares its line when its page is
// ready (`Call.prepare()`), so its connection, offer and candidates are made before "call".

export type CallSubject = 'raw' | 'parley' | 'simplePeer' | 'parleyPrepared' | 'rawMediaAtCall' | 'parleyMediaAtCall' | 'simplePeerMediaAtCall';

interface SubjectInfo {
  readonly label: string;
  readonly page: CallSubjectPage;
  /** An experiment (not part of the goals). */
  readonly experiment: boolean;
  /** The raw subject with the same media timing: the table's and JSON's `overRaw`. */
  readonly raw: CallSubject;
}

export const SUBJECTS: Readonly<Record<CallSubject, SubjectInfo>> = {
  raw: { label: 'raw (seed guides)', page: { page: 'raw' }, experiment: false, raw: 'raw' },
  parley: { label: 'Parley', page: { page: 'parley' }, experiment: false, raw: 'raw' },
  simplePeer: { label: 'simple-peer 9.11', page: { page: 'simple-peer' }, experiment: false, raw: 'raw' },
  parleyPrepared: { label: 'Parley, line prepared before "call" (experiment)', page: { page: 'parley', line: 'prepared' }, experiment: true, raw: 'raw' },
  rawMediaAtCall: { label: 'raw, media at call (experiment)', page: { page: 'raw', media: 'at-call' }, experiment: true, raw: 'rawMediaAtCall' },
  parleyMediaAtCall: { label: 'Parley, media at call, early transport (experiment)', page: { page: 'parley', media: 'at-call' }, experiment: true, raw: 'rawMediaAtCall' },
  simplePeerMediaAtCall: { label: 'simple-peer, media at call (experiment)', page: { page: 'simple-peer', media: 'at-call' }, experiment: true, raw: 'rawMediaAtCall' },
};

const GOAL_SUBJECTS: readonly CallSubject[] = ['raw', 'parley', 'simplePeer'];
const MEDIA_AT_CALL_SUBJECTS: readonly CallSubject[] = ['rawMediaAtCall', 'parleyMediaAtCall', 'simplePeerMediaAtCall'];

export interface CallSetupSettings {
  /** Counted calls per subject. */
  readonly calls: number;
  /** Rounds of one call per subject before counting (not counted). */
  readonly warmupRounds: number;
  readonly subjects: readonly CallSubject[];
  /** Counted Chromium <-> Firefox calls per subject (raw, Parley); 0: not measured (quick mode). */
  readonly firefoxCalls: number;
}

export function settingsFor(quick: boolean): CallSetupSettings {
  return {
    calls: quick ? 8 : 30,
    warmupRounds: 1,
    subjects: [...GOAL_SUBJECTS, 'parleyPrepared', ...MEDIA_AT_CALL_SUBJECTS],
    firefoxCalls: quick ? 0 : 20,
  };
}

const ms = (value: number): string => String(round(value));

/** Issue 14: Parley's call set-up no slower than the hand-written seed-guide code... */
export const PARLEY_OVER_RAW_GOAL = 1.0;
/** ...and, as a stretch, 10% faster. */
export const PARLEY_OVER_RAW_STRETCH = 0.9;
/** Issue 14: 5% faster than simple-peer. */
export const PARLEY_OVER_SIMPLE_PEER_GOAL = 0.95;

/** One subject's row of the table (its columns in report()'s order). */
function tableRow(label: string, calls: number, sum: ReturnType<typeof summarizeCalls>, overRaw: number): string[] {
  return [
    label,
    String(calls),
    ms(sum.connected.median),
    ms(sum.connected.p90),
    ms(sum.callerConnected.median),
    ms(sum.calleeConnected.median),
    ms(sum.firstFrame.median),
    ms(sum.firstFrame.p90),
    String(overRaw),
  ];
}

export async function runCallSetup(options: BenchOptions, settings: CallSetupSettings): Promise<BenchResult> {
  const browser = await launchChromium();
  try {
    const server = await startPageServer();
    try {
      let trial = 0;
      const call = async (subject: CallSubject): Promise<CallDurations> =>
        runCall({ browser, origin: server.origin, signalingUrl: server.signalingUrl, subject: SUBJECTS[subject].page, room: `call-${trial++}` });

      options.log(`${settings.warmupRounds} warm-up round(s), then ${settings.calls} calls per subject (${settings.subjects.join(', ')})`);
      for (let r = 0; r < settings.warmupRounds; r++) for (const subject of settings.subjects) await call(subject);

      const calls = Object.fromEntries(settings.subjects.map((s) => [s, [] as CallDurations[]])) as Record<CallSubject, CallDurations[]>;
      await alternate(settings.subjects, settings.calls, async (subject, round) => {
        const result = await call(subject);
        calls[subject].push(result);
        if (subject === settings.subjects[0] && (round + 1) % 5 === 0) options.log(`round ${round + 1}/${settings.calls}`);
        return result.connected;
      });
      const result = report(settings, calls);
      return settings.firefoxCalls === 0 ? result : withFirefoxPair(result, await measureFirefoxPair(options, settings.firefoxCalls));
    } finally {
      await server.close();
    }
  } finally {
    await browser.close();
  }
}

const HERE = dirname(fileURLToPath(import.meta.url));
/** scripts/in-namespace.mjs, from dist/call-setup (or src/call-setup). */
const IN_NAMESPACE = join(HERE, '..', '..', '..', '..', 'scripts', 'in-namespace.mjs');
const FIREFOX_PAIR = join(HERE, 'firefox-pair.js');

/**
 * The Chromium <-> Firefox calls (firefox-pair.ts), run inside a network namespace of their own
 * (Firefox needs a veth address there); resolves with their result, or with why they could not run.
 */
export function measureFirefoxPair(options: BenchOptions, calls: number): Promise<FirefoxPairResult | { readonly problem: string }> {
  options.log(`Chromium <-> Firefox: ${calls} calls per subject in a network namespace of their own`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [IN_NAMESPACE, process.execPath, FIREFOX_PAIR, String(calls)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      for (const line of chunk.toString().split('\n').filter(Boolean)) options.log(line);
    });
    child.on('error', (error) => resolve({ problem: `could not start ${FIREFOX_PAIR}: ${error.message}` }));
    child.on('close', (code) => {
      if (code !== 0) {
        resolve({ problem: `the Chromium <-> Firefox calls exited with ${String(code)}: ${stderr.trim().split('\n').slice(-3).join(' / ')}` });
        return;
      }
      try {
        resolve(JSON.parse(stdout) as FirefoxPairResult);
      } catch (error) {
        resolve({ problem: `unreadable result of the Chromium <-> Firefox calls: ${String(error)}` });
      }
    });
  });
}

/** `result` with the Chromium <-> Firefox pair: key `firefoxParleyOverRaw` (goal <= 1.0), two table rows and a note. */
export function withFirefoxPair(result: BenchResult, pair: FirefoxPairResult | { readonly problem: string }): BenchResult {
  if ('problem' in pair) {
    return {
      ...result,
      json: { ...result.json, firefoxParleyOverRaw: null, firefox: { measured: false, problem: pair.problem } },
      notes: [...result.notes, `Chromium <-> Firefox (callSetup.firefoxParleyOverRaw) not measured: ${pair.problem}`],
    };
  }
  const ratio = medianRatio(pair.calls.parley, pair.calls.raw);
  const summaries = { raw: summarizeCalls(pair.calls.raw), parley: summarizeCalls(pair.calls.parley) };
  const row = (subject: 'raw' | 'parley', label: string): string[] =>
    tableRow(label, pair.calls[subject].length, summaries[subject], medianRatio(pair.calls[subject], pair.calls.raw));
  return {
    ...result,
    title: `${result.title}; the last two rows Chromium <-> Firefox in a network namespace (${pair.calls.raw.length} calls per subject)`,
    json: {
      ...result.json,
      firefoxParleyOverRaw: ratio,
      firefox: {
        label: `${pair.chromium} <-> ${pair.firefox}, each direction in turn, candidates of the bench namespace's veth address only`,
        browsers: { chromium: pair.chromium, firefox: pair.firefox },
        parleyOverRawFirstFrame: medianRatio(pair.calls.parley, pair.calls.raw, 'firstFrame'),
        subjects: { raw: { calls: pair.calls.raw.length, ...summaries.raw }, parley: { calls: pair.calls.parley.length, ...summaries.parley } },
      },
    },
    table: { ...result.table, rows: [...result.table.rows, row('raw', 'raw, Chromium <-> Firefox'), row('parley', 'Parley, Chromium <-> Firefox')] },
    goals: [
      ...result.goals,
      { key: 'callSetup.firefoxParleyOverRaw', label: 'call set-up Chromium <-> Firefox, Parley / raw (median)', value: ratio, goal: 1.0, kind: 'at-most' },
    ],
    notes: [
      ...result.notes,
      `Chromium <-> Firefox (${pair.firefox}): the same raw and Parley pages, one side in each browser, the direction alternating call by call, inside a network namespace of the bench's own (Firefox gathers no 127.0.0.1; both sides signal the namespace's veth address only).`,
    ],
  };
}

export function report(settings: CallSetupSettings, calls: Record<CallSubject, CallDurations[]>): BenchResult {
  const has = (subject: CallSubject): boolean => settings.subjects.includes(subject) && calls[subject].length > 0;
  const summaries = Object.fromEntries(settings.subjects.map((s) => [s, summarizeCalls(calls[s])]));
  const parleyOverRaw = medianRatio(calls.parley, calls.raw);
  const parleyOverSimplePeer = medianRatio(calls.parley, calls.simplePeer);
  const experiments = {
    preparedLine: has('parleyPrepared')
      ? {
          label: "the caller's line prepared when its page is ready (Call.prepare()): connection, offer and candidates made before \"call\"",
          parleyOverRaw: medianRatio(calls.parleyPrepared, calls.raw),
          parleyOverSimplePeer: medianRatio(calls.parleyPrepared, calls.simplePeer),
          overUnprepared: medianRatio(calls.parleyPrepared, calls.parley),
        }
      : { measured: false },
    mediaAtCall: MEDIA_AT_CALL_SUBJECTS.every(has)
      ? {
          label: 'media opened at "call" (callee: when called); Parley starts its transport before the media is open',
          parleyOverRaw: medianRatio(calls.parleyMediaAtCall, calls.rawMediaAtCall),
          parleyOverSimplePeer: medianRatio(calls.parleyMediaAtCall, calls.simplePeerMediaAtCall),
          parleyOverRawFirstFrame: medianRatio(calls.parleyMediaAtCall, calls.rawMediaAtCall, 'firstFrame'),
          parleyOverSimplePeerFirstFrame: medianRatio(calls.parleyMediaAtCall, calls.simplePeerMediaAtCall, 'firstFrame'),
          /** Each subject's media-at-call connected time over its media-before-call one. */
          overMediaBeforeCall: {
            raw: medianRatio(calls.rawMediaAtCall, calls.raw),
            parley: medianRatio(calls.parleyMediaAtCall, calls.parley),
            simplePeer: medianRatio(calls.simplePeerMediaAtCall, calls.simplePeer),
          },
        }
      : { measured: false },
  };
  const goals: GoalRatio[] = [
    {
      key: 'callSetup.parleyOverRaw',
      label: `call set-up to connected, Parley / raw (median; stretch ${String(PARLEY_OVER_RAW_STRETCH)})`,
      value: parleyOverRaw,
      goal: PARLEY_OVER_RAW_GOAL,
      kind: 'at-most',
    },
    {
      key: 'callSetup.parleyOverSimplePeer',
      label: 'call set-up to connected, Parley / simple-peer (median)',
      value: parleyOverSimplePeer,
      goal: PARLEY_OVER_SIMPLE_PEER_GOAL,
      kind: 'at-most',
    },
  ];
  const rows = settings.subjects.map((s) => tableRow(SUBJECTS[s].label, calls[s].length, summaries[s]!, medianRatio(calls[s], calls[SUBJECTS[s].raw])));
  return {
    name: 'callSetup',
    title: `Call set-up in headless Chromium through parley-signaling on loopback (${settings.calls} calls per subject, ms from "call")`,
    json: {
      parleyOverRaw,
      parleyOverSimplePeer,
      parleyOverRawFirstFrame: medianRatio(calls.parley, calls.raw, 'firstFrame'),
      parleyOverSimplePeerFirstFrame: medianRatio(calls.parley, calls.simplePeer, 'firstFrame'),
      definitions: {
        t0: "the caller page's call() (raw: new RTCPeerConnection + offer; Parley: call.call(); simple-peer: new SimplePeer({ initiator: true }); with media at call, getUserMedia first or alongside)",
        overRaw: 'connected over that of the raw subject with the same media timing (raw, or rawMediaAtCall for the media-at-call rows)',
        connected: 'the later of the two pages reaching RTCPeerConnection.connectionState "connected", in ms from t0 (the ratios use this)',
        callerConnected: "the caller page's connected, ms from t0",
        calleeConnected: "the callee page's connected, ms from t0",
        firstFrame: 'the later of the two pages presenting its first remote video frame (requestVideoFrameCallback), ms from t0',
      },
      callsPerSubject: settings.calls,
      warmupRounds: settings.warmupRounds,
      settleMs: SETTLE_MS,
      subjects: Object.fromEntries(
        settings.subjects.map((s) => [s, { label: SUBJECTS[s].label, calls: calls[s].length, ...summaries[s], overRaw: medianRatio(calls[s], calls[SUBJECTS[s].raw]) }]),
      ),
      experiments,
      profile: Object.fromEntries(settings.subjects.map((s) => [s, { caller: medianMarks(calls[s], 'caller'), callee: medianMarks(calls[s], 'callee') }])),
    },
    table: {
      columns: ['subject', 'calls', 'connected med', 'p90', 'caller med', 'callee med', 'first frame med', 'p90', 'conn / raw (same media)'],
      rows,
    },
    goals,
    notes: notes(settings, calls),
  };
}

function notes(settings: CallSetupSettings, calls: Record<CallSubject, CallDurations[]>): string[] {
  const lines = [
    '"connected" is the later of the two sides reaching connectionState connected, from the caller\'s "call"; "first frame" the later of the two sides presenting a remote video frame.',
    'Same work for all: fake camera+mic opened before the call (in the media-at-call rows, at the call), iceServers [] with loopback candidates only, one data channel from the caller, the callee accepting at once.',
    `The call starts ${String(SETTLE_MS)} ms after both pages are ready (loaded, in the room, camera and mic open): a person calls a page that is open. Until 2026-12-07 it started at once, a few ms after the camera opened, and measured the pages' start-up as much as the call: in interleaved runs the medians were then raw 120-127 ms, Parley 164, simple-peer about 140, each with 50-100 ms between its calls, against raw 67, Parley 80 and simple-peer 72, each within about 10 ms, after 1 s.`,
    "Every subject's page is built the same way, with V8's explicit compile hint at the top of each of its chunks (@parley/browser/compile-hints, which the demo uses for Parley's chunks): a page runs most of its code for the first time during its first call, and without the hint V8 compiles it there, on the main thread (about 25 ms of each Parley page's main thread per call in CPU profiles, a few ms for the raw pages).",
    "Parley sends its invite and right after it the offer (made at call(), without waiting for the engine's negotiationneeded) and candidates while the call rings; the callee holds them and answers on accept, so accepting adds no signaling round trip.",
  ];
  const parleyOverRaw = medianRatio(calls.parley, calls.raw);
  const parleyOverSimplePeer = medianRatio(calls.parley, calls.simplePeer);
  if (parleyOverRaw > PARLEY_OVER_RAW_GOAL || parleyOverSimplePeer > PARLEY_OVER_SIMPLE_PEER_GOAL) {
    lines.push(whereParleyLoses(calls, parleyOverRaw, parleyOverSimplePeer));
  } else if (parleyOverRaw > PARLEY_OVER_RAW_STRETCH) {
    lines.push(`Goals met; the stretch goal Parley / raw <= ${String(PARLEY_OVER_RAW_STRETCH)} is not (${String(parleyOverRaw)}).`);
  }
  if (settings.subjects.includes('parleyPrepared') && calls.parleyPrepared.length > 0) {
    lines.push(preparedLineNote(calls));
  }
  if (MEDIA_AT_CALL_SUBJECTS.every((s) => settings.subjects.includes(s) && calls[s].length > 0)) {
    const r = (numerator: CallSubject, denominator: CallSubject, key: DurationKey): string => String(medianRatio(calls[numerator], calls[denominator], key));
    lines.push(
      'Experiment "media at call" (camera and mic opened at "call" and on being called; raw and simple-peer await getUserMedia and then connect, ' +
        'Parley starts its transport at once and attaches the tracks with replaceTrack when they open): ' +
        `Parley / raw ${r('parleyMediaAtCall', 'rawMediaAtCall', 'connected')} to connected and ${r('parleyMediaAtCall', 'rawMediaAtCall', 'firstFrame')} to first frame, ` +
        `Parley / simple-peer ${r('parleyMediaAtCall', 'simplePeerMediaAtCall', 'connected')} and ${r('parleyMediaAtCall', 'simplePeerMediaAtCall', 'firstFrame')}.`,
    );
  }
  return lines;
}

/** The prepared-line experiment: its ratios, where its time goes and what a hand-written caller could do alike. */
export function preparedLineNote(calls: Record<CallSubject, CallDurations[]>): string {
  const mark = (side: 'caller' | 'callee', name: string): string => String(medianMarks(calls.parleyPrepared, side)[name] ?? '?');
  return (
    `Experiment "prepared line" (Call.prepare() when the caller's page is ready; createRtc, the offer and the gathering run before "call", which sends the invite with the offer and candidates right behind it): ` +
    `Parley / raw ${String(medianRatio(calls.parleyPrepared, calls.raw))}, Parley / simple-peer ${String(medianRatio(calls.parleyPrepared, calls.simplePeer))}, ` +
    `prepared / unprepared Parley ${String(medianRatio(calls.parleyPrepared, calls.parley))}. ` +
    `Its offer left at ${mark('caller', 'sent-offer')} ms and reached the callee's machines at ${mark('callee', 'got-offer')}: ` +
    "the callee's page runs the invite, the accept, its connection's creation and its peer's start in one task (the first RTCPeerConnection of a page takes about 4 ms to construct), and the offer waits behind it. " +
    'A hand-written caller can prepare the same way; in an experiment outside the pages (raw code with its connection, offer and candidates made 1 s before "call") it connected in 58 ms against 68 for the unprepared raw code.'
  );
}

/**
 * The steps at which Parley falls behind (medians, ms from "call"), for a missed goal, and what
 * limits it. The limit is from CPU profiles of both pages (CDP Profiler through playwright's
 * CDPSession, 100 µs sampling, samples capped at 1 ms so that time the renderer was not
 * scheduled is not counted as JavaScript).
 */
export function whereParleyLoses(calls: Record<CallSubject, CallDurations[]>, parleyOverRaw: number, parleyOverSimplePeer: number): string {
  const step = (subject: CallSubject, side: 'caller' | 'callee', mark: string): string => {
    const value = medianMarks(calls[subject], side)[mark];
    return value === undefined ? '?' : String(value);
  };
  const all = (side: 'caller' | 'callee', mark: string): string =>
    `${step('parley', side, mark)} vs ${step('raw', side, mark)} vs ${step('simplePeer', side, mark)}`;
  return (
    `Goal missed (Parley / raw ${String(parleyOverRaw)}, Parley / simple-peer ${String(parleyOverSimplePeer)}). ` +
    'Steps (medians, ms from "call", Parley vs raw vs simple-peer): ' +
    `caller's offer set ${all('caller', 'signaling-have-local-offer')}, ` +
    `callee has the offer ${all('callee', 'signaling-have-remote-offer')} (Parley's offer left at ${step('parley', 'caller', 'sent-offer')} and arrived at ${step('parley', 'callee', 'got-offer')}), ` +
    `callee's answer set ${all('callee', 'signaling-stable')}, caller has the answer ${all('caller', 'signaling-stable')}, ` +
    `callee's ICE checking ${all('callee', 'ice-checking')}, caller's ICE checking ${all('caller', 'ice-checking')}, ` +
    `caller connected ${all('caller', 'connection-connected')}, callee connected ${all('callee', 'connection-connected')}. ` +
    'No wait of the machines is left between engine steps: the caller offers at call() (offerOnStart), every description and candidate is sent in the same task as the engine step that made it, ' +
    "a remote candidate goes to the engine as it arrives (the callee's while it makes its answer; the engine chains it, webrtc-pc §4.4.1.2), and the only hops between engine calls are the microtasks of promise settlement. " +
    "What limits Parley, from CPU profiles and Chrome traces of both pages (built with the compile hint, called 1 s after ready) and timestamps of each RTCPeerConnection call and WebSocket frame, 2026-12-07: " +
    "its JavaScript on the critical path, most of it running for the first time in the page. " +
    "The caller: its call() is one task of about 17 ms against raw's 8, createOffer called in it at 12 ms against 7: the same engine calls (new RTCPeerConnection, two addTrack, createDataChannel, about 7 ms in both), " +
    "plus the call machine and the invite before the connection is made (about 1.5 ms) and the peer actor's creation and start, with its data channel's actor, before createOffer (about 3 ms). " +
    "The callee makes its connection on accept, while the offer is on its way, so it has the offer soon after raw's callee (which makes its connection when the offer arrives); " +
    "from setLocalDescription(answer) resolving to the answer leaving it takes about 2 ms (raw 0.1 ms): the peer machine's steps, the candidate filter on the SDP and the signaling client's machine. " +
    "From the answer's arrival at the caller to connected both take about 30 ms. " +
    "Experiment (not in the pages): 100 negotiations between in-memory peers at page load before the call made Parley's median 84 ms against 91 (raw 73) in one run of 10 calls each: much of the gap is code that V8 has not yet compiled beyond its interpreter when the first call runs. " +
    "Not done: such a warm-up costs every page load the CPU of those negotiations for a few ms on its first call. " +
    "Preparing the caller's connection and offer before call() is Call.prepare(), opt-in because it holds a connection (and a TURN allocation) per prepared line: the prepared-line experiment, not the goal's subject."
  );
}

export const benchmark: Benchmark = {
  name: 'callSetup',
  run: (options) => runCallSetup(options, settingsFor(options.quick)),
};
