import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { firstValueFrom, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { DataChannelEvent, IceCandidate, RtcPortEvent } from '@parley/core';
import { isInvalidStateError } from '@parley/core';
import { createDataChannelPort, createRtcPort } from '../src/index.js';
import { STATE_RECHECK_MS } from '../src/rtc-port.js';
import type { BrowserRtcPort } from '../src/index.js';
import wrtc from '@roamhq/wrtc';
import { createWrtcConnection } from './helpers/wrtc.js';
import { waitFor } from './helpers/wait.js';
import { connect, ofType, record, usePorts } from './helpers/ports.js';

// createRtcPort over real libwebrtc connections (@roamhq/wrtc): what the adapter maps, what it
// evens out between engines, and the RtcPort contract after close. Every connection here is
// loopback-only (no ICE servers; only 127.0.0.1 candidates are passed across).

const { adopt } = usePorts();

function newPort(configuration: RTCConfiguration = {}): BrowserRtcPort {
  return adopt(createWrtcConnection(configuration));
}

describe('createRtcPort: events', () => {
  it('holds events raised before the first subscriber (a negotiationneeded from a track added at once)', async () => {
    const port = newPort();
    port.pc.addTransceiver('audio');
    // libwebrtc fires negotiationneeded in a later task (webrtc-pc §4.7.3 "update the negotiation-needed flag").
    await new Promise((resolve) => setTimeout(resolve, 20));
    const events = record(port);
    expect(events.map((event) => event.type)).toContain('negotiationneeded');
  });

  it('maps every connection event to one typed stream, with plain candidates and descriptions, and connects two real peers', async () => {
    const a = newPort();
    const b = newPort();
    const eventsA = record(a);
    const eventsB = record(b);
    a.pc.addTransceiver('audio');
    a.createDataChannel('chat');
    await connect(a, b, eventsA, eventsB);

    // Descriptions are plain { type, sdp } objects, not engine classes.
    expect(Object.getPrototypeOf(a.localDescription)).toBe(Object.prototype);
    expect(a.localDescription).toEqual({ type: 'offer', sdp: expect.stringContaining('v=0') as unknown });
    expect(b.remoteDescription?.type).toBe('offer');

    // Candidates are plain RTCIceCandidateInit copies; gathering ends with exactly one null.
    await waitFor(() => ofType(eventsA, 'icecandidate').some((event) => event.candidate === null), 'end of candidates on A', 5000);
    const candidates = ofType(eventsA, 'icecandidate').map((event) => event.candidate);
    expect(candidates.filter((candidate) => candidate === null)).toHaveLength(1);
    expect(candidates.at(-1)).toBeNull();
    const first = candidates[0] as IceCandidate;
    expect(Object.getPrototypeOf(first)).toBe(Object.prototype);
    expect(Object.keys(first).sort()).toEqual(['candidate', 'sdpMLineIndex', 'sdpMid', 'usernameFragment']);
    expect(first.candidate).toMatch(/^candidate:/);

    // State streams: each value reported once per change, in the order the engine reached them.
    const states = (type: 'signalingstatechange' | 'connectionstatechange' | 'iceconnectionstatechange' | 'icegatheringstatechange', events: RtcPortEvent[]) =>
      (ofType(events, type) as { state: string }[]).map((event) => event.state);
    expect(states('signalingstatechange', eventsA)).toEqual(['have-local-offer', 'stable']);
    expect(states('signalingstatechange', eventsB)).toEqual(['have-remote-offer', 'stable']);
    for (const events of [eventsA, eventsB]) {
      for (const type of ['connectionstatechange', 'iceconnectionstatechange', 'icegatheringstatechange'] as const) {
        const seen = states(type, events);
        const repeated = seen.filter((state, index) => index > 0 && seen[index - 1] === state);
        expect(repeated, `${type} repeats a state: ${seen.join(' -> ')}`).toEqual([]);
      }
      expect(states('connectionstatechange', events)).toContain('connected');
    }

    // The remote side receives the track (with its transceiver's mid) and the data channel.
    await waitFor(() => ofType(eventsB, 'track').length === 1 && ofType(eventsB, 'datachannel').length === 1, 'track and channel on B', 5000);
    const [track] = ofType(eventsB, 'track');
    expect(track?.mid).toBe(b.pc.getTransceivers()[0]?.mid);
    expect(track?.mid).not.toBeNull();
    expect(ofType(eventsB, 'datachannel')[0]?.channel.label).toBe('chat');
  });

  it('reports icecandidateerror with its code, text and URL (a STUN server that is not there)', async () => {
    const port = newPort({ iceServers: [{ urls: 'stun:127.0.0.1:9' }] });
    const events = record(port);
    port.createDataChannel('probe');
    await port.setLocalDescription(await port.createOffer());
    await waitFor(() => ofType(events, 'icecandidateerror').length > 0, 'an icecandidateerror', 15_000);
    const [error] = ofType(events, 'icecandidateerror');
    expect(error).toEqual({ type: 'icecandidateerror', errorCode: expect.any(Number) as unknown, errorText: expect.any(String) as unknown, url: 'stun:127.0.0.1:9' });
  }, 20_000);
});

describe('createRtcPort: after close (RtcPort contract, webrtc-pc §4.4.1.9)', () => {
  it('reports nothing more, refuses every call with InvalidStateError, and never settles a pending promise', async () => {
    const a = newPort();
    const b = newPort();
    const eventsA = record(a);
    const eventsB = record(b);
    a.createDataChannel('chat');
    await connect(a, b, eventsA, eventsB);

    b.pc.addTransceiver('video');
    const pending = b.createOffer();
    let settled = false;
    pending.then(
      () => (settled = true),
      () => (settled = true),
    );
    const countA = eventsA.length;
    const countB = eventsB.length;
    b.close();
    b.close(); // idempotent
    expect(b.closed).toBe(true);
    expect(b.signalingState).toBe('closed');
    expect(b.connectionState).toBe('closed');

    const refusals = await Promise.allSettled([
      b.createOffer(),
      b.createAnswer(),
      b.setLocalDescription({ type: 'rollback' }),
      b.setRemoteDescription({ type: 'offer', sdp: a.localDescription?.sdp ?? '' }),
      b.addIceCandidate(null),
    ]);
    for (const refusal of refusals) {
      expect(refusal.status).toBe('rejected');
      expect(isInvalidStateError((refusal as PromiseRejectedResult).reason)).toBe(true);
    }
    let thrown: unknown;
    try {
      b.createDataChannel('late');
    } catch (error) {
      thrown = error;
    }
    expect(isInvalidStateError(thrown)).toBe(true);
    expect(() => b.restartIce()).not.toThrow();
    let refusedConfiguration: unknown;
    try {
      b.setConfiguration({ iceServers: [] });
    } catch (error) {
      refusedConfiguration = error;
    }
    expect(isInvalidStateError(refusedConfiguration)).toBe(true);

    // libwebrtc resolves a createOffer pending at close and reports `closed` states afterwards;
    // the port drops both. The remote side notices through its own engine only.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(settled).toBe(false);
    expect(eventsB.length).toBe(countB);
    expect(eventsA.length).toBeGreaterThanOrEqual(countA);
  });
});

describe('createRtcPort: addTrack and replaceTrack (webrtc-pc §5.1, §5.2)', () => {
  const tracks: MediaStreamTrack[] = [];
  afterEach(() => {
    for (const track of tracks.splice(0)) track.stop();
  });
  const videoTrack = (): MediaStreamTrack => {
    const track = new wrtc.nonstandard.RTCVideoSource().createTrack();
    tracks.push(track);
    return track;
  };

  it('adds a track (negotiation needed), replaces it on its sender, and refuses what the engine and the contract refuse', async () => {
    const port = newPort();
    const events = record(port);
    const camera = videoTrack();
    port.addTrack(camera, new wrtc.MediaStream([camera]));
    await waitFor(() => events.some((event) => event.type === 'negotiationneeded'), 'negotiationneeded');
    expect(port.pc.getSenders().map((sender) => sender.track)).toEqual([camera]);
    expect(() => port.addTrack(camera)).toThrow(expect.objectContaining({ name: 'InvalidAccessError' }) as Error);

    const screen = videoTrack();
    await port.replaceTrack(camera, screen);
    expect(port.pc.getSenders().map((sender) => sender.track)).toEqual([screen]);
    await expect(port.replaceTrack(camera, videoTrack())).rejects.toMatchObject({ name: 'InvalidAccessError' });

    port.close();
    expect(() => port.addTrack(videoTrack())).toThrow(expect.objectContaining({ name: 'InvalidStateError' }) as Error);
    await expect(port.replaceTrack(screen, videoTrack())).rejects.toMatchObject({ name: 'InvalidStateError' });
  });
});

describe('createRtcPort: setConfiguration (webrtc-pc §4.4.1.6, ICE servers only)', () => {
  it('replaces the ICE servers and keeps every other field the connection was created with', () => {
    const port = newPort({
      iceServers: [{ urls: 'turn:127.0.0.1:3478', username: 'old', credential: 'old-secret' }],
      iceTransportPolicy: 'relay',
      bundlePolicy: 'max-bundle',
    });
    // The engine refuses a configuration that changes bundlePolicy (here: back to its default).
    expect(() => port.pc.setConfiguration({ iceServers: [] })).toThrow(expect.objectContaining({ name: 'InvalidModificationError' }) as Error);
    port.setConfiguration({ iceServers: [{ urls: ['turn:127.0.0.1:3478'], username: 'new', credential: 'new-secret' }] });
    const configuration = port.pc.getConfiguration();
    expect(configuration.iceServers).toEqual([expect.objectContaining({ urls: ['turn:127.0.0.1:3478'], username: 'new', credential: 'new-secret' })]);
    expect(configuration).toMatchObject({ iceTransportPolicy: 'relay', bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
  });

  it('passes on what the engine throws for a malformed list (a TURN URL without credentials)', () => {
    const port = newPort();
    expect(() => port.setConfiguration({ iceServers: [{ urls: 'turn:127.0.0.1:3478' }] })).toThrow(expect.objectContaining({ name: 'InvalidAccessError' }) as Error);
  });
});

describe('createRtcPort: data channels (webrtc-pc §6.2)', () => {
  async function openPair() {
    const a = newPort();
    const b = newPort();
    const eventsA = record(a);
    const eventsB = record(b);
    const local = a.createDataChannel('chat', { ordered: true, protocol: 'parley-test' });
    await connect(a, b, eventsA, eventsB);
    await waitFor(() => ofType(eventsB, 'datachannel').length === 1, 'the channel on B', 5000);
    const remote = ofType(eventsB, 'datachannel')[0]!.channel;
    return { a, b, local, remote };
  }

  it('carries strings, ArrayBuffers and views as ArrayBuffer, both ways, holding what arrives before the first subscriber', async () => {
    const { local, remote } = await openPair();
    expect(remote.label).toBe('chat');
    expect(remote.protocol).toBe('parley-test');
    expect(remote.ordered).toBe(true);
    expect(remote.id).toBe(local.id);
    await waitFor(() => local.readyState === 'open' && remote.readyState === 'open', 'both ends open', 5000);

    // Sent before anyone subscribed to the remote end: held for its first subscriber.
    local.send('hello');
    local.send(new Uint8Array([1, 2, 3, 250]));
    local.send(new Uint16Array([0x0102, 0x0304]).subarray(1));
    local.send(new Uint8Array([9, 8, 7]).buffer);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const atRemote: DataChannelEvent[] = [];
    remote.events$.subscribe((event) => atRemote.push(event));
    await waitFor(() => ofType2(atRemote, 'message').length === 4, 'four messages at B', 5000);
    const received = ofType2(atRemote, 'message').map((event) => event.data);
    expect(received[0]).toBe('hello');
    for (const data of received.slice(1)) expect(data).toBeInstanceOf(ArrayBuffer);
    expect([...new Uint8Array(received[1] as ArrayBuffer)]).toEqual([1, 2, 3, 250]);
    expect(new Uint16Array(received[2] as ArrayBuffer)).toEqual(new Uint16Array([0x0304]));
    expect([...new Uint8Array(received[3] as ArrayBuffer)]).toEqual([9, 8, 7]);

    const atLocal: DataChannelEvent[] = [];
    local.events$.subscribe((event) => atLocal.push(event));
    remote.send('and back');
    await waitFor(() => ofType2(atLocal, 'message').length === 1, 'the reply at A', 5000);
    expect(ofType2(atLocal, 'message')[0]?.data).toBe('and back');
  });

  it('forwards bufferedAmountLowThreshold and completes after close on both ends', async () => {
    const { local, remote } = await openPair();
    await waitFor(() => local.readyState === 'open', 'open', 5000);
    const atLocal: DataChannelEvent[] = [];
    let localCompleted = false;
    local.events$.subscribe({ next: (event) => atLocal.push(event), complete: () => (localCompleted = true) });
    const remoteEvents = firstValueFrom(remote.events$.pipe(toArray()));

    local.bufferedAmountLowThreshold = 1024;
    expect(local.bufferedAmountLowThreshold).toBe(1024);

    local.close();
    await waitFor(() => localCompleted, 'the local stream completes', 5000);
    expect(atLocal.at(-1)).toEqual({ type: 'close' });
    expect((await remoteEvents).at(-1)).toEqual({ type: 'close' });
    expect(local.readyState).toBe('closed');
    expect(remote.readyState).toBe('closed');
  });
});

describe('createDataChannelPort: event mapping (a scripted RTCDataChannel)', () => {
  // libwebrtc in Node never raises bufferedamountlow (its bufferedAmount stays 0), so the
  // mapping of the events a browser raises is checked on a scripted channel.
  function scriptedChannel() {
    const channel = Object.assign(new EventTarget(), {
      label: 'scripted',
      id: 7,
      ordered: false,
      protocol: '',
      readyState: 'connecting',
      bufferedAmount: 0,
      bufferedAmountLowThreshold: 0,
      binaryType: 'blob',
      sent: [] as unknown[],
      send(data: unknown) {
        this.sent.push(data);
      },
      close() {},
    });
    const raise = (type: string, fields: Record<string, unknown> = {}) => channel.dispatchEvent(Object.assign(new Event(type), fields));
    return { channel, raise, port: createDataChannelPort(channel as unknown as RTCDataChannel) };
  }

  it('asks for ArrayBuffer binaries and maps open, message, bufferedamountlow, closing, error and close', () => {
    const { channel, raise, port } = scriptedChannel();
    expect(channel.binaryType).toBe('arraybuffer');
    const events: DataChannelEvent[] = [];
    let completed = false;
    port.events$.subscribe({ next: (event) => events.push(event), complete: () => (completed = true) });
    const bytes = new Uint8Array([5, 6, 7, 8]);
    raise('open');
    raise('message', { data: 'text' });
    raise('message', { data: bytes.buffer });
    raise('message', { data: bytes.subarray(1, 3) });
    raise('message', { data: { size: 3 } }); // a Blob-like: the engine ignored binaryType
    raise('bufferedamountlow');
    raise('closing');
    raise('error', { error: Object.assign(new Error('SCTP failure'), { name: 'OperationError' }) });
    raise('error', {});
    raise('close');
    raise('message', { data: 'after close' });

    expect(events.map((event) => event.type)).toEqual([
      'open', 'message', 'message', 'message', 'error', 'bufferedamountlow', 'closing', 'error', 'error', 'close',
    ]);
    const messages = ofType2(events, 'message').map((event) => event.data);
    expect(messages[0]).toBe('text');
    expect([...new Uint8Array(messages[1] as ArrayBuffer)]).toEqual([5, 6, 7, 8]);
    expect([...new Uint8Array(messages[2] as ArrayBuffer)]).toEqual([6, 7]);
    const errors = ofType2(events, 'error').map((event) => event.error);
    expect(errors[0]?.name).toBe('NotSupportedError');
    expect(errors[1]).toMatchObject({ name: 'OperationError', message: 'SCTP failure' });
    expect(errors[2]?.name).toBe('OperationError');
    expect(completed).toBe(true);
  });

  it('forwards send for each payload kind, and the threshold', () => {
    const { channel, port } = scriptedChannel();
    const view = new Uint8Array([1, 2]);
    port.send('a');
    port.send(view.buffer);
    port.send(view);
    expect(channel.sent).toEqual(['a', view.buffer, view]);
    port.bufferedAmountLowThreshold = 4096;
    expect(channel.bufferedAmountLowThreshold).toBe(4096);
    expect([port.label, port.id, port.ordered, port.protocol, port.readyState]).toEqual(['scripted', 7, false, '', 'connecting']);
  });
});

function ofType2<T extends DataChannelEvent['type']>(events: readonly DataChannelEvent[], type: T) {
  return events.filter((event): event is Extract<DataChannelEvent, { type: T }> => event.type === type);
}

describe('createRtcPort: engines without connectionState', () => {
  it('derives the connection state from the ICE connection state and reports each change once', () => {
    // A minimal pre-1.0 engine: an EventTarget with iceConnectionState but no connectionState.
    const legacy = Object.assign(new EventTarget(), {
      signalingState: 'stable',
      iceGatheringState: 'new',
      iceConnectionState: 'new',
      close() {},
    }) as unknown as RTCPeerConnection;
    const port = createRtcPort(legacy);
    const events = record(port);
    const set = (state: string) => {
      (legacy as unknown as { iceConnectionState: string }).iceConnectionState = state;
      legacy.dispatchEvent(new Event('iceconnectionstatechange'));
    };
    for (const state of ['checking', 'connected', 'completed', 'disconnected', 'connected', 'failed']) set(state);
    expect(ofType(events, 'connectionstatechange').map((event) => event.state)).toEqual([
      'connecting',
      'connected',
      'disconnected',
      'connected',
      'failed',
    ]);
    expect(port.connectionState).toBe('failed');
  });
});

describe('@parley/browser dependency rule (docs/architecture.md)', () => {
  it('src imports only @parley/core and rxjs', () => {
    const sourceRoot = fileURLToPath(new URL('../src', import.meta.url));
    const files = readdirSync(sourceRoot).filter((file) => file.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(2);
    for (const file of files) {
      const text = readFileSync(`${sourceRoot}/${file}`, 'utf8');
      for (const [, specifier] of text.matchAll(/\bfrom\s+['"]([^'"]+)['"]/g)) {
        if (specifier!.startsWith('.')) continue;
        expect(['@parley/core', 'rxjs'], `${file} imports ${specifier}`).toContain(specifier);
      }
    }
  });
});

describe('states the engine reached without telling (libwebrtc in Node, group.real.test.ts)', () => {
  /** The part of an RTCPeerConnection the port reads states from; its states change silently. */
  class SilentStatesConnection extends EventTarget {
    signalingState: RTCSignalingState = 'stable';
    iceGatheringState: RTCIceGatheringState = 'complete';
    iceConnectionState: RTCIceConnectionState = 'disconnected';
    connectionState: RTCPeerConnectionState = 'disconnected';
    close(): void {
      this.signalingState = 'closed';
    }
  }

  it('reports the ICE and connection states it finds on re-reading them, once each, and nothing after close', async () => {
    const pc = new SilentStatesConnection();
    const port = adopt(pc);
    const events = record(port);
    // The engine dispatched its last events while the attributes still read `disconnected`,
    // then reached `connected` without another event.
    pc.dispatchEvent(new Event('iceconnectionstatechange'));
    pc.dispatchEvent(new Event('connectionstatechange'));
    pc.iceConnectionState = 'connected';
    pc.connectionState = 'connected';
    await waitFor(() => ofType(events, 'connectionstatechange').length > 0, 'the port to report the connection state it re-read', 3 * STATE_RECHECK_MS);
    await waitFor(() => ofType(events, 'iceconnectionstatechange').length > 0, 'the port to report the ICE state it re-read', 3 * STATE_RECHECK_MS);
    expect(ofType(events, 'connectionstatechange')).toEqual([{ type: 'connectionstatechange', state: 'connected' }]);
    expect(ofType(events, 'iceconnectionstatechange')).toEqual([{ type: 'iceconnectionstatechange', state: 'connected' }]);

    port.close();
    pc.connectionState = 'failed';
    pc.iceConnectionState = 'failed';
    await new Promise((resolve) => setTimeout(resolve, 2 * STATE_RECHECK_MS));
    expect(events.filter((event) => event.type === 'connectionstatechange' || event.type === 'iceconnectionstatechange')).toHaveLength(2);
  });
});
