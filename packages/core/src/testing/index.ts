/**
 * Fakes and fast-check helpers for negotiation tests.
 *
 * @module @parley/core/testing
 */

export { createFakeNetwork, nextSignalingState } from './fake-network.js';
export type {
  FakeDataChannel,
  FakeLocalTrack,
  FakeNetwork,
  FakeNetworkOptions,
  FakePortConfig,
  FakeRtcPort,
  FakeScheduler,
  FakeTrackHandle,
  FakeTransceiver,
  IllegalCall,
  MediaKind,
  NegotiationNeededTiming,
  RtpTransceiverDirection,
} from './fake-network.js';
export { FakeRtcError } from './fake-sdp.js';
export { createSignalingPair } from './signaling-pair.js';
export type { FakeSignalingPort, SignalingEnd, SignalingPairOptions } from './signaling-pair.js';
export * from './scenarios.js';
export { createScenarioFaultInjector } from './scenario-faults.js';
export type { ScenarioFaultInjector, ScenarioFaultOptions } from './scenario-faults.js';
export { startTwoPeers } from './two-peers.js';
export type { ScenarioPort, TwoPeers, TwoPeersOptions } from './two-peers.js';
export { createFakeRoom } from './fake-room.js';
export type { FakeRoom, FakeRoomMember, FakeRoomOptions } from './fake-room.js';
export { addGroupMember, meshViolations } from './group-members.js';
export type { GroupMember, GroupMemberOptions } from './group-members.js';
