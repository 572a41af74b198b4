import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createCall } from '@parley/core';
import type { Call, CallAppEvent, DataChannel, IceServer } from '@parley/core';
import { createSignalingClient } from '@parley/signaling-ws/client';
import type { SignalingClient } from '@parley/signaling-ws/client';
import { createSignalingServer } from '@parley/signaling-ws/server';
import type { SignalingServer } from '@parley/signaling-ws/server';
import { keepLoopbackCandidates } from '../src/index.js';
import type { BrowserRtcPort } from '../src/index.js';
import { describeWithTurnServer, selectedCandidatePair, startTurnServer, toRtcIceServers, turnRestCredential } from './helpers/coturn.js';
import type { TurnServer } from './helpers/coturn.js';
import { TurnAllocationClient } from './helpers/turn-allocation.js';
import { waitFor } from './helpers/wait.js';
import { collectUnhandledRejections } from '../../core/test/helpers/unhandled-rejections.js';
import { createRealPort } from './helpers/wrtc.js';

// TURN credential refresh, end to end: parley-signaling hands out TURN REST credentials that
// live 5 s (`turn.ttlSeconds: 5`); two libwebrtc peers (createCall, relay candidates only) get
// them through the signaling client, which asks for fresh ones before they expire
// (`refresh-ice-servers`), and each call applies every fresh list to its connection
// (`iceServers$` -> RtcPort.setConfiguration -> pc.setConfiguration). The call carries data both
// ways for 30 s, far past the first credentials' expiry, through a real coturn on 127.0.0.1.
//
// What coturn (4.6.1, `use-auth-secret`) does with expired TURN REST credentials, as the first
// test asks it directly: it checks the username's timestamp when a new allocation authenticates
// (ALLOCATE with a username expired a minute ago: 401), not on a live allocation (REFRESH with the same,
// now expired, username: success), and it binds an allocation to its username (REFRESH with a
// fresh username: 441 Wrong Credentials). So a running allocation neither needs nor can take
// fresh credentials; they matter for every new allocation: a new call, and the ICE restart
// that recovers a failed connection, which gathers with what setConfiguration last set.
//
// libwebrtc refreshes an allocation a minute before its lifetime (coturn's default: 600 s)
// ends. The call test runs coturn with `--max-allocate-lifetime=12`: the first allocations get
// 12 s and libwebrtc refreshes them after 6 s (half the lifetime under 2 min), after their 5 s
// credentials expired; the test watches coturn's log for those refreshes and their answer.

const unhandledRejections = collectUnhandledRejections();

const ROOM = 'turn-refresh';
const TTL_SECONDS = 5;
const ALLOCATION_LIFETIME_SECONDS = 12;
const CALL_MS = 30_000;
const SEND_EVERY_MS = 100;

let turn: TurnServer | null = null;
let signaling: SignalingServer | null = null;
const clients: SignalingClient[] = [];
const calls: Call[] = [];
const ports: BrowserRtcPort[] = [];

afterEach(async () => {
  for (const call of calls.splice(0)) call.stop();
  for (const port of ports.splice(0)) port.pc.close();
  for (const client of clients.splice(0)) client.close();
  await signaling?.close();
  signaling = null;
  expect(unhandledRejections.splice(0)).toEqual([]);
});

/** One side: its signaling client, call line, every ICE server list it got, and what its data channel carried. */
interface Side {
  readonly name: string;
  readonly client: SignalingClient;
  readonly id: string;
  /** Every non-empty list of the client's iceServers$: welcome's, then each refresh. */
  readonly lists: (readonly IceServer[])[];
  call: Call | null;
  readonly events: CallAppEvent[];
  port: BrowserRtcPort | null;
  /** How many lists had come when the connection was created (it was created with the last of them). */
  listsAtCreation: number;
  /** Calls of pc.setConfiguration (counted on their way to the real one). */
  setConfigurationCalls: number;
  channel: DataChannel | null;
  readonly received: string[];
}

const turnUsername = (list: readonly IceServer[]): string | undefined => list.find((server) => server.username !== undefined)?.username;

/** Joins the room through the signaling client and waits for the welcome. */
async function join(name: string): Promise<Side> {
  const client = createSignalingClient({ url: signaling!.url, room: ROOM, name, webSocket: WebSocket });
  clients.push(client);
  const lists: (readonly IceServer[])[] = [];
  client.iceServers$.subscribe((list) => {
    if (list.length > 0) lists.push(list);
  });
  let id: string | undefined;
  client.self$.subscribe((self) => (id = self?.id ?? id));
  await waitFor(() => id !== undefined && lists.length > 0, `${name}'s welcome`);
  return { name, client, id: id!, lists, call: null, events: [], port: null, listsAtCreation: 0, setConfigurationCalls: 0, channel: null, received: [] };
}

