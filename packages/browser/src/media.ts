// Media helpers for apps: open the camera and microphone with errors a person can act on, show a
// stream in a <video> or <audio> element, and change what a sender sends (switch camera, mute)
// without renegotiation. Nothing here touches a DOM global at import time: the module loads in
// Node, and every DOM object is passed in or looked up when a function runs.

import type { HostMediaStream, HostMediaStreamTrack, HostRtpSender, MediaDevicesLike, MediaStreamConstraintsLike } from './rtc-types.js';

/** Why getUserMedia failed, from the error names in Media Capture and Streams (getUserMedia). */
export type MediaAccessFailure =
  | 'permission-denied'
  | 'no-device'
  | 'device-busy'
  | 'constraints-unsatisfiable'
  | 'insecure-context'
  | 'aborted'
  | 'invalid-constraints'
  | 'unknown';

/**
 * The error name → reason table (Media Capture and Streams, getUserMedia, and the names browsers
 * used before the spec settled them). Anything else, e.g. InvalidStateError for a document that
 * is not fully active, is `unknown`.
 */
const FAILURE_BY_ERROR_NAME: Readonly<Record<string, MediaAccessFailure>> = {
  /** The user or the browser refused permission. */
  NotAllowedError: 'permission-denied',
  /** Media access is disabled for the document (permissions policy). */
  SecurityError: 'permission-denied',
  /** Chrome before the spec names (refused, or the prompt dismissed). */
  PermissionDeniedError: 'permission-denied',
  PermissionDismissedError: 'permission-denied',
  /** No device of a requested kind. */
  NotFoundError: 'no-device',
  DevicesNotFoundError: 'no-device',
  /** The device exists but could not be started: in use elsewhere, or an OS/hardware error. */
  NotReadableError: 'device-busy',
  TrackStartError: 'device-busy',
  /** No device satisfies a required constraint; the error names it. */
  OverconstrainedError: 'constraints-unsatisfiable',
  ConstraintNotSatisfiedError: 'constraints-unsatisfiable',
  /** The device was being started when something else stopped it. */
  AbortError: 'aborted',
  /** The request itself is wrong: neither audio nor video, or a malformed constraint. */
  TypeError: 'invalid-constraints',
};

function devicesAsked(constraints: MediaStreamConstraints | undefined): string {
  const video = Boolean(constraints?.video);
  const audio = Boolean(constraints?.audio);
  if (video && !audio) return 'camera';
  if (audio && !video) return 'microphone';
  return 'camera or microphone';
}

function messageFor(reason: MediaAccessFailure, devices: string, constraint: string | undefined, original: string): string {
  const Devices = devices.charAt(0).toUpperCase() + devices.slice(1);
  switch (reason) {
    case 'permission-denied':
      return `${Devices} permission was denied. Allow access in the browser's site settings, then try again.`;
    case 'no-device':
      return `No ${devices} was found. Connect one, then try again.`;
    case 'device-busy':
      return `The ${devices} could not be started; another application may be using it. Close that application, then try again.`;
    case 'constraints-unsatisfiable':
      return constraint === undefined
        ? `No ${devices} can satisfy the requested constraints. Ask for less, then try again.`
        : `No ${devices} can satisfy the requested "${constraint}". Ask for less, then try again.`;
    case 'insecure-context':
      return `${Devices} access is not available here: browsers offer it only to secure pages (https:// or http://localhost).`;
    case 'aborted':
      return `Starting the ${devices} was interrupted. Try again.`;
    case 'invalid-constraints':
      return `The media request is invalid (ask for audio, video or both, with well-formed constraints): ${original}`;
    case 'unknown':
      return `The ${devices} could not be opened: ${original}`;
  }
}

/** A getUserMedia failure with a typed `reason`; the engine's own error is the `cause`. */
export class MediaAccessError extends Error {
  override readonly name = 'MediaAccessError';
  readonly reason: MediaAccessFailure;
  /** The constraint no device could satisfy (OverconstrainedError.constraint), when named. */
  readonly constraint?: string;

