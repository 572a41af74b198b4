// The room: who is here, one call line to each of them, and the call in progress (video, chat,
// files, state panel). Everything the page shows is rendered from the packages' streams:
// the signaling client's presence and status, each line's `status$`, and the current call's
// peer events.
import { Subscription, filter } from 'rxjs';
import { DataChannelClosedError, createCall, keepCandidateAddresses } from '@parley/core';
import type { Call, CandidateFilter, CallAppEvent, CallEnd, CallState, CallStatus, DataChannel } from '@parley/core';
import { createRtcPort, detachStream, keepLoopbackCandidates, loopbackOnly, stats$, toMediaAccessError, toRtcIceServers } from '@parley/browser';
import { createSignalingClient } from '@parley/signaling-ws/client';
import type { IceServerConfig, PeerInfo, SignalingClient, SignalingClientStatus } from '@parley/signaling-ws/client';
import type { InspectionEvent } from 'xstate';
import { encodeChatFrame, parseChatFrame } from './chat-protocol.js';
import { byTestId, h, setText, show } from './dom.js';
import { createFileReceiver, createFileSender, fileChannelOf } from './file-transfer.js';
import { GroupCallView } from './group-call-view.js';
import type { FileReceiver, FileSender, IncomingFileEvent } from './file-transfer.js';
import { canCaptureScreen } from './local-media.js';
import type { LocalMedia } from './local-media.js';
import { describeCallEnd, describeMediaFailure, describeScreenShareFailure, describeSignaling } from './messages.js';
import type { Notices } from './notices.js';
import { initialOf, play } from './playback.js';
import { inviteUrl, signalingUrl } from './settings.js';
import type { PageSettings } from './settings.js';
import { TransferRow, appendChatLine } from './side-panel.js';
import { StatsHistory, drawStatsChart, formatBitrate, formatRtt } from './stats-chart.js';

/** One call line to one person in the room (the call machine, started when they appear). */
interface Line {
  readonly peer: PeerInfo;
  readonly call: Call;
  /** The connection of the line's current call; set by `createRtc` when the call goes active. */
  pc: RTCPeerConnection | null;
  /** The last state rendered, to notice transitions. */
  lastState: CallState;
  /** They left the room; the line goes once its call is over. */
  left: boolean;
  readonly subscriptions: Subscription;
}

/** What belongs to one active call (one session): remote media, channels, transfers, stats. */
interface ActiveCall {
  readonly line: Line;
  readonly session: string;
  readonly remoteStream: MediaStream;
  chat: DataChannel | null;
  files: FileSender | null;
  readonly receiver: FileReceiver;
  readonly incoming: Map<string, TransferRow>;
  /** What the other side says it sends (its `media` frames); unknown until the first one. */
  remoteMedia: { readonly audio: boolean; readonly video: boolean; readonly screen: boolean } | null;
  readonly history: StatsHistory;
  readonly subscriptions: Subscription;
}

/** A person's row in the presence list. */
interface PresenceRow {
  readonly element: HTMLLIElement;
  readonly label: HTMLElement;
  readonly call: HTMLButtonElement;
}

type Inspect = (event: InspectionEvent) => void;

/** A line in one of these states holds this side: others hear "busy". */
const BUSY_STATES: readonly CallState[] = ['outgoing', 'incoming', 'active'];

function isBusyState(state: CallState): boolean {
  return BUSY_STATES.includes(state);
}

/** The end reasons of a call that had a connection (it went `active` first). */
const ENDS_AFTER_ACTIVE: ReadonlySet<CallEnd['reason']> = new Set(['hangup', 'remote-hangup', 'connection-failed']);

/**
 * What `connection-state` shows: the connection's state while the call is active; `closed` once
 * a call that had a connection has ended; otherwise `new` (there is no connection yet).
 */
function shownConnectionState(status: CallStatus | undefined): string {
  if (status?.connection) return status.connection.connectionState;
  return status?.end && ENDS_AFTER_ACTIVE.has(status.end.reason) ? 'closed' : 'new';
}

function hasTurn(servers: readonly IceServerConfig[]): boolean {
  return servers.some((server) => (typeof server.urls === 'string' ? [server.urls] : server.urls).some((url) => /^turns?:/.test(url)));
}

