import { createCall, keepCandidateAddresses } from '@parley/core';
import type { Call, DataChannelActor } from '@parley/core';
import { createSignalingClient } from '@parley/signaling-ws/client';
import type { WebSocketConstructorLike } from '@parley/signaling-ws/client';
import { createRtcPort } from '../../src/index.js';
import type { BrowserRtcPort, EngineName } from '../../src/index.js';

// One side of an interop call, the same code in every engine: in Node for libwebrtc, werift and
// libdatachannel, bundled into a page (page/party-page.ts) for Chromium and Firefox. It runs
// Parley as an app does (createCall, createRtcPort, parley-signaling) and answers the suite's
// questions with plain JSON values, so a page can be driven through `evaluate`.

/** What a side sends and receives as media in a call. */
export type MediaRole =
  /** Sends its own video and shows (decodes) the other side's. */
  | 'sendrecv'
  /** Receives the other side's video as RTP packets (werift: no decoder). */
  | 'receive-rtp'
  /** No media at all (data channels only). */
  | 'none';

export interface PartyConfig {
  readonly engine: EngineName;
  readonly signalingUrl: string;
  readonly room: string;
  readonly name: string;
  /** The only candidate address this side signals (127.0.0.1, or the namespace's for Firefox). */
  readonly address: string;
  readonly media: MediaRole;
  /** The RTCConfiguration for every connection this side makes (engineOptions.<engine>()). */
  readonly rtcConfiguration: RTCConfiguration;
}

/** What the engine gives a side: its RTCPeerConnection and, for media, its local video. */
export interface PartyEngine {
  readonly RTCPeerConnection: new (configuration: RTCConfiguration) => RTCPeerConnection;
  readonly WebSocket?: WebSocketConstructorLike;
  /** The local video track to send, with its stream (`sendrecv` only). */
  localVideo?(): Promise<{ readonly track: MediaStreamTrack; readonly stream: MediaStream }>;
  /** Starts counting the RTP packets of a received track (`receive-rtp` only). */
  countRtp?(track: unknown, onPacket: () => void): void;
}

/** The ICE credentials in use, per description (RFC 8839 §5.4 `a=ice-ufrag`). */
export interface IceUfrags {
  readonly local: string | null;
  readonly remote: string | null;
}

/** What the suite asks a side; every answer is JSON. */
export interface Party {
  /** Joins the room and waits for the other side; resolves with this side's signaling id. */
  ready(): Promise<string>;
  /** Rings the other side (it accepts at once). */
  call(): void;
  /** Resolves when the call is active, connected and the `chat` channel is open. */
  connected(): Promise<void>;
  /** Sends text on the channel with this label (this side's or the other's). */
  send(label: string, text: string): void;
  /** Resolves with the texts received on `label` once there are `count` (default 1). */
  received(label: string, count?: number): Promise<string[]>;
  /** Opens a data channel now (a glare round opens one on each side at once). */
  openChannel(label: string): void;
  /** Resolves when a channel with this label is open here. */
  channelOpen(label: string): Promise<void>;
  /** Adds a recvonly video transceiver now, which needs a renegotiation. */
  addTransceiver(): void;
  /** Resolves when signaling is stable, both descriptions have the same m-sections, at least
   * `sections`, and every transceiver is in them; resolves with their number. */
  negotiated(sections: number): Promise<number>;
  /** The m-sections of the current local description. */
  sections(): number;
  ufrags(): IceUfrags;
  /** Asks for an ICE restart. */
  restartIce(): void;
  /** Resolves when the ICE ufrags differ from `before` (each one `expect` names; both by
   * default) and the connection is connected again. */
  restarted(before: IceUfrags, expect?: { readonly local: boolean; readonly remote: boolean }): Promise<IceUfrags>;
  /** Resolves when the other side's media arrived: decoded frames, or RTP packets. */
  mediaReceived(): Promise<string>;
  /** Problems seen (errors the call reported). */
  problems(): string[];
  close(): void;
}

const POLL_MS = 25;

