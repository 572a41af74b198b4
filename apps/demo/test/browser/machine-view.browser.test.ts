import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { describeInChromium } from '../helpers/chromium.js';
import { clickCall, waitForCallState, waitForConnected } from '../helpers/person.js';
import { useRoomFixture } from '../helpers/room-fixture.js';

// The live machine view (`?inspect=local`): two pages in one room make a call, and each page's
// view lights the states its machines go through and lists the events they received, from
// xstate's inspection events alone (no network beyond the page's own server).

const TIMEOUT = 15_000;
const ARTIFACTS = resolve(dirname(fileURLToPath(import.meta.url)), '../../test-results');

/** The cards of the actor system named `root` (`call with bob`): its root and every machine under it. */
function cardsOf(root: string): string {
  return `[data-testid="machine-card"][data-path^="${root}"]`;
}

/** Waits until a machine of `root`'s system (its root only, when `rootOnly`) has a lit state with key `key`. */
async function waitForLit(page: Page, root: string, key: string, rootOnly = true): Promise<void> {
  const cards = rootOnly ? `[data-testid="machine-card"][data-path="${root}"]` : cardsOf(root);
  const selector = `${cards} [data-testid="machine-state"][data-state-key="${key}"][data-lit]`;
  try {
    await page.locator(selector).first().waitFor({ state: 'attached', timeout: TIMEOUT });
  } catch (error) {
    const shown = await page
      .locator(cardsOf(root))
      .evaluateAll((cards) => cards.map((card) => `${card.getAttribute('data-path')}: ${card.querySelector('[data-testid="machine-states"]')?.textContent}`));
    throw new Error(`no lit state "${key}" in ${root}; the view shows:\n  ${shown.join('\n  ')}`, { cause: error });
  }
}

/**
 * Waits until the card of `path` lists `type` among the events that changed its states (a list
 * that events moving nothing cannot push out).
 */
async function waitForChange(page: Page, path: string, type: string): Promise<void> {
  const card = `[data-testid="machine-card"][data-path="${path}"]`;
  try {
    await page.locator(`${card} [data-testid="machine-changes"] [data-event-type="${type}"]`).waitFor({ state: 'attached', timeout: TIMEOUT });
  } catch (error) {
    const listed = await page.locator(`${card} [data-testid="machine-changes"]`).textContent().catch(() => '(no card)');
    throw new Error(`${path} lists no change by ${type}: ${listed}`, { cause: error });
  }
}

describeInChromium('demo page: the live machine view', () => {
  const { join, nextRoom } = useRoomFixture('machines');
  beforeAll(() => {
    mkdirSync(ARTIFACTS, { recursive: true });
  });

  it('with ?inspect=local, lights the states a call goes through and lists the call events', async () => {
    const room = nextRoom();
    const alice = await join(room, 'alice', { extra: { inspect: 'local' } });
    const bob = await join(room, 'bob', { extra: { inspect: 'local' } });
    for (const person of [alice, bob]) await person.page.getByTestId('machine-view').waitFor({ state: 'visible' });
    await waitForLit(alice.page, 'signaling client', 'joined', false);

    await clickCall(alice, bob);
    await waitForLit(alice.page, 'call with bob', 'outgoing');
    await waitForCallState(bob, 'incoming');
    await waitForLit(bob.page, 'call with alice', 'incoming');
    await bob.page.getByTestId('accept').click();
    await waitForConnected(alice, TIMEOUT, [bob]);
    await waitForConnected(bob, TIMEOUT, [alice]);

    await waitForLit(alice.page, 'call with bob', 'active');
    await waitForLit(bob.page, 'call with alice', 'active');
    // The peer's connection, in whichever machine under the call holds it.
    await waitForLit(alice.page, 'call with bob', 'connected', false);
    await waitForLit(bob.page, 'call with alice', 'connected', false);
    const aliceCall = alice.page.locator('[data-testid="machine-card"][data-path="call with bob"]');
    expect(await aliceCall.locator('[data-state-key="outgoing"][data-lit]').count()).toBe(0);
    expect(await aliceCall.getAttribute('data-status')).toBe('active');

    // The call's own events, in the call's card and in the stream of all machines.
    for (const type of ['CALL', 'REMOTE.ACCEPT']) await waitForChange(alice.page, 'call with bob', type);
    for (const type of ['REMOTE.INVITE', 'ACCEPT']) await waitForChange(bob.page, 'call with alice', type);
    const stream = await alice.page
      .locator('[data-testid="machine-view-events"] [data-testid="machine-event"]')
      .evaluateAll((items) => items.map((item) => `${item.getAttribute('data-actor')}: ${item.getAttribute('data-event-type')}`));
    expect(stream.length).toBeGreaterThan(0);
    expect(stream.some((line) => line.startsWith('peer: ') || line.startsWith('negotiation: ') || line.startsWith('call with bob: '))).toBe(true);

    // Artifacts: the page with the view open, and the view alone scrolled to the call.
    await alice.page.screenshot({ path: resolve(ARTIFACTS, 'machine-view-alice.png') });
    await alice.page.locator('[data-testid="machine-card"][data-path="call with bob"]').evaluate((card) => card.scrollIntoView());
    await alice.page.getByTestId('machine-view').screenshot({ path: resolve(ARTIFACTS, 'machine-view-alice-call.png') });

    // Hang up: the call leaves `active`, the peer's machines are drawn as stopped.
    await alice.page.getByTestId('hangup').click();
    await waitForCallState(alice, 'ended');
    await waitForLit(alice.page, 'call with bob', 'ended');
    await waitForChange(alice.page, 'call with bob', 'HANGUP');
  });

  it('opens and closes from the state panel, drawing what already ran', async () => {
    const alice = await join(nextRoom(), 'alice');
    const view = alice.page.getByTestId('machine-view');
    expect(await view.isVisible()).toBe(false);
    await alice.page.getByTestId('open-machine-view').click();
    await view.waitFor({ state: 'visible' });
    await waitForLit(alice.page, 'signaling client', 'joined', false);
    await alice.page.getByTestId('machine-view-close').click();
    await view.waitFor({ state: 'hidden' });
  });
});
