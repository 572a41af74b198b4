import { describe, expect, it } from 'vitest';
import { inviteHolder } from '../helpers/invite-gate.js';

// The gate of the crossing-calls tests must cross the invites and nothing else: a caller's offer
// and candidates follow its invite at once (offerOnStart), and a gate that let them overtake the
// held invite fed the other page an offer while it was idle, where nothing reads it (the
// Firefox ↔ Chromium crossing test then hung at "still new" under load).

const invite = (session: string): string => JSON.stringify({ type: 'signal', to: 'x', data: { kind: 'invite', session } });
const offer = (session: string): string =>
  JSON.stringify({ type: 'signal', to: 'x', data: { kind: 'description', session, description: { type: 'offer', sdp: 'v=0' } } });

describe('invite gate', () => {
  it('holds each socket’s frames behind its invite, in order, until every socket has sent one', async () => {
    const holder = inviteHolder(2);
    const sent: string[] = [];
    const first = holder.socket();
    const second = holder.socket();
    const pass = (socket: typeof first, frame: string, name: string): void => socket(frame, () => sent.push(name));

    pass(first, JSON.stringify({ type: 'ping' }), 'first ping');
    pass(first, invite('A'), 'first invite');
    pass(first, offer('A'), 'first offer');
    expect(sent).toEqual(['first ping']);

    pass(second, invite('B'), 'second invite');
    expect(sent).toEqual(['first ping', 'first invite', 'first offer', 'second invite']);
    pass(second, offer('B'), 'second offer');
    pass(first, invite('C'), 'first invite again');
    expect(sent.slice(4)).toEqual(['second offer', 'first invite again']);
    await holder.released;
  });
});
