// This side's camera, microphone and screen: the camera opened once on joining and shown in the
// corner preview, their tracks added to every call's connection (the 1:1 call's, or each member's
// of a group call), muted or turned off per kind, and the camera swapped for the screen on every
// connection at once. When camera and microphone cannot be opened the page carries on
// receive-only (the other side's offer still brings their media to us).
import { Subject } from 'rxjs';
import type { Observable } from 'rxjs';
import { getUserMedia, setSenderMuted, switchCamera, toMediaAccessError } from '@parley/browser';
import type { MediaAccessError } from '@parley/browser';

/** What this side has and sends; the chat channel tells the other side (a `media` frame). */
export interface LocalMediaState {
  readonly hasAudio: boolean;
  readonly hasVideo: boolean;
  readonly micMuted: boolean;
  readonly cameraOff: boolean;
  /** The screen goes out instead of the camera (`shareScreen`), on every connection. */
  readonly sharingScreen: boolean;
  /** Why there is no camera or microphone (null when both opened). */
  readonly failure: MediaAccessError | null;
}

const VIDEO: MediaTrackConstraints = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };

/** One of our senders on one connection. */
interface OurSender {
  readonly kind: string;
  readonly sender: RTCRtpSender;
}

/** True when the browser can capture a screen (Screen Capture §5.1, `getDisplayMedia`). */
export function canCaptureScreen(): boolean {
  return typeof navigator.mediaDevices?.getDisplayMedia === 'function';
}

export class LocalMedia {
  private state: LocalMediaState = { hasAudio: false, hasVideo: false, micMuted: false, cameraOff: false, sharingScreen: false, failure: null };
  /**
   * Our senders on every connection in progress (one for a 1:1 call, one per member of a group
   * call), to mute and to swap camera and screen in place (replaceTrack, no renegotiation).
   */
  private readonly senders = new Map<RTCPeerConnection, readonly OurSender[]>();
  /** The screen's video track while it is shared, else null. */
  private screen: MediaStreamTrack | null = null;
  /** The screen as a stream, for the preview. */
  private screenStream: MediaStream | null = null;
  private readonly changes = new Subject<LocalMediaState>();
  /** Camera and microphone, as opened (null when neither could be). */
  stream: MediaStream | null = null;
  /**
   * Every change once the senders have it: the buttons' and the browser's (sharing stopped from
   * its own "Stop sharing" bar), for the page to re-render and tell the other side.
   */
  readonly changes$: Observable<LocalMediaState> = this.changes.asObservable();

  /** The page renders from this after each change (the buttons await the change). */
  get current(): LocalMediaState {
    return this.state;
  }

  /**
   * Opens camera and microphone. A missing device of one kind is not fatal: the other kind is
   * tried alone, so a laptop without a camera still talks. A refusal is not retried (it would
   * only be refused again); the page then runs receive-only.
   */
  async open(): Promise<void> {
    let stream: MediaStream | null = null;
    let failure: MediaAccessError | null = null;
    try {
      stream = await getUserMedia({ audio: true, video: VIDEO });
    } catch (error) {
      failure = toMediaAccessError(error);
      if (failure.reason === 'no-device' || failure.reason === 'device-busy') {
        stream = (await this.tryOne({ audio: true })) ?? (await this.tryOne({ video: VIDEO }));
      }
    }
    this.stream = stream;
    this.state = {
      ...this.state,
      hasAudio: (stream?.getAudioTracks().length ?? 0) > 0,
      hasVideo: (stream?.getVideoTracks().length ?? 0) > 0,
      failure: stream !== null && stream.getTracks().length === 2 ? null : failure,
    };
  }

  private async tryOne(constraints: MediaStreamConstraints): Promise<MediaStream | null> {
    try {
      return await getUserMedia(constraints);
    } catch {
      return null;
    }
  }

  /**
   * What the corner preview shows: what we send, the screen while it is shared, else the
   * camera (null when there is neither).
   */
  get preview(): MediaStream | null {
    return this.screenStream ?? this.stream;
  }

  /**
   * Adds our tracks to a new connection, already muted as the buttons say and with the screen
   * instead of the camera while it is shared.
   */
  addTracksTo(pc: RTCPeerConnection): void {
    const stream = this.stream;
    if (stream === null) return;
    const senders = stream.getTracks().map((track): OurSender => {
      const sender = pc.addTrack(track.kind === 'video' && this.screen ? this.screen : track, stream);
      if (this.isHeldBack(track.kind)) void setSenderMuted(sender, true).catch(() => undefined);
      return { kind: track.kind, sender };
    });
    this.senders.set(pc, senders);
  }

