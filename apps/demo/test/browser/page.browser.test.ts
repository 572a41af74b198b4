import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { describeInChromium, launchChromium } from '../helpers/chromium.js';
import { startDemoServer } from '../helpers/demo-server.js';
import type { DemoServer } from '../helpers/demo-server.js';
import { waitForTestIdText } from '../helpers/person.js';

// The page around the call: joining from the form, the invite link, and the address options
// that change how it connects.

describeInChromium('demo page: joining and address options', () => {
  let browser: Browser;
  let server: DemoServer;

  beforeAll(async () => {
    [browser, server] = await Promise.all([launchChromium(), startDemoServer()]);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('asks for room and name when the address has none, refuses a bad name, then puts both in the address', async () => {
    const context = await browser.newContext();
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: `http://localhost:${server.port}` });
    const page = await context.newPage();
    await page.goto(`http://localhost:${server.port}/?ice=loopback`);
    await page.getByTestId('join-form').waitFor();
    expect(await page.getByTestId('join-room').inputValue()).toMatch(/^[a-z]+-\d{4}$/);

    await page.getByTestId('join-room').fill('team-standup');
    await page.getByTestId('join-name').fill('not allowed!');
    await page.getByTestId('join').click();
    await page.getByTestId('join-error').waitFor({ state: 'visible' });
    expect(await page.getByTestId('join-error').textContent()).toContain('not allowed');

    await page.getByTestId('join-name').fill('carol');
    await page.getByTestId('join').click();
    await waitForTestIdText(page, 'signaling-status', 'joined');
    const address = new URL(page.url());
    expect(Object.fromEntries(address.searchParams)).toEqual({ ice: 'loopback', room: 'team-standup', name: 'carol' });

    await page.getByTestId('copy-invite').click();
    await page.locator('[data-testid="notice"][data-key="invite"]').waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    expect(copied).toBe(`http://localhost:${server.port}/?room=team-standup&ice=loopback`);
    await context.close();
  });

  it('says that ice=relay cannot connect when the server offers no TURN server', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(server.pageUrl(`relay-${process.pid}`, 'frank', { ice: 'relay' }));
    await waitForTestIdText(page, 'ice-mode', 'relay');
    await page.locator('[data-testid="notice"][data-key="relay"][data-tone="error"]', { hasText: 'no TURN server' }).waitFor();
    await context.close();
  });

  it('says that the inspector needs internet when inspect=1, and still joins', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(server.pageUrl(`inspect-${process.pid}`, 'gina', { inspect: '1' }));
    await waitForTestIdText(page, 'signaling-status', 'joined');
    expect(await page.getByTestId('inspector-note').textContent()).toContain('needs an internet connection');
    expect(errors).toEqual([]);
    await context.close();
  });
});
