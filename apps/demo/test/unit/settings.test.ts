import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NAME_RULE, inviteUrl, nameProblem, readSettings, roomUrl, signalingUrl, suggestRoomName } from '../../src/settings.js';

// The page's address is its only input before the join form: these tests pin what each query
// parameter does, and that the URLs the page builds read back as what it meant.

const runs = Number(process.env['PARLEY_FC_RUNS'] ?? 100);
const page = (query: string): URL => new URL(`http://127.0.0.1:5173/parley/${query}`);
/** Values of `random()`: anything in [0, 1), edges included. */
const unitInterval = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });
const validName = fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/);

describe('readSettings', () => {
  it('joins the room and name of a full address, with the server ICE servers and no inspector', () => {
    expect(readSettings(page('?room=lobby&name=alice'))).toEqual({
      join: { room: 'lobby', name: 'alice' },
      draft: { room: 'lobby', name: 'alice' },
      ice: 'default',
      iceAddress: null,
      inspect: false,
      machineView: false,
      problems: [],
    });
  });

  it.each(['default', 'relay', 'loopback'] as const)('reads ice=%s without a problem', (ice) => {
    const settings = readSettings(page(`?room=lobby&name=alice&ice=${ice}`));
    expect(settings.ice).toBe(ice);
    expect(settings.problems).toEqual([]);
    expect(settings.join).toEqual({ room: 'lobby', name: 'alice' });
  });

  it.each(['10.99.0.1', '192.168.1.20', '::1', 'fd00::1'])('reads ice=host:%s as that one address, without a problem', (address) => {
    const settings = readSettings(page(`?room=lobby&name=alice&ice=host:${address}`));
    expect(settings).toMatchObject({ ice: 'host', iceAddress: address, problems: [] });
  });

  it.each(['host:', 'host:example.org', 'host:10.99.0.1 ', 'host:10.99.0', 'HOST:10.99.0.1'])('reports ice=%s as unknown', (ice) => {
    const settings = readSettings(page(`?room=lobby&name=alice&ice=${encodeURIComponent(ice)}`));
    expect(settings).toMatchObject({ ice: 'default', iceAddress: null });
    expect(settings.problems[0]).toContain('ice=host:ADDRESS');
  });

  it('treats an empty ice= as the default, without a problem', () => {
    const settings = readSettings(page('?room=lobby&name=alice&ice='));
    expect(settings.ice).toBe('default');
    expect(settings.problems).toEqual([]);
  });

  it.each([
    ['1', true, false],
    ['true', true, false],
    ['local', false, true],
    ['0', false, false],
    ['false', false, false],
    ['', false, false],
  ])('reads inspect=%j as Stately inspector %s, live machine view %s', (value, inspect, machineView) => {
    expect(readSettings(page(`?room=lobby&name=alice&inspect=${value}`))).toMatchObject({ inspect, machineView });
  });

  it('has no inspector when inspect is absent', () => {
    expect(readSettings(page('?room=lobby&name=alice'))).toMatchObject({ inspect: false, machineView: false });
  });

  it.each([
    ['no room', '?name=alice', { room: '', name: 'alice' }],
    ['no name', '?room=lobby', { room: 'lobby', name: '' }],
    ['an empty room', '?room=&name=alice', { room: '', name: 'alice' }],
    ['a blank name', '?room=lobby&name=%20%20', { room: 'lobby', name: '' }],
    ['nothing', '', { room: '', name: '' }],
  ])('asks with the form when the address has %s, keeping what it has as the draft', (_, query, draft) => {
    const settings = readSettings(page(query));
    expect(settings.join).toBeNull();
    expect(settings.draft).toEqual(draft);
    // A missing value is not a mistake in the address: the form simply asks for it.
    expect(settings.problems).toEqual([]);
  });

  it('lists an invalid name as a problem, does not join, and keeps the raw value in the draft', () => {
    const settings = readSettings(page('?room=lobby&name=al%20ice'));
    expect(settings.join).toBeNull();
    expect(settings.draft).toEqual({ room: 'lobby', name: 'al ice' });
    expect(settings.problems).toHaveLength(1);
    expect(settings.problems[0]).toContain('name');
    expect(settings.problems[0]).toContain('al ice');
  });

  it('lists an invalid room as a problem, does not join, and keeps the raw value in the draft', () => {
    const settings = readSettings(page('?room=a%2Fb&name=alice'));
    expect(settings.join).toBeNull();
    expect(settings.draft).toEqual({ room: 'a/b', name: 'alice' });
    expect(settings.problems).toEqual([nameProblem('room', 'a/b')]);
  });

  it('lists both an invalid room and an invalid name', () => {
    const tooLong = 'x'.repeat(65);
    const settings = readSettings(page(`?room=r%C3%B6%C3%B6m&name=${tooLong}`));
    expect(settings.join).toBeNull();
    expect(settings.draft).toEqual({ room: 'rööm', name: tooLong });
    expect(settings.problems).toEqual([nameProblem('room', 'rööm'), nameProblem('name', tooLong)]);
  });

  it('reports an invalid name even when the room is missing', () => {
    const settings = readSettings(page('?name=a%2Bb%21'));
    expect(settings.join).toBeNull();
    expect(settings.draft).toEqual({ room: '', name: 'a+b!' });
    expect(settings.problems).toEqual([nameProblem('name', 'a+b!')]);
  });

  it.each(['turn', 'RELAY', 'Loopback', 'all'])('reports the unknown ice=%s and falls back to the default', (ice) => {
    const settings = readSettings(page(`?room=lobby&name=alice&ice=${ice}`));
    expect(settings.ice).toBe('default');
    expect(settings.problems).toHaveLength(1);
    expect(settings.problems[0]).toContain(`ice=${ice}`);
    // An unknown ICE mode does not stop the page from joining.
    expect(settings.join).toEqual({ room: 'lobby', name: 'alice' });
  });

  it('trims spaces around the room and name before checking and joining', () => {
    const settings = readSettings(page('?room=%20%20lobby%09&name=%20alice%20'));
    expect(settings.join).toEqual({ room: 'lobby', name: 'alice' });
    expect(settings.draft).toEqual({ room: 'lobby', name: 'alice' });
    expect(settings.problems).toEqual([]);
  });

  it('decodes form-encoded spaces (+) before trimming', () => {
    expect(readSettings(page('?room=+lobby+&name=alice')).join).toEqual({ room: 'lobby', name: 'alice' });
  });
});