export class RoomPage {
  private readonly ui = {
    roomInfo: byTestId('room-info'),
    roomName: byTestId('room-name'),
    selfName: byTestId('self-name'),
    signalingStatus: byTestId('signaling-status'),
    copyInvite: byTestId<HTMLButtonElement>('copy-invite'),
    peerList: byTestId<HTMLUListElement>('peer-list'),
    peerListEmpty: byTestId('peer-list-empty'),
    callState: byTestId('call-state'),
    signalingServerState: byTestId('signaling-server-state'),
    signalingState: byTestId('signaling-state'),
    iceGatheringState: byTestId('ice-gathering-state'),
    iceConnectionState: byTestId('ice-connection-state'),
    connectionState: byTestId('connection-state'),
    candidatePair: byTestId('candidate-pair'),
    iceMode: byTestId('ice-mode'),
    chart: byTestId<HTMLCanvasElement>('stats-chart'),
    inspectorNote: byTestId('inspector-note'),
    stage: byTestId('stage'),
    remoteVideo: byTestId<HTMLVideoElement>('remote-video'),
    remotePlaceholder: byTestId('remote-placeholder'),
    remoteAvatar: byTestId('remote-avatar'),
    stageMessage: byTestId('stage-message'),
    remoteMuted: byTestId('remote-muted'),
    remoteCameraOff: byTestId('remote-camera-off'),
    remoteScreen: byTestId('remote-screen'),
    unmuteRemote: byTestId<HTMLButtonElement>('unmute-remote'),
    localVideo: byTestId<HTMLVideoElement>('local-video'),
    localLabel: byTestId('local-label'),
    ringing: byTestId('ringing'),
    ringingAvatar: byTestId('ringing-avatar'),
    ringingText: byTestId('ringing-text'),
    accept: byTestId<HTMLButtonElement>('accept'),
    reject: byTestId<HTMLButtonElement>('reject'),
    mute: byTestId<HTMLButtonElement>('mute'),
    camera: byTestId<HTMLButtonElement>('camera'),
    screenShare: byTestId<HTMLButtonElement>('screen-share'),
    hangup: byTestId<HTMLButtonElement>('hangup'),
    chatLog: byTestId<HTMLOListElement>('chat-log'),
    chatForm: byTestId<HTMLFormElement>('chat-form'),
    chatInput: byTestId<HTMLInputElement>('chat-input'),
    chatSend: byTestId<HTMLButtonElement>('chat-send'),
    filePick: byTestId('file-pick'),
    fileInput: byTestId<HTMLInputElement>('file-input'),
    transfers: byTestId<HTMLUListElement>('transfers'),
  };
  private readonly lines = new Map<string, Line>();
  private readonly subscriptions = new Subscription();
  private client: SignalingClient | null = null;
  private signalingStatus: SignalingClientStatus = 'connecting';
  private peers: readonly PeerInfo[] = [];
  private iceServers: readonly IceServerConfig[] = [];
  /** The line the stage shows: the one ringing or in a call, else the last one that did. */
  private focus: Line | null = null;
  private active: ActiveCall | null = null;
  /** The room's group call (Join call / Leave call). */
  private group: GroupCallView | null = null;
  private readonly presenceRows = new Map<string, PresenceRow>();

  constructor(
    private readonly settings: PageSettings,
    private readonly join: { readonly room: string; readonly name: string },
    private readonly media: LocalMedia,
    /** The `inspect` function for one actor system, named `label` in the live machine view. */
    private readonly inspectorFor: (label: string) => Inspect,
    /** The page's one banner area (the address's problems may already stand in it). */
    private readonly notices: Notices,
  ) {}

