// @parley/core/internal: helpers Parley's own packages, tests and tools share. NOT a public API:
// anything here may change or go in any release, without a major version. Apps use
// `@parley/core` and `@parley/core/testing`.
export {
  iceUfragsOf,
  midsOf,
  remoteCandidateFate,
} from './sdp.js';
export type {
  RemoteCandidateFate,
} from './sdp.js';
export type {
  NegotiationParentEvent,
} from './machines/negotiation.machine.js';
export type {
  IceGatheringParentEvent,
} from './machines/ice-gathering.machine.js';
export {
  iceRestartBackoffMs,
} from './machines/connection.machine.js';
export type {
  ConnectionParentEvent,
} from './machines/connection.machine.js';
export {
  fitsUnderHighWaterMark,
  lowThresholdFor,
  payloadByteLength,
} from './machines/data-channel.machine.js';
export {
  randomSessionId,
} from './machines/call.machine.js';
export {
  createDataChannelOn,
  forwardPeerEvents,
  peerMachineWithDelays,
  setIceServers,
} from './create-peer.js';
export {
  withDataChannelHandle,
} from './data-channel.js';
export {
  connectionStatusOf,
  sameConnection,
} from './create-call.js';
export {
  renderMachinesDocument,
} from './diagram.js';
export type {
  MachineDocumentEntry,
} from './diagram.js';
