// @parley/signaling-ws/client: the reconnecting signaling client, for browsers and Node.
export { createSignalingClient } from './client.js';
export type {
  IncomingSignal,
  SignalingClient,
  SignalingClientActor,
  SignalingClientDelays,
  SignalingClientOptions,
  SignalingClientStatus,
} from './client.js';
export {
  BACKOFF_BASE_MS,
  BACKOFF_CAP_MS,
  DEFAULT_MAX_QUEUE,
  DEFAULT_SEND_BURST,
  DEFAULT_SEND_RATE,
  fullJitterBackoff,
  ICE_SERVERS_REFRESH_FLOOR_MS,
  ICE_SERVERS_REFRESH_MARGIN_MS,
  ICE_SERVERS_RETRY_MS,
  iceServersRefreshDelay,
  planFlush,
  resolveTarget,
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
export { READY_STATE, webSocketActor } from './websocket.js';
export type { SocketCommand, SocketEvent, WebSocketConstructorLike, WebSocketLike } from './websocket.js';
export type { ErrorCode, IceServerConfig, PeerInfo, SignalPayload } from '../protocol.js';
