import { loopbackOnly } from './loopback.js';
import type { RtcConfigurationLike } from './rtc-types.js';

// What each WebRTC engine Parley is tested with needs to make a call on one machine, without a
// STUN or TURN server: the interop suite (packages/browser/test/interop) uses exactly these. Node
// engines take an RTCConfiguration with their own extra fields; browsers take launch settings.
// Firefox never gathers 127.0.0.1 (and nothing at all where `lo` is the only interface): its calls
// need an interface with an address and a default route, e.g. the veth pair `npm test` adds inside
// its own network namespace (scripts/test.mjs), and the peers of a Firefox call signal that address.

/** The engines of the interop suite, by the name its table uses. */
export type EngineName = 'chromium' | 'firefox' | 'libwebrtc' | 'werift' | 'libdatachannel';

/** Launch settings for Chromium on one machine. */
export interface ChromiumEngineOptions {
  /**
   * `--allow-loopback-in-peer-connection` (Chromium gathers 127.0.0.1 only with it), fake camera
   * and microphone without a prompt, and host addresses instead of mDNS names
   * (draft-ietf-mmusic-mdns-ice-candidates) so that a candidate filter by address keeps them.
   */
  readonly args: readonly string[];
}

/** Launch settings for Firefox on one machine (puppeteer-core `extraPrefsFirefox`). */
export interface FirefoxEngineOptions {
  /** Fake camera and microphone, no prompt, loopback ICE allowed, host addresses not obfuscated. */
  readonly prefs: Readonly<Record<string, boolean | string | number>>;
}

/**
 * One documented option set per engine for calls on one machine (tests, local demos), like
 * `loopbackOnly()`: no ICE servers, and what each engine needs to gather a usable host candidate.
 */
export const engineOptions = {
  /** Chromium's launch flags (see ChromiumEngineOptions). */
  chromium(): ChromiumEngineOptions {
    return {
      args: [
        '--allow-loopback-in-peer-connection',
        '--use-fake-device-for-media-stream',
        '--use-fake-ui-for-media-stream',
        '--disable-features=WebRtcHideLocalIpsWithMdns',
      ],
    };
  },
  /** Firefox's prefs (see FirefoxEngineOptions); it needs a non-loopback interface (see above). */
  firefox(): FirefoxEngineOptions {
    return {
      prefs: {
        'media.navigator.streams.fake': true,
        'media.navigator.permission.disabled': true,
        'media.peerconnection.ice.loopback': true,
        'media.peerconnection.ice.obfuscate_host_addresses': false,
      },
    };
  },
  /** libwebrtc in Node (@roamhq/wrtc): it gathers every interface, 127.0.0.1 included. */
  libwebrtc<C extends RtcConfigurationLike>(configuration: C = {} as C): C & { iceServers: never[] } {
    return loopbackOnly(configuration);
  },
  /**
   * werift: its host candidates come from the machine's interfaces, loopback excluded, so
   * 127.0.0.1 is added as an extra host address (`iceAdditionalHostAddresses`, werift's own field).
   */
  werift<C extends RtcConfigurationLike>(configuration: C = {} as C): C & { iceServers: never[]; readonly iceAdditionalHostAddresses: string[] } {
    return { ...loopbackOnly(configuration), iceAdditionalHostAddresses: ['127.0.0.1'] };
  },
  /**
   * node-datachannel's polyfill (libdatachannel): `bindAddress` (its own field) makes it gather and
   * listen on that one address; 127.0.0.1 unless the call needs another (a Firefox peer).
   */
  libdatachannel<C extends RtcConfigurationLike>(
    bindAddress = '127.0.0.1',
    configuration: C = {} as C,
  ): C & { iceServers: never[]; readonly bindAddress: string } {
    return { ...loopbackOnly(configuration), bindAddress };
  },
};
