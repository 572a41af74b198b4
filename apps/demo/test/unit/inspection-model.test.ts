import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, sendParent, sendTo, setup } from 'xstate';
import { machineChart } from '@parley/core';
import { InspectionModel, litStates } from '../../src/inspection-model.js';
import type { InspectedActor } from '../../src/inspection-model.js';

// The live view's model fed by real xstate actors through their `inspect` option: which actors
// it lists and under whom, which states it lights, which events it lists, and its bounds.

const light = setup({}).createMachine({
  id: 'light',
  initial: 'off',
  states: {
    off: { on: { SWITCH: 'on' } },
    on: { on: { SWITCH: 'off', BREAK: 'broken' } },
    broken: { type: 'final' },
  },
});

/** A parent invoking a child machine and a promise, with a parallel state. */
const room = setup({
  actors: { light, measure: fromPromise<number>(() => new Promise<number>(() => undefined)) },
}).createMachine({
  id: 'room',
  initial: 'empty',
  states: {
    empty: { on: { ENTER: 'occupied' } },
    occupied: {
      type: 'parallel',
      invoke: [
        { id: 'lamp', src: 'light' },
        { src: 'measure' },
      ],
      on: {
        FLIP: { actions: sendTo('lamp', { type: 'SWITCH' }) },
        LEAVE: 'empty',
        'xstate.done.actor.lamp': 'dark',
      },
      states: {
        door: { initial: 'open', states: { open: { on: { CLOSE: 'shut' } }, shut: {} } },
        blinds: { initial: 'up', states: { up: {}, down: {} } },
      },
    },
    dark: {},
  },
});

function actorCalled(model: InspectionModel, label: string): InspectedActor {
  const found = model.actors().find((entry) => entry.actor.label === label)?.actor;
  if (!found) throw new Error(`no actor ${label} in ${model.actors().map((entry) => entry.actor.label).join(', ')}`);
  return found;
}

describe('litStates', () => {
  it('names the states of a snapshot value with their ancestors, parallel regions included', () => {
    const chart = machineChart(room);
    expect([...litStates(chart.root, 'empty')]).toEqual(['room.empty']);
    expect([...litStates(chart.root, { occupied: { door: 'shut', blinds: 'up' } })].sort()).toEqual([
      'room.occupied',
      'room.occupied.blinds',
      'room.occupied.blinds.up',
      'room.occupied.door',
      'room.occupied.door.shut',
    ]);
    expect([...litStates(chart.root, { nowhere: 'at-all' })]).toEqual([]);
  });
});

