import { createPeer } from '@parley/core';
import { createFakeNetwork, createSignalingPair } from '@parley/core/testing';
import type { FakeRtcPort, FakeSignalingPort } from '@parley/core/testing';
import { HandWrittenPeer, microtaskScheduler } from './negotiate.js';
import type { Subject } from './negotiate.js';

// Heap held by one idle, started peer: its port and signaling end are made (and counted) first,
// so the difference is the peer alone: Parley's peer actor with its children and subscriptions,
// or the hand-written loop's object with its two subscriptions.

interface Closable {
  close(): void;
}

function start(subject: Subject, port: FakeRtcPort, signaling: FakeSignalingPort): Closable {
  return subject === 'parley' ? createPeer({ rtc: port, signaling, polite: false }) : new HandWrittenPeer(port, signaling, false);
}

/** Heap bytes per idle peer over `count` peers; `collect` runs a full GC (node --expose-gc). */
export function idlePeerBytes(subject: Subject, count: number, collect: () => void): number {
  const fixtures: { port: FakeRtcPort; signaling: FakeSignalingPort }[] = [];
  for (let i = 0; i < count; i++) {
    const port = createFakeNetwork({ scheduler: microtaskScheduler }).createPort();
    const [signaling] = createSignalingPair({ scheduler: microtaskScheduler });
    fixtures.push({ port, signaling });
  }
  const peers: Closable[] = new Array<Closable>(count);
  collect();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < count; i++) peers[i] = start(subject, fixtures[i]!.port, fixtures[i]!.signaling);
  collect();
  const after = process.memoryUsage().heapUsed;
  for (const peer of peers) peer.close();
  fixtures.length = 0;
  return (after - before) / count;
}