describe('nameProblem', () => {
  it.each(['a', 'Alice_01', 'room.name-2', '-', '.', 'x'.repeat(64)])('accepts %j', (value) => {
    expect(nameProblem('room', value)).toBeNull();
    expect(nameProblem('name', value)).toBeNull();
  });

  it('asks for a value when it is empty, naming which one', () => {
    expect(nameProblem('room', '')).toBe('Enter a room.');
    expect(nameProblem('name', '')).toBe('Enter a name.');
  });

  it.each(['al ice', 'x'.repeat(65), 'a/b', 'ünïcode', 'a+b', 'emoji😀', ' padded'])('refuses %j, quoting it and naming which one', (value) => {
    const room = nameProblem('room', value);
    const name = nameProblem('name', value);
    expect(room).toContain(value);
    expect(room).toMatch(/\broom\b/);
    expect(name).toContain(value);
    expect(name).toMatch(/\bname\b/);
  });

  it('agrees with NAME_RULE on any non-empty value', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 80 }), (value) => {
        expect(nameProblem('name', value) === null).toBe(NAME_RULE.test(value));
      }),
      { numRuns: runs },
    );
  });
});

describe('roomUrl', () => {
  it('replaces room and name, keeps the other options, and drops the hash', () => {
    const next = roomUrl(page('?room=old&name=bob&ice=relay&inspect=1#chat'), 'lobby', 'alice');
    expect(next.origin).toBe('http://127.0.0.1:5173');
    expect(next.pathname).toBe('/parley/');
    expect(next.hash).toBe('');
    expect(next.searchParams.get('room')).toBe('lobby');
    expect(next.searchParams.get('name')).toBe('alice');
    expect(next.searchParams.get('ice')).toBe('relay');
    expect(next.searchParams.get('inspect')).toBe('1');
    expect(next.searchParams.getAll('room')).toHaveLength(1);
    expect(next.searchParams.getAll('name')).toHaveLength(1);
  });

  it('adds room and name to an address that has neither', () => {
    const next = roomUrl(page('?ice=loopback'), 'lobby', 'alice');
    expect(readSettings(next)).toMatchObject({ join: { room: 'lobby', name: 'alice' }, ice: 'loopback', problems: [] });
  });

  it('does not change the address it was given', () => {
    const current = page('?room=old&name=bob#x');
    roomUrl(current, 'lobby', 'alice');
    expect(current.href).toBe('http://127.0.0.1:5173/parley/?room=old&name=bob#x');
  });

  it('reads back as a join of the same room and name, for any valid room and name', () => {
    fc.assert(
      fc.property(validName, validName, fc.constantFrom('', '?ice=relay&inspect=1', '?room=old&name=bob#frag'), (room, name, query) => {
        expect(readSettings(roomUrl(page(query), room, name)).join).toEqual({ room, name });
      }),
      { numRuns: runs },
    );
  });
});

