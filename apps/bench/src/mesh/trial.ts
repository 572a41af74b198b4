import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Child } from '../signaling/children.js';

// One set-up of the mesh benchmark: `size` members, each in a process of its own
// (member-process.ts), in a fresh room; all but the last join the call and connect with each
// other; then the last member joins, and the set-up lasts from its join() to the moment the
// last member's group status shows every pair connected (webrtc-pc connectionState "connected"
// at both ends of every pair). Times are epoch milliseconds read in each process.

const NAMES = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'] as const;
/** The built member process next to this module (dist/mesh). */
export const MEMBER_PROCESS = join(dirname(fileURLToPath(import.meta.url)), 'member-process.js');

/** What one trial measured. */
export interface SetUpTrial {
  /** Members in the call at the end (the joiner included). */
  readonly size: number;
  /** From the last member's join() to every pair of the call connected at both ends, ms. */
  readonly connectedMs: number;
  /** From the join to each member's own pairs all connected, ms (the joiner last). */
  readonly memberConnectedMs: readonly number[];
}

export interface TrialOptions {
  readonly url: string;
  /** A room name no other trial uses. */
  readonly room: string;
  readonly size: number;
  /** The member process's module (default MEMBER_PROCESS; tests that run this from src pass the built one). */
  readonly memberProcess?: string;
}

/** Runs one trial; its processes (and so their connections and clients) are gone when it returns or throws. */
export async function runSetUpTrial(options: TrialOptions): Promise<SetUpTrial> {
  if (!Number.isInteger(options.size) || options.size < 2 || options.size > NAMES.length) {
    throw new RangeError(`a trial holds 2 to ${NAMES.length} members, not ${options.size}`);
  }
  const names = NAMES.slice(0, options.size);
  const started = await Promise.allSettled(names.map((name) => Child.start(`mesh member ${name}`, options.memberProcess ?? MEMBER_PROCESS, [options.url, options.room, name])));
  const members = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value.child] : []));
  try {
    const failed = started.find((result) => result.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    const ids = await Promise.all(members.map((member) => member.request<string>('inRoom', { others: options.size - 1 })));
    const othersOf = (index: number, among: number): string[] => ids.slice(0, among).filter((_, other) => other !== index);

    const earlier = members.slice(0, -1);
    const earlierConnected = earlier.map((member, index) => member.request<number>('connectedTo', { ids: othersOf(index, earlier.length) }));
    await Promise.all(earlier.map((member) => member.request<number>('join')));
    await Promise.all(earlierConnected);

    const allConnected = members.map((member, index) => member.request<number>('connectedTo', { ids: othersOf(index, members.length) }));
    const joinedAt = await members[members.length - 1]!.request<number>('join');
    const connectedAt = await Promise.all(allConnected);
    return {
      size: options.size,
      connectedMs: Math.max(...connectedAt) - joinedAt,
      memberConnectedMs: connectedAt.map((at) => at - joinedAt),
    };
  } finally {
    await Promise.all(members.map((member) => member.stop()));
  }
}