  start(): void {
    const { ui, join } = this;
    show(ui.roomInfo, true);
    setText(ui.roomName, join.room);
    setText(ui.selfName, join.name);
    setText(ui.iceMode, this.settings.iceAddress === null ? this.settings.ice : `${this.settings.ice}:${this.settings.iceAddress}`);
    document.title = `${join.room} · Parley`;
    if (this.settings.inspect) {
      ui.inspectorNote.textContent =
        'Stately inspector attached: it opens stately.ai in a pop-up window and needs an internet connection (allow pop-ups for this page).';
      show(ui.inspectorNote, true);
    }
    this.bindControls();
    this.showLocalMedia();

    const client = createSignalingClient({
      url: signalingUrl(new URL(location.href)),
      room: join.room,
      name: join.name,
      inspect: this.inspectorFor('signaling client'),
    });
    this.client = client;
    this.group = new GroupCallView({
      client,
      media: this.media,
      rtcConfiguration: () => this.rtcConfiguration(),
      candidateFilter: this.candidateFilter(),
      followIceServers: this.followsIceServers(),
      inspect: this.inspectorFor('group call'),
      notices: this.notices,
      oneToOneBusy: () => [...this.lines.values()].some((line) => isBusyState(line.call.status().state)),
      onChat: (name, text) => appendChatLine(this.ui.chatLog, name === null ? 'system' : 'them', name ?? '', text),
      onChange: () => this.render(),
    });
    this.group.start();
    this.subscriptions.add(
      client.state$.subscribe((status) => {
        this.signalingStatus = status;
        ui.signalingStatus.dataset['status'] = status;
        setText(ui.signalingStatus, status);
        setText(ui.signalingServerState, status);
        this.notices.set('signaling', describeSignaling(status, this.active !== null));
        this.render();
      }),
    );
    this.subscriptions.add(client.iceServers$.subscribe((servers) => this.onIceServers(servers)));
    this.subscriptions.add(client.peers$.subscribe((peers) => this.onPeers(peers)));
    this.subscriptions.add(client.peerLeft$.subscribe((peer) => this.onPeerLeft(peer)));
    this.subscriptions.add(
      client.errors$.subscribe((error) => {
        console.warn('signaling:', error);
        if (error.fatal) this.notices.set('signaling-error', { tone: 'error', text: `Signaling refused us: ${error.message}` });
      }),
    );
    // Leaving the page ends our calls and leaves the room at once (the others see us go now,
    // not after the server's resume grace).
    addEventListener('pagehide', () => this.stop());
  }

  /**
   * Leaving the page: a call in progress is hung up (the other side ends at once instead of
   * waiting for the connection to fail); anything ringing is left to the room's `peer-left`, so
   * the other side reads "left the room" rather than "declined".
   */
  stop(): void {
    for (const line of this.lines.values()) if (line.call.status().state === 'active') line.call.hangup();
    this.group?.stop();
    this.client?.close();
    for (const line of this.lines.values()) line.call.stop();
    this.subscriptions.unsubscribe();
  }

  // ---- presence and lines -------------------------------------------------------------------

  private onPeers(peers: readonly PeerInfo[]): void {
    this.peers = peers;
    for (const peer of peers) if (!this.lines.has(peer.id)) this.addLine(peer);
    // A peer gone from the list without a peer-left (e.g. we were away): drop its idle line.
    for (const line of [...this.lines.values()]) {
      if (!peers.some((peer) => peer.id === line.peer.id) && !isBusyState(line.call.status().state)) this.removeLine(line);
    }
    this.render();
  }

  private onPeerLeft(peer: PeerInfo): void {
    const line = this.lines.get(peer.id);
    if (!line) return;
    line.left = true;
    const state = line.call.status().state;
    line.call.remoteLeft();
    if (state === 'active') this.notices.set('presence', { tone: 'warning', text: `${peer.name} left the room. The call lasts while the connection does.` });
    else if (!isBusyState(state)) this.notices.set('presence', { tone: 'info', text: `${peer.name} left the room.` });
    if (!isBusyState(line.call.status().state)) this.removeLine(line);
    this.render();
  }

  private addLine(peer: PeerInfo): void {
    const client = this.client;
    if (!client) return;
    const candidateFilter = this.candidateFilter();
    const line: Line = {
      peer,
      pc: null,
      lastState: 'idle',
      left: false,
      subscriptions: new Subscription(),
      call: createCall({
        signaling: client.portFor(peer.id),
        createRtc: () => {
          const pc = new RTCPeerConnection(this.rtcConfiguration());
          if (line.pc) this.media.forgetSenders(line.pc);
          this.media.addTracksTo(pc);
          line.pc = pc;
          return createRtcPort(pc);
        },
        peer: {
          dataChannels: [{ label: 'chat' }, { label: 'files' }],
          ...(candidateFilter ? { candidateFilter } : {}),
          // Calls through ICE servers take fresh TURN credentials as they come (loopback and host use none).
          ...(this.followsIceServers() ? { iceServers$: client.iceServers$ } : {}),
        },
        media: { audio: true, video: true },
        // One call at a time: a second caller hears "busy", and so does a caller while we are in the group call.
        isBusy: () =>
          this.group?.inCall === true || [...this.lines.values()].some((other) => other.peer.id !== peer.id && isBusyState(other.call.status().state)),
        inspect: this.inspectorFor(`call with ${peer.name}`),
      }),
    };
    this.lines.set(peer.id, line);
    // Subscribed for the line's whole life: a call's first events (its data channels, its
    // tracks) come before its status says `active`.
    line.subscriptions.add(line.call.events$.subscribe((event) => this.onCallEvent(line, event)));
    line.subscriptions.add(line.call.status$.subscribe((status) => this.onLineStatus(line, status)));
  }

