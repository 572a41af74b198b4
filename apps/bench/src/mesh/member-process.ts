// One member of a mesh trial in a process of its own, as a person's browser would be: its own
// libwebrtc (threads, sockets) and its own event loop. `node member-process.js URL ROOM NAME`;
// the trial drives it over IPC (children.ts): `inRoom`, `join`, `connectedTo`; it leaves the
// call and exits when the parent disconnects.

import { serveRequests } from '../signaling/children.js';
import type { Request } from '../signaling/children.js';
import { connectedTo, epochNow, inRoom, startMeshMember, whenStatus } from './members.js';

/** Bounds of the requests: loopback set-ups take well under a second; these only catch a hang. */
const ROOM_TIMEOUT_MS = 10_000;
const CONNECT_TIMEOUT_MS = 30_000;

function stringArray(value: unknown, what: string): string[] {
  if (!Array.isArray(value) || !value.every((item): item is string => typeof item === 'string')) throw new Error(`${what}: expected an array of ids`);
  return value;
}

function main(): void {
  const [url, room, name] = process.argv.slice(2);
  if (url === undefined || room === undefined || name === undefined) throw new Error('usage: member-process.js URL ROOM NAME');
  const member = startMeshMember({ url, room, name });
  serveRequests(
    {
      /** Waits until we see `others` other members in the room; our id. */
      inRoom: (request: Request) => inRoom(member, Number(request['others']), ROOM_TIMEOUT_MS),
      /** Joins the call; when (epoch ms). */
      join: () => {
        const at = epochNow();
        member.group.join();
        return at;
      },
      /** When (epoch ms) we first held a connected pair with each of `ids` (ask before the join that makes them). */
      connectedTo: (request: Request) => {
        const ids = stringArray(request['ids'], 'connectedTo');
        return whenStatus(member, () => connectedTo(member, ids), `connected pairs with ${ids.length} members`, CONNECT_TIMEOUT_MS);
      },
    },
    { pid: process.pid },
    () => member.stop(),
  );
}

main();
