import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnJsonLineProcess } from './child-process.js';
import type { JsonLineProcess } from './child-process.js';

// `parley-signaling` (the built CLI of @parley/signaling-ws) as a real child process, so that a
// test can SIGKILL it mid-call and start it again on the same port.

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../../../signaling-ws/dist/server/cli.js');

export interface SignalingProcessOptions {
  /** 0 (default) for a random port; the restart of a killed server passes the port it had. */
  readonly port?: number;
  /** Same secret on a restart: the clients' resume tokens still verify, so they keep their ids. */
  readonly resumeSecret: string;
  readonly resumeGraceMs?: number;
  /** How long to wait for the `listening` log line (default 10 s). */
  readonly startTimeoutMs?: number;
}

export interface SignalingProcess {
  readonly process: JsonLineProcess;
  readonly port: number;
  /** `ws://127.0.0.1:PORT/` */
  readonly url: string;
  /** The server's log so far (one JSON object per line: `join`, `peer-left`, ...). */
  logEvents(event: string): Record<string, unknown>[];
}

/** Starts the CLI on 127.0.0.1 and resolves once it logs `listening`. */
export async function startSignalingProcess(options: SignalingProcessOptions): Promise<SignalingProcess> {
  const args = ['--host', '127.0.0.1', '--port', String(options.port ?? 0)];
  if (options.resumeGraceMs !== undefined) args.push('--resume-grace', String(options.resumeGraceMs));
  // The secret goes by environment, as the CLI's help recommends (flags show in ps).
  const child = spawnJsonLineProcess(CLI, args, { PARLEY_RESUME_SECRET: options.resumeSecret });
  const listening = await child.waitForLine((line) => line['event'] === 'listening', options.startTimeoutMs ?? 10_000, 'parley-signaling listening');
  const port = listening.value['port'];
  if (typeof port !== 'number') throw new Error(`parley-signaling logged no port: ${JSON.stringify(listening.value)}`);
  return {
    process: child,
    port,
    url: `ws://127.0.0.1:${port}/`,
    logEvents: (event) => child.lines.map((line) => line.value).filter((value) => value['event'] === event),
  };
}
