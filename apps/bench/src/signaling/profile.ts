// Development aid: `node dist/signaling/profile.js SUBJECT[,SUBJECT...] [SECONDS] [PROFILE_DIR]`
// runs subjects under the closed-loop load of the benchmark (MODE=open: the latency runs' open
// loop) and prints each run's CPU per message: the server processes' (both nodes of a cross-node
// subject) and, for those, Redis's own (INFO cpu) and its commands per message. With PROFILE_DIR
// every server process runs with `--cpu-prof` and writes its profile there on exit; each is
// then summarized (self time by origin and by function).

import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatProfileSummary, summarizeCpuProfile } from './cpu-profile.js';
import type { CpuProfile } from './cpu-profile.js';
import { describeCommands } from './cross-node.js';
import { FULL, Lab } from './index.js';
import { SUBJECTS } from './protocols.js';
import type { Subject } from './protocols.js';

async function main(): Promise<void> {
  const subjects = (process.argv[2] ?? 'parley').split(',') as Subject[];
  if (!subjects.every((s) => SUBJECTS.includes(s))) throw new Error(`usage: profile.js ${SUBJECTS.join('|')}[,...] [SECONDS] [PROFILE_DIR]`);
  const seconds = Number(process.argv[3] ?? '5');
  const dir = process.argv[4];
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  if (dir !== undefined) await mkdir(dir, { recursive: true });
  const before = new Set(dir === undefined ? [] : await readdir(dir));
  const lab = new Lab(FULL, log, dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : []);
  try {
    await lab.startLoads();
    for (const subject of subjects) {
      const server = await lab.startServer(subject);
      log(`${subject}: server pids ${server.nodes.map((node) => node.pid).join(', ')}`);
      await lab.connect(subject, subject, FULL.pairs);
    }
    for (let round = 0; round < Number(process.env['ROUNDS'] ?? 3); round++) {
      for (const subject of subjects) {
        const run =
          process.env['MODE'] === 'open'
            ? await lab.run(subject, 'runOpen', { warmupMs: 300, measureMs: seconds * 1000, rate: FULL.latencyRate })
            : await lab.run(subject, 'runClosed', { warmupMs: 500, measureMs: seconds * 1000, window: FULL.window });
        const redis = run.redisCpuShare > 0 ? `, Redis ${run.redisCpuUsPerMsg.toFixed(1)} µs CPU/msg (${Math.round(run.redisCpuShare * 100)}%; ${describeCommands(run.redisCommandsPerMsg)})` : '';
        log(
          `${subject}: ${Math.round(run.msgsPerSecond)} msgs/s, ${run.serverCpuUsPerMsg.toFixed(1)} µs server CPU/msg${redis}, ` +
            `server ${Math.round(run.serverCpuShare * 100)}% load ${Math.round(run.loadCpuShare * 100)}%, p50 ${run.p50Ms.toFixed(2)} p99 ${run.p99Ms.toFixed(2)} ms`,
        );
      }
    }
  } finally {
    await lab.shutdown();
  }
  if (dir !== undefined) {
    for (const file of (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile') && !before.has(f)).sort()) {
      const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile;
      log(`\n${file}: ${formatProfileSummary(summarizeCpuProfile(profile))}`);
    }
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
