// The callSetup benchmark's Chromium <-> Firefox calls (full mode), as a process of its own that
// index.ts runs inside a fresh network namespace (scripts/in-namespace.mjs): Firefox needs the
// namespace's veth address (PARLEY_NAMESPACE_ADDRESS), which both pages then signal. Two
// subjects on the same pair, raw (seed guides) and Parley, alternate call by call; the direction
// alternates too (Chromium calls Firefox, then Firefox calls Chromium). Progress goes to stderr,
// the result (FirefoxPairResult) as JSON to stdout.
//   node scripts/in-namespace.mjs node apps/bench/dist/call-setup/firefox-pair.js CALLS

import type { Browser as FirefoxBrowser } from 'puppeteer-core';
import type { Browser as ChromiumBrowser } from 'playwright-core';
import { launchChromium } from '../chromium.js';
import { firefoxSide, launchFirefox } from '../firefox.js';
import { startPageServer } from '../page-server.js';
import { alternate } from '../stats.js';
import type { CallDurations } from './measure.js';
import { chromiumSide, runCall } from './trial.js';
import type { CallSubjectPage } from './trial.js';

/** The two subjects of the pair, with the same pages as the Chromium rows. */
export type FirefoxPairSubject = 'raw' | 'parley';

/** What the process prints: browser versions and every counted call per subject. */
export interface FirefoxPairResult {
  readonly chromium: string;
  readonly firefox: string;
  readonly calls: Readonly<Record<FirefoxPairSubject, readonly CallDurations[]>>;
}

const PAGES: Readonly<Record<FirefoxPairSubject, CallSubjectPage>> = { raw: { page: 'raw' }, parley: { page: 'parley' } };
const SUBJECTS: readonly FirefoxPairSubject[] = ['raw', 'parley'];

async function measure(callsPerSubject: number, address: string): Promise<FirefoxPairResult> {
  const log = (line: string): void => void process.stderr.write(`[firefox pair] ${line}\n`);
  let chromium: ChromiumBrowser | undefined;
  let firefox: FirefoxBrowser | undefined;
  const server = await startPageServer();
  try {
    [chromium, firefox] = await Promise.all([launchChromium(), launchFirefox()]);
    const inChromium = chromiumSide(chromium);
    const inFirefox = firefoxSide(firefox);
    let trial = 0;
    const call = (subject: FirefoxPairSubject, round: number): Promise<CallDurations> =>
      runCall({
        browser: chromium!,
        sides: round % 2 === 0 ? { caller: inChromium, callee: inFirefox } : { caller: inFirefox, callee: inChromium },
        candidateAddress: address,
        origin: server.origin,
        signalingUrl: server.signalingUrl,
        subject: PAGES[subject],
        room: `firefox-${trial++}`,
      });
    log(`1 warm-up round each way, then ${callsPerSubject} calls per subject (${SUBJECTS.join(', ')}), Chromium ${chromium.version()}, ${await firefox.version()}`);
    for (const round of [0, 1]) for (const subject of SUBJECTS) await call(subject, round);
    const calls: Record<FirefoxPairSubject, CallDurations[]> = { raw: [], parley: [] };
    await alternate(SUBJECTS, callsPerSubject, async (subject, round) => {
      const result = await call(subject, round);
      calls[subject].push(result);
      if (subject === SUBJECTS[0] && (round + 1) % 5 === 0) log(`round ${round + 1}/${callsPerSubject}`);
      return result.connected;
    });
    // puppeteer over BiDi says "firefox/153.8.0".
    const firefoxVersion = (await firefox.version()).replace(/^firefox\//i, 'Firefox ');
    return { chromium: `Chromium ${chromium.version()}`, firefox: firefoxVersion, calls };
  } finally {
    await Promise.allSettled([chromium?.close(), firefox?.close()]);
    await server.close();
  }
}

const address = process.env['PARLEY_NAMESPACE_ADDRESS'];
const callsPerSubject = Number(process.argv[2] ?? 10);
if (address === undefined) {
  process.stderr.write('firefox-pair: PARLEY_NAMESPACE_ADDRESS is not set; run it with node scripts/in-namespace.mjs\n');
  process.exit(3);
}
measure(callsPerSubject, address).then(
  (result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  },
  (error: unknown) => {
    process.stderr.write(`firefox-pair: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
