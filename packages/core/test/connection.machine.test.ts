import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createActor, setup } from 'xstate';
import type { ActorRefFrom, AnyEventObject } from 'xstate';
import {
  connectionMachine,
  iceRestartBackoffMs,
  type ConnectionEvent,
  type ConnectionInput,
  type ConnectionParentEvent,
} from '../src/machines/connection.machine.js';
import type { PeerConnectionState } from '../src/ports/rtc.js';

type Machine = typeof connectionMachine;

/**
 * Runs the machine as the child of a parent that records what it is sent. Unless told not to,
 * the parent is a peer whose restart negotiations complete at once: each attempt (ours, or the
 * remote's that a polite side counts) is answered with NEGOTIATED right away, so its backoff
 * starts when it is counted.
 */
function start(input: ConnectionInput, machine: Machine = connectionMachine, options: { readonly negotiateRestarts?: boolean } = {}) {
  const negotiateRestarts = options.negotiateRestarts ?? true;
  const toParent: { at: number; event: ConnectionParentEvent }[] = [];
  const t0 = Date.now();
  const parent = setup({ actors: { connection: machine } }).createMachine({
    invoke: { id: 'connection', src: 'connection', input },
    on: {
      '*': {
        actions: ({ event }: { event: AnyEventObject }) => {
          if (event.type.startsWith('CONNECTION.')) {
            toParent.push({ at: Date.now() - t0, event: event as ConnectionParentEvent });
          }
        },
      },
    },
  });
  const parentActor = createActor(parent).start();
  const child = parentActor.getSnapshot().children.connection as ActorRefFrom<Machine>;
  let attemptsNegotiated = 0;
  child.subscribe((snapshot) => {
    if (snapshot.context.attempts < attemptsNegotiated) attemptsNegotiated = snapshot.context.attempts; // connected again: a new recovery
    if (!negotiateRestarts || snapshot.context.attempts <= attemptsNegotiated) return;
    attemptsNegotiated = snapshot.context.attempts;
    if (snapshot.status === 'active') child.send({ type: 'NEGOTIATED' });
  });
  const send = (...events: ConnectionEvent[]) => events.forEach((event) => child.send(event));
  const report = (...states: PeerConnectionState[]) =>
    states.forEach((state) => child.send({ type: 'RTC.CONNECTION_STATE', state }));
  return {
    child,
    send,
    report,
    toParent,
    restarts: () => toParent.filter((p) => p.event.type === 'CONNECTION.RESTART_ICE'),
    snapshot: () => child.getSnapshot(),
  };
}

