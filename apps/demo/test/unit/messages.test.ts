import { describe, expect, it } from 'vitest';
import type { CallEnd, CallEndReason, PeerFailureReason } from '@parley/core';
import type { MediaAccessFailure } from '@parley/browser';
import type { SignalingClientStatus } from '@parley/signaling-ws/client';
import { describeCallEnd, describeMediaFailure, describeScreenShareFailure, describeSignaling } from '../../src/messages.js';

// Every notice a person reads: each must name who and why, in the tone the banner shows. The
// CallEnd values below are the shapes the call machine produces (packages/core call.machine.ts).

const remote = 'Zoë_42';

function end(reason: CallEndReason, fields: Partial<Omit<CallEnd, 'reason'>> = {}): CallEnd {
  return { reason, endedBy: 'local', remoteReason: null, detail: null, connectionFailure: null, ...fields };
}

/** Every CallEndReason, listed so that a new reason fails to compile here until it is described. */
const ALL_REASONS = {
  hangup: true,
  'remote-hangup': true,
  rejected: true,
  busy: true,
  unavailable: true,
  cancelled: true,
  'no-answer': true,
  missed: true,
  declined: true,
  'connection-failed': true,
} satisfies Record<CallEndReason, true>;

describe('describeCallEnd', () => {
  it.each(Object.keys(ALL_REASONS) as CallEndReason[])('describes %s with a non-empty text naming the remote person', (reason) => {
    const notice = describeCallEnd(end(reason), remote);
    expect(notice.text.trim()).not.toBe('');
    expect(notice.text).toContain(remote);
    expect(['info', 'success', 'warning', 'error']).toContain(notice.tone);
  });

  it('gives different texts for different reasons', () => {
    const texts = (Object.keys(ALL_REASONS) as CallEndReason[]).map((reason) => describeCallEnd(end(reason), remote).text);
    expect(new Set(texts).size).toBe(texts.length);
  });

  it('says we ended the call on a local hangup', () => {
    expect(describeCallEnd(end('hangup'), remote)).toEqual({ tone: 'info', text: `You ended the call with ${remote}.` });
  });

  it('says the remote ended the call on their hangup', () => {
    const notice = describeCallEnd(end('remote-hangup', { endedBy: 'remote', remoteReason: 'hangup' }), remote);
    expect(notice.tone).toBe('info');
    expect(notice.text).toBe(`${remote} ended the call.`);
  });

  it.each(['connection-failed', 'error'] as const)('says the remote side lost the connection when its bye says %s', (remoteReason) => {
    const notice = describeCallEnd(end('remote-hangup', { endedBy: 'remote', remoteReason }), remote);
    expect(notice.tone).toBe('error');
    expect(notice.text).toContain(remote);
    expect(notice.text).toMatch(/lost the connection/);
  });

  it('says the remote declined when it rejected our invite', () => {
    const notice = describeCallEnd(end('rejected', { endedBy: 'remote', remoteReason: 'declined' }), remote);
    expect(notice.tone).toBe('warning');
    expect(notice.text).toContain(remote);
    expect(notice.text).toMatch(/declined/);
  });

  it('says the remote is busy and to try later', () => {
    const notice = describeCallEnd(end('busy', { endedBy: 'remote', remoteReason: 'busy' }), remote);
    expect(notice.tone).toBe('warning');
    expect(notice.text).toContain(remote);
    expect(notice.text).toMatch(/busy/);
    expect(notice.text).toMatch(/try again/i);
  });

  it('says the callee left the room when it left while ringing', () => {
    const notice = describeCallEnd(end('unavailable', { endedBy: 'remote', detail: 'the callee left the room' }), remote);
    expect(notice.tone).toBe('warning');
    expect(notice.text).toBe(`${remote} left the room before answering.`);
  });

  it('says the callee could not take the call when it rejected as unavailable', () => {
    const notice = describeCallEnd(end('unavailable', { endedBy: 'remote', remoteReason: 'unavailable' }), remote);
    expect(notice.tone).toBe('warning');
    expect(notice.text).toContain(remote);
    expect(notice.text).toMatch(/could not take the call/);
    expect(notice.text).not.toMatch(/left/);
  });

  it('says we cancelled our own invite', () => {
    const notice = describeCallEnd(end('cancelled'), remote);
    expect(notice.tone).toBe('info');
    expect(notice.text).toContain(remote);
    expect(notice.text).toMatch(/You cancelled/);
  });

  it('says our invite was not answered in time', () => {
    const notice = describeCallEnd(end('no-answer'), remote);
    expect(notice.tone).toBe('warning');
    expect(notice.text).toContain(remote);
    expect(notice.text).toMatch(/did not answer/);
    expect(notice.text).toMatch(/timed out/);
  });

  describe('missed', () => {
    it('says we missed the call when it rang out here', () => {
      const notice = describeCallEnd(end('missed', { endedBy: 'local' }), remote);
      expect(notice.tone).toBe('warning');
      expect(notice.text).toBe(`You missed a call from ${remote}: it timed out.`);
    });

    it('says the call rang out when the caller withdrew it on its timeout', () => {
      const notice = describeCallEnd(end('missed', { endedBy: 'remote', remoteReason: 'timeout' }), remote);
      expect(notice.tone).toBe('warning');
      expect(notice.text).toContain(remote);
      expect(notice.text).toMatch(/rang out/);
    });

    it('says the caller hung up when it cancelled', () => {
      const notice = describeCallEnd(end('missed', { endedBy: 'remote', remoteReason: 'cancelled' }), remote);
      expect(notice.tone).toBe('warning');
      expect(notice.text).toContain(remote);
      expect(notice.text).toMatch(/hung up before you answered/);
    });

    it('says the caller left the room when it left while ringing', () => {
      const notice = describeCallEnd(end('missed', { endedBy: 'remote', detail: 'the caller left the room' }), remote);
      expect(notice.tone).toBe('warning');
      expect(notice.text).toContain(remote);
      expect(notice.text).toMatch(/left the room/);
    });

    it('the three remote variants differ from each other and from the local one', () => {
      const texts = [
        describeCallEnd(end('missed', { endedBy: 'local' }), remote).text,
        describeCallEnd(end('missed', { endedBy: 'remote', remoteReason: 'timeout' }), remote).text,
        describeCallEnd(end('missed', { endedBy: 'remote', remoteReason: 'cancelled' }), remote).text,
        describeCallEnd(end('missed', { endedBy: 'remote', detail: 'the caller left the room' }), remote).text,
      ];
      expect(new Set(texts).size).toBe(4);
    });
  });

  it('says we declined the incoming call', () => {
    const notice = describeCallEnd(end('declined'), remote);
    expect(notice.tone).toBe('info');
    expect(notice.text).toContain(remote);
    expect(notice.text).toMatch(/You declined/);
  });

  describe('connection-failed', () => {
    it.each<[PeerFailureReason, RegExp]>([
      ['turn-unauthorized', /TURN server refused our credentials.*Reload/],
      ['connect-timeout', /no network path was found in time.*TURN relay/],
      ['connection-failed', /network path was lost/],
    ])('explains %s as an error naming the remote', (connectionFailure, cause) => {
      const notice = describeCallEnd(end('connection-failed', { connectionFailure, detail: connectionFailure }), remote);
      expect(notice.tone).toBe('error');
      expect(notice.text).toContain(`The connection to ${remote} failed`);
      expect(notice.text).toMatch(cause);
    });

    it('gives the three failures three different causes', () => {
      const texts = (['turn-unauthorized', 'connect-timeout', 'connection-failed'] as const).map(
        (connectionFailure) => describeCallEnd(end('connection-failed', { connectionFailure }), remote).text,
      );
      expect(new Set(texts).size).toBe(3);
    });

    it('shows the detail of a failure that is not a peer failure, e.g. an error thrown while building the connection', () => {
      const notice = describeCallEnd(end('connection-failed', { detail: 'createRtc threw: no RTCPeerConnection' }), remote);
      expect(notice.tone).toBe('error');
      expect(notice.text).toBe(`The connection to ${remote} failed: createRtc threw: no RTCPeerConnection`);
    });

    it('still says something when there is neither a failure nor a detail', () => {
      const notice = describeCallEnd(end('connection-failed'), remote);
      expect(notice.tone).toBe('error');
      expect(notice.text).toMatch(new RegExp(`^The connection to ${remote} failed: \\S`));
    });
  });
});

