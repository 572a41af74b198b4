// What the page reads from its address: the room and name to join, and the options a person or a
// test can set there. Pure functions of a URL, so they are tested without a browser.

/** How the page's peer connections gather and use ICE candidates. */
export type IceMode =
  /** The servers the signaling server offers in `welcome` (STUN, and TURN when configured). */
  | 'default'
  /** Only TURN relay candidates (`iceTransportPolicy: 'relay'`): the other side never learns our address. */
  | 'relay'
  /** No ICE servers, and only 127.0.0.1 candidates are signaled: two pages on one machine, in tests. */
  | 'loopback'
  /**
   * `ice=host:ADDRESS`: no ICE servers, and only candidates of that one address are signaled. For
   * Firefox on one machine: it never gathers 127.0.0.1, so its tests signal the address of an
   * interface inside their own network namespace (PARLEY_NAMESPACE_ADDRESS, scripts/test.mjs).
   */
  | 'host';

export interface PageSettings {
  /** Room and name, when both are in the address and valid; otherwise the join form asks. */
  readonly join: { readonly room: string; readonly name: string } | null;
  /** What the form starts with: the address's values even when invalid, so they can be fixed. */
  readonly draft: { readonly room: string; readonly name: string };
  readonly ice: IceMode;
  /** The one address whose candidates `ice=host:ADDRESS` signals; null for the other modes. */
  readonly iceAddress: string | null;
  /** `?inspect=1`: attach the Stately browser inspector (it needs the internet). */
  readonly inspect: boolean;
  /** `?inspect=local`: open the live machine view (no network needed) when the page starts. */
  readonly machineView: boolean;
  /** Problems with the address worth telling the person (an unknown `ice` value, a bad name). */
  readonly problems: readonly string[];
}

/** The signaling server's rule for room and peer names (wire protocol v1). */
export const NAME_RULE = /^[A-Za-z0-9_.-]{1,64}$/;
export const NAME_RULE_TEXT = '1–64 letters, digits, or . _ -';

const ICE_MODES: readonly IceMode[] = ['default', 'relay', 'loopback'];
/** `ice=host:` followed by an IPv4 address or an IPv6 one (hex digits, colons, dots). */
const ICE_HOST = /^host:(\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$/;

function isIceMode(value: string): value is IceMode {
  return (ICE_MODES as readonly string[]).includes(value);
}

/** The ICE mode and address an `ice=` value names, or null when it names none. */
function parseIce(value: string): { readonly ice: IceMode; readonly iceAddress: string | null } | null {
  if (isIceMode(value)) return { ice: value, iceAddress: null };
  const host = ICE_HOST.exec(value);
  return host?.[1] === undefined ? null : { ice: 'host', iceAddress: host[1] };
}

/** Checks a room or person name; returns the problem, or null when it is fine. */
export function nameProblem(what: 'room' | 'name', value: string): string | null {
  if (value === '') return `Enter a ${what === 'room' ? 'room' : 'name'}.`;
  if (!NAME_RULE.test(value)) return `The ${what === 'room' ? 'room' : 'name'} “${value}” is not allowed: use ${NAME_RULE_TEXT}.`;
  return null;
}

export function readSettings(url: URL): PageSettings {
  const params = url.searchParams;
  const room = (params.get('room') ?? '').trim();
  const name = (params.get('name') ?? '').trim();
  const iceParam = params.get('ice');
  const problems: string[] = [];
  let ice: IceMode = 'default';
  let iceAddress: string | null = null;
  if (iceParam !== null && iceParam !== '') {
    const parsed = parseIce(iceParam);
    if (parsed) ({ ice, iceAddress } = parsed);
    else problems.push(`Unknown ice=${iceParam}; use ice=relay, ice=loopback or ice=host:ADDRESS. Using the server's ICE servers.`);
  }
  const roomProblem = room === '' ? null : nameProblem('room', room);
  const nameProblemText = name === '' ? null : nameProblem('name', name);
  if (roomProblem) problems.push(roomProblem);
  if (nameProblemText) problems.push(nameProblemText);
  const join = room !== '' && name !== '' && roomProblem === null && nameProblemText === null ? { room, name } : null;
  const inspect = params.get('inspect') === '1' || params.get('inspect') === 'true';
  const machineView = params.get('inspect') === 'local';
  return { join, draft: { room, name }, ice, iceAddress, inspect, machineView, problems };
}

/** The page's address for `room` as `name`, keeping the other options of `current`. */
export function roomUrl(current: URL, room: string, name: string): URL {
  const next = new URL(current.href);
  next.searchParams.set('room', room);
  next.searchParams.set('name', name);
  next.hash = '';
  return next;
}

/**
 * The link to send someone: the room and the ICE mode (both ends must agree on it, e.g. relay,
 * loopback or host:ADDRESS), without our name, so the page asks theirs.
 */
export function inviteUrl(current: URL, room: string): URL {
  const invite = new URL(current.origin + current.pathname);
  invite.searchParams.set('room', room);
  const ice = current.searchParams.get('ice');
  if (ice !== null && parseIce(ice) !== null && ice !== 'default') invite.searchParams.set('ice', ice);
  return invite;
}

/**
 * The signaling WebSocket is on the page's own origin: `parley-signaling --static` accepts it on
 * any path, and Vite's dev server forwards `/signaling` to a local parley-signaling.
 */
export function signalingUrl(page: URL): string {
  const scheme = page.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${page.host}/signaling`;
}

/** A room name for the form when the address has none: short, readable, unlikely to collide. */
export function suggestRoomName(random: () => number = Math.random): string {
  const words = ['amber', 'birch', 'cedar', 'delta', 'ember', 'fjord', 'grove', 'harbor', 'iris', 'juniper', 'kestrel', 'lumen'];
  const word = words[Math.floor(random() * words.length)] ?? 'room';
  const number = Math.floor(random() * 9000) + 1000;
  return `${word}-${number}`;
}
