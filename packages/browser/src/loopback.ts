import { keepCandidateAddresses } from '@parley/core';
import type { CandidateFilter } from '@parley/core';

/**
 * A candidate filter that keeps only 127.0.0.1 candidates, trickled and in SDP: for tests and
 * local demos that must never send to the machine's other interfaces.
 */
export const keepLoopbackCandidates: CandidateFilter = keepCandidateAddresses('127.0.0.1');

/** RTCConfiguration for a loopback-only connection: no STUN/TURN servers at all. */
export function loopbackOnly(configuration: RTCConfiguration = {}): RTCConfiguration {
  return { ...configuration, iceServers: [] };
}
