// Playing a stream in a media element, as the page does for every remote video (the 1:1 call's
// and each group tile's) and for the local preview.
import { attachStream } from '@parley/browser';

/**
 * Shows a stream in a media element. `blocked`: the autoplay policy refused playback with sound;
 * `replaced`: the element was given another source (or none, the call ended) before it played.
 */
export async function play(element: HTMLMediaElement, stream: MediaStream): Promise<'playing' | 'blocked' | 'replaced'> {
  try {
    return (await attachStream(element, stream)) ? 'playing' : 'blocked';
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') return 'replaced';
    throw error;
  }
}

/** The first letter or digit of a name, for an avatar. */
export function initialOf(name: string): string {
  return (name.match(/[A-Za-z0-9]/)?.[0] ?? '?').toUpperCase();
}