/** The call line to `remote`, relay only, fed the client's iceServers$; records its events and channel. */
function openLine(side: Side, remote: Side, dataChannels: readonly { label: string }[]): Call {
  const call = createCall({
    signaling: side.client.portFor(remote.id),
    createRtc: () => {
      // The latest credentials now; the fresh ones come through iceServers$.
      const port = createRealPort({ iceServers: toRtcIceServers(side.lists.at(-1)!), iceTransportPolicy: 'relay' });
      side.listsAtCreation = side.lists.length;
      const real = port.pc.setConfiguration.bind(port.pc);
      port.pc.setConfiguration = (configuration?: RTCConfiguration) => {
        side.setConfigurationCalls += 1;
        real(configuration);
      };
      side.port = port;
      ports.push(port);
      return port;
    },
    peer: { candidateFilter: keepLoopbackCandidates, dataChannels, iceServers$: side.client.iceServers$ },
  });
  calls.push(call);
  call.events$.subscribe((event) => {
    side.events.push(event);
    if (event.type === 'datachannel') side.channel = event.channel;
    if (event.type === 'message' && typeof event.data === 'string') side.received.push(event.data);
  });
  side.call = call;
  return call;
}


/** The last lines of coturn's log that name `username`. */
function logLinesAbout(logs: string, username: string): string {
  return logs
    .split('\n')
    .filter((line) => line.includes(username))
    .slice(-20)
    .join('\n');
}

