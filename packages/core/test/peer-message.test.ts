import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isCallControlMessage, isGroupMessage, isNegotiationMessage, parsePeerMessage, PeerMessageError, PEER_MESSAGE_LIMITS } from '../src/protocol/peer-message.js';

describe('parsePeerMessage', () => {
  it('accepts each kind and copies only known fields', () => {
    const inputs = [
      { kind: 'invite', session: 's1', media: { audio: true, video: false } },
      { kind: 'accept', session: 's1' },
      { kind: 'reject', session: 's1', reason: 'busy' },
      { kind: 'cancel', session: 's1', reason: 'timeout' },
      { kind: 'bye', session: 's1', reason: 'hangup' },
      { kind: 'description', session: 's1', description: { type: 'offer', sdp: 'v=0\r\n' } },
      { kind: 'candidate', session: 's1', candidate: { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0', sdpMLineIndex: 0 } },
      { kind: 'candidate', session: 's1', candidate: null },
      { kind: 'group-join', session: 'm1' },
      { kind: 'group-present', session: 'm1', join: 'm2' },
      { kind: 'group-leave', session: 'm1' },
      { kind: 'group-full', session: 'm1' },
    ];
    for (const input of inputs) {
      const result = parsePeerMessage({ ...input, extra: 'dropped' });
      expect(result.ok).toBe(true);
      if (result.ok) {
        expect(result.message).toEqual(input);
        expect(result.message).not.toHaveProperty('extra');
      }
    }
  });

  it('rejects with a typed error naming the field', () => {
    const cases: [unknown, string, string][] = [
      [null, 'not-an-object', ''],
      [[1], 'not-an-object', ''],
      [{ kind: 'hello', session: 's' }, 'unknown-kind', 'kind'],
      [{ kind: 'accept' }, 'invalid-field', 'session'],
      [{ kind: 'accept', session: 'bad session' }, 'invalid-field', 'session'],
      [{ kind: 'reject', session: 's', reason: 'nope' }, 'invalid-field', 'reason'],
      [{ kind: 'description', session: 's', description: { type: 'rollback', sdp: '' } }, 'invalid-field', 'description.type'],
      [{ kind: 'description', session: 's', description: { type: 'offer', sdp: 'x'.repeat(PEER_MESSAGE_LIMITS.sdpLength + 1) } }, 'too-large', 'description.sdp'],
      [{ kind: 'candidate', session: 's' }, 'invalid-field', 'candidate'],
      [{ kind: 'candidate', session: 's', candidate: { candidate: 'c', sdpMLineIndex: -1 } }, 'invalid-field', 'candidate.sdpMLineIndex'],
      [{ kind: 'group-join' }, 'invalid-field', 'session'],
      [{ kind: 'group-present', session: 'a b', join: 'm2' }, 'invalid-field', 'session'],
      [{ kind: 'group-present', session: 'm1' }, 'invalid-field', 'join'],
      [{ kind: 'group-present', session: 'm1', join: 'a b' }, 'invalid-field', 'join'],
      [{ kind: 'group-present', session: 'm1', join: 'x'.repeat(PEER_MESSAGE_LIMITS.sessionLength + 1) }, 'too-large', 'join'],
      [{ kind: 'group-leave', session: 7 }, 'invalid-field', 'session'],
      [{ kind: 'group-full', session: 'x'.repeat(PEER_MESSAGE_LIMITS.sessionLength + 1) }, 'too-large', 'session'],
      [{ kind: 'group-kick', session: 's' }, 'unknown-kind', 'kind'],
    ];
    for (const [input, code, path] of cases) {
      const result = parsePeerMessage(input);
      expect(result.ok, JSON.stringify(input)?.slice(0, 80)).toBe(false);
      if (!result.ok) {
        expect(result.error).toBeInstanceOf(PeerMessageError);
        expect(result.error.code).toBe(code);
        expect(result.error.path).toBe(path);
      }
    }
  });

  it('tells call control, negotiation and group membership apart', () => {
    const kinds = (['invite', 'accept', 'description', 'candidate', 'group-join', 'group-present', 'group-leave', 'group-full'] as const).map((kind) => {
      const parsed = parsePeerMessage(kind === 'description' ? { kind, session: 's', description: { type: 'offer', sdp: 'v=0' } } : { kind, session: 's', candidate: null, join: 's' });
      if (!parsed.ok) throw parsed.error;
      const message = parsed.message;
      return [kind, isCallControlMessage(message), isNegotiationMessage(message), isGroupMessage(message)];
    });
    expect(kinds).toEqual([
      ['invite', true, false, false],
      ['accept', true, false, false],
      ['description', false, true, false],
      ['candidate', false, true, false],
      ['group-join', false, false, true],
      ['group-present', false, false, true],
      ['group-leave', false, false, true],
      ['group-full', false, false, true],
    ]);
  });

  it('never throws on any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const result = parsePeerMessage(value);
        expect(typeof result.ok).toBe('boolean');
      }),
      { numRuns: 500 },
    );
  });
});