describe('inviteUrl', () => {
  it('keeps the room and a relay ICE mode, and drops the name, inspect and the hash', () => {
    const invite = inviteUrl(page('?room=old&name=alice&ice=relay&inspect=1#chat'), 'lobby');
    expect(invite.href).toBe('http://127.0.0.1:5173/parley/?room=lobby&ice=relay');
  });

  it('keeps a loopback ICE mode', () => {
    expect(inviteUrl(page('?room=lobby&name=alice&ice=loopback'), 'lobby').searchParams.get('ice')).toBe('loopback');
  });

  it('keeps a host ICE mode with its address', () => {
    expect(inviteUrl(page('?room=lobby&name=alice&ice=host:10.99.0.1'), 'lobby').searchParams.get('ice')).toBe('host:10.99.0.1');
  });

  it.each(['', '?ice=default', '?ice=bogus', '?ice=', '?ice=host:nowhere'])('has no ice parameter for the address %j', (query) => {
    const invite = inviteUrl(page(query), 'lobby');
    expect(invite.href).toBe('http://127.0.0.1:5173/parley/?room=lobby');
  });

  it('opens, for the invited person, the form with the room filled in and their name asked', () => {
    const settings = readSettings(inviteUrl(page('?room=lobby&name=alice&ice=relay'), 'lobby'));
    expect(settings).toMatchObject({ join: null, draft: { room: 'lobby', name: '' }, ice: 'relay', inspect: false, problems: [] });
  });
});

describe('signalingUrl', () => {
  it.each([
    ['http://127.0.0.1:8080/parley/?room=a', 'ws://127.0.0.1:8080/signaling'],
    ['http://localhost/', 'ws://localhost/signaling'],
    ['https://chat.example.org:8443/app/index.html#x', 'wss://chat.example.org:8443/signaling'],
    ['https://chat.example.org/', 'wss://chat.example.org/signaling'],
    ['https://chat.example.org:443/', 'wss://chat.example.org/signaling'],
    ['http://[::1]:3000/', 'ws://[::1]:3000/signaling'],
  ])('serves %s signaling at %s', (address, expected) => {
    expect(signalingUrl(new URL(address))).toBe(expected);
  });
});

describe('suggestRoomName', () => {
  it('is a function of the random values it draws', () => {
    const draws = (values: number[]) => () => values.shift() ?? 0;
    expect(suggestRoomName(draws([0, 0]))).toBe('amber-1000');
    expect(suggestRoomName(draws([0.999999, 0.999999]))).toBe('lumen-9999');
    expect(suggestRoomName(draws([0.5, 0.5]))).toBe(suggestRoomName(draws([0.5, 0.5])));
  });

  it('always passes the signaling name rule, whatever random() returns in [0, 1)', () => {
    fc.assert(
      fc.property(unitInterval, unitInterval, (a, b) => {
        const values = [a, b];
        const name = suggestRoomName(() => values.shift() ?? 0);
        expect(name).toMatch(NAME_RULE);
        expect(name).toMatch(/^[a-z]+-[1-9]\d{3}$/);
        expect(nameProblem('room', name)).toBeNull();
      }),
      { numRuns: runs },
    );
  });

  it('uses Math.random by default and still passes the rule', () => {
    expect(suggestRoomName()).toMatch(NAME_RULE);
  });
});
