// What the three call set-up pages share (call-raw, call-parley, call-simple-peer): the page's
// parameters, the camera and microphone (fake devices, opened the same way and at the same point
// for every subject: before the call, or with `?media=at-call` by the subject itself when it
// calls or is called), the loopback candidate filter for the subjects that do not
// use Parley's, the measurements and the `window.bench` API the driver uses
// (apps/bench/src/call-setup). Every time is `performance.timeOrigin + performance.now()`, so the
// two pages' times compare.

export type CallRole = 'caller' | 'callee';

/** What one page measured in one call. Times are epoch milliseconds (see above). */
export interface SideTimes {
  readonly role: CallRole;
  /** The caller's "call" moment (t0); null on the callee. */
  readonly call: number | null;
  /** The page's RTCPeerConnection reached connectionState `connected`. */
  readonly connected: number;
  /** The first remote video frame decoded and presented (requestVideoFrameCallback). */
  readonly firstFrame: number;
  /** Steps of the set-up, first occurrence of each (for profiling). */
  readonly marks: Readonly<Record<string, number>>;
}

export interface CallBenchApi {
  /** Resolves once the page is joined, knows the other page and has its media (unless `media=at-call`). */
  readonly ready: Promise<void>;
  /** Caller only: starts the call now; returns t0. */
  call(): number;
  /** Resolves with this side's times once it is connected and shows a remote frame. */
  result(): Promise<SideTimes>;
  /** What went wrong, if anything (for the driver's error messages). */
  problems(): readonly string[];
  /** The steps so far, ms from this page's time origin (for the driver's error messages). */
  steps(): Readonly<Record<string, number>>;
}

declare global {
  interface Window {
    bench?: CallBenchApi;
  }
}

export interface PageParams {
  readonly role: CallRole;
  readonly room: string;
  /** ws:// address of the parley-signaling server. */
  readonly signalingUrl: string;
  /**
   * `?media=at-call`: the camera and microphone are not opened before the call; each subject
   * opens them itself on "call" (caller) or when the call reaches it (callee).
   */
  readonly mediaAtCall: boolean;
  /**
   * `?address=`: the one address whose candidates are signaled (default 127.0.0.1). Firefox never
   * gathers 127.0.0.1, so a call with it signals a veth address of the bench's own network
   * namespace (scripts/in-namespace.mjs).
   */
  readonly candidateAddress: string;
  /**
   * `?line=prepared` (Parley only): the caller's line is prepared as soon as the page is ready
   * (`Call.prepare()`: its connection made, its offer set, its candidates gathered before "call").
   */
  readonly preparedLine: boolean;
}

export function pageParams(): PageParams {
  const query = new URLSearchParams(location.search);
  const role = query.get('role');
  if (role !== 'caller' && role !== 'callee') throw new Error(`role must be caller or callee, got ${String(role)}`);
  const room = query.get('room') ?? 'bench';
  const signalingUrl = query.get('signal') ?? `ws://${location.host}/`;
  const media = query.get('media') ?? 'before-call';
  if (media !== 'before-call' && media !== 'at-call') throw new Error(`media must be before-call or at-call, got ${media}`);
  const line = query.get('line') ?? 'unprepared';
  if (line !== 'unprepared' && line !== 'prepared') throw new Error(`line must be unprepared or prepared, got ${line}`);
  return { role, room, signalingUrl, mediaAtCall: media === 'at-call', candidateAddress: query.get('address') ?? LOOPBACK_ADDRESS, preparedLine: line === 'prepared' };
}

export const now = (): number => performance.timeOrigin + performance.now();

/** The same for every subject: no STUN/TURN servers, loopback candidates only (chromium.ts flag). */
export const RTC_CONFIGURATION: RTCConfiguration = { iceServers: [] };

/** The same for every subject: one fake camera and one fake microphone. */
export const MEDIA_CONSTRAINTS: MediaStreamConstraints = { audio: true, video: true };

