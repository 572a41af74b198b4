// The live machine view (`?inspect=local`, or "Machines" in the state panel): every machine the
// page runs, drawn from its own definition as nested boxes (compound states hold their children,
// parallel regions side by side), the states it is in lit, the transitions it can take from them,
// and the events it received; then the last events of all machines. It needs no network: it is
// drawn from an InspectionModel, which xstate's inspection events feed.
import type { ChartState, ChartTransition, MachineChart } from '@parley/core';
import { chartDescendants } from '@parley/core';
import { h } from './dom.js';
import type { ActorInTree, InspectedActor, InspectionModel, SeenEvent } from './inspection-model.js';
import './machine-view.css';

/** One machine's card, built once from its chart; rendering only moves the lights and lists. */
class MachineCard {
  readonly element: HTMLElement;
  private readonly stateElements = new Map<string, HTMLElement>();
  private readonly path: HTMLElement;
  private readonly status: HTMLElement;
  private readonly states: HTMLElement;
  private readonly invoked: HTMLElement;
  private readonly events: HTMLOListElement;
  private readonly changes: HTMLOListElement;
  private lit: ReadonlySet<string> = new Set();
  private lastEventSeq = 0;
  private lastChangeSeq = 0;

  constructor(chart: MachineChart, actor: InspectedActor) {
    this.path = h('span', { class: 'mv-path' });
    this.status = h('span', { class: 'mv-status', 'data-testid': 'machine-status' });
    this.states = h('code', { class: 'mv-now', 'data-testid': 'machine-states' });
    this.invoked = h('p', { class: 'mv-invoked muted small', 'data-testid': 'machine-invoked' });
    this.events = h('ol', { class: 'mv-events', 'data-testid': 'machine-events' });
    this.changes = h('ol', { class: 'mv-changes', 'data-testid': 'machine-changes', 'aria-label': 'last events that changed its states, newest first' });
    const bySource = groupBySource(chart.transitions);
    const states = new Map<string, ChartState>([chart.root, ...chartDescendants(chart.root)].map((state) => [state.id, state]));
    const fromAnyState = (bySource.get(chart.root.id) ?? []).map((transition) => transitionItem(transition, chart.root, states));
    this.element = h(
      'article',
      { class: 'mv-card', 'data-testid': 'machine-card', 'data-machine': chart.id, 'data-actor-id': actor.id, 'data-actor-key': actor.key },
      h('header', { class: 'mv-card-head' }, this.path, h('span', { class: 'mv-machine muted' }, `machine ${chart.id}`), this.status),
      h('p', { class: 'mv-now-line' }, h('span', { class: 'muted' }, 'in '), this.states),
      this.drawChildren(chart.root, bySource, states),
      fromAnyState.length > 0 ? h('div', { class: 'mv-any' }, h('span', { class: 'muted small' }, 'from any state'), h('ul', { class: 'mv-transitions' }, ...fromAnyState)) : null,
      this.invoked,
      this.changes,
      h('details', { class: 'mv-received' }, h('summary', { class: 'muted small' }, 'last events received'), this.events),
    );
  }

  /** Shows the actor as it is now: where it sits, its status, its lit states and its events. */
  update(actor: InspectedActor, path: string, running: readonly InspectedActor[]): void {
    this.path.textContent = path;
    this.element.dataset['path'] = path;
    this.element.dataset['status'] = actor.status;
    this.status.textContent = actor.status === 'active' ? `${actor.eventCount} events` : `${actor.status} · ${actor.eventCount} events`;
    this.states.textContent = actor.states.length > 0 ? actor.states.join(' + ') : '…';
    for (const id of this.lit) if (!actor.lit.has(id)) this.stateElements.get(id)?.removeAttribute('data-lit');
    for (const id of actor.lit) this.stateElements.get(id)?.setAttribute('data-lit', '');
    this.lit = actor.lit;
    const invoked = running.map((child) => child.label);
    this.invoked.textContent = invoked.length > 0 ? `running ${invoked.join(', ')}` : '';
    const newestChange = actor.changes.at(-1)?.seq ?? 0;
    if (newestChange !== this.lastChangeSeq) {
      this.lastChangeSeq = newestChange;
      this.changes.replaceChildren(
        ...[...actor.changes].reverse().map((change) => h('li', { 'data-event-type': change.type }, h('code', { class: 'mv-event-type' }, change.type), h('span', { class: 'mv-to' }, ` → ${change.to ?? ''}`))),
      );
    }
    const newest = actor.events.at(-1)?.seq ?? 0;
    if (newest !== this.lastEventSeq) {
      this.lastEventSeq = newest;
      this.events.replaceChildren(...[...actor.events].reverse().map((event) => eventItem(event, false)));
    }
  }

