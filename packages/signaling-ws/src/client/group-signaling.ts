import { distinctUntilChanged, map } from 'rxjs';
import type { GroupSignaling } from '@parley/core';
import type { SignalingClient } from './client.js';

// The room of a signaling client as a group call sees it (`createGroupCall({ signaling })`).

function sameIds(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id, index) => id === b[index]);
}

/**
 * The `GroupSignaling` of a signaling client, for `createGroupCall`: our id from `self$` (null
 * until the first welcome), the other members' ids from `peers$`, and `portFor`. A member drops
 * out of `members$` only when the server says it left for good (`peer-left`, after its resume
 * grace): a member that reconnects and resumes keeps its pairs, and the client keeps the last
 * list while it reconnects itself. After a server restart without resume, members come back
 * under new ids: their old pairs are closed and new ones made when they join again.
 */
export function groupSignalingOf(client: Pick<SignalingClient, 'self$' | 'peers$' | 'portFor'>): GroupSignaling {
  return {
    selfId$: client.self$.pipe(
      map((self) => self?.id ?? null),
      distinctUntilChanged(),
    ),
    members$: client.peers$.pipe(
      map((peers) => peers.map((peer) => peer.id)),
      distinctUntilChanged(sameIds),
    ),
    portFor: (memberId) => client.portFor(memberId),
  };
}
