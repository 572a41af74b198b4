// Command-line and environment options of `parley-signaling`, parsed without side effects so
// that they can be tested. A flag wins over its environment variable.

import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { errorMessage } from './log.js';
import type { RedisBrokerOptions } from './redis/redis-broker.js';
import type { SignalingServerOptions } from './server.js';

export const USAGE = `Usage: parley-signaling [options]

Parley signaling server (wire protocol v1). Every option can also be set by the environment
variable shown; a flag wins over its variable. Prefer variables for secrets (flags show in ps).

  --port N                 port to listen on (0 = random)           PARLEY_PORT, PORT   [1337]
  --host ADDR              address to listen on                     PARLEY_HOST         [127.0.0.1]
  --static DIR             serve DIR over HTTP on the same port     PARLEY_STATIC
  --path PATH              accept WebSockets on PATH only           PARLEY_PATH         [any]
  --auth-secret S          require join tokens signed with S        PARLEY_AUTH_SECRET
  --turn-url URL           TURN server URL (repeat or comma list)   PARLEY_TURN_URL
  --turn-secret S          coturn static-auth-secret (REST creds)   PARLEY_TURN_SECRET
  --turn-ttl SECONDS       lifetime of TURN credentials             PARLEY_TURN_TTL     [86400]
  --stun-url URL           STUN server URL (repeat or comma list)   PARLEY_STUN_URL
  --origin ORIGIN          allowed page origin (repeat/comma list)  PARLEY_ORIGIN       [any]
  --max-payload BYTES      largest frame; larger closes with 1009   PARLEY_MAX_PAYLOAD  [65536]
  --max-peers N            peers per room                           PARLEY_MAX_PEERS    [16]
  --max-connections-per-ip N                                        PARLEY_MAX_CONNECTIONS_PER_IP [32]
                           WebSockets + upgrades under way + peers in resume grace (and,
                           without --trust-proxy, TCP connections still sending a request)
  --max-connections N      WebSockets on this server (past it: 503)  PARLEY_MAX_CONNECTIONS [10000]
  --headers-timeout MS     time to send the HTTP request headers     PARLEY_HEADERS_TIMEOUT [10000]
  --request-timeout MS     time to send a whole HTTP request         PARLEY_REQUEST_TIMEOUT [30000]
  --rate N                 messages per second per connection       PARLEY_RATE         [50]
  --heartbeat MS           ping interval; silent sockets dropped    PARLEY_HEARTBEAT    [15000]
  --resume-grace MS        how long a dropped peer can resume       PARLEY_RESUME_GRACE [10000]
  --resume-secret S        sign resume tokens with S                PARLEY_RESUME_SECRET [random]
                           (same S on every instance and restart: peers keep their ids)
  --resume-token-ttl SECONDS                                        PARLEY_RESUME_TOKEN_TTL [86400]
                           oldest resume token that restores an id after a restart
  --max-held-frames N      frames held for one peer in resume grace  PARLEY_MAX_HELD_FRAMES [64]
  --max-held-bytes-per-peer BYTES                                   PARLEY_MAX_HELD_BYTES_PER_PEER [262144]
  --max-held-bytes BYTES   held for all peers in resume grace        PARLEY_MAX_HELD_BYTES [67108864]
                           (past a bound the sender gets error undeliverable)
  --trust-proxy N          behind N proxies: the client address is   PARLEY_TRUST_PROXY  [0]
                           the Nth X-Forwarded-For entry from the right
  --drain-timeout MS       on SIGTERM, wait this long for sockets    PARLEY_DRAIN_TIMEOUT [10000]
  --redis URL              rooms shared by every node on one Redis   PARLEY_REDIS_URL (or PARLEY_REDIS)
                           (redis://[user:pass@]host:port[/db], Redis 7 or Valkey; /readyz
                           answers 503 while it is unreachable; without --redis rooms live in
                           this process's memory and no Redis is used)
  --redis-prefix P         prefix of the broker's keys and channels  PARLEY_REDIS_PREFIX [parley:]
  --redis-heartbeat-ttl MS a node silent this long is dead; renewed   PARLEY_REDIS_HEARTBEAT_TTL [3000]
                           and checked every third of it. A dead node's peers can resume on
                           another node; after TTL + TTL/3 + --resume-grace they are removed
  -h, --help               show this help

Logs are one JSON object per line on stdout. SIGTERM or SIGINT drains: no new WebSockets,
/readyz answers 503 (/healthz stays 200), every socket is closed with 1012 (clients reconnect
elsewhere and resume), and the process exits 0 once all are closed or --drain-timeout passed; a
second signal exits 1 at once. Bad options exit 2.`;

