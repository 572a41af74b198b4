// Issue 13's goals for the signaling relay across nodes: the same load through two Parley nodes
// on one Redis (each pair's two clients on different nodes) against one Parley node, and against
// socket.io's usual answer (two socket.io nodes on @socket.io/redis-adapter over the same Redis).
// Pure: the figures in, the goals and the notes out.

import { round } from '../stats.js';
import type { GoalRatio } from '../types.js';

/** Issue 13: two Parley nodes relay at least 0.6 of one node's messages per second. */
export const CROSS_NODE_OVER_SINGLE_NODE_GOAL = 0.6;
/** Issue 13: p99 relay latency across nodes at most 3 ms at the latency runs' offered load. */
export const CROSS_NODE_P99_MS_GOAL = 3;
/** Issue 13: two Parley nodes relay at least as many messages per second as two socket.io nodes. */
export const CROSS_NODE_OVER_SOCKET_IO_GOAL = 1;

/** What the cross-node goals read of one subject's results. */
export interface RelayFigures {
  readonly msgsPerSecondMedian: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Server processes together (both nodes), per relayed message. */
  readonly serverCpuUsPerMsg: number;
  readonly serverCpuShare: number;
  readonly loadCpuShare: number;
  readonly redisCpuUsPerMsg?: number;
  readonly redisCpuShare?: number;
  readonly redisCommandsPerMsg?: Readonly<Record<string, number>>;
  /** `peer-joined` frames that repeated what the receiver's welcome said. */
  readonly repeatedPeerJoined: number;
}

export interface CrossNodeInput {
  /** One Parley node (the single-node row of the same run, same load). */
  readonly single: RelayFigures;
  /** Two Parley nodes on Redis. */
  readonly parley: RelayFigures;
  /** Two socket.io nodes on the Redis adapter. */
  readonly socketIo: RelayFigures;
  /** The latency runs' offered load, msgs/s. */
  readonly latencyRate: number;
}

export interface CrossNodeResult {
  /** The goal keys and, not goals, the same ratios per second of relay CPU (nodes and Redis). */
  readonly json: {
    readonly crossNodeOverSingleNode: number;
    readonly crossNodeP99Ms: number;
    readonly crossNodeOverSocketIo: number;
    readonly crossNodeCapacityOverSingleNode: number;
    readonly crossNodeCapacityOverSocketIo: number;
    /** One node's CPU per message over one cross node's half of it: a projection for a core per node. */
    readonly crossNodeCeilingOverSingleNode: number;
  };
  readonly goals: readonly GoalRatio[];
  readonly notes: readonly string[];
}

const fmt = (value: number): string => String(round(value));

/**
 * What profiles of the nodes showed (`node dist/signaling/profile.js SUBJECTS SECONDS DIR`, which
 * runs each server process with `node --cpu-prof` and summarizes its profile, and `MODE=open`
 * for the latency runs' load; 2026-12-07, on this shared 2-core machine). Figures in the notes
 * next to these come from the run itself.
 */
