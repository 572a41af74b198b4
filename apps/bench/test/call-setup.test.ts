import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { describeWhenInstalled } from '../../../packages/core/test/helpers/describe-when-installed.js';
import { chromiumProblem, launchChromium } from '../src/chromium.js';
import { SUBJECTS, report, settingsFor, withFirefoxPair } from '../src/call-setup/index.js';
import type { CallSubject } from '../src/call-setup/index.js';
import { callDurations, medianMarks, medianRatio, summarizeCalls } from '../src/call-setup/measure.js';
import type { CallDurations, SideTimes } from '../src/call-setup/measure.js';
import { runCall } from '../src/call-setup/trial.js';
import { startPageServer } from '../src/page-server.js';
import type { PageServer } from '../src/page-server.js';

const BUILT_PAGES = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'pages');

function side(role: 'caller' | 'callee', call: number | null, connected: number, firstFrame: number, marks: Record<string, number> = {}): SideTimes {
  return { role, call, connected, firstFrame, marks };
}

/** A call whose caller called at 1000 and whose sides connected and showed video at these offsets. */
function fakeCall(callerConnected: number, calleeConnected: number, frame = 100): CallDurations {
  return callDurations(
    side('caller', 1000, 1000 + callerConnected, 1000 + frame, { 'pc-created': 1002 }),
    side('callee', null, 1000 + calleeConnected, 1000 + frame + 5, { 'pc-created': 1010 }),
  );
}

