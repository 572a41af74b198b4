import type { Observable } from 'rxjs';
import type { PeerMessage } from '../protocol/peer-message.js';

/**
 * One message pipe to ONE remote peer. Adapters (the WebSocket client, the in-memory pair of
 * `@parley/core/testing`) deliver messages in order per direction.
 *
 * Contract: `messages$` is hot (several machines may subscribe; a late subscriber sees only
 * later messages) and carries only validated messages (see `parsePeerMessage`). `send` never
 * throws for a well-formed message; an adapter that cannot deliver right now queues or drops
 * and reports through its own channel.
 */
export interface SignalingPort {
  readonly messages$: Observable<PeerMessage>;
  send(message: PeerMessage): void;
}
