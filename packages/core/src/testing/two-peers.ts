import { createPeer } from '../create-peer.js';
import type { CreatePeerOptions, Peer, PeerAppEvent } from '../create-peer.js';
import { negotiationOf } from '../machines/peer.machine.js';
import type { RtcPort } from '../ports/rtc.js';
import type { SignalingPort } from '../ports/signaling.js';
import type { NegotiationScenario, ScenarioStep, Side } from './scenarios.js';
import { describeStep } from './scenarios.js';

// Two peers driven through a negotiation scenario, and the invariants every run must end with.
// Used by the property tests over the fake network and, with real ports, by the real-stack
// tests of @parley/browser.

/** A port the scenario can add media to: the fake port, or a real one wrapped with helpers. */
export interface ScenarioPort extends RtcPort {
  addTransceiver(kind: 'audio' | 'video'): unknown;
  getTransceivers(): readonly { readonly mid: string | null }[];
  /** Calls the port refused as illegal in its signaling state (the fake records them). */
  readonly illegalCalls?: readonly { readonly method: string; readonly state: string; readonly detail?: string }[];
}

/** Options of `startTwoPeers`: the scenario, the two RTC ports and the two signaling ports. */
export interface TwoPeersOptions {
  readonly scenario: NegotiationScenario;
  readonly ports: Readonly<Record<Side, ScenarioPort>>;
  readonly signaling: Readonly<Record<Side, SignalingPort>>;
  readonly setConnectivity?: (up: boolean) => void;
  readonly clock?: CreatePeerOptions['clock'];
  /** Extra createPeer options for both sides (delays, candidateFilter, ...). */
  readonly peerOptions?: Omit<Partial<CreatePeerOptions>, 'rtc' | 'signaling' | 'polite'>;
}

/**
 * Two running peers of a scenario, as `startTwoPeers` returns them: apply steps, then check
 * `violations()`.
 */
export interface TwoPeers {
  readonly peers: Readonly<Record<Side, Peer>>;
  /** Sides that closed, and every event each peer reported after its close (must stay empty). */
  readonly closed: ReadonlySet<Side>;
  readonly eventsAfterClose: Readonly<Record<Side, readonly PeerAppEvent[]>>;
  /** Every `error` event the peers reported, as readable lines. */
  readonly errors: readonly string[];
  /** What happened, in order: steps and notable events, for counterexample reports. */
  readonly log: readonly string[];
  applyStep(step: ScenarioStep): void;
  /** The invariants that do not hold now, as sentences (empty when all hold). */
  violations(): string[];
  /** True when every invariant holds: the run can stop waiting. */
  isSettled(): boolean;
  dispose(): void;
}

const SIDES: readonly Side[] = ['A', 'B'];

/**
 * Starts two peers that run a `NegotiationScenario` and watch themselves for violations of the
 * negotiation rules.
 */
