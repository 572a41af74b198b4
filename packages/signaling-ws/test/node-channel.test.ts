import { describe, expect, it } from 'vitest';
import { broadcastMessage, decodeNodeMessage, handoverMessage } from '../src/server/redis/node-channel.js';

// The node-channel codec as a node reads its messages: bytes (ioredis `messageBuffer`).
describe('node channel: messages read as bytes', () => {
  const bytes = (text: string): Buffer => Buffer.from(text, 'utf8');

  it('a deliver message keeps its frame as the exact bytes it came as, multi-byte characters and newlines included', () => {
    const frame = '{"type":"signal","from":"a1","data":{"text":"é\\n✓ 🎉"}}';
    const decoded = decodeNodeMessage(bytes(`d\nsalle-é\nb2\na1\n${frame}`));
    expect(decoded).toMatchObject({ kind: 'deliver', room: 'salle-é', to: 'b2', from: 'a1' });
    const delivered = decoded?.kind === 'deliver' ? decoded.frame : undefined;
    expect(Buffer.isBuffer(delivered)).toBe(true);
    expect(Buffer.compare(delivered as Buffer, bytes(frame))).toBe(0);
  });

  it('a frame with no sender, a broadcast with and without news, a takeover and a handover decode as before', () => {
    expect(decodeNodeMessage(bytes('d\nr\nb2\n\n{}'))).toMatchObject({ kind: 'deliver', from: undefined });
    const news = decodeNodeMessage(bytes(broadcastMessage('r', '{"type":"peer-joined"}', 'a1', '7')));
    expect(news).toMatchObject({ kind: 'broadcast', room: 'r', except: 'a1', olderThan: '7' });
    expect(String(news?.kind === 'broadcast' ? news.frame : '')).toBe('{"type":"peer-joined"}');
    expect(decodeNodeMessage(bytes(broadcastMessage('r', '{}', undefined)))).toMatchObject({ kind: 'broadcast', except: undefined, olderThan: undefined });
    expect(decodeNodeMessage(bytes('t\nr\na1\nnode2\n'))).toEqual({ kind: 'taken', room: 'r', id: 'a1', newNode: 'node2' });
    const held = [
      { from: 'a1', frame: '{"text":"é"}' },
      { from: undefined, frame: '{}' },
    ];
    expect(decodeNodeMessage(bytes(handoverMessage('r', 'b2', 'node1', held)))).toEqual({ kind: 'handover', room: 'r', id: 'b2', frames: held });
  });

  it('anything else is not a message of this version', () => {
    for (const text of ['', 'd', 'd\nr\nb2', 'dd\nr\nb2\na1\n{}', 'x\nr\nb2\na1\n{}', 'h\nr\nb2\nnode1\nnot json', 'h\nr\nb2\nnode1\n[[1,2]]']) {
      expect(decodeNodeMessage(bytes(text)), JSON.stringify(text)).toBeUndefined();
    }
  });
});
