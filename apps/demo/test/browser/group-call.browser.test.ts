import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { describeInChromium } from '../helpers/chromium.js';
import { describePerson, waitForTestIdText } from '../helpers/person.js';
import type { Person } from '../helpers/person.js';
import { useRoomFixture } from '../helpers/room-fixture.js';

// Three people in one room's group call, each in their own context of one Chromium: everyone
// decodes video from the other two, one leaves (their tile goes on the other two pages) and
// rejoins, a chat line reaches both others, and one's shared screen reaches both others. Three pages make three connections with two
// video streams each on one machine: the fake camera is a 160x120 clip to keep encoding cheap,
// and every wait is on a state the pages show (no sleeps).

/**
 * One wait for a state of the mesh: each page sets up two connections, each encodes and
 * decodes video, on 2 loaded cores (one pair takes about 3 s here when idle; see call.browser).
 */
const MESH_TIMEOUT = 45_000;

/** Where the screenshot of a page in the call goes (as call.browser's do). */
const ARTIFACTS = resolve(dirname(fileURLToPath(import.meta.url)), '../../test-results');

/** Each page's room list shows the others: their group call can meet them. */
async function waitForPresence(person: Person, others: readonly Person[]): Promise<void> {
  for (const other of others) await person.page.locator(`[data-testid="peer"][data-name="${other.name}"]`).waitFor({ timeout: MESH_TIMEOUT });
}

async function joinGroup(person: Person): Promise<void> {
  await person.page.getByTestId('group-join').click();
  await waitForTestIdText(person.page, 'group-state', 'joined', MESH_TIMEOUT);
}

/** Frames decoded so far in `person`'s tile of each of `names` (0 for a tile with no video yet). */
function tileFrames(person: Person, names: readonly string[]): Promise<Record<string, number>> {
  return person.page.evaluate(
    (wanted) =>
      Object.fromEntries(
        wanted.map((name) => {
          const video = document.querySelector<HTMLVideoElement>(`[data-testid="group-tile"][data-name="${name}"] video`);
          return [name, video ? video.getVideoPlaybackQuality().totalVideoFrames : 0];
        }),
      ),
    names,
  );
}

/**
 * Waits until `person`'s page has a tile for each of `others`, connected, whose video has a size
 * and has decoded more than a few frames since now: video from each of them arrives and plays.
 */
async function waitForTilesPlaying(person: Person, others: readonly Person[], everyone: readonly Person[]): Promise<void> {
  const names = others.map((other) => other.name);
  const before = await tileFrames(person, names);
  try {
    await person.page.waitForFunction(
      ({ wanted, since }) =>
        wanted.every((name) => {
          const tile = document.querySelector<HTMLElement>(`[data-testid="group-tile"][data-name="${name}"]`);
          const video = tile?.querySelector('video');
          return (
            tile?.dataset['connection'] === 'connected' &&
            video !== null &&
            video !== undefined &&
            video.videoWidth > 0 &&
            video.getVideoPlaybackQuality().totalVideoFrames > (since[name] ?? 0) + 5
          );
        }),
      { wanted: names, since: before },
      { timeout: MESH_TIMEOUT, polling: 200 },
    );
  } catch (error) {
    const reports = await Promise.all(everyone.map(describePerson));
    throw new Error(`${person.name} does not play video from ${names.join(' and ')}:\n${reports.join('\n')}`, { cause: error });
  }
}

/** Waits until `person`'s tile of `name` decodes 16:9 video (Chromium's fake 1280x720 screen; the camera clip is 4:3). */
async function waitForScreenTile(person: Person, name: string): Promise<void> {
  await person.page.waitForFunction(
    (who) => {
      const video = document.querySelector<HTMLVideoElement>(`[data-testid="group-tile"][data-name="${who}"] video`);
      return video !== null && video.videoHeight > 0 && Math.abs(video.videoWidth / video.videoHeight - 16 / 9) < 0.05;
    },
    name,
    { timeout: MESH_TIMEOUT, polling: 200 },
  );
}

async function tileNames(person: Person): Promise<string[]> {
  const names = await person.page.locator('[data-testid="group-tile"]').evaluateAll((tiles) => tiles.map((tile) => tile.getAttribute('data-name') ?? ''));
  return names.sort();
}

