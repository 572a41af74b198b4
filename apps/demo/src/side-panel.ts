// The side panel of a call: the chat log and the list of file transfers with their progress
// bars and download links.
import { h } from './dom.js';

export type ChatAuthor = 'me' | 'them' | 'system';

export function appendChatLine(log: HTMLOListElement, from: ChatAuthor, who: string, text: string, at: Date = new Date()): void {
  const time = at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  log.append(
    from === 'system'
      ? h('li', { class: 'chat-line system', 'data-from': 'system' }, h('span', { class: 'chat-text' }, text))
      : h(
          'li',
          { class: `chat-line ${from}`, 'data-from': from },
          h('span', { class: 'chat-meta' }, `${who} · ${time}`),
          h('span', { class: 'chat-text' }, text),
        ),
  );
  log.scrollTop = log.scrollHeight;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 * 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
  return `${(bytes / (1024 * 1024 * 1024)).toFixed(2)} GiB`;
}

/** One row of the transfers list: name, size, a progress bar, then a status or a link. */
export class TransferRow {
  readonly element: HTMLLIElement;
  private readonly progress: HTMLProgressElement;
  private readonly status: HTMLSpanElement;

  constructor(list: HTMLUListElement, direction: 'outgoing' | 'incoming', id: string, name: string, size: number) {
    this.progress = h('progress', { 'data-testid': 'file-progress', max: Math.max(size, 1), value: 0 });
    this.status = h('span', { class: 'transfer-status', 'data-testid': 'file-status' }, direction === 'outgoing' ? 'Sending…' : 'Receiving…');
    this.element = h(
      'li',
      { class: `transfer ${direction}`, 'data-testid': 'transfer', 'data-direction': direction, 'data-transfer-id': id },
      h('span', { class: 'transfer-name' }, `${direction === 'outgoing' ? '↑' : '↓'} ${name}`),
      h('span', { class: 'transfer-size muted' }, formatBytes(size)),
      this.progress,
      this.status,
    );
    list.prepend(this.element);
  }

  update(bytes: number, size: number): void {
    this.progress.max = Math.max(size, 1);
    this.progress.value = size === 0 ? 1 : bytes;
    this.status.textContent = `${Math.floor((size === 0 ? 1 : bytes / size) * 100)}%`;
  }

  sent(): void {
    this.element.dataset['state'] = 'done';
    this.status.textContent = 'Sent';
  }

  received(name: string, blob: Blob): void {
    this.element.dataset['state'] = 'done';
    const url = URL.createObjectURL(blob);
    this.status.replaceChildren(h('a', { class: 'download', 'data-testid': 'file-download', href: url, download: name }, `Save ${name}`));
  }

  failed(message: string): void {
    this.element.dataset['state'] = 'failed';
    this.status.textContent = message;
    this.status.classList.add('error-text');
  }
}
