import { describe, expect, it } from 'vitest';
import { connectionMachine } from '../src/machines/connection.machine.js';
import { iceGatheringMachine } from '../src/machines/ice-gathering.machine.js';
import { negotiationMachine } from '../src/machines/negotiation.machine.js';
import { PEER_REPORT_ACTIONS, peerMachine } from '../src/machines/peer.machine.js';

// The peer machine runs the negotiation, ICE gathering and connection machines as parallel
// regions and carries their implementations in one setup: a name two regions share would
// silently make one region run the other's guard, action or delay. Only the reports to a parent
// (PEER_REPORT_ACTIONS) are meant to be replaced, by the peer's own.

const REGIONS = { negotiation: negotiationMachine, iceGathering: iceGatheringMachine, connection: connectionMachine };
type Kind = 'actions' | 'guards' | 'delays';
const namesOf = (machine: { implementations: Record<Kind, object> }, kind: Kind): string[] => Object.keys(machine.implementations[kind]);

describe('peer regions', () => {
  it.each(['actions', 'guards', 'delays'] as const)('no two regions share a name among their %s', (kind) => {
    const owners = new Map<string, string[]>();
    for (const [region, machine] of Object.entries(REGIONS)) {
      for (const name of namesOf(machine, kind)) owners.set(name, [...(owners.get(name) ?? []), region]);
    }
    expect([...owners.entries()].filter(([, regions]) => regions.length > 1)).toEqual([]);
  });

  it("the peer's own actions replace only the regions' reports to a parent", () => {
    const peer = peerMachine.implementations.actions as Record<string, unknown>;
    const replaced = Object.values(REGIONS).flatMap((machine) =>
      Object.entries(machine.implementations.actions as Record<string, unknown>)
        .filter(([name, action]) => peer[name] !== action)
        .map(([name]) => name),
    );
    expect(replaced.sort()).toEqual([...PEER_REPORT_ACTIONS].sort());
  });

  it("every region's guard and delay is the peer's", () => {
    for (const machine of Object.values(REGIONS)) {
      for (const kind of ['guards', 'delays'] as const) {
        const own = machine.implementations[kind] as Record<string, unknown>;
        const peer = peerMachine.implementations[kind] as Record<string, unknown>;
        for (const [name, implementation] of Object.entries(own)) expect({ name, same: peer[name] === implementation }).toEqual({ name, same: true });
      }
    }
  });
});
