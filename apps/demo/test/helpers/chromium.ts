import { accessSync, constants, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeWhenInstalled } from '../../../../packages/core/test/helpers/describe-when-installed.js';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';

// Debian's Chromium driven by playwright-core (docs/architecture.md, "Testing"). Nothing here ever
// downloads a browser: playwright-core has no browsers of its own, and the path is explicit.

export const CHROMIUM_PATH = process.env['PARLEY_CHROMIUM'] ?? '/usr/bin/chromium';
export const INSTALL_HINT = 'apt-get install -y chromium';

/**
 * The flags of docs/architecture.md ("Testing") plus what one machine needs: fake camera and microphone, no prompts,
 * and loopback candidates (Chromium gathers 127.0.0.1 only with --allow-loopback-in-peer-connection).
 */
export const CHROMIUM_FLAGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--use-fake-device-for-media-stream',
  '--allow-loopback-in-peer-connection',
];

export interface LaunchOptions {
  /** Answer every camera/microphone request with "denied", as a person clicking Block would. */
  readonly denyMedia?: boolean;
  /**
   * The fake camera plays a small Y4M clip of this size instead of Chromium's default
   * pattern (whatever size the page asks for, a file source has only its own): cheaper to
   * encode when several pages run on one machine, and a camera told apart from the fake screen
   * (1280x720, 16:9) by its shape.
   */
  readonly fakeCamera?: { readonly width: number; readonly height: number };
}

/**
 * Writes a Y4M clip (YUV4MPEG2, 4:2:0, 15 fps, one second) of moving stripes, for Chromium's
 * `--use-file-for-fake-video-capture` (it loops the file); returns its path.
 */
export function writeFakeCameraClip(width: number, height: number): string {
  const frames = 15;
  const parts: Buffer[] = [Buffer.from(`YUV4MPEG2 W${width} H${height} F15:1 Ip A1:1 C420jpeg\n`)];
  for (let frame = 0; frame < frames; frame += 1) {
    const luma = Buffer.alloc(width * height);
    for (let pixel = 0; pixel < luma.length; pixel += 1) luma[pixel] = ((pixel % width) + frame * 8) & 0xff;
    parts.push(Buffer.from('FRAME\n'), luma, Buffer.alloc((width * height) / 2, 128));
  }
  const path = join(tmpdir(), `parley-fake-camera-${width}x${height}-${process.pid}.y4m`);
  writeFileSync(path, Buffer.concat(parts));
  return path;
}

function chromiumMissing(): string | null {
  try {
    accessSync(CHROMIUM_PATH, constants.X_OK);
    return null;
  } catch {
    return `no Chromium at ${CHROMIUM_PATH} (install it with: ${INSTALL_HINT}; or set PARLEY_CHROMIUM)`;
  }
}

export const chromiumProblem = chromiumMissing();

/** `describe` for suites that need Chromium (skipped with the install hint, or failing under CI). */
export function describeInChromium(name: string, body: () => void): void {
  describeWhenInstalled(name, 'Chromium', chromiumProblem, body);
}

/**
 * A page refused the camera gets its host candidates as mDNS names (`<uuid>.local`) instead of
 * addresses: Chromium shows a page its addresses only once it has media permission (IETF
 * draft-ietf-mmusic-mdns-ice-candidates). The loopback filter keeps 127.0.0.1 only, so such a
 * page would signal no candidate at all; with this feature off it gathers 127.0.0.1 as before.
 */
const REFUSED_MEDIA_FLAGS: readonly string[] = ['--use-fake-ui-for-media-stream=deny', '--disable-features=WebRtcHideLocalIpsWithMdns'];

export async function launchChromium(options: LaunchOptions = {}): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    // playwright adds its own --headless; ours stays in the list for the record of docs/architecture.md's flags.
    // --use-fake-ui-for-media-stream also answers getDisplayMedia's picker: with the fake devices
    // the page gets a fake 1280x720 screen ("screen:-3:0"), as in a person's choice of a monitor.
    args: [
      ...CHROMIUM_FLAGS,
      ...(options.denyMedia ? REFUSED_MEDIA_FLAGS : ['--use-fake-ui-for-media-stream']),
      ...(options.fakeCamera ? [`--use-file-for-fake-video-capture=${writeFakeCameraClip(options.fakeCamera.width, options.fakeCamera.height)}`] : []),
    ],
  });
}
