import { assertEvent, assign, emit, enqueueActions, not, sendParent, setup } from 'xstate';
import type { PeerConnectionState } from '../ports/rtc.js';
import type { IceRestartPolicy, PeerEndReason } from './peer.types.js';

// Mirrors RTCPeerConnectionState (webrtc-pc §4.3.3) and owns the recovery policy: a connection
// that stays `disconnected`, reports `failed`, or never connects is given ICE restarts
// (webrtc-pc §4.4.1.5 restartIce, RFC 8445 §9) with exponential backoff before it is declared
// failed for good. The peer machine runs it as one of its parallel regions (peer.machine.ts),
// where the restart request (`askForIceRestart`, `sendParent` here) is carried out directly.

/** The input of `connectionMachine`: its ICE restart policy. */
export interface ConnectionInput {
  /** The polite peer (perfect negotiation) does not restart ICE unless `iceRestartBy` is 'either'. */
  readonly polite: boolean;
  /** Who asks for ICE restarts: the impolite peer only (default), or either peer. */
  readonly iceRestartBy?: IceRestartPolicy;
  /** ICE restart attempts before the connection is declared failed (default 3). */
  readonly maxIceRestarts?: number;
}

/** RTC events, already translated by the parent `peer` machine, and the parent's CLOSE. */
export type ConnectionEvent =
  | { readonly type: 'RTC.CONNECTION_STATE'; readonly state: PeerConnectionState }
  /** webrtc-pc §4.8.4 icecandidateerror; `detail` is "code text (url)". */
  | { readonly type: 'RTC.ICE_CANDIDATE_ERROR'; readonly errorCode: number; readonly url: string; readonly detail: string }
  /** An offer/answer exchange completed: the first one starts checks, a restart's new ones. */
  | { readonly type: 'NEGOTIATED' }
  | { readonly type: 'CLOSE' };

/** What this machine asks of its parent (`sendParent`). */
export type ConnectionParentEvent = {
  readonly type: 'CONNECTION.RESTART_ICE';
  /** 1 for the first restart of a recovery, then 2, 3, ... */
  readonly attempt: number;
};

/** What this machine reports as it goes (xstate `emit`; the peer passes them to the app). */
export type ConnectionEmitted =
  | { readonly type: 'connectionstatechange'; readonly state: PeerConnectionState }
  | { readonly type: 'notice'; readonly notice: 'ice-candidate-error'; readonly detail: string };

/** Why recovery started, and so why the connection failed if recovery is exhausted. */
export type ConnectionFailureReason = Extract<PeerEndReason, 'connection-failed' | 'connect-timeout'>;

/** The machine's output, once final. Same shape as `PeerOutput`. */
export interface ConnectionOutput {
  readonly reason: ConnectionFailureReason | 'closed' | 'turn-unauthorized';
  readonly detail?: string;
}

/** The context of `connectionMachine`: the last reported states and the ICE restart attempts. */
export interface ConnectionContext {
  readonly polite: boolean;
  readonly iceRestartBy: IceRestartPolicy;
  readonly maxIceRestarts: number;
  /** The last reported RTCPeerConnectionState. */
  readonly connectionState: PeerConnectionState;
  /** ICE restart attempts of the current recovery; 0 whenever connected. */
  readonly attempts: number;
  /** Why the connection is recovering or has ended; null while healthy. */
  readonly reason: ConnectionFailureReason | 'closed' | null;
  /** The recovery attempt during which connectivity checks last (re)started, if any. */
  readonly checksStartedInAttempt: number | null;
  /** The last TURN credential refusal since the connection was last connected, for the end reason. */
  readonly turnRefusal: string | null;
}

/** The context a connection starts with (the peer machine starts its region with it too). */
export function initialConnectionContext(input: ConnectionInput): ConnectionContext {
  return {
    polite: input.polite,
    iceRestartBy: input.iceRestartBy ?? 'impolite',
    maxIceRestarts: input.maxIceRestarts ?? DEFAULT_MAX_ICE_RESTARTS,
    connectionState: 'new',
    attempts: 0,
    reason: null,
    checksStartedInAttempt: null,
    turnRefusal: null,
  };
}

