import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EngineName } from '../../src/index.js';
import type { MediaRole } from './party.js';

// What the interop suite tests for each pair of engines, and what it records of its last run.

/** The engines, in the table's order. */
export const ENGINES: readonly EngineName[] = ['chromium', 'firefox', 'libwebrtc', 'werift', 'libdatachannel'];

/** Same-engine pairs the other suites do not cover already (Chromium: apps/demo; libwebrtc: call.real). */
const SAME_ENGINE_PAIRS: readonly EngineName[] = ['firefox', 'werift', 'libdatachannel'];

/** The checks of one pair, in the order they run. */
export const CHECKS = ['connected', 'data', 'glare-channels', 'glare-transceivers', 'ice-restart', 'media', 'media-rtp'] as const;
export type CheckName = (typeof CHECKS)[number];

/** Where the suite writes its last run (read by scripts/interop-readme.mjs). */
export const INTEROP_RESULTS_PATH = join(dirname(fileURLToPath(import.meta.url)), 'last-run.json');

/** What an engine can do in a call, as far as the suite checks it. */
interface EngineAbilities {
  readonly media: 'sendrecv' | 'receive-rtp' | 'none';
  readonly transceivers: boolean;
  readonly iceRestart: boolean;
}

/** Why an engine lacks an ability, for the table. */
const LIMITS: Partial<Record<EngineName, string>> = {
  werift:
    "werift has no codecs: it receives media as RTP packets and sends none here. An explicit rollback keeps the mid its rolled-back offer gave a transceiver (webrtc-pc §4.4.1.5 discards it), so in a transceiver glare the remote offer's new m-section with that mid lands on werift's own transceiver: the round ends with one new m-section, not two. It answers an ICE restart with its old ufrag and password (RFC 8839 §4.4.1.1.1 wants new ones from both agents); the call stays connected",
  libdatachannel:
    "node-datachannel's polyfill carries data channels only (addTrack/addTransceiver throw) and cannot renegotiate: restartIce throws, createOffer returns its first offer again",
};

const ABILITIES: Record<EngineName, EngineAbilities> = {
  chromium: { media: 'sendrecv', transceivers: true, iceRestart: true },
  firefox: { media: 'sendrecv', transceivers: true, iceRestart: true },
  libwebrtc: { media: 'sendrecv', transceivers: true, iceRestart: true },
  werift: { media: 'receive-rtp', transceivers: true, iceRestart: true },
  libdatachannel: { media: 'none', transceivers: false, iceRestart: false },
};

/**
 * Checks that fail today between two engines, found by this suite and not fixed yet: the suite
 * leaves them out (the README's table lists them as gaps) instead of failing on every run. Each
 * entry says what was seen; remove it when it is fixed (PARLEY_INTEROP_GAPS=run runs them).
 */
const KNOWN_GAPS: Readonly<Record<string, Partial<Record<CheckName, string>>>> = {
  'chromium-firefox': {
    'ice-restart':
      "Chromium's bug: after Chromium's ICE restart it pairs its new-session host candidate with Firefox's candidate of the previous session (still answering with the old credentials), and nominates that pair; RFC 8445 §9 flushes all previous state on a restart. Firefox's new session never gets a nominated pair, so Firefox keeps sending on the old pair (Firefox to Chromium arrives) and drops what Chromium sends on the new one (data and video). Not caused by the glare rounds (it fails without either) nor by Parley: a=setup, mids, sctp-port and the DTLS association stay the same; no adapter workaround",
  },
  'firefox-werift': {
    'glare-transceivers': "Firefox (the impolite caller) ends the round with its new transceiver stopped: werift, having kept its rolled-back mid, answers Firefox's m-section with its own; not fixed",
    'ice-restart':
      "werift answers Firefox's ICE restart with its old credentials, and in one run of four Firefox's connection then failed; not fixed",
  },
  'werift-werift': {
    'ice-restart':
      "werift's bug: after an ICE restart between two werift agents neither nominates a pair again (both flush theirs, RFC 8445 §9, then report ICE completed and connected), and werift sends no data without a nominated pair with fresh consent (RFC 7675), so nothing arrives either way. Plain werift without Parley and without any glare round does the same; with a libwebrtc or Chromium agent nominating, werift recovers",
  },
};

