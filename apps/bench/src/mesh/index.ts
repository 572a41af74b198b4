import { startPageServer } from '../page-server.js';
import { alternate, round, summarize } from '../stats.js';
import type { Summary } from '../stats.js';
import type { BenchOptions, BenchResult, Benchmark, GoalRatio } from '../types.js';
import { runSetUpTrial } from './trial.js';
import type { SetUpTrial } from './trial.js';

// Issue 15, "Benchmark": the time from the fourth member's join to all six pairs of a group
// call connected, against one pair's set-up (the second member's join to the pair connected),
// measured side by side in one run: key `mesh.fourOverPair`, goal <= 1.5. Each member is a Node
// process of its own running libwebrtc (@roamhq/wrtc), not a Chromium page: a mesh of four is
// twelve connections, and four Chromium pages (a renderer, a GPU and a network process each)
// are too heavy for the two shared cores this runs on. Signaling: a real parley-signaling on
// loopback, every member its own WebSocket client; loopback candidates only.

export type MeshSubject = 'pair' | 'four';

/** Members in the call at the end of each subject's trials. */
export const SUBJECT_SIZES: Readonly<Record<MeshSubject, number>> = { pair: 2, four: 4 };

const SUBJECT_LABELS: Readonly<Record<MeshSubject, string>> = {
  pair: 'one pair: the 2nd member joins, 1 pair to connect',
  four: 'mesh of four: the 4th member joins, 3 new pairs, all 6 connected',
};

/** Issue 15: the fourth member's join to all six pairs connected, at most 1.5 times one pair's set-up. */
export const FOUR_OVER_PAIR_GOAL = 1.5;

export interface MeshSettings {
  /** Counted trials per subject. */
  readonly rounds: number;
  /** Rounds of one trial per subject before counting (not counted: JIT, libwebrtc's first threads). */
  readonly warmupRounds: number;
}

export function settingsFor(quick: boolean): MeshSettings {
  return { rounds: quick ? 4 : 15, warmupRounds: 1 };
}

/** The benchmark's result from each subject's trials (pure: unit-tested). */
export function report(settings: MeshSettings, trials: Readonly<Record<MeshSubject, readonly SetUpTrial[]>>): BenchResult {
  const summaries: Record<MeshSubject, Summary> = {
    pair: summarize(trials.pair.map((trial) => trial.connectedMs)),
    four: summarize(trials.four.map((trial) => trial.connectedMs)),
  };
  const fourOverPair = round(summaries.four.median / summaries.pair.median);
  const goals: GoalRatio[] = [
    {
      key: 'mesh.fourOverPair',
      label: "group call: 4th member's join to 6 pairs connected / one pair's set-up (median)",
      value: fourOverPair,
      goal: FOUR_OVER_PAIR_GOAL,
      kind: 'at-most',
    },
  ];
  const subjects: readonly MeshSubject[] = ['pair', 'four'];
  const notes = [
    "Engine: libwebrtc of @roamhq/wrtc, each member a Node process of its own (four Chromium pages, twelve connections, are too heavy for this machine's two shared cores); signaling through a real parley-signaling on 127.0.0.1, each member its own WebSocket client; loopback candidates only; every pair opens one data channel.",
    "Each trial: a fresh room; all members but the last join the call and connect; the clock runs from the last member's join() to every member's group status showing connectionState \"connected\" for every other member.",
  ];
  if (fourOverPair > FOUR_OVER_PAIR_GOAL) {
    notes.push(
      `Goal missed: the joiner sets up ${SUBJECT_SIZES.four - 1} pairs at once (three offers or answers, three ICE agents, three DTLS handshakes in its process), against one; the four processes share two cores.`,
    );
  }
  return {
    name: 'mesh',
    title: `Group call set-up, libwebrtc (@roamhq/wrtc) in Node through parley-signaling on loopback (${settings.rounds} trials per subject, ms from the last member's join)`,
    json: {
      fourOverPair,
      engine: 'libwebrtc (@roamhq/wrtc), each member a Node process of its own; four Chromium pages are too heavy for 2 shared cores',
      definitions: {
        t0: "the last member's group.join()",
        connected: 'every member of the call showing connectionState "connected" for each other member in its group status, ms from t0',
        fourOverPair: 'median connected of the mesh of four over median connected of one pair',
      },
      roundsPerSubject: settings.rounds,
      warmupRounds: settings.warmupRounds,
      subjects: Object.fromEntries(
        subjects.map((s) => [
          s,
          {
            label: SUBJECT_LABELS[s],
            members: SUBJECT_SIZES[s],
            medianMs: round(summaries[s].median),
            p90Ms: round(summaries[s].p90),
            minMs: round(summaries[s].min),
            maxMs: round(summaries[s].max),
            runsMs: trials[s].map((trial) => round(trial.connectedMs)),
          },
        ]),
      ),
    },
    table: {
      columns: ['subject', 'trials', 'connected med (ms)', 'p90', 'min-max', '/ pair'],
      rows: subjects.map((s) => [
        SUBJECT_LABELS[s],
        String(trials[s].length),
        String(round(summaries[s].median)),
        String(round(summaries[s].p90)),
        `${round(summaries[s].min)}-${round(summaries[s].max)}`,
        String(round(summaries[s].median / summaries.pair.median)),
      ]),
    },
    goals,
    notes,
  };
}

export async function runMesh(options: BenchOptions, settings: MeshSettings): Promise<BenchResult> {
  const server = await startPageServer();
  try {
    let trial = 0;
    const run = (subject: MeshSubject): Promise<SetUpTrial> => runSetUpTrial({ url: server.signalingUrl, room: `mesh-${trial++}`, size: SUBJECT_SIZES[subject] });
    const subjects: readonly MeshSubject[] = ['pair', 'four'];
    options.log(`${settings.warmupRounds} warm-up round(s), then ${settings.rounds} trials per subject (${subjects.join(', ')})`);
    for (let r = 0; r < settings.warmupRounds; r++) for (const subject of subjects) await run(subject);
    const trials: Record<MeshSubject, SetUpTrial[]> = { pair: [], four: [] };
    await alternate(subjects, settings.rounds, async (subject, r) => {
      const result = await run(subject);
      trials[subject].push(result);
      options.log(`round ${r + 1}/${settings.rounds} ${subject}: ${result.connectedMs.toFixed(0)} ms`);
      return result.connectedMs;
    });
    return report(settings, trials);
  } finally {
    await server.close();
  }
}

export const benchmark: Benchmark = {
  name: 'mesh',
  run: (options) => runMesh(options, settingsFor(options.quick)),
};
