// The room's group call on the page: the Join call / Leave call buttons, a grid of tiles (one per
// other member in the call, with their video and name, and our own preview), chat to everyone in
// the call, and each member's connection in the state panel. Rendered from the group call's
// `status$` and `events$` (createGroupCall, @parley/core); the tracks each member's connection
// sends are LocalMedia's, so mute, camera off and screen sharing reach every member.
import { Subscription, filter } from 'rxjs';
import { createGroupCall } from '@parley/core';
import type { CandidateFilter, DataChannel, GroupAppEvent, GroupCall, GroupStatus } from '@parley/core';
import { createRtcPort, stats$ } from '@parley/browser';
import type { BrowserRtcPort } from '@parley/browser';
import { groupSignalingOf } from '@parley/signaling-ws/client';
import type { PeerInfo, SignalingClient } from '@parley/signaling-ws/client';
import type { InspectionEvent } from 'xstate';
import { encodeChatFrame, parseChatFrame } from './chat-protocol.js';
import { byTestId, h, setText, show } from './dom.js';
import type { LocalMedia } from './local-media.js';
import type { Notices } from './notices.js';
import { initialOf, play } from './playback.js';
import { formatBitrate } from './stats-chart.js';

/** What the group view needs from the room page. */
export interface GroupCallViewOptions {
  readonly client: SignalingClient;
  readonly media: LocalMedia;
  /** The configuration of each member's connection (the page's ICE mode). */
  readonly rtcConfiguration: () => RTCConfiguration;
  /** Which candidates each pair signals (the page's ICE mode); null for all. */
  readonly candidateFilter: CandidateFilter | null;
  /** Hand fresh TURN credentials to every pair (ice=relay and default). */
  readonly followIceServers: boolean;
  readonly inspect: (event: InspectionEvent) => void;
  readonly notices: Notices;
  /** True while a 1:1 call holds this side: no joining then (and no 1:1 call while in the group). */
  readonly oneToOneBusy: () => boolean;
  /** A chat line arrived from `name`, or the call has news (`name` null). */
  readonly onChat: (name: string | null, text: string) => void;
  /** The group's state changed: the page re-renders what depends on it (chat, Call buttons). */
  readonly onChange: () => void;
}

/** One other member's tile and what belongs to their pair. */
interface Tile {
  readonly member: string;
  readonly element: HTMLElement;
  readonly video: HTMLVideoElement;
  readonly caption: HTMLElement;
  readonly unmute: HTMLButtonElement;
  /** The pair's session the stream belongs to (a rejoin makes a new one). */
  session: string;
  stream: MediaStream;
  /** What we listen to for the pair's session (its chat channel, its connection's stats); ends with the session. */
  pair: Subscription;
  /** What we send to this member now, in bit/s (`stats$`, once a second); null before two samples. */
  uploadBps: number | null;
}

/** How many grid columns fit `tiles` tiles (our preview included): 2 up to 4, then 3 up to 6. */
export function gridColumns(tiles: number): number {
  return tiles <= 1 ? 1 : tiles <= 4 ? 2 : 3;
}

/**
 * The room's group call and everything the page shows of it. Made with the room page, right after
 * its signaling client (the group call must exist before others can join); `start()` binds the
 * buttons and streams, `stop()` leaves.
 */
export class GroupCallView {
  private readonly ui = {
    stage: byTestId('stage'),
    grid: byTestId('group-grid'),
    selfTile: byTestId('group-self'),
    selfVideo: byTestId<HTMLVideoElement>('group-self-video'),
    join: byTestId<HTMLButtonElement>('group-join'),
    leave: byTestId<HTMLButtonElement>('group-leave'),
    state: byTestId('group-state'),
    members: byTestId<HTMLDListElement>('group-members'),
  };
  private readonly call: GroupCall<BrowserRtcPort>;
  private readonly tiles = new Map<string, Tile>();
  /** Each member's connection, to forget our senders on it once its pair is gone. */
  private readonly connections = new Map<string, RTCPeerConnection>();
  private readonly subscriptions = new Subscription();
  private peers: readonly PeerInfo[] = [];
  private status: GroupStatus = { state: 'idle', members: new Map(), error: null };

