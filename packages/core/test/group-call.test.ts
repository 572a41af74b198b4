import { BehaviorSubject } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { PeerMessage } from '../src/index.js';
import { MAX_MEMBERSHIP_LENGTH, createCall } from '../src/index.js';
import { addGroupMember, createFakeNetwork, createFakeRoom, createSignalingPair, meshViolations } from '../src/testing/index.js';
import type { FakeRoomOptions, FakeScheduler, GroupMember, GroupMemberOptions } from '../src/testing/index.js';
import { waitFor } from './helpers/wait-for.js';

// createGroupCall over a fake room (presence and pairwise signaling) and the fake network:
// joining, the late joiner, leave, vanish, rejoin and the size cap, by example.

const started: GroupMember[] = [];
afterEach(() => {
  for (const member of started.splice(0)) member.group.stop();
});

function room(options: FakeRoomOptions = {}) {
  const network = createFakeNetwork();
  const fakeRoom = createFakeRoom(options);
  const members: GroupMember[] = [];
  const add = (id: string, memberOptions: GroupMemberOptions = {}): GroupMember => {
    // Members of the room who are not in the call never answer a join: wait briefly for them.
    const member = addGroupMember(fakeRoom, network, id, { delays: { joinAnswerTimeout: 20 }, ...memberOptions });
    members.push(member);
    started.push(member);
    return member;
  };
  /** Pair networks: `pick(remote)`, or the room's when it gives none. */
  const withNetwork = (pick: (remote: string) => ReturnType<typeof createFakeNetwork> | undefined): GroupMemberOptions => ({
    networkFor: (remote) => pick(remote) ?? network,
  });
  const settled = (what: string) => waitFor(() => meshViolations(members).length === 0, `${what}: ${meshViolations(members).join('; ')}`, 5000);
  return { network, room: fakeRoom, members, add, settled, withNetwork };
}

/**
 * A fake room scheduler that holds the deliveries whose label starts with `prefix` (one
 * direction of a pipe) while closed; the others go on a macrotask each, as without a scheduler.
 */
function holdDeliveries(prefix: string) {
  const waiting: (() => void)[] = [];
  let closed = false;
  const scheduler: FakeScheduler = {
    schedule: <T>(task: Promise<T>, label = ''): Promise<T> =>
      new Promise<T>((resolve) => {
        const deliver = () => setTimeout(() => resolve(task), 0);
        if (closed && label.startsWith(prefix)) waiting.push(deliver);
        else deliver();
      }),
  };
  return {
    scheduler,
    close: () => {
      closed = true;
    },
    /** Lets the oldest held delivery through (the next one of that direction is held again). */
    releaseOne: () => waiting.shift()?.(),
    /** Lets every held delivery through, and the later ones. */
    open: () => {
      closed = false;
      for (const deliver of waiting.splice(0)) deliver();
    },
    pending: () => waiting.length,
  };
}

const pairsOf = (member: GroupMember) => [...member.group.status().members.keys()].sort();

