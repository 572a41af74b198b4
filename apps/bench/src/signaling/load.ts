// The load generator: `ws` clients in pairs (caller `a`, callee `b`), both ends of a pair in this
// process, so a message's latency is measured on one clock (the sender's stamp in the data,
// `performance.now()` at the receiver). A pair relays the negotiation mix (mix.ts) over and over:
//
// - closed loop: each pair keeps `window` messages in flight; a received message sends the next
//   step of its pair's negotiation (from whichever side that step belongs to);
// - open loop: messages go out at a fixed total rate, round-robin over the pairs, whatever the
//   server does (latency under a given offered load).
//
// Every message is accounted for: a run ends only when all that were sent have arrived, or fails.

import { WebSocket } from 'ws';
import type { RawData } from 'ws';
import { negotiation, readStamp, STAMP_DIGITS, STAMP_MARKER, STAMP_ZERO, stampNow } from './mix.js';
import type { MixStep, Side } from './mix.js';
import { sleep, withTimeout } from '../timing.js';
import { jsonObject, PROTOCOL_OF, PROTOCOLS, SOCKET_IO } from './protocols.js';
import type { ClientProtocol, Subject } from './protocols.js';

export interface GroupOptions {
  readonly subject: Subject;
  /**
   * The base WebSocket URLs (ending with `/`) of the subject's nodes: one for a single server;
   * with more, the two ends of each pair connect to different nodes (pair i: `a` to node
   * i mod n, `b` to node i + 1 mod n), so that each of their messages crosses between nodes.
   */
  readonly urls: readonly string[];
  /** Prefix of client-chosen ids and room names, unique per group (e.g. the load process index). */
  readonly tag: string;
  /** Parse and check every received signal (sender, target, data bytes); otherwise 1 in 64. */
  readonly verifyAll?: boolean;
  /** Source addresses for the client sockets, round-robin (e.g. 127.0.0.2..): more ephemeral ports. */
  readonly localAddresses?: readonly string[];
  /** Pairs joining at once. Default 100. */
  readonly connectConcurrency?: number;
}

export interface RunOptions {
  readonly warmupMs: number;
  readonly measureMs: number;
  /** Most latencies kept (the first ones of the measured window). Default 400 000. */
  readonly maxSamples?: number;
  /** How long to wait, after the last send, for every message to arrive. Default 15 s. */
  readonly drainTimeoutMs?: number;
}

export interface RunResult {
  /** Signals received within the measured window. */
  readonly messages: number;
  /** Bytes of those frames (as received, envelope included). */
  readonly bytes: number;
  /** The measured window, seconds. */
  readonly seconds: number;
  /** Latencies (ms) of the signals received within the window, in arrival order. */
  readonly latenciesMs: Float64Array;
  /** The whole run, warm-up and drain included: every sent signal was received. */
  readonly sent: number;
  readonly received: number;
  /** Received signals parsed and checked in full. */
  readonly verified: number;
  /**
   * Since the group connected (not per run): `peer-joined` frames for a peer that the receiver's
   * `welcome` already listed (a Parley cluster's join can race its own broadcast); counted and
   * reported, not a failure: nothing was lost, the receiver was told twice.
   */
  readonly repeatedPeerJoined: number;
}

const VERIFY_EVERY = 64;
const HANDSHAKE_TIMEOUT_MS = 20_000;
const DRAIN_TIMEOUT_MS = 15_000;

class Pair {
  a: WebSocket | undefined;
  b: WebSocket | undefined;
  aId = '';
  bId = '';
  /** Per step of the mix: the frame text before the stamp digits and after them. */
  heads: string[] = [];
  tails: string[] = [];
  next = 0;

  constructor(readonly index: number) {}

  prepare(protocol: ClientProtocol, steps: readonly MixStep[]): void {
    this.heads = [];
    this.tails = [];
    for (const step of steps) {
      const to = step.from === 'a' ? this.bId : this.aId;
      const head = protocol.signalHead(step.kind, to);
      const at = step.data.indexOf(STAMP_ZERO);
      this.heads.push(head + step.data.slice(0, at));
      this.tails.push(step.data.slice(at + STAMP_DIGITS) + protocol.signalTail);
    }
  }

