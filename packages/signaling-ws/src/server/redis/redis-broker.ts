// The Redis broker: one room across many `parley-signaling` processes ("nodes") on one Redis 7
// or Valkey. Each node (one broker) has a random node id, two connections (commands; pub/sub
// subscriber) and subscribes to its own channel, `<prefix>node:<node>`.
//
// - Membership lives in a hash per room (scripts.ts): id -> owning node, membership epoch, join
//   order, name. The JOIN script checks id taken / name taken / room full and inserts atomically,
//   so two joins racing for the last seat on two nodes get exactly one seat.
// - publish: the PUBLISH script looks up the owner of `to` and publishes the frame on that node's
//   channel (node-channel.ts); the frames relayed in one turn of the event loop go in one script
//   call (publish-batch.ts). If no subscriber got it (the node died or is cut off), the frame is
//   held in Redis for the member, bounded (count and bytes, as on one node) with an expiry, and
//   given to whoever takes the member over; past the bound the sender gets `undeliverable`.
//   Frames from one sender to one receiver stay in order: one command connection, scripts run in
//   order, pub/sub is ordered per connection.
// - broadcast: once to each node that owns a member of the room; that node delivers locally. A
//   join announcement (`peer-joined`, broadcast by the server after the JOIN script answered)
//   carries the joiner's membership epoch: a member whose JOIN script ran later (a newer epoch)
//   listed the joiner in its welcome already and is skipped, also when the announcement reaches
//   it before its own join answer (it waits in the backlog, filtered once the epoch is known).
// - leave removes only this node's own membership (epoch): a member taken over elsewhere stays.
// - Takeover (a restore after a node died or while an old socket lingers on another node): the
//   JOIN script with `takeover` reassigns the owner, returns the frames held in Redis and sends the
//   old node a 'taken' notice; the old node, if alive, ends its session silently and sends a
//   'handover' with the frames it held in memory. The new node delivers: Redis-held frames (in the
//   join result, right after `welcome`), then the handover, then what arrived meanwhile (held
//   until the handover comes, at most `handoverTimeoutMs`). Frames that arrive for a member
//   before its join script answered are held too, and delivered after the server handled the
//   join (pub/sub and command replies travel on different connections).
// - Dead nodes: each node renews a heartbeat key (PX `heartbeatTtlMs`, every
//   `heartbeatIntervalMs`); every node runs a reaper every `reaperIntervalMs`. A node whose
//   heartbeat expired is dead: its members not taken over are kept `deadNodeGraceMs` (frames for
//   them are held in Redis meanwhile, so their peers can resume on another node), then removed
//   with `peer-left`, and the senders of frames held for them get `undeliverable`. A member of a
//   node that never comes back is gone from its room within
//   heartbeatTtlMs + reaperIntervalMs + deadNodeGraceMs (+ one reaper round trip).
// - Redis goes away: ioredis reconnects (backoff capped at `maxReconnectDelayMs`); while it is not
//   ready, join and publish reject at once (the server answers `undeliverable` / closes the join)
//   and `ready()` is false (`/readyz` 503). When both connections are ready again, the node renews
//   its heartbeat and writes all its local members back (forced: no cap check; Redis may have
//   restarted empty), then is ready.
// - Revocations: `SET <prefix>revoked:<key> 1 NX PX` / EXISTS, shared by every node.
//
// Limits: the room-size cap and name uniqueness are cluster-wide (JOIN script). Per-address
// connection caps, rate limits, the held-bytes budget and the WebSocket cap stay per node: they
// protect that process's sockets and memory, and a shared counter would put a Redis round trip
// on every upgrade and frame. Frames a node held in memory for a session in grace are lost if
// that node is killed (a takeover after kill -9 finds only what was held in Redis).
//
// Why ioredis: reconnects on its own with a backoff we bound and resubscribes, defineCommand runs
// scripts by EVALSHA and falls back to EVAL on NOSCRIPT (after a restart), auto-pipelining keeps
// one ordered connection busy, and it speaks plain RESP2 to Redis 7 and Valkey alike.

