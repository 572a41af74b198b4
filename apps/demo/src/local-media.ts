// This side's camera and microphone: opened once on joining, shown in the corner preview, added
// to each call's connection, and muted or turned off per kind. When they cannot be opened the
// page carries on receive-only (the other side's offer still brings their media to us).
import { getUserMedia, setSenderMuted, toMediaAccessError } from '@parley/browser';
import type { MediaAccessError } from '@parley/browser';

/** What this side has and sends; the chat channel tells the other side (a `media` frame). */
export interface LocalMediaState {
  readonly hasAudio: boolean;
  readonly hasVideo: boolean;
  readonly micMuted: boolean;
  readonly cameraOff: boolean;
  /** Why there is no camera or microphone (null when both opened). */
  readonly failure: MediaAccessError | null;
}

const VIDEO: MediaTrackConstraints = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };

export class LocalMedia {
  private state: LocalMediaState = { hasAudio: false, hasVideo: false, micMuted: false, cameraOff: false, failure: null };
  /** Senders of the call in progress, to mute in place (replaceTrack, no renegotiation). */
  private senders: { readonly kind: string; readonly sender: RTCRtpSender }[] = [];
  stream: MediaStream | null = null;

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

  /** Adds our tracks to a new call's connection, already muted as the buttons say. */
  addTracksTo(pc: RTCPeerConnection): void {
    const stream = this.stream;
    this.senders = [];
    if (stream === null) return;
    for (const track of stream.getTracks()) {
      const sender = pc.addTrack(track, stream);
      this.senders.push({ kind: track.kind, sender });
      if (this.isHeldBack(track.kind)) void setSenderMuted(sender, true).catch(() => undefined);
    }
  }

  /** The call ended: its senders are gone with its connection. */
  forgetSenders(): void {
    this.senders = [];
  }

  async setMicMuted(muted: boolean): Promise<void> {
    this.state = { ...this.state, micMuted: muted };
    await this.applyTo('audio', muted);
  }

  /**
   * Camera off: the track is disabled (the preview goes dark, and browsers turn the camera
   * light off for a disabled track) and the sender sends nothing (replaceTrack(null)).
   */
  async setCameraOff(off: boolean): Promise<void> {
    this.state = { ...this.state, cameraOff: off };
    for (const track of this.stream?.getVideoTracks() ?? []) track.enabled = !off;
    await this.applyTo('video', off);
  }

  /** What the other side receives from us now. */
  sending(): { readonly audio: boolean; readonly video: boolean } {
    const state = this.state;
    return { audio: state.hasAudio && !state.micMuted, video: state.hasVideo && !state.cameraOff };
  }

  private isHeldBack(kind: string): boolean {
    return kind === 'audio' ? this.state.micMuted : kind === 'video' ? this.state.cameraOff : false;
  }

  private async applyTo(kind: 'audio' | 'video', muted: boolean): Promise<void> {
    const senders = this.senders.filter((entry) => entry.kind === kind);
    await Promise.all(senders.map((entry) => setSenderMuted(entry.sender, muted)));
  }
}