/**
 * STUN error codes that mean "your credentials are not accepted" (RFC 8489 §14.8: 401
 * Unauthorized; RFC 8656 §18: 441 Wrong Credentials). 438 Stale Nonce is retried by the engine.
 */
const CREDENTIAL_REFUSALS: ReadonlySet<number> = new Set([401, 441]);

const DEFAULT_MAX_ICE_RESTARTS = 3;
const BACKOFF_BASE_MS = 1000;
const BACKOFF_CAP_MS = 8000;

/** Backoff after the n-th attempt: 1 s, 2 s, 4 s, 8 s, 8 s, ... */
export function iceRestartBackoffMs(attempts: number): number {
  return Math.min(BACKOFF_BASE_MS * 2 ** Math.max(0, attempts - 1), BACKOFF_CAP_MS);
}

/** How the connection ended: closed, or failed (turn-unauthorized when a TURN server refused us). */
export function endOf(context: ConnectionContext): ConnectionOutput {
  const reason = context.reason ?? 'closed';
  if (reason === 'closed') return { reason };
  const detail = `ICE restart attempts exhausted (${context.attempts})`;
  return context.turnRefusal !== null ? { reason: 'turn-unauthorized', detail: `${context.turnRefusal}; ${detail}` } : { reason, detail };
}

function reported(state: PeerConnectionState) {
  return ({ event }: { event: ConnectionEvent }): boolean =>
    event.type === 'RTC.CONNECTION_STATE' && event.state === state;
}

/** How both "new" states (before and after negotiation) follow the state the engine reports. */
const LEAVING_NEW = [
  { guard: 'isConnectingReported', target: 'connecting', actions: 'recordConnectionState' },
  { guard: 'isConnectedReported', target: 'connected', actions: 'recordConnectionState' },
  { guard: 'isDisconnectedReported', target: 'disconnected', actions: 'recordConnectionState' },
  { guard: 'isFailedReported', target: 'recovering', actions: ['recordConnectionState', 'noteConnectionFailed'] },
] as const;

/**
 * One recovery attempt after its restart was asked for: the restart's offer/answer first (an
 * attempt that never reached the other side, on slow signaling, is not waited out as if it had;
 * bounded by connectTimeout), then the backoff.
 */
const RESTART_ROUND = {
  initial: 'negotiating',
  states: {
    negotiating: {
      description: "The restart's offer/answer is under way (ours, or the remote's when it restarts).",
      on: { NEGOTIATED: 'backingOff' },
      after: { connectTimeout: '#connection.recovering.nextAttempt' },
    },
    backingOff: {
      description: 'Negotiated: checks run on the new candidates; the next attempt waits iceRestartBackoff.',
      after: {
        iceRestartBackoff: [
          { guard: 'areRestartedChecksRunning', target: '#connection.recovering.checkingRestartedIce' },
          { target: '#connection.recovering.nextAttempt' },
        ],
      },
    },
  },
} as const;

/**
 * Watches the connection state (webrtc-pc §4.3.3; the ICE connection state is the app's, see
 * `PortReport`) and recovers a failed or
 * long-disconnected connection with ICE restarts under a backoff policy, giving up after a limit.
 */
