import type { PeerMessage } from '../protocol/peer-message.js';
import { iceUfragsOf } from '../sdp.js';
import type { ScenarioFaults } from './scenarios.js';
import type { SignalingEnd } from './signaling-pair.js';

// A scenario's signaling faults (duplicated answers, stale answers replayed, descriptions
// overtaken by their candidates) as an `intercept` for `createSignalingPair`. Shared by the
// property tests over the fake network and the real-stack tests of @parley/browser; they differ
// only in when a held description goes on alone (an idle scheduler, or a quiet moment).

/**
 * Applies a scenario's signaling faults (duplicated, stale or reordered messages) to the
 * messages between two peers.
 */
export interface ScenarioFaultInjector {
  /** The pair's `intercept`. */
  intercept(message: PeerMessage, from: SignalingEnd): readonly PeerMessage[];
  /**
   * Takes the descriptions still held back (nothing was sent after them), from both ends or
   * from `from`, for the caller to send again now; they pass `intercept` unchanged then.
   */
  takeHeld(from?: SignalingEnd): { readonly from: SignalingEnd; readonly message: PeerMessage }[];
  /** True while a description is held back. */
  holding(): boolean;
}

/** Options of `createScenarioFaultInjector`. */
export interface ScenarioFaultOptions {
  /** Called when a description is held back from `from` (e.g. to release it after a while). */
  readonly onHold?: (from: SignalingEnd) => void;
}

/** A fault injector for the faults a `NegotiationScenario` asks for. */
export function createScenarioFaultInjector(faults: ScenarioFaults, options: ScenarioFaultOptions = {}): ScenarioFaultInjector {
  const lastAnswer: Record<SignalingEnd, PeerMessage | null> = { a: null, b: null };
  const held: Record<SignalingEnd, PeerMessage | null> = { a: null, b: null };
  const lastUfrag: Record<SignalingEnd, string | null> = { a: null, b: null };
  /** Messages handed back by `takeHeld`: their next pass through `intercept` is not faulted. */
  const released = new Set<PeerMessage>();

  return {
    intercept(message, from) {
      if (released.delete(message)) return [message];
      const out: PeerMessage[] = [];
      const release = (): void => {
        if (held[from]) out.push(held[from]);
        held[from] = null;
      };
      if (message.kind !== 'description') {
        out.push(message);
        release();
        return out;
      }
      if (faults.replayStaleAnswers && lastAnswer[from]) out.push(lastAnswer[from]);
      release();
      // Only descriptions that start a new ICE generation are held: their candidates overtake them.
      const ufrag = iceUfragsOf(message.description.sdp)[0] ?? null;
      const startsGeneration = ufrag !== lastUfrag[from];
      lastUfrag[from] = ufrag;
      if (faults.descriptionsAfterCandidates && startsGeneration) {
        held[from] = message;
        options.onHold?.(from);
      } else {
        out.push(message);
        if (faults.duplicateAnswers && message.description.type === 'answer') out.push(message);
      }
      if (message.description.type === 'answer') lastAnswer[from] = message;
      return out;
    },
    takeHeld(only) {
      const taken: { from: SignalingEnd; message: PeerMessage }[] = [];
      for (const from of only ? [only] : (['a', 'b'] as const)) {
        const message = held[from];
        if (!message) continue;
        held[from] = null;
        released.add(message);
        taken.push({ from, message });
      }
      return taken;
    },
    holding: () => held.a !== null || held.b !== null,
  };
}
