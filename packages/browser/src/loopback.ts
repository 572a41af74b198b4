import { keepCandidateAddresses } from '@parley/core';
import type { CandidateFilter } from '@parley/core';
import type { RtcConfigurationLike } from './rtc-types.js';

/**
 * A candidate filter that keeps only 127.0.0.1 candidates, trickled and in SDP, for tests and
 * local demos. It limits what is signaled, not what the engine sends: libwebrtc still checks
 * from its other interfaces, and the far side may answer them as peer-reflexive. For strictly
 * loopback traffic, run in a network namespace with only `lo` (as `npm test` does on Linux).
 */
export const keepLoopbackCandidates: CandidateFilter = keepCandidateAddresses('127.0.0.1');

/**
 * RTCConfiguration for a loopback-only connection: no STUN/TURN servers at all. Any other member
 * of `configuration` is kept (the result has the type of what you passed).
 */
export function loopbackOnly(): { iceServers: never[] };
export function loopbackOnly<C extends RtcConfigurationLike>(configuration: C): C & { iceServers: never[] };
export function loopbackOnly(configuration: RTCConfiguration = {}): RTCConfiguration {
  return { ...configuration, iceServers: [] };
}