  /** Sends the next step of the negotiation; false when its socket is not open. */
  sendNext(steps: readonly MixStep[]): boolean {
    const step = this.next;
    this.next = step + 1 === steps.length ? 0 : step + 1;
    const ws = steps[step]!.from === 'a' ? this.a : this.b;
    if (ws === undefined || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(this.heads[step]! + stampNow() + this.tails[step]!);
    return true;
  }
}

/** A frame received during a handshake: its text, and the JSON object it is (if it is one). */
interface HandshakeFrame {
  readonly text: string;
  readonly json: Record<string, unknown> | null;
}

/** Frames that arrive on a socket before its handshake is done, and waiters for them. */
class Inbox {
  private readonly frames: HandshakeFrame[] = [];
  private waiter: { match: (f: HandshakeFrame) => boolean; resolve: (f: HandshakeFrame) => void } | undefined;

  push(frame: HandshakeFrame): void {
    if (this.waiter?.match(frame)) {
      const { resolve } = this.waiter;
      this.waiter = undefined;
      resolve(frame);
    } else this.frames.push(frame);
  }

  next(what: string, match: (f: HandshakeFrame) => boolean): Promise<HandshakeFrame> {
    const at = this.frames.findIndex(match);
    if (at >= 0) return Promise.resolve(this.frames.splice(at, 1)[0]!);
    const waiting = `waiting for ${what}; got ${JSON.stringify(this.frames.map((f) => f.text)).slice(0, 300)}`;
    return withTimeout(
      new Promise((resolve) => {
        this.waiter = { match, resolve };
      }),
      HANDSHAKE_TIMEOUT_MS,
      () => new Error(`timed out after ${HANDSHAKE_TIMEOUT_MS} ms ${waiting}`),
    );
  }
}

/** Text frames arrive as one Buffer (no fragments are sent, `binaryType` is the default). */
function frameText(data: RawData): string {
  return Buffer.isBuffer(data) ? data.toString() : Array.isArray(data) ? Buffer.concat(data).toString() : Buffer.from(data).toString();
}

function handshakeFrame(data: RawData): HandshakeFrame {
  const text = frameText(data);
  return { text, json: jsonObject(text) };
}

/** The `type` of a handshake frame that is a JSON object with one. */
const typeOf = (f: HandshakeFrame): unknown => f.json?.['type'];

/** A set of pairs against one server, grown by `connect` and driven by `runClosed`/`runOpen`. */
export class LoadGroup {
  readonly steps = negotiation();
  private readonly protocol: ClientProtocol;
  private readonly pairs: Pair[] = [];
  private readonly sockets = new Set<WebSocket>();
  /** The data texts (stamp zeroed) that each side sends: what a verified frame must carry. */
  private readonly dataBySide: Record<Side, Set<string>>;
  private sent = 0;
  private received = 0;
  private verified = 0;
  private repeatedPeerJoined = 0;
  private readonly errors: string[] = [];
  private running: 'closed' | 'open' | undefined;
  private measuring = false;
  private windowMessages = 0;
  private windowBytes = 0;
  private samples = new Float64Array(0);
  private sampleCount = 0;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private keepaliveCursor = 0;
  private socketCounter = 0;
  private closed = false;

  constructor(private readonly options: GroupOptions) {
    if (options.urls.length === 0) throw new Error(`${options.subject}: no server URL`);
    this.protocol = PROTOCOLS[PROTOCOL_OF[options.subject]];
    this.dataBySide = { a: new Set(), b: new Set() };
    for (const step of this.steps) this.dataBySide[step.from].add(step.data);
    const keepalive = this.protocol.keepalive;
    if (keepalive !== undefined) {
      // Spread the keepalives over the interval, as independent clients would.
      const tickMs = 250;
      this.keepaliveTimer = setInterval(() => {
        const sockets = [...this.sockets];
        if (sockets.length === 0) return;
        const slice = Math.ceil((sockets.length * tickMs) / keepalive.intervalMs);
        for (let i = 0; i < slice; i++) {
          const ws = sockets[(this.keepaliveCursor + i) % sockets.length]!;
          if (ws.readyState === WebSocket.OPEN) ws.send(keepalive.frame);
        }
        this.keepaliveCursor = (this.keepaliveCursor + slice) % sockets.length;
      }, tickMs);
      this.keepaliveTimer.unref();
    }
  }

  get size(): number {
    return this.pairs.length;
  }