  private removeLine(line: Line): void {
    line.call.stop();
    line.subscriptions.unsubscribe();
    this.lines.delete(line.peer.id);
    // A focused line stays on the stage: its last call's outcome is still worth showing.
  }

  /** Which candidates the page signals: 127.0.0.1 for ice=loopback, one address for ice=host:ADDRESS. */
  private candidateFilter(): CandidateFilter | null {
    switch (this.settings.ice) {
      case 'loopback':
        return keepLoopbackCandidates;
      case 'host':
        return this.settings.iceAddress === null ? null : keepCandidateAddresses(this.settings.iceAddress);
      default:
        return null;
    }
  }

  /** Calls through ICE servers take fresh TURN credentials as they come (loopback and host use none). */
  private followsIceServers(): boolean {
    return this.settings.ice === 'relay' || this.settings.ice === 'default';
  }

  private rtcConfiguration(): RTCConfiguration {
    switch (this.settings.ice) {
      case 'loopback':
      case 'host':
        return loopbackOnly();
      case 'relay':
        return { iceServers: toRtcIceServers(this.iceServers), iceTransportPolicy: 'relay' };
      case 'default':
        return { iceServers: toRtcIceServers(this.iceServers) };
    }
  }

  private onIceServers(servers: readonly IceServerConfig[]): void {
    this.iceServers = servers;
    if (this.settings.ice === 'relay') {
      this.notices.set(
        'relay',
        hasTurn(servers)
          ? null
          : {
              tone: 'error',
              text: 'ice=relay asks for TURN relay only, but this signaling server offers no TURN server, so calls cannot connect. Start it with --turn-url and --turn-secret, or drop ice=relay.',
            },
      );
    }
  }

  // ---- one line's call ------------------------------------------------------------------------

  private onLineStatus(line: Line, status: CallStatus): void {
    const previous = line.lastState;
    // For anyone debugging a call from the console (and for the browser tests' failure reports).
    console.debug(`[parley] ${line.peer.name}: ${status.state} ${JSON.stringify(status.connection ?? status.end ?? {})}`);
    line.lastState = status.state;
    if (status.state !== 'idle' && (this.focus === null || this.focus === line || !isBusyState(this.focus.call.status().state))) {
      this.focus = line;
    }
    if ((status.state === 'outgoing' || status.state === 'incoming') && previous !== status.state) this.notices.set('call', null);
    if (status.state === 'active' && status.session !== null) this.activeCallFor(line, status.session);
    if (status.state !== 'active' && this.active?.line === line) this.endActiveCall();
    if (status.state === 'ended' && previous !== 'ended' && status.end) {
      this.notices.set('call', describeCallEnd(status.end, line.peer.name));
      if (line.left) this.removeLine(line);
    }
    this.render();
  }