import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { PeerInfo } from '../../protocol.js';
import { wireFrameText } from '../broker.js';
import type { BroadcastNews, Broker, BrokerJoinResult, Deliver, HeldFrame, JoinOptions, WireFrame } from '../broker.js';
import { errorMessage, safeLogger, silentLogger, type Logger } from '../log.js';
import { peerLeftFrame, undeliverableFrame } from '../notices.js';
import { broadcastMessage, decodeHeldEntry, decodeNodeMessage, handoverMessage, type NodeMessage } from './node-channel.js';
import { NodeLiveness, writeHeartbeat } from './node-liveness.js';
import { PublishBatch } from './publish-batch.js';
import { redisKeys, SCRIPTS, type RedisKeys, type ScriptCommands } from './scripts.js';

/** Options of `createRedisBroker`. */
export interface RedisBrokerOptions {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://`). */
  readonly url: string;
  /** Prefix of every key and channel. Default `parley:`. */
  readonly keyPrefix?: string;
  /** This node's id. Default: 16 random hex characters. */
  readonly nodeId?: string;
  /** How often the heartbeat is renewed. Default 1000 ms. */
  readonly heartbeatIntervalMs?: number;
  /** How long a heartbeat lives: a node silent this long is dead. Default 3000 ms. */
  readonly heartbeatTtlMs?: number;
  /** How often this node looks for dead nodes. Default 1000 ms. */
  readonly reaperIntervalMs?: number;
  /** How long a dead node's members stay (for a resume elsewhere) before `peer-left`. Default 10000 ms (the server's resume grace). */
  readonly deadNodeGraceMs?: number;
  /** How long a takeover waits for the old node's handover. Default 2000 ms. */
  readonly handoverTimeoutMs?: number;
  /** Frames held in Redis per member (as `resumeQueueLimit`). Default 64. */
  readonly maxHeldFrames?: number;
  /** Bytes held in Redis per member (as `maxHeldBytesPerPeer`). Default 262144. */
  readonly maxHeldBytesPerPeer?: number;
  /** How long `createRedisBroker` waits for Redis. Default 10000 ms. */
  readonly connectTimeoutMs?: number;
  /** Upper bound of the reconnect backoff. Default 500 ms. */
  readonly maxReconnectDelayMs?: number;
  /** Log events (`redis-*`). Default: none. */
  readonly logger?: Logger;
}

/** A Broker over Redis, shared by every node on the same Redis and key prefix. */
export interface RedisBroker extends Broker {
  /** This node's id (its channel is `<prefix>node:<id>`). */
  readonly nodeId: string;
  /** True while both connections are up and this node is registered. */
  ready(): boolean;
  /** As `Broker.join`; rejects at once while not ready. */
  join(room: string, member: PeerInfo, maxPeers: number, deliver: Deliver, options?: JoinOptions): Promise<BrokerJoinResult>;
  /** As `Broker.leave`. */
  leave(room: string, id: string, deliver: Deliver): Promise<boolean>;
  /** As `Broker.members`: cluster-wide, in join order. */
  members(room: string): Promise<readonly PeerInfo[]>;
  /** As `Broker.publish` (held in Redis if the member's node is gone); rejects at once while not ready. */
  publish(room: string, to: string, frame: WireFrame, from?: string): Promise<boolean>;
  /** Relayed frames cross Redis as the bytes they came as, and reach the receiver's socket so. */
  readonly takesBytes: true;
  /** As `Broker.broadcast`. */
  broadcast(room: string, frame: string, except?: string, news?: BroadcastNews): Promise<void>;
  /** As `Broker.revoke`, cluster-wide. */
  revoke(key: string, untilMs: number, nowMs: number): Promise<boolean>;
  /** As `Broker.isRevoked`, cluster-wide. */
  isRevoked(key: string, nowMs: number): Promise<boolean>;
  /** Counts of this node's members (not cluster-wide). */
  stats(): { readonly rooms: number; readonly members: number };
  /** Stops the heartbeat and closes both connections. Members are not removed: close the server first. */
  close(): Promise<void>;
  /**
   * For tests: stops the heartbeat and reaper and drops both connections at once without leaving
   * anything, as a process killed with SIGKILL would.
   */
  crash(): void;
}

