import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The peer's context in V8 (see `contextShapeKeeper` in peer.machine.ts): a dictionary-mode
// context costs 1.1 KiB more per idle peer and makes every `assign` copy slower. Checked in a
// plain Node process on the built package, as an app runs it: under vitest's module runner V8
// never lost the shape, with or without the keeper.

const packageDir = fileURLToPath(new URL('..', import.meta.url));

/** Starts and closes one idle peer after each of `collections` full GCs; prints whether each context was fast-mode. */
const PROBE = `
import { createPeer } from '@parley/core';
import { createFakeNetwork, createSignalingPair } from '@parley/core/testing';
// Fake steps as microtasks: the default setTimeout steps would keep the closed peers alive.
const scheduler = { schedule: (task) => task };
// A function, so that no variable holds the peer during the next GC.
function isContextOfIdlePeerFast() {
  const [signaling] = createSignalingPair({ scheduler });
  const peer = createPeer({ rtc: createFakeNetwork({ scheduler }).createPort(), signaling, polite: false });
  const fast = %HasFastProperties(peer.actor.getSnapshot().context);
  peer.close();
  return fast;
}
const fast = [];
for (let i = 0; i < Number(process.argv[1]); i++) {
  fast.push(isContextOfIdlePeerFast());
  gc();
}
process.stdout.write(JSON.stringify(fast));
`;

describe('the peer context in V8', () => {
  it('stays a fast-mode object when peers come one at a time, each after a full GC with no peer alive', () => {
    // Node 20's V8 lost the shape after the ninth such collection; thirty leave a margin.
    const collections = 30;
    const probe = spawnSync(
      process.execPath,
      ['--allow-natives-syntax', '--expose-gc', '--input-type=module', '--eval', PROBE, String(collections)],
      { cwd: packageDir, encoding: 'utf8', timeout: 30_000 },
    );
    expect(probe.stderr).toBe('');
    const fast = JSON.parse(probe.stdout) as boolean[];
    expect(fast).toHaveLength(collections);
    expect(fast.indexOf(false), 'the first peer whose context was in dictionary mode').toBe(-1);
  });
});