  constructor(private readonly options: GroupCallViewOptions) {
    const { client, media, candidateFilter } = options;
    // Created with the page, before anyone else can join: their join is not replayed.
    this.call = createGroupCall<BrowserRtcPort>({
      signaling: groupSignalingOf(client),
      createRtc: (member) => {
        const pc = new RTCPeerConnection(options.rtcConfiguration());
        const previous = this.connections.get(member);
        if (previous) media.forgetSenders(previous);
        media.addTracksTo(pc);
        this.connections.set(member, pc);
        return createRtcPort(pc);
      },
      dataChannels: [{ label: 'chat' }],
      ...(options.followIceServers ? { iceServers$: client.iceServers$ } : {}),
      peer: candidateFilter ? { candidateFilter } : {},
      inspect: options.inspect,
    });
  }

  /** True while we are in the call (joining or joined). */
  get inCall(): boolean {
    return this.status.state === 'joining' || this.status.state === 'joined';
  }

  /** True while `peerId` is in the group call with us. */
  isInCallWithUs(peerId: string): boolean {
    return this.inCall && this.status.members.has(peerId);
  }

  start(): void {
    const { ui } = this;
    ui.join.addEventListener('click', () => {
      this.options.notices.set('group', null);
      this.call.join();
    });
    ui.leave.addEventListener('click', () => this.call.leave());
    this.subscriptions.add(
      this.options.client.peers$.subscribe((peers) => {
        this.peers = peers;
        this.renderMembers();
        this.render();
      }),
    );
    this.subscriptions.add(this.call.status$.subscribe((status) => this.onStatus(status)));
    this.subscriptions.add(this.call.events$.subscribe((event) => this.onEvent(event)));
    this.render();
  }

  /** Leaves the call (everyone hears it now) and stops its machines. */
  stop(): void {
    this.call.stop();
    for (const tile of this.tiles.values()) tile.pair.unsubscribe();
    this.subscriptions.unsubscribe();
  }

  /**
   * Sends a chat line to everyone in the call: null when we are in none, else the names of the
   * members it cannot reach (their chat channel has not arrived yet or closed; `send` skips them,
   * while one still connecting queues it).
   */
  sendChat(text: string): readonly string[] | null {
    if (!this.inCall) return null;
    this.call.send('chat', encodeChatFrame({ type: 'chat', text }));
    const reachable = new Set(['open', 'connecting']);
    return [...this.tiles.values()].filter((tile) => !reachable.has(tile.element.dataset['chat'] ?? '')).map((tile) => this.nameOf(tile.member));
  }

  /** Tells everyone in the call what we send (muted, camera off, screen). */
  sendMediaState(): void {
    if (this.inCall) this.call.send('chat', encodeChatFrame({ type: 'media', ...this.options.media.sending() }));
  }

  /** Re-renders what depends on the rest of the page (the 1:1 call, local media). */
  render(): void {
    const { ui } = this;
    const { state } = this.status;
    const inCall = this.inCall;
    ui.stage.classList.toggle('group-mode', inCall);
    show(ui.grid, inCall);
    show(ui.join, !inCall);
    show(ui.leave, inCall);
    ui.join.disabled = this.options.oneToOneBusy();
    ui.join.title = ui.join.disabled ? 'Hang up the call first' : 'Join the room’s group call';
    setText(ui.state, state);
    ui.grid.style.setProperty('--columns', String(gridColumns(this.tiles.size + 1)));
    ui.grid.dataset['tiles'] = String(this.tiles.size + 1);
    const local = this.options.media.current;
    ui.selfTile.classList.toggle('camera-off', !local.sharingScreen && (!local.hasVideo || local.cameraOff));
    ui.selfTile.classList.toggle('screen', local.sharingScreen);
    const preview = this.options.media.preview;
    if (inCall && preview && ui.selfVideo.srcObject !== preview) void play(ui.selfVideo, preview);
    for (const tile of this.tiles.values()) this.renderTile(tile);
  }

  // ---- the call's status and events --------------------------------------------------------------

