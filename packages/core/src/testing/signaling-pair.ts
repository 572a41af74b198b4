import { Subject } from 'rxjs';
import type { SignalingPort } from '../ports/signaling.js';
import { parsePeerMessage } from '../protocol/peer-message.js';
import type { PeerMessage } from '../protocol/peer-message.js';
import { createStepper } from './fake-network.js';
import type { FakeScheduler } from './fake-network.js';

// Two in-memory signaling ports wired to each other, for one pair of peers. Each delivery is one
// asynchronous step (through the scheduler when there is one); per direction, messages arrive in
// the order they were sent, whatever order the scheduler releases the steps in.

/** Which end sent a message: the first port of the pair is 'a', the second 'b'. */
export type SignalingEnd = 'a' | 'b';

/** Options of `createSignalingPair`. */
export interface SignalingPairOptions {
  /** Drives every delivery (fast-check `fc.scheduler()` fits); default: one macrotask each. */
  readonly scheduler?: FakeScheduler;
  /**
   * Sees every sent message and returns what travels instead: `[]` drops it, `[m, m]` duplicates
   * it, `[rewritten]` changes it. Runs when the message is sent.
   */
  readonly intercept?: (message: PeerMessage, from: SignalingEnd) => readonly PeerMessage[];
  /** Names used in labels (default 'A' and 'B'). */
  readonly names?: readonly [string, string];
}

/** One end of a `createSignalingPair`: a `SignalingPort` with the messages it sent, for tests. */
export interface FakeSignalingPort extends SignalingPort {
  readonly name: string;
  /** Every message given to `send`, in order (before `intercept`). */
  readonly sent: readonly PeerMessage[];
  /** Every message delivered to this end, in order. */
  readonly received: readonly PeerMessage[];
  /** Messages sent by this end that are not delivered yet. */
  pending(): number;
  /** Stops this end: nothing more is delivered to it, its later sends are dropped. Completes `messages$`. */
  close(): void;
  readonly closed: boolean;
}

interface End {
  readonly name: string;
  readonly side: SignalingEnd;
  readonly subject: Subject<PeerMessage>;
  readonly sent: PeerMessage[];
  readonly received: PeerMessage[];
  /** Messages from this end, waiting for delivery to the other. */
  readonly outbox: PeerMessage[];
  deliveryScheduled: boolean;
  closed: boolean;
}

function describe(message: PeerMessage): string {
  switch (message.kind) {
    case 'description':
      return `description(${message.description.type})`;
    case 'candidate':
      return message.candidate === null ? 'candidate(end)' : message.candidate.candidate === '' ? 'candidate(end, empty)' : 'candidate';
    case 'reject':
    case 'cancel':
    case 'bye':
      return `${message.kind}(${message.reason})`;
    default:
      return message.kind;
  }
}

/** JSON round trip plus `parsePeerMessage`: only what a real wire would carry gets through. */
function throughTheWire(message: PeerMessage, from: string): PeerMessage {
  let json: unknown;
  try {
    json = JSON.parse(JSON.stringify(message)) as unknown;
  } catch (error) {
    throw new Error(`createSignalingPair: ${from} sent something that is not JSON: ${String(error)}`);
  }
  const result = parsePeerMessage(json);
  if (!result.ok) {
    throw new Error(`createSignalingPair: ${from} sent an invalid peer message (${result.error.path}: ${result.error.message})`);
  }
  return result.message;
}

/** Two connected fake signaling ports; with a scheduler, fast-check orders every delivery. */
export function createSignalingPair(options: SignalingPairOptions = {}): readonly [FakeSignalingPort, FakeSignalingPort] {
  const step = createStepper(options.scheduler);
  const [nameA, nameB] = options.names ?? ['A', 'B'];
  const makeEnd = (name: string, side: SignalingEnd): End => ({
    name,
    side,
    subject: new Subject<PeerMessage>(),
    sent: [],
    received: [],
    outbox: [],
    deliveryScheduled: false,
    closed: false,
  });
  const a = makeEnd(nameA, 'a');
  const b = makeEnd(nameB, 'b');

  // One delivery step at a time per direction, always for the oldest message: the order is kept
  // by construction and each label names the message it really delivers.
  const scheduleDelivery = (from: End, to: End): void => {
    const next = from.outbox[0];
    if (from.deliveryScheduled || next === undefined) return;
    from.deliveryScheduled = true;
    step(`${from.name}->${to.name}: ${describe(next)}`, () => {
      from.deliveryScheduled = false;
      const message = from.outbox.shift();
      if (message === undefined || to.closed) return;
      to.received.push(message);
      to.subject.next(message);
      scheduleDelivery(from, to);
    });
  };

  const makePort = (self: End, other: End): FakeSignalingPort => ({
    name: self.name,
    messages$: self.subject.asObservable(),
    sent: self.sent,
    received: self.received,
    get closed() {
      return self.closed;
    },
    send(message: PeerMessage): void {
      if (self.closed) return;
      self.sent.push(message);
      const outgoing = options.intercept ? options.intercept(message, self.side) : [message];
      for (const item of outgoing) {
        const copy = throughTheWire(item, self.name);
        if (other.closed) continue;
        self.outbox.push(copy);
      }
      scheduleDelivery(self, other);
    },
    pending(): number {
      return self.outbox.length;
    },
    close(): void {
      if (self.closed) return;
      self.closed = true;
      // What this end already sent may still arrive; nothing more reaches it.
      other.outbox.length = 0;
      self.subject.complete();
    },
  });

  return [makePort(a, b), makePort(b, a)] as const;
}