/** A member of a room whose session lives on this node. */
interface LocalMember {
  readonly room: string;
  readonly id: string;
  readonly name: string;
  readonly deliver: Deliver;
  readonly onTakenOver: (() => readonly HeldFrame[]) | undefined;
  epoch: string;
  order: string;
  /** joining: the JOIN script has not answered or the server has not handled it; awaiting-handover: a takeover waits for the old node; live. */
  phase: 'joining' | 'awaiting-handover' | 'live';
  /** Frames that came while not live, delivered when it goes live. */
  backlog: BacklogFrame[];
  /** A handover that arrived before the join answered. */
  handover: readonly HeldFrame[] | undefined;
  timer: NodeJS.Timeout | undefined;
}

/** A frame waiting for a member to go live; `olderThan` marks news of another member (see `needsNews`). */
interface BacklogFrame extends HeldFrame {
  readonly olderThan?: string;
}

/**
 * Whether member `m` (its epoch known) needs news of an event numbered `olderThan` (a join's
 * epoch, a removal's sequence number): a membership that began later had its outcome in its
 * welcome (the joiner listed, the removed member not).
 */
function needsNews(m: { readonly epoch: string }, olderThan: string | undefined): boolean {
  return olderThan === undefined || Number(m.epoch) < Number(olderThan);
}

/** How long a departure during a Redis outage is kept for nodes that register again later. */
const DEPARTED_TTL_MS = 60_000;

/** Frames kept for a member that is not live yet; past it the sender gets `undeliverable`. */
const BACKLOG_LIMIT = 1024;


class RedisBrokerImpl implements RedisBroker {
  readonly nodeId: string;
  readonly takesBytes = true;
  /** Used by the liveness loops (node-liveness.ts) too. */
  readonly keys: RedisKeys;
  readonly cmd: Redis & ScriptCommands;
  readonly log: Logger;
  private readonly sub: Redis;
  private readonly liveness: NodeLiveness;
  private readonly batch: PublishBatch;
  private readonly local = new Map<string, Map<string, LocalMember>>();
  private memberCount = 0;
  /** Members whose leave could not reach Redis ("<room>\n<id>"): their room is told once Redis is back. */
  private readonly departed = new Map<string, { readonly room: string; readonly id: string }>();
  /** Members this node just removed ("<room>\n<id>" -> the removal's sequence number), for their `peer-left` broadcast. */
  private readonly removedAt = new Map<string, string>();
  private registered = false;
  /** The last connection error, for the message of a start that timed out. */
  lastError: string | undefined;
  private registering: Promise<void> | undefined;
  private closed = false;
  private readonly heartbeatTtlMs: number;
  private readonly handoverTimeoutMs: number;
  private readonly maxHeldFrames: number;
  private readonly maxHeldBytes: number;
  private readonly heldTtlMs: number;