  /** The record of the line's call `session`, made by whichever comes first: its status or an event. */
  private activeCallFor(line: Line, session: string): ActiveCall {
    if (this.active?.line === line && this.active.session === session) return this.active;
    if (this.active) this.endActiveCall();
    const active: ActiveCall = {
      line,
      session,
      remoteStream: new MediaStream(),
      chat: null,
      files: null,
      receiver: createFileReceiver(),
      incoming: new Map(),
      remoteMedia: null,
      history: new StatsHistory(),
      subscriptions: new Subscription(),
    };
    this.active = active;
    active.subscriptions.add(active.receiver.events$.subscribe((event) => this.onIncomingFile(active, event)));
    if (line.pc) {
      const pc = line.pc;
      active.subscriptions.add(
        stats$(pc, { intervalMs: 1000 }).subscribe((sample) => {
          active.history.push(sample);
          drawStatsChart(this.ui.chart, active.history.points());
          const latest = active.history.latest();
          setText(
            this.ui.candidatePair,
            sample.candidatePairType === null
              ? '—'
              : `${sample.candidatePairType} · ${formatRtt(latest?.rttMs ?? null)} · ↓ ${formatBitrate(latest?.inBps ?? null)}`,
          );
        }),
      );
    }
    active.history.clear();
    drawStatsChart(this.ui.chart, []);
    this.ui.chatLog.replaceChildren();
    appendChatLine(this.ui.chatLog, 'system', '', `Call with ${line.peer.name} started.`);
    return active;
  }

  private endActiveCall(): void {
    const active = this.active;
    if (!active) return;
    this.active = null;
    active.subscriptions.unsubscribe();
    active.files?.close();
    active.receiver.close();
    detachStream(this.ui.remoteVideo);
    if (active.line.pc) this.media.forgetSenders(active.line.pc);
    setText(this.ui.candidatePair, '—');
    appendChatLine(this.ui.chatLog, 'system', '', `Call with ${active.line.peer.name} ended.`);
  }

  private onCallEvent(line: Line, event: CallAppEvent): void {
    if (line.call.status().state === 'ended') return;
    const active = this.activeCallFor(line, event.session);
    switch (event.type) {
      case 'track': {
        const track = event.track as MediaStreamTrack;
        active.remoteStream.addTrack(track);
        track.addEventListener('ended', () => active.remoteStream.removeTrack(track));
        void this.showRemote(active);
        break;
      }
      case 'datachannel':
        this.onDataChannel(active, event.label, event.channel);
        break;
      case 'message':
        // File chunks come by the hundred per second; their progress rows update themselves.
        if (event.label === 'files') {
          active.receiver.receive(event.data);
          return;
        }
        if (event.label === 'chat') this.onChatFrame(active, event.data);
        break;
      case 'error':
        console.warn(`[parley] call with ${line.peer.name}: ${event.operation} failed`, event.error);
        break;
      case 'notice':
      case 'negotiated':
        console.debug(`[parley] ${line.peer.name}: ${event.type}`, 'notice' in event ? `${event.notice} ${event.detail}` : `round ${event.round}`);
        break;
      default:
        break;
    }
    this.render();
  }

  private async showRemote(active: ActiveCall): Promise<void> {
    const video = this.ui.remoteVideo;
    if (video.srcObject === active.remoteStream) return;
    const outcome = await play(video, active.remoteStream);
    if (outcome === 'blocked' && this.active === active) {
      // Autoplay with sound was refused (no click on this page yet): play muted, offer sound.
      video.muted = true;
      await play(video, active.remoteStream);
      show(this.ui.unmuteRemote, true);
    }
  }

  private onDataChannel(active: ActiveCall, label: string, channel: DataChannel): void {
    if (label === 'chat') {
      active.chat = channel;
      // state$ starts with the current state: a channel that is open already announces at once.
      active.subscriptions.add(channel.state$.pipe(filter((state) => state === 'open')).subscribe(() => this.sendMediaState()));
    } else if (label === 'files') {
      active.files = createFileSender(fileChannelOf(channel));
      active.subscriptions.add(channel.state$.pipe(filter((state) => state === 'closed')).subscribe(() => active.receiver.close()));
    }
  }

  private onChatFrame(active: ActiveCall, data: string | ArrayBuffer): void {
    const parsed = parseChatFrame(data);
    if (!parsed.ok) {
      console.warn(`chat: ${parsed.reason}`);
      return;
    }
    if (parsed.frame.type === 'chat') appendChatLine(this.ui.chatLog, 'them', active.line.peer.name, parsed.frame.text);
    else active.remoteMedia = { audio: parsed.frame.audio, video: parsed.frame.video, screen: parsed.frame.screen };
  }

  /** Tells the other side what we send, so it can say "muted" or "camera off". */
  private sendMediaState(): void {
    this.group?.sendMediaState();
    const chat = this.active?.chat;
    // A chat channel that is closing or closed has no one to tell.
    if (chat?.readyState !== 'open' && chat?.readyState !== 'connecting') return;
    chat.send(encodeChatFrame({ type: 'media', ...this.media.sending() }));
  }

