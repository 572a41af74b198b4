// The cluster harness of @parley/signaling-ws/testing on its own: real `parley-signaling`
// processes (in-memory broker here, so that the harness is tested without the Redis broker),
// kill -9 and restart on the same port, /healthz and /readyz, and the round-robin TCP load
// balancer that skips a node that refuses connections.

import { afterEach, describe, expect, it } from 'vitest';
import { startLoadBalancer, startSignalingNode, type LoadBalancer, type SignalingNode } from '../src/testing/index.js';
import { TestSocket } from './helpers/ws-client.js';

const nodes: SignalingNode[] = [];
const balancers: LoadBalancer[] = [];
const sockets: TestSocket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate();
  for (const balancer of balancers.splice(0)) await balancer.close();
  await Promise.all(nodes.splice(0).map((node) => node.kill()));
});

async function node(): Promise<SignalingNode> {
  const started = await startSignalingNode({ resumeSecret: 'harness-secret', args: ['--resume-grace', '2000'] });
  nodes.push(started);
  return started;
}

async function joinedThrough(url: string, room: string, name: string): Promise<{ socket: TestSocket; id: string }> {
  const joined = await TestSocket.joined(url, room, name);
  sockets.push(joined.socket);
  return joined;
}

describe('cluster harness: parley-signaling processes and the load balancer', () => {
  it('starts a node, answers /healthz and /readyz, kills it (refused), starts it again on its port', async () => {
    const first = await node();
    expect(first.running).toBe(true);
    expect([await first.status('/healthz'), await first.status('/readyz')]).toEqual([200, 200]);
    const port = first.port;
    const pid = first.pid;
    await first.kill();
    expect(first.running).toBe(false);
    expect(await first.status('/healthz')).toBe('refused');
    await first.start();
    expect(first.port).toBe(port);
    expect(first.pid).not.toBe(pid);
    expect(first.logEvents('listening')).toHaveLength(1);
    expect(await first.status('/healthz')).toBe(200);
  });

  it('forwards new connections round-robin, skips a killed node, and drops the clients of a node that dies', async () => {
    const [a, b] = [await node(), await node()];
    const balancer = await startLoadBalancer({ backends: [a.port, b.port] });
    balancers.push(balancer);

    const alice = await joinedThrough(balancer.url, 'harness', 'alice');
    const bob = await joinedThrough(balancer.url, 'harness', 'bob');
    expect(balancer.routed).toEqual([a.port, b.port]);
    await a.waitForLog((line) => line['event'] === 'join' && line['peer'] === alice.id, 2000, 'alice joining on a');
    await b.waitForLog((line) => line['event'] === 'join' && line['peer'] === bob.id, 2000, 'bob joining on b');

    await a.kill();
    // The kernel closed a's end; the balancer closes alice's (no close frame: 1006).
    expect((await alice.socket.closed).code).toBe(1006);
    // Bob's connection (on b) is untouched.
    bob.socket.send({ type: 'ping' });
    await bob.socket.next('pong');

    // The next two connections both land on b: a refuses.
    await joinedThrough(balancer.url, 'harness-2', 'carol');
    await joinedThrough(balancer.url, 'harness-2', 'dave');
    expect(balancer.routed.slice(2)).toEqual([b.port, b.port]);

    await b.kill();
    await expect(TestSocket.open(balancer.url)).rejects.toThrow();
    expect(balancer.refused).toBe(1);
  });
});