  constructor(options: RedisBrokerOptions) {
    this.nodeId = options.nodeId ?? randomBytes(8).toString('hex');
    this.keys = redisKeys(options.keyPrefix ?? 'parley:');
    this.log = safeLogger(options.logger ?? silentLogger);
    const timing = {
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 1000,
      heartbeatTtlMs: options.heartbeatTtlMs ?? 3000,
      reaperIntervalMs: options.reaperIntervalMs ?? 1000,
      deadNodeGraceMs: options.deadNodeGraceMs ?? 10_000,
    };
    this.heartbeatTtlMs = timing.heartbeatTtlMs;
    this.handoverTimeoutMs = options.handoverTimeoutMs ?? 2000;
    this.maxHeldFrames = options.maxHeldFrames ?? 64;
    this.maxHeldBytes = options.maxHeldBytesPerPeer ?? 256 * 1024;
    // Held frames outlive the member's dead-node grace: the reaper takes them then (and tells their senders).
    this.heldTtlMs = 2 * (timing.heartbeatTtlMs + timing.reaperIntervalMs + timing.deadNodeGraceMs) + 60_000;
    const maxDelay = options.maxReconnectDelayMs ?? 500;
    const common: RedisOptions = {
      // Back well within seconds of Redis returning.
      retryStrategy: (times) => Math.min(50 * times, maxDelay),
      connectTimeout: options.connectTimeoutMs ?? 10_000,
      lazyConnect: true,
    };
    // Commands fail at once while Redis is away (no unbounded offline queue), and a command in
    // flight when the connection drops is failed, not sent twice.
    this.cmd = new Redis(options.url, { ...common, enableOfflineQueue: false, maxRetriesPerRequest: 0, enableAutoPipelining: true }) as Redis & ScriptCommands;
    this.sub = new Redis(options.url, { ...common, autoResubscribe: true, maxRetriesPerRequest: null });
    for (const [name, script] of Object.entries(SCRIPTS)) this.cmd.defineCommand(name, script);
    for (const [role, connection] of [['commands', this.cmd], ['subscriber', this.sub]] as const) {
      connection.on('error', (error: unknown) => {
        this.lastError = errorMessage(error);
        this.log({ level: 'warn', event: 'redis-error', role, message: this.lastError });
      });
      connection.on('close', () => this.lost(role));
      connection.on('ready', () => this.connected(role));
    }
    // As bytes: a relayed frame goes on to its socket as the bytes it came as (no 'message' listener, so ioredis decodes nothing).
    this.sub.on('messageBuffer', (_channel: Buffer, message: Buffer) => this.onMessage(message));
    this.batch = new PublishBatch(this.cmd, this.keys.prefix, { maxHeldFrames: this.maxHeldFrames, maxHeldBytes: this.maxHeldBytes, heldTtlMs: this.heldTtlMs });
    this.liveness = new NodeLiveness(
      {
        nodeId: this.nodeId,
        cmd: this.cmd,
        keys: this.keys,
        log: this.log,
        ready: () => this.ready(),
        lostRegistration: () => {
          this.registered = false;
          void this.register();
        },
        memberReaped: (room, id, removedAt, held) => {
          this.tellSendersOf(room, id, held, 'the peer did not come back');
          this.broadcastNow(room, peerLeftFrame(id), id, removedAt);
        },
      },
      timing,
    );
  }

  /** Connects, subscribes and registers; rejects (and closes) if Redis does not answer in time. */
  async start(): Promise<void> {
    // ioredis retries (retryStrategy) until it connects: a Redis that starts a moment later is fine.
    const connections = [this.cmd, this.sub];
    const ready = connections.map((c) => new Promise<void>((resolve) => c.once('ready', () => resolve())));
    for (const c of connections) c.connect().catch(() => undefined);
    await Promise.all(ready);
    await this.register();
    if (!this.registered) throw new Error(`could not register with Redis: ${this.lastError ?? 'connection lost'}`);
    this.liveness.start();
  }

  ready(): boolean {
    return this.registered && !this.closed && this.cmd.status === 'ready' && this.sub.status === 'ready';
  }

  private notReady(): Error {
    return new Error('Redis broker not ready (Redis unreachable or re-registering)');
  }

  // ---- connection lifecycle ----

  private lost(role: string): void {
    if (this.closed) return;
    if (this.registered) this.log({ level: 'warn', event: 'redis-lost', node: this.nodeId, role });
    this.registered = false;
  }

  private connected(role: string): void {
    if (this.closed || !this.liveness.running) return; // the first connect registers in start()
    this.log({ level: 'info', event: 'redis-ready', node: this.nodeId, role });
    if (this.cmd.status === 'ready' && this.sub.status === 'ready') void this.register();
  }

  /** Heartbeat, node set and every local member written back (forced); then ready. */
  private register(): Promise<void> {
    // Not connected: the next 'ready' registers.
    if (this.closed || this.cmd.status !== 'ready' || this.sub.status !== 'ready') return Promise.resolve();
    this.registering ??= this.doRegister().finally(() => (this.registering = undefined));
    return this.registering;
  }

  private async doRegister(): Promise<void> {
    try {
      // Subscribed (again) before the held lists are taken: what is published from then on comes live.
      await this.sub.subscribe(this.keys.channel(this.nodeId));
      await writeHeartbeat(this, this.heartbeatTtlMs);
      await this.reregister();
      // The subscriber may have dropped while we wrote: register again when it is back.
      this.registered = this.cmd.status === 'ready' && this.sub.status === 'ready';
      if (this.registered) this.log({ level: 'info', event: 'redis-registered', node: this.nodeId, members: this.memberCount });
    } catch (error) {
      this.log({ level: 'warn', event: 'redis-register-failed', node: this.nodeId, message: errorMessage(error) });
      // E.g. Redis went away again halfway: try again soon (a new 'ready' also does).
      if (this.liveness.running) setTimeout(() => void this.register(), 250).unref();
    }
  }