export const connectionMachine = setup({
  types: {
    input: {} as ConnectionInput,
    context: {} as ConnectionContext,
    events: {} as ConnectionEvent,
    output: {} as ConnectionOutput,
    emitted: {} as ConnectionEmitted,
  },
  guards: {
    /** Checks that started during this attempt (a restarted ICE) are still running. */
    areRestartedChecksRunning: ({ context }) =>
      context.connectionState === 'connecting' && context.checksStartedInAttempt === context.attempts,
    isConnectingReported: reported('connecting'),
    isConnectedReported: reported('connected'),
    isDisconnectedReported: reported('disconnected'),
    isFailedReported: reported('failed'),
    isClosedReported: reported('closed'),
    /** Restarts are asked by the impolite peer, or by both when configured so. */
    isIceRestarter: ({ context }) => !context.polite || context.iceRestartBy === 'either',
    hasAttemptsLeft: ({ context }) => context.attempts < context.maxIceRestarts,
    /** A TURN server refused our credentials (webrtc-pc §4.8.4 icecandidateerror). */
    isTurnCredentialRefusal: ({ event }) =>
      event.type === 'RTC.ICE_CANDIDATE_ERROR' && CREDENTIAL_REFUSALS.has(event.errorCode) && /^turns?:/.test(event.url),
  },
  actions: {
    /** Records the reported RTCPeerConnectionState and announces it (`connectionstatechange`). */
    recordConnectionState: enqueueActions(({ event, enqueue }) => {
      assertEvent(event, 'RTC.CONNECTION_STATE');
      enqueue.assign({ connectionState: event.state });
      enqueue.emit({ type: 'connectionstatechange', state: event.state });
    }),
    recordTurnRefusal: assign({
      turnRefusal: ({ event }) => {
        assertEvent(event, 'RTC.ICE_CANDIDATE_ERROR');
        return `TURN server refused the credentials: ${event.detail}`;
      },
    }),
    /** A refusal seen before the connection (re)connected does not explain a later failure. */
    forgetTurnRefusal: enqueueActions(({ context, enqueue }) => {
      // Most connections never saw one: no assign (a copy of the context) for nothing.
      if (context.turnRefusal !== null) enqueue.assign({ turnRefusal: null });
    }),
    announceCandidateError: emit(({ event }) => {
      assertEvent(event, 'RTC.ICE_CANDIDATE_ERROR');
      return { type: 'notice' as const, notice: 'ice-candidate-error' as const, detail: event.detail };
    }),
    noteConnectionFailed: assign({ reason: 'connection-failed' as const }),
    noteConnectTimeout: assign({ reason: 'connect-timeout' as const }),
    noteClosed: assign({ reason: 'closed' as const }),
    countAttempt: assign({ attempts: ({ context }) => context.attempts + 1 }),
    resetRecovery: assign({ attempts: 0, reason: null, checksStartedInAttempt: null }),
    noteChecksStarted: assign({ checksStartedInAttempt: ({ context }) => context.attempts }),
    askForIceRestart: sendParent(
      ({ context }) => ({ type: 'CONNECTION.RESTART_ICE', attempt: context.attempts }) satisfies ConnectionParentEvent,
    ),
  },
  delays: {
    /** How long `disconnected` may last before recovery starts (it often heals by itself). */
    disconnectedGrace: 2000,
    /** How long `connecting` (or "new" after negotiation) may last before it is treated as a failure. */
    connectTimeout: 15_000,
    /** Wait after each attempt; read after `countAttempt`, so attempts >= 1. */
    iceRestartBackoff: ({ context }) => iceRestartBackoffMs(context.attempts),
  },
}).createMachine({
  id: 'connection',
  description: 'RTCPeerConnectionState mirror with ICE-restart recovery (webrtc-pc §4.3.3).',
  context: ({ input }) => initialConnectionContext(input),
  output: ({ context }) => endOf(context),
  initial: 'new',
  on: {
    // Fallbacks for whatever a state does not handle itself: record, and honour `closed`.
    'RTC.CONNECTION_STATE': [
      { guard: 'isClosedReported', target: '.closed', actions: ['recordConnectionState', 'noteClosed'] },
      { actions: 'recordConnectionState' },
    ],
    'RTC.ICE_CANDIDATE_ERROR': [
      { guard: 'isTurnCredentialRefusal', actions: ['recordTurnRefusal', 'announceCandidateError'] },
      { actions: 'announceCandidateError' },
    ],
    CLOSE: { target: '.closed', actions: 'noteClosed' },
  },
  states: {
    new: {
      description: 'webrtc-pc "new": nothing negotiated yet. No timer: a callee may wait here.',
      on: {
        NEGOTIATED: 'awaitingChecks',
        'RTC.CONNECTION_STATE': LEAVING_NEW,
      },
    },
    awaitingChecks: {
      description:
        'Still "new" although offer and answer are applied: no candidate pair to check yet. Bounded by connectTimeout: with no candidate at all (every TURN server refused its credentials under a relay-only policy) ICE would wait forever.',
      after: {
        connectTimeout: { target: 'recovering', actions: 'noteConnectTimeout' },
      },
      on: {
        'RTC.CONNECTION_STATE': LEAVING_NEW,
      },
    },
    connecting: {
      description: 'webrtc-pc "connecting": transports are checking; bounded by connectTimeout.',
      after: {
        // No usable candidate pair (e.g. an expired TURN credential): treated like a failure.
        connectTimeout: { target: 'recovering', actions: 'noteConnectTimeout' },
      },
      on: {
        'RTC.CONNECTION_STATE': [
          { guard: 'isConnectedReported', target: 'connected', actions: 'recordConnectionState' },
          { guard: 'isDisconnectedReported', target: 'disconnected', actions: 'recordConnectionState' },
          { guard: 'isFailedReported', target: 'recovering', actions: ['recordConnectionState', 'noteConnectionFailed'] },
        ],
      },
    },
    connected: {
      description: 'webrtc-pc "connected": every transport is connected or completed.',
      entry: 'forgetTurnRefusal',
      on: {
        'RTC.CONNECTION_STATE': [
          // A new transport (renegotiation) may start checking again.
          { guard: 'isConnectingReported', target: 'connecting', actions: 'recordConnectionState' },
          { guard: 'isDisconnectedReported', target: 'disconnected', actions: 'recordConnectionState' },
          { guard: 'isFailedReported', target: 'recovering', actions: ['recordConnectionState', 'noteConnectionFailed'] },
        ],
      },
    },
    disconnected: {
      description: 'webrtc-pc "disconnected": consent checks are failing; often heals within seconds.',
      after: {
        disconnectedGrace: { target: 'recovering', actions: 'noteConnectionFailed' },
      },
      on: {
        'RTC.CONNECTION_STATE': [
          { guard: 'isConnectedReported', target: 'connected', actions: 'recordConnectionState' },
          { guard: 'isConnectingReported', target: 'connecting', actions: 'recordConnectionState' },
          { guard: 'isFailedReported', target: 'recovering', actions: ['recordConnectionState', 'noteConnectionFailed'] },
        ],
      },
    },
    recovering: {
      description: 'Not connected, so ICE is restarted with backoff until connected or out of attempts.',
      initial: 'nextAttempt',
      on: {
        // Other reports fall through to the machine's own handlers (recorded; `closed` ends it):
        // the schedule keeps running.
        'RTC.CONNECTION_STATE': [
          { guard: 'isConnectedReported', target: 'connected', actions: ['recordConnectionState', 'resetRecovery'] },
          { guard: 'isConnectingReported', actions: ['recordConnectionState', 'noteChecksStarted'] },
        ],
      },
      states: {
        nextAttempt: {
          description: 'Transient: give up, or start the next attempt as restarter or as its peer.',
          always: [
            { guard: not('hasAttemptsLeft'), target: '#connection.failed' },
            { guard: 'isIceRestarter', target: 'restartingIce' },
            { target: 'awaitingRemoteRestart' },
          ],
        },
        restartingIce: {
          description: 'This side asked the parent for an ICE restart (webrtc-pc §4.4.1.5).',
          entry: ['countAttempt', 'askForIceRestart'],
          ...RESTART_ROUND,
        },
        awaitingRemoteRestart: {
          description: 'The other side restarts ICE; this side follows the same schedule to give up in step.',
          entry: 'countAttempt',
          ...RESTART_ROUND,
        },
        checkingRestartedIce: {
          description:
            'The restarted ICE is still checking when the backoff ends: let those checks finish (slow paths such as TURN) instead of restarting them.',
          after: { connectTimeout: 'nextAttempt' },
          on: {
            'RTC.CONNECTION_STATE': { guard: 'isFailedReported', target: 'nextAttempt', actions: 'recordConnectionState' },
          },
        },
      },
    },
    failed: {
      description: 'Recovery exhausted: final, with the reason recovery started.',
      type: 'final',
    },
    closed: {
      description: 'webrtc-pc "closed", or closed by the parent: final.',
      type: 'final',
    },
  },
});
