import type { InspectionEvent } from 'xstate';
import { afterEach, describe, expect, it } from 'vitest';
import { createCall } from '../src/index.js';
import type { Call, CallAppEvent, CallStatus, CreateCallOptions } from '../src/index.js';
import { createFakeNetwork, createSignalingPair } from '../src/testing/index.js';
import type { FakeRtcPort, FakeSignalingPort } from '../src/testing/index.js';
import { waitFor } from './helpers/wait-for.js';

// createCall: the call machine as an app holds it, end to end over the fake network (the real
// peer machine in `active`) and a fake signaling pair.

interface Line {
  readonly call: Call;
  readonly statuses: CallStatus[];
  readonly events: CallAppEvent[];
  readonly ports: FakeRtcPort[];
}

const calls: Call[] = [];
afterEach(() => {
  for (const call of calls.splice(0)) call.stop();
});

function startLines(options: Partial<CreateCallOptions> = {}) {
  const network = createFakeNetwork();
  const [sigA, sigB] = createSignalingPair();
  const line = (name: string, signaling: FakeSignalingPort, session: string): Line => {
    const ports: FakeRtcPort[] = [];
    const call = createCall({
      signaling,
      createRtc: () => {
        const port = network.createPort({ name: `${name}${ports.length + 1}` });
        port.addTransceiver('audio');
        ports.push(port);
        return port;
      },
      peer: { dataChannels: [{ label: 'chat' }] },
      createSessionId: () => `${session}${ports.length + 1}`,
      ...options,
    });
    calls.push(call);
    const statuses: CallStatus[] = [];
    const events: CallAppEvent[] = [];
    call.status$.subscribe((status) => statuses.push(status));
    call.events$.subscribe((event) => events.push(event));
    return { call, statuses, events, ports };
  };
  return { network, a: line('A', sigA, 'a'), b: line('B', sigB, 'b'), sigA, sigB };
}

const connected = (line: Line) => line.call.status().connection?.connectionState === 'connected';