  private async reregister(): Promise<void> {
    const args: (string | number)[] = [this.keys.members(this.nodeId), this.keys.seq, this.nodeId, this.keys.prefix];
    for (const members of this.local.values()) {
      for (const m of members.values()) if (m.phase !== 'joining') args.push(m.room, m.id, m.name, m.epoch, m.order);
    }
    const out = await this.cmd.parleyReregister(...args);
    for (let i = 0; i < out.length; ) {
      const what = out[i];
      const room = String(out[i + 1]);
      const id = String(out[i + 2]);
      if (what === 'taken') {
        // Taken over elsewhere while Redis was away from us: end here silently, hand over.
        const newNode = String(out[i + 3]);
        i += 4;
        this.takenOver(room, id, newNode);
      } else if (what === 'held') {
        const count = Number(out[i + 3]);
        const entries = out.slice(i + 4, i + 4 + count).map((e) => decodeHeldEntry(String(e)));
        i += 4 + count;
        const m = this.local.get(room)?.get(id);
        for (const f of entries) {
          if (m !== undefined) this.toMember(m, f.frame, f.from);
          else this.tellUndeliverable(room, id, f.from, 'the peer has left');
        }
      } else if (what === 'departed') {
        // Left another node while Redis was away from it; that node told the room before we were back.
        i += 3;
        this.deliverLocally(room, peerLeftFrame(id), id, undefined);
      } else {
        // 'gone': its leave failed while Redis was away.
        i += 3;
        this.departed.set(`${room}\n${id}`, { room, id });
      }
    }
    // Left while Redis was away (perhaps a Redis that restarted empty, which knows nothing of
    // them): told to the nodes registered by now, and recorded for those that register later.
    const departed = [...this.departed.values()];
    this.departed.clear();
    for (const { room, id } of departed) {
      await this.cmd.parleyBroadcast(this.keys.room(room), this.keys.departed(room), broadcastMessage(room, peerLeftFrame(id), id), this.keys.prefix, id, DEPARTED_TTL_MS);
    }
  }

  /** Tells each distinct sender of held entries that its frames to `id` were not delivered. */
  private tellSendersOf(room: string, id: string, entries: readonly (string | number)[], why: string): void {
    const told = new Set<string>();
    for (const entry of entries) {
      const { from } = decodeHeldEntry(String(entry));
      if (from === undefined || told.has(from)) continue;
      told.add(from);
      this.tellUndeliverable(room, id, from, why);
    }
  }

  private tellUndeliverable(room: string, to: string, from: string | undefined, why: string): void {
    if (from === undefined) return;
    this.log({ level: 'warn', event: 'undeliverable', peer: to, room, from, why });
    this.publish(room, from, undeliverableFrame(to, why)).catch((error: unknown) =>
      this.log({ level: 'warn', event: 'redis-publish-failed', node: this.nodeId, message: errorMessage(error) }),
    );
  }

  private broadcastNow(room: string, frame: string, except: string | undefined, olderThan?: string): void {
    this.broadcastRaw(room, frame, except, olderThan).catch((error: unknown) =>
      this.log({ level: 'warn', event: 'redis-broadcast-failed', node: this.nodeId, message: errorMessage(error) }),
    );
  }

  // ---- messages from other nodes ----

  private onMessage(message: Buffer): void {
    const decoded = decodeNodeMessage(message);
    if (decoded === undefined) {
      this.log({ level: 'warn', event: 'redis-bad-message', node: this.nodeId });
      return;
    }
    this.handle(decoded);
  }

  private handle(message: NodeMessage): void {
    switch (message.kind) {
      case 'deliver': {
        const m = this.local.get(message.room)?.get(message.to);
        // It left here and its leave has not reached Redis yet: its sender is told.
        if (m === undefined) this.tellUndeliverable(message.room, message.to, message.from, 'the peer has left');
        else this.toMember(m, message.frame, message.from);
        return;
      }
      case 'broadcast':
        this.deliverLocally(message.room, message.frame, message.except, message.olderThan);
        return;
      case 'taken':
        this.takenOver(message.room, message.id, message.newNode);
        return;
      case 'handover': {
        const m = this.local.get(message.room)?.get(message.id);
        if (m === undefined) {
          for (const f of message.frames) this.tellUndeliverable(message.room, message.id, f.from, 'the peer has left');
          return;
        }
        if (m.phase === 'joining') m.handover = message.frames;
        else if (m.phase === 'awaiting-handover') this.goLive(m, message.frames);
        return;
      }
    }
  }

