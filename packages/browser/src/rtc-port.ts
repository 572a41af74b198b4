import { BufferUntilSubscribed } from '@parley/core';
import type {
  DataChannelInit,
  DataChannelPort,
  IceCandidate,
  IceConnectionState,
  IceGatheringState,
  IceServer,
  MediaStreamHandle,
  MediaTrackHandle,
  PeerConnectionState,
  RtcConfiguration,
  RtcPort,
  RtcPortEvent,
  SessionDescription,
  SignalingState,
} from '@parley/core';
import { createDataChannelPort } from './data-channel-port.js';
import type { HostRtcPeerConnection, RtcIceServerLike, RtcPeerConnectionLike } from './rtc-types.js';

// Any W3C RTCPeerConnection (webrtc-pc §4.4) as a core RtcPort. The adapter forwards; it does
// not decide. It uses only the explicit forms every engine supports: setLocalDescription with a
// description, rollback as its own description (webrtc-pc §4.4.1.5), never the parameterless
// setLocalDescription() or the implicit rollback of setRemoteDescription(offer). Where engines
// disagree on what they report, the port evens it out, and says so next to the rule.

/** A core RtcPort over a W3C RTCPeerConnection, which stays the app's to use (tracks, stats). */
export interface BrowserRtcPort<PC extends RtcPeerConnectionLike = HostRtcPeerConnection> extends RtcPort {
  /** The wrapped connection: add tracks and transceivers, read stats, set its configuration. */
  readonly pc: PC;
  /** True once `close()` was called on this port. */
  readonly closed: boolean;
}

const PC_EVENTS = [
  'negotiationneeded',
  'icecandidate',
  'icecandidateerror',
  'signalingstatechange',
  'icegatheringstatechange',
  'iceconnectionstatechange',
  'connectionstatechange',
  'track',
  'datachannel',
] as const;

function invalidState(what: string): Error {
  return Object.assign(new Error(`${what}: the RTC port is closed`), { name: 'InvalidStateError' });
}

/** A plain { type, sdp } copy: engines hand out RTCSessionDescription objects. */
function plainDescription(description: RTCSessionDescriptionInit | RTCSessionDescription): SessionDescription {
  return description.sdp === undefined ? { type: description.type } : { type: description.type, sdp: description.sdp };
}

/** webrtc-pc §4.8.2 RTCIceCandidateInit, copied field by field (toJSON is not everywhere). */
function plainCandidate(candidate: RTCIceCandidate): IceCandidate {
  return {
    candidate: candidate.candidate,
    sdpMid: candidate.sdpMid ?? null,
    sdpMLineIndex: candidate.sdpMLineIndex ?? null,
    usernameFragment: candidate.usernameFragment ?? null,
  };
}

/**
 * webrtc-pc §4.2.1 RTCIceServer objects from readonly ones (core's IceServer, or a signaling
 * server's `welcome.iceServers`), for `new RTCPeerConnection({ iceServers })`: the DOM type
 * wants mutable lists.
 */
export function toRtcIceServers(servers: readonly IceServer[]): RtcIceServerLike[] {
  return servers.map((server) => ({
    urls: typeof server.urls === 'string' ? server.urls : [...server.urls],
    ...(server.username !== undefined ? { username: server.username } : {}),
    ...(server.credential !== undefined ? { credential: server.credential } : {}),
  }));
}

/**
 * The candidate without its null members. webrtc-pc §4.8.1.1 allows `sdpMLineIndex: null` next to
 * an `sdpMid` (libdatachannel's candidates carry only a mid), but libwebrtc in Node
 * (@roamhq/wrtc) rejects a null index with "TypeError: Expected a 32-bit integer"; an absent
 * member means the same to every engine.
 */
function presentFields(candidate: IceCandidate): RTCIceCandidateInit {
  const init: RTCIceCandidateInit = { candidate: candidate.candidate };
  if (candidate.sdpMid !== null && candidate.sdpMid !== undefined) init.sdpMid = candidate.sdpMid;
  if (candidate.sdpMLineIndex !== null && candidate.sdpMLineIndex !== undefined) init.sdpMLineIndex = candidate.sdpMLineIndex;
  if (candidate.usernameFragment !== null && candidate.usernameFragment !== undefined) init.usernameFragment = candidate.usernameFragment;
  return init;
}

