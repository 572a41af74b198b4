import { createActor } from 'xstate';
import type { ActorRefFrom, Subscription } from 'xstate';
import { callMachine, callStateOf } from '@parley/core';
import { dataChannelOf } from '@parley/core';
import type { CallPeerOptions, DataChannel, PeerActor, PeerAppEvent, SignalingPort } from '@parley/core';
import { forwardPeerEvents } from '@parley/core/internal';
import { createRealPort } from './wrtc.js';
import type { RealScenarioPort } from './wrtc.js';
import { waitFor } from './wait.js';

// One side of a call over a real signaling connection and a real libwebrtc peer connection:
// the call machine as an app would run it, with the ports it creates and what its peer reported
// kept for the test to assert on.

export type CallLogic = typeof callMachine;
export type CallActor = ActorRefFrom<CallLogic>;

export interface RealCallSide {
  readonly call: CallActor;
  /** Every RTC port the call created (one per `active`), newest last. */
  readonly ports: readonly RealScenarioPort[];
  /** The call's state value after every snapshot, in order (consecutive repeats dropped). */
  readonly states: readonly string[];
  /** What the current peer emitted since it started, with the time it was seen. */
  readonly peerEvents: readonly { readonly at: number; readonly event: PeerAppEvent }[];
  /** The running peer of the `active` state, if any. */
  peer(): PeerActor | undefined;
  /** The handle of the peer's data channel with this label, once it exists. */
  channel(label: string): DataChannel | undefined;
  stop(): void;
}

export interface RealCallOptions {
  readonly signaling: SignalingPort;
  readonly peer: CallPeerOptions;
  /** A call machine with other implementations (e.g. peer delays); default `callMachine`. */
  readonly logic?: CallLogic;
  /** Accept incoming invites at once (the callee side). */
  readonly autoAccept?: boolean;
}

export function startRealCall(options: RealCallOptions): RealCallSide {
  const ports: RealScenarioPort[] = [];
  const states: string[] = [];
  const peerEvents: { at: number; event: PeerAppEvent }[] = [];
  const call = createActor(options.logic ?? callMachine, {
    input: {
      signaling: options.signaling,
      createRtc: () => {
        const port = createRealPort();
        ports.push(port);
        return port;
      },
      peer: options.peer,
    },
  });
  let watchedPeer: PeerActor | undefined;
  let peerSubscription: Subscription | undefined;
  const peerOf = (): PeerActor | undefined => call.getSnapshot().children['peer'];
  const snapshots = call.subscribe((snapshot) => {
    const value = callStateOf(snapshot.value);
    if (states[states.length - 1] !== value) states.push(value);
    if (options.autoAccept === true && snapshot.matches('incoming')) call.send({ type: 'ACCEPT' });
    const peer = peerOf();
    if (peer !== undefined && peer !== watchedPeer) {
      watchedPeer = peer;
      peerSubscription?.unsubscribe();
      peerEvents.length = 0;
      // What the peer emits and its port's reports (tracks, signaling state), as an app hears them.
      peerSubscription = forwardPeerEvents(peer, ports[ports.length - 1]!, (event) => peerEvents.push({ at: Date.now(), event }));
    }
  });
  call.start();
  return {
    call,
    ports,
    states,
    peerEvents,
    peer: peerOf,
    channel: (label) => {
      const actor = peerOf()
        ?.getSnapshot()
        .context.channels.find((channel) => channel.getSnapshot().context.label === label);
      return actor && dataChannelOf(actor);
    },
    stop: () => {
      snapshots.unsubscribe();
      peerSubscription?.unsubscribe();
      call.stop();
      // Stopping the call stops its peer, which closes the port; close again in case the call
      // never reached `active` with this port (close is idempotent, webrtc-pc §4.4.1.9).
      for (const port of ports) port.close();
    },
  };
}

/**
 * Renegotiates an established call: the caller adds an audio transceiver (an offer/answer round,
 * webrtc-pc §4.7.3, through whatever signaling the call uses) and both sides complete it: one more
 * negotiation round each, the callee got the track, both back in `stable`.
 */
export async function renegotiateWithAudio(caller: RealCallSide, callee: RealCallSide, timeoutMs: number): Promise<void> {
  const callerPeer = caller.peer()!;
  const calleePeer = callee.peer()!;
  const roundsBefore = [callerPeer.getSnapshot().context.negotiationRounds, calleePeer.getSnapshot().context.negotiationRounds];
  caller.ports[0]!.pc.addTransceiver('audio');
  await waitFor(
    () =>
      callerPeer.getSnapshot().context.negotiationRounds > roundsBefore[0]! &&
      calleePeer.getSnapshot().context.negotiationRounds > roundsBefore[1]! &&
      callee.peerEvents.some(({ event }) => event.type === 'track') &&
      [callerPeer, calleePeer].every((p) => p.getSnapshot().context.rtc.signalingState === 'stable'),
    'the renegotiation (an audio transceiver) to complete on both sides',
    timeoutMs,
  );
}