async function until<T>(what: string | (() => string), probe: () => T | undefined | false, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function mSections(sdp: string | undefined): number {
  return (sdp ?? '').split(/\r?\n/).filter((line) => line.startsWith('m=')).length;
}

function ufragOf(sdp: string | undefined): string | null {
  const line = (sdp ?? '').split(/\r?\n/).find((text) => text.startsWith('a=ice-ufrag:'));
  return line === undefined ? null : line.slice('a=ice-ufrag:'.length).trim();
}

/** A side of an interop call (see above). */
export function createParty(config: PartyConfig, engine: PartyEngine): Party {
  const client = createSignalingClient({
    url: config.signalingUrl,
    room: config.room,
    name: config.name,
    ...(engine.WebSocket ? { webSocket: engine.WebSocket } : {}),
  });
  const messages = new Map<string, string[]>();
  const problems: string[] = [];
  /** The peer's notices (glare, rollbacks ...): normal in a call, shown when a check times out. */
  const notices: string[] = [];
  let rtpPackets = 0;
  let port: BrowserRtcPort | undefined;
  let call: Call | undefined;
  let localVideo: Promise<{ readonly track: MediaStreamTrack; readonly stream: MediaStream }> | undefined;
  if (config.media === 'sendrecv') localVideo = engine.localVideo?.();

  const createRtc = (): BrowserRtcPort => {
    const pc = new engine.RTCPeerConnection(config.rtcConfiguration);
    if (config.media === 'sendrecv') {
      // The track is added when it is there: a renegotiation if the call has begun already.
      void localVideo?.then(({ track, stream }) => pc.addTrack(track, stream));
    }
    if (config.media === 'receive-rtp') {
      pc.addEventListener('track', (event) => engine.countRtp?.(event.track, () => (rtpPackets += 1)));
    }
    port = createRtcPort(pc);
    return port;
  };

  const channel = (label: string): DataChannelActor | undefined =>
    call
      ?.peer()
      ?.getSnapshot()
      .context.channels.find((actor) => actor.getSnapshot().context.label === label);

  const pc = (): RTCPeerConnection => {
    if (port === undefined) throw new Error(`${config.name}: no connection yet`);
    return port.pc;
  };

  /** The negotiation as it stands, for error messages. */
  const negotiationNow = (): string => {
    const connection = port?.pc;
    if (connection === undefined) return 'no connection';
    return [
      `signaling ${connection.signalingState}`,
      `ice ${connection.iceConnectionState}`,
      `connection ${connection.connectionState}`,
      `candidates local ${(connection.localDescription?.sdp.match(/a=candidate:/g) ?? []).length}, remote ${(connection.remoteDescription?.sdp.match(/a=candidate:/g) ?? []).length}`,
      `local ${mSections(connection.localDescription?.sdp)} m-sections`,
      `remote ${mSections(connection.remoteDescription?.sdp)}`,
      `transceivers ${connection.getTransceivers().map((t) => `${t.mid ?? '-'}:${t.direction}`).join(',')}`,
      `problems ${problems.join(' | ')}`,
      `notices ${notices.join(' | ')}`,
    ].join(', ');
  };

  return {
    async ready() {
      const self = await until('joining the room', () => selfOf(client));
      await new Promise<void>((resolve) => {
        const subscription = client.peers$.subscribe((peers) => {
          const other = peers.find((peer) => peer.id !== self);
          if (other === undefined || call !== undefined) return;
          call = createCall({
            signaling: client.portFor(other.id),
            createRtc,
            peer: { candidateFilter: keepCandidateAddresses(config.address), dataChannels: [{ label: 'chat' }] },
          });
          call.status$.subscribe((status) => {
            if (status.state === 'incoming') call?.accept();
          });
          call.events$.subscribe((event) => {
            if (event.type === 'message') {
              const list = messages.get(event.label) ?? [];
              list.push(typeof event.data === 'string' ? event.data : `<${event.data.byteLength} bytes>`);
              messages.set(event.label, list);
            }
            if (event.type === 'error') problems.push(`${event.operation}: ${String(event.error)}`);
            if (event.type === 'notice') notices.push(`${event.notice}: ${event.detail}`);
          });
          queueMicrotask(() => subscription.unsubscribe());
          resolve();
        });
      });
      return self;
    },
    call() {
      call?.call();
    },
    async connected() {
      const now = (): string => `call ${JSON.stringify(call?.status())}; chat ${JSON.stringify(channel('chat')?.getSnapshot().value ?? null)}; ${negotiationNow()}`;
      await until(() => `${config.name} connected with chat open (${now()})`, () => {
        const status = call?.status();
        // An ended call does not come back by itself: say so now, not after the bound.
        if (status?.state === 'ended') throw new Error(`${config.name}: the call ended before it connected with chat open (${now()})`);
        return status?.state === 'active' && status.connection?.connectionState === 'connected' && channel('chat')?.getSnapshot().matches('open');
      });
    },
    send(label, text) {
      const actor = channel(label);
      if (actor === undefined) throw new Error(`${config.name}: no channel ${label}`);
      actor.send({ type: 'SEND', data: text });
    },
    received: (label, count = 1) =>
      until(() => `${config.name}: ${count} message(s) on ${label} (got ${JSON.stringify(messages.get(label) ?? [])}; channel ${JSON.stringify(channel(label)?.getSnapshot().value)}; ${negotiationNow()})`, () => (messages.get(label)?.length ?? 0) >= count && messages.get(label)),
    openChannel(label) {
      call?.createDataChannel(label);
    },
    async channelOpen(label) {
      await until(`${config.name}: channel ${label} open`, () => channel(label)?.getSnapshot().matches('open'));
    },
    addTransceiver() {
      pc().addTransceiver('video', { direction: 'recvonly' });
    },
    negotiated: (sections) =>
      until(() => `${config.name}: stable with ${sections} m-sections (${negotiationNow()})`, () => {
        const connection = pc();
        const local = mSections(connection.localDescription?.sdp);
        const remote = mSections(connection.remoteDescription?.sdp);
        const sdp = connection.localDescription?.sdp ?? '';
        const everyTransceiverNegotiated = connection.getTransceivers().every((transceiver) => transceiver.mid !== null && sdp.includes(`a=mid:${transceiver.mid}\r\n`));
        return connection.signalingState === 'stable' && local === remote && local >= sections && everyTransceiverNegotiated && local;
      }),
    sections: () => mSections(pc().localDescription?.sdp),
    ufrags: () => ({ local: ufragOf(pc().localDescription?.sdp), remote: ufragOf(pc().remoteDescription?.sdp) }),
    restartIce() {
      call?.restartIce();
    },
    restarted: (before, expect = { local: true, remote: true }) =>
      until(() => `${config.name}: new ICE credentials on both sides, connected (before ${JSON.stringify(before)}, now ${JSON.stringify({ local: ufragOf(port?.pc.localDescription?.sdp), remote: ufragOf(port?.pc.remoteDescription?.sdp) })}; ${negotiationNow()})`, () => {
        const connection = pc();
        const now = { local: ufragOf(connection.localDescription?.sdp), remote: ufragOf(connection.remoteDescription?.sdp) };
        const connected = call?.status().connection?.connectionState === 'connected';
        const renewed = (now.local !== before.local || !expect.local) && (now.remote !== before.remote || !expect.remote);
        return renewed && connection.signalingState === 'stable' && connected && now;
      }),
    async mediaReceived() {
      if (config.media === 'receive-rtp') {
        await until(`${config.name}: RTP packets`, () => rtpPackets > 0);
        return `${rtpPackets} RTP packets`;
      }
      const connection = pc();
      for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
        let frames = 0;
        (await connection.getStats()).forEach((report: Record<string, unknown>) => {
          const decoded = report['framesDecoded'];
          if (report['type'] === 'inbound-rtp' && report['kind'] === 'video' && typeof decoded === 'number') frames += decoded;
        });
        if (frames > 0) return `${frames} frames decoded`;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error(`${config.name}: no decoded video frame`);
    },
    problems: () => problems,
    close() {
      call?.stop();
      port?.close();
      client.close();
    },
  };
}

function selfOf(client: ReturnType<typeof createSignalingClient>): string | undefined {
  let id: string | undefined;
  client.self$.subscribe((self) => (id = self?.id)).unsubscribe();
  return id;
}
