import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_CHAT_TEXT, encodeChatFrame, parseChatFrame } from '../../src/chat-protocol.js';
import type { ChatFrame, ChatFrameParse } from '../../src/chat-protocol.js';

// The chat channel's frames come from another browser: whatever arrives, parseChatFrame either
// returns a well-formed frame or a reason, and never throws.

const runs = Number(process.env['PARLEY_FC_RUNS'] ?? 100);

/**
 * Text a person can send: not blank, within the limit. Short texts of any code points (astral and
 * lone surrogates included), and texts of any length up to the limit.
 */
const chatText = fc
  .oneof(
    fc.string({ unit: 'binary', minLength: 1, maxLength: MAX_CHAT_TEXT }),
    fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: MAX_CHAT_TEXT, size: 'max' }),
  )
  .filter((text) => text.trim() !== '' && text.length <= MAX_CHAT_TEXT);

const chatFrame: fc.Arbitrary<ChatFrame> = chatText.map((text) => ({ type: 'chat', text }));
const mediaFrame: fc.Arbitrary<ChatFrame> = fc.record({ type: fc.constant('media'), audio: fc.boolean(), video: fc.boolean(), screen: fc.boolean() });

function refusal(result: ChatFrameParse): string {
  if (result.ok) throw new Error(`expected a refusal, got ${JSON.stringify(result.frame)}`);
  return result.reason;
}

describe('encodeChatFrame and parseChatFrame', () => {
  it('round-trip any chat or media frame', () => {
    fc.assert(
      fc.property(fc.oneof(chatFrame, mediaFrame), (frame) => {
        const encoded = encodeChatFrame(frame);
        expect(typeof encoded).toBe('string');
        expect(parseChatFrame(encoded)).toEqual({ ok: true, frame });
      }),
      { numRuns: runs },
    );
  });

  it('round-trip a chat message of exactly MAX_CHAT_TEXT characters', () => {
    const frame: ChatFrame = { type: 'chat', text: 'x'.repeat(MAX_CHAT_TEXT) };
    expect(parseChatFrame(encodeChatFrame(frame))).toEqual({ ok: true, frame });
  });

  it('keep the spaces and line breaks around a message', () => {
    const frame: ChatFrame = { type: 'chat', text: '  two\nlines  ' };
    expect(parseChatFrame(encodeChatFrame(frame))).toEqual({ ok: true, frame });
  });

  it.each([
    [true, true],
    [true, false],
    [false, true],
    [false, false],
  ])('round-trip a media frame with audio %s and video %s', (audio, video) => {
    const frame: ChatFrame = { type: 'media', audio, video, screen: false };
    expect(parseChatFrame(encodeChatFrame(frame))).toEqual({ ok: true, frame });
  });

  it('round-trip a media frame of a shared screen', () => {
    const frame: ChatFrame = { type: 'media', audio: true, video: true, screen: true };
    expect(parseChatFrame(encodeChatFrame(frame))).toEqual({ ok: true, frame });
  });
});

