// The machines drawn in docs/machines.md, in document order. `scripts/diagrams.mjs` writes the
// document from this list and packages/core/test/diagram.test.ts checks the committed file
// against it, so the two cannot drift. Machines come from the built packages (`dist`): build
// first (`npm run diagrams` and `npm test` do).
//
// To add a machine: import it below from its package and add an entry (`name` is the exported
// name). A machine that is not exported, or not built, fails the import loudly.
import {
  callMachine,
  connectionMachine,
  dataChannelMachine,
  groupMachine,
  iceGatheringMachine,
  negotiationMachine,
  peerMachine,
} from '@parley/core';
import { signalingClientMachine } from '@parley/signaling-ws/client';

/** @type {readonly import('@parley/core/internal').MachineDocumentEntry[]} */
export const machines = [
  {
    name: 'callMachine',
    title: 'Call',
    summary:
      'Session control between caller and callee: invite, accept, reject or busy, cancel, hangup and ' +
      'timeouts, each with a reason. The caller is the impolite peer, the callee the polite one; ' +
      '`active` runs a peer.',
    machine: callMachine,
  },
  {
    name: 'groupMachine',
    title: 'Group',
    summary:
      'A group call: membership (join, answers, leave, presence, the size cap) and one spawned peer ' +
      'per other member in the call; the member with the smaller id of each pair offers.',
    machine: groupMachine,
  },
  {
    name: 'peerMachine',
    title: 'Peer',
    summary:
      'One peer connection over the RTC port and the signaling port given in its input: one machine ' +
      'with the negotiation, ICE gathering and connection machines (each drawn alone below) as ' +
      'parallel regions, and a spawned actor per data channel.',
    machine: peerMachine,
  },
  {
    name: 'negotiationMachine',
    title: 'Negotiation',
    summary:
      'Perfect negotiation (W3C webrtc-pc §10.7) as a statechart: offers, answers, glare, rollback, ' +
      'early candidates and ICE restarts, through one ordered inbox.',
    machine: negotiationMachine,
  },
  {
    name: 'iceGatheringMachine',
    title: 'ICE gathering',
    summary:
      'Local candidate gathering, again on each ICE restart: trickled as found (default), or the ' +
      'description sent once gathering completes.',
    machine: iceGatheringMachine,
  },
  {
    name: 'connectionMachine',
    title: 'Connection',
    summary:
      'Mirrors `connectionState` and owns the recovery policy: ICE restarts with backoff after a long ' +
      'disconnection or a failure, up to a limit, then a final failure with a reason.',
    machine: connectionMachine,
  },
  {
    name: 'dataChannelMachine',
    title: 'Data channel',
    summary: 'One data channel from connecting to closed, with a send queue under backpressure.',
    machine: dataChannelMachine,
  },
  {
    name: 'signalingClientMachine',
    title: 'Signaling client',
    summary:
      'The WebSocket signaling client (`@parley/signaling-ws/client`): joins a room, reconnects with ' +
      'backoff and resumes the same identity, queueing outgoing messages meanwhile.',
    machine: signalingClientMachine,
  },
];
