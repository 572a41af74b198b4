import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { describeWhenInstalled } from '../../../core/test/helpers/describe-when-installed.js';

// A real TURN server (Debian's coturn, `turnserver`) for the real-stack tests: one process per
// call of startTurnServer, listening on 127.0.0.1 only, relaying on 127.0.0.1 only, with the
// TURN REST API credentials (coturn `use-auth-secret`) that parley-signaling hands out.

export const TURN_REALM = 'parley.test';
export const TURN_INSTALL_HINT = 'install coturn: apt-get install -y coturn';

const HOST = '127.0.0.1';
/** How long a started or restarted server may take to answer a STUN binding request. */
const READY_TIMEOUT_MS = 10_000;
/** How long `stop()` waits after SIGTERM before SIGKILL. */
const TERM_GRACE_MS = 2_000;
/** Relay ports per server; each allocation takes one (two peers, a few ICE restarts each). */
const RELAY_PORT_COUNT = 64;
/**
 * Every port a test TURN server uses lies below Linux's ephemeral range (default 32768-60999,
 * `net.ipv4.ip_local_port_range`), where the kernel never hands out a port to a socket bound to
 * port 0. That matters for restart(): while the server is down, the peers' ICE sockets, other
 * test files' servers and clients keep binding ephemeral ports, and one of them once took the
 * listening port (CI: "Cannot bind DTLS/UDP listener socket to addr 127.0.0.1:42335", errno 98),
 * so the restarted server never listened. Listening ports and relay blocks get bands of their own.
 */
const LISTENING_BAND = { floor: 10_000, ceiling: 15_000 } as const;
const RELAY_BAND = { floor: 15_000, ceiling: 30_000 } as const;
const DEFAULT_EPHEMERAL_FLOOR = 32_768;

/** The lowest port of the kernel's ephemeral range (Linux); the default elsewhere. */
function ephemeralFloor(): number {
  try {
    const floor = Number.parseInt(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0] ?? '', 10);
    return Number.isFinite(floor) ? floor : DEFAULT_EPHEMERAL_FLOOR;
  } catch {
    return DEFAULT_EPHEMERAL_FLOOR;
  }
}