describe('call set-up measures', () => {
  it('times each side from the caller\'s call, and "both sides" as the later one', () => {
    const call = fakeCall(40, 55, 90);
    expect(call.callerConnected).toBe(40);
    expect(call.calleeConnected).toBe(55);
    expect(call.connected).toBe(55);
    expect(call.callerFirstFrame).toBe(90);
    expect(call.calleeFirstFrame).toBe(95);
    expect(call.firstFrame).toBe(95);
    expect(call.marks.caller['pc-created']).toBe(2);
    expect(call.marks.callee['pc-created']).toBe(10);
  });

  it('refuses reports that do not make one call', () => {
    expect(() => callDurations(side('callee', null, 1, 2), side('callee', null, 1, 2))).toThrow(/caller and a callee/);
    expect(() => callDurations(side('caller', null, 1, 2), side('callee', null, 1, 2))).toThrow(/no call time/);
  });

  it('summarizes medians and p90s, and ratios of medians', () => {
    const fast = [fakeCall(10, 20), fakeCall(10, 30), fakeCall(10, 40)];
    const slow = [fakeCall(10, 40), fakeCall(10, 60), fakeCall(10, 80)];
    expect(summarizeCalls(fast).connected).toEqual({ median: 30, p90: 40 });
    expect(medianRatio(slow, fast)).toBe(2);
    expect(medianMarks(fast, 'callee')).toEqual({ 'pc-created': 10 });
    expect(() => summarizeCalls([])).toThrow(RangeError);
  });

  it('reports both goals, one row per subject and the prepared-line and media-at-call experiments', () => {
    const settings = { ...settingsFor(true), subjects: Object.keys(SUBJECTS) as CallSubject[] };
    const calls: Record<CallSubject, CallDurations[]> = {
      raw: [fakeCall(10, 50)],
      parley: [fakeCall(10, 55)],
      simplePeer: [fakeCall(10, 60)],
      parleyPrepared: [fakeCall(10, 45)],
      rawMediaAtCall: [fakeCall(10, 100, 200)],
      parleyMediaAtCall: [fakeCall(10, 80, 150)],
      simplePeerMediaAtCall: [fakeCall(10, 120, 300)],
    };
    const result = report(settings, calls);
    expect(result.json['parleyOverRaw']).toBe(1.1);
    expect(result.json['parleyOverSimplePeer']).toBe(round3(55 / 60));
    expect(result.goals.map((g) => [g.key, g.goal, g.kind])).toEqual([
      ['callSetup.parleyOverRaw', 1, 'at-most'],
      ['callSetup.parleyOverSimplePeer', 0.95, 'at-most'],
    ]);
    expect(result.table.rows).toHaveLength(7);
    expect(result.table.rows.find((row) => row[0] === SUBJECTS.parleyPrepared.label)?.at(-1)).toBe('0.9');
    // The experiment rows compare with raw at the same media timing.
    expect(result.table.rows.find((row) => row[0] === SUBJECTS.parleyMediaAtCall.label)?.at(-1)).toBe('0.8');
    const experiments = result.json['experiments'] as Record<string, Record<string, unknown>>;
    expect(Object.keys(experiments)).toEqual(['preparedLine', 'mediaAtCall']);
    expect(experiments['preparedLine']).toMatchObject({ parleyOverRaw: 0.9, parleyOverSimplePeer: 0.75, overUnprepared: round3(45 / 55) });
    expect(result.notes.find((line) => line.startsWith('Experiment "prepared line"'))).toContain('Parley / raw 0.9, Parley / simple-peer 0.75');
    expect(experiments['mediaAtCall']).toMatchObject({
      parleyOverRaw: 0.8,
      parleyOverSimplePeer: round3(80 / 120),
      parleyOverRawFirstFrame: round3(155 / 205),
      parleyOverSimplePeerFirstFrame: round3(155 / 305),
    });
    const note = result.notes.find((line) => line.includes('media at call'));
    expect(note).toContain('Parley / raw 0.8 to connected');
    expect(result.notes.join(' ')).not.toMatch(/prewarm|invite\/accept round trip before the offer/i);
  });

  it('adds the Chromium <-> Firefox pair as its own goal and two rows, or says why it was not measured', () => {
    const settings = { ...settingsFor(true), subjects: ['raw', 'parley', 'simplePeer'] as CallSubject[] };
    const base = report(settings, { raw: [fakeCall(10, 50)], parley: [fakeCall(10, 55)], simplePeer: [fakeCall(10, 60)] } as Record<CallSubject, CallDurations[]>);
    const withPair = withFirefoxPair(base, {
      chromium: 'Chromium 156',
      firefox: 'Firefox 153',
      calls: { raw: [fakeCall(10, 100), fakeCall(10, 120), fakeCall(10, 140)], parley: [fakeCall(10, 90), fakeCall(10, 100), fakeCall(10, 110)] },
    });
    expect(withPair.json['firefoxParleyOverRaw']).toBe(round3(100 / 120));
    expect(withPair.goals.at(-1)).toMatchObject({ key: 'callSetup.firefoxParleyOverRaw', goal: 1, kind: 'at-most', value: round3(100 / 120) });
    expect(withPair.table.rows.slice(3).map((row) => row[0])).toEqual(['raw, Chromium <-> Firefox', 'Parley, Chromium <-> Firefox']);
    expect(withPair.goals).toHaveLength(base.goals.length + 1);

    const unmeasured = withFirefoxPair(base, { problem: 'no Firefox at /usr/bin/firefox-esr' });
    expect(unmeasured.json['firefox']).toEqual({ measured: false, problem: 'no Firefox at /usr/bin/firefox-esr' });
    expect(unmeasured.goals).toEqual(base.goals);
    expect(unmeasured.notes.at(-1)).toContain('not measured: no Firefox');
  });

  it('measures the Firefox pair in the full run only', () => {
    expect(settingsFor(false).firefoxCalls).toBeGreaterThanOrEqual(20);
    expect(settingsFor(true).firefoxCalls).toBe(0);
  });

  it('leaves the experiment unmeasured when its subjects are not run', () => {
    const settings = { ...settingsFor(true), subjects: ['raw', 'parley', 'simplePeer'] as CallSubject[] };
    const calls = { raw: [fakeCall(10, 50)], parley: [fakeCall(10, 55)], simplePeer: [fakeCall(10, 60)] } as Record<CallSubject, CallDurations[]>;
    const result = report(settings, calls);
    expect(result.json['experiments']).toEqual({ preparedLine: { measured: false }, mediaAtCall: { measured: false } });
    expect(result.table.rows).toHaveLength(3);
    expect(result.notes.some((line) => line.includes('media at call'))).toBe(false);
  });

  it('says at which steps Parley falls behind when a goal is missed, and only then', () => {
    const settings = { ...settingsFor(true), subjects: ['raw', 'parley', 'simplePeer'] as CallSubject[] };
    const withOffer = (connected: number, offerAt: number): CallDurations =>
      callDurations(
        side('caller', 1000, 1000 + connected, 1100, { 'signaling-have-local-offer': 1000 + offerAt }),
        side('callee', null, 1000 + connected, 1105),
      );
    const missed = report(settings, { raw: [withOffer(100, 20)], parley: [withOffer(150, 60)], simplePeer: [withOffer(120, 25)] } as Record<CallSubject, CallDurations[]>);
    const note = missed.notes.find((line) => line.startsWith('Goal missed'));
    expect(note).toContain('Parley / raw 1.5');
    expect(note).toContain("caller's offer set 60 vs 20 vs 25");
    // Slower than simple-peer by more than the goal allows, though faster than raw: still missed.
    const behindSimplePeer = report(settings, { raw: [withOffer(130, 20)], parley: [withOffer(120, 20)], simplePeer: [withOffer(120, 25)] } as Record<CallSubject, CallDurations[]>);
    expect(behindSimplePeer.notes.find((line) => line.startsWith('Goal missed'))).toContain('Parley / simple-peer 1');
    const met = report(settings, { raw: [withOffer(100, 20)], parley: [withOffer(95, 20)], simplePeer: [withOffer(120, 25)] } as Record<CallSubject, CallDurations[]>);
    expect(met.notes.some((line) => line.startsWith('Goal missed'))).toBe(false);
    expect(met.notes).toContain('Goals met; the stretch goal Parley / raw <= 0.9 is not (0.95).');
  });

  it('runs at least 30 calls per subject in the full run and 8 in the quick one', () => {
    expect(settingsFor(false).calls).toBeGreaterThanOrEqual(30);
    expect(settingsFor(true).calls).toBe(8);
  });
});

