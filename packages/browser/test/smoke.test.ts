import { createPeer } from '@parley/core';
import { createSignalingPair } from '@parley/core/testing';
import { describe, expect, it } from 'vitest';
import { keepLoopbackCandidates } from '../src/index.js';
import { createRealPort } from './helpers/wrtc.js';

describe('smoke', () => {
  it('two real peers connect over loopback and exchange a message', async () => {
    const [sa, sb] = createSignalingPair();
    const a = createPeer({ rtc: createRealPort(), signaling: sa, polite: false, candidateFilter: keepLoopbackCandidates, dataChannels: [{ label: 'chat' }] });
    const b = createPeer({ rtc: createRealPort(), signaling: sb, polite: true, candidateFilter: keepLoopbackCandidates, dataChannels: [{ label: 'chat' }] });
    const got = new Promise<unknown>((resolve) => b.events$.subscribe((e) => { if (e.type === 'message') resolve(e.data); }));
    let sent = false; a.events$.subscribe((e) => { if (e.type === 'datachannel') e.channel.state$.subscribe((s) => { if (!sent && s === 'open') { sent = true; e.channel.send('hello'); } }); });
    expect(await got).toBe('hello');
    a.close(); b.close();
  });
});
