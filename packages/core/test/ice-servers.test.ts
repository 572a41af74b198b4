import { BehaviorSubject } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { createCall, createPeer } from '../src/index.js';
import type { Call, CallAppEvent, IceServer, Peer, PeerAppEvent } from '../src/index.js';
import { createFakeNetwork, createSignalingPair } from '../src/testing/index.js';
import type { FakeRtcPort } from '../src/testing/index.js';
import { waitFor } from './helpers/wait-for.js';

// `iceServers$` on a running peer (createPeer) and on a call line (createCall): each list goes
// to the RTC port with setConfiguration (webrtc-pc §4.4.1.6, ICE servers only), in place before
// the recovery's ICE restart gathers again; closed ports are left alone; refused lists are
// reported. The fake port records the configurations and validates them as webrtc-pc does.

const turn = (issue: number): IceServer[] => [{ urls: ['turn:turn.example'], username: `u${issue}`, credential: `c${issue}` }];
const usernames = (port: FakeRtcPort) => port.configurations.map((configuration) => configuration.iceServers[0]?.username);

const peers: Peer[] = [];
const calls: Call[] = [];
afterEach(() => {
  for (const peer of peers.splice(0)) peer.close();
  for (const call of calls.splice(0)) call.stop();
});

function startPeers(iceServers$: BehaviorSubject<IceServer[]>) {
  const network = createFakeNetwork();
  const [sigA, sigB] = createSignalingPair();
  const portA = network.createPort({ name: 'A' });
  const portB = network.createPort({ name: 'B' });
  const delays = { disconnectedGrace: 20, iceRestartBackoff: 150, connectTimeout: 500 };
  const a = createPeer({ rtc: portA, signaling: sigA, polite: false, delays, maxIceRestarts: 20, dataChannels: [{ label: 'chat' }], iceServers$ });
  const b = createPeer({ rtc: portB, signaling: sigB, polite: true, delays, maxIceRestarts: 20 });
  peers.push(a, b);
  const events: PeerAppEvent[] = [];
  a.events$.subscribe((event) => events.push(event));
  return { network, a, b, portA, portB, events };
}

const bothConnected = (...ports: FakeRtcPort[]) => ports.every((port) => port.connectionState === 'connected');

describe('createPeer({ iceServers$ })', () => {
  it('applies the current list and each new one to the port, and none after close', async () => {
    const iceServers$ = new BehaviorSubject(turn(1));
    const { a, portA, portB, events } = startPeers(iceServers$);
    expect(usernames(portA)).toEqual(['u1']);
    await waitFor(() => bothConnected(portA, portB), 'both connected');
    iceServers$.next(turn(2));
    iceServers$.next(turn(3));
    expect(usernames(portA)).toEqual(['u1', 'u2', 'u3']);
    expect(portA.configurations[2]).toEqual({ iceServers: turn(3) });
    expect(portB.configurations).toEqual([]);

    a.close();
    iceServers$.next(turn(4));
    expect(usernames(portA)).toEqual(['u1', 'u2', 'u3']);
    expect(portA.illegalCalls).toEqual([]);
    expect(events.filter((event) => event.type === 'error')).toEqual([]);
  });

  it('has the fresh credentials in place before the ICE restart that recovers a failed connection', async () => {
    const iceServers$ = new BehaviorSubject(turn(1));
    const { network, portA, portB, events } = startPeers(iceServers$);
    await waitFor(() => bothConnected(portA, portB), 'both connected');
    iceServers$.next(turn(2));
    network.setConnectivity(false);
    await waitFor(() => events.some((event) => event.type === 'negotiated' && event.iceRestart), 'an ICE-restart negotiation by A');
    network.setConnectivity(true);
    await waitFor(() => bothConnected(portA, portB), 'both connected again');
    const operations = portA.operations;
    const applied = operations.lastIndexOf('setConfiguration(1 ICE server(s))');
    const restart = operations.findIndex((operation) => operation === 'restartIce()' || operation.includes('iceRestart'));
    expect(restart, operations.join('\n')).toBeGreaterThan(applied);
    expect(usernames(portA)).toEqual(['u1', 'u2']);
  });

  it('reports a list the port refuses (a TURN URL without credentials) as an error event and keeps running', async () => {
    const iceServers$ = new BehaviorSubject(turn(1));
    const { a, portA, portB, events } = startPeers(iceServers$);
    await waitFor(() => bothConnected(portA, portB), 'both connected');
    iceServers$.next([{ urls: 'turn:turn.example' }]);
    const errors = events.filter((event) => event.type === 'error');
    expect(errors).toEqual([{ type: 'error', operation: 'setConfiguration', error: expect.objectContaining({ name: 'InvalidAccessError' }) as unknown }]);
    expect(usernames(portA)).toEqual(['u1']);
    expect(a.actor.getSnapshot().status).toBe('active');
  });
});

describe('createCall({ peer: { iceServers$ } })', () => {
  it('applies each list to the port of the call in progress, the latest to each new call, none to an ended one', async () => {
    const network = createFakeNetwork();
    const [sigA, sigB] = createSignalingPair();
    const iceServers$ = new BehaviorSubject(turn(1));
    const portsA: FakeRtcPort[] = [];
    const portsB: FakeRtcPort[] = [];
    const line = (signaling: typeof sigA, ports: FakeRtcPort[], name: string, withIceServers: boolean) => {
      const call = createCall({
        signaling,
        createRtc: () => {
          const port = network.createPort({ name: `${name}${ports.length + 1}` });
          ports.push(port);
          return port;
        },
        peer: { dataChannels: [{ label: 'chat' }], ...(withIceServers ? { iceServers$ } : {}) },
      });
      calls.push(call);
      return call;
    };
    const a = line(sigA, portsA, 'A', true);
    const b = line(sigB, portsB, 'B', false);
    const events: CallAppEvent[] = [];
    a.events$.subscribe((event) => events.push(event));

    const ring = async () => {
      a.call();
      await waitFor(() => b.status().state === 'incoming', 'B ringing');
      b.accept();
      await waitFor(() => a.status().connection?.connectionState === 'connected' && b.status().connection?.connectionState === 'connected', 'connected');
    };
    await ring();
    expect(usernames(portsA[0]!)).toEqual(['u1']);
    iceServers$.next(turn(2));
    expect(usernames(portsA[0]!)).toEqual(['u1', 'u2']);

    a.hangup();
    await waitFor(() => b.status().state === 'ended', 'B ended');
    iceServers$.next(turn(3));
    expect(usernames(portsA[0]!)).toEqual(['u1', 'u2']);

    await ring();
    expect(usernames(portsA[1]!)).toEqual(['u3']);
    iceServers$.next(turn(4));
    expect(usernames(portsA[1]!)).toEqual(['u3', 'u4']);
    expect(portsB.flatMap((port) => port.configurations)).toEqual([]);
    expect(portsA.flatMap((port) => port.illegalCalls)).toEqual([]);
    expect(events.filter((event) => event.type === 'error')).toEqual([]);
  });
});