  private drawChildren(parent: ChartState, bySource: Map<string, ChartTransition[]>, states: Map<string, ChartState>): HTMLElement {
    return h(
      'div',
      { class: `mv-children mv-in-${parent.type}` },
      ...parent.children.map((child) => this.drawState(child, parent, bySource, states)),
    );
  }

  private drawState(state: ChartState, parent: ChartState, bySource: Map<string, ChartTransition[]>, states: Map<string, ChartState>): HTMLElement {
    const transitions = (bySource.get(state.id) ?? []).map((transition) => transitionItem(transition, state, states));
    const element = h(
      'div',
      {
        class: `mv-state mv-${state.type}`,
        'data-testid': 'machine-state',
        'data-state-id': state.id,
        'data-state-key': state.key,
        'data-initial': parent.initial.includes(state.id),
        title: state.description ?? null,
      },
      h('div', { class: 'mv-state-name' }, state.label),
      transitions.length > 0 ? h('ul', { class: 'mv-transitions' }, ...transitions) : null,
      state.children.length > 0 ? this.drawChildren(state, bySource, states) : null,
    );
    this.stateElements.set(state.id, element);
    return element;
  }
}

function groupBySource(transitions: readonly ChartTransition[]): Map<string, ChartTransition[]> {
  const groups = new Map<string, ChartTransition[]>();
  for (const transition of transitions) groups.set(transition.source, [...(groups.get(transition.source) ?? []), transition]);
  return groups;
}

/** `EVENT [guard] → target`: the target by its key when it is a sibling, else by its path. */
function transitionItem(transition: ChartTransition, source: ChartState, states: Map<string, ChartState>): HTMLLIElement {
  const target = states.get(transition.target);
  const sibling = target !== undefined && target.path.slice(0, -1).join('.') === source.path.slice(0, -1).join('.');
  const name = target === undefined ? transition.target : sibling || target.path.length === 0 ? target.label : target.path.join('.');
  return h('li', { 'data-event-type': transition.eventType }, transition.label, h('span', { class: 'mv-arrow' }, ' → '), name);
}

/** xstate's outcome of a child (`xstate.done.actor.0.negotiation.addingCandidate`): named by the child. */
const CHILD_OUTCOME = /^xstate\.(done|error)\.actor\./;

/**
 * One listed event: `#seq actor EVENT ← sender → states`. A child's outcome reads as the
 * diagrams write it, `done: addIceCandidate`; the element keeps the exact type in `data-event-type`.
 */
function eventItem(event: SeenEvent, withActor: boolean): HTMLLIElement {
  const outcome = event.from === null ? null : CHILD_OUTCOME.exec(event.type);
  return h(
    'li',
    { 'data-testid': 'machine-event', 'data-event-type': event.type, 'data-actor': event.actor, title: event.type },
    h('span', { class: 'mv-seq' }, `#${event.seq}`),
    withActor ? h('span', { class: 'mv-event-actor' }, event.actor) : null,
    h('code', { class: 'mv-event-type' }, outcome ? `${outcome[1]}: ${event.from}` : event.type),
    event.from !== null && !outcome ? h('span', { class: 'mv-from muted' }, `← ${event.from}`) : null,
    event.to !== null ? h('span', { class: 'mv-to' }, `→ ${event.to}`) : null,
  );
}

/**
 * The view: a panel over the page's right side, hidden until `open()`. It redraws at most once
 * per animation frame after the model changed, and not at all while closed.
 */
export class MachineView {
  /** The panel; the page appends it to its body. */
  readonly element: HTMLElement;
  private readonly cards = new Map<number, MachineCard>();
  private readonly actorList: HTMLElement;
  private readonly stream: HTMLOListElement;
  private readonly count: HTMLElement;
  private frame: number | null = null;
  private lastStreamSeq = 0;

