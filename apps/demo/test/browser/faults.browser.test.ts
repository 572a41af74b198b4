import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { describeInChromium, launchChromium } from '../helpers/chromium.js';
import { startDemoServer } from '../helpers/demo-server.js';
import type { DemoServer } from '../helpers/demo-server.js';
import { callAndAccept, joinRoom, leave, remoteVideoProgress, waitForRemoteVideoPlaying, waitForTestIdText } from '../helpers/person.js';
import type { Person } from '../helpers/person.js';

// What goes wrong around a call: the signaling server goes away mid-call, and a person refuses
// the camera.

describeInChromium('demo page: faults', () => {
  let browser: Browser;
  let deniedBrowser: Browser;
  let server: DemoServer;
  const people: Person[] = [];
  let room = 0;
  const nextRoom = (): string => `faults-${process.pid}-${(room += 1)}`;
  const track = (person: Person): Person => {
    people.push(person);
    return person;
  };

  beforeAll(async () => {
    [browser, deniedBrowser, server] = await Promise.all([launchChromium(), launchChromium({ denyMedia: true }), startDemoServer()]);
  });
  afterEach(async () => {
    const errors = people.flatMap((person) => person.pageErrors);
    await Promise.all(people.splice(0).map((person) => leave(person).catch(() => undefined)));
    expect(errors).toEqual([]);
  });
  afterAll(async () => {
    await Promise.all([browser?.close(), deniedBrowser?.close()]);
    await server?.close();
  });

  it('keeps the call going while the signaling server restarts, and chat works after', async () => {
    const roomName = nextRoom();
    const alice = track(await joinRoom(browser, server, roomName, 'alice'));
    const bob = track(await joinRoom(browser, server, roomName, 'bob'));
    await callAndAccept(alice, bob);
    await waitForRemoteVideoPlaying(bob);

    const restarted = server.restart({ downMs: 1500 });
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
    const dana = track(await joinRoom(deniedBrowser, server, roomName, 'dana'));
    const erin = track(await joinRoom(browser, server, roomName, 'erin'));
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
