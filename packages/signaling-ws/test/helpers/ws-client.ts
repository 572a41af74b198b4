// Test helper: a raw `ws` client that records every frame from the server, for protocol tests.

import { WebSocket, type ClientOptions, type RawData } from 'ws';

export type Frame = Record<string, unknown> & { type?: unknown };

export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
}

interface Waiter {
  readonly match: (frame: Frame) => boolean;
  readonly resolve: (frame: Frame) => void;
}

export class TestSocket {
  /** Frames received and not yet taken by `next`/`waitFor`. */
  private readonly inbox: Frame[] = [];
  private waiters: Waiter[] = [];
  /** Every frame received, in order (taken or not). */
  readonly all: Frame[] = [];
  /** Raw text of frames that were not JSON objects (should stay empty). */
  readonly malformed: string[] = [];
  readonly closed: Promise<CloseInfo>;
  closeInfo: CloseInfo | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const text = (Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)).toString('utf8');
      let frame: unknown;
      try {
        frame = JSON.parse(text);
      } catch {
        frame = undefined;
      }
      if (isBinary || typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
        this.malformed.push(text);
        return;
      }
      this.deliver(frame as Frame);
    });
    ws.on('error', () => undefined);
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString('utf8') };
        resolve(this.closeInfo);
      });
    });
  }

  /** Opens a socket; rejects with the HTTP status when the upgrade is refused. */
  static open(url: string, options: ClientOptions & { origin?: string } = {}): Promise<TestSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, options);
      const socket = new TestSocket(ws);
      ws.once('open', () => resolve(socket));
      ws.once('unexpected-response', (_req, res) => {
        reject(Object.assign(new Error(`upgrade refused with HTTP ${res.statusCode}`), { status: res.statusCode }));
        res.resume();
        ws.terminate();
      });
      ws.once('error', reject);
    });
  }

  /** Opens a socket and joins; resolves with the welcome (rejects with the error frame otherwise). */
  static async joined(url: string, room: string, name: string, extra: Record<string, unknown> = {}): Promise<{ socket: TestSocket; welcome: Frame; id: string }> {
    const socket = await TestSocket.open(url);
    const welcome = await socket.join(room, name, extra);
    return { socket, welcome, id: welcome['id'] as string };
  }

  private deliver(frame: Frame): void {
    this.all.push(frame);
    const index = this.waiters.findIndex((w) => w.match(frame));
    if (index === -1) {
      this.inbox.push(frame);
      return;
    }
    const [waiter] = this.waiters.splice(index, 1);
    waiter!.resolve(frame);
  }

  send(frame: unknown): void {
    this.ws.send(JSON.stringify(frame));
  }

  sendRaw(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  /** The next unconsumed frame matching `match` (default: any), waiting up to `timeoutMs`. */
  waitFor(match: (frame: Frame) => boolean = () => true, timeoutMs = 2000, what = 'a frame'): Promise<Frame> {
    const index = this.inbox.findIndex(match);
    if (index !== -1) return Promise.resolve(this.inbox.splice(index, 1)[0]!);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        match,
        resolve: (frame) => {
          clearTimeout(timer);
          resolve(frame);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; unconsumed: ${JSON.stringify(this.inbox).slice(0, 500)}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** The next unconsumed frame of `type`. */
  next(type: string, timeoutMs = 2000): Promise<Frame> {
    return this.waitFor((f) => f.type === type, timeoutMs, `a "${type}" frame`);
  }

  /** The next unconsumed frame, whatever it is. */
  nextAny(timeoutMs = 2000): Promise<Frame> {
    return this.waitFor(() => true, timeoutMs);
  }

  /** The next error frame; asserts nothing, returns its code. */
  async nextError(timeoutMs = 2000): Promise<string> {
    const frame = await this.next('error', timeoutMs);
    return frame['code'] as string;
  }

  /** Unconsumed frames (and takes them). */
  drain(): Frame[] {
    return this.inbox.splice(0, this.inbox.length);
  }

  async join(room: string, name: string, extra: Record<string, unknown> = {}): Promise<Frame> {
    this.send({ type: 'join', room, name, ...extra });
    const frame = await this.waitFor((f) => f.type === 'welcome' || f.type === 'error', 2000, 'welcome');
    if (frame.type !== 'welcome') throw new Error(`join refused: ${JSON.stringify(frame)}`);
    return frame;
  }

  signal(to: string, data: Record<string, unknown>): void {
    this.send({ type: 'signal', to, data });
  }

  /** Resolves after `ms` with the frames that arrived meanwhile (unconsumed ones included). */
  async quiet(ms: number): Promise<Frame[]> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return [...this.inbox];
  }

  close(code?: number): Promise<CloseInfo> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code);
    return this.closed;
  }

  terminate(): void {
    this.ws.terminate();
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `condition` every 5 ms until it holds; rejects naming `what` after `ms`. */
export async function until(condition: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
