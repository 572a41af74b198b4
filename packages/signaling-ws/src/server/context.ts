// What the modules of one signaling server share: its resolved options, its broker and
// outbox, and the tables of connections and sessions. Created once by `createSignalingServer`.

import type { Broker, MaybePromise } from './broker.js';
import type { Connection } from './connection.js';
import type { ConnectionCounter } from './limits.js';
import type { Logger } from './log.js';
import type { ResolvedOptions } from './options.js';
import type { Outbox } from './outbox.js';
import type { HeldFrameBudget, Session } from './session.js';
import type { IceServerSource } from './turn.js';

/** Whether the server takes new connections and joins. */
export type ServerPhase = 'running' | 'draining';

/** The state and parts of one signaling server, shared by its modules. */
export interface ServerContext {
  readonly options: ResolvedOptions;
  readonly log: Logger;
  readonly broker: Broker;
  readonly outbox: Outbox;
  readonly now: () => number;
  /** This process, in the resume tokens it issues: its own tokens are never "restored" here. */
  readonly issuer: string;
  readonly iceServers: IceServerSource;
  /** Open WebSockets. */
  readonly connections: Set<Connection>;
  /** Live sessions (connected, in grace or resuming) by their current resume token. */
  readonly sessionsByToken: Map<string, Session>;
  /** Room -> sessions of this process in it. */
  readonly localRooms: Map<string, number>;
  /** Per client address: open WebSockets, upgrades under way and sessions in grace. */
  readonly clientSlots: ConnectionCounter;
  /** Bytes held for sessions in grace, server-wide. */
  readonly heldBudget: HeldFrameBudget;
  phase: ServerPhase;
  /** Signals relayed since start. */
  relayed: number;
}

/** Runs `onValue` with a value now, or when its promise settles (no promise on the synchronous path). */
export function when<T>(value: MaybePromise<T>, onValue: (value: T) => void, onError: (error: unknown) => void): void {
  if (value instanceof Promise) value.then(onValue, onError);
  else onValue(value);
}
