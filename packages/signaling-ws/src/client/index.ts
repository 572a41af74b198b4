/**
 * The reconnecting signaling client, for browsers and Node. Every export is named on purpose; the
 * machine's helpers (backoff, flush planning, target resolution, the WebSocket actor) are
 * internal and reached by path in this package's own tests.
 *
 * @module @parley/signaling-ws/client
 */

export { createSignalingClient } from './client.js';
export { groupSignalingOf } from './group-signaling.js';
export type {
  IncomingSignal,
  SignalingClient,
  SignalingClientActor,
  SignalingClientDelays,
  SignalingClientOptions,
  SignalingClientStatus,
} from './client.js';
export {
  DEFAULT_MAX_QUEUE,
  DEFAULT_SEND_BURST,
  DEFAULT_SEND_RATE,
  ICE_SERVERS_REFRESH_FLOOR_MS,
  ICE_SERVERS_REFRESH_MARGIN_MS,
  ICE_SERVERS_RETRY_MS,
  iceServersRefreshDelay,
  signalingClientMachine,
} from './signaling-client.machine.js';
export type {
  IceServersExpiry,
  QueuedSignal,
  SelfInfo,
  SignalData,
  SignalingClientContext,
  SignalingClientEmitted,
  SignalingClientEvent,
  SignalingClientInput,
  SignalingClientOutput,
} from './signaling-client.machine.js';
export { FATAL_JOIN_ERRORS, SignalingError } from './errors.js';
export type { ClientErrorCode, SignalingErrorCode, SignalingErrorDetails } from './errors.js';
export type { WebSocketConstructorLike, WebSocketLike } from './websocket.js';
export type { ErrorCode, IceServerConfig, PeerInfo, SignalPayload } from '../protocol.js';
