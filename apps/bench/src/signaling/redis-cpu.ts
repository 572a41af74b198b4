// The redis-server the cross-node subjects share, and what it spent: its own CPU time and the
// commands it ran, read with INFO (https://redis.io/docs/latest/commands/info/) on a connection
// of the bench's own, so that what limits a cross-node relay is measured on Redis's side too.

import { startRedisServer } from '@parley/signaling-ws/testing';
import type { RedisServer } from '@parley/signaling-ws/testing';
import { Redis } from 'ioredis';

/**
 * Seconds of CPU (`used_cpu_sys` + `used_cpu_user`: the whole process, every thread) in the text
 * of `INFO cpu`.
 */
export function parseInfoCpuSeconds(info: string): number {
  const field = (name: string): number => {
    const match = new RegExp(`^${name}:([0-9.]+)\\r?$`, 'm').exec(info);
    if (match === null) throw new Error(`INFO cpu has no ${name}: ${info.slice(0, 200)}`);
    return Number(match[1]);
  };
  return field('used_cpu_sys') + field('used_cpu_user');
}

/**
 * Calls per command in the text of `INFO commandstats` (lines `cmdstat_publish:calls=3,usec=...`),
 * command names in lower case.
 */
export function parseCommandCalls(info: string): Map<string, number> {
  const calls = new Map<string, number>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),/gm)) calls.set(match[1]!, Number(match[2]));
  return calls;
}

/** The calls of each command between two `parseCommandCalls` readings (commands with none left out). */
export function commandCallsBetween(before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>): Map<string, number> {
  const delta = new Map<string, number>();
  for (const [command, calls] of after) {
    const n = calls - (before.get(command) ?? 0);
    if (n > 0) delta.set(command, n);
  }
  return delta;
}

/** A real redis-server (on a free loopback port) with a connection that reads its INFO. */
export class RedisCpu {
  private constructor(
    private readonly server: RedisServer,
    private readonly client: Redis,
  ) {}

  static async start(): Promise<RedisCpu> {
    const server = await startRedisServer();
    const client = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await client.connect();
    } catch (error) {
      await server.close();
      throw error;
    }
    return new RedisCpu(server, client);
  }

  /** `redis://127.0.0.1:PORT` */
  get url(): string {
    return this.server.url;
  }

  /** Redis's CPU time so far, seconds. */
  async cpuSeconds(): Promise<number> {
    return parseInfoCpuSeconds(await this.client.info('cpu'));
  }

  /** Calls per command so far (INFO commandstats). */
  async commandCalls(): Promise<Map<string, number>> {
    return parseCommandCalls(await this.client.info('commandstats'));
  }

  async close(): Promise<void> {
    this.client.disconnect();
    await this.server.close();
  }
}