  /** A room frame to this node's members of `room` but `except` (for a join announcement, those older than it). */
  private deliverLocally(room: string, frame: WireFrame, except: string | undefined, olderThan: string | undefined): void {
    const members = this.local.get(room);
    if (members === undefined) return;
    for (const m of members.values()) {
      if (m.id === except) continue;
      if (m.epoch === '') this.toBacklog(m, { frame: wireFrameText(frame), from: undefined, ...(olderThan !== undefined ? { olderThan } : {}) });
      else if (needsNews(m, olderThan)) this.toMember(m, frame, undefined);
    }
  }

  /** Another node took member `id` over: end its session here silently and hand its frames over. */
  private takenOver(room: string, id: string, newNode: string): void {
    const m = this.local.get(room)?.get(id);
    if (m?.phase === 'joining') {
      // Its join has run (the takeover found it) but the server has not handled the answer yet.
      setImmediate(() => this.takenOver(room, id, newNode));
      return;
    }
    let frames: HeldFrame[] = [];
    if (m !== undefined) {
      this.removeLocal(m);
      frames = [...(m.onTakenOver?.() ?? []), ...m.backlog];
    }
    // Always answer, so that the new owner does not wait out its handover timeout.
    this.batch.flush();
    this.cmd.publish(this.keys.channel(newNode), handoverMessage(room, id, this.nodeId, frames)).catch((error: unknown) => {
      this.log({ level: 'warn', event: 'redis-handover-failed', node: this.nodeId, message: errorMessage(error) });
      for (const f of frames) this.tellUndeliverable(room, id, f.from, 'the peer moved to another server');
    });
  }

  private toMember(m: LocalMember, frame: WireFrame, from: string | undefined): void {
    if (m.phase === 'live') {
      m.deliver(frame, from);
      return;
    }
    this.toBacklog(m, { frame: wireFrameText(frame), from });
  }

  private toBacklog(m: LocalMember, entry: BacklogFrame): void {
    if (m.backlog.length >= BACKLOG_LIMIT) {
      this.tellUndeliverable(m.room, m.id, entry.from, 'too many frames while the peer joins');
      return;
    }
    m.backlog.push(entry);
  }

  private goLive(m: LocalMember, handedOver: readonly HeldFrame[]): void {
    if (m.phase === 'live') return;
    clearTimeout(m.timer);
    m.timer = undefined;
    m.phase = 'live';
    const backlog = m.backlog;
    m.backlog = [];
    // Delivered even if the session ended meanwhile: it then tells each sender `undeliverable`.
    for (const f of handedOver) m.deliver(f.frame, f.from);
    for (const f of backlog) if (needsNews(m, f.olderThan)) m.deliver(f.frame, f.from);
  }

  private addLocal(m: LocalMember): void {
    let members = this.local.get(m.room);
    if (members === undefined) {
      members = new Map();
      this.local.set(m.room, members);
    }
    members.set(m.id, m);
    this.memberCount += 1;
  }

  private removeLocal(m: LocalMember): void {
    const members = this.local.get(m.room);
    if (members?.get(m.id) !== m) return;
    members.delete(m.id);
    this.memberCount -= 1;
    if (members.size === 0) this.local.delete(m.room);
    clearTimeout(m.timer);
  }

  // ---- Broker ----