  private onStatus(status: GroupStatus): void {
    const previous = this.status;
    this.status = status;
    console.debug(`[parley] group: ${status.state} ${[...status.members].map(([id, m]) => `${this.nameOf(id)}=${m.connection.connectionState}`).join(' ')}`);
    if (status.state !== previous.state) this.onStateChange(previous.state, status);
    for (const [member, entry] of status.members) {
      const tile = this.tiles.get(member) ?? this.addTile(member, entry.session);
      if (tile.session !== entry.session) this.resetTile(tile, entry.session);
    }
    for (const tile of [...this.tiles.values()]) if (!status.members.has(tile.member)) this.removeTile(tile);
    this.renderMembers();
    this.render();
    this.options.onChange();
  }

  private onStateChange(previous: GroupStatus['state'], status: GroupStatus): void {
    if (status.state === 'joined' && previous === 'joining') this.options.onChat(null, 'You joined the group call.');
    if (status.state === 'left' && previous !== 'idle') this.options.onChat(null, 'You left the group call.');
    if (status.state === 'full') {
      this.options.notices.set('group', { tone: 'warning', text: status.error?.message ?? 'The group call is full.' });
    }
  }

  private onEvent(event: GroupAppEvent): void {
    const tile = this.tiles.get(event.member);
    switch (event.type) {
      case 'track': {
        if (!tile) return;
        const track = event.track as MediaStreamTrack;
        const stream = tile.stream;
        stream.addTrack(track);
        track.addEventListener('ended', () => stream.removeTrack(track));
        void this.showTile(tile);
        break;
      }
      case 'datachannel':
        if (event.label === 'chat' && tile) this.onChatChannel(tile, event.channel);
        break;
      case 'message':
        if (event.label === 'chat') this.onChatFrame(event.member, event.data);
        break;
      case 'error':
        console.warn(`[parley] group, pair with ${this.nameOf(event.member)}: ${event.operation} failed`, event.error);
        break;
      default:
        break;
    }
  }

  /**
   * A member's chat channel: its state goes on the tile (`data-chat`: chat reaches them while
   * `open`), and once open it learns what we send.
   */
  private onChatChannel(tile: Tile, channel: DataChannel): void {
    tile.pair.add(channel.state$.subscribe((state) => (tile.element.dataset['chat'] = state)));
    tile.pair.add(
      channel.state$.pipe(filter((state) => state === 'open')).subscribe(() => {
        channel.send(encodeChatFrame({ type: 'media', ...this.options.media.sending() }));
      }),
    );
  }

  private onChatFrame(member: string, data: string | ArrayBuffer): void {
    const parsed = parseChatFrame(data);
    if (!parsed.ok) {
      console.warn(`group chat from ${this.nameOf(member)}: ${parsed.reason}`);
      return;
    }
    const frame = parsed.frame;
    if (frame.type === 'chat') {
      this.options.onChat(this.nameOf(member), frame.text);
      return;
    }
    const tile = this.tiles.get(member);
    if (!tile) return;
    tile.element.dataset['audio'] = String(frame.audio);
    tile.element.dataset['video'] = String(frame.video);
    tile.element.dataset['screen'] = String(frame.screen);
    this.renderTile(tile);
  }

  // ---- tiles -------------------------------------------------------------------------------------

  private addTile(member: string, session: string): Tile {
    const name = this.nameOf(member);
    const video = h('video', { class: 'group-video', 'data-testid': 'group-video', autoplay: true, playsinline: true });
    const caption = h('figcaption', { class: 'group-caption' });
    const unmute = h('button', { type: 'button', class: 'badge action group-unmute', hidden: true }, 'Click to hear');
    const element = h(
      'figure',
      { class: 'group-tile', 'data-testid': 'group-tile', 'data-name': name, 'data-member': member },
      h('div', { class: 'avatar' }, initialOf(name)),
      video,
      caption,
      unmute,
    );
    const tile: Tile = { member, element, video, caption, unmute, session, stream: new MediaStream(), pair: new Subscription(), uploadBps: null };
    unmute.addEventListener('click', () => {
      video.muted = false;
      void video.play().catch(() => undefined);
      show(unmute, false);
    });
    this.tiles.set(member, tile);
    this.watchUpload(tile);
    this.ui.grid.insertBefore(element, this.ui.selfTile);
    this.options.onChat(null, `${name} is in the call.`);
    return tile;
  }