describe('createCall', () => {
  it('walks idle -> outgoing/incoming -> active -> ended, with the connection states while active', async () => {
    const { a, b } = startLines();
    expect(a.call.status()).toEqual({ state: 'idle', role: null, session: null, media: null, connection: null, end: null });
    a.call.call({ audio: true, video: false });
    expect(a.call.status()).toMatchObject({ state: 'outgoing', role: 'caller', session: 'a1', media: { audio: true, video: false } });
    await waitFor(() => b.call.status().state === 'incoming', 'B ringing');
    expect(b.call.status()).toMatchObject({ role: 'callee', session: 'a1', media: { audio: true, video: false }, connection: null });
    b.call.accept();
    await waitFor(() => connected(a) && connected(b), 'both connected');
    expect(a.call.status().connection).toEqual({
      signalingState: 'stable',
      iceGatheringState: expect.any(String) as unknown,
      iceConnectionState: expect.stringMatching(/^(connected|completed)$/) as unknown,
      connectionState: 'connected',
    });
    // Both created their connection with a track: the callee's waited for the caller's offer
    // (awaitRemoteOffer) rather than colliding with it.
    const notices = (line: Line) => line.events.flatMap((event) => (event.type === 'notice' ? [event.notice] : []));
    expect(notices(a)).not.toContain('ignored-colliding-offer');
    expect(notices(b)).not.toContain('rolled-back-for-remote-offer');
    // The stream saw the connection come up through its states, each status once.
    const connectionStates = a.statuses.map((status) => status.connection?.connectionState ?? null);
    expect(connectionStates).toContain('connecting');
    for (let i = 1; i < a.statuses.length; i += 1) expect(a.statuses[i]).not.toEqual(a.statuses[i - 1]);

    a.call.hangup();
    await waitFor(() => b.call.status().state === 'ended', 'B ended');
    expect(a.call.status()).toMatchObject({ state: 'ended', connection: null, end: { reason: 'hangup', endedBy: 'local' } });
    expect(b.call.status().end).toEqual({ reason: 'remote-hangup', endedBy: 'remote', remoteReason: 'hangup', detail: null, connectionFailure: null });
  });

  it('reports the peer events of each call tagged with its session, the channel opened at start included', async () => {
    const { a, b } = startLines();
    a.call.call();
    await waitFor(() => b.call.status().state === 'incoming', 'B ringing');
    b.call.accept();
    await waitFor(() => connected(a) && connected(b), 'both connected');
    // A's peer opens `chat` while it starts: the line listened before that.
    const opened = a.events.find((event) => event.type === 'datachannel');
    expect(opened).toMatchObject({ type: 'datachannel', label: 'chat', origin: 'local', session: 'a1' });
    await waitFor(() => b.events.some((event) => event.type === 'datachannel'), 'the channel on B');
    const channel = b.events.find((event) => event.type === 'datachannel');
    if (channel?.type !== 'datachannel') throw new Error('no channel on B');
    await waitFor(() => channel.channel.readyState === 'open', 'chat open on B');
    channel.channel.send('hello');
    await waitFor(() => a.events.some((event) => event.type === 'message'), 'the message on A');
    expect(a.events.find((event) => event.type === 'message')).toMatchObject({ label: 'chat', data: 'hello', session: 'a1' });

    // A second call: its events carry its own session.
    b.call.hangup();
    await waitFor(() => a.call.status().state === 'ended', 'A ended');
    b.call.call();
    await waitFor(() => a.call.status().state === 'incoming', 'A ringing');
    a.call.accept();
    await waitFor(() => connected(a) && connected(b), 'both connected again');
    const sessions = new Set(b.events.filter((event) => event.type === 'connectionstatechange').map((event) => event.session));
    expect(sessions).toEqual(new Set(['a1', 'b2']));
  });

  it('opens a data channel on the active call, and refuses one with InvalidStateError otherwise', async () => {
    const { a, b } = startLines();
    expect(() => a.call.createDataChannel('files')).toThrow(expect.objectContaining({ name: 'InvalidStateError' }) as Error);
    a.call.call();
    await waitFor(() => b.call.status().state === 'incoming', 'B ringing');
    b.call.accept();
    await waitFor(() => connected(a) && connected(b), 'both connected');
    const files = b.call.createDataChannel('files', { ordered: true });
    expect(files.label).toBe('files');
    await waitFor(() => a.events.some((event) => event.type === 'datachannel' && event.label === 'files'), 'files on A');
  });

  it("gives an inspector the call, each call's peer and the peer's children, and still reports the peer's events", async () => {
    const inspected: InspectionEvent[] = [];
    const { a, b } = startLines({ inspect: (event) => inspected.push(event) });
    a.call.call();
    await waitFor(() => b.call.status().state === 'incoming', 'B ringing');
    b.call.accept();
    await waitFor(() => connected(a) && connected(b), 'both connected');
    const peerA = a.call.peer()!;
    const created = inspected.filter((event) => event.type === '@xstate.actor').map((event) => event.actorRef);
    expect(created).toEqual(expect.arrayContaining([a.call.actor, b.call.actor, peerA, b.call.peer()]));
    // ... and the channel actor the peer spawned, with every snapshot of the peer.
    const [chat] = peerA.getSnapshot().context.channels;
    expect(created).toContain(chat);
    expect(inspected.some((event) => event.type === '@xstate.snapshot' && event.actorRef === peerA)).toBe(true);
    // The line found its peer from its creation on: the channel the peer opened at start is reported.
    expect(a.events.find((event) => event.type === 'datachannel')).toMatchObject({ label: 'chat', origin: 'local', session: 'a1' });
  });

  it('passes REMOTE.LEFT on: a ringing call ends at once', async () => {
    const { a, b } = startLines();
    a.call.call();
    await waitFor(() => b.call.status().state === 'incoming', 'B ringing');
    a.call.remoteLeft();
    expect(a.call.status()).toMatchObject({ state: 'ended', end: { reason: 'unavailable', endedBy: 'remote', detail: 'the callee left the room' } });
  });

  it('takes the call delays: an unanswered invite ends no-answer after ringTimeout', async () => {
    const { a, b } = startLines({ delays: { ringTimeout: 50 } });
    a.call.call();
    await waitFor(() => a.call.status().state === 'ended', 'A gave up');
    expect(a.call.status().end?.reason).toBe('no-answer');
    await waitFor(() => b.call.status().state === 'ended', 'B told');
    expect(b.call.status().end?.reason).toBe('missed');
  });

  it('stop() ends what is in progress as the user would, then completes its streams; commands after it do nothing', async () => {
    const { a, b, sigA } = startLines();
    a.call.call();
    await waitFor(() => b.call.status().state === 'incoming', 'B ringing');
    b.call.accept();
    await waitFor(() => connected(a) && connected(b), 'both connected');
    let completed = 0;
    a.call.status$.subscribe({ complete: () => (completed += 1) });
    a.call.events$.subscribe({ complete: () => (completed += 1) });
    a.call.stop();
    expect(completed).toBe(2);
    expect(sigA.sent.map((message) => message.kind)).toContain('bye');
    await waitFor(() => b.call.status().state === 'ended', 'B ended');
    expect(b.call.status().end?.reason).toBe('remote-hangup');
    expect(a.ports[0]?.signalingState).toBe('closed');
    a.call.call();
    a.call.stop();
    expect(a.call.actor.getSnapshot().status).toBe('stopped');
  });

  it('prepareWhileRinging: the ringing callee’s peer answers at once, its answer reaches the caller only after accept', async () => {
    const { a, b, sigA, sigB } = startLines({ prepareWhileRinging: true });
    a.call.call();
    await waitFor(() => b.ports[0]?.localDescription?.type === 'answer', 'B answered the offer while ringing');
    expect(b.call.status()).toMatchObject({ state: 'incoming', connection: null });
    // Nothing of B's has gone out: no answer, no candidate, no accept.
    expect(sigB.sent).toEqual([]);
    expect(a.call.status().state).toBe('outgoing');
    expect(sigA.sent.some((message) => message.kind === 'description' && message.description.type === 'offer')).toBe(true);

    b.call.accept();
    expect(sigB.sent.map((message) => message.kind).slice(0, 2)).toEqual(['accept', 'description']);
    await waitFor(() => connected(a) && connected(b), 'both connected');
    expect(b.ports).toHaveLength(1);
  });

  it('prepare(): state prepared with the next session, events of the prepared peer, nothing sent; call() connects on that peer', async () => {
    const { a, b, sigA } = startLines();
    a.call.prepare();
    expect(a.call.status()).toEqual({ state: 'prepared', role: 'caller', session: 'a1', media: null, connection: null, end: null });
    await waitFor(() => a.ports[0]?.signalingState === 'have-local-offer', 'A’s offer set');
    // The data channel the peer opens at start is reported from the prepared peer on.
    expect(a.events.some((event) => event.type === 'datachannel' && event.session === 'a1')).toBe(true);
    expect(a.call.peer()).toBeUndefined();
    expect(sigA.sent).toEqual([]);
    a.call.call({ audio: true, video: false });
    expect(a.call.status()).toMatchObject({ state: 'outgoing', session: 'a1', media: { audio: true, video: false } });
    await waitFor(() => b.call.status().state === 'incoming', 'B ringing');
    b.call.accept();
    await waitFor(() => connected(a) && connected(b), 'both connected');
    expect(a.ports).toHaveLength(1);
    const states = a.statuses.map((status) => status.state);
    expect(states.filter((state, index) => state !== states[index - 1])).toEqual(['idle', 'prepared', 'outgoing', 'active']);
  });

  it('stop() on a prepared line closes its connection and sends nothing', async () => {
    const { a, sigA } = startLines();
    a.call.prepare();
    await waitFor(() => a.ports[0]?.signalingState === 'have-local-offer', 'A’s offer set');
    a.call.stop();
    expect(a.ports[0]?.signalingState).toBe('closed');
    expect(sigA.sent).toEqual([]);
  });
});
