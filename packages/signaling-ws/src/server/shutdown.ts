// Shutdown as a drain: the server stops taking upgrades and joins (`/readyz` answers 503 while
// `/healthz` stays 200), closes every socket with 1012 (service restart: reconnect elsewhere at
// once and resume, RFC 6455 §7.4.1 and the IANA close code registry), waits until they are all
// closed or `drainTimeoutMs` has passed, terminates the rest, ends every session, and only then
// closes the HTTP listener.

import { CLOSE_CODES } from '../protocol.js';
import type { Connection } from './connection.js';
import type { ServerContext } from './context.js';

/** What a drain needs besides the context. */
export interface DrainParts {
  /** Stops the heartbeat and removes the upgrade listener. */
  stopAccepting(): void;
  /** Ends every session (`peer-left` to the rooms). */
  endSessions(): void;
  /** Closes the broker (if the server owns it), the HTTP listener (if own) and the WebSocket server. */
  release(): Promise<void>;
}

function closedPromise(conn: Connection): Promise<void> {
  return new Promise<void>((resolve) => {
    if (conn.state.kind === 'closed') resolve();
    else conn.ws.once('close', () => resolve());
  });
}

/** Drains the server (see the top of shutdown.ts); resolves when everything is closed. */
export async function drain(ctx: ServerContext, parts: DrainParts): Promise<void> {
  ctx.phase = 'draining';
  ctx.log({ level: 'info', event: 'draining', connections: ctx.connections.size, timeoutMs: ctx.options.drainTimeoutMs });
  const open = [...ctx.connections];
  for (const conn of open) ctx.outbox.close(conn, CLOSE_CODES.serviceRestart, 'server restarting: reconnect');
  const allClosed = Promise.all(open.map(closedPromise));
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    allClosed.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), ctx.options.drainTimeoutMs);
    }),
  ]);
  clearTimeout(timer);
  parts.stopAccepting();
  if (timedOut) {
    ctx.log({ level: 'warn', event: 'drain-timeout', open: ctx.connections.size });
    for (const conn of ctx.connections) conn.ws.terminate();
    await allClosed;
  }
  parts.endSessions();
  await parts.release();
  ctx.log({ level: 'info', event: 'closed' });
}
