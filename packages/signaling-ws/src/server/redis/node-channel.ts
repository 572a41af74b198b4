// Messages on a node's channel (`<prefix>node:<node>`), and the entries of held lists. A cheap
// text codec: four header fields separated by "\n", then the frame as is (it is never parsed
// here: the relay hot path costs one string concatenation). Rooms, ids and node ids have no
// newline (NAME_PATTERN, ID_PATTERN, hex node ids); a frame may contain anything.
//
//   d \n room \n to \n from \n frame        a frame for member `to` (from: the sender or empty;
//                                          built by the PUBLISH script)
//   b \n room \n seq \n except \n frame    a frame for every member of the room on this node but `except`
//                                        (with a sequence number when it reports an event of `except`,
//                                        its join or removal: only to members whose membership is older)
//   t \n room \n id \n newNode \n           member `id` was taken over by `newNode` (JOIN script)
//   h \n room \n id \n oldNode \n [[from, frame], ...]   the frames the old owner held (JSON)

import type { HeldFrame } from '../broker.js';

/** A decoded node-channel message. */
export type NodeMessage =
  | { readonly kind: 'deliver'; readonly room: string; readonly to: string; readonly from: string | undefined; readonly frame: string }
  | {
      readonly kind: 'broadcast';
      readonly room: string;
      readonly except: string | undefined;
      /**
       * For news of `except` (its join: its membership epoch; its removal: the removal's sequence
       * number): members whose membership is newer had it in their welcome and are skipped.
       */
      readonly olderThan: string | undefined;
      readonly frame: string;
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

/** Decodes a node-channel message; undefined for one this version does not know. */
export function decodeNodeMessage(message: string): NodeMessage | undefined {
  const a = message.indexOf('\n');
  const b = message.indexOf('\n', a + 1);
  const c = message.indexOf('\n', b + 1);
  const d = message.indexOf('\n', c + 1);
  if (a !== 1 || b < 0 || c < 0 || d < 0) return undefined;
  const room = message.slice(a + 1, b);
  const field2 = message.slice(b + 1, c);
  const field3 = message.slice(c + 1, d);
  const rest = message.slice(d + 1);
  switch (message[0]) {
    case 'd':
      return { kind: 'deliver', room, to: field2, from: field3 === '' ? undefined : field3, frame: rest };
    case 'b':
      return { kind: 'broadcast', room, except: field3 === '' ? undefined : field3, olderThan: field2 === '' ? undefined : field2, frame: rest };
    case 't':
      return { kind: 'taken', room, id: field2, newNode: field3 };
    case 'h': {
      let pairs: unknown;
      try {
        pairs = JSON.parse(rest);
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
