// Node heartbeats and the dead-node reaper of the Redis broker (redis-broker.ts).
//
// Each node renews `<prefix>node:<id>:alive` (PX `heartbeatTtlMs`) every `heartbeatIntervalMs`
// and is in the live set `<prefix>nodes`. Every node runs the reaper every `reaperIntervalMs`:
// the FIND_DEAD script moves a live-set node whose heartbeat expired to the dead zset, due
// `deadNodeGraceMs` later (Redis's clock), and hands each due node to exactly one reaper, which
// removes that node's members that no other node took over (REMOVE_MEMBER) and reports each
// (`peer-left`, and `undeliverable` to the senders of frames still held for it). A member of a
// node that never comes back is gone within heartbeatTtlMs + reaperIntervalMs + deadNodeGraceMs,
// plus one reaper round trip. A reaper that fails halfway puts the node back as due: the next
// round (on any node) finishes it.
//
// A heartbeat that finds its node missing from the live set (Redis restarted, or other nodes
// found it dead after it stalled) makes the node register itself and its members again.

import type { Redis } from 'ioredis';
import { errorMessage, type Logger } from '../log.js';
import type { RedisKeys, ScriptCommands } from './scripts.js';

/** Timing of heartbeats and reaping (see the header). */
export interface LivenessTiming {
  readonly heartbeatIntervalMs: number;
  readonly heartbeatTtlMs: number;
  readonly reaperIntervalMs: number;
  readonly deadNodeGraceMs: number;
}

/** What the liveness loops ask of their broker. */
export interface LivenessHost {
  readonly nodeId: string;
  readonly cmd: Redis & ScriptCommands;
  readonly keys: RedisKeys;
  readonly log: Logger;
  /** Whether the node is registered and connected (the reaper runs only then). */
  ready(): boolean;
  /** The heartbeat found this node missing from the live set: register again. */
  lostRegistration(): void;
  /** A dead node's member was removed; `held` are the held-list entries taken with it. */
  memberReaped(room: string, id: string, removedAt: string, held: readonly (string | number)[]): void;
}

/** Writes this node's heartbeat now; resolves to true when the node was not in the live set. */
export async function writeHeartbeat(host: Pick<LivenessHost, 'cmd' | 'keys' | 'nodeId'>, ttlMs: number): Promise<boolean> {
  const { cmd, keys, nodeId } = host;
  return (await cmd.parleyHeartbeat(keys.alive(nodeId), keys.nodes, keys.dead, nodeId, ttlMs)) === 1;
}

/** Runs the heartbeat and the reaper until `stop()`. */
export class NodeLiveness {
  private heartbeat: NodeJS.Timeout | undefined;
  private reaper: NodeJS.Timeout | undefined;
  private reaping = false;

  constructor(
    private readonly host: LivenessHost,
    private readonly timing: LivenessTiming,
  ) {}

  /** Starts both loops (after the first registration). */
  start(): void {
    this.heartbeat = setInterval(() => this.beat(), this.timing.heartbeatIntervalMs);
    this.heartbeat.unref();
    this.reaper = setInterval(() => void this.reap(), this.timing.reaperIntervalMs);
    this.reaper.unref();
  }

  /** Whether the loops run. */
  get running(): boolean {
    return this.heartbeat !== undefined;
  }

  /** Stops both loops. */
  stop(): void {
    clearInterval(this.heartbeat);
    clearInterval(this.reaper);
    this.heartbeat = undefined;
    this.reaper = undefined;
  }

  private beat(): void {
    const { host } = this;
    if (host.cmd.status !== 'ready') return;
    writeHeartbeat(host, this.timing.heartbeatTtlMs).then(
      (missing) => {
        // Not in the live set: Redis restarted, or other nodes found us dead (we stalled).
        if (missing) {
          host.log({ level: 'warn', event: 'redis-node-reregister', node: host.nodeId });
          host.lostRegistration();
        }
      },
      (error: unknown) => host.log({ level: 'warn', event: 'redis-heartbeat-failed', node: host.nodeId, message: errorMessage(error) }),
    );
  }

  private async reap(): Promise<void> {
    const { host } = this;
    if (this.reaping || !host.ready()) return;
    this.reaping = true;
    try {
      const due = await host.cmd.parleyFindDead(host.keys.nodes, host.keys.dead, host.keys.prefix, this.timing.deadNodeGraceMs);
      for (const node of due) await this.reapNode(node);
    } catch (error) {
      host.log({ level: 'warn', event: 'redis-reap-failed', node: host.nodeId, message: errorMessage(error) });
    } finally {
      this.reaping = false;
    }
  }

  private async reapNode(node: string): Promise<void> {
    const { cmd, keys } = this.host;
    const membersKey = keys.members(node);
    let removed = 0;
    try {
      for (const entry of await cmd.smembers(membersKey)) {
        const at = entry.indexOf('\n');
        const room = entry.slice(0, at);
        const id = entry.slice(at + 1);
        // Removed from the node's set as it goes: a retry does only the rest.
        const out = await cmd.parleyRemoveMember(keys.room(room), keys.held(room, id), keys.heldBytes(room, id), membersKey, keys.seq, id, node, '', room);
        if (out[0] !== 1) continue;
        removed += 1;
        this.host.memberReaped(room, id, String(out[1]), out.slice(2));
      }
      await cmd.del(membersKey);
    } catch (error) {
      // Due again at once: the next reaper round, here or elsewhere, finishes it.
      await cmd.zadd(keys.dead, 0, node).catch(() => undefined);
      throw error;
    }
    this.host.log({ level: 'info', event: 'redis-node-reaped', node: this.host.nodeId, dead: node, members: removed });
  }
}
