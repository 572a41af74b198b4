import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createActor, setup } from 'xstate';
import type { ActorRefFrom, AnyEventObject } from 'xstate';
import {
  iceGatheringMachine,
  type IceGatheringEvent,
  type IceGatheringInput,
  type IceGatheringParentEvent,
} from '../src/machines/ice-gathering.machine.js';
import type { IceCandidate } from '../src/ports/rtc.js';

/** Runs the machine as the child of a parent that records what it is sent. */
function start(input: IceGatheringInput = {}) {
  const toParent: IceGatheringParentEvent[] = [];
  const parent = setup({ actors: { gathering: iceGatheringMachine } }).createMachine({
    invoke: { id: 'gathering', src: 'gathering', input },
    on: {
      '*': {
        actions: ({ event }: { event: AnyEventObject }) => {
          if (event.type.startsWith('ICE.')) toParent.push(event as IceGatheringParentEvent);
        },
      },
    },
  });
  const parentActor = createActor(parent).start();
  const child = parentActor.getSnapshot().children.gathering as ActorRefFrom<typeof iceGatheringMachine>;
  const send = (...events: IceGatheringEvent[]) => events.forEach((event) => child.send(event));
  return { child, send, toParent, snapshot: () => child.getSnapshot() };
}

const candidate = (n: number, ufrag = 'u1'): IceCandidate => ({
  candidate: `candidate:${n} 1 udp ${2000 - n} 127.0.0.1 ${5000 + n} typ host`,
  sdpMid: '0',
  sdpMLineIndex: 0,
  usernameFragment: ufrag,
});
const gatheringState = (state: 'new' | 'gathering' | 'complete'): IceGatheringEvent => ({
  type: 'RTC.ICE_GATHERING_STATE',
  state,
});
const found = (c: IceCandidate | null): IceGatheringEvent => ({ type: 'RTC.ICE_CANDIDATE', candidate: c });
const sectionEnd: IceGatheringEvent = found({ candidate: '', sdpMid: '0', sdpMLineIndex: 0 });

