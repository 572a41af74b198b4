/**
 * The hardened signaling server (wire protocol v1), join tokens, TURN REST credentials and the
 * Broker seam for rooms and presence.
 *
 * @module @parley/signaling-ws/server
 */

export {
  createSignalingServer,
  type SignalingServer,
  type SignalingServerOptions,
  type SignalingStats,
} from './server.js';
export { createJoinToken, verifyJoinToken, type JoinTokenCheck } from './auth.js';
export { turnCredentials, DEFAULT_TURN_TTL_SECONDS, type TurnOptions } from './turn.js';
export {
  InMemoryBroker,
  type BroadcastNews,
  type Broker,
  type BrokerJoinResult,
  type Deliver,
  type HeldFrame,
  type JoinOptions,
  type MaybePromise,
  type WireFrame,
} from './broker.js';
export { createRedisBroker, type RedisBroker, type RedisBrokerOptions } from './redis/redis-broker.js';
export { createStaticHandler, type StaticHandler } from './static.js';
export { jsonLineLogger, silentLogger, type Logger, type LogEvent, type LogLevel } from './log.js';