  private onIncomingFile(active: ActiveCall, event: IncomingFileEvent): void {
    switch (event.type) {
      case 'start':
        active.incoming.set(event.id, new TransferRow(this.ui.transfers, 'incoming', event.id, event.name, event.size));
        break;
      case 'progress':
        active.incoming.get(event.id)?.update(event.bytes, event.size);
        break;
      case 'complete': {
        const row = active.incoming.get(event.id);
        row?.update(event.size, event.size);
        row?.received(event.name, event.blob);
        appendChatLine(this.ui.chatLog, 'system', '', `${active.line.peer.name} sent ${event.name}.`);
        break;
      }
      case 'error': {
        const row = event.error.transferId === null ? undefined : active.incoming.get(event.error.transferId);
        if (row) row.failed(event.error.message);
        else this.notices.set('file', { tone: 'warning', text: `A file from ${active.line.peer.name} could not be received: ${event.error.message}` });
        break;
      }
    }
  }

  private sendFiles(files: readonly File[]): void {
    const active = this.active;
    if (!active?.files) return;
    for (const file of files) {
      const transfer = active.files.send(file, file.name);
      const row = new TransferRow(this.ui.transfers, 'outgoing', transfer.id, file.name, file.size);
      active.subscriptions.add(transfer.progress$.subscribe((progress) => row.update(progress.bytes, progress.size)));
      transfer.done.then(
        () => row.sent(),
        (error: unknown) => row.failed(error instanceof Error ? error.message : String(error)),
      );
    }
  }

  // ---- controls ---------------------------------------------------------------------------------

  private bindControls(): void {
    const { ui } = this;
    ui.copyInvite.addEventListener('click', () => void this.copyInvite());
    ui.accept.addEventListener('click', () => this.focus?.call.accept());
    ui.reject.addEventListener('click', () => this.focus?.call.reject());
    ui.hangup.addEventListener('click', () => {
      const line = this.focus;
      if (!line) return;
      if (line.call.status().state === 'outgoing') line.call.cancel();
      else line.call.hangup();
    });
    // Each change comes back through media.changes$ (afterMediaChange), the browser's own too.
    ui.mute.addEventListener('click', () => void this.media.setMicMuted(!this.media.current.micMuted));
    ui.camera.addEventListener('click', () => void this.media.setCameraOff(!this.media.current.cameraOff));
    ui.screenShare.addEventListener('click', () => void this.toggleScreenShare());
    ui.unmuteRemote.addEventListener('click', () => {
      ui.remoteVideo.muted = false;
      void ui.remoteVideo.play().catch(() => undefined);
      show(ui.unmuteRemote, false);
    });
    ui.chatForm.addEventListener('submit', (event) => {
      event.preventDefault();
      const text = ui.chatInput.value.trim();
      if (text === '') return;
      // In the group call the line goes to everyone in it.
      const unreached = this.group?.sendChat(text) ?? null;
      if (unreached !== null) {
        appendChatLine(ui.chatLog, 'me', 'You', text);
        ui.chatInput.value = '';
        this.notices.set(
          'chat',
          unreached.length === 0 ? null : { tone: 'warning', text: `Not delivered to ${unreached.join(', ')}: their chat is not connected yet.` },
        );
        return;
      }
      const active = this.active;
      if (!active?.chat) return;
      try {
        active.chat.send(encodeChatFrame({ type: 'chat', text }));
      } catch (error) {
        if (!(error instanceof DataChannelClosedError)) throw error;
        this.notices.set('chat', { tone: 'warning', text: 'The chat channel is closed: the message was not sent.' });
        return;
      }
      appendChatLine(ui.chatLog, 'me', 'You', text);
      ui.chatInput.value = '';
    });
    ui.fileInput.addEventListener('change', () => {
      this.sendFiles([...(ui.fileInput.files ?? [])]);
      ui.fileInput.value = '';
    });
  }

  /** Share the screen, or back to the camera; a cancelled or failed capture says why. */
  private async toggleScreenShare(): Promise<void> {
    if (this.media.current.sharingScreen) {
      await this.media.stopSharingScreen();
      return;
    }
    this.notices.set('screen', null);
    try {
      await this.media.shareScreen();
    } catch (error) {
      const failure = toMediaAccessError(error);
      this.notices.set('screen', describeScreenShareFailure(failure.reason, failure.message));
    }
  }