export function startTwoPeers(options: TwoPeersOptions): TwoPeers {
  const { scenario, ports, signaling, setConnectivity, clock, peerOptions } = options;
  const closed = new Set<Side>();
  const eventsAfterClose: Record<Side, PeerAppEvent[]> = { A: [], B: [] };
  const errors: string[] = [];
  const log: string[] = [];
  const channelsWanted: Record<Side, number> = { A: 0, B: 0 };

  const makePeer = (side: Side): Peer =>
    createPeer({
      ...peerOptions,
      rtc: ports[side],
      signaling: signaling[side],
      polite: scenario.polite === side,
      session: 'scenario',
      ...(clock ? { clock } : {}),
    });
  const peers: Record<Side, Peer> = { A: makePeer('A'), B: makePeer('B') };

  const subscriptions = SIDES.map((side) =>
    peers[side].events$.subscribe((event) => {
      if (closed.has(side)) eventsAfterClose[side].push(event);
      if (event.type === 'error') {
        const line = `${side}: ${event.operation} failed: ${event.error.name}: ${event.error.message}`;
        errors.push(line);
        log.push(line);
      } else if (event.type === 'notice') {
        log.push(`${side}: ${event.notice} (${event.detail})`);
      } else if (event.type === 'negotiated') {
        log.push(`${side}: negotiation round ${event.round} done${event.iceRestart ? ' (ICE restart)' : ''}`);
      } else if (event.type === 'connectionstatechange') {
        log.push(`${side}: connection ${event.state}`);
      }
    }),
  );

  const applyStep = (step: ScenarioStep): void => {
    log.push(`step: ${describeStep(step)}`);
    switch (step.kind) {
      case 'addTransceiver':
        if (!closed.has(step.side)) ports[step.side].addTransceiver(step.media);
        return;
      case 'addStream':
        // Both tracks in one task, as addTrack(track, stream) for each track of a camera stream.
        if (!closed.has(step.side)) {
          ports[step.side].addTransceiver('audio');
          ports[step.side].addTransceiver('video');
        }
        return;
      case 'createDataChannel':
        if (!closed.has(step.side)) {
          channelsWanted[step.side] += 1;
          peers[step.side].createDataChannel(step.label);
        }
        return;
      case 'restartIce':
        if (!closed.has(step.side)) peers[step.side].restartIce();
        return;
      case 'connectivity':
        setConnectivity?.(step.up);
        return;
      case 'close':
        peers[step.side].close();
        closed.add(step.side);
        return;
    }
  };

  const violations = (): string[] => {
    const found: string[] = [];
    for (const side of SIDES) {
      for (const call of ports[side].illegalCalls ?? []) {
        found.push(`${side} made an illegal call: ${call.method} in ${call.state}${call.detail ? ` (${call.detail})` : ''}`);
      }
      if (eventsAfterClose[side].length > 0) {
        found.push(`${side} reported ${eventsAfterClose[side].length} event(s) after close: ${eventsAfterClose[side].map((e) => e.type).join(', ')}`);
      }
    }
    found.push(...errors.map((line) => `error reported: ${line}`));
    if (closed.size > 0) {
      for (const side of closed) {
        const status = peers[side].actor.getSnapshot().status;
        if (status !== 'done') found.push(`${side} closed but its peer actor is ${status}`);
      }
      return found;
    }
    for (const side of SIDES) {
      const port = ports[side];
      const snapshot = peers[side].actor.getSnapshot();
      if (port.signalingState !== 'stable') found.push(`${side} ends in signaling state ${port.signalingState}`);
      if (port.connectionState !== 'connected') found.push(`${side} ends ${port.connectionState}, not connected`);
      const negotiation = negotiationOf(snapshot);
      if (!negotiation) {
        found.push(`${side} has no negotiation region (peer is ${JSON.stringify(snapshot.value)})`);
      } else {
        if (negotiation.value !== 'stable') found.push(`${side} negotiation is ${JSON.stringify(negotiation.value)}, not stable`);
        if (negotiation.context.inbox.length > 0) found.push(`${side} still has ${negotiation.context.inbox.length} remote signal(s) unprocessed`);
        if (negotiation.context.negotiationNeeded) found.push(`${side} still needs to negotiate`);
      }
      const unnegotiated = port.getTransceivers().filter((t) => t.mid === null).length;
      if (unnegotiated > 0) found.push(`${side} has ${unnegotiated} transceiver(s) never negotiated`);
    }
    const countA = ports.A.getTransceivers().length;
    const countB = ports.B.getTransceivers().length;
    if (countA !== countB) found.push(`transceiver counts differ: A has ${countA}, B has ${countB}`);
    const channels = (side: Side) => peers[side].actor.getSnapshot().context.channels;
    const wanted = channelsWanted.A + channelsWanted.B;
    for (const side of SIDES) {
      const list = channels(side);
      if (list.length !== wanted) found.push(`${side} has ${list.length} data channel(s), expected ${wanted}`);
      const notOpen = list.filter((channel) => !channel.getSnapshot().matches('open')).length;
      if (notOpen > 0) found.push(`${side} has ${notOpen} data channel(s) not open`);
    }
    return found;
  };

  return {
    peers,
    closed,
    eventsAfterClose,
    errors,
    log,
    applyStep,
    violations,
    isSettled: () => violations().length === 0,
    dispose: () => {
      for (const subscription of subscriptions) subscription.unsubscribe();
      for (const side of SIDES) if (!closed.has(side)) peers[side].close();
    },
  };
}