export interface TurnServerAvailability {
  readonly available: boolean;
  /** The executable found, when available. */
  readonly executable: string | null;
  /** What to do when it is not available. */
  readonly hint: string;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether coturn's `turnserver` is installed: `PARLEY_TURNSERVER` (a path) when set, else on
 * PATH or in Debian's locations.
 */
export function turnServerAvailability(): TurnServerAvailability {
  const configured = process.env['PARLEY_TURNSERVER'];
  if (configured !== undefined && configured !== '') {
    return isExecutable(configured)
      ? { available: true, executable: configured, hint: '' }
      : { available: false, executable: null, hint: `PARLEY_TURNSERVER=${configured} is not an executable; ${TURN_INSTALL_HINT}` };
  }
  const directories = [...(process.env['PATH'] ?? '').split(delimiter).filter((dir) => dir !== ''), '/usr/bin', '/usr/sbin', '/usr/local/bin'];
  const executable = directories.map((dir) => join(dir, 'turnserver')).find(isExecutable) ?? null;
  return executable === null
    ? { available: false, executable, hint: `coturn (turnserver) is not installed; ${TURN_INSTALL_HINT}` }
    : { available: true, executable, hint: '' };
}

/**
 * `describe` for tests that need coturn. Without coturn they are reported as skipped with the
 * install hint in their name, unless `CI` is set: there a missing coturn is a failure (the CI
 * script installs it, so its absence means the TURN feature went untested).
 */
export function describeWithTurnServer(name: string, body: () => void): void {
  const availability = turnServerAvailability();
  describeWhenInstalled(name, 'coturn', availability.available ? null : availability.hint, body);
}

export interface TurnServer {
  readonly port: number;
  /** `turn:127.0.0.1:PORT?transport=udp`. */
  readonly url: string;
  /** coturn's `static-auth-secret`: TURN REST credentials are HMACs of it. */
  readonly secret: string;
  readonly realm: string;
  /** The relay port range given to coturn (inclusive). */
  readonly relayPorts: { readonly min: number; readonly max: number };
  /** Whether the process is running now. */
  readonly running: boolean;
  /** Everything the process printed so far, across restarts. */
  readonly logs: string;
  /** SIGTERM, then SIGKILL after a bound; resolves once the process exited. Idempotent. */
  stop(): Promise<void>;
  /** Starts the server again on the same port with the same secret (stops it first if running). */
  restart(): Promise<void>;
  /** Stops the server and removes its temporary directory. */
  dispose(): Promise<void>;
}

export interface TurnServerOptions {
  /** Default: 24 random bytes, base64. */
  readonly secret?: string;
  /** Default: a free port (UDP and TCP) on 127.0.0.1, below the kernel's ephemeral range. */
  readonly port?: number;
  /** More turnserver flags, after the defaults (e.g. `--max-allocate-lifetime=6`). */
  readonly extraArgs?: readonly string[];
}

/**
 * TURN REST API credentials (draft-uberti-behave-turn-rest-00; coturn `use-auth-secret`):
 * `username = "<unix-expiry>:<id>"`, `credential = base64(HMAC-SHA1(secret, username))`.
 * Computed here independently of the signaling server's own implementation.
 */
export function turnRestCredential(secret: string, expiresAtSeconds: number, id: string): { username: string; credential: string } {
  const username = `${expiresAtSeconds}:${id}`;
  return { username, credential: createHmac('sha1', secret).update(username).digest('base64') };
}

/** A port of the listening band, free now for both UDP and TCP on 127.0.0.1 (TURN listens on both). */
async function freeListeningPort(): Promise<number> {
  for (let tries = 0; tries < 50; tries += 1) {
    const port = LISTENING_BAND.floor + Math.floor(Math.random() * (LISTENING_BAND.ceiling - LISTENING_BAND.floor));
    if ((await isUdpPortFree(port)) && (await isTcpPortFree(port))) return port;
  }
  throw new Error(`no free UDP+TCP port on 127.0.0.1 in ${LISTENING_BAND.floor}-${LISTENING_BAND.ceiling - 1}`);
}

function isTcpPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

function isUdpPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => resolve(false));
    socket.bind(port, HOST, () => socket.close(() => resolve(true)));
  });
}

/**
 * A relay port range of its own for one server: a random block whose ports are all free now.
 * Two test files that each run a TURN server at the same time then (almost surely) get disjoint
 * blocks; if they ever overlap, coturn skips ports it cannot bind.
 */
async function freeRelayRange(): Promise<{ min: number; max: number }> {
  const blocks = Math.floor((RELAY_BAND.ceiling - RELAY_BAND.floor) / RELAY_PORT_COUNT);
  for (let tries = 0; tries < 20; tries += 1) {
    const min = RELAY_BAND.floor + Math.floor(Math.random() * blocks) * RELAY_PORT_COUNT;
    const max = min + RELAY_PORT_COUNT - 1;
    let allFree = true;
    for (let port = min; port <= max && allFree; port += 1) allFree = await isUdpPortFree(port);
    if (allFree) return { min, max };
  }
  throw new Error('no free block of relay ports on 127.0.0.1');
}

/** STUN magic cookie (RFC 8489 §5). */
const MAGIC_COOKIE = 0x2112a442;
/** Binding request (RFC 8489 §5: method 0x001, class request). */
const BINDING_REQUEST = 0x0001;
/** Binding success response (class success response). */
const BINDING_SUCCESS = 0x0101;

/**
 * Resolves once a STUN Binding request to `port` gets a success response with the same
 * transaction id (RFC 8489 §6), i.e. coturn's UDP listener is up. Retries every 50 ms.
 */
