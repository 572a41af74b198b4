// A local Parley cluster: one `redis-server` (persistence off, on a free loopback port), N
// `parley-signaling` processes on loopback ports sharing it (`--redis`) and one resume secret, and
// optionally a round-robin TCP load balancer in front of them. For the cluster tests, the
// cross-node benchmark and `npm run start:cluster`.

import { randomBytes } from 'node:crypto';
import { startLoadBalancer, type LoadBalancer } from './load-balancer.js';
import { startRedisServer, type RedisServer } from './redis-server.js';
import { startSignalingNode, type SignalingNode, type SignalingNodeOptions } from './signaling-node.js';

/** Options of `startSignalingCluster`. */
export interface SignalingClusterOptions {
  /** How many nodes. Default 3. */
  readonly nodes?: number;
  /** A running Redis to share (not stopped by `close()`). Default: one started (and stopped) here. */
  readonly redis?: RedisServer;
  /** The resume secret every node shares. Default: a random one. */
  readonly resumeSecret?: string;
  /** Node i listens on `firstPort + i`. Default: each node on a free port. */
  readonly firstPort?: number;
  /** Flags for every node (`--resume-grace`, `--static`, ...). */
  readonly args?: readonly string[];
  /** Environment variables for every node. */
  readonly env?: Readonly<Record<string, string>>;
  /** Put a load balancer in front of the nodes. Default false. */
  readonly loadBalancer?: boolean;
  /** Receives every stdout line of node `index` as it comes. */
  readonly onLine?: (index: number, line: string) => void;
  /** Receives stderr text of node `index` as it comes. */
  readonly onStderr?: (index: number, text: string) => void;
  /** How long to wait for each node's `listening`. Default 10000 ms. */
  readonly startTimeoutMs?: number;
}

/** A running local cluster. */
export interface SignalingCluster {
  readonly redis: RedisServer;
  /** The nodes, in port order. */
  readonly nodes: readonly SignalingNode[];
  /** The load balancer over every node (when `loadBalancer: true`). */
  readonly balancer: LoadBalancer | undefined;
  /** The resume secret the nodes share. */
  readonly resumeSecret: string;
  /** Kills every node still running (SIGKILL), closes the balancer and the Redis it started. */
  close(): Promise<void>;
}

/** Starts Redis (unless given), the nodes (in parallel) and, if asked, a load balancer. */
export async function startSignalingCluster(options: SignalingClusterOptions = {}): Promise<SignalingCluster> {
  const count = options.nodes ?? 3;
  if (!Number.isInteger(count) || count < 1) throw new TypeError(`startSignalingCluster: nodes must be a positive integer, got ${count}`);
  const ownRedis = options.redis === undefined;
  const redis = options.redis ?? (await startRedisServer());
  const resumeSecret = options.resumeSecret ?? randomBytes(24).toString('base64url');
  const started = await Promise.allSettled(
    Array.from({ length: count }, (_, index) => {
      const nodeOptions: SignalingNodeOptions = {
        redisUrl: redis.url,
        resumeSecret,
        port: options.firstPort === undefined ? 0 : options.firstPort + index,
        ...(options.args !== undefined ? { args: options.args } : {}),
        ...(options.env !== undefined ? { env: options.env } : {}),
        ...(options.startTimeoutMs !== undefined ? { startTimeoutMs: options.startTimeoutMs } : {}),
        ...(options.onLine !== undefined ? { onLine: (line: string) => options.onLine?.(index, line) } : {}),
        ...(options.onStderr !== undefined ? { onStderr: (text: string) => options.onStderr?.(index, text) } : {}),
      };
      return startSignalingNode(nodeOptions);
    }),
  );
  const nodes = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  let balancer: LoadBalancer | undefined;
  try {
    if (failed !== undefined) throw failed.reason;
    if (options.loadBalancer === true) balancer = await startLoadBalancer({ backends: nodes.map((node) => node.port) });
  } catch (error) {
    await Promise.all(nodes.map((node) => node.kill()));
    if (ownRedis) await redis.close();
    throw error;
  }
  return {
    redis,
    nodes,
    balancer,
    resumeSecret,
    async close() {
      await balancer?.close();
      await Promise.all(nodes.map((node) => node.kill()));
      if (ownRedis) await redis.close();
    },
  };
}
