// Development aid: `node dist/signaling/profile.js SUBJECT [SECONDS] [PROFILE_DIR]` runs one
// subject under the closed-loop load of the benchmark and prints the server's CPU per message;
// with PROFILE_DIR the server runs with `--cpu-prof` and writes its profile there on exit.

import { FULL, Lab } from './index.js';
import { SUBJECTS } from './protocols.js';
import type { Subject } from './protocols.js';

async function main(): Promise<void> {
  const subjects = (process.argv[2] ?? 'parley').split(',') as Subject[];
  if (!subjects.every((s) => SUBJECTS.includes(s))) throw new Error(`usage: profile.js ${SUBJECTS.join('|')}[,...] [SECONDS] [PROFILE_DIR]`);
  const seconds = Number(process.argv[3] ?? '5');
  const dir = process.argv[4];
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const lab = new Lab(FULL, log, dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : []);
  try {
    await lab.startLoads();
    for (const subject of subjects) {
      await lab.startServer(subject);
      await lab.connect(subject, subject, FULL.pairs);
    }
    for (let round = 0; round < Number(process.env['ROUNDS'] ?? 3); round++) {
      for (const subject of subjects) {
        const run =
          process.env['MODE'] === 'open'
            ? await lab.run(subject, 'runOpen', { warmupMs: 300, measureMs: seconds * 1000, rate: FULL.latencyRate })
            : await lab.run(subject, 'runClosed', { warmupMs: 500, measureMs: seconds * 1000, window: FULL.window });
        log(
          `${subject}: ${Math.round(run.msgsPerSecond)} msgs/s, ${run.serverCpuUsPerMsg.toFixed(1)} µs server CPU/msg, ` +
            `server ${Math.round(run.serverCpuShare * 100)}% load ${Math.round(run.loadCpuShare * 100)}%, p50 ${run.p50Ms.toFixed(2)} p99 ${run.p99Ms.toFixed(2)} ms`,
        );
      }
    }
  } finally {
    await lab.shutdown();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