async function waitForStunAnswer(port: number, timeoutMs: number, exited: () => string | null): Promise<void> {
  const socket = createSocket('udp4');
  const transactionId = randomBytes(12);
  const request = Buffer.alloc(20);
  request.writeUInt16BE(BINDING_REQUEST, 0);
  request.writeUInt16BE(0, 2); // no attributes
  request.writeUInt32BE(MAGIC_COOKIE, 4);
  transactionId.copy(request, 8);
  let answered = false;
  socket.on('message', (message) => {
    if (
      message.length >= 20 &&
      message.readUInt16BE(0) === BINDING_SUCCESS &&
      message.readUInt32BE(4) === MAGIC_COOKIE &&
      message.subarray(8, 20).equals(transactionId)
    ) {
      answered = true;
    }
  });
  // Until the server listens, the loopback answers with ICMP port unreachable: an error on
  // this socket, which only means "not yet".
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.bind(0, HOST, () => resolve()));
  try {
    const deadline = Date.now() + timeoutMs;
    while (!answered) {
      const exit = exited();
      if (exit !== null) throw new Error(`turnserver exited before it listened (${exit})`);
      if (Date.now() > deadline) throw new Error(`turnserver did not answer STUN on 127.0.0.1:${port} within ${timeoutMs} ms`);
      socket.send(request, port, HOST);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}

/** Processes still running when this worker exits are killed (a test that crashed mid-way). */
const runningProcesses = new Set<ChildProcess>();
let exitHookInstalled = false;
function killOnExit(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const running of runningProcesses) running.kill('SIGKILL');
    });
  }
  runningProcesses.add(child);
  child.once('exit', () => runningProcesses.delete(child));
}

/**
 * Starts coturn on 127.0.0.1 (a free port unless given) with REST-API authentication and waits
 * until it answers STUN. Loopback peers are allowed (the relayed peers are on 127.0.0.1); TLS,
 * DTLS, the CLI and RFC 5780 are off; `-n` ignores /etc/turnserver.conf (Debian's sends the log
 * to syslog). Pid file, user database and nothing else go to a temporary directory.
 */