/** The label of the one data channel every subject's caller opens (simple-peer always opens one). */
export const DATA_CHANNEL_LABEL = 'bench';

/** The address of an `a=candidate` line or a candidate attribute (RFC 8839 §5.1, field 5). */
function candidateAddress(candidate: string): string | undefined {
  return candidate.replace(/^a=/, '').split(' ')[4];
}

/** The address every page signals unless `?address=` names another. */
export const LOOPBACK_ADDRESS = '127.0.0.1';

/** The candidate filter of the raw and simple-peer pages, doing what Parley's keepCandidateAddresses(address) does. */
export function isSignaledCandidate(candidate: string, address = LOOPBACK_ADDRESS): boolean {
  return candidateAddress(candidate) === address;
}

/** Drops the SDP's candidate lines of other addresses than `address` (as Parley does for its descriptions). */
export function keepSignaledCandidatesInSdp(sdp: string, address = LOOPBACK_ADDRESS): string {
  return sdp
    .split('\r\n')
    .filter((line) => !line.startsWith('a=candidate:') || isSignaledCandidate(line, address))
    .join('\r\n');
}

/**
 * Measurements and the driver API of one page. The subject's page calls `watchConnection(pc)`
 * on every RTCPeerConnection it makes, `showRemoteTrack(track)` on every remote track, and
 * `setCall(start)` with what "call" does on the caller.
 */
export class CallPage {
  readonly params = pageParams();
  readonly marks: Record<string, number> = {};
  private readonly issues: string[] = [];
  private callTime: number | null = null;
  private connectedTime: number | null = null;
  private frameTime: number | null = null;
  private startCall: (() => void) | null = null;
  private settle: (() => void) | null = null;
  private readonly finished = new Promise<void>((resolve) => (this.settle = resolve));
  private video: HTMLVideoElement | null = null;
  media: MediaStream | null = null;

  /** Records a step; a repeated one as `name#2`, `name#3`, ... */
  mark(name: string): void {
    let key = name;
    for (let n = 2; key in this.marks; n++) key = `${name}#${n}`;
    this.marks[key] = now();
  }

  /** Records a step the first time only. */
  markOnce(name: string): void {
    if (!(name in this.marks)) this.marks[name] = now();
  }

  problem(text: string): void {
    this.issues.push(text);
    console.error(`[bench] ${text}`);
  }

  /**
   * Opens the fake camera and microphone: before any call (not timed), or with `?media=at-call`
   * when the subject's call needs them (timed, marked `media-open`).
   */
  async openMedia(): Promise<MediaStream> {
    this.media = await navigator.mediaDevices.getUserMedia(MEDIA_CONSTRAINTS);
    this.mark('media-open');
    return this.media;
  }

  /** The page's set-up opens the media only when the subject does not open it at the call. */
  async openMediaBeforeCall(): Promise<void> {
    if (!this.params.mediaAtCall) await this.openMedia();
  }

  /** The local tracks, for addTrack. */
  tracks(): MediaStreamTrack[] {
    if (this.media === null) throw new Error('media is not open');
    return this.media.getTracks();
  }

  setCall(start: () => void): void {
    this.startCall = start;
  }

  /** The same observation of every subject's connection: its own events, nothing in between. */
  watchConnection(pc: RTCPeerConnection): void {
    this.mark('pc-created');
    pc.addEventListener('signalingstatechange', () => this.mark(`signaling-${pc.signalingState}`));
    pc.addEventListener('icegatheringstatechange', () => this.mark(`gathering-${pc.iceGatheringState}`));
    pc.addEventListener('iceconnectionstatechange', () => this.mark(`ice-${pc.iceConnectionState}`));
    pc.addEventListener('icecandidate', (event) => {
      if (event.candidate !== null && event.candidate.candidate !== '') this.mark('local-candidate');
    });
    pc.addEventListener('connectionstatechange', () => {
      this.mark(`connection-${pc.connectionState}`);
      if (pc.connectionState === 'connected' && this.connectedTime === null) {
        this.connectedTime = now();
        this.check();
      }
      if (pc.connectionState === 'failed') this.problem('connection failed');
    });
    pc.addEventListener('track', () => this.mark('track'));
  }

