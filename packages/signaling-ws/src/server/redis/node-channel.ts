// Messages on a node's channel (`<prefix>node:<node>`), and the entries of held lists. A cheap
// codec: four header fields separated by "\n", then the frame as is (it is never parsed here:
// the relay hot path costs one concatenation). A node reads its messages as bytes (ioredis
// `messageBuffer`): the header fields are decoded, the frame goes on as the bytes it came as. Rooms, ids and node ids have no
// newline (NAME_PATTERN, ID_PATTERN, hex node ids); a frame may contain anything.
//
//   d \n room \n to \n from \n frame        a frame for member `to` (from: the sender or empty;
//                                          built by the PUBLISH script)
//   b \n room \n seq \n except \n frame    a frame for every member of the room on this node but `except`
//                                        (with a sequence number when it reports an event of `except`,
//                                        its join or removal: only to members whose membership is older)
//   t \n room \n id \n newNode \n           member `id` was taken over by `newNode` (JOIN script)
//   h \n room \n id \n oldNode \n [[from, frame], ...]   the frames the old owner held (JSON)

import type { HeldFrame, WireFrame } from '../broker.js';

/** A decoded node-channel message. */
export type NodeMessage =
  | { readonly kind: 'deliver'; readonly room: string; readonly to: string; readonly from: string | undefined; readonly frame: WireFrame }
  | {
      readonly kind: 'broadcast';
      readonly room: string;
      readonly except: string | undefined;
      /**
       * For news of `except` (its join: its membership epoch; its removal: the removal's sequence
       * number): members whose membership is newer had it in their welcome and are skipped.
       */
      readonly olderThan: string | undefined;
      readonly frame: WireFrame;
    }
  | { readonly kind: 'taken'; readonly room: string; readonly id: string; readonly newNode: string }
  | { readonly kind: 'handover'; readonly room: string; readonly id: string; readonly frames: readonly HeldFrame[] };

/** A `broadcast` message; `olderThan` for news of `except` (see `NodeMessage`). */
export function broadcastMessage(room: string, frame: string, except: string | undefined, olderThan?: string): string {
  return `b\n${room}\n${olderThan ?? ''}\n${except ?? ''}\n${frame}`;
}

/** A `handover` message with the frames the old owner of `id` held for it, in order. */
export function handoverMessage(room: string, id: string, oldNode: string, frames: readonly HeldFrame[]): string {
  return `h\n${room}\n${id}\n${oldNode}\n${JSON.stringify(frames.map((f) => [f.from ?? '', f.frame]))}`;
}

const NEWLINE = 0x0a;
const DELIVER = 0x64; // d
const BROADCAST = 0x62; // b
const TAKEN = 0x74; // t
const HANDOVER = 0x68; // h

/**
 * Decodes a node-channel message, as the subscriber hands it over (bytes); undefined for one this
 * version does not know. A frame is a view of `message`: delivered at once, or copied as text
 * when it has to wait (`wireFrameText`).
 */
export function decodeNodeMessage(message: Buffer): NodeMessage | undefined {
  const a = message.indexOf(NEWLINE);
  const b = message.indexOf(NEWLINE, a + 1);
  const c = message.indexOf(NEWLINE, b + 1);
  const d = message.indexOf(NEWLINE, c + 1);
  if (a !== 1 || b < 0 || c < 0 || d < 0) return undefined;
  const room = message.toString('utf8', a + 1, b);
  const field2 = message.toString('utf8', b + 1, c);
  const field3 = message.toString('utf8', c + 1, d);
  const rest = message.subarray(d + 1);
  switch (message[0]) {
    case DELIVER:
      return { kind: 'deliver', room, to: field2, from: field3 === '' ? undefined : field3, frame: rest };
    case BROADCAST:
      return { kind: 'broadcast', room, except: field3 === '' ? undefined : field3, olderThan: field2 === '' ? undefined : field2, frame: rest };
    case TAKEN:
      return { kind: 'taken', room, id: field2, newNode: field3 };
    case HANDOVER: {
      let pairs: unknown;
      try {
        pairs = JSON.parse(rest.toString('utf8'));
      } catch {
        return undefined;
      }
      if (!Array.isArray(pairs)) return undefined;
      const frames: HeldFrame[] = [];
      for (const pair of pairs) {
        if (!Array.isArray(pair) || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') return undefined;
        frames.push({ from: pair[0] === '' ? undefined : pair[0], frame: pair[1] });
      }
      return { kind: 'handover', room, id: field2, frames };
    }
    default:
      return undefined;
  }
}

/** A held-list entry: `<from>\n<frame>`. */
export function decodeHeldEntry(entry: string): HeldFrame {
  const at = entry.indexOf('\n');
  const from = entry.slice(0, at);
  return { from: from === '' ? undefined : from, frame: entry.slice(at + 1) };
}