  /** Connects and joins `count` more pairs. */
  async connect(count: number): Promise<void> {
    const concurrency = this.options.connectConcurrency ?? 100;
    const first = this.pairs.length;
    let nextIndex = first;
    const worker = async (): Promise<void> => {
      while (nextIndex < first + count) {
        const pair = new Pair(nextIndex++);
        await this.join(pair);
        this.pairs.push(pair);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  }

  /** The base URL of the node that side `side` of pair `index` connects to. */
  private nodeUrl(index: number, side: Side): string {
    const urls = this.options.urls;
    return urls[(index + (side === 'a' ? 0 : 1)) % urls.length]!;
  }

  private open(id: string, base: string): Promise<{ ws: WebSocket; inbox: Inbox }> {
    const addresses = this.options.localAddresses;
    const localAddress = addresses && addresses.length > 0 ? addresses[this.socketCounter++ % addresses.length] : undefined;
    const ws = new WebSocket(this.protocol.url(base, id), {
      perMessageDeflate: false,
      skipUTF8Validation: true,
      ...(localAddress !== undefined ? { localAddress } : {}),
    });
    // Errors are handled below (before open: the connect fails; after: the run fails); this one
    // keeps an error during a terminate from being unhandled.
    ws.on('error', () => undefined);
    const inbox = new Inbox();
    const onHandshakeFrame = (data: RawData): void => inbox.push(handshakeFrame(data));
    ws.on('message', onHandshakeFrame);
    this.sockets.add(ws);
    ws.on('close', () => this.sockets.delete(ws));
    return withTimeout(
      new Promise<{ ws: WebSocket; inbox: Inbox }>((resolve, reject) => {
        ws.once('open', () => {
          ws.off('error', reject);
          ws.on('error', (error) => this.fail(`socket error: ${error.message}`));
          resolve({ ws, inbox });
        });
        ws.once('error', reject);
        ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused with HTTP ${res.statusCode}`)));
      }),
      HANDSHAKE_TIMEOUT_MS,
      () => new Error(`timed out after ${HANDSHAKE_TIMEOUT_MS} ms connecting to ${this.options.subject}`),
    ).catch((error: unknown) => {
      ws.terminate();
      throw new Error(`${this.options.subject}: client ${id} could not connect: ${error instanceof Error ? error.message : String(error)}`);
    });
  }

  private async join(pair: Pair): Promise<void> {
    const tag = `${this.options.tag}p${String(pair.index).padStart(6, '0')}`;
    const urlA = this.nodeUrl(pair.index, 'a');
    const urlB = this.nodeUrl(pair.index, 'b');
    if (this.protocol.join === 'room') {
      // Parley: a room per pair; the server assigns ids, learnt from welcome and peer-joined.
      const a = await this.open(`${tag}a`, urlA);
      a.ws.send(JSON.stringify({ type: 'join', room: tag, name: 'a' }));
      const welcomeA = await a.inbox.next('welcome (a)', (f) => typeOf(f) === 'welcome' || typeOf(f) === 'error');
      if (typeOf(welcomeA) !== 'welcome') throw new Error(`parley: join refused: ${welcomeA.text}`);
      pair.aId = String(welcomeA.json!['id']);
      const b = await this.open(`${tag}b`, urlB);
      b.ws.send(JSON.stringify({ type: 'join', room: tag, name: 'b' }));
      const welcomeB = await b.inbox.next('welcome (b)', (f) => typeOf(f) === 'welcome' || typeOf(f) === 'error');
      if (typeOf(welcomeB) !== 'welcome') throw new Error(`parley: join refused: ${welcomeB.text}`);
      pair.bId = String(welcomeB.json!['id']);
      const peers = welcomeB.json!['peers'] as { id: string }[];
      if (peers.length !== 1 || peers[0]!.id !== pair.aId) throw new Error(`parley: b's welcome lists ${JSON.stringify(peers)}, not a`);
      const joined = await a.inbox.next('peer-joined', (f) => typeOf(f) === 'peer-joined');
      if ((joined.json!['peer'] as { id: string }).id !== pair.bId) throw new Error('parley: a was told of another peer than b');
      this.attach(pair, 'a', a.ws);
      this.attach(pair, 'b', b.ws);
    } else if (this.protocol.join === 'socketio') {
      // Socket.IO: each end is addressed by the socket id its node gives it on CONNECT.
      const [a, b] = await Promise.all([this.openSocketIo(`${tag}a`, urlA), this.openSocketIo(`${tag}b`, urlB)]);
      pair.aId = a.sid;
      pair.bId = b.sid;
      this.attach(pair, 'a', a.ws);
      this.attach(pair, 'b', b.ws);
    } else {
      pair.aId = `${tag}a`;
      pair.bId = `${tag}b`;
      const [a, b] = await Promise.all([this.open(pair.aId, urlA), this.open(pair.bId, urlB)]);
      if (PROTOCOL_OF[this.options.subject] === 'peerjs') {
        for (const end of [a, b]) {
          const open = await end.inbox.next('OPEN', (f) => typeOf(f) === 'OPEN' || typeOf(f) === 'ERROR' || typeOf(f) === 'ID-TAKEN');
          if (typeOf(open) !== 'OPEN') throw new Error(`peerjs: registration refused: ${open.text}`);
        }
      }
      this.attach(pair, 'a', a.ws);
      this.attach(pair, 'b', b.ws);
    }
    pair.prepare(this.protocol, this.steps);
  }

  /**
   * A Socket.IO client on the WebSocket transport, as socket.io-client does it: the Engine.IO
   * open packet (`0{...}`), then CONNECT to the main namespace (`40`) and its answer with the
   * socket id (`40{"sid":...}`; `44{...}` is a refusal).
   */
  private async openSocketIo(id: string, base: string): Promise<{ ws: WebSocket; sid: string }> {
    const { ws, inbox } = await this.open(id, base);
    await inbox.next('the Engine.IO open packet', (f) => f.text.startsWith('0'));
    ws.send(SOCKET_IO.connect);
    const connected = await inbox.next('CONNECT', (f) => f.text.startsWith('40') || f.text.startsWith('44'));
    const sid: unknown = connected.text.startsWith('40') ? (JSON.parse(connected.text.slice(2)) as { sid?: unknown }).sid : undefined;
    if (typeof sid !== 'string') throw new Error(`socket.io: CONNECT refused: ${connected.text.slice(0, 200)}`);
    return { ws, sid };
  }

  private attach(pair: Pair, side: Side, ws: WebSocket): void {
    ws.removeAllListeners('message');
    if (side === 'a') pair.a = ws;
    else pair.b = ws;
    ws.on('message', (data: Buffer) => this.onFrame(pair, side, data));
    ws.on('close', (code: number, reason: Buffer) => {
      if (!this.closed) this.fail(`${side} of pair ${pair.index} closed by the server (${code} ${reason.toString()})`);
    });
  }

  private fail(message: string): void {
    if (this.errors.length < 5) this.errors.push(`${this.options.subject}: ${message}`);
  }

  private onFrame(pair: Pair, side: Side, data: Buffer): void {
    const stamp = readStamp(data);
    if (stamp < 0) {
      this.onControl(pair, side, data);
      return;
    }
    this.received += 1;
    if (this.measuring) {
      this.windowMessages += 1;
      this.windowBytes += data.length;
      if (this.sampleCount < this.samples.length) this.samples[this.sampleCount++] = performance.now() - stamp / 1000;
    }
    if (this.options.verifyAll === true || this.received % VERIFY_EVERY === 0) this.verify(pair, side, data);
    if (this.running === 'closed' && pair.sendNext(this.steps)) this.sent += 1;
  }

  /**
   * Frames other than relayed signals: pongs are fine and server pings get their answer; errors,
   * expiries and leaves are not fine.
   */
  private onControl(pair: Pair, side: Side, data: Buffer): void {
    const text = data.toString();
    const action = this.protocol.control(text);
    const ws = side === 'a' ? pair.a : pair.b;
    if (action.kind === 'reply') {
      if (ws?.readyState === WebSocket.OPEN) ws.send(action.frame);
    } else if (action.kind === 'unexpected') {
      if (side === 'b' && this.isPartnerJoinedAgain(pair, text)) this.repeatedPeerJoined += 1;
      else this.fail(`unexpected frame ${text.slice(0, 200)}`);
    }
  }

  /** A `peer-joined` for `a` sent to `b`, whose welcome listed `a` already (see RunResult). */
  private isPartnerJoinedAgain(pair: Pair, text: string): boolean {
    if (this.protocol.join !== 'room') return false;
    const frame = this.protocol.decode(text);
    return frame?.['type'] === 'peer-joined' && (frame['peer'] as { id?: unknown } | undefined)?.id === pair.aId;
  }

  /** Parses a received signal in full: from the partner, to this client, the data unchanged. */
  private verify(pair: Pair, side: Side, data: Buffer): void {
    const frame = this.protocol.decode(data.toString());
    if (frame === null) {
      this.fail(`pair ${pair.index} ${side} got a frame that is no signal: ${data.toString().slice(0, 120)}`);
      return;
    }
    const from = frame[this.protocol.fromKey];
    const partner = side === 'a' ? 'b' : 'a';
    if (from !== (side === 'a' ? pair.bId : pair.aId)) {
      this.fail(`pair ${pair.index} ${side} got a signal from ${JSON.stringify(from)}`);
      return;
    }
    if (PROTOCOL_OF[this.options.subject] === 'peerjs' && frame['dst'] !== (side === 'a' ? pair.aId : pair.bId)) {
      this.fail(`pair ${pair.index} ${side} got a signal for ${JSON.stringify(frame['dst'])}`);
      return;
    }
    const text = JSON.stringify(frame[this.protocol.dataKey]);
    const zeroed = STAMP_MARKER + STAMP_ZERO + text.slice(STAMP_MARKER.length + STAMP_DIGITS);
    if (!text.startsWith(STAMP_MARKER) || !this.dataBySide[partner].has(zeroed)) {
      this.fail(`pair ${pair.index} ${side} got altered data ${text.slice(0, 120)}`);
      return;
    }
    this.verified += 1;
  }

  private startRun(mode: 'closed' | 'open', options: RunOptions): void {
    if (this.running !== undefined) throw new Error('a run is already under way');
    if (this.pairs.length === 0) throw new Error('no pairs connected');
    // Errors are kept from earlier: a socket the server closed between runs fails this one too.
    if (this.errors.length > 0) throw new Error(this.errors.join('; '));
    this.running = mode;
    this.sent = 0;
    this.received = 0;
    this.verified = 0;
    this.windowMessages = 0;
    this.windowBytes = 0;
    this.sampleCount = 0;
    const max = options.maxSamples ?? 400_000;
    if (this.samples.length !== max) this.samples = new Float64Array(max);
  }

  /** Warm-up, then the measured window, then stops sending and waits for every message. */
  private async timeline(options: RunOptions, stop: () => void): Promise<RunResult> {
    await sleep(options.warmupMs);
    this.measuring = true;
    const t0 = performance.now();
    await sleep(options.measureMs);
    this.measuring = false;
    const seconds = (performance.now() - t0) / 1000;
    stop();
    this.running = undefined;
    const drainMs = options.drainTimeoutMs ?? DRAIN_TIMEOUT_MS;
    const deadline = performance.now() + drainMs;
    while (this.received < this.sent && this.errors.length === 0 && performance.now() < deadline) await sleep(5);
    if (this.errors.length > 0) throw new Error(this.errors.join('; '));
    if (this.received !== this.sent) {
      throw new Error(`${this.options.subject}: ${this.sent - this.received} of ${this.sent} messages never arrived (waited ${drainMs} ms)`);
    }
    return {
      messages: this.windowMessages,
      bytes: this.windowBytes,
      seconds,
      latenciesMs: this.samples.slice(0, this.sampleCount),
      sent: this.sent,
      received: this.received,
      verified: this.verified,
      repeatedPeerJoined: this.repeatedPeerJoined,
    };
  }

  /** Closed loop: every pair keeps `window` messages in flight. */
  async runClosed(options: RunOptions & { readonly window: number }): Promise<RunResult> {
    this.startRun('closed', options);
    for (const pair of this.pairs) {
      for (let i = 0; i < options.window; i++) if (pair.sendNext(this.steps)) this.sent += 1;
    }
    return this.timeline(options, () => undefined);
  }

  /** Open loop: `rate` messages per second in total, round-robin over the pairs. */
  async runOpen(options: RunOptions & { readonly rate: number }): Promise<RunResult> {
    this.startRun('open', options);
    const start = performance.now();
    let issued = 0;
    let cursor = 0;
    const tick = (): void => {
      const due = Math.floor(((performance.now() - start) * options.rate) / 1000) - issued;
      for (let i = 0; i < due; i++) {
        if (this.pairs[cursor]!.sendNext(this.steps)) this.sent += 1;
        cursor = cursor + 1 === this.pairs.length ? 0 : cursor + 1;
      }
      issued += Math.max(0, due);
    };
    const timer = setInterval(tick, 1);
    return this.timeline(options, () => clearInterval(timer));
  }

  /** Closes every socket of the group (client side first). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.keepaliveTimer);
    const sockets = [...this.sockets];
    await Promise.all(
      sockets.map(
        (ws) =>
          new Promise<void>((resolve) => {
            if (ws.readyState === WebSocket.CLOSED) return resolve();
            ws.once('close', () => resolve());
            ws.terminate();
          }),
      ),
    );
    this.pairs.length = 0;
  }
}