describe('iceGatheringMachine', () => {
  it('starts in new with trickle on by default and nothing gathered', () => {
    const { snapshot, toParent } = start();
    expect(snapshot().value).toBe('new');
    expect(snapshot().context).toEqual({ trickle: true, generation: 0, candidates: [] });
    expect(toParent).toEqual([]);
  });

  it('trickles each candidate as found, then end-of-candidates, then the generation’s end (nothing kept)', () => {
    const { send, snapshot, toParent } = start();
    send(gatheringState('gathering'));
    expect(snapshot().value).toBe('gathering');
    expect(snapshot().context.generation).toBe(1);

    send(found(candidate(1)));
    expect(toParent).toEqual([{ type: 'ICE.LOCAL_CANDIDATE', candidate: candidate(1) }]);
    send(found(candidate(2)));
    // Handed over as found: a trickling machine keeps none of them.
    expect(snapshot().context.candidates).toEqual([]);

    send(found(null));
    expect(snapshot().value).toBe('complete');
    expect(toParent).toEqual([
      { type: 'ICE.LOCAL_CANDIDATE', candidate: candidate(1) },
      { type: 'ICE.LOCAL_CANDIDATE', candidate: candidate(2) },
      { type: 'ICE.LOCAL_CANDIDATE', candidate: null },
      { type: 'ICE.GATHERING_COMPLETE', candidates: [] },
    ]);
  });

  it('completes on the "complete" state when it comes before the null candidate, and forwards end-of-candidates once', () => {
    const { send, snapshot, toParent } = start();
    send(gatheringState('gathering'), found(candidate(1)), gatheringState('complete'));
    expect(snapshot().value).toBe('complete');
    send(found(null));
    expect(snapshot().value).toBe('complete');
    expect(toParent.filter((e) => e.type === 'ICE.LOCAL_CANDIDATE' && e.candidate === null)).toHaveLength(1);
    expect(toParent.filter((e) => e.type === 'ICE.GATHERING_COMPLETE')).toHaveLength(1);
  });

  it('completes on the null candidate when it comes before the "complete" state, and forwards end-of-candidates once', () => {
    const { send, snapshot, toParent } = start();
    send(gatheringState('gathering'), found(candidate(1)), found(null), gatheringState('complete'));
    expect(snapshot().value).toBe('complete');
    expect(snapshot().context.generation).toBe(1);
    expect(toParent.filter((e) => e.type === 'ICE.LOCAL_CANDIDATE' && e.candidate === null)).toHaveLength(1);
    expect(toParent.filter((e) => e.type === 'ICE.GATHERING_COMPLETE')).toHaveLength(1);
  });

  it('starts gathering on a candidate that arrives before the "gathering" state event', () => {
    const { send, snapshot, toParent } = start();
    send(found(candidate(1)));
    expect(snapshot().value).toBe('gathering');
    expect(snapshot().context.generation).toBe(1);
    expect(toParent).toEqual([{ type: 'ICE.LOCAL_CANDIDATE', candidate: candidate(1) }]);

    // The late state event belongs to the same generation: nothing is reset.
    send(gatheringState('gathering'));
    expect(snapshot().context.generation).toBe(1);

    // Without trickle, the same order collects the candidate into that generation.
    const collecting = start({ trickle: false });
    collecting.send(found(candidate(1)), gatheringState('gathering'));
    expect(collecting.snapshot().context).toMatchObject({ generation: 1, candidates: [candidate(1)] });
  });

  it('goes straight to complete when gathering ends before any candidate (new -> complete)', () => {
    const { send, snapshot, toParent } = start();
    send(found(null));
    expect(snapshot().value).toBe('complete');
    expect(snapshot().context.generation).toBe(1);
    expect(toParent).toEqual([
      { type: 'ICE.LOCAL_CANDIDATE', candidate: null },
      { type: 'ICE.GATHERING_COMPLETE', candidates: [] },
    ]);
  });

  it('also accepts the "complete" state event while new', () => {
    const { send, snapshot, toParent } = start({ trickle: false });
    send(gatheringState('complete'));
    expect(snapshot().value).toBe('complete');
    expect(toParent).toEqual([{ type: 'ICE.GATHERING_COMPLETE', candidates: [] }]);
  });

  it('without trickle only collects, and hands over every candidate once gathering completes', () => {
    const { send, snapshot, toParent } = start({ trickle: false });
    expect(snapshot().context.trickle).toBe(false);
    send(gatheringState('gathering'), found(candidate(1)), found(candidate(2)));
    expect(toParent).toEqual([]);
    send(gatheringState('complete'), found(null));
    expect(toParent).toEqual([{ type: 'ICE.GATHERING_COMPLETE', candidates: [candidate(1), candidate(2)] }]);
  });

  it('ignores the empty per-section end-of-candidates marker (not a candidate)', () => {
    const { send, snapshot, toParent } = start();
    send(sectionEnd);
    expect(snapshot().value).toBe('new');
    send(gatheringState('gathering'), found(candidate(1)), sectionEnd);
    expect(snapshot().value).toBe('gathering');
    send(found(null), sectionEnd);
    expect(snapshot().value).toBe('complete');
    expect(toParent.map((e) => e.type)).toEqual(['ICE.LOCAL_CANDIDATE', 'ICE.LOCAL_CANDIDATE', 'ICE.GATHERING_COMPLETE']);
  });

  it('starts a new generation on ICE restart ("gathering" again after complete)', () => {
    const { send, snapshot, toParent } = start();
    send(gatheringState('gathering'), found(candidate(1)), found(null), gatheringState('complete'));
    toParent.length = 0;

    send(gatheringState('gathering'));
    expect(snapshot().value).toBe('gathering');
    expect(snapshot().context).toMatchObject({ generation: 2, candidates: [] });

    send(found(candidate(7, 'u2')), gatheringState('complete'), found(null));
    expect(snapshot().value).toBe('complete');
    expect(toParent).toEqual([
      { type: 'ICE.LOCAL_CANDIDATE', candidate: candidate(7, 'u2') },
      { type: 'ICE.LOCAL_CANDIDATE', candidate: null },
      { type: 'ICE.GATHERING_COMPLETE', candidates: [] },
    ]);
  });

  it('starts a new generation when a restart candidate comes before the "gathering" state event', () => {
    const { send, snapshot } = start({ trickle: false });
    send(gatheringState('gathering'), found(candidate(1)), found(null));
    send(found(candidate(2, 'u2')));
    expect(snapshot().value).toBe('gathering');
    expect(snapshot().context).toMatchObject({ generation: 2, candidates: [candidate(2, 'u2')] });
    send(gatheringState('gathering'));
    expect(snapshot().context.generation).toBe(2);
  });

  it('ignores a "new" gathering state report', () => {
    const { send, snapshot } = start({ trickle: false });
    send(gatheringState('gathering'), found(candidate(1)), gatheringState('new'));
    expect(snapshot().value).toBe('gathering');
    expect(snapshot().context.candidates).toEqual([candidate(1)]);
  });

  it.each([
    ['new', [] as IceGatheringEvent[]],
    ['gathering', [gatheringState('gathering')]],
    ['complete', [gatheringState('gathering'), found(null)]],
  ])('closes from %s (final)', (from, events) => {
    const { send, snapshot } = start();
    send(...events);
    expect(snapshot().value).toBe(from);
    send({ type: 'CLOSE' });
    expect(snapshot().value).toBe('closed');
    expect(snapshot().status).toBe('done');
  });

  it('property: any engine event order keeps the hand-off consistent', () => {
    const event = fc.oneof(
      fc.constantFrom('new', 'gathering', 'complete').map((state) => gatheringState(state)),
      fc.nat(1000).map((n) => found(candidate(n))),
      fc.constant(found(null)),
      fc.constant(sectionEnd),
    );
    fc.assert(
      fc.property(fc.boolean(), fc.array(event, { maxLength: 40 }), (trickle, events) => {
        const { send, toParent, snapshot } = start({ trickle });
        send(...events);
        const realCandidates = events.flatMap((e) =>
          e.type === 'RTC.ICE_CANDIDATE' && e.candidate !== null && e.candidate.candidate !== '' ? [e.candidate] : [],
        );
        const trickled = toParent.flatMap((e) => (e.type === 'ICE.LOCAL_CANDIDATE' ? [e.candidate] : []));
        if (trickle) {
          // Every real candidate is forwarded once, in order, as soon as it is found.
          expect(trickled.filter((c) => c !== null)).toEqual(realCandidates);
        } else {
          expect(trickled).toEqual([]);
        }
        const completes = toParent.flatMap((e) => (e.type === 'ICE.GATHERING_COMPLETE' ? [e.candidates] : []));
        if (trickle) {
          // Trickle: nothing is collected, and each generation ends with exactly one
          // end-of-candidates, right before its GATHERING_COMPLETE.
          expect(snapshot().context.candidates).toEqual([]);
          expect(completes.flat()).toEqual([]);
          toParent.forEach((e, i) => {
            if (e.type === 'ICE.LOCAL_CANDIDATE' && e.candidate === null) {
              expect(toParent[i + 1]?.type).toBe('ICE.GATHERING_COMPLETE');
            }
            if (e.type === 'ICE.GATHERING_COMPLETE') {
              expect(toParent[i - 1]).toEqual({ type: 'ICE.LOCAL_CANDIDATE', candidate: null });
            }
          });
        } else {
          // Without trickle, generations partition the candidates: what the GATHERING_COMPLETEs
          // carried, plus what the generation in progress holds, is every real candidate, in order.
          const inProgress = snapshot().value === 'gathering' ? snapshot().context.candidates : [];
          expect([...completes.flat(), ...inProgress]).toEqual(realCandidates);
        }
      }),
    );
  });
});