describeInChromium('demo page: a group call of three', () => {
  const { join, nextRoom } = useRoomFixture('group', { chromium: { fakeCamera: { width: 160, height: 120 } } });

  it(
    'plays everyone’s video on every page, loses and regains the tile of one who leaves and rejoins, carries chat and a shared screen to both others',
    async () => {
      const roomName = nextRoom();
      const alice = await join(roomName, 'alice');
      const bob = await join(roomName, 'bob');
      const carol = await join(roomName, 'carol');
      const everyone = [alice, bob, carol];
      const othersOf = (person: Person): Person[] => everyone.filter((other) => other !== person);
      await Promise.all(everyone.map((person) => waitForPresence(person, othersOf(person))));

      // One after the other, as people do: each later one is a late joiner for the earlier ones.
      for (const person of everyone) await joinGroup(person);
      await Promise.all(everyone.map((person) => waitForTilesPlaying(person, othersOf(person), everyone)));
      for (const person of everyone) expect(await tileNames(person)).toEqual(othersOf(person).map((other) => other.name));
      // Our own preview is in the grid too: three tiles in two columns.
      expect(await alice.page.getByTestId('group-grid').getAttribute('data-tiles')).toBe('3');
      // The state panel lists each member's connection.
      await alice.page.locator('[data-testid="group-member"][data-name="carol"][data-connection="connected"]').waitFor();
      // And what we send to them all (stats$ gives a rate from its second sample, a second later).
      const upload = alice.page.locator('[data-testid="group-upload"][data-bps]');
      await upload.waitFor({ timeout: MESH_TIMEOUT });
      expect(Number(await upload.getAttribute('data-bps'))).toBeGreaterThan(0);
      await alice.page.locator('[data-testid="peer"][data-name="bob"]', { hasText: 'in the group call' }).waitFor();
      // The 1:1 stage is out of the way, and nobody can ring anyone meanwhile.
      expect(await alice.page.getByTestId('remote-video').isVisible()).toBe(false);

      await carol.page.getByTestId('group-leave').click();
      await waitForTestIdText(carol.page, 'group-state', 'left', MESH_TIMEOUT);
      for (const person of [alice, bob]) {
        await person.page.locator('[data-testid="group-tile"][data-name="carol"]').waitFor({ state: 'detached', timeout: MESH_TIMEOUT });
        await person.page.locator('[data-testid="group-member"][data-name="carol"]').waitFor({ state: 'detached' });
      }
      expect(await carol.page.locator('[data-testid="group-tile"]').count()).toBe(0);
      // The pair that stayed is untouched.
      await Promise.all([waitForTilesPlaying(alice, [bob], everyone), waitForTilesPlaying(bob, [alice], everyone)]);

      await joinGroup(carol);
      await Promise.all(everyone.map((person) => waitForTilesPlaying(person, othersOf(person), everyone)));

      // Chat goes on each member's `chat` channel: wait until both of alice's are open (the
      // channel of a pair comes a little after its first video frames, and a rejoin makes a new one).
      for (const other of [bob, carol]) {
        await alice.page.locator(`[data-testid="group-tile"][data-name="${other.name}"][data-chat="open"]`).waitFor({ timeout: MESH_TIMEOUT });
      }
      await alice.page.getByTestId('chat-input').fill('hello, both of you');
      await alice.page.getByTestId('chat-send').click();
      for (const person of [bob, carol]) {
        await person.page.locator('[data-testid="chat-log"] [data-from="them"]', { hasText: 'hello, both of you' }).waitFor({ timeout: MESH_TIMEOUT });
      }
      expect(await alice.page.locator('[data-testid="chat-log"] [data-from="me"]', { hasText: 'hello, both of you' }).count()).toBe(1);
      // Both channels were open: no "not delivered" warning.
      expect(await alice.page.locator('[data-testid="notice"][data-key="chat"]').count()).toBe(0);

      mkdirSync(ARTIFACTS, { recursive: true });
      await alice.page.screenshot({ path: resolve(ARTIFACTS, 'group-alice.png') });

      // Screen sharing reaches every member: one press, replaceTrack on both of bob's connections.
      await bob.page.getByTestId('screen-share').click();
      await Promise.all([waitForScreenTile(alice, 'bob'), waitForScreenTile(carol, 'bob')]);
      await alice.page.locator('[data-testid="group-tile"][data-name="bob"][data-screen="true"]').waitFor({ timeout: MESH_TIMEOUT });
      await Promise.all([waitForTilesPlaying(alice, [bob], everyone), waitForTilesPlaying(carol, [bob], everyone)]);
    },
    // Joining three, leaving, rejoining, sharing: seven mesh waits of MESH_TIMEOUT at most, in the worst case.
    7 * MESH_TIMEOUT,
  );
});