  /** Plays the first remote video track and notes its first presented frame. */
  showRemoteTrack(track: MediaStreamTrack): void {
    if (track.kind !== 'video' || this.video !== null) return;
    const video = document.createElement('video');
    this.video = video;
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    video.width = 160;
    video.height = 120;
    document.body.append(video);
    video.requestVideoFrameCallback(() => {
      this.frameTime = now();
      this.mark('first-frame');
      this.check();
    });
    video.srcObject = new MediaStream([track]);
    video.play().catch((error: unknown) => this.problem(`play(): ${String(error)}`));
  }

  private check(): void {
    if (this.connectedTime !== null && this.frameTime !== null) this.settle?.();
  }

  /** Publishes `window.bench`; `ready` is the page's own set-up (join, media unless at call, the other peer known). */
  publish(ready: Promise<void>): void {
    ready.catch((error: unknown) => this.problem(`set-up: ${String(error)}`));
    window.bench = {
      ready,
      call: () => {
        if (this.params.role !== 'caller' || this.startCall === null) throw new Error('only a ready caller can call');
        this.callTime = now();
        this.startCall();
        return this.callTime;
      },
      result: async () => {
        await this.finished;
        return {
          role: this.params.role,
          call: this.callTime,
          connected: this.connectedTime!,
          firstFrame: this.frameTime!,
          marks: { ...this.marks },
        };
      },
      problems: () => [...this.issues],
      steps: () => Object.fromEntries(Object.entries(this.marks).map(([name, time]) => [name, Math.round(time - performance.timeOrigin)])),
    };
  }
}

// ---- raw and simple-peer pages: parley-signaling's join/signal frames over a plain WebSocket ----

export interface RawSignaling {
  /** The other page's id in the room, once known. */
  readonly remote: Promise<string>;
  send(data: object): void;
  onSignal(handler: (data: Record<string, unknown>, from: string) => void): void;
}

/**
 * Joins the room on the signaling server (wire protocol version 1, docs/architecture.md) and learns the
 * other page's id from `welcome.peers` or `peer-joined`. Signals go to that id.
 */
export function joinRoom(params: PageParams): Promise<RawSignaling> {
  return new Promise((resolveJoined, rejectJoined) => {
    const socket = new WebSocket(params.signalingUrl);
    let remoteId: string | null = null;
    let handler: ((data: Record<string, unknown>, from: string) => void) | null = null;
    let resolveRemote!: (id: string) => void;
    const remote = new Promise<string>((resolve) => (resolveRemote = resolve));
    const learn = (id: string): void => {
      if (remoteId === null) {
        remoteId = id;
        resolveRemote(id);
      }
    };
    const signaling: RawSignaling = {
      remote,
      send(data) {
        if (remoteId === null) throw new Error('no remote peer yet');
        socket.send(JSON.stringify({ type: 'signal', to: remoteId, data }));
      },
      onSignal(next) {
        handler = next;
      },
    };
    socket.addEventListener('open', () => socket.send(JSON.stringify({ type: 'join', room: params.room, name: params.role })));
    socket.addEventListener('error', () => rejectJoined(new Error('signaling socket error')));
    socket.addEventListener('message', (event) => {
      const frame = JSON.parse(String(event.data)) as Record<string, unknown>;
      switch (frame['type']) {
        case 'welcome': {
          const peers = frame['peers'] as { id: string }[];
          if (peers[0] !== undefined) learn(peers[0].id);
          resolveJoined(signaling);
          return;
        }
        case 'peer-joined':
          learn((frame['peer'] as { id: string }).id);
          return;
        case 'signal':
          handler?.(frame['data'] as Record<string, unknown>, frame['from'] as string);
          return;
        case 'error':
          console.error(`[bench] signaling error ${JSON.stringify(frame)}`);
          return;
      }
    });
  });
}