export const PROFILE_FINDINGS = {
  parleyThroughput:
    "In node --cpu-prof profiles of a Parley node under this closed loop (profile.js parleyCluster, samples by the package that asked for the time; the broker sends the frames of one event-loop turn in one EVALSHA of its PUBLISH script, about 55 frames a call here; frames cross Redis as the bytes they came as, and the receiving node reads its channel as bytes): ioredis about 28-30 % (writing the batched commands, the frames' bytes copied into them about 5 %; on the receiving node, parsing the pub/sub messages, one per frame, out of RESP), Parley about 40 % and ws about 12 % (the WebSocket side, which one node does too), garbage collection about 10 % (each frame is copied into a command and out of a reply). So the Redis client about doubles a node's work per message, on both nodes, while Redis runs one PUBLISH per frame (with an HGET of the owner, inside the script), well within its one core.",
  parleyLatency:
    "Each message crosses three event loops (the sending node, Redis, the receiving node) instead of one, and the nodes' loops are busier: in profiles at this offered load (profile.js with MODE=open) the two nodes spent about 3x one node's CPU per message (at this rate a script call carries one or two frames: little to batch) and each had about twice as many busy stretches of 5 ms or more per second as one node (72-74 in about 16 s against 39 in 18.5 s, connecting included), ioredis filling about a third of them, Parley a quarter, ws and garbage collection a tenth each. A message that arrives during such a stretch waits for its end, at each node it crosses. Seen on every node (one node too) and since changed: Parley's heartbeat pinged all of its sockets in one timer callback every 15 s (36-40 ms under the profiler with 500-1000 sockets); it now pings them in slices of 128 with I/O between the slices.",
  socketIo:
    'In profiles of a socket.io node under the same closed loop (profile.js socketioCluster): ioredis about 29 % (a PUBLISH written per message, and the pattern messages read: every node gets every message, its own included, and decodes it before dropping its own), ws 24 % (each packet its own frame write, no coalescing), socket.io-parser 9 % (the event re-encoded as JSON by the receiving node), notepack.io 7 % (the packet msgpack-encoded for Redis and decoded by every node), garbage collection 7 %.',
} as const;
const percent = (share: number | undefined): string => `${Math.round((share ?? 0) * 100)}%`;

/** A subject's relay CPU per message: its server processes and its Redis, microseconds. */
export function relayCpuUsPerMsg(figures: RelayFigures): number {
  return figures.serverCpuUsPerMsg + (figures.redisCpuUsPerMsg ?? 0);
}

/** Commands below this many per message are background work (heartbeats, reapers), not the relay's. */
const BACKGROUND_COMMANDS_PER_MSG = 0.01;

/**
 * `evalsha 1, publish 1` from a subject's Redis commands per relayed message (commands run
 * inside a script count as well, as INFO commandstats counts them); the background ones are
 * summed up at the end.
 */
export function describeCommands(commands: Readonly<Record<string, number>> | undefined): string {
  const entries = Object.entries(commands ?? {}).sort(([a, x], [b, y]) => y - x || a.localeCompare(b));
  const relay = entries.filter(([, perMsg]) => perMsg >= BACKGROUND_COMMANDS_PER_MSG);
  const background = entries.length - relay.length;
  const text = relay.map(([command, perMsg]) => `${command} ${fmt(perMsg)}`).join(', ');
  const rest = background === 0 ? '' : `${text === '' ? '' : '; '}${background} background command${background === 1 ? '' : 's'} below ${BACKGROUND_COMMANDS_PER_MSG} per message`;
  return text + rest || 'none';
}