/** The pairs the suite runs: every cross pair, and the same-engine pairs not covered elsewhere. */
export function pairsToTest(): [EngineName, EngineName][] {
  const pairs: [EngineName, EngineName][] = [];
  ENGINES.forEach((a, index) => ENGINES.slice(index + 1).forEach((b) => pairs.push([a, b])));
  for (const engine of SAME_ENGINE_PAIRS) pairs.push([engine, engine]);
  return pairs;
}

/** What one pair is tested for. */
export interface PairPlan {
  readonly checks: readonly CheckName[];
  /** Each side's media role (caller, callee). */
  readonly media: readonly [MediaRole, MediaRole];
  readonly transceivers: boolean;
  /** New m-sections a transceiver glare round ends with: 2, or 1 with werift (see LIMITS). */
  readonly glareSections: number;
  readonly iceRestart: boolean;
  /** Firefox is in it: the call uses the namespace's veth address, not 127.0.0.1. */
  readonly needsNamespace: boolean;
  /** Checks left out, with the engine's reason. */
  readonly notCovered: readonly string[];
}

function mediaRoles(a: EngineAbilities, b: EngineAbilities): [MediaRole, MediaRole] {
  if (a.media === 'none' || b.media === 'none') return ['none', 'none'];
  if (a.media === 'sendrecv' && b.media === 'sendrecv') return ['sendrecv', 'sendrecv'];
  if (a.media === 'receive-rtp' && b.media === 'receive-rtp') return ['none', 'none'];
  return a.media === 'sendrecv' ? ['sendrecv', 'receive-rtp'] : ['receive-rtp', 'sendrecv'];
}

export function pairPlan(a: EngineName, b: EngineName): PairPlan {
  const media = mediaRoles(ABILITIES[a], ABILITIES[b]);
  const transceivers = ABILITIES[a].transceivers && ABILITIES[b].transceivers;
  const iceRestart = ABILITIES[a].iceRestart && ABILITIES[b].iceRestart;
  const possible: CheckName[] = ['connected', 'data', 'glare-channels'];
  if (transceivers) possible.push('glare-transceivers');
  if (iceRestart) possible.push('ice-restart');
  if (media[0] === 'sendrecv' && media[1] === 'sendrecv') possible.push('media');
  else if (media.includes('receive-rtp')) possible.push('media-rtp');
  // PARLEY_INTEROP_GAPS=run runs the known gaps too (to see whether they still fail).
  const gaps = process.env['PARLEY_INTEROP_GAPS'] === 'run' ? {} : (KNOWN_GAPS[`${a}-${b}`] ?? {});
  const checks = possible.filter((check) => gaps[check] === undefined);
  const notCovered = [
    ...[...new Set([a, b])].flatMap((engine) => (LIMITS[engine] === undefined ? [] : [LIMITS[engine]])),
    ...Object.entries(gaps).map(([check, reason]) => `gap: ${check}: ${reason}`),
  ];
  const glareSections = a === 'werift' || b === 'werift' ? 1 : 2;
  return { checks, media, transceivers, glareSections, iceRestart, needsNamespace: a === 'firefox' || b === 'firefox', notCovered };
}

/** One pair's result. */
export interface PairResult {
  readonly pair: readonly [EngineName, EngineName];
  /** From the caller's "call" to both sides connected with the chat channel open. */
  readonly setupMs: number;
  readonly covered: readonly CheckName[];
  readonly notCovered: readonly string[];
}

/** The suite's last run, as INTEROP_RESULTS_PATH holds it. */
export interface InteropResults {
  readonly date: string;
  readonly wallSeconds: number;
  readonly engines: Readonly<Record<EngineName, string>>;
  readonly pairs: readonly PairResult[];
}

const require = createRequire(import.meta.url);

/** The installed version of a package, from the package.json above its entry point (werift's
 * `exports` does not list its package.json). */
function packageVersion(name: string): string {
  for (let dir = dirname(require.resolve(name)); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (manifest.name === name && manifest.version !== undefined) return manifest.version;
    } catch {
      // no package.json at this level
    }
  }
  return 'unknown';
}

/** Every engine's name and version (the browsers' as they report it). */
export function engineVersions(browsers: { readonly chromium: string | undefined; readonly firefox: string | undefined }): Record<EngineName, string> {
  return {
    chromium: browsers.chromium ?? 'Chromium (not run)',
    firefox: browsers.firefox ?? 'Firefox (not run)',
    libwebrtc: `@roamhq/wrtc ${packageVersion('@roamhq/wrtc')}`,
    werift: `werift ${packageVersion('werift')}`,
    libdatachannel: `node-datachannel ${packageVersion('node-datachannel')} (polyfill)`,
  };
}
