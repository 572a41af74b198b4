import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import type { Browser } from 'playwright-core';
import { launchChromium } from './chromium.js';
import type { LaunchOptions } from './chromium.js';
import { startDemoServer } from './demo-server.js';
import type { DemoServer, DemoServerOptions } from './demo-server.js';
import { joinRoom, leave } from './person.js';
import type { Person } from './person.js';

// What every browser suite sets up: Chromium (and, when asked, a second one that refuses the
// camera), the demo server, a fresh room per test, and after each test every page closed with
// no uncaught error left behind.

export interface RoomFixture {
  readonly browser: Browser;
  /** A Chromium whose camera and microphone requests are refused (`refusingBrowser: true`). */
  readonly refusingBrowser: Browser;
  readonly server: DemoServer;
  /** A room name no other test uses. */
  nextRoom(): string;
  /** Joins `room` as `name` (with `ice=loopback` and `extra` in the address); closed after the test. */
  join(room: string, name: string, options?: { readonly browser?: Browser; readonly extra?: Record<string, string> }): Promise<Person>;
  /** Closes `person` with the others after the test (for pages opened by hand). */
  track(person: Person): Person;
}

export function useRoomFixture(
  prefix: string,
  options: { readonly refusingBrowser?: boolean; readonly server?: DemoServerOptions; readonly chromium?: LaunchOptions } = {},
): RoomFixture {
  let browser: Browser | undefined;
  let refusingBrowser: Browser | undefined;
  let server: DemoServer | undefined;
  const people: Person[] = [];
  let rooms = 0;
  const ready = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is not started (beforeAll failed?)`);
    return value;
  };

  beforeAll(async () => {
    [browser, refusingBrowser, server] = await Promise.all([
      launchChromium(options.chromium),
      options.refusingBrowser ? launchChromium({ denyMedia: true }) : Promise.resolve(undefined),
      startDemoServer(options.server),
    ]);
  });
  afterEach(async () => {
    const errors = people.flatMap((person) => person.pageErrors);
    await Promise.all(people.splice(0).map((person) => leave(person).catch(() => undefined)));
    expect(errors).toEqual([]);
  });
  afterAll(async () => {
    await Promise.all([browser?.close(), refusingBrowser?.close()]);
    await server?.close();
  });

  const fixture: RoomFixture = {
    get browser() {
      return ready(browser, 'Chromium');
    },
    get refusingBrowser() {
      return ready(refusingBrowser, 'the refusing Chromium');
    },
    get server() {
      return ready(server, 'the demo server');
    },
    nextRoom: () => `${prefix}-${process.pid}-${(rooms += 1)}`,
    async join(room, name, joinOptions = {}) {
      return fixture.track(await joinRoom(joinOptions.browser ?? fixture.browser, fixture.server, room, name, joinOptions.extra));
    },
    track(person) {
      people.push(person);
      return person;
    },
  };
  return fixture;
}
