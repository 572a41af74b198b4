import type { ReceiverReport, SenderReport } from '../src/data-channel/plan.js';

// One side of one transfer, once connected (the channel open on the sender's side).

export interface SenderSide {
  /** Sends the plan's chunks; settles when the receiver says it has them all. */
  transfer(): Promise<SenderReport>;
  close(): void;
}

export interface ReceiverSide {
  /** Settles when every chunk has arrived and checked out (rejects on the first bad one). */
  received(): Promise<ReceiverReport>;
  close(): void;
}
