import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The signaling client's context in V8 (see `initialSignalingClientContext`): xstate copies it on
// every `assign`, and a dictionary-mode context makes each copy a hash-table copy. Checked in a
// plain Node process on the built package, as an app runs it, with V8's `%HasFastProperties`.

const packageDir = fileURLToPath(new URL('..', import.meta.url));

/** A client that is still connecting (to a closed loopback port), before and after queuing a signal. */
const PROBE = `
import { WebSocket } from 'ws';
import { createSignalingClient } from '@parley/signaling-ws/client';
const client = createSignalingClient({ url: 'ws://127.0.0.1:9/', room: 'probe', name: 'probe', webSocket: WebSocket });
const started = client.actor.getSnapshot().context;
client.actor.send({ type: 'SEND', to: 'someone', data: { kind: 'candidate', session: 's', candidate: null } });
const queued = client.actor.getSnapshot().context;
process.stdout.write(JSON.stringify({ started: %HasFastProperties(started), queued: %HasFastProperties(queued), queueLength: queued.queue.length }));
client.close();
`;

describe('the signaling client context in V8', () => {
  it('is a fast-mode object when the client starts and after an assign', () => {
    const probe = spawnSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '--eval', PROBE], {
      cwd: packageDir,
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(probe.stderr).toBe('');
    expect(JSON.parse(probe.stdout)).toEqual({ started: true, queued: true, queueLength: 1 });
  });
});
