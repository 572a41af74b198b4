// The banner area under the top bar. Standing notices have a key (signaling, camera, relay, the
// last call) and are replaced or cleared by key; each can be dismissed by the person.
import { h } from './dom.js';
import type { Notice } from './messages.js';

export class Notices {
  private readonly shown = new Map<string, HTMLElement>();

  constructor(private readonly container: HTMLElement) {}

  /** Shows `notice` under `key`, replacing what that key showed; `null` clears it. */
  set(key: string, notice: Notice | null): void {
    const previous = this.shown.get(key);
    if (notice === null) {
      previous?.remove();
      this.shown.delete(key);
      return;
    }
    if (previous && previous.dataset['tone'] === notice.tone && previous.querySelector('.notice-text')?.textContent === notice.text) return;
    const element = h(
      'div',
      { class: `notice ${notice.tone}`, 'data-testid': 'notice', 'data-key': key, 'data-tone': notice.tone },
      h('span', { class: 'notice-text' }, notice.text),
      h('button', { type: 'button', class: 'notice-close', 'aria-label': 'Dismiss', onclick: () => this.set(key, null) }, '×'),
    );
    if (previous) previous.replaceWith(element);
    else this.container.append(element);
    this.shown.set(key, element);
  }
}
