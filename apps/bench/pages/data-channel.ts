import type { ConnectOptions, ReceiverReport, SenderReport } from '../src/data-channel/plan.js';
import { parleyReceiver, parleySender } from './data-channel-parley.js';
import { rawReceiver, rawSender } from './data-channel-raw.js';
import type { ReceiverSide, SenderSide } from './data-channel-sides.js';

// One page of the data-channel benchmark, sender or receiver of one transfer at a time. The
// runner (apps/bench/src/data-channel) calls `window.dataChannelBench` through page.evaluate:
// connect both sides (receiver first), force a GC on the sender, transfer, close.

export interface DataChannelBenchApi {
  /** Sender: resolves once the channel is open. Receiver: resolves once it is in the room. */
  connect(options: ConnectOptions): Promise<void>;
  /** Sender only: the timed transfer. */
  transfer(): Promise<SenderReport>;
  /** Receiver only: settles when everything arrived. */
  received(): Promise<ReceiverReport>;
  close(): void;
}

let sender: SenderSide | null = null;
let receiver: ReceiverSide | null = null;

const api: DataChannelBenchApi = {
  async connect(options) {
    api.close();
    const parley = options.subject !== 'raw';
    if (options.role === 'sender') sender = await (parley ? parleySender : rawSender)(options);
    else receiver = await (parley ? parleyReceiver : rawReceiver)(options);
  },
  transfer() {
    if (!sender) return Promise.reject(new Error('transfer: not connected as a sender'));
    return sender.transfer();
  },
  received() {
    if (!receiver) return Promise.reject(new Error('received: not connected as a receiver'));
    return receiver.received();
  },
  close() {
    sender?.close();
    receiver?.close();
    sender = null;
    receiver = null;
  },
};

(window as unknown as { dataChannelBench: DataChannelBenchApi }).dataChannelBench = api;
