import { keepCandidateAddresses } from '@parley/core';
import type { CandidateFilter } from '@parley/core';

/**
 * A candidate filter that keeps only 127.0.0.1 candidates, trickled and in SDP, for tests and
 * local demos. It limits what is signaled, not what the engine sends: libwebrtc still checks
 * from its other interfaces, and the far side may answer them as peer-reflexive. For strictly
 * loopback traffic, run in a network namespace with only `lo` (as `npm test` does on Linux).
 */
export const keepLoopbackCandidates: CandidateFilter = keepCandidateAddresses('127.0.0.1');

/** RTCConfiguration for a loopback-only connection: no STUN/TURN servers at all. */
export function loopbackOnly(configuration: RTCConfiguration = {}): RTCConfiguration {
  return { ...configuration, iceServers: [] };
}