const impolite: ConnectionInput = { polite: false };
const polite: ConnectionInput = { polite: true };
const wait = (ms: number) => vi.advanceTimersByTime(ms);

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('connectionMachine', () => {
  it('starts in new with defaults', () => {
    const { snapshot } = start(impolite);
    expect(snapshot().value).toBe('new');
    expect(snapshot().context).toEqual({
      polite: false,
      iceRestartBy: 'impolite',
      maxIceRestarts: 3,
      connectionState: 'new',
      attempts: 0,
      reason: null,
      checksStartedInAttempt: null,
      turnRefusal: null,
    });
  });

  it('mirrors connectionState (webrtc-pc §4.3.3)', () => {
    const { report, snapshot } = start(impolite);
    const path: [PeerConnectionState, string][] = [
      ['connecting', 'connecting'],
      ['connected', 'connected'],
      ['disconnected', 'disconnected'],
      ['connected', 'connected'],
      ['connecting', 'connecting'], // a new transport after renegotiation
      ['disconnected', 'disconnected'],
      ['connecting', 'connecting'],
      ['connected', 'connected'],
    ];
    for (const [reported, state] of path) {
      report(reported);
      expect(snapshot().value).toBe(state);
      expect(snapshot().context.connectionState).toBe(reported);
    }
    expect(snapshot().value).toBe('connected');
  });

  it('records a report that does not change the state (new while new, new while connecting)', () => {
    const { report, snapshot } = start(impolite);
    report('connecting', 'new');
    expect(snapshot().value).toBe('connecting');
    expect(snapshot().context.connectionState).toBe('new');
  });

  it('new -> connected and new -> disconnected are followed directly', () => {
    const a = start(impolite);
    a.report('connected');
    expect(a.snapshot().value).toBe('connected');
    const b = start(impolite);
    b.report('disconnected');
    expect(b.snapshot().value).toBe('disconnected');
  });

  it('has no timer in new: a callee may wait there before any negotiation', () => {
    const { snapshot, restarts } = start(impolite);
    wait(120_000);
    expect(snapshot().value).toBe('new');
    expect(restarts()).toEqual([]);
  });

  it('still new after negotiation (no candidate at all) for connectTimeout: recovers, and fails with connect-timeout', () => {
    const { send, report, snapshot, restarts } = start(impolite);
    send({ type: 'NEGOTIATED' });
    expect(snapshot().value).toBe('awaitingChecks');
    wait(14_999);
    expect(snapshot().value).toBe('awaitingChecks');
    wait(1);
    expect(snapshot().value).toEqual({ recovering: { restartingIce: 'backingOff' } });
    expect(snapshot().context.reason).toBe('connect-timeout');
    expect(restarts()).toHaveLength(1);
    // Restarts that never produce a candidate leave the state "new": the schedule runs out.
    report('new');
    wait(7000);
    expect(snapshot().status).toBe('done');
    expect(snapshot().output).toEqual({ reason: 'connect-timeout', detail: 'ICE restart attempts exhausted (3)' });
  });

  it('checks starting after negotiation stop the awaitingChecks timer', () => {
    const { send, report, snapshot, restarts } = start(impolite);
    send({ type: 'NEGOTIATED' });
    wait(10_000);
    report('connecting');
    expect(snapshot().value).toBe('connecting');
    wait(10_000);
    report('connected');
    wait(60_000);
    expect(snapshot().value).toBe('connected');
    expect(restarts()).toEqual([]);
  });

  it('a short disconnection heals without a restart', () => {
    const { report, snapshot, restarts } = start(impolite);
    report('connecting', 'connected', 'disconnected');
    wait(1999);
    report('connected');
    wait(10_000);
    expect(snapshot().value).toBe('connected');
    expect(restarts()).toEqual([]);
  });

  it('disconnected longer than disconnectedGrace (2 s) recovers with an ICE restart by the impolite peer', () => {
    const { report, snapshot, restarts } = start(impolite);
    report('connecting', 'connected', 'disconnected');
    wait(1999);
    expect(snapshot().value).toBe('disconnected');
    wait(1);
    expect(snapshot().value).toEqual({ recovering: { restartingIce: 'backingOff' } });
    expect(snapshot().context).toMatchObject({ attempts: 1, reason: 'connection-failed', connectionState: 'disconnected' });
    expect(restarts().map((r) => r.event)).toEqual([{ type: 'CONNECTION.RESTART_ICE', attempt: 1 }]);
  });

  it('connected at any time during recovery goes back to connected and resets the attempts', () => {
    const { report, snapshot, restarts } = start(impolite);
    report('connecting', 'connected', 'failed');
    wait(1000); // second attempt
    expect(snapshot().context.attempts).toBe(2);
    report('connecting', 'connected');
    expect(snapshot().value).toBe('connected');
    expect(snapshot().context).toMatchObject({ attempts: 0, reason: null, connectionState: 'connected' });
    wait(60_000);
    expect(restarts()).toHaveLength(2);
    expect(snapshot().value).toBe('connected');
  });

  it('failed reported: restarts at once, backs off 1 s, 2 s, 4 s, then fails for good', () => {
    const { report, snapshot, restarts } = start(impolite);
    report('connecting', 'connected', 'failed');
    expect(snapshot().value).toEqual({ recovering: { restartingIce: 'backingOff' } });
    wait(6999);
    expect(restarts().map((r) => [r.at, r.event.attempt])).toEqual([
      [0, 1],
      [1000, 2],
      [3000, 3],
    ]);
    expect(snapshot().status).toBe('active');
    wait(1);
    expect(snapshot().value).toBe('failed');
    expect(snapshot().status).toBe('done');
    expect(snapshot().output).toEqual({ reason: 'connection-failed', detail: 'ICE restart attempts exhausted (3)' });
  });

  it('reports during recovery other than connected/closed are recorded and do not restart the schedule', () => {
    const { report, snapshot, restarts } = start(impolite);
    report('connecting', 'connected', 'failed');
    wait(500);
    report('connecting', 'failed', 'disconnected', 'new');
    expect(snapshot().value).toEqual({ recovering: { restartingIce: 'backingOff' } });
    expect(snapshot().context.connectionState).toBe('new');
    wait(500);
    expect(restarts().map((r) => r.at)).toEqual([0, 1000]);
  });

  it("an attempt's backoff starts once its restart is negotiated: slow signaling does not use up attempts", () => {
    const { report, send, snapshot, restarts } = start(impolite, connectionMachine, { negotiateRestarts: false });
    report('connecting', 'connected', 'failed');
    expect(snapshot().value).toEqual({ recovering: { restartingIce: 'negotiating' } });
    wait(5000); // the restart's offer/answer takes 5 s (more than the 1 s backoff)
    expect(restarts()).toHaveLength(1);
    send({ type: 'NEGOTIATED' });
    expect(snapshot().value).toEqual({ recovering: { restartingIce: 'backingOff' } });
    wait(999);
    expect(restarts()).toHaveLength(1);
    wait(1);
    expect(restarts().map((r) => [r.at, r.event.attempt])).toEqual([
      [0, 1],
      [6000, 2],
    ]);
  });

  it('a restart whose offer/answer never completes (signaling gone) is given up after connectTimeout, and so is the recovery', () => {
    const { report, snapshot, restarts } = start(impolite, connectionMachine, { negotiateRestarts: false });
    report('connecting', 'connected', 'failed');
    wait(44_999);
    expect(restarts().map((r) => r.at)).toEqual([0, 15_000, 30_000]);
    expect(snapshot().status).toBe('active');
    wait(1);
    expect(snapshot().output).toEqual({ reason: 'connection-failed', detail: 'ICE restart attempts exhausted (3)' });
  });

  it("the polite peer waits for the remote's restart to be negotiated before its backoff, as the restarter does", () => {
    const { report, send, snapshot } = start(polite, connectionMachine, { negotiateRestarts: false });
    report('connecting', 'connected', 'failed');
    expect(snapshot().value).toEqual({ recovering: { awaitingRemoteRestart: 'negotiating' } });
    wait(3000);
    send({ type: 'NEGOTIATED' }); // our answer to the remote's restart offer is applied
    wait(999);
    expect(snapshot().context.attempts).toBe(1);
    wait(1);
    expect(snapshot().context.attempts).toBe(2);
  });

  it('caps the backoff at 8 s', () => {
    expect([1, 2, 3, 4, 5, 9].map(iceRestartBackoffMs)).toEqual([1000, 2000, 4000, 8000, 8000, 8000]);
    const { report, restarts, snapshot } = start({ polite: false, maxIceRestarts: 6 });
    report('connecting', 'failed');
    wait(1000 + 2000 + 4000 + 8000 + 8000);
    expect(restarts().map((r) => r.at)).toEqual([0, 1000, 3000, 7000, 15_000, 23_000]);
    wait(7999);
    expect(snapshot().status).toBe('active');
    wait(1);
    expect(snapshot().output).toEqual({ reason: 'connection-failed', detail: 'ICE restart attempts exhausted (6)' });
  });

  it('the polite peer does not restart ICE but counts the same schedule and gives up at the same time', () => {
    const { report, snapshot, restarts } = start(polite);
    report('connecting', 'connected', 'failed');
    expect(snapshot().value).toEqual({ recovering: { awaitingRemoteRestart: 'backingOff' } });
    expect(snapshot().context.attempts).toBe(1);
    wait(3000);
    expect(snapshot().context.attempts).toBe(3);
    wait(3999);
    expect(snapshot().status).toBe('active');
    wait(1);
    expect(snapshot().output).toEqual({ reason: 'connection-failed', detail: 'ICE restart attempts exhausted (3)' });
    expect(restarts()).toEqual([]);
  });

  it("the polite peer restarts too with iceRestartBy: 'either'", () => {
    const { report, snapshot, restarts } = start({ polite: true, iceRestartBy: 'either' });
    report('connecting', 'failed');
    expect(snapshot().value).toEqual({ recovering: { restartingIce: 'backingOff' } });
    expect(restarts().map((r) => r.event)).toEqual([{ type: 'CONNECTION.RESTART_ICE', attempt: 1 }]);
  });

  it('the polite peer recovers when the remote restart connects', () => {
    const { report, snapshot } = start(polite);
    report('connecting', 'connected', 'disconnected');
    wait(2000);
    expect(snapshot().value).toEqual({ recovering: { awaitingRemoteRestart: 'backingOff' } });
    report('connecting', 'connected');
    expect(snapshot().value).toBe('connected');
    expect(snapshot().context.attempts).toBe(0);
  });

  it('connecting longer than connectTimeout (15 s) recovers, and fails with connect-timeout', () => {
    const { report, snapshot, restarts } = start(impolite);
    report('connecting');
    wait(14_999);
    expect(snapshot().value).toBe('connecting');
    wait(1);
    expect(snapshot().value).toEqual({ recovering: { restartingIce: 'backingOff' } });
    expect(snapshot().context.reason).toBe('connect-timeout');
    expect(restarts()).toHaveLength(1);
    wait(7000);
    expect(snapshot().output).toEqual({ reason: 'connect-timeout', detail: 'ICE restart attempts exhausted (3)' });
  });

  it('checks that a restart started are let finish after the backoff, instead of being restarted', () => {
    const { report, snapshot, restarts } = start(impolite);
    report('connecting', 'connected', 'failed');
    expect(snapshot().value).toEqual({ recovering: { restartingIce: 'backingOff' } });
    expect(restarts()).toHaveLength(1);
    report('connecting'); // the restarted ICE starts checking (a slow path, e.g. TURN)
    wait(1000); // first backoff
    expect(snapshot().value).toEqual({ recovering: 'checkingRestartedIce' });
    expect(restarts()).toHaveLength(1);
    wait(5000);
    report('connected');
    expect(snapshot().value).toBe('connected');
    expect(snapshot().context.attempts).toBe(0);
  });

  it('restarted checks that fail, or outlast connectTimeout, lead to the next attempt', () => {
    const { report, snapshot, restarts } = start(impolite);
    report('connecting', 'connected', 'failed', 'connecting');
    wait(1000);
    expect(snapshot().value).toEqual({ recovering: 'checkingRestartedIce' });
    report('failed');
    expect(restarts()).toHaveLength(2);
    report('connecting');
    wait(2000);
    expect(snapshot().value).toEqual({ recovering: 'checkingRestartedIce' });
    wait(14_999);
    expect(restarts()).toHaveLength(2);
    wait(1);
    expect(restarts()).toHaveLength(3);
  });

  it('the connect timer stops once connected, and restarts on a new connecting', () => {
    const { report, snapshot } = start(impolite);
    report('connecting');
    wait(10_000);
    report('connected');
    wait(10_000);
    expect(snapshot().value).toBe('connected');
    report('connecting');
    wait(14_999);
    expect(snapshot().value).toBe('connecting');
    wait(1);
    expect(snapshot().value).toEqual({ recovering: { restartingIce: 'backingOff' } });
  });

  it('failed while new or connecting recovers at once', () => {
    for (const before of [[], ['connecting']] as PeerConnectionState[][]) {
      const { report, snapshot } = start(impolite);
      report(...before, 'failed');
      expect(snapshot().value).toEqual({ recovering: { restartingIce: 'backingOff' } });
      expect(snapshot().context.reason).toBe('connection-failed');
    }
  });

  it('maxIceRestarts: 0 fails at the first failure without a restart', () => {
    const { report, snapshot, restarts } = start({ polite: false, maxIceRestarts: 0 });
    report('connecting', 'connected', 'failed');
    expect(snapshot().value).toBe('failed');
    expect(snapshot().output).toEqual({ reason: 'connection-failed', detail: 'ICE restart attempts exhausted (0)' });
    expect(restarts()).toEqual([]);
  });

  it('delays are named and overridable with provide()', () => {
    const fast = connectionMachine.provide({
      delays: { disconnectedGrace: 10, iceRestartBackoff: 5, connectTimeout: 50 },
    });
    const { report, snapshot, restarts } = start(impolite, fast);
    report('connecting');
    wait(50);
    expect(snapshot().context.reason).toBe('connect-timeout');
    report('connected', 'disconnected');
    wait(10);
    expect(snapshot().context.reason).toBe('connection-failed');
    wait(14);
    expect(snapshot().status).toBe('active');
    wait(1);
    expect(snapshot().value).toBe('failed');
    expect(restarts().map((r) => r.at)).toEqual([50, 60, 65, 70]);
  });

  it.each([
    ['new', []],
    ['connecting', ['connecting']],
    ['connected', ['connecting', 'connected']],
    ['disconnected', ['connecting', 'connected', 'disconnected']],
    ['recovering', ['connecting', 'connected', 'failed']],
  ] as [string, PeerConnectionState[]][])('CLOSE from %s is final with reason closed', (from, before) => {
    const { report, send, snapshot } = start(impolite);
    report(...before);
    expect(JSON.stringify(snapshot().value)).toContain(from);
    send({ type: 'CLOSE' });
    expect(snapshot().value).toBe('closed');
    expect(snapshot().status).toBe('done');
    expect(snapshot().output).toEqual({ reason: 'closed' });
  });

  it.each([
    ['new', []],
    ['connected', ['connecting', 'connected']],
    ['recovering', ['connecting', 'failed']],
  ] as [string, PeerConnectionState[]][])('closed reported while %s is final with reason closed', (_from, before) => {
    const { report, snapshot } = start(impolite);
    report(...before, 'closed');
    expect(snapshot().value).toBe('closed');
    expect(snapshot().context.connectionState).toBe('closed');
    expect(snapshot().output).toEqual({ reason: 'closed' });
  });

  it('a closed machine stops its timers', () => {
    const { report, send, restarts } = start(impolite);
    report('connecting', 'failed');
    send({ type: 'CLOSE' });
    wait(60_000);
    expect(restarts()).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });
});