describe('parseChatFrame', () => {
  it('keeps only the known fields of a frame', () => {
    expect(parseChatFrame('{"type":"chat","text":"hi","from":"mallory","html":"<b>x</b>"}')).toEqual({
      ok: true,
      frame: { type: 'chat', text: 'hi' },
    });
    expect(parseChatFrame('{"type":"media","audio":false,"video":true,"extra":1}')).toEqual({
      ok: true,
      frame: { type: 'media', audio: false, video: true, screen: false },
    });
  });

  it('reads a media frame without screen (from a page before screen sharing) as a camera', () => {
    expect(parseChatFrame('{"type":"media","audio":true,"video":true}')).toEqual({ ok: true, frame: { type: 'media', audio: true, video: true, screen: false } });
  });

  it.each(['"yes"', '1', 'null'])('refuses a media frame whose screen is %s', (screen) => {
    expect(refusal(parseChatFrame(`{"type":"media","audio":true,"video":true,"screen":${screen}}`))).toBe('media frame screen must be a boolean');
  });

  it('refuses a binary frame', () => {
    const bytes = new TextEncoder().encode(encodeChatFrame({ type: 'chat', text: 'hi' }));
    expect(refusal(parseChatFrame(bytes.buffer))).toBe('binary frame on the chat channel');
  });

  it.each(['', 'hello', '{"type":"chat"', "{'type':'chat','text':'hi'}", 'undefined'])('refuses the non-JSON text %j', (data) => {
    expect(refusal(parseChatFrame(data))).toBe('chat frame is not JSON');
  });

  it.each(['null', '42', '"chat"', 'true'])('refuses the JSON non-object %s', (data) => {
    expect(refusal(parseChatFrame(data))).toBe('chat frame is not an object');
  });

  it.each(['[]', '["chat","hi"]', '[{"type":"chat","text":"hi"}]'])('refuses the JSON array %s', (data) => {
    expect(refusal(parseChatFrame(data))).toBe('chat frame is not an object');
  });

  it.each([
    ['{"type":"file","name":"a.txt"}', '"file"'],
    ['{"type":"CHAT","text":"hi"}', '"CHAT"'],
    ['{"type":1}', '1'],
    ['{"type":null}', 'null'],
  ])('refuses %s as an unknown type, quoting it', (data, quoted) => {
    expect(refusal(parseChatFrame(data))).toBe(`unknown chat frame type ${quoted}`);
  });

  it('refuses an object without a type', () => {
    expect(refusal(parseChatFrame('{"text":"hi"}'))).toMatch(/^unknown chat frame type/);
  });

  it.each([
    ['no text', '{"type":"chat"}'],
    ['an empty text', '{"type":"chat","text":""}'],
    ['a text of spaces', '{"type":"chat","text":"   "}'],
    ['a text of line breaks and tabs', '{"type":"chat","text":"\\n\\t\\r\\n"}'],
    ['a text of non-breaking spaces', '{"type":"chat","text":"\\u00a0\\u3000"}'],
    ['a number text', '{"type":"chat","text":42}'],
    ['a null text', '{"type":"chat","text":null}'],
    ['an array text', '{"type":"chat","text":["hi"]}'],
  ])('refuses a chat frame with %s', (_, data) => {
    expect(refusal(parseChatFrame(data))).toBe('chat message without text');
  });

  it('refuses a chat message one character over MAX_CHAT_TEXT', () => {
    const data = encodeChatFrame({ type: 'chat', text: 'x'.repeat(MAX_CHAT_TEXT + 1) });
    expect(refusal(parseChatFrame(data))).toBe(`chat message longer than ${MAX_CHAT_TEXT} characters`);
  });

  it('refuses any chat message longer than MAX_CHAT_TEXT', () => {
    fc.assert(
      fc.property(fc.string({ minLength: MAX_CHAT_TEXT + 1, maxLength: MAX_CHAT_TEXT + 50 }).filter((t) => t.trim() !== ''), (text) => {
        expect(refusal(parseChatFrame(encodeChatFrame({ type: 'chat', text })))).toMatch(/longer than/);
      }),
      { numRuns: 20 },
    );
  });

  it.each([
    ['string flags', '{"type":"media","audio":"true","video":"false"}'],
    ['numeric flags', '{"type":"media","audio":1,"video":0}'],
    ['a null video', '{"type":"media","audio":true,"video":null}'],
    ['no video', '{"type":"media","audio":true}'],
    ['no audio', '{"type":"media","video":false}'],
    ['no flags', '{"type":"media"}'],
  ])('refuses a media frame with %s', (_, data) => {
    expect(refusal(parseChatFrame(data))).toBe('media frame needs boolean audio and video');
  });

  it('never throws, whatever text arrives', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((value) => JSON.stringify(value))), (data) => {
        const result = parseChatFrame(data);
        if (result.ok) expect(['chat', 'media']).toContain(result.frame.type);
        else expect(result.reason).not.toBe('');
      }),
      { numRuns: runs },
    );
  });
});
