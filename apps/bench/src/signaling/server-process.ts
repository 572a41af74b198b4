// One node of a subject's server in its own process: `node server-process.js KIND [REDIS_URL]`
// (KIND one of servers.ts's ServerKind; REDIS_URL for the kinds on Redis). Tells the parent its
// URL, answers `gc` (run with --expose-gc) so that memory is read after a full collection, and
// exits when the parent disconnects.

import { serveRequests } from './children.js';
import { needsRedis, SERVER_KINDS, startSubjectServer } from './servers.js';
import type { ServerKind } from './servers.js';

async function main(): Promise<void> {
  const kind = process.argv[2] as ServerKind;
  const redisUrl = process.argv[3];
  if (!SERVER_KINDS.includes(kind) || (needsRedis(kind) && redisUrl === undefined)) {
    throw new Error(`usage: server-process.js ${SERVER_KINDS.join('|')} [REDIS_URL (for the kinds on Redis)]`);
  }
  const server = await startSubjectServer(kind, redisUrl === undefined ? {} : { redisUrl });
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