  private afterMediaChange(): void {
    const preview = this.media.preview;
    if (preview && this.ui.localVideo.srcObject !== preview) void play(this.ui.localVideo, preview);
    this.sendMediaState();
    this.render();
  }

  private async copyInvite(): Promise<void> {
    const link = inviteUrl(new URL(location.href), this.join.room).href;
    try {
      await navigator.clipboard.writeText(link);
      this.notices.set('invite', { tone: 'success', text: `Invite link copied: ${link}` });
    } catch {
      // No clipboard permission (or not a secure context): show the link to copy by hand.
      this.notices.set('invite', { tone: 'info', text: `Send this link: ${link}` });
    }
  }

  private showLocalMedia(): void {
    const { failure } = this.media.current;
    const preview = this.media.preview;
    if (preview) void play(this.ui.localVideo, preview);
    this.subscriptions.add(this.media.changes$.subscribe(() => this.afterMediaChange()));
    if (failure) this.notices.set('media', describeMediaFailure(failure.reason, failure.message));
  }

  // ---- rendering --------------------------------------------------------------------------------

  private render(): void {
    this.renderPresence();
    this.renderStage();
    this.renderStatePanel();
    this.group?.render();
  }

  /**
   * The presence list, updated in place: a person's row (and its Call button) stays the same
   * element while they are here, so a click is never lost to a re-render.
   */
  private renderPresence(): void {
    const { ui } = this;
    const anyBusy = this.group?.inCall === true || [...this.lines.values()].some((line) => isBusyState(line.call.status().state));
    const joined = this.signalingStatus === 'joined';
    const rows = this.peers.map((peer) => {
      const row = this.presenceRows.get(peer.id) ?? this.presenceRow(peer);
      const line = this.lines.get(peer.id);
      const state = line?.call.status().state ?? 'idle';
      row.element.dataset['callState'] = state;
      setText(
        row.label,
        this.group?.isInCallWithUs(peer.id) === true
          ? 'in the group call'
          : { idle: 'available', prepared: 'available', ended: 'available', outgoing: 'ringing…', incoming: 'calling you', active: 'in a call with you' }[state],
      );
      row.call.disabled = !joined || anyBusy || line === undefined;
      row.call.title = joined ? `Call ${peer.name}` : 'Waiting for the signaling server';
      return row;
    });
    for (const [id, row] of this.presenceRows) {
      if (!this.peers.some((peer) => peer.id === id)) {
        row.element.remove();
        this.presenceRows.delete(id);
      }
    }
    rows.forEach((row, index) => {
      if (ui.peerList.children[index] !== row.element) ui.peerList.insertBefore(row.element, ui.peerList.children[index] ?? null);
    });
    show(ui.peerListEmpty, rows.length === 0);
  }

  private presenceRow(peer: PeerInfo): PresenceRow {
    const label = h('small', { class: 'muted' });
    const call = h(
      'button',
      {
        type: 'button',
        class: 'button primary small',
        'data-testid': 'call',
        onclick: () => {
          this.notices.set('call', null);
          this.lines.get(peer.id)?.call.call(); // the line's default media: audio and video
        },
      },
      'Call',
    );
    const element = h(
      'li',
      { class: 'peer', 'data-testid': 'peer', 'data-name': peer.name, 'data-peer-id': peer.id },
      h('span', { class: 'avatar small', 'aria-hidden': 'true' }, initialOf(peer.name)),
      h('span', { class: 'peer-name' }, peer.name, label),
      call,
    );
    const row = { element, label, call };
    this.presenceRows.set(peer.id, row);
    return row;
  }

