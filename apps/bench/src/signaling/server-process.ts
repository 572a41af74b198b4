// A subject's server in its own process: `node server-process.js parley|raw|peerjs`. Tells the
// parent its URL, answers `gc` (run with --expose-gc) so that memory is read after a full
// collection, and exits when the parent disconnects.

import { serveRequests } from './children.js';
import { SUBJECTS } from './protocols.js';
import type { Subject } from './protocols.js';
import { startSubjectServer } from './servers.js';

async function main(): Promise<void> {
  const subject = process.argv[2] as Subject;
  if (!SUBJECTS.includes(subject)) throw new Error(`usage: server-process.js ${SUBJECTS.join('|')}`);
  const server = await startSubjectServer(subject);
  serveRequests(
    {
      gc: () => {
        const gc = (globalThis as { gc?: () => void }).gc;
        if (gc === undefined) throw new Error('run with --expose-gc');
        gc();
        gc();
        return true;
      },
    },
    { port: server.port, url: server.url },
    // Exiting without closing: a graceful close of thousands of sockets is not what is measured.
    () => undefined,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
