import { expect, it } from 'vitest';
import { describeInChromium } from '../helpers/chromium.js';
import { callAndAccept, remoteVideoProgress, waitForRemoteVideoPlaying, waitForTestIdText } from '../helpers/person.js';
import { useRoomFixture } from '../helpers/room-fixture.js';

// What goes wrong around a call: the signaling server goes away mid-call, and a person refuses
// the camera.

describeInChromium('demo page: faults', () => {
  const fixture = useRoomFixture('faults', { refusingBrowser: true });
  const { join, nextRoom } = fixture;

  it('keeps the call going while the signaling server restarts, and chat works after', async () => {
    const roomName = nextRoom();
    const alice = await join(roomName, 'alice');
    const bob = await join(roomName, 'bob');
    await callAndAccept(alice, bob);
    await waitForRemoteVideoPlaying(bob);

    const restarted = fixture.server.restart({ downMs: 1500 });
    await Promise.all([waitForTestIdText(alice.page, 'signaling-status', 'reconnecting'), waitForTestIdText(bob.page, 'signaling-status', 'reconnecting')]);
    await alice.page.locator('[data-testid="notice"][data-key="signaling"]', { hasText: 'Your call continues' }).waitFor();
    // While the server is down, media still flows and the call is untouched.
    const during = await waitForRemoteVideoPlaying(bob);
    expect(during.width).toBeGreaterThan(0);
    for (const person of [alice, bob]) {
      expect(await person.page.getByTestId('call-state').textContent()).toBe('active');
      expect(await person.page.getByTestId('connection-state').textContent()).toBe('connected');
    }
    await restarted;

    await Promise.all([waitForTestIdText(alice.page, 'signaling-status', 'joined'), waitForTestIdText(bob.page, 'signaling-status', 'joined')]);
    await alice.page.locator('[data-testid="notice"][data-key="signaling"]').waitFor({ state: 'detached' });
    await alice.page.getByTestId('chat-input').fill('still here?');
    await alice.page.getByTestId('chat-send').click();
    await bob.page.locator('[data-testid="chat-log"] [data-from="them"]', { hasText: 'still here?' }).waitFor();
    const before = await remoteVideoProgress(alice);
    await waitForRemoteVideoPlaying(alice);
    expect((await remoteVideoProgress(alice)).framesDecoded).toBeGreaterThan(before.framesDecoded);
    // Signaling works again too: hang up, and the other side hears of it through the server.
    await bob.page.getByTestId('hangup').click();
    await waitForTestIdText(alice.page, 'call-state', 'ended');
  });

  it('lets a person who refused the camera call and receive video (receive-only)', async () => {
    const roomName = nextRoom();
    const dana = await join(roomName, 'dana', { browser: fixture.refusingBrowser });
    const erin = await join(roomName, 'erin');
    await dana.page.locator('[data-testid="notice"][data-key="media"]', { hasText: 'access was denied' }).waitFor();
    expect(await dana.page.getByTestId('camera').isDisabled()).toBe(true);

    await callAndAccept(dana, erin);
    const seen = await waitForRemoteVideoPlaying(dana);
    expect(seen.width).toBeGreaterThan(0);
    // Erin is told why there is no picture of Dana.
    await erin.page.getByTestId('remote-camera-off').waitFor({ state: 'visible' });
    await erin.page.getByTestId('remote-muted').waitFor({ state: 'visible' });
  });
});
