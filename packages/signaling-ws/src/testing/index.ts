/**
 * Helpers for tests, benchmarks and local clusters: a real `redis-server` on a free loopback
 * port, `parley-signaling` nodes as child processes, a round-robin TCP load balancer, and a whole
 * local cluster of them.
 *
 * @module @parley/signaling-ws/testing
 */

export { startRedisServer, freeLoopbackPort, type RedisServer, type RedisServerOptions } from './redis-server.js';
export { startSignalingNode, type SignalingNode, type SignalingNodeOptions, type NodeLogLine, type HttpStatus } from './signaling-node.js';
export { startLoadBalancer, type LoadBalancer, type LoadBalancerOptions } from './load-balancer.js';
export { startSignalingCluster, type SignalingCluster, type SignalingClusterOptions } from './cluster.js';
