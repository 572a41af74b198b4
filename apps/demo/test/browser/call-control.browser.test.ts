import { expect, it } from 'vitest';
import { describeInChromium } from '../helpers/chromium.js';
import { createInviteGate } from '../helpers/invite-gate.js';
import { clickCall, joinRoom, leave, watchPage, waitForCallState, waitForConnected, waitForRemoteVideoPlaying } from '../helpers/person.js';
import type { Person } from '../helpers/person.js';
import { useRoomFixture } from '../helpers/room-fixture.js';

// Call control as people meet it: a declined call, a callee who leaves while it rings, and two
// people who call each other at the same moment.

describeInChromium('demo page: call control', () => {
  const fixture = useRoomFixture('control');
  const { join, nextRoom } = fixture;

  it('tells the caller that the call was declined', async () => {
    const roomName = nextRoom();
    const alice = await join(roomName, 'alice');
    const bob = await join(roomName, 'bob');
    await clickCall(alice, bob);
    await waitForCallState(bob, 'incoming');
    await bob.page.getByTestId('ringing').waitFor({ state: 'visible' });
    expect(await bob.page.getByTestId('ringing-text').textContent()).toContain('alice is calling you');

    await bob.page.getByTestId('reject').click();
    await Promise.all([waitForCallState(alice, 'ended'), waitForCallState(bob, 'ended')]);
    await alice.page.locator('[data-testid="notice"][data-key="call"]', { hasText: 'bob declined your call' }).waitFor();
    await bob.page.getByTestId('ringing').waitFor({ state: 'hidden' });
    // Both can call again.
    await alice.page.locator('[data-testid="peer"][data-name="bob"] [data-testid="call"]:not([disabled])').waitFor();
  });

  it('ends a ringing call when the callee leaves the room, and says so', async () => {
    const roomName = nextRoom();
    const alice = await join(roomName, 'alice');
    const bob = await joinRoom(fixture.browser, fixture.server, roomName, 'bob');
    await clickCall(alice, bob);
    await waitForCallState(bob, 'incoming');
    await leave(bob);

    await waitForCallState(alice, 'ended');
    await alice.page.locator('[data-testid="notice"][data-key="call"]', { hasText: 'bob left the room' }).waitFor();
    await alice.page.locator('[data-testid="peer"][data-name="bob"]').waitFor({ state: 'detached' });
  });

  it('makes one connected call, with no Accept, when both call each other at the same moment', async () => {
    const roomName = nextRoom();
    const gate = createInviteGate(2);
    const open = async (name: string): Promise<Person> => {
      const context = await fixture.browser.newContext({ viewport: { width: 1440, height: 900 } });
      const page = await context.newPage();
      await gate.route(page);
      const person: Person = { name, context, page, pageErrors: [], console: [] };
      watchPage(person);
      await page.goto(fixture.server.pageUrl(roomName, name));
      return fixture.track(person);
    };
    const alice = await open('alice');
    const bob = await open('bob');
    await Promise.all([clickCall(alice, bob), clickCall(bob, alice)]);
    await gate.released;

    await Promise.all([waitForConnected(alice), waitForConnected(bob)]);
    await Promise.all([waitForRemoteVideoPlaying(alice), waitForRemoteVideoPlaying(bob)]);
    for (const person of [alice, bob]) {
      expect(await person.page.getByTestId('ringing').isVisible()).toBe(false);
    }
  });
});
