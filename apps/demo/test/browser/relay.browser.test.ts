import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
// The real-stack suite's coturn harness (one TURN server process on 127.0.0.1, REST credentials).
import { describeWithTurnServer, startTurnServer } from '../../../../packages/browser/test/helpers/coturn.js';
import type { TurnServer } from '../../../../packages/browser/test/helpers/coturn.js';
import { describeInChromium, launchChromium } from '../helpers/chromium.js';
import { startDemoServer } from '../helpers/demo-server.js';
import type { DemoServer } from '../helpers/demo-server.js';
import { callAndAccept, joinRoom, leave, waitForRemoteVideoPlaying } from '../helpers/person.js';
import type { Person } from '../helpers/person.js';

// ?ice=relay: the pages gather only relay candidates (iceTransportPolicy 'relay') from the TURN
// server the signaling server hands out, so the call's media goes through coturn.

describeInChromium('demo page: ice=relay', () => {
  describeWithTurnServer('through coturn', () => {
    let browser: Browser;
    let turn: TurnServer;
    let server: DemoServer;
    const people: Person[] = [];

    beforeAll(async () => {
      [browser, turn] = await Promise.all([launchChromium(), startTurnServer()]);
      server = await startDemoServer({ turn: { urls: [turn.url], secret: turn.secret } });
    });
    afterEach(async () => {
      await Promise.all(people.splice(0).map((person) => leave(person)));
    });
    afterAll(async () => {
      await browser?.close();
      await server?.close();
      await turn?.dispose();
    });

    it('connects both pages through the relay, with video', async () => {
      const room = `relay-${process.pid}`;
      const alice = await joinRoom(browser, server, room, 'alice', { ice: 'relay' });
      const bob = await joinRoom(browser, server, room, 'bob', { ice: 'relay' });
      people.push(alice, bob);
      await callAndAccept(alice, bob);
      await Promise.all([waitForRemoteVideoPlaying(alice), waitForRemoteVideoPlaying(bob)]);
      for (const person of [alice, bob]) {
        await person.page.waitForFunction(() => document.querySelector('[data-testid="candidate-pair"]')?.textContent?.startsWith('relay'), undefined, {
          timeout: 10_000,
        });
        expect(await person.page.locator('[data-testid="notice"][data-key="relay"]').count()).toBe(0);
      }
    });
  });
});