describeWithTurnServer('TURN credential refresh through coturn (real libwebrtc peers)', () => {
  beforeAll(async () => {
    turn = await startTurnServer({ extraArgs: [`--max-allocate-lifetime=${ALLOCATION_LIFETIME_SECONDS}`, '--verbose'] });
  });
  afterAll(async () => {
    await turn?.dispose();
    turn = null;
  });

  it('coturn refreshes a live allocation whose REST username has expired, refuses a new one with it (401) and a username swap (441)', async () => {
    const expiresAt = Math.floor(Date.now() / 1000) + 2;
    const { username, credential } = turnRestCredential(turn!.secret, expiresAt, 'probe');
    const client = await TurnAllocationClient.open(turn!.port);
    const late = await TurnAllocationClient.open(turn!.port);
    try {
      expect(await client.allocate(username, credential)).toEqual({ ok: true, code: null });
      await waitFor(() => Date.now() / 1000 > expiresAt + 1, 'the credential expired', 5000);
      expect(await client.refresh(username, credential)).toEqual({ ok: true, code: null });
      // A new allocation with an expired username is refused. Asked with one that expired a
      // minute ago and never allocated: with the username above, a second after it expired and
      // while its own allocation lived, coturn answered success in 3 of 6 full-suite runs on
      // 2026-12-07 (its log: "ALLOCATE processed, success" for the new session), never alone.
      const stale = turnRestCredential(turn!.secret, Math.floor(Date.now() / 1000) - 60, 'late');
      const lateAnswer = await late.allocate(stale.username, stale.credential);
      expect(lateAnswer, `coturn's log of ${stale.username}:\n${logLinesAbout(turn!.logs, stale.username)}`).toEqual({ ok: false, code: 401 });
      const fresh = turnRestCredential(turn!.secret, Math.floor(Date.now() / 1000) + 60, 'probe');
      expect(await client.refresh(fresh.username, fresh.credential)).toEqual({ ok: false, code: 441 });
    } finally {
      client.close();
      late.close();
    }
  });

  it(
    'a relay-only call outlives its 5 s TURN credentials: refreshed, applied with setConfiguration, 30 s of data both ways with nothing lost',
    async () => {
      signaling = await createSignalingServer({
        host: '127.0.0.1',
        port: 0,
        turn: { urls: [turn!.url], secret: turn!.secret, ttlSeconds: TTL_SECONDS },
        logger: () => undefined,
      });
      const alice = await join('alice');
      const bob = await join('bob');
      const caller = openLine(alice, bob, [{ label: 'chat' }]);
      const callee = openLine(bob, alice, []);

      caller.call({ audio: false, video: false });
      await waitFor(() => callee.status().state === 'incoming', "bob's phone ringing");
      callee.accept();
      await waitFor(
        () => [alice, bob].every((side) => side.call!.status().connection?.connectionState === 'connected'),
        'both connected through the relay',
      );
      await waitFor(() => isOpen(alice.channel) && isOpen(bob.channel), "the 'chat' channel open on both sides");
      const connectedAt = [alice, bob].map((side) => side.events.length);

      // 30 s of data, a numbered message every 100 ms each way; meanwhile coturn's log is read
      // for the allocation refreshes and when they were answered.
      const refreshes: { readonly expiresAt: number; readonly seenAt: number; readonly answer: string }[] = [];
      const logFrom = turn!.logs.length; // this call's part of the log
      let logRead = logFrom;
      const readLog = (): void => {
        const log = turn!.logs;
        const complete = log.lastIndexOf('\n') + 1;
        for (const match of log.slice(logRead, complete).matchAll(/user <(\d+):[^>]*>: incoming packet REFRESH processed, (success|error \d+)/g)) {
          refreshes.push({ expiresAt: Number(match[1]), seenAt: Date.now() / 1000, answer: match[2]! });
        }
        logRead = Math.max(logRead, complete);
      };
      const sent = { alice: 0, bob: 0 };
      const started = Date.now();
      await new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          readLog();
          alice.channel!.send(`a${(sent.alice += 1)}`);
          bob.channel!.send(`b${(sent.bob += 1)}`);
          if (Date.now() - started >= CALL_MS) {
            clearInterval(timer);
            resolve();
          }
        }, SEND_EVERY_MS);
      });
      await waitFor(() => bob.received.length >= sent.alice && alice.received.length >= sent.bob, 'every message delivered');
      expect(bob.received).toEqual(Array.from({ length: sent.alice }, (_, i) => `a${i + 1}`));
      expect(alice.received).toEqual(Array.from({ length: sent.bob }, (_, i) => `b${i + 1}`));
      expect(sent.alice).toBeGreaterThanOrEqual(CALL_MS / SEND_EVERY_MS / 2); // the loop really ran (timers coalesce under load)

      for (const side of [alice, bob]) {
        // The connection never left `connected` while the data flowed.
        const changes = side.events.slice(connectedAt[side === alice ? 0 : 1]).filter((event) => event.type === 'connectionstatechange');
        expect(changes, `${side.name}'s connection state changes`).toEqual([]);
        expect(side.call!.status().connection?.connectionState).toBe('connected');
        // Fresh credentials at least 4 times (welcome's, then one per refresh), each applied on the pc.
        const usernames = [...new Set(side.lists.map(turnUsername))];
        expect(usernames.length, `${side.name}'s credentials`).toBeGreaterThanOrEqual(5);
        expect(side.setConfigurationCalls, `${side.name}'s setConfiguration calls`).toBeGreaterThanOrEqual(4);
        expect(side.port!.pc.getConfiguration().iceServers?.[0]?.username).toBe(turnUsername(side.lists.at(-1)!));
        expect(side.port!.pc.getConfiguration().iceTransportPolicy).toBe('relay');
        // Still through coturn at the end.
        const pair = await selectedCandidatePair(side.port!.pc);
        expect(pair?.local.candidateType).toBe('relay');
        expect(pair?.remote.candidateType).toBe('relay');
      }
      // libwebrtc refreshed the allocations after their credentials had expired, and coturn said yes.
      readLog();
      expect(refreshes.filter((refresh) => refresh.seenAt > refresh.expiresAt).length, JSON.stringify(refreshes)).toBeGreaterThanOrEqual(1);
      expect(refreshes.every((refresh) => refresh.answer === 'success'), JSON.stringify(refreshes)).toBe(true);
      // No authenticated request was refused (the 401 of each first, unauthenticated ALLOCATE is the challenge).
      expect(turn!.logs.slice(logFrom)).not.toMatch(/user <[^>]+>: incoming packet \w+ processed, error/);

      // An ICE restart now, as the connection machine's recovery does for a failed connection,
      // gathers with what setConfiguration set last: each side gets a new allocation from coturn
      // under a username that came after the connection was created (the one it was created
      // with expired long ago: it would get 401).
      const restartFrom = turn!.logs.length;
      const allocatedAs = (side: Side): string[] =>
        [...turn!.logs.slice(restartFrom).matchAll(/user <([^>]+)>: incoming packet ALLOCATE processed, success/g)]
          .map((match) => match[1]!)
          .filter((username) => username.endsWith(`:${side.id}`));
      caller.restartIce();
      await waitFor(() => alice.events.some((event) => event.type === 'negotiated' && event.iceRestart), 'an ICE-restart negotiation');
      await waitFor(() => allocatedAs(alice).length > 0 && allocatedAs(bob).length > 0, 'new allocations for both sides');
      for (const side of [alice, bob]) {
        const applied = side.lists.slice(side.listsAtCreation).map(turnUsername);
        expect(applied, `${side.name}'s usernames applied with setConfiguration`).toEqual(expect.arrayContaining(allocatedAs(side)));
      }
      expect(turn!.logs.slice(restartFrom)).not.toMatch(/user <[^>]+>: incoming packet \w+ processed, error/);
      alice.channel!.send('after the restart');
      bob.channel!.send('and back');
      await waitFor(() => bob.received.at(-1) === 'after the restart' && alice.received.at(-1) === 'and back', 'a message each way after the restart');
    },
    90_000,
  );
});

const isOpen = (channel: DataChannel | null): boolean => channel?.readyState === 'open';
