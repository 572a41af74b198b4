#!/usr/bin/env node
// `parley-signaling`: runs the signaling server until SIGTERM or SIGINT.

import { parseCliOptions, USAGE } from './cli-options.js';
import { errorMessage, jsonLineLogger } from './log.js';
import { createRedisBroker, type RedisBroker } from './redis/redis-broker.js';
import { createSignalingServer } from './server.js';

async function main(): Promise<number> {
  const parsed = parseCliOptions(process.argv.slice(2), process.env);
  if (parsed.kind === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (parsed.kind === 'error') {
    process.stderr.write(`parley-signaling: ${parsed.message}\nRun parley-signaling --help for the options.\n`);
    return 2;
  }
  let server;
  let broker: RedisBroker | undefined;
  try {
    // With --redis, rooms are shared through Redis (this process is one node of many).
    if (parsed.redis !== undefined) broker = await createRedisBroker({ ...parsed.redis, logger: jsonLineLogger });
    server = await createSignalingServer({ ...parsed.options, logger: jsonLineLogger, ...(broker !== undefined ? { broker } : {}) });
  } catch (error) {
    await broker?.close();
    const message = errorMessage(error);
    process.stderr.write(`parley-signaling: ${message}\n`);
    // Option errors found by the server (a TypeError) are usage errors too.
    return error instanceof TypeError ? 2 : 1;
  }
  process.stderr.write(`Parley signaling on ${server.httpUrl.replace(/\/$/, '')}${broker !== undefined ? ` (Redis node ${broker.nodeId})` : ''}\n`);
  const running = server;
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        // A second signal: stop waiting for slow clients.
        process.exit(1);
      }
      stopping = true;
      jsonLineLogger({ level: 'info', event: 'signal', signal });
      running.close().then(() => broker?.close()).then(resolve, (error: unknown) => {
        jsonLineLogger({ level: 'error', event: 'shutdown-error', message: errorMessage(error) });
        resolve();
      });
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  return 0;
}

main().then(
  (code) => {
    // Exit now rather than wait for stray handles (keep-alive sockets of other tools, timers).
    process.exit(code);
  },
  (error: unknown) => {
    process.stderr.write(`parley-signaling: ${errorMessage(error)}\n`);
    process.exit(1);
  },
);