  async join(room: string, member: PeerInfo, maxPeers: number, deliver: Deliver, options?: JoinOptions): Promise<BrokerJoinResult> {
    if (!this.ready()) throw this.notReady();
    const existing = this.local.get(room)?.get(member.id);
    if (existing !== undefined) return this.takeOverLocally(existing, member, deliver, options);
    const m: LocalMember = {
      room,
      id: member.id,
      name: member.name,
      deliver,
      onTakenOver: options?.onTakenOver,
      epoch: '',
      order: '',
      phase: 'joining',
      backlog: [],
      handover: undefined,
      timer: undefined,
    };
    // Local before the script runs: a frame routed here once it has run waits in the backlog.
    this.addLocal(m);
    let out: (string | number)[];
    try {
      this.batch.flush();
      out = await this.cmd.parleyJoin(
        this.keys.room(room),
        this.keys.seq,
        this.keys.held(room, member.id),
        this.keys.heldBytes(room, member.id),
        this.keys.members(this.nodeId),
        member.id,
        member.name,
        this.nodeId,
        maxPeers,
        options?.takeover === true ? '1' : '0',
        this.keys.prefix,
        room,
      );
    } catch (error) {
      this.removeLocal(m);
      throw error;
    }
    if (out[0] !== 'ok') {
      this.removeLocal(m);
      return { ok: false, reason: out[0] as 'name-taken' | 'id-taken' | 'room-full' };
    }
    const takenOver = out[1] === 1;
    const oldNodeListens = Number(out[2]) > 0;
    m.epoch = String(out[3]);
    // A takeover keeps the member's first join's order.
    m.order = String(out[4]);
    const count = Number(out[5]);
    const peers: PeerInfo[] = [];
    for (let i = 0; i < count; i += 1) peers.push({ id: String(out[6 + 2 * i]), name: String(out[7 + 2 * i]) });
    const held = out.slice(6 + 2 * count).map((e) => decodeHeldEntry(String(e)));
    if (takenOver && oldNodeListens && m.handover === undefined) {
      m.phase = 'awaiting-handover';
      m.timer = setTimeout(() => {
        this.log({ level: 'warn', event: 'redis-handover-timeout', node: this.nodeId, peer: member.id, room });
        this.goLive(m, []);
      }, this.handoverTimeoutMs);
      m.timer.unref();
    } else {
      // After the server handled this answer (its welcome goes first): a macrotask later.
      setImmediate(() => this.goLive(m, m.handover ?? []));
    }
    return takenOver ? { ok: true, peers, takenOver: true, held } : { ok: true, peers, held };
  }

  /** A takeover of a member of this very node (two servers on one broker): Redis already says this node owns it. */
  private async takeOverLocally(existing: LocalMember, member: PeerInfo, deliver: Deliver, options?: JoinOptions): Promise<BrokerJoinResult> {
    if (options?.takeover !== true || existing.name !== member.name || existing.phase === 'joining') return { ok: false, reason: 'id-taken' };
    this.removeLocal(existing);
    const held = [...(existing.onTakenOver?.() ?? []), ...existing.backlog];
    const m: LocalMember = { ...existing, deliver, onTakenOver: options.onTakenOver, phase: 'joining', backlog: [], handover: undefined, timer: undefined };
    this.addLocal(m);
    let peers: readonly PeerInfo[];
    try {
      peers = (await this.members(existing.room)).filter((p) => p.id !== member.id);
    } catch (error) {
      this.removeLocal(m); // re-registering reports it gone
      throw error;
    }
    setImmediate(() => this.goLive(m, []));
    return { ok: true, peers, takenOver: true, held };
  }

  async leave(room: string, id: string, deliver: Deliver): Promise<boolean> {
    const m = this.local.get(room)?.get(id);
    if (m === undefined || m.deliver !== deliver) return false;
    this.removeLocal(m);
    for (const f of m.backlog) this.tellUndeliverable(room, id, f.from, 'the peer has left');
    let out: (string | number)[];
    try {
      if (!this.ready()) throw this.notReady();
      this.batch.flush(); // frames it sent before it left go first
      out = await this.cmd.parleyRemoveMember(this.keys.room(room), this.keys.held(room, id), this.keys.heldBytes(room, id), this.keys.members(this.nodeId), this.keys.seq, id, this.nodeId, m.epoch, room);
    } catch (error) {
      // Re-registering removes it from Redis and tells its room.
      this.departed.set(`${room}\n${id}`, { room, id });
      throw error;
    }
    if (out[0] !== 1) return false;
    // For the server's `peer-left` broadcast that follows (see newsOf).
    this.removedAt.set(`${room}\n${id}`, String(out[1]));
    this.tellSendersOf(room, id, out.slice(2), 'the peer has left');
    return true;
  }