describe('createGroupCall', () => {
  it('three members who join one after the other end in a connected mesh', async () => {
    const { add, settled } = room();
    const [a, b, c] = [add('a'), add('b'), add('c')];
    expect(a.group.status()).toEqual({ state: 'idle', members: new Map(), error: null });
    a.group.join();
    await waitFor(() => a.group.status().state === 'joined', 'a joined an empty call');
    b.group.join();
    await settled('a and b');
    c.group.join();
    await settled('a, b and c');
    expect(pairsOf(a)).toEqual(['b', 'c']);
    expect(pairsOf(c)).toEqual(['a', 'b']);
    // The smaller id offers: a is impolite towards b and c.
    expect(a.group.actor.getSnapshot().context.pairs.get('c')?.peer.getSnapshot().context.polite).toBe(false);
    expect(c.group.actor.getSnapshot().context.pairs.get('a')?.peer.getSnapshot().context.polite).toBe(true);
    // The pair's session is both memberships, smaller member id first.
    expect(b.group.status().members.get('c')?.session).toBe('bm1.cm1');
  });

  it('members who join at the same moment (crossing joins) connect without glare', async () => {
    const { add, settled, members } = room();
    add('a');
    add('b');
    add('c');
    add('d');
    for (const member of members) member.group.join();
    await settled('four crossing joins');
    for (const member of members) expect(member.group.status().state).toBe('joined');
  });

  it('send() reaches the chat channel of every member; events carry the member', async () => {
    const { add, settled } = room();
    const [a, b, c] = [add('a'), add('b'), add('c')];
    for (const member of [a, b, c]) member.group.join();
    await settled('three');
    a.group.send('chat', 'hello');
    const heard = (member: GroupMember) => member.events.some((e) => e.type === 'message' && e.member === 'a' && e.data === 'hello');
    await waitFor(() => heard(b) && heard(c), 'b and c hear a');
  });

  it('leave drops the member everywhere at once; rejoining makes new pair sessions', async () => {
    const { add, settled, members } = room();
    const [a, b, c] = [add('a'), add('b'), add('c')];
    for (const member of members) member.group.join();
    await settled('three');
    const oldPorts = [...b.group.rtcPorts().values()];
    b.group.leave();
    expect(b.group.status()).toMatchObject({ state: 'left', members: new Map() });
    expect(oldPorts.every((port) => port.connectionState === 'closed')).toBe(true);
    await waitFor(() => !a.group.status().members.has('b') && !c.group.status().members.has('b'), 'a and c drop b');
    await settled('a and c without b');
    b.group.join();
    await settled('b back');
    expect(a.group.status().members.get('b')?.session).toBe('am1.bm2');
  });

  it('a member who vanishes from the room (peer-left) is dropped and its pairs closed', async () => {
    const { add, settled, room: fakeRoom } = room();
    const [a, b, c] = [add('a'), add('b'), add('c')];
    for (const member of [a, b, c]) member.group.join();
    await settled('three');
    const portsToC = [a.group.rtcPorts().get('c'), b.group.rtcPorts().get('c')];
    fakeRoom.vanish('c');
    expect(pairsOf(a)).toEqual(['b']);
    expect(pairsOf(b)).toEqual(['a']);
    expect(portsToC.map((port) => port?.connectionState)).toEqual(['closed', 'closed']);
    c.group.stop();
    await settled('a and b');
  });

  it('a join past maxMembers is refused with the typed error full, and the call is untouched', async () => {
    const { add, settled, members } = room();
    const options = { maxMembers: 3 };
    const [a, b, c] = [add('a', options), add('b', options), add('c', options)];
    for (const member of [a, b, c]) member.group.join();
    await settled('three');
    const d = add('d', options);
    d.group.join();
    await waitFor(() => d.group.status().state === 'full', 'd refused');
    expect(d.group.status().error).toMatchObject({ code: 'full' });
    expect(d.group.status().members.size).toBe(0);
    await settled('the call of three without d');
    expect(members.filter((m) => m.group.status().state === 'joined').map((m) => m.id)).toEqual(['a', 'b', 'c']);
    // Once someone leaves there is room again.
    a.group.leave();
    d.group.join();
    await waitFor(() => d.group.status().state === 'joined', 'd joined');
    await settled('b, c and d');
  });

  it('a duplicated join or answer opens the pair once', async () => {
    const duplicate = (message: PeerMessage): readonly PeerMessage[] => (message.kind.startsWith('group-') ? [message, message] : [message]);
    const { add, settled } = room({ intercept: duplicate });
    const [a, b] = [add('a'), add('b')];
    a.group.join();
    b.group.join();
    await settled('two');
    expect(a.ports.length + b.ports.length).toBe(2);
  });

  it('a late answer to a join before a leave and rejoin opens no pair (property seed 1853041091)', async () => {
    // c's join reaches b twice; b answers both. c takes the first answer, leaves and joins
    // again; b drops c on its leave, then leaves too (out of the call, it ignores c's new join).
    // Only then does b's second answer reach c: it answers c's former membership cm1.
    const held = holdDeliveries('b->c:');
    const duplicateJoinOfC = (message: PeerMessage, from: string): readonly PeerMessage[] =>
      from === 'c' && message.kind === 'group-join' ? [message, message] : [message];
    const { add, settled } = room({ scheduler: held.scheduler, intercept: duplicateJoinOfC });
    const [b, c] = [add('b'), add('c')];
    b.group.join();
    await waitFor(() => b.group.status().state === 'joined', 'b joined');
    held.close();
    c.group.join();
    await waitFor(() => b.room.pipeTo('c').sent.filter((m) => m.kind === 'group-present').length === 2, 'b answered both joins of cm1');
    held.releaseOne(); // b->c: group-present bm1 (the first answer)
    await waitFor(() => c.group.status().members.has('b'), 'c pairs with b');
    c.group.leave(); // c->b: group-leave cm1
    await waitFor(() => !b.group.status().members.has('c'), 'b drops c');
    b.group.leave(); // paired with no one: says nothing
    c.group.join(); // c->b: group-join cm2, which b (out of the call) does not answer
    await waitFor(() => c.group.status().state === 'joined', 'c joined as cm2');
    held.open(); // b->c: group-present bm1 (the answer to the duplicate of cm1's join), then the rest
    await waitFor(() => held.pending() === 0 && b.room.pipeTo('c').pending() === 0, 'b->c delivered');
    expect(pairsOf(c)).toEqual([]);
    await settled('c alone in the call, b out');
  });

  it('a join with a membership too long for a pair session is ignored', async () => {
    const { add, settled } = room();
    const [a, b] = [add('a'), add('b')];
    a.group.join();
    await waitFor(() => a.group.status().state === 'joined', 'a joined');
    // Valid as a peer message (<= 128), but with ours it would make a pair session over 128.
    b.room.pipeTo('a').send({ kind: 'group-join', session: 'x'.repeat(120) });
    expect(120).toBeGreaterThan(MAX_MEMBERSHIP_LENGTH);
    b.group.join();
    await settled('a and b');
    expect(a.group.status().members.get('b')?.session).toBe('am1.bm1');
    expect(a.ports.length).toBe(1);
  });

  it('addTrack sends a track to every member, late joiners too; replaceTrack swaps it everywhere without negotiation', async () => {
    const { add, settled } = room();
    const [a, b, c] = [add('a'), add('b'), add('c')];
    a.group.join();
    b.group.join();
    await settled('a and b');
    const camera = a.addTrack('video');
    await settled('a sends its camera to b');
    const rounds = (member: GroupMember) => member.events.filter((e) => e.type === 'negotiated').length;
    c.group.join();
    await settled('c joined late');
    expect(a.group.rtcPorts().get('c')?.getTransceivers().map((t) => t.senderTrack)).toContain(camera);
    const before = rounds(a) + rounds(b) + rounds(c);
    const screen = await a.replaceLatestTrack();
    const sent = (remote: string) => a.group.rtcPorts().get(remote)?.getTransceivers().map((t) => t.senderTrack);
    expect([sent('b'), sent('c')].map((tracks) => [tracks?.includes(screen), tracks?.includes(camera)])).toEqual([
      [true, false],
      [true, false],
    ]);
    await settled('after the replace');
    expect(rounds(a) + rounds(b) + rounds(c)).toBe(before);
  });

  it('replaceTrack twice in a row: the second waits for the first (a sender shows its new track only once replaced)', async () => {
    const { add, settled } = room();
    const [a, b, c] = [add('a'), add('b'), add('c')];
    for (const member of [a, b, c]) member.group.join();
    a.addTrack('video');
    await settled('three, a with a camera');
    const first = a.replaceLatestTrack();
    const second = a.replaceLatestTrack();
    const [, last] = await Promise.all([first, second]);
    for (const remote of ['b', 'c']) expect(a.group.rtcPorts().get(remote)?.getTransceivers().map((t) => t.senderTrack)).toContain(last);
    await settled('after both');
  });

  it('restartIce(member) restarts that pair only', async () => {
    const { add, settled } = room();
    const [a, b, c] = [add('a'), add('b'), add('c')];
    for (const member of [a, b, c]) member.group.join();
    await settled('three');
    const restarts = (member: GroupMember, other: string) =>
      member.events.filter((e) => e.type === 'negotiated' && e.iceRestart && e.member === other).length;
    c.group.restartIce('a');
    // The side that offered the restart reports it (c is polite towards a: either may offer it).
    await waitFor(() => restarts(c, 'a') + restarts(a, 'c') === 1, 'the a-c pair restarted ICE');
    await settled('after the restart');
    expect(restarts(c, 'b') + restarts(a, 'b') + restarts(b, 'a') + restarts(b, 'c')).toBe(0);
  });

  it('a pair whose path fails recovers with an ICE restart; the other pairs are not touched', async () => {
    // The pairs with c run on a network of their own, whose connectivity the test cuts.
    const { add, settled, withNetwork } = room();
    const cNetwork = createFakeNetwork({ failAfterMs: 20 });
    const networkFor = (self: string) => (remote: string) => (self === 'c' || remote === 'c' ? cNetwork : undefined);
    const fast = { delays: { disconnectedGrace: 20, iceRestartBackoff: 20, joinAnswerTimeout: 20 } };
    const members = ['a', 'b', 'c'].map((id) => add(id, { ...fast, ...withNetwork(networkFor(id)) }));
    for (const member of members) member.group.join();
    await settled('three');
    const [a, b, c] = members as [GroupMember, GroupMember, GroupMember];
    const restarts = (member: GroupMember, other: string) =>
      member.events.filter((e) => e.type === 'negotiated' && e.iceRestart && e.member === other).length;
    const sessions = [a, b, c].map((member) => [...member.group.status().members.values()].map((status) => status.session).join());
    cNetwork.setConnectivity(false);
    // Down long enough for the recovery to start (it restarts ICE after disconnectedGrace or a failure).
    await waitFor(() => restarts(a, 'c') + restarts(c, 'a') > 0, 'the a-c pair restarted ICE while down');
    cNetwork.setConnectivity(true);
    await waitFor(() => restarts(a, 'c') + restarts(c, 'a') > 0 && restarts(b, 'c') + restarts(c, 'b') > 0, 'both pairs with c restarted ICE');
    await settled('recovered');
    expect(restarts(a, 'b') + restarts(b, 'a')).toBe(0);
    // The same pairs, recovered in place: no pair was made anew.
    expect([a, b, c].map((member) => [...member.group.status().members.values()].map((status) => status.session).join())).toEqual(sessions);
  });

  it('a new id in the room (a server restart without resume) joins the call again under it', async () => {
    const { add, settled, room: fakeRoom, members, network } = room();
    const a = add('a');
    // b enters the room with an id the test changes later (its pipes stay those of b).
    const self = new BehaviorSubject<string | null>('b');
    const withSelf: typeof fakeRoom = {
      ...fakeRoom,
      enter: (id) => {
        const entered = fakeRoom.enter(id);
        return { ...entered, signaling: { ...entered.signaling, selfId$: self } };
      },
    };
    const renamed = addGroupMember(withSelf, network, 'b', { delays: { joinAnswerTimeout: 20 } });
    started.push(renamed);
    members.push(renamed);
    a.group.join();
    renamed.group.join();
    await settled('a and b');
    expect(a.group.status().members.get('b')?.session).toBe('am1.bm1');
    self.next('b2');
    await waitFor(() => a.group.status().members.get('b')?.session === 'am1.bm2', 'b joined again as a new membership');
    await settled('a and b again');
  });

  it('stop() leaves, ends every actor and completes the streams', async () => {
    const { add, settled } = room();
    const [a, b] = [add('a'), add('b')];
    a.group.join();
    b.group.join();
    await settled('two');
    let completed = 0;
    a.group.status$.subscribe({ complete: () => (completed += 1) });
    a.group.events$.subscribe({ complete: () => (completed += 1) });
    const peers = [...a.group.actor.getSnapshot().context.pairs.values()].map((pair) => pair.peer);
    a.group.stop();
    a.group.stop();
    expect(completed).toBe(2);
    expect(a.group.actor.getSnapshot().status).toBe('stopped');
    expect(peers.map((peer) => peer.getSnapshot().status)).toEqual(['stopped']);
    await waitFor(() => b.group.status().members.size === 0, 'b heard a leave');
  });
});

describe('a group call and a 1:1 call on the same pipes', () => {
  it('the call machine ignores group messages: a 1:1 call still rings after a group-join', async () => {
    const network = createFakeNetwork();
    const [pipeA, pipeB] = createSignalingPair();
    const calls = [pipeA, pipeB].map((signaling) => createCall({ signaling, createRtc: () => network.createPort() }));
    const [callA, callB] = calls as [ReturnType<typeof createCall>, ReturnType<typeof createCall>];
    pipeB.send({ kind: 'group-join', session: 'bm1' });
    pipeB.send({ kind: 'group-leave', session: 'bm1' });
    await waitFor(() => pipeA.received.length === 2, 'the group messages delivered');
    expect(callA.actor.getSnapshot().status).toBe('active');
    callA.call();
    await waitFor(() => callB.status().state === 'incoming', 'B ringing');
    for (const call of calls) call.stop();
  });
});
