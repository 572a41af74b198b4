import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { startSignalingCluster } from '@parley/signaling-ws/testing';
import type { SignalingCluster, SignalingNode } from '@parley/signaling-ws/testing';
import { describeInChromium, launchChromium } from '../helpers/chromium.js';
import { DEMO_DIST, demoPageUrl } from '../helpers/demo-server.js';
import { callAndAccept, joinRoom, leave, waitForRemoteVideoPlaying } from '../helpers/person.js';
import type { Person } from '../helpers/person.js';

// Issue 13, "see it": the demo as `npm run start:cluster` runs it (a redis-server and three
// parley-signaling processes sharing it, each serving the built page). Two people open the page
// on two different nodes, join one room, see each other and call; video plays both ways.

describeInChromium('demo page on a cluster: two nodes, one room, one call', () => {
  let browser: Browser | undefined;
  let cluster: SignalingCluster | undefined;
  const people: Person[] = [];

  beforeAll(async () => {
    [browser, cluster] = await Promise.all([launchChromium(), startSignalingCluster({ nodes: 3, args: ['--static', DEMO_DIST] })]);
  });
  afterEach(async () => {
    const errors = people.flatMap((person) => person.pageErrors);
    await Promise.all(people.splice(0).map((person) => leave(person).catch(() => undefined)));
    expect(errors).toEqual([]);
  });
  afterAll(async () => {
    await browser?.close();
    await cluster?.close();
  });

  const open = async (node: SignalingNode, room: string, name: string): Promise<Person> => {
    const person = await joinRoom(browser!, { pageUrl: (r, n, extra) => demoPageUrl(node.port, r, n, extra) }, room, name);
    people.push(person);
    return person;
  };

  it('connects a call between pages served by two different nodes', async () => {
    const [first, second] = cluster!.nodes as [SignalingNode, SignalingNode];
    const room = `cluster-${process.pid}`;
    const alice = await open(first, room, 'alice');
    const bob = await open(second, room, 'bob');
    // Each page talks to its own node: the join was logged there, not on the other.
    expect(first.logEvents('join').map((line) => line['name'])).toEqual(['alice']);
    expect(second.logEvents('join').map((line) => line['name'])).toEqual(['bob']);
    await callAndAccept(alice, bob);
    const [aliceSees, bobSees] = await Promise.all([waitForRemoteVideoPlaying(alice), waitForRemoteVideoPlaying(bob)]);
    expect(aliceSees.width).toBeGreaterThan(0);
    expect(bobSees.width).toBeGreaterThan(0);
  });
});
