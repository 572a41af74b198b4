/**
 * Helpers for tests, benchmarks and local clusters: a real `redis-server` on a free loopback port.
 *
 * @module @parley/signaling-ws/testing
 */

export { startRedisServer, freeLoopbackPort, type RedisServer, type RedisServerOptions } from './redis-server.js';