  constructor(reason: MediaAccessFailure, message: string, options: { readonly cause?: unknown; readonly constraint?: string } = {}) {
    super(message, 'cause' in options ? { cause: options.cause } : undefined);
    this.reason = reason;
    if (options.constraint !== undefined) this.constraint = options.constraint;
  }
}

function fieldOf(error: unknown, field: string): unknown {
  return typeof error === 'object' && error !== null ? (error as Record<string, unknown>)[field] : undefined;
}

/**
 * Turns whatever getUserMedia (or getDisplayMedia) rejected with into a MediaAccessError, by the
 * error's `name`. `constraints` only make the message name the device (camera, microphone).
 */
export function toMediaAccessError(error: unknown, constraints?: MediaStreamConstraintsLike): MediaAccessError {
  if (error instanceof MediaAccessError) return error;
  const name = fieldOf(error, 'name');
  const reason = (typeof name === 'string' ? FAILURE_BY_ERROR_NAME[name] : undefined) ?? 'unknown';
  // OverconstrainedError.constraint; Chrome's legacy ConstraintNotSatisfiedError said constraintName.
  const named = fieldOf(error, 'constraint') ?? fieldOf(error, 'constraintName');
  const constraint = typeof named === 'string' && named !== '' ? named : undefined;
  const original = fieldOf(error, 'message');
  const message = messageFor(reason, devicesAsked(constraints), constraint, typeof original === 'string' ? original : String(error));
  return new MediaAccessError(reason, message, constraint === undefined ? { cause: error } : { cause: error, constraint });
}

/** Options of `getUserMedia`. */
export interface GetUserMediaOptions {
  /** Where to ask; default `navigator.mediaDevices`, which exists only in secure contexts. */
  readonly mediaDevices?: MediaDevicesLike;
}

/**
 * navigator.mediaDevices.getUserMedia, failing with a MediaAccessError. Without a mediaDevices
 * (not given, and `navigator.mediaDevices` absent: an insecure page, or not a browser), it fails
 * with `insecure-context`: MediaDevices is [SecureContext] in Media Capture and Streams.
 */
export async function getUserMedia(constraints: MediaStreamConstraintsLike, options: GetUserMediaOptions = {}): Promise<HostMediaStream> {
  const navigatorLike = (globalThis as { navigator?: { mediaDevices?: Pick<MediaDevices, 'getUserMedia'> } }).navigator;
  const mediaDevices = options.mediaDevices ?? navigatorLike?.mediaDevices;
  if (mediaDevices === undefined) {
    throw new MediaAccessError('insecure-context', messageFor('insecure-context', devicesAsked(constraints), undefined, ''));
  }
  try {
    return await mediaDevices.getUserMedia(constraints);
  } catch (error) {
    throw toMediaAccessError(error, constraints);
  }
}

/**
 * The part of an HTMLVideoElement or HTMLAudioElement that attaching a stream uses; a plain
 * object will do in tests. `playsInline` exists on video elements only.
 */
export interface MediaElementLike {
  srcObject: object | null;
  autoplay: boolean;
  muted: boolean;
  playsInline?: boolean;
  play(): Promise<void>;
}

/** Options of `attachStream`. */
export interface AttachStreamOptions {
  /** Set the element's `muted`: true for a local preview, so one's own microphone is not played
   * back (echo). Left as it is when not given. */
  readonly muted?: boolean;
}

/**
 * Shows `stream` in `element` and starts playback. Resolves true when playback started, false
 * when the browser's autoplay policy refused it (HTML's play() rejects with NotAllowedError):
 * the app can then offer a button that calls `element.play()`. Any other play() failure
 * rejects, AbortError included (a newer load replaced this one; the caller may ignore it).
 */
export async function attachStream(element: MediaElementLike, stream: HostMediaStream, options: AttachStreamOptions = {}): Promise<boolean> {
  if (options.muted !== undefined) element.muted = options.muted;
  element.autoplay = true;
  // iOS Safari would otherwise take a playing video to full screen.
  if ('playsInline' in element) element.playsInline = true;
  element.srcObject = stream;
  try {
    await element.play();
    return true;
  } catch (error) {
    if (fieldOf(error, 'name') === 'NotAllowedError') return false;
    throw error;
  }
}