/** The connection's `connectionState`; engines older than webrtc-pc 1.0 lack it, so it is
 * derived from the ICE state there (webrtc-pc §4.3.3 lists the mapping's ingredients). */
function connectionStateOf(pc: RTCPeerConnection): PeerConnectionState {
  const state = (pc as Partial<RTCPeerConnection>).connectionState;
  if (state !== undefined) return state;
  switch (pc.iceConnectionState) {
    case 'checking':
      return 'connecting';
    case 'completed':
      return 'connected';
    default:
      return pc.iceConnectionState;
  }
}

/**
 * How often the port reads the ICE and connection states again, whatever the engine dispatched.
 * libwebrtc in Node (@roamhq/wrtc 0.10) does not always tell: in a group call on loopback whose
 * relayed pairs recovered by ICE restart (browser test group.real.test.ts), some connections
 * reached `connected` while the last `connectionstatechange` and `iceconnectionstatechange` they
 * dispatched still read `disconnected`, and no event followed (2 runs of 8, both under load); the
 * machines then saw a dead connection that was carrying data. The attribute is the truth
 * (webrtc-pc §4.4.1.5 sets it before firing), so the port compares it with what it reported.
 */
export const STATE_RECHECK_MS = 1000;

/**
 * Engines whose W3C API departs from webrtc-pc where the machines rely on it, told apart by
 * their own extension members (none says which engine it is otherwise):
 * - `libdatachannel` (node-datachannel's polyfill): never fires `negotiationneeded`, not even for
 *   the first data channel (webrtc-pc §6.1, createDataChannel: "If channel is the first
 *   RTCDataChannel created on connection, update the negotiation-needed flag"). And as offerer
 *   it can fail DTLS when its candidates reach the answerer before the answer reaches it: on
 *   ICE connected it starts DTLS at once, and its setRemoteDescription hands the answer to ICE
 *   before it stores the answer's fingerprint (libdatachannel 0.24.5, node-datachannel 0.33.4;
 *   upstream pull request 1612 "Fix DTLS startup ordering", not released). An answerer that
 *   already has a working pair with our candidate connects in that gap, its certificate is
 *   checked against no fingerprint ("certificate verify failed", alert "unknown CA"), and the
 *   connection fails and closes. So its candidates are reported once it leaves
 *   `have-local-offer`: the answerer then cannot reach it before the fingerprint is stored.
 *   Trickle ICE (RFC 8838) leaves it to the agent when it sends its candidates. Its
 *   `ext_maxDataChannelId` marks it.
 */
type EngineQuirks = 'libdatachannel' | 'w3c';

function quirksOf(pc: RTCPeerConnection): EngineQuirks {
  return 'ext_maxDataChannelId' in pc ? 'libdatachannel' : 'w3c';
}

/**
 * Wraps `pc` as a core RtcPort. Call it right after constructing the connection (tracks may be
 * added before or after): events raised before the machines subscribe are held for them.
 *
 * Contract (see RtcPort): state events are reported once per change (libwebrtc in Node repeats
 * some). A state event carries no state, so the port reports the attribute as it is when the
 * event is dispatched; in Node, libwebrtc updates the attribute on its own thread first, so a
 * short-lived state (e.g. `connecting`) can be passed over there, never in a browser; and as it
 * sometimes dispatches no event for the state it ends in, the port reads the ICE and connection
 * states again every STATE_RECHECK_MS and reports a change it finds. After
 * `close()` the port reports nothing, its methods throw or reject with InvalidStateError, and
 * promises pending at close never settle (webrtc-pc §4.4.1.9), whatever the engine does with
 * them.
 */
