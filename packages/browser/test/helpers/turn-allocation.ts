import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';

// A minimal TURN client (RFC 8656 over RFC 8489 STUN) on UDP: ALLOCATE and REFRESH with the
// long-term credential mechanism (RFC 8489 §9.2), to ask coturn directly what it does with
// TURN REST credentials that expired while their allocation lives (libwebrtc refreshes an
// allocation only a minute before its lifetime ends, ~10 min, too late for a test to see).

const MAGIC_COOKIE = 0x2112a442;
/** RFC 8656 §17 methods, as request message types (class bits 0). */
const ALLOCATE = 0x0003;
const REFRESH = 0x0004;
/** RFC 8489 §18.3 / RFC 8656 §18 attribute types. */
const ATTR = { username: 0x0006, integrity: 0x0008, errorCode: 0x0009, lifetime: 0x000d, realm: 0x0014, nonce: 0x0015, transport: 0x0019 } as const;
const UDP = 17;

/** What the server answered: success, or the error code (RFC 8489 §14.8). */
export interface TurnAnswer {
  readonly ok: boolean;
  /** The error code (e.g. 401, 437, 438, 441); null on success. */
  readonly code: number | null;
}

interface Attribute {
  readonly type: number;
  readonly value: Buffer;
}

function encode(type: number, transactionId: Buffer, attributes: readonly Attribute[], key?: Buffer): Buffer {
  const parts = attributes.map(({ type: attributeType, value }) => {
    const header = Buffer.alloc(4);
    header.writeUInt16BE(attributeType, 0);
    header.writeUInt16BE(value.length, 2);
    return Buffer.concat([header, value, Buffer.alloc((4 - (value.length % 4)) % 4)]);
  });
  const body = Buffer.concat(parts);
  const header = Buffer.alloc(20);
  header.writeUInt16BE(type, 0);
  header.writeUInt32BE(MAGIC_COOKIE, 4);
  transactionId.copy(header, 8);
  if (key === undefined) {
    header.writeUInt16BE(body.length, 2);
    return Buffer.concat([header, body]);
  }
  // MESSAGE-INTEGRITY (RFC 8489 §14.5): HMAC-SHA1 over the message with the length counting it.
  header.writeUInt16BE(body.length + 24, 2);
  const mac = createHmac('sha1', key).update(Buffer.concat([header, body])).digest();
  const integrity = Buffer.alloc(4);
  integrity.writeUInt16BE(ATTR.integrity, 0);
  integrity.writeUInt16BE(20, 2);
  return Buffer.concat([header, body, integrity, mac]);
}

function decode(message: Buffer): { readonly type: number; readonly transactionId: Buffer; readonly attributes: Map<number, Buffer> } {
  const attributes = new Map<number, Buffer>();
  for (let at = 20; at + 4 <= message.length; ) {
    const type = message.readUInt16BE(at);
    const length = message.readUInt16BE(at + 2);
    attributes.set(type, message.subarray(at + 4, at + 4 + length));
    at += 4 + length + ((4 - (length % 4)) % 4);
  }
  return { type: message.readUInt16BE(0), transactionId: message.subarray(8, 20), attributes };
}

function answerOf(attributes: Map<number, Buffer>, type: number): TurnAnswer {
  if ((type & 0x0110) === 0x0100) return { ok: true, code: null };
  const error = attributes.get(ATTR.errorCode);
  return { ok: false, code: error === undefined ? -1 : error[2]! * 100 + error[3]! };
}

/** One TURN client transport (a UDP socket on 127.0.0.1) towards `port`. */
export class TurnAllocationClient {
  private nonce: Buffer | null = null;
  private realm: Buffer | null = null;

  private constructor(
    private readonly socket: Socket,
    private readonly port: number,
  ) {}

  static async open(port: number): Promise<TurnAllocationClient> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    return new TurnAllocationClient(socket, port);
  }

  /** ALLOCATE (UDP relay): the unauthenticated try for realm and nonce, then with credentials. */
  async allocate(username: string, password: string): Promise<TurnAnswer> {
    const transport = Buffer.from([UDP, 0, 0, 0]);
    if (this.nonce === null) {
      const challenge = await this.request(ALLOCATE, [{ type: ATTR.transport, value: transport }]);
      if (challenge.answer.code !== 401) return challenge.answer;
    }
    return (await this.authenticated(ALLOCATE, [{ type: ATTR.transport, value: transport }], username, password)).answer;
  }

  /** REFRESH of this transport's allocation for `lifetimeSeconds` (RFC 8656 §7). */
  async refresh(username: string, password: string, lifetimeSeconds = 600): Promise<TurnAnswer> {
    const lifetime = Buffer.alloc(4);
    lifetime.writeUInt32BE(lifetimeSeconds, 0);
    return (await this.authenticated(REFRESH, [{ type: ATTR.lifetime, value: lifetime }], username, password)).answer;
  }

  close(): void {
    this.socket.close();
  }

  /** A request with USERNAME, REALM, NONCE and MESSAGE-INTEGRITY; once more on 438 Stale Nonce. */
  private async authenticated(method: number, attributes: Attribute[], username: string, password: string) {
    for (let attempt = 0; ; attempt += 1) {
      const realm = this.realm ?? Buffer.alloc(0);
      const key = createHash('md5').update(`${username}:${realm.toString('utf8')}:${password}`).digest();
      const result = await this.request(
        method,
        [...attributes, { type: ATTR.username, value: Buffer.from(username) }, { type: ATTR.realm, value: realm }, { type: ATTR.nonce, value: this.nonce ?? Buffer.alloc(0) }],
        key,
      );
      if (result.answer.code !== 438 || attempt > 0) return result;
    }
  }

  private request(type: number, attributes: readonly Attribute[], key?: Buffer): Promise<{ answer: TurnAnswer }> {
    const transactionId = randomBytes(12);
    const message = encode(type, transactionId, attributes, key);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.socket.off('message', onMessage);
        reject(new Error(`no answer from the TURN server on 127.0.0.1:${this.port}`));
      }, 5000);
      const onMessage = (data: Buffer): void => {
        const decoded = decode(data);
        if (!decoded.transactionId.equals(transactionId)) return;
        clearTimeout(timer);
        this.socket.off('message', onMessage);
        this.nonce = decoded.attributes.get(ATTR.nonce) ?? this.nonce;
        this.realm = decoded.attributes.get(ATTR.realm) ?? this.realm;
        resolve({ answer: answerOf(decoded.attributes, decoded.type) });
      };
      this.socket.on('message', onMessage);
      this.socket.send(message, this.port, '127.0.0.1');
    });
  }
}
