// The `chat` data channel's frames: text messages, and what each side is sending (so the other
// side can say "muted" or "camera off" rather than show a frozen picture). JSON text frames;
// anything else is refused with a reason and the channel keeps working.

/** Longest chat message accepted, in characters (a screenful; the channel could carry more). */
export const MAX_CHAT_TEXT = 4000;

export type ChatFrame =
  | { readonly type: 'chat'; readonly text: string }
  /**
   * What the sender is sending now: `audio` false while its microphone is muted, `video` false
   * while its camera is off or missing, `screen` true while the video is its screen (absent from
   * senders that predate screen sharing: false).
   */
  | { readonly type: 'media'; readonly audio: boolean; readonly video: boolean; readonly screen: boolean };

export type ChatFrameParse = { readonly ok: true; readonly frame: ChatFrame } | { readonly ok: false; readonly reason: string };

export function encodeChatFrame(frame: ChatFrame): string {
  return JSON.stringify(frame);
}

export function parseChatFrame(data: string | ArrayBuffer): ChatFrameParse {
  if (typeof data !== 'string') return { ok: false, reason: 'binary frame on the chat channel' };
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return { ok: false, reason: 'chat frame is not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, reason: 'chat frame is not an object' };
  const record = value as Record<string, unknown>;
  switch (record['type']) {
    case 'chat': {
      const text = record['text'];
      if (typeof text !== 'string' || text.trim() === '') return { ok: false, reason: 'chat message without text' };
      if (text.length > MAX_CHAT_TEXT) return { ok: false, reason: `chat message longer than ${MAX_CHAT_TEXT} characters` };
      return { ok: true, frame: { type: 'chat', text } };
    }
    case 'media': {
      const audio = record['audio'];
      const video = record['video'];
      const screen = record['screen'] === undefined ? false : record['screen'];
      if (typeof audio !== 'boolean' || typeof video !== 'boolean') return { ok: false, reason: 'media frame needs boolean audio and video' };
      if (typeof screen !== 'boolean') return { ok: false, reason: 'media frame screen must be a boolean' };
      return { ok: true, frame: { type: 'media', audio, video, screen } };
    }
    default:
      return { ok: false, reason: `unknown chat frame type ${JSON.stringify(record['type'])}` };
  }
}
