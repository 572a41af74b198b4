import { expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { describeInChromium } from '../helpers/chromium.js';
import { callAndAccept, waitForRemoteVideoPlaying } from '../helpers/person.js';
import type { Person } from '../helpers/person.js';
import { useRoomFixture } from '../helpers/room-fixture.js';

// Screen sharing in a call: the screen replaces the camera on the sender (replaceTrack, no
// renegotiation) and the other side decodes it, then the camera comes back, on a second press
// or when the browser ends the capture. The fake camera is a 320x240 clip (4:3) and Chromium's
// fake screen is 1280x720 (16:9): the receiver tells them apart by the decoded video's shape,
// which the encoder keeps when it scales down under load.

const CAMERA = { width: 320, height: 240 };

type Shape = 'camera' | 'screen';

/** Waits until `person`'s remote video decodes frames of `shape` (4:3 camera or 16:9 screen). */
async function waitForRemoteShape(person: Person, shape: Shape): Promise<{ width: number; height: number }> {
  await person.page.waitForFunction(
    (wanted) => {
      const video = document.querySelector<HTMLVideoElement>('[data-testid="remote-video"]');
      if (!video || video.videoHeight === 0) return false;
      const ratio = video.videoWidth / video.videoHeight;
      return wanted === 'screen' ? Math.abs(ratio - 16 / 9) < 0.05 : Math.abs(ratio - 4 / 3) < 0.05;
    },
    shape,
    // The first frames of the new source come after a key frame: seconds on a loaded machine.
    { timeout: 20_000, polling: 100 },
  );
  // And it plays on (not one frame of it).
  return waitForRemoteVideoPlaying(person);
}

/**
 * Waits until `page`'s Share screen button says it shares (pressed, *Stop sharing*) or not. The
 * page renders it once every sender has the new track, after getDisplayMedia: not at the click.
 */
async function waitForShareButton(page: Page, sharing: boolean): Promise<void> {
  await page
    .locator(`[data-testid="screen-share"][aria-pressed="${String(sharing)}"]`, { hasText: sharing ? 'Stop sharing' : 'Share screen' })
    .waitFor({ timeout: 20_000 });
}

describeInChromium('demo page: screen sharing', () => {
  const { join, nextRoom } = useRoomFixture('screen', { chromium: { fakeCamera: CAMERA } });

  it('sends the screen instead of the camera, and the camera again on a second press or when the browser ends the capture', async () => {
    const roomName = nextRoom();
    const alice = await join(roomName, 'alice');
    const bob = await join(roomName, 'bob');
    await callAndAccept(alice, bob);
    const camera = await waitForRemoteShape(bob, 'camera');
    expect(camera).toMatchObject({ width: CAMERA.width, height: CAMERA.height });

    await alice.page.getByTestId('screen-share').click();
    const screen = await waitForRemoteShape(bob, 'screen');
    expect(screen.width).toBeGreaterThan(CAMERA.width);
    await bob.page.getByTestId('remote-screen').waitFor({ state: 'visible' });
    await waitForShareButton(alice.page, true);
    // Still the one call on the one connection: replaceTrack needed no new offer.
    expect(await alice.page.getByTestId('call-state').textContent()).toBe('active');

    await alice.page.getByTestId('screen-share').click();
    await waitForRemoteShape(bob, 'camera');
    await bob.page.getByTestId('remote-screen').waitFor({ state: 'hidden' });
    await waitForShareButton(alice.page, false);

    // The browser ends the capture (its "Stop sharing" bar, which headless Chromium has not):
    // the screen track fires `ended` (Media Capture §4.3.1), as it would then.
    await alice.page.getByTestId('screen-share').click();
    await waitForRemoteShape(bob, 'screen');
    await alice.page.evaluate(() => {
      const preview = document.querySelector<HTMLVideoElement>('[data-testid="local-video"]')?.srcObject;
      const track = preview instanceof MediaStream ? preview.getVideoTracks()[0] : undefined;
      if (track?.label.startsWith('screen') !== true) throw new Error(`the preview shows no screen track (${track?.label})`);
      track.dispatchEvent(new Event('ended'));
    });
    await waitForRemoteShape(bob, 'camera');
    await bob.page.getByTestId('remote-screen').waitFor({ state: 'hidden' });
    await waitForShareButton(alice.page, false);
  });

  it('sends the screen from the start to a call made while it is shared', async () => {
    const roomName = nextRoom();
    const alice = await join(roomName, 'alice');
    const bob = await join(roomName, 'bob');
    await alice.page.getByTestId('screen-share').click();
    await waitForShareButton(alice.page, true);
    await callAndAccept(alice, bob);
    await waitForRemoteShape(bob, 'screen');
    // And alice sees bob's camera as before.
    await waitForRemoteShape(alice, 'camera');
  });
});