describe('InspectionModel', () => {
  it('lists each actor under the one that started it, machines with their chart, and lights their states', () => {
    const model = new InspectionModel();
    const actor = createActor(room, { inspect: model.inspector('the room') }).start();
    expect(actorCalled(model, 'the room').states).toEqual(['empty']);

    actor.send({ type: 'ENTER' });
    actor.send({ type: 'CLOSE' });
    const tree = model.actors().map(({ actor: inspected, depth }) => [inspected.label, depth, inspected.chart?.id ?? null]);
    expect(tree).toEqual([
      ['the room', 0, 'room'],
      ['lamp', 1, 'light'],
      ['measure', 1, null],
    ]);
    const parent = actorCalled(model, 'the room');
    expect(parent.states).toEqual(['occupied.door.shut', 'occupied.blinds.up']);
    expect([...parent.lit]).toEqual(expect.arrayContaining(['room.occupied', 'room.occupied.door.shut', 'room.occupied.blinds.up']));
    expect(parent.lit.has('room.empty')).toBe(false);
    expect([...actorCalled(model, 'lamp').lit]).toEqual(['light.off']);

    actor.send({ type: 'FLIP' });
    expect([...actorCalled(model, 'lamp').lit]).toEqual(['light.on']);
    actor.stop();
  });

  it('lists the events each actor received, with the sender and the states they led to', () => {
    const model = new InspectionModel();
    const actor = createActor(room, { inspect: model.inspector('the room') }).start();
    actor.send({ type: 'ENTER' });
    actor.send({ type: 'FLIP' });
    actor.send({ type: 'UNKNOWN' });

    const own = actorCalled(model, 'the room').events.map((event) => [event.type, event.from, event.to]);
    expect(own).toEqual([
      ['xstate.init', null, 'empty'],
      ['ENTER', null, 'occupied.door.open, occupied.blinds.up'],
      ['FLIP', null, null],
      ['UNKNOWN', null, null],
    ]);
    expect(actorCalled(model, 'the room').changes.map((event) => [event.type, event.to])).toEqual([
      ['xstate.init', 'empty'],
      ['ENTER', 'occupied.door.open, occupied.blinds.up'],
    ]);
    const lamp = actorCalled(model, 'lamp').events.map((event) => [event.type, event.from, event.to]);
    expect(lamp).toEqual([
      ['xstate.init', 'the room', 'off'],
      ['SWITCH', 'the room', 'on'],
    ]);
    // The stream of all actors, newest first, in order of arrival.
    const stream = model.events();
    expect(stream[0]).toMatchObject({ actor: 'the room', type: 'UNKNOWN' });
    expect(stream.map((event) => event.seq)).toEqual([...stream.map((event) => event.seq)].sort((a, b) => b - a));
    expect(stream.map((event) => `${event.actor}:${event.type}`)).toEqual(expect.arrayContaining(['lamp:SWITCH', 'the room:ENTER']));
    actor.stop();
  });

  it('keeps the last events only, per actor and over all actors', () => {
    const model = new InspectionModel({ maxEvents: 5, maxEventsPerActor: 3 });
    const actor = createActor(light, { inspect: model.inspector() }).start();
    for (let n = 0; n < 10; n++) actor.send({ type: 'SWITCH' });
    actor.send({ type: 'NOISE' });

    const inspected = actorCalled(model, 'light');
    expect(inspected.events.map((event) => event.type)).toEqual(['SWITCH', 'SWITCH', 'NOISE']);
    // The events that moved it: the last three SWITCHes (NOISE moved nothing).
    expect(inspected.changes.map((event) => [event.type, event.to])).toEqual([
      ['SWITCH', 'off'],
      ['SWITCH', 'on'],
      ['SWITCH', 'off'],
    ]);
    expect(inspected.eventCount).toBe(12); // xstate.init, ten SWITCH, NOISE
    expect(model.events()).toHaveLength(5);
    expect(model.events()[0]?.type).toBe('NOISE');
    expect(inspected.states).toEqual(['off']);
    actor.stop();
  });

  it('marks ended machines, forgets ended promises at once and ended machines beyond the bound', () => {
    const model = new InspectionModel({ maxEndedMachines: 1 });
    const actor = createActor(room, { inspect: model.inspector('the room') }).start();
    actor.send({ type: 'ENTER' });
    const firstLamp = actorCalled(model, 'lamp');
    actor.send({ type: 'LEAVE' }); // stops the lamp and the promise
    expect(firstLamp.status).toBe('stopped');
    expect(model.actors().map((entry) => entry.actor.label)).toEqual(['the room', 'lamp']);

    actor.send({ type: 'ENTER' });
    actor.send({ type: 'FLIP' });
    const secondLamp = model.actors().find((entry) => entry.actor.label === 'lamp' && entry.actor.status === 'active')?.actor;
    expect(secondLamp?.key).not.toBe(firstLamp.key);
    expect(secondLamp).toBeDefined();
    actor.getSnapshot().children['lamp']?.send({ type: 'BREAK' }); // the lamp reaches its final state
    expect(model.actors().find((entry) => entry.actor.key === secondLamp?.key)?.actor.status).toBe('done');
    // The parent moved on when its child finished, and only one ended machine is kept: the newest.
    expect(actorCalled(model, 'the room').states).toEqual(['dark']);
    expect(model.actors().map((entry) => [entry.actor.label, entry.actor.key])).toEqual([
      ['the room', 1],
      ['lamp', secondLamp?.key],
    ]);
    actor.stop();
    expect(actorCalled(model, 'the room').status).toBe('stopped');
  });

  it('names roots by their label, else their machine id; children sent from a child name their sender', () => {
    const child = setup({}).createMachine({ id: 'child', entry: sendParent({ type: 'HELLO' }) });
    const parent = setup({ actors: { child } }).createMachine({ id: 'parent', invoke: { src: 'child' }, on: { HELLO: {} } });
    const model = new InspectionModel();
    const actor = createActor(parent, { inspect: model.inspector() }).start();
    expect(model.actors().map((entry) => entry.actor.label)).toEqual(['parent', 'child']);
    expect(actorCalled(model, 'parent').events.map((event) => [event.type, event.from])).toEqual([
      ['xstate.init', null],
      ['HELLO', 'child'],
    ]);
    actor.stop();
  });

  it('names the states an event led to even when other events arrived before its snapshot', () => {
    // The child greets its parent while the parent is still starting: the parent receives HELLO
    // before the snapshot of its own xstate.init.
    const child = setup({}).createMachine({ id: 'child', entry: sendParent({ type: 'HELLO' }) });
    const parent = setup({ actors: { child } }).createMachine({
      id: 'parent',
      initial: 'waiting',
      invoke: { src: 'child' },
      states: { waiting: { on: { HELLO: 'greeted' } }, greeted: {} },
    });
    const model = new InspectionModel();
    const actor = createActor(parent, { inspect: model.inspector() }).start();
    const changes = actorCalled(model, 'parent').changes.map((event) => [event.type, event.to]);
    expect(changes).toEqual([
      ['xstate.init', 'waiting'],
      ['HELLO', 'greeted'],
    ]);
    actor.stop();
  });

  it('tells its subscribers after each change', () => {
    const model = new InspectionModel();
    let changes = 0;
    const unsubscribe = model.subscribe(() => (changes += 1));
    const actor = createActor(light, { inspect: model.inspector() }).start();
    const afterStart = changes;
    expect(afterStart).toBeGreaterThan(0);
    actor.send({ type: 'SWITCH' });
    expect(changes).toBeGreaterThan(afterStart);
    unsubscribe();
    const before = changes;
    actor.send({ type: 'SWITCH' });
    expect(changes).toBe(before);
    actor.stop();
  });
});