function round3(value: number): number {
  return Number(value.toPrecision(3));
}

describeWhenInstalled('call set-up in Chromium (one call per subject)', 'Chromium', chromiumProblem(), () => {
  let browser: Browser;
  let server: PageServer;

  beforeAll(async () => {
    if (!existsSync(join(BUILT_PAGES, 'call-parley.html'))) {
      throw new Error(`the bench pages are not built (${BUILT_PAGES}): run npm run build -w @parley/bench`);
    }
    browser = await launchChromium();
    server = await startPageServer({ staticDir: BUILT_PAGES });
  }, 20_000);

  afterAll(async () => {
    await server?.close();
    await browser?.close();
  });

  for (const subject of Object.keys(SUBJECTS) as CallSubject[]) {
    it(`${SUBJECTS[subject].label}: both sides connect and show video, in order`, async () => {
      const call = await runCall({ browser, origin: server.origin, signalingUrl: server.signalingUrl, subject: SUBJECTS[subject].page, room: `test-${subject}` });
      for (const key of ['callerConnected', 'calleeConnected', 'callerFirstFrame', 'calleeFirstFrame'] as const) {
        expect(call[key]).toBeGreaterThan(0);
        expect(call[key]).toBeLessThan(10_000);
      }
      // Each side: made its connection, then connected; the caller's offer before the callee's answer.
      expect(call.marks.caller['pc-created']).toBeLessThan(call.callerConnected);
      expect(call.marks.callee['pc-created']).toBeLessThan(call.calleeConnected);
      expect(call.marks.caller['signaling-have-local-offer']).toBeLessThan(call.marks.callee['signaling-have-remote-offer']!);
      expect(call.marks.callee['signaling-have-remote-offer']).toBeLessThan(call.marks.caller['signaling-stable']!);
      expect(call.connected).toBe(Math.max(call.callerConnected, call.calleeConnected));
      if (SUBJECTS[subject].page.page === 'parley') {
        // The caller's offer, made at call() (offerOnStart), carries its tracks and its data
        // channel: the engine's negotiationneeded for them makes no second round.
        expect(Object.keys(call.marks.caller).filter((mark) => mark.startsWith('signaling-have-local-offer'))).toEqual(['signaling-have-local-offer']);
        expect(call.marks.caller['sent-offer']).toBeLessThan(call.marks.callee['got-offer']!);
        // A prepared line made its connection and set its offer before "call", and sent it after.
        const prepared = SUBJECTS[subject].page.line === 'prepared';
        expect(call.marks.caller['signaling-have-local-offer']! < 0).toBe(prepared);
        expect(call.marks.caller['pc-created']! < 0).toBe(prepared);
        expect(call.marks.caller['sent-offer']).toBeGreaterThanOrEqual(0);
      }
      // Media at call: each side opened its camera after "call" (not before, as the others do).
      const mediaAtCall = SUBJECTS[subject].page.media === 'at-call';
      for (const role of ['caller', 'callee'] as const) {
        expect(call.marks[role]['media-open']! > 0).toBe(mediaAtCall);
      }
    });
  }
});