  /** The connection's call ended: its senders are gone with it. */
  forgetSenders(pc: RTCPeerConnection): void {
    this.senders.delete(pc);
  }

  async setMicMuted(muted: boolean): Promise<void> {
    this.state = { ...this.state, micMuted: muted };
    await this.applyTo('audio', muted);
    this.changes.next(this.state);
  }

  /**
   * Camera off: the track is disabled (the preview goes dark, and browsers turn the camera
   * light off for a disabled track) and the sender sends nothing (replaceTrack(null)).
   */
  async setCameraOff(off: boolean): Promise<void> {
    this.state = { ...this.state, cameraOff: off };
    for (const track of this.stream?.getVideoTracks() ?? []) track.enabled = !off;
    // While the screen is shared the camera button changes only the camera (and its light).
    if (!this.screen) await this.applyTo('video', off);
    this.changes.next(this.state);
  }

  /**
   * Sends the screen instead of the camera on every connection, now and for connections made
   * while it is shared: `replaceTrack` on each video sender (webrtc-pc §5.2, same kind, so no
   * renegotiation). The browser asks which screen (Screen Capture §5.1; the click on the button
   * is the user activation it needs). Sharing ends with `stopSharingScreen`, or when the browser
   * ends the capture (its "Stop sharing" bar; the track's `ended` event, Media Capture §4.3.1).
   * Needs a camera track to replace: with no camera there is no video sender.
   * Rejects with what getDisplayMedia rejected with (NotAllowedError when the person cancelled).
   */
  async shareScreen(): Promise<void> {
    if (this.screen || !this.state.hasVideo) return;
    const capture = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    const screen = capture.getVideoTracks()[0];
    if (!screen) return;
    // Text and lines stay sharp: the encoder keeps the resolution and drops frames instead.
    screen.contentHint = 'detail';
    screen.addEventListener('ended', () => void this.stopSharingScreen(), { once: true });
    this.screen = screen;
    this.screenStream = capture;
    this.state = { ...this.state, sharingScreen: true };
    await this.sendVideo(screen, false);
    this.changes.next(this.state);
  }

  /** Back to the camera on every connection (muted again if the camera is off); the capture ends. */
  async stopSharingScreen(): Promise<void> {
    const screen = this.screen;
    if (!screen) return;
    this.screen = null;
    this.screenStream = null;
    this.state = { ...this.state, sharingScreen: false };
    const camera = this.stream?.getVideoTracks()[0];
    if (camera) await this.sendVideo(camera, this.state.cameraOff);
    screen.stop();
    this.changes.next(this.state);
  }

  /** What the other side receives from us now. */
  sending(): { readonly audio: boolean; readonly video: boolean; readonly screen: boolean } {
    const state = this.state;
    return { audio: state.hasAudio && !state.micMuted, video: state.sharingScreen || (state.hasVideo && !state.cameraOff), screen: state.sharingScreen };
  }

  private isHeldBack(kind: string): boolean {
    return kind === 'audio' ? this.state.micMuted : kind === 'video' ? this.state.cameraOff && !this.screen : false;
  }

  /** Our senders of `kind` on every connection still open (closed ones are forgotten). */
  private sendersOf(kind: 'audio' | 'video'): RTCRtpSender[] {
    for (const pc of [...this.senders.keys()]) if (pc.signalingState === 'closed') this.senders.delete(pc);
    return [...this.senders.values()].flatMap((senders) => senders.filter((entry) => entry.kind === kind).map((entry) => entry.sender));
  }

  /**
   * Applies `change` to each sender; one connection that fails (it closed meanwhile) does not
   * keep the change from the others.
   */
  private async eachSender(kind: 'audio' | 'video', change: (sender: RTCRtpSender) => Promise<void>): Promise<void> {
    const outcomes = await Promise.allSettled(this.sendersOf(kind).map(change));
    for (const outcome of outcomes) if (outcome.status === 'rejected') console.warn(`[parley] ${kind} sender:`, outcome.reason);
  }

  private applyTo(kind: 'audio' | 'video', muted: boolean): Promise<void> {
    return this.eachSender(kind, (sender) => setSenderMuted(sender, muted));
  }

  /**
   * Sends `track` on every video sender, muted or not. Muting comes first and unmuting last, so
   * no frame of the wrong source goes out in between; a muted sender only holds the new track.
   */
  private sendVideo(track: MediaStreamTrack, muted: boolean): Promise<void> {
    return this.eachSender('video', async (sender) => {
      if (muted) await setSenderMuted(sender, true);
      await switchCamera(sender, track, { stopPrevious: false });
      if (!muted) await setSenderMuted(sender, false);
    });
  }
}
