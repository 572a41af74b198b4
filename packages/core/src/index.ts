/**
 * The ports, the peer protocol, the machines, createPeer, createCall and createGroupCall, and the rx and SDP
 * helpers apps use. Imports only xstate and rxjs. Every export is named on purpose: what is not
 * listed here is internal (Parley's own packages reach it through `@parley/core/internal`, which
 * is not a public API and may change in any release).
 *
 * @module @parley/core
 */

export {
  isInvalidStateError,
} from './ports/rtc.js';
export type {
  DataChannelEvent,
  DataChannelInit,
  DataChannelPayload,
  DataChannelPort,
  DataChannelState,
  IceCandidate,
  IceConnectionState,
  IceGatheringState,
  MediaStreamHandle,
  MediaTrackHandle,
  PeerConnectionState,
  IceServer,
  RtcConfiguration,
  RtcErrorName,
  RtcPort,
  RtcPortEvent,
  RtcPortEventType,
  SdpType,
  SessionDescription,
  SignalingState,
} from './ports/rtc.js';
export type {
  SignalingPort,
} from './ports/signaling.js';
export {
  PEER_MESSAGE_KINDS,
  PEER_MESSAGE_LIMITS,
  PeerMessageError,
  isCallControlMessage,
  isGroupMessage,
  isNegotiationMessage,
  parsePeerMessage,
} from './protocol/peer-message.js';
export type {
  AcceptMessage,
  ByeMessage,
  ByeReason,
  CallControlMessage,
  CancelMessage,
  CancelReason,
  CandidateMessage,
  DescriptionMessage,
  GroupFullMessage,
  GroupJoinMessage,
  GroupLeaveMessage,
  GroupMessage,
  GroupPresentMessage,
  InviteMedia,
  InviteMessage,
  NegotiationMessage,
  PeerMessage,
  PeerMessageErrorCode,
  PeerMessageKind,
  PeerMessageParseResult,
  RejectMessage,
  RejectReason,
  WireDescription,
} from './protocol/peer-message.js';
export {
  candidateAddress,
  candidateType,
  filterSdpCandidates,
  keepCandidateAddresses,
} from './sdp.js';
export {
  BufferUntilSubscribed,
  emitted$,
  select$,
  snapshots$,
} from './rx.js';
export type {
  CandidateFilter,
  IceRestartPolicy,
  PeerEndReason,
  PeerFailureReason,
  PeerInput,
  PeerOutput,
} from './machines/peer.types.js';
export {
  negotiationMachine,
} from './machines/negotiation.machine.js';
export type {
  NegotiationContext,
  NegotiationEvent,
  NegotiationInput,
  NegotiationMachine,
  NegotiationNotice,
  NegotiationOperation,
  RemoteSignal,
} from './machines/negotiation.machine.js';
export {
  iceGatheringMachine,
} from './machines/ice-gathering.machine.js';
export type {
  IceGatheringContext,
  IceGatheringEvent,
  IceGatheringInput,
} from './machines/ice-gathering.machine.js';
export {
  connectionMachine,
} from './machines/connection.machine.js';
export type {
  ConnectionContext,
  ConnectionEvent,
  ConnectionFailureReason,
  ConnectionInput,
  ConnectionOutput,
} from './machines/connection.machine.js';
export {
  DEFAULT_HIGH_WATER_MARK,
  DEFAULT_LOW_WATER_MARK,
  channelMessagesOf,
  dataChannelMachine,
} from './machines/data-channel.machine.js';
export type {
  ChannelMessage,
  DataChannelCommand,
  DataChannelContext,
  DataChannelEmitted,
  DataChannelMachineEvent,
  DataChannelMachineInput,
  DataChannelSignal,
} from './machines/data-channel.machine.js';
export {
  DataChannel,
  DataChannelClosedError,
  dataChannelOf,
} from './data-channel.js';
export type {
  WithDataChannelHandle,
} from './data-channel.js';
export {
  DEFAULT_SESSION,
  negotiationOf,
  peerMachine,
} from './machines/peer.machine.js';
export type {
  DataChannelActor,
  PeerActor,
  PeerCommand,
  PeerContext,
  PeerEmitted,
  PortReport,
  PeerEvent,
  PeerMachine,
  PeerNotice,
} from './machines/peer.machine.js';
export {
  MAX_EARLY_SIGNALS,
  callMachine,
} from './machines/call.machine.js';
export type {
  CallContext,
  CallEarlySignalEvent,
  CallEnd,
  CallEndReason,
  CallEndedBy,
  CallEvent,
  CallInput,
  CallPeerOptions,
  CallPresenceEvent,
  CallRemoteEvent,
  CallRole,
  CallUserEvent,
  HeldSignaling,
  RemoteEndReason,
} from './machines/call.machine.js';
export {
  createPeer,
} from './create-peer.js';
export type {
  CreatePeerOptions,
  LivePeerOptions,
  Peer,
  PeerAppEvent,
  PeerDelays,
} from './create-peer.js';
export {
  callStateOf,
  createCall,
} from './create-call.js';
export type {
  Call,
  CallActor,
  CallAppEvent,
  CallConnectionStatus,
  CallDelays,
  CallState,
  CallStatus,
  CreateCallOptions,
} from './create-call.js';
export {
  DEFAULT_MAX_GROUP_MEMBERS,
  MAX_MEMBERSHIP_LENGTH,
  groupMachine,
  memberOfPairActorId,
  pairActorId,
  pairSessionOf,
} from './machines/group.machine.js';
export type {
  GroupActor,
  GroupContext,
  GroupError,
  GroupErrorCode,
  GroupEvent,
  GroupInput,
  GroupMachine,
  GroupPair,
  GroupPeerOptions,
  GroupRoomEvent,
  GroupSignaling,
  GroupUserEvent,
} from './machines/group.machine.js';
export {
  createGroupCall,
  groupStateOf,
} from './create-group-call.js';
export type {
  CreateGroupCallOptions,
  GroupAppEvent,
  GroupCall,
  GroupCallActor,
  GroupDelays,
  GroupMemberStatus,
  GroupState,
  GroupStatus,
} from './create-group-call.js';
export {
  chartDescendants,
  machineChart,
  toMermaid,
} from './diagram.js';
export type {
  ChartState,
  ChartTransition,
  MachineChart,
  MermaidOptions,
} from './diagram.js';