  async members(room: string): Promise<readonly PeerInfo[]> {
    if (!this.ready()) throw this.notReady();
    const all = await this.cmd.hgetall(this.keys.room(room));
    return Object.entries(all)
      .map(([id, v]) => {
        const [, , order = '0', ...name] = v.split('\n');
        return { order: Number(order), id, name: name.join('\n') };
      })
      .sort((a, b) => a.order - b.order)
      .map(({ id, name }) => ({ id, name }));
  }

  publish(room: string, to: string, frame: WireFrame, from?: string): Promise<boolean> {
    if (!this.ready()) return Promise.reject(this.notReady());
    // One promise per frame on this path, the one returned.
    return new Promise((resolve, reject) => {
      this.batch.add(room, to, frame, from, {
        resolve: (result) => {
          if (result === 2) this.tellUndeliverable(room, to, from, 'the peer is reconnecting and too much is held for it');
          resolve(result !== 0);
        },
        reject,
      });
    });
  }

  async broadcast(room: string, frame: string, except?: string, news?: BroadcastNews): Promise<void> {
    if (!this.ready()) throw this.notReady();
    await this.broadcastRaw(room, frame, except, except === undefined || news === undefined ? undefined : this.newsOf(room, except, news));
  }

  /** The BROADCAST script for a room frame; `olderThan` for news of `except` (see deliverLocally). */
  private async broadcastRaw(room: string, frame: string, except: string | undefined, olderThan: string | undefined): Promise<void> {
    if (!this.ready()) throw this.notReady();
    this.batch.flush(); // frames relayed before this notice go first
    await this.cmd.parleyBroadcast(this.keys.room(room), this.keys.departed(room), broadcastMessage(room, frame, except, olderThan), this.keys.prefix, '', 0);
  }

  /**
   * The event number of news about member `id` (see `deliverLocally`): the epoch of its membership
   * for its join, the sequence number of its removal by this node for its leave.
   */
  private newsOf(room: string, id: string, news: BroadcastNews): string | undefined {
    if (news === 'joined') {
      const epoch = this.local.get(room)?.get(id)?.epoch;
      return epoch === '' ? undefined : epoch;
    }
    const key = `${room}\n${id}`;
    const removedAt = this.removedAt.get(key);
    this.removedAt.delete(key);
    return removedAt;
  }

  async revoke(key: string, untilMs: number, nowMs: number): Promise<boolean> {
    const set = await this.cmd.set(this.keys.revoked(key), '1', 'PX', Math.max(1, Math.ceil(untilMs - nowMs)), 'NX');
    return set === 'OK';
  }

  async isRevoked(key: string, _nowMs: number): Promise<boolean> {
    return (await this.cmd.exists(this.keys.revoked(key))) === 1;
  }

  stats(): { rooms: number; members: number } {
    return { rooms: this.local.size, members: this.memberCount };
  }

  private stopTimers(): void {
    this.closed = true;
    this.registered = false;
    this.liveness.stop();
    for (const members of this.local.values()) for (const m of members.values()) clearTimeout(m.timer);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.stopTimers();
    await Promise.allSettled([this.sub.quit(), this.cmd.quit()]);
    this.cmd.disconnect();
    this.sub.disconnect();
  }

  crash(): void {
    this.stopTimers();
    this.cmd.disconnect();
    this.sub.disconnect();
  }
}

/**
 * Connects a Redis broker (Redis 7 or Valkey) and registers this node; resolves once it is ready,
 * rejects (with both connections closed) if Redis does not answer within `connectTimeoutMs`.
 * Give it to `createSignalingServer({ broker })`; one broker per server. See the header of
 * src/server/redis/redis-broker.ts for the design and its bounds.
 */
export async function createRedisBroker(options: RedisBrokerOptions): Promise<RedisBroker> {
  const broker = new RedisBrokerImpl(options);
  const timeoutMs = options.connectTimeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      broker.start(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const why = broker.lastError === undefined ? '' : ` (${broker.lastError})`;
          reject(new Error(`Redis at ${redactedUrl(options.url)} did not answer within ${timeoutMs} ms${why}`));
        }, timeoutMs);
      }),
    ]);
  } catch (error) {
    broker.crash();
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return broker;
}

/** The URL without its password, for messages. */
function redactedUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}