  constructor(private readonly model: InspectionModel) {
    const allTransitions = h('input', {
      type: 'checkbox',
      'data-testid': 'machine-view-all-transitions',
      onchange: () => this.element.classList.toggle('mv-all-transitions', allTransitions.checked),
    });
    this.actorList = h('div', { class: 'mv-actors', 'data-testid': 'machine-view-actors' });
    this.stream = h('ol', { class: 'mv-events mv-stream-list', 'data-testid': 'machine-view-events' });
    this.count = h('span', { class: 'muted small' });
    this.element = h(
      'aside',
      { class: 'machine-view', 'data-testid': 'machine-view', 'aria-label': 'Machines, live', hidden: true },
      h(
        'header',
        { class: 'mv-head' },
        h('h2', {}, 'Machines, live'),
        h('span', { class: 'muted small mv-subtitle' }, 'from the definitions and xstate’s inspection events · no network'),
        this.count,
        h('label', { class: 'small mv-toggle' }, allTransitions, ' all transitions'),
        h('button', { type: 'button', class: 'button ghost small', 'data-testid': 'machine-view-close', onclick: () => this.close() }, 'Close'),
      ),
      h(
        'div',
        { class: 'mv-body' },
        this.actorList,
        h('section', { class: 'mv-stream' }, h('h3', {}, 'Last events'), this.stream),
      ),
    );
    model.subscribe(() => this.schedule());
  }

  /** Whether the panel is shown. */
  get isOpen(): boolean {
    return !this.element.hidden;
  }

  /** Shows the panel beside the page (which moves over) and draws it. */
  open(): void {
    this.element.hidden = false;
    document.body.classList.add('machine-view-open');
    this.render();
  }

  /** Hides the panel; the model keeps recording meanwhile. */
  close(): void {
    this.element.hidden = true;
    document.body.classList.remove('machine-view-open');
  }

  /** Opens the panel when closed, closes it when open (the state panel's button). */
  toggle(): void {
    if (this.isOpen) this.close();
    else this.open();
  }

  private schedule(): void {
    if (this.frame !== null || !this.isOpen) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = null;
      this.render();
    });
  }

  /** Brings the cards and the event list up to date with the model. */
  render(): void {
    const tree = this.model.actors();
    const byKey = new Map<number, InspectedActor>(tree.map(({ actor }) => [actor.key, actor]));
    const machines = tree.filter((entry): entry is ActorInTree & { actor: InspectedActor & { chart: MachineChart } } => entry.actor.chart !== null);
    const seen = new Set<number>();
    machines.forEach(({ actor, depth }, index) => {
      seen.add(actor.key);
      let card = this.cards.get(actor.key);
      if (!card) {
        card = new MachineCard(actor.chart, actor);
        this.cards.set(actor.key, card);
      }
      card.element.style.setProperty('--depth', String(depth));
      const running = tree.filter(({ actor: child }) => child.parentKey === actor.key && child.chart === null && child.status === 'active').map(({ actor: child }) => child);
      card.update(actor, pathOf(actor, byKey), running);
      if (this.actorList.children[index] !== card.element) this.actorList.insertBefore(card.element, this.actorList.children[index] ?? null);
    });
    for (const [key, card] of this.cards) {
      if (seen.has(key)) continue;
      card.element.remove();
      this.cards.delete(key);
    }
    const active = machines.filter(({ actor }) => actor.status === 'active').length;
    this.count.textContent = `${active} running, ${machines.length - active} ended`;
    const events = this.model.events();
    const newest = events[0]?.seq ?? 0;
    if (newest !== this.lastStreamSeq) {
      this.lastStreamSeq = newest;
      this.stream.replaceChildren(...events.map((event) => eventItem(event, true)));
    }
  }
}

/** `call with bob › peer › negotiation`: the actor's label after its ancestors'. */
function pathOf(actor: InspectedActor, byKey: Map<number, InspectedActor>): string {
  const names = [actor.label];
  for (let parent = actor.parentKey === null ? undefined : byKey.get(actor.parentKey); parent; parent = parent.parentKey === null ? undefined : byKey.get(parent.parentKey)) {
    names.unshift(parent.label);
  }
  return names.join(' › ');
}
