// @parley/core: ports, peer protocol, machines and rx helpers. Imports only xstate and rxjs.
export * from './ports/rtc.js';
export * from './ports/signaling.js';
export * from './protocol/peer-message.js';
