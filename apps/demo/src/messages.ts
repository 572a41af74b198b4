// Every failure a person can meet, in words they can act on. Pure functions of the typed values
// the packages report (call end, media error, signaling status), tested without a browser.
import type { CallEnd } from '@parley/core';
import type { MediaAccessFailure } from '@parley/browser';
import type { SignalingClientStatus } from '@parley/signaling-ws/client';

export type Tone = 'info' | 'success' | 'warning' | 'error';

export interface Notice {
  readonly tone: Tone;
  readonly text: string;
}

/** How a call ended, told from this side; `remote` is the other person's name. */
export function describeCallEnd(end: CallEnd, remote: string): Notice {
  switch (end.reason) {
    case 'hangup':
      return { tone: 'info', text: `You ended the call with ${remote}.` };
    case 'remote-hangup':
      return end.remoteReason === 'connection-failed' || end.remoteReason === 'error'
        ? { tone: 'error', text: `${remote}'s side lost the connection; the call ended.` }
        : { tone: 'info', text: `${remote} ended the call.` };
    case 'rejected':
      return { tone: 'warning', text: `${remote} declined your call.` };
    case 'busy':
      return { tone: 'warning', text: `${remote} is busy in another call. Try again later.` };
    case 'unavailable':
      return end.detail?.includes('left')
        ? { tone: 'warning', text: `${remote} left the room before answering.` }
        : { tone: 'warning', text: `${remote} could not take the call.` };
    case 'cancelled':
      return { tone: 'info', text: `You cancelled the call to ${remote}.` };
    case 'no-answer':
      return { tone: 'warning', text: `${remote} did not answer. The call timed out.` };
    case 'missed':
      if (end.endedBy === 'local') return { tone: 'warning', text: `You missed a call from ${remote}: it timed out.` };
      if (end.detail?.includes('left')) return { tone: 'warning', text: `${remote} left the room; their call was withdrawn.` };
      return end.remoteReason === 'timeout'
        ? { tone: 'warning', text: `Missed call from ${remote}: it rang out.` }
        : { tone: 'warning', text: `${remote} hung up before you answered.` };
    case 'declined':
      return { tone: 'info', text: `You declined the call from ${remote}.` };
    case 'connection-failed':
      return { tone: 'error', text: `The connection to ${remote} failed: ${connectionFailureHint(end)}` };
  }
}

function connectionFailureHint(end: CallEnd): string {
  switch (end.connectionFailure) {
    case 'turn-unauthorized':
      return 'the TURN server refused our credentials (they may have expired). Reload the page to get fresh ones, then call again.';
    case 'connect-timeout':
      return 'no network path was found in time. If one of you is behind a strict firewall, a TURN relay is needed.';
    case 'connection-failed':
      return 'the network path was lost and could not be restored.';
    case null:
      return end.detail ?? 'unknown error.';
  }
}

/** Why there is no local camera or microphone, and what the call does without them. */
export function describeMediaFailure(reason: MediaAccessFailure, engineMessage: string): Notice {
  const receiveOnly = 'You can still join calls: you will see and hear the other person, they will not see or hear you.';
  switch (reason) {
    case 'permission-denied':
      return { tone: 'warning', text: `Camera and microphone access was denied. ${receiveOnly} To send video, allow access in the site settings and reload.` };
    case 'no-device':
      return { tone: 'warning', text: `No camera or microphone was found. ${receiveOnly}` };
    case 'device-busy':
      return { tone: 'warning', text: `The camera or microphone is in use by another application. ${receiveOnly}` };
    case 'insecure-context':
      return { tone: 'error', text: `This page is not a secure context (open it over https:// or http://localhost), so the browser offers no camera. ${receiveOnly}` };
    case 'constraints-unsatisfiable':
    case 'invalid-constraints':
    case 'aborted':
    case 'unknown':
      return { tone: 'warning', text: `The camera could not be started (${engineMessage}). ${receiveOnly}` };
  }
}

/**
 * Why the screen is not shared (getDisplayMedia rejected, Screen Capture §5.1): the person
 * cancelled the browser's picker, or the browser or system refused; the camera keeps going out.
 */
export function describeScreenShareFailure(reason: MediaAccessFailure, engineMessage: string): Notice {
  const still = 'Your camera is still what the others see.';
  switch (reason) {
    case 'permission-denied':
      return { tone: 'info', text: `Screen sharing was cancelled or not allowed. ${still}` };
    case 'insecure-context':
      return { tone: 'error', text: `This page is not a secure context (open it over https:// or http://localhost), so the browser cannot share a screen. ${still}` };
    case 'no-device':
    case 'device-busy':
    case 'constraints-unsatisfiable':
    case 'invalid-constraints':
    case 'aborted':
    case 'unknown':
      return { tone: 'warning', text: `The screen could not be captured (${engineMessage}). ${still}` };
  }
}

/** The signaling connection's status as a banner; null when there is nothing to say. */
export function describeSignaling(status: SignalingClientStatus, inCall: boolean): Notice | null {
  switch (status) {
    case 'connecting':
      return { tone: 'info', text: 'Connecting to the signaling server…' };
    case 'joined':
      return null;
    case 'reconnecting':
      return {
        tone: 'warning',
        text: inCall
          ? 'Signaling connection lost, reconnecting… Your call continues: media flows directly between you.'
          : 'Signaling connection lost, reconnecting… You cannot call or be called until it is back.',
      };
    case 'closed':
      return { tone: 'error', text: 'Disconnected from the signaling server. Reload the page to join again.' };
  }
}