  private renderStage(): void {
    const { ui } = this;
    const line = this.focus;
    const status = line?.call.status();
    const state = status?.state ?? 'idle';
    const name = line?.peer.name ?? '';
    const active = this.active;
    ui.stage.dataset['callState'] = state;

    show(ui.ringing, state === 'incoming');
    if (state === 'incoming') {
      setText(ui.ringingAvatar, initialOf(name));
      setText(ui.ringingText, `${name} is calling you${status?.media?.video === false ? ' (audio only)' : ''}`);
      document.title = `📞 ${name} is calling · Parley`;
    } else {
      document.title = `${this.join.room} · Parley`;
    }
    show(ui.hangup, state === 'outgoing' || state === 'active');

    const remoteVideoShown = active !== null && active.remoteStream.getVideoTracks().length > 0 && active.remoteMedia?.video !== false;
    ui.stage.classList.toggle('has-remote-video', remoteVideoShown);
    show(ui.remotePlaceholder, !remoteVideoShown);
    setText(ui.remoteAvatar, line ? initialOf(name) : '');
    setText(ui.stageMessage, this.stageMessage(state, name, status));
    show(ui.remoteMuted, active?.remoteMedia?.audio === false);
    show(ui.remoteCameraOff, active?.remoteMedia?.video === false);
    show(ui.remoteScreen, active?.remoteMedia?.screen === true);
    ui.stage.classList.toggle('remote-screen', active?.remoteMedia?.screen === true);
    if (!active) show(ui.unmuteRemote, false);

    const local = this.media.current;
    ui.mute.disabled = !local.hasAudio;
    ui.mute.setAttribute('aria-pressed', String(local.micMuted));
    setText(ui.mute.querySelector('.label') ?? ui.mute, local.micMuted ? 'Unmute' : 'Mute');
    ui.camera.disabled = !local.hasVideo;
    ui.camera.setAttribute('aria-pressed', String(local.cameraOff));
    setText(ui.camera.querySelector('.label') ?? ui.camera, local.cameraOff ? 'Camera on' : 'Camera off');
    ui.screenShare.disabled = !local.hasVideo || !canCaptureScreen();
    ui.screenShare.title = !local.hasVideo ? 'Screen sharing replaces the camera: it needs one' : local.sharingScreen ? 'Send your camera again' : 'Send your screen instead of your camera';
    ui.screenShare.setAttribute('aria-pressed', String(local.sharingScreen));
    setText(ui.screenShare.querySelector('.label') ?? ui.screenShare, local.sharingScreen ? 'Stop sharing' : 'Share screen');
    ui.stage.classList.toggle('local-screen', local.sharingScreen);
    ui.stage.classList.toggle('local-camera-off', !local.sharingScreen && (!local.hasVideo || local.cameraOff));
    setText(
      ui.localLabel,
      local.sharingScreen ? 'You · your screen' : !local.hasVideo ? 'You · no camera' : local.cameraOff ? 'You · camera off' : local.micMuted ? 'You · muted' : 'You',
    );

    // Chat in a 1:1 call or the group call; files in a 1:1 call only.
    const canTalk = active !== null || this.group?.inCall === true;
    ui.chatInput.disabled = !canTalk;
    ui.chatSend.disabled = !canTalk;
    ui.fileInput.disabled = active === null;
    ui.filePick.setAttribute('aria-disabled', String(active === null));
  }

  private stageMessage(state: CallState, name: string, status: CallStatus | undefined): string {
    switch (state) {
      case 'idle':
        return this.peers.length === 0 ? 'Waiting for someone to join. Copy the invite link and send it.' : 'Choose someone in the room and press Call.';
      case 'prepared':
        return `Ready to call ${name}.`;
      case 'outgoing':
        return `Calling ${name}…`;
      case 'incoming':
        return `${name} is calling you`;
      case 'active': {
        const connection = status?.connection?.connectionState;
        if (connection !== 'connected') return connection === 'disconnected' ? `Connection to ${name} interrupted, reconnecting…` : `Connecting to ${name}…`;
        if (this.active?.remoteMedia?.video === false) return `${name} turned their camera off`;
        return `${name} has no camera: audio only`;
      }
      case 'ended':
        return status?.end ? describeCallEnd(status.end, name).text : 'The call ended.';
    }
  }

  private renderStatePanel(): void {
    const { ui } = this;
    const line = this.focus;
    const status = line?.call.status();
    const connection = status?.connection ?? null;
    setText(ui.callState, status?.state ?? 'idle');
    setText(ui.signalingState, connection?.signalingState ?? '—');
    setText(ui.iceGatheringState, connection?.iceGatheringState ?? '—');
    setText(ui.iceConnectionState, connection?.iceConnectionState ?? '—');
    setText(ui.connectionState, shownConnectionState(status));
  }
}