const ALL_MEDIA_FAILURES = {
  'permission-denied': true,
  'no-device': true,
  'device-busy': true,
  'constraints-unsatisfiable': true,
  'insecure-context': true,
  aborted: true,
  'invalid-constraints': true,
  unknown: true,
} satisfies Record<MediaAccessFailure, true>;

describe('describeMediaFailure', () => {
  it.each(Object.keys(ALL_MEDIA_FAILURES) as MediaAccessFailure[])('tells, for %s, that receive-only calls still work', (reason) => {
    const notice = describeMediaFailure(reason, 'engine said no');
    expect(notice.text).toMatch(/You can still join calls/);
    expect(notice.text).toMatch(/see and hear the other person/);
    expect(notice.text).toMatch(/they will not see or hear you/);
    expect(['warning', 'error']).toContain(notice.tone);
  });

  it('says access was denied, and how to allow it, for permission-denied', () => {
    const notice = describeMediaFailure('permission-denied', 'Permission denied');
    expect(notice.tone).toBe('warning');
    expect(notice.text).toMatch(/access was denied/);
    expect(notice.text).toMatch(/allow access in the site settings and reload/);
  });

  it('says no device was found for no-device', () => {
    expect(describeMediaFailure('no-device', 'x').text).toMatch(/No camera or microphone was found/);
  });

  it('says another application holds the device for device-busy', () => {
    expect(describeMediaFailure('device-busy', 'x').text).toMatch(/in use by another application/);
  });

  it('explains the secure-context requirement as an error', () => {
    const notice = describeMediaFailure('insecure-context', 'x');
    expect(notice.tone).toBe('error');
    expect(notice.text).toMatch(/not a secure context/);
    expect(notice.text).toMatch(/https:\/\//);
  });

  it.each(['constraints-unsatisfiable', 'invalid-constraints', 'aborted', 'unknown'] as const)(
    'quotes the engine message for %s',
    (reason) => {
      const notice = describeMediaFailure(reason, 'Could not start video source');
      expect(notice.tone).toBe('warning');
      expect(notice.text).toContain('(Could not start video source)');
    },
  );

  it('gives the specific failures their own text, not the generic one', () => {
    const specific = (['permission-denied', 'no-device', 'device-busy', 'insecure-context'] as const).map(
      (reason) => describeMediaFailure(reason, 'ENGINE-MESSAGE').text,
    );
    for (const text of specific) expect(text).not.toContain('ENGINE-MESSAGE');
    expect(new Set(specific).size).toBe(specific.length);
  });
});

describe('describeSignaling', () => {
  const ALL_STATUSES = Object.keys({ connecting: true, joined: true, reconnecting: true, closed: true } satisfies Record<SignalingClientStatus, true>) as SignalingClientStatus[];

  it.each([true, false])('says nothing once joined (in a call: %s)', (inCall) => {
    expect(describeSignaling('joined', inCall)).toBeNull();
  });

  it.each([true, false])('shows connecting as information (in a call: %s)', (inCall) => {
    const notice = describeSignaling('connecting', inCall);
    expect(notice?.tone).toBe('info');
    expect(notice?.text).toMatch(/Connecting to the signaling server/);
  });

  it('tells a person in a call that the call continues while signaling reconnects', () => {
    const notice = describeSignaling('reconnecting', true);
    expect(notice?.tone).toBe('warning');
    expect(notice?.text).toMatch(/reconnecting/);
    expect(notice?.text).toMatch(/Your call continues/);
    expect(notice?.text).not.toMatch(/cannot call/);
  });

  it('tells a person out of a call that calling waits for the reconnect', () => {
    const notice = describeSignaling('reconnecting', false);
    expect(notice?.tone).toBe('warning');
    expect(notice?.text).toMatch(/reconnecting/);
    expect(notice?.text).toMatch(/cannot call or be called/);
    expect(notice?.text).not.toMatch(/call continues/);
  });

  it.each([true, false])('shows closed as an error that asks for a reload (in a call: %s)', (inCall) => {
    const notice = describeSignaling('closed', inCall);
    expect(notice?.tone).toBe('error');
    expect(notice?.text).toMatch(/Disconnected/);
    expect(notice?.text).toMatch(/Reload/);
  });

  it.each(ALL_STATUSES.filter((status) => status !== 'joined'))('has a non-empty banner for %s', (status) => {
    for (const inCall of [true, false]) expect(describeSignaling(status, inCall)?.text.trim()).not.toBe('');
  });
});

describe('describeScreenShareFailure', () => {
  it.each(Object.keys(ALL_MEDIA_FAILURES) as MediaAccessFailure[])('tells, for %s, that the camera still goes out', (reason) => {
    expect(describeScreenShareFailure(reason, 'engine said no').text).toMatch(/Your camera is still what the others see/);
  });

  it('reads a cancelled picker (NotAllowedError) as cancelled, not as an error', () => {
    const notice = describeScreenShareFailure('permission-denied', 'Permission denied by user');
    expect(notice.tone).toBe('info');
    expect(notice.text).toMatch(/cancelled or not allowed/);
  });

  it('quotes the engine message when the capture itself failed', () => {
    expect(describeScreenShareFailure('aborted', 'Could not start video source').text).toContain('(Could not start video source)');
  });
});
