import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnJsonLineProcess } from './child-process.js';
import type { JsonLineProcess } from './child-process.js';

// The remote side of a call in its own process (fixtures/remote-peer.mjs): it joins the room,
// accepts the first invite with the call machine over a real libwebrtc connection, and reports
// on stdout. Killing it makes the remote side vanish the way a crashed tab or app does: no
// `bye`, no `leave`, no DTLS close_notify, no SCTP ABORT; its sockets are just gone.

const FIXTURE = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/remote-peer.mjs');

export interface RemotePeerProcess {
  readonly process: JsonLineProcess;
  /** Its peer id in the room. */
  readonly id: string;
  /** Resolves once it reported `event` with the given `state`, e.g. ('connection', 'connected'). */
  reported(event: string, state: string | undefined, timeoutMs: number): Promise<void>;
}

export async function startRemotePeerProcess(options: { readonly url: string; readonly room: string; readonly name: string }): Promise<RemotePeerProcess> {
  const child = spawnJsonLineProcess(FIXTURE, ['--url', options.url, '--room', options.room, '--name', options.name]);
  const joined = await child.waitForLine((line) => line['event'] === 'joined', 10_000, 'remote peer joined');
  const id = joined.value['id'];
  if (typeof id !== 'string') throw new Error(`remote peer reported no id: ${JSON.stringify(joined.value)}`);
  return {
    process: child,
    id,
    reported: async (event, state, timeoutMs) => {
      await child.waitForLine(
        (line) => line['event'] === event && (state === undefined || line['state'] === state || line['label'] === state),
        timeoutMs,
        `remote peer reporting ${event} ${state ?? ''}`,
      );
    },
  };
}
