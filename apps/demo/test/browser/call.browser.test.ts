import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, expect, it } from 'vitest';
import { describeInChromium } from '../helpers/chromium.js';
import { callAndAccept, remoteVideoProgress, waitForCallState, waitForRemoteVideoPlaying, waitForTestIdText } from '../helpers/person.js';
import { useRoomFixture } from '../helpers/room-fixture.js';

// Two people in one room, each in their own browser context: a call with video both ways,
// chat, a file, mute and camera off, and hang-up, all through the page's test hooks.

export const ARTIFACTS = resolve(dirname(fileURLToPath(import.meta.url)), '../../test-results');

describeInChromium('demo page: a call between two browser contexts', () => {
  const { join, nextRoom } = useRoomFixture('call');
  beforeAll(() => {
    mkdirSync(ARTIFACTS, { recursive: true });
  });

  it('connects with video decoded on both sides, and both can chat', async () => {
    const roomName = nextRoom();
    const alice = await join(roomName, 'alice');
    const bob = await join(roomName, 'bob');
    await callAndAccept(alice, bob);

    const [aliceSees, bobSees] = await Promise.all([waitForRemoteVideoPlaying(alice), waitForRemoteVideoPlaying(bob)]);
    expect(aliceSees.width).toBeGreaterThan(0);
    expect(bobSees.width).toBeGreaterThan(0);

    await alice.page.getByTestId('chat-input').fill('hello from alice');
    await alice.page.getByTestId('chat-send').click();
    await bob.page.locator('[data-testid="chat-log"] [data-from="them"]', { hasText: 'hello from alice' }).waitFor();
    await bob.page.getByTestId('chat-input').fill('hi alice, bob here');
    await bob.page.getByTestId('chat-input').press('Enter');
    await alice.page.locator('[data-testid="chat-log"] [data-from="them"]', { hasText: 'hi alice, bob here' }).waitFor();

    // Artifacts: each side of a live call, once the chart has a few samples.
    await alice.page.waitForTimeout(2500);
    await Promise.all([
      alice.page.screenshot({ path: resolve(ARTIFACTS, 'call-alice.png') }),
      bob.page.screenshot({ path: resolve(ARTIFACTS, 'call-bob.png') }),
    ]);
  });

  it('carries a 3 MiB file intact, with progress on both sides and a download link', async () => {
    const roomName = nextRoom();
    const alice = await join(roomName, 'alice');
    const bob = await join(roomName, 'bob');
    await callAndAccept(alice, bob);

    const content = randomBytes(3 * 1024 * 1024 + 123);
    const sha256 = createHash('sha256').update(content).digest('hex');
    await alice.page.getByTestId('file-input').setInputFiles({ name: 'holiday.bin', mimeType: 'application/octet-stream', buffer: content });
    const link = bob.page.getByTestId('file-download');
    await link.waitFor({ timeout: 30_000 });
    expect(await link.getAttribute('download')).toBe('holiday.bin');

    const received = await bob.page.evaluate(async () => {
      const anchor = document.querySelector<HTMLAnchorElement>('[data-testid="file-download"]');
      if (!anchor) throw new Error('no download link');
      const bytes = await (await fetch(anchor.href)).arrayBuffer();
      const digest = await crypto.subtle.digest('SHA-256', bytes);
      return { size: bytes.byteLength, sha256: [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, '0')).join('') };
    });
    expect(received).toEqual({ size: content.length, sha256 });
    for (const person of [alice, bob]) {
      const progress = person.page.getByTestId('file-progress').first();
      expect(Number(await progress.getAttribute('value'))).toBe(content.length);
      expect(Number(await progress.getAttribute('max'))).toBe(content.length);
    }
  });

  it('shows the other side when one mutes the microphone and turns the camera off, and back', async () => {
    const roomName = nextRoom();
    const alice = await join(roomName, 'alice');
    const bob = await join(roomName, 'bob');
    await callAndAccept(alice, bob);
    await waitForRemoteVideoPlaying(bob);

    await alice.page.getByTestId('mute').click();
    await bob.page.getByTestId('remote-muted').waitFor({ state: 'visible' });
    await alice.page.getByTestId('camera').click();
    await bob.page.getByTestId('remote-camera-off').waitFor({ state: 'visible' });
    // No frames arrive any more: the sender sends nothing (replaceTrack(null)).
    await bob.page.waitForTimeout(500);
    const frozen = await remoteVideoProgress(bob);
    await bob.page.waitForTimeout(1000);
    expect((await remoteVideoProgress(bob)).framesDecoded).toBeLessThanOrEqual(frozen.framesDecoded + 1);

    await alice.page.getByTestId('camera').click();
    await alice.page.getByTestId('mute').click();
    await bob.page.getByTestId('remote-camera-off').waitFor({ state: 'hidden' });
    await bob.page.getByTestId('remote-muted').waitFor({ state: 'hidden' });
    await waitForRemoteVideoPlaying(bob);
  });

  for (const side of ['caller', 'callee'] as const) {
    it(`ends for both when the ${side} hangs up`, async () => {
      const roomName = nextRoom();
      const alice = await join(roomName, 'alice');
      const bob = await join(roomName, 'bob');
      await callAndAccept(alice, bob);
      const [hangingUp, other] = side === 'caller' ? [alice, bob] : [bob, alice];
      await hangingUp.page.getByTestId('hangup').click();
      await Promise.all([waitForCallState(hangingUp, 'ended'), waitForCallState(other, 'ended')]);
      await waitForTestIdText(hangingUp.page, 'connection-state', 'closed');
      await other.page.locator('[data-testid="notice"][data-key="call"]', { hasText: `${hangingUp.name} ended the call` }).waitFor();
    });
  }
});