/** The cross-node ratios, their goals, and what the figures say limits each. */
export function crossNodeResults(input: CrossNodeInput): CrossNodeResult {
  const { single, parley, socketIo } = input;
  const crossNodeOverSingleNode = round(parley.msgsPerSecondMedian / single.msgsPerSecondMedian);
  const crossNodeOverSocketIo = round(parley.msgsPerSecondMedian / socketIo.msgsPerSecondMedian);
  const crossNodeP99Ms = parley.p99Ms;
  const parleyRelayCpu = relayCpuUsPerMsg(parley);
  const socketIoRelayCpu = relayCpuUsPerMsg(socketIo);
  const crossNodeCapacityOverSingleNode = round(single.serverCpuUsPerMsg / parleyRelayCpu);
  const crossNodeCapacityOverSocketIo = round(socketIoRelayCpu / parleyRelayCpu);
  // Where each node has a core of its own: the pairs run both ways between the two nodes, so each
  // node does on average half of every message's work (its WebSocket-in and Redis-out side, or
  // its Redis-in and WebSocket-out side).
  const crossNodeCeilingOverSingleNode = round(single.serverCpuUsPerMsg / (parley.serverCpuUsPerMsg / 2));

  const goals: GoalRatio[] = [
    {
      key: 'signaling.crossNodeOverSingleNode',
      label: 'signaling msgs/s, 2 Parley nodes on Redis / 1 node',
      value: crossNodeOverSingleNode,
      goal: CROSS_NODE_OVER_SINGLE_NODE_GOAL,
      kind: 'at-least',
    },
    {
      key: 'signaling.crossNodeP99Ms',
      label: `signaling p99 ms across 2 Parley nodes at ${input.latencyRate} msgs/s`,
      value: crossNodeP99Ms,
      goal: CROSS_NODE_P99_MS_GOAL,
      kind: 'at-most',
    },
    {
      key: 'signaling.crossNodeOverSocketIo',
      label: 'signaling msgs/s across 2 nodes, Parley / socket.io + redis-adapter',
      value: crossNodeOverSocketIo,
      goal: CROSS_NODE_OVER_SOCKET_IO_GOAL,
      kind: 'at-least',
    },
  ];

  const cpuLine = (name: string, f: RelayFigures): string =>
    `${name}: the two nodes ${fmt(f.serverCpuUsPerMsg)} µs together and Redis ${fmt(f.redisCpuUsPerMsg ?? 0)} µs of CPU per message ` +
    `(nodes ${percent(f.serverCpuShare)} of a core together, Redis ${percent(f.redisCpuShare)}, load processes ${percent(f.loadCpuShare)} each; Redis commands per message: ${describeCommands(f.redisCommandsPerMsg)})`;
  const notes: string[] = [
    'Across nodes: each cross-node subject ran two server processes (nodes) on one redis-server that the bench started on a free loopback port (persistence off), the same one for both; pair i has its caller on node i mod 2 and its callee on the other, so every message goes client, node, Redis, node, client, in both directions. ' +
      "Parley: parley-signaling's server with createRedisBroker (as --redis runs it), the single node's options. socket.io: socket.io 4.8 with @socket.io/redis-adapter 8.3 over ioredis (its README's setup), WebSocket transport only, a handler that emits `signal` with { from: socket.id, data } to the room of the target's socket id, as a socket.io app relays a signal; its load clients speak socket.io's wire protocol (Engine.IO 4 over WebSocket, `42[\"signal\",{...}]`, answering the server's pings) on the same ws client as every subject, so the load generators' cost per message stays alike (a test checks that socket.io-client talks to these nodes the same way). Redis's CPU is its own INFO cpu (used_cpu_sys + used_cpu_user) over each run, and its commands per message INFO commandstats.",
    `Across nodes (closed loop, medians of the counted rounds): ${cpuLine('Parley', parley)}; ${cpuLine('socket.io', socketIo)}; one Parley node ${fmt(single.serverCpuUsPerMsg)} µs (${percent(single.serverCpuShare)} of a core). ` +
      `Per second of relay CPU (nodes and Redis) two Parley nodes relay ${crossNodeCapacityOverSingleNode}x one node's messages and ${crossNodeCapacityOverSocketIo}x socket.io's (crossNodeCapacityOverSingleNode, crossNodeCapacityOverSocketIo in the JSON; not the goal keys).`,
    `Across nodes at ${input.latencyRate} msgs/s offered: Parley p50 ${fmt(parley.p50Ms)} ms, p99 ${fmt(parley.p99Ms)} ms; socket.io p50 ${fmt(socketIo.p50Ms)} ms, p99 ${fmt(socketIo.p99Ms)} ms; one Parley node p50 ${fmt(single.p50Ms)} ms, p99 ${fmt(single.p99Ms)} ms.`,
  ];
  notes.push(
    `What limits msgs/s across nodes (crossNodeOverSingleNode ${crossNodeOverSingleNode}): the nodes' CPU. A message cost the two Parley nodes ${fmt(parley.serverCpuUsPerMsg)} µs together against ${fmt(single.serverCpuUsPerMsg)} µs on one node, and Redis ${fmt(parley.redisCpuUsPerMsg ?? 0)} µs (Redis used ${percent(parley.redisCpuShare)} of its one core: not the limit); the two nodes together got ${percent(parley.serverCpuShare)} of a core against one node's ${percent(single.serverCpuShare)}: on these 2 cores, shared with the load processes and Redis, the nodes' CPU per message adds up. With a core for each node, each would do its half of a message (WebSocket in and Redis out, or Redis in and WebSocket out), ${fmt(parley.serverCpuUsPerMsg / 2)} µs against one node's ${fmt(single.serverCpuUsPerMsg)} µs: about ${fmt(crossNodeCeilingOverSingleNode)} of one node's msgs/s (crossNodeCeilingOverSingleNode: a projection from these CPU figures, not a measurement). ` +
      PROFILE_FINDINGS.parleyThroughput,
    `What limits the p99 across nodes (crossNodeP99Ms ${fmt(crossNodeP99Ms)} ms; p50 ${fmt(parley.p50Ms)} ms against one node's ${fmt(single.p50Ms)} ms): ${PROFILE_FINDINGS.parleyLatency}`,
    `What limits socket.io across nodes (crossNodeOverSocketIo ${crossNodeOverSocketIo}): its nodes' CPU too, ${fmt(socketIo.serverCpuUsPerMsg)} µs per message for the two (${percent(socketIo.serverCpuShare)} of a core together) and Redis ${fmt(socketIo.redisCpuUsPerMsg ?? 0)} µs. ${PROFILE_FINDINGS.socketIo} Parley's nodes spend ${fmt(parley.serverCpuUsPerMsg)} µs: a frame crosses as the bytes it arrived as (never decoded or re-encoded), only to the node that holds its receiver (socket.io's pattern subscription sends every message to every node), with the WebSocket writes of a turn coalesced and the frames of a turn in one script call.`,
  );
  if (parley.repeatedPeerJoined > 0) {
    notes.push(
      `Found: across nodes, a callee got a peer-joined for its caller that its welcome already listed ${parley.repeatedPeerJoined} time(s) (the caller's join broadcast reached Redis after the callee's join on the other node); counted (repeatedPeerJoined), not a failure: nothing was lost, the callee was told twice.`,
    );
  }
  if (crossNodeOverSingleNode < CROSS_NODE_OVER_SINGLE_NODE_GOAL) {
    notes.push(
      `Goal missed: two Parley nodes on Redis relayed ${crossNodeOverSingleNode} of one node's msgs/s (goal ${fmt(CROSS_NODE_OVER_SINGLE_NODE_GOAL)}): each message costs ${fmt(parleyRelayCpu)} µs of relay CPU across nodes against ${fmt(single.serverCpuUsPerMsg)} µs on one node.`,
    );
  }
  if (crossNodeP99Ms > CROSS_NODE_P99_MS_GOAL) {
    notes.push(
      `Goal missed: the p99 across two Parley nodes was ${fmt(crossNodeP99Ms)} ms at ${input.latencyRate} msgs/s (goal ${fmt(CROSS_NODE_P99_MS_GOAL)} ms; one node ${fmt(single.p99Ms)} ms, socket.io across nodes ${fmt(socketIo.p99Ms)} ms in the same rounds).`,
    );
  }
  if (crossNodeOverSocketIo < CROSS_NODE_OVER_SOCKET_IO_GOAL) {
    notes.push(
      `Goal missed: two Parley nodes relayed ${crossNodeOverSocketIo} of two socket.io nodes' msgs/s (goal ${fmt(CROSS_NODE_OVER_SOCKET_IO_GOAL)}): relay CPU per message ${fmt(parleyRelayCpu)} µs against socket.io's ${fmt(socketIoRelayCpu)} µs.`,
    );
  }
  return {
    json: {
      crossNodeOverSingleNode,
      crossNodeP99Ms,
      crossNodeOverSocketIo,
      crossNodeCapacityOverSingleNode,
      crossNodeCapacityOverSocketIo,
      crossNodeCeilingOverSingleNode,
    },
    goals,
    notes,
  };
}