export function createRtcPort<PC extends RtcPeerConnectionLike>(pc: PC): BrowserRtcPort<PC>;
export function createRtcPort(pc: RTCPeerConnection): BrowserRtcPort<RTCPeerConnection> {
  const events = new BufferUntilSubscribed<RtcPortEvent>();
  const quirks = quirksOf(pc);
  let closed = false;
  /** libdatachannel: whether a local data channel was created yet (the first one needs an offer). */
  let hasLocalChannel = false;
  /** libdatachannel as offerer: the candidates it reports once the answer is applied (see EngineQuirks). */
  const heldCandidates: RtcPortEvent[] = [];
  const holdsCandidates = (): boolean => quirks === 'libdatachannel' && pc.signalingState === 'have-local-offer';
  const releaseCandidates = (): void => {
    for (const held of heldCandidates.splice(0)) events.next(held);
  };
  const reportCandidate = (event: RtcPortEvent): void => {
    if (holdsCandidates()) {
      heldCandidates.push(event);
      return;
    }
    releaseCandidates();
    events.next(event);
  };
  let lastSignaling: SignalingState = pc.signalingState;
  let lastGathering: IceGatheringState = pc.iceGatheringState;
  let lastIce: IceConnectionState = pc.iceConnectionState;
  let lastConnection: PeerConnectionState = connectionStateOf(pc);

  const onEvent = (event: Event): void => {
    if (closed) return;
    switch (event.type) {
      case 'negotiationneeded':
        return events.next({ type: 'negotiationneeded' });
      case 'icecandidate': {
        const { candidate } = event as RTCPeerConnectionIceEvent;
        if (candidate === null) return reportCandidate({ type: 'icecandidate', candidate: null });
        // webrtc-pc §4.4.1.6: an empty candidate string marks the end of one generation; the
        // null candidate that ends gathering follows, so only that one is reported.
        if (candidate.candidate === '') return;
        return reportCandidate({ type: 'icecandidate', candidate: plainCandidate(candidate) });
      }
      case 'icecandidateerror': {
        const error = event as RTCPeerConnectionIceErrorEvent;
        return events.next({ type: 'icecandidateerror', errorCode: error.errorCode, errorText: error.errorText, url: error.url });
      }
      case 'signalingstatechange':
        if (pc.signalingState !== lastSignaling) {
          lastSignaling = pc.signalingState;
          events.next({ type: 'signalingstatechange', state: lastSignaling });
        }
        if (!holdsCandidates()) releaseCandidates();
        return;
      case 'icegatheringstatechange':
        if (pc.iceGatheringState === lastGathering) return;
        lastGathering = pc.iceGatheringState;
        return events.next({ type: 'icegatheringstatechange', state: lastGathering });
      case 'iceconnectionstatechange': {
        reportIceConnectionState();
        // Engines without connectionstatechange: the derived state changes with the ICE state.
        if ((pc as Partial<RTCPeerConnection>).connectionState === undefined) reportConnectionState();
        return;
      }
      case 'connectionstatechange':
        return reportConnectionState();
      case 'track': {
        const { track, streams, transceiver } = event as RTCTrackEvent;
        return events.next({ type: 'track', track, streams: [...streams], mid: transceiver?.mid ?? null });
      }
      case 'datachannel':
        return events.next({ type: 'datachannel', channel: createDataChannelPort((event as RTCDataChannelEvent).channel) });
    }
  };

  const reportIceConnectionState = (): void => {
    if (pc.iceConnectionState === lastIce) return;
    lastIce = pc.iceConnectionState;
    events.next({ type: 'iceconnectionstatechange', state: lastIce });
  };

  const reportConnectionState = (): void => {
    const state = connectionStateOf(pc);
    if (state === lastConnection) return;
    lastConnection = state;
    events.next({ type: 'connectionstatechange', state });
  };

  for (const type of PC_EVENTS) pc.addEventListener(type, onEvent);

  /** Reports an ICE or connection state the engine reached without an event (STATE_RECHECK_MS). */
  const recheckStates = (): void => {
    if (closed) return;
    reportIceConnectionState();
    reportConnectionState();
  };
  const recheck = setInterval(recheckStates, STATE_RECHECK_MS);
  // In Node, the timer alone does not keep the process alive.
  (recheck as { unref?: () => void }).unref?.();

  /** Runs an engine call unless closed; its result is dropped if the port closes meanwhile. */
  const guarded = <T>(what: string, run: () => Promise<T>): Promise<T> => {
    if (closed) return Promise.reject(invalidState(what));
    return new Promise<T>((resolve, reject) => {
      run().then(
        (value) => {
          if (!closed) resolve(value);
        },
        (error: unknown) => {
          if (!closed) reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  };

  return {
    pc,
    get closed() {
      return closed;
    },
    get signalingState() {
      return closed ? 'closed' : pc.signalingState;
    },
    get iceGatheringState() {
      return pc.iceGatheringState;
    },
    get iceConnectionState() {
      return closed ? 'closed' : pc.iceConnectionState;
    },
    get connectionState() {
      return closed ? 'closed' : connectionStateOf(pc);
    },
    get localDescription() {
      const description = pc.localDescription;
      return description ? plainDescription(description) : null;
    },
    get remoteDescription() {
      const description = pc.remoteDescription;
      return description ? plainDescription(description) : null;
    },
    events$: events.observable,
    createOffer(options) {
      return guarded('createOffer', async () => plainDescription(await pc.createOffer(options?.iceRestart ? { iceRestart: true } : {})));
    },
    createAnswer() {
      return guarded('createAnswer', async () => plainDescription(await pc.createAnswer()));
    },
    setLocalDescription(description) {
      return guarded('setLocalDescription', () => pc.setLocalDescription(description));
    },
    setRemoteDescription(description) {
      return guarded('setRemoteDescription', () => pc.setRemoteDescription(description));
    },
    addIceCandidate(candidate) {
      // null is end-of-candidates (webrtc-pc §4.4.1.6 step "If candidate.candidate is an empty
      // string"): the empty-string form is the one every engine accepts.
      return guarded('addIceCandidate', () => pc.addIceCandidate(candidate === null ? { candidate: '' } : presentFields(candidate)));
    },
    restartIce() {
      if (closed) return;
      // Engines before webrtc-pc 1.0 lack restartIce; the machines' next offer asks for the
      // restart itself (createOffer({ iceRestart: true })), so nothing is lost there.
      if (typeof (pc as Partial<RTCPeerConnection>).restartIce === 'function') pc.restartIce();
    },
    setConfiguration(configuration: RtcConfiguration) {
      if (closed) throw invalidState('setConfiguration');
      // webrtc-pc §4.4.1.6 setConfiguration replaces the whole configuration, and engines refuse
      // a change of bundlePolicy, rtcpMuxPolicy or certificates (InvalidModificationError): the
      // connection's own configuration is carried over and only its iceServers are replaced.
      pc.setConfiguration({ ...pc.getConfiguration(), iceServers: toRtcIceServers(configuration.iceServers) });
    },
    addTrack(track: MediaTrackHandle, ...streams: MediaStreamHandle[]) {
      if (closed) throw invalidState('addTrack');
      // webrtc-pc §5.1: the engine throws InvalidAccessError for a track it already sends.
      pc.addTrack(track as MediaStreamTrack, ...(streams as MediaStream[]));
    },
    replaceTrack(current: MediaTrackHandle, next: MediaTrackHandle) {
      if (closed) return Promise.reject(invalidState('replaceTrack'));
      const sender = pc.getSenders().find((candidate) => candidate.track === current);
      if (sender === undefined) {
        return Promise.reject(Object.assign(new Error('replaceTrack: no sender of this connection sends that track'), { name: 'InvalidAccessError' }));
      }
      // webrtc-pc §5.2: same kind, no negotiation; the engine rejects TypeError for another kind.
      return sender.replaceTrack(next as MediaStreamTrack);
    },
    createDataChannel(label: string, init?: DataChannelInit): DataChannelPort {
      if (closed) throw invalidState('createDataChannel');
      const channel = createDataChannelPort(pc.createDataChannel(label, init));
      // libdatachannel (see EngineQuirks): the first channel's negotiationneeded, which it never fires.
      // (Its remoteDescription is never null: an empty description stands for none.)
      if (quirks === 'libdatachannel' && !hasLocalChannel && !pc.remoteDescription?.sdp) {
        queueMicrotask(() => {
          if (!closed) events.next({ type: 'negotiationneeded' });
        });
      }
      hasLocalChannel = true;
      return channel;
    },
    close() {
      if (closed) return;
      closed = true;
      clearInterval(recheck);
      for (const type of PC_EVENTS) pc.removeEventListener(type, onEvent);
      pc.close();
    },
  };
}