/** Options of `detachStream`. */
export interface DetachStreamOptions {
  /** Also stop the stream's tracks: releases the camera and microphone of a local stream. */
  readonly stopTracks?: boolean;
}

function isMediaStreamLike(value: unknown): value is Pick<MediaStream, 'getTracks'> {
  return typeof fieldOf(value, 'getTracks') === 'function';
}

/** Removes the element's stream (and stops its tracks when asked). */
export function detachStream(element: Pick<MediaElementLike, 'srcObject'>, options: DetachStreamOptions = {}): void {
  const attached = element.srcObject;
  element.srcObject = null;
  if (options.stopTracks && isMediaStreamLike(attached)) {
    for (const track of attached.getTracks()) track.stop();
  }
}

/** The part of an RTCRtpSender these helpers use. */
export type SenderLike = Pick<HostRtpSender, 'track' | 'replaceTrack'>;

/**
 * Muting is done with `replaceTrack(null)` (webrtc-pc §5.2), not with `track.enabled = false`:
 * - it changes only this sender. The track itself is untouched, so a local preview of it keeps
 *   showing, and other senders of the same track (other peers of a group call) keep sending;
 * - the remote receives no media at all (no black frames or silence to pay bandwidth for), and
 *   its track fires `mute` (Media Capture and Streams: a track is muted while no media arrives);
 * - the camera light stays the app's choice: stop the track too if it should go off.
 * The track is kept here, per sender, to be put back on unmute. A WeakMap keyed by the sender
 * lets every caller see the same state and lets the entry go with the sender.
 */
const trackHeldWhileMuted = new WeakMap<SenderLike, MediaStreamTrack | null>();

/** True while `sender` is muted by `setSenderMuted`. */
export function isSenderMuted(sender: SenderLike): boolean {
  return trackHeldWhileMuted.has(sender);
}

/**
 * Mutes or unmutes `sender` (see above for how). Idempotent: muting a muted sender or
 * unmuting an unmuted one does nothing. Use these helpers, not `replaceTrack` directly, for
 * every change on a sender you mute. replaceTrack runs on the connection's operations chain, so
 * calls made in a row take effect in that order.
 */
export async function setSenderMuted(sender: SenderLike, muted: boolean): Promise<void> {
  if (muted === isSenderMuted(sender)) return;
  if (muted) {
    const track = sender.track;
    trackHeldWhileMuted.set(sender, track);
    try {
      await sender.replaceTrack(null);
    } catch (error) {
      trackHeldWhileMuted.delete(sender);
      throw error;
    }
  } else {
    const track = trackHeldWhileMuted.get(sender) ?? null;
    trackHeldWhileMuted.delete(sender);
    try {
      await sender.replaceTrack(track);
    } catch (error) {
      trackHeldWhileMuted.set(sender, track);
      throw error;
    }
  }
}

/** Options of `switchCamera`. */
export interface SwitchTrackOptions {
  /** Stop the track being replaced, releasing its device (default true). */
  readonly stopPrevious?: boolean;
}

/**
 * Sends `newTrack` instead of the sender's current track: another camera, or another
 * microphone. replaceTrack needs no renegotiation when the kind is the same (webrtc-pc §5.2; a
 * different kind rejects with TypeError). The previous track is stopped only once the
 * replacement succeeded, so a failure leaves the old one sending. On a muted sender the new
 * track is only held, to be sent on unmute: switching does not unmute.
 */
export async function switchCamera(sender: SenderLike, newTrack: HostMediaStreamTrack, options: SwitchTrackOptions = {}): Promise<void> {
  let previous: MediaStreamTrack | null;
  if (isSenderMuted(sender)) {
    previous = trackHeldWhileMuted.get(sender) ?? null;
    if (previous !== null && previous.kind !== newTrack.kind) {
      throw new TypeError(`cannot replace a ${previous.kind} track with a ${newTrack.kind} track`);
    }
    trackHeldWhileMuted.set(sender, newTrack);
  } else {
    previous = sender.track;
    await sender.replaceTrack(newTrack);
  }
  if ((options.stopPrevious ?? true) && previous !== null && previous !== newTrack) previous.stop();
}
