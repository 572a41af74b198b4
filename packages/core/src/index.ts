// @parley/core: ports, peer protocol, machines and rx helpers. Imports only xstate and rxjs.
export * from './ports/rtc.js';
export * from './ports/signaling.js';
export * from './protocol/peer-message.js';
export * from './sdp.js';
export * from './rx.js';
export * from './machines/peer.types.js';
export * from './machines/negotiation.machine.js';
export * from './machines/ice-gathering.machine.js';
export * from './machines/connection.machine.js';
export * from './machines/data-channel.machine.js';
export * from './data-channel.js';
export * from './machines/peer.machine.js';
export * from './machines/call.machine.js';
export * from './create-peer.js';
export * from './create-call.js';
export * from './diagram.js';
