import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import { WebSocket, WebSocketServer } from 'ws';
import type { RawData } from 'ws';

// Makes "both press Call at the same moment" exact: each page's WebSocket goes through a gate
// that holds its outgoing invite (and what follows it) until every gated page has sent one, then
// lets them all go.
// The invites then cross in flight, which two clicks in two processes cannot promise.
// Two ways through the gate: a Playwright route (Chromium pages), or a proxy in front of the demo
// server that any browser loads the page from (Firefox, driven by puppeteer, has no such route).

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

/** One socket's way through the gate: `pass` sends a frame now, or queues it behind the socket's held invite. */
type SocketPassage = (message: string | Buffer, send: () => void) => void;

/**
 * The gate itself. The first invite of each of the first `count` sockets is held until all of
 * them have sent one; every later frame of that socket (the caller's offer and candidates, which
 * follow its invite at once) queues behind it, so the gate never reorders one page's frames: a
 * signaling server relays each sender's frames in order, and an offer overtaking its invite is
 * a network Parley never meets.
 */
export function inviteHolder(count: number): { readonly released: Promise<void>; socket(): SocketPassage } {
  const gated: (() => void)[][] = [];
  let isReleased = false;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  return {
    released,
    socket() {
      let queue: (() => void)[] | null = null;
      return (message, send) => {
        if (queue !== null && !isReleased) {
          queue.push(send);
          return;
        }
        if (isReleased || !isInvite(message) || gated.length >= count) {
          send();
          return;
        }
        queue = [send];
        gated.push(queue);
        if (gated.length === count) {
          isReleased = true;
          for (const frames of gated) for (const sendFrame of frames) sendFrame();
          release();
        }
      };
    },
  };
}

export function createInviteGate(count: number): InviteGate {
  const holder = inviteHolder(count);
  return {
    released: holder.released,
    async route(page) {
      await page.routeWebSocket(/.*/, (socket) => {
        const server = socket.connectToServer();
        const pass = holder.socket();
        socket.onMessage((message) => pass(message, () => server.send(message)));
        server.onMessage((message) => socket.send(message));
      });
    },
  };
}

/** An invite gate as an HTTP and WebSocket proxy in front of the demo server, on 127.0.0.1. */
export interface InviteGateProxy {
  /** The proxy's port: load the page from `http://localhost:PORT/…` to go through the gate. */
  readonly port: number;
  /** Resolves once `count` invites are held (and released). */
  readonly released: Promise<void>;
  close(): Promise<void>;
}

/** A close code one may send again (1005 and 1006 only describe a close, RFC 6455 §7.4.1). */
function sendableCode(code: number): number | undefined {
  return code === 1005 || code === 1006 ? undefined : code;
}

/** A received frame's payload as one Buffer (ws hands over a Buffer, an ArrayBuffer or fragments). */
function frameBytes(data: RawData): Buffer {
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.isBuffer(data) ? data : Buffer.from(data);
}

/**
 * Starts a proxy to the demo server on `upstreamPort`: pages and files pass as they are; each
 * WebSocket is relayed frame by frame, its outgoing invites through the gate.
 */
export async function startInviteGateProxy(upstreamPort: number, count: number): Promise<InviteGateProxy> {
  const holder = inviteHolder(count);
  const sockets = new WebSocketServer({ noServer: true });
  const server = createServer((incoming, outgoing) => {
    const upstream = request({ host: '127.0.0.1', port: upstreamPort, path: incoming.url, method: incoming.method, headers: incoming.headers }, (answer) => {
      outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(outgoing);
    });
    upstream.on('error', (error) => outgoing.writeHead(502).end(String(error)));
    incoming.pipe(upstream);
  });
  server.on('upgrade', (incoming, socket, head) => {
    sockets.handleUpgrade(incoming, socket, head, (page) => {
      const upstream = new WebSocket(`ws://127.0.0.1:${upstreamPort}${incoming.url ?? '/'}`);
      const opened = new Promise<void>((resolve) => upstream.once('open', () => resolve()));
      const toUpstream = (data: RawData, isBinary: boolean): void => void opened.then(() => upstream.send(data, { binary: isBinary }));
      const pass = holder.socket();
      page.on('message', (data, isBinary) => pass(frameBytes(data), () => toUpstream(data, isBinary)));
      upstream.on('message', (data, isBinary) => page.send(data, { binary: isBinary }));
      page.on('close', (code, reason) => upstream.close(sendableCode(code), reason));
      upstream.on('close', (code, reason) => page.close(sendableCode(code), reason));
      upstream.on('error', () => page.terminate());
      page.on('error', () => upstream.terminate());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    released: holder.released,
    async close() {
      for (const client of sockets.clients) client.terminate();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