export async function startTurnServer(options: TurnServerOptions = {}): Promise<TurnServer> {
  const availability = turnServerAvailability();
  if (!availability.available || availability.executable === null) throw new Error(availability.hint);
  const executable = availability.executable;
  const secret = options.secret ?? randomBytes(24).toString('base64');
  if (ephemeralFloor() < RELAY_BAND.ceiling) {
    throw new Error(`the kernel's ephemeral ports start at ${ephemeralFloor()}, inside the test TURN bands (below ${RELAY_BAND.ceiling}); a restarted server could find its port taken`);
  }
  const port = options.port ?? (await freeListeningPort());
  const relayPorts = await freeRelayRange();
  const directory = mkdtempSync(join(tmpdir(), 'parley-coturn-'));
  const args = [
    '-n',
    `--listening-ip=${HOST}`,
    `--relay-ip=${HOST}`,
    `--listening-port=${port}`,
    `--min-port=${relayPorts.min}`,
    `--max-port=${relayPorts.max}`,
    '--use-auth-secret',
    `--static-auth-secret=${secret}`,
    `--realm=${TURN_REALM}`,
    '--allow-loopback-peers',
    '--no-tls',
    '--no-dtls',
    '--no-cli',
    '--no-rfc5780',
    '--fingerprint',
    '--log-file=stdout',
    '--simple-log',
    `--pidfile=${join(directory, 'turnserver.pid')}`,
    `--userdb=${join(directory, 'turndb.sqlite')}`,
    ...(options.extraArgs ?? []),
  ];

  let logs = '';
  let child: ChildProcess | null = null;
  let exit: Promise<void> = Promise.resolve();
  let exitStatus: string | null = null;

  const launch = async (): Promise<void> => {
    exitStatus = null;
    const started = spawn(executable, args, { cwd: directory, stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    killOnExit(started);
    started.stdout?.setEncoding('utf8').on('data', (chunk: string) => (logs += chunk));
    started.stderr?.setEncoding('utf8').on('data', (chunk: string) => (logs += chunk));
    exit = new Promise<void>((resolve) => {
      started.once('exit', (code, signal) => {
        exitStatus = signal !== null ? `signal ${signal}` : `exit code ${String(code)}`;
        if (child === started) child = null;
        resolve();
      });
      started.once('error', (error) => {
        exitStatus = error.message;
        if (child === started) child = null;
        resolve();
      });
    });
    try {
      await waitForStunAnswer(port, READY_TIMEOUT_MS, () => exitStatus);
    } catch (error) {
      await stop();
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n--- turnserver output ---\n${logs}`);
    }
  };

  const stop = async (): Promise<void> => {
    const running = child;
    if (running === null) return;
    running.kill('SIGTERM');
    const killer = setTimeout(() => running.kill('SIGKILL'), TERM_GRACE_MS);
    await exit;
    clearTimeout(killer);
  };

  try {
    await launch();
  } catch (error) {
    rmSync(directory, { recursive: true, force: true });
    throw error;
  }
  return {
    port,
    url: `turn:${HOST}:${port}?transport=udp`,
    secret,
    realm: TURN_REALM,
    relayPorts,
    get running() {
      return child !== null;
    },
    get logs() {
      return logs;
    },
    stop,
    async restart() {
      await stop();
      await launch();
    },
    async dispose() {
      await stop();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** ICE servers as handed out in `welcome.iceServers` (readonly) as an RTCConfiguration wants them. */
export { toRtcIceServers } from '../../src/index.js';

/** One end of a candidate pair, from its `local-candidate` / `remote-candidate` stats. */
export interface CandidateEnd {
  readonly candidateType: string | undefined;
  readonly address: string | undefined;
  readonly port: number | undefined;
}

export interface SelectedCandidatePair {
  readonly id: string;
  readonly local: CandidateEnd;
  readonly remote: CandidateEnd;
  readonly bytesSent: number;
  readonly bytesReceived: number;
}

type StatsObject = Readonly<Record<string, unknown>>;

function candidateEnd(stats: StatsObject | undefined): CandidateEnd {
  const text = (field: string): string | undefined => (typeof stats?.[field] === 'string' ? stats[field] : undefined);
  // webrtc-stats renamed `ip` to `address`; older libwebrtc builds report only `ip`.
  const port = stats?.['port'];
  return { candidateType: text('candidateType'), address: text('address') ?? text('ip'), port: typeof port === 'number' ? port : undefined };
}

/**
 * The candidate pair the connection uses, read straight from getStats() (webrtc-stats:
 * RTCTransportStats.selectedCandidatePairId -> RTCIceCandidatePairStats -> local and remote
 * RTCIceCandidateStats). null while no pair is selected.
 */
export async function selectedCandidatePair(pc: RTCPeerConnection): Promise<SelectedCandidatePair | null> {
  const report = await pc.getStats();
  const byId = new Map<string, StatsObject>();
  report.forEach((stats: StatsObject, id: string) => byId.set(id, stats));
  for (const stats of byId.values()) {
    if (stats['type'] !== 'transport' || typeof stats['selectedCandidatePairId'] !== 'string') continue;
    const pair = byId.get(stats['selectedCandidatePairId']);
    if (pair?.['type'] !== 'candidate-pair') continue;
    const number = (field: string): number => (typeof pair[field] === 'number' ? pair[field] : 0);
    return {
      id: stats['selectedCandidatePairId'],
      local: candidateEnd(byId.get(String(pair['localCandidateId']))),
      remote: candidateEnd(byId.get(String(pair['remoteCandidateId']))),
      bytesSent: number('bytesSent'),
      bytesReceived: number('bytesReceived'),
    };
  }
  return null;
}