export type CliParse =
  | { readonly kind: 'help' }
  | { readonly kind: 'error'; readonly message: string }
  | {
      readonly kind: 'run';
      readonly options: SignalingServerOptions;
      /** With `--redis`: the Redis broker to create (`createRedisBroker`), without its logger. */
      readonly redis?: RedisBrokerOptions;
    };

type Env = Readonly<Record<string, string | undefined>>;

class OptionError extends Error {}

function list(flag: readonly string[] | undefined, env: string | undefined): string[] | undefined {
  const raw = flag !== undefined && flag.length > 0 ? flag : env !== undefined && env !== '' ? [env] : undefined;
  if (raw === undefined) return undefined;
  return raw.flatMap((item) => item.split(',')).map((item) => item.trim()).filter((item) => item.length > 0);
}

function text(flag: string | undefined, env: string | undefined): string | undefined {
  if (flag !== undefined) return flag;
  return env !== undefined && env !== '' ? env : undefined;
}

function integer(name: string, value: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]+$/.test(value.trim())) throw new OptionError(`${name} must be a whole number, got "${value}"`);
  const n = Number(value.trim());
  if (n < min || n > max) throw new OptionError(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** Parses `argv` (without node and script) and `env`. Never throws. */
export function parseCliOptions(argv: readonly string[], env: Env): CliParse {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: true,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        static: { type: 'string' },
        path: { type: 'string' },
        'auth-secret': { type: 'string' },
        'turn-url': { type: 'string', multiple: true },
        'turn-secret': { type: 'string' },
        'turn-ttl': { type: 'string' },
        'stun-url': { type: 'string', multiple: true },
        origin: { type: 'string', multiple: true },
        'max-payload': { type: 'string' },
        'max-peers': { type: 'string' },
        'max-connections-per-ip': { type: 'string' },
        rate: { type: 'string' },
        heartbeat: { type: 'string' },
        'resume-grace': { type: 'string' },
        'resume-secret': { type: 'string' },
        'resume-token-ttl': { type: 'string' },
        'trust-proxy': { type: 'string' },
        'max-connections': { type: 'string' },
        'headers-timeout': { type: 'string' },
        'request-timeout': { type: 'string' },
        'max-held-frames': { type: 'string' },
        'max-held-bytes-per-peer': { type: 'string' },
        'max-held-bytes': { type: 'string' },
        'drain-timeout': { type: 'string' },
        redis: { type: 'string' },
        'redis-prefix': { type: 'string' },
        'redis-heartbeat-ttl': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help === true) return { kind: 'help' };
    if (positionals.length > 0) throw new OptionError(`unexpected argument "${positionals[0]}"`);

    const redisUrl = text(values.redis, env['PARLEY_REDIS_URL'] ?? env['PARLEY_REDIS']);
    if (redisUrl !== undefined && !/^rediss?:\/\/\S+$/i.test(redisUrl)) throw new OptionError(`--redis: "${redisUrl}" is not a redis:// or rediss:// URL`);
    const redisPrefix = text(values['redis-prefix'], env['PARLEY_REDIS_PREFIX']);
    const redisHeartbeatTtl = integer('--redis-heartbeat-ttl', text(values['redis-heartbeat-ttl'], env['PARLEY_REDIS_HEARTBEAT_TTL']), 30);
    if (redisUrl === undefined && (redisPrefix !== undefined || redisHeartbeatTtl !== undefined)) {
      throw new OptionError('--redis-prefix and --redis-heartbeat-ttl need --redis');
    }

    const port = integer('--port', text(values.port, env['PARLEY_PORT'] ?? env['PORT']), 0, 65_535);
    const host = text(values.host, env['PARLEY_HOST']);
    const path = text(values.path, env['PARLEY_PATH']);
    if (path !== undefined && !path.startsWith('/')) throw new OptionError('--path must start with /');

    const staticDir = text(values.static, env['PARLEY_STATIC']);
    if (staticDir !== undefined) {
      let isDirectory = false;
      try {
        isDirectory = statSync(staticDir).isDirectory();
      } catch {
        // reported below
      }
      if (!isDirectory) throw new OptionError(`--static: "${staticDir}" is not a directory`);
    }

    const authSecret = text(values['auth-secret'], env['PARLEY_AUTH_SECRET']);
    const turnUrls = list(values['turn-url'], env['PARLEY_TURN_URL']);
    const turnSecret = text(values['turn-secret'], env['PARLEY_TURN_SECRET']);
    const turnTtl = integer('--turn-ttl', text(values['turn-ttl'], env['PARLEY_TURN_TTL']), 1);
    if (turnUrls !== undefined && turnUrls.length > 0 && turnSecret === undefined) {
      throw new OptionError('--turn-url needs --turn-secret (credentials are TURN REST ones; static passwords are not sent to pages)');
    }
    if (turnSecret !== undefined && (turnUrls === undefined || turnUrls.length === 0)) {
      throw new OptionError('--turn-secret needs at least one --turn-url');
    }
    if (turnTtl !== undefined && turnSecret === undefined) throw new OptionError('--turn-ttl needs --turn-url and --turn-secret');
    for (const url of turnUrls ?? []) {
      if (!/^turns?:\S+$/i.test(url)) throw new OptionError(`--turn-url: "${url}" is not a turn: or turns: URL`);
    }
    const stunUrls = list(values['stun-url'], env['PARLEY_STUN_URL']);
    for (const url of stunUrls ?? []) {
      if (!/^stuns?:\S+$/i.test(url)) throw new OptionError(`--stun-url: "${url}" is not a stun: or stuns: URL`);
    }
    const origins = list(values.origin, env['PARLEY_ORIGIN']);
    for (const origin of origins ?? []) {
      if (!/^https?:\/\/[^/\s]+$/i.test(origin)) throw new OptionError(`--origin: "${origin}" is not an origin like https://example.com`);
    }
    const trustProxy = integer('--trust-proxy', text(values['trust-proxy'], env['PARLEY_TRUST_PROXY']), 0, 16);
    const maxConnections = integer('--max-connections', text(values['max-connections'], env['PARLEY_MAX_CONNECTIONS']), 1);
    const headersTimeoutMs = integer('--headers-timeout', text(values['headers-timeout'], env['PARLEY_HEADERS_TIMEOUT']), 1);
    const requestTimeoutMs = integer('--request-timeout', text(values['request-timeout'], env['PARLEY_REQUEST_TIMEOUT']), 1);
    const resumeQueueLimit = integer('--max-held-frames', text(values['max-held-frames'], env['PARLEY_MAX_HELD_FRAMES']), 0);
    const maxHeldBytesPerPeer = integer(
      '--max-held-bytes-per-peer',
      text(values['max-held-bytes-per-peer'], env['PARLEY_MAX_HELD_BYTES_PER_PEER']),
      0,
    );
    const maxHeldBytes = integer('--max-held-bytes', text(values['max-held-bytes'], env['PARLEY_MAX_HELD_BYTES']), 0);
    const drainTimeoutMs = integer('--drain-timeout', text(values['drain-timeout'], env['PARLEY_DRAIN_TIMEOUT']), 0);

    const maxPayload = integer('--max-payload', text(values['max-payload'], env['PARLEY_MAX_PAYLOAD']), 256, 16 * 1024 * 1024);
    const maxPeersPerRoom = integer('--max-peers', text(values['max-peers'], env['PARLEY_MAX_PEERS']), 1);
    const maxConnectionsPerIp = integer(
      '--max-connections-per-ip',
      text(values['max-connections-per-ip'], env['PARLEY_MAX_CONNECTIONS_PER_IP']),
      1,
    );
    const messagesPerSecond = integer('--rate', text(values.rate, env['PARLEY_RATE']), 1);
    const heartbeatIntervalMs = integer('--heartbeat', text(values.heartbeat, env['PARLEY_HEARTBEAT']), 10);
    const resumeGraceMs = integer('--resume-grace', text(values['resume-grace'], env['PARLEY_RESUME_GRACE']), 0);
    const resumeSecret = text(values['resume-secret'], env['PARLEY_RESUME_SECRET']);
    if (resumeSecret?.length === 0) throw new OptionError('--resume-secret must not be empty');
    const resumeTokenTtlSeconds = integer('--resume-token-ttl', text(values['resume-token-ttl'], env['PARLEY_RESUME_TOKEN_TTL']), 1);

    const options: SignalingServerOptions = {
      port: port ?? 1337,
      host: host ?? '127.0.0.1',
      ...(path !== undefined ? { path } : {}),
      ...(staticDir !== undefined ? { staticDir: resolve(staticDir) } : {}),
      ...(authSecret !== undefined ? { authSecret } : {}),
      ...(turnUrls !== undefined && turnSecret !== undefined
        ? { turn: { urls: turnUrls, secret: turnSecret, ...(turnTtl !== undefined ? { ttlSeconds: turnTtl } : {}) } }
        : {}),
      ...(stunUrls !== undefined ? { stunUrls } : {}),
      ...(origins !== undefined ? { allowedOrigins: origins } : {}),
      ...(trustProxy !== undefined && trustProxy > 0 ? { trustProxy } : {}),
      ...(maxConnections !== undefined ? { maxConnections } : {}),
      ...(headersTimeoutMs !== undefined ? { headersTimeoutMs } : {}),
      ...(requestTimeoutMs !== undefined ? { requestTimeoutMs } : {}),
      ...(resumeQueueLimit !== undefined ? { resumeQueueLimit } : {}),
      ...(maxHeldBytesPerPeer !== undefined ? { maxHeldBytesPerPeer } : {}),
      ...(maxHeldBytes !== undefined ? { maxHeldBytes } : {}),
      ...(drainTimeoutMs !== undefined ? { drainTimeoutMs } : {}),
      ...(maxPayload !== undefined ? { maxPayload } : {}),
      ...(maxPeersPerRoom !== undefined ? { maxPeersPerRoom } : {}),
      ...(maxConnectionsPerIp !== undefined ? { maxConnectionsPerIp } : {}),
      ...(messagesPerSecond !== undefined ? { messagesPerSecond } : {}),
      ...(heartbeatIntervalMs !== undefined ? { heartbeatIntervalMs } : {}),
      ...(resumeGraceMs !== undefined ? { resumeGraceMs } : {}),
      ...(resumeSecret !== undefined ? { resumeSecret } : {}),
      ...(resumeTokenTtlSeconds !== undefined ? { resumeTokenTtlSeconds } : {}),
    };
    if (redisUrl === undefined) return { kind: 'run', options };
    const ttl = redisHeartbeatTtl ?? 3000;
    const redis: RedisBrokerOptions = {
      url: redisUrl,
      ...(redisPrefix !== undefined ? { keyPrefix: redisPrefix } : {}),
      heartbeatTtlMs: ttl,
      heartbeatIntervalMs: Math.max(10, Math.floor(ttl / 3)),
      reaperIntervalMs: Math.max(10, Math.floor(ttl / 3)),
      // A dead node's peers get as long to resume elsewhere as any dropped peer gets.
      deadNodeGraceMs: resumeGraceMs ?? 10_000,
      ...(resumeQueueLimit !== undefined ? { maxHeldFrames: resumeQueueLimit } : {}),
      ...(maxHeldBytesPerPeer !== undefined ? { maxHeldBytesPerPeer } : {}),
    };
    return { kind: 'run', options, redis };
  } catch (error) {
    // parseArgs throws TypeErrors with codes such as ERR_PARSE_ARGS_UNKNOWN_OPTION.
    return { kind: 'error', message: errorMessage(error) };
  }
}