  /** A rejoin: the pair is new, so are its tracks. */
  private resetTile(tile: Tile, session: string): void {
    tile.session = session;
    tile.stream = new MediaStream();
    tile.pair.unsubscribe();
    tile.pair = new Subscription();
    tile.uploadBps = null;
    this.watchUpload(tile);
    tile.video.srcObject = null;
    delete tile.element.dataset['audio'];
    delete tile.element.dataset['video'];
    delete tile.element.dataset['screen'];
    delete tile.element.dataset['chat'];
  }

  /**
   * What we send to the member, once a second: in a mesh each member costs its own upload
   * (the state panel shows each and their sum).
   */
  private watchUpload(tile: Tile): void {
    const pc = this.connections.get(tile.member);
    if (!pc) return;
    tile.pair.add(
      stats$(pc, { intervalMs: 1000 }).subscribe((sample) => {
        tile.uploadBps = sample.bitrateOutBps;
        this.renderMembers();
      }),
    );
  }

  private removeTile(tile: Tile): void {
    tile.pair.unsubscribe();
    tile.video.srcObject = null;
    tile.element.remove();
    this.tiles.delete(tile.member);
    const pc = this.connections.get(tile.member);
    if (pc) this.options.media.forgetSenders(pc);
    this.connections.delete(tile.member);
    this.options.onChat(null, `${this.nameOf(tile.member)} left the call.`);
  }

  private async showTile(tile: Tile): Promise<void> {
    if (tile.video.srcObject === tile.stream) return;
    const outcome = await play(tile.video, tile.stream);
    if (outcome === 'blocked') {
      // Autoplay with sound was refused (no click on this page yet): play muted, offer sound.
      tile.video.muted = true;
      await play(tile.video, tile.stream);
      show(tile.unmute, true);
    }
  }

  private renderTile(tile: Tile): void {
    const entry = this.status.members.get(tile.member);
    const connection = entry?.connection.connectionState ?? 'new';
    const name = this.nameOf(tile.member);
    tile.element.dataset['name'] = name;
    tile.element.dataset['connection'] = connection;
    const { audio, video, screen } = tile.element.dataset;
    const notes = [connection === 'connected' ? null : connection, audio === 'false' ? 'muted' : null, video === 'false' ? 'camera off' : null, screen === 'true' ? 'screen' : null];
    setText(tile.caption, [name, ...notes.filter((note) => note !== null)].join(' · '));
    tile.element.classList.toggle('has-video', tile.stream.getVideoTracks().length > 0 && video !== 'false');
    tile.element.classList.toggle('screen', screen === 'true');
  }

  /** The state panel's list: each member in the call and their connection's state (rebuilt on a status or presence change only). */
  private renderMembers(): void {
    const rows = [...this.status.members].map(([member, entry]) =>
      h(
        'div',
        {
          'data-testid': 'group-member',
          'data-name': this.nameOf(member),
          'data-connection': entry.connection.connectionState,
          title: `ICE ${entry.connection.iceConnectionState}, signaling ${entry.connection.signalingState}`,
        },
        h('dt', {}, this.nameOf(member)),
        h('dd', {}, `${entry.connection.connectionState} · ↑ ${formatBitrate(this.tiles.get(member)?.uploadBps ?? null)}`),
      ),
    );
    const uploads = [...this.tiles.values()].map((tile) => tile.uploadBps).filter((bps): bps is number => bps !== null);
    if (rows.length > 0) {
      const total = uploads.reduce((sum, bps) => sum + bps, 0);
      rows.push(
        h(
          'div',
          { 'data-testid': 'group-upload', 'data-bps': uploads.length > 0 ? Math.round(total) : null },
          h('dt', {}, 'Upload, all members'),
          h('dd', {}, uploads.length > 0 ? formatBitrate(total) : '—'),
        ),
      );
    }
    this.ui.members.replaceChildren(...rows);
    show(this.ui.members, rows.length > 0);
  }

  private nameOf(member: string): string {
    return this.peers.find((peer) => peer.id === member)?.name ?? member;
  }
}
