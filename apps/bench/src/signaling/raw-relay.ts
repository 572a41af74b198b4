// The ceiling: the least work a signaling relay must do, on `ws`, written for the benchmark.
// A client connects to `/?id=ID` and is registered under that id (no join frame, no rooms, no
// limits, no validation, no heartbeat). It sends `{"to":ID,...}`; the relay parses the frame to
// find the target (what any relay must do) and forwards the client's own bytes with
// `,"from":SENDER}` appended: the last key wins in JSON.parse, so a client cannot forge `from`.
// Anything it cannot route (bad JSON, no `to`, unknown target) is dropped silently.
// It coalesces writes as Parley does (the frames sent to a socket while one read is handled go
// out in one write), so that the ceiling is not lower than the subject for want of that trick.

import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';

export interface RawRelay {
  readonly port: number;
  readonly url: string;
  readonly server: Server;
  /** Frames forwarded, and frames dropped (unparseable or unknown target). */
  stats(): { readonly clients: number; readonly relayed: number; readonly dropped: number };
  close(): Promise<void>;
}

const CLOSE_BRACE = 0x7d;
/** Forwarded bytes go out as a text frame, as they came in. */
const TEXT = { binary: false } as const;

export async function createRawRelay(options: { readonly port?: number; readonly host?: string } = {}): Promise<RawRelay> {
  const host = options.host ?? '127.0.0.1';
  const clients = new Map<string, { readonly ws: WebSocket; readonly socket: Duplex; corked: boolean }>();
  let relayed = 0;
  let dropped = 0;
  let corked: { socket: Duplex; corked: boolean }[] = [];
  const uncorkAll = (): void => {
    const list = corked;
    corked = [];
    for (const client of list) {
      client.corked = false;
      client.socket.uncork();
    }
  };
  const server = createServer((_req, res) => {
    res.writeHead(426).end();
  });
  const wss = new WebSocketServer({ server, perMessageDeflate: false, clientTracking: false, skipUTF8Validation: true, maxPayload: 1024 * 1024 });

  wss.on('connection', (ws, req) => {
    const url = req.url ?? '';
    const at = url.indexOf('id=');
    const id = at < 0 ? '' : decodeURIComponent(url.slice(at + 3).split('&')[0]!);
    ws.on('error', () => undefined);
    if (id.length === 0 || clients.has(id)) {
      ws.close(1008, 'need a free ?id=');
      return;
    }
    const self = { ws, socket: req.socket, corked: false };
    clients.set(id, self);
    const fromSuffix = Buffer.from(`,"from":${JSON.stringify(id)}}`);
    ws.on('close', () => {
      if (clients.get(id) === self) clients.delete(id);
    });
    ws.on('message', (data: Buffer) => {
      let to: unknown;
      try {
        to = (JSON.parse(data.toString()) as { to?: unknown }).to;
      } catch {
        dropped += 1;
        return;
      }
      const target = typeof to === 'string' ? clients.get(to) : undefined;
      // A frame that parsed to an object with `to` ends in `}` unless it has trailing whitespace.
      if (target === undefined || data[data.length - 1] !== CLOSE_BRACE) {
        dropped += 1;
        return;
      }
      if (!target.corked) {
        target.corked = true;
        target.socket.cork();
        if (corked.push(target) === 1) queueMicrotask(uncorkAll);
      }
      target.ws.send(Buffer.concat([data.subarray(0, data.length - 1), fromSuffix]), TEXT);
      relayed += 1;
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    port,
    url: `ws://${host}:${port}/`,
    server,
    stats: () => ({ clients: clients.size, relayed, dropped }),
    async close() {
      for (const client of clients.values()) client.ws.terminate();
      clients.clear();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
