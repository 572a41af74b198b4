import type { Page } from 'playwright-core';

// Makes "both press Call at the same moment" exact: each page's WebSocket goes through a route
// that holds its outgoing invite until every gated page has sent one, then lets them all go.
// The invites then cross in flight, which two clicks in two processes cannot promise.

export interface InviteGate {
  /** Routes `page`'s signaling socket through the gate; call before the page connects. */
  route(page: Page): Promise<void>;
  /** Resolves once `count` invites are held (and released). */
  readonly released: Promise<void>;
}

function isInvite(message: string | Buffer): boolean {
  try {
    const frame = JSON.parse(message.toString()) as { type?: unknown; data?: { kind?: unknown } };
    return frame.type === 'signal' && frame.data?.kind === 'invite';
  } catch {
    return false;
  }
}

export function createInviteGate(count: number): InviteGate {
  const held: (() => void)[] = [];
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  return {
    released,
    async route(page) {
      await page.routeWebSocket(/.*/, (socket) => {
        const server = socket.connectToServer();
        socket.onMessage((message) => {
          if (!isInvite(message) || held.length >= count) {
            server.send(message);
            return;
          }
          held.push(() => server.send(message));
          if (held.length === count) {
            for (const send of held) send();
            release();
          }
        });
        server.onMessage((message) => socket.send(message));
      });
    },
  };
}
