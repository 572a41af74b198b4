// A two-peer call in Node as the README writes it: the signaling server in code (quiet), two
// signaling clients over `ws`, two peers on @roamhq/wrtc, and a data channel message each way.
// Prints one JSON line with what each side received. Type-checked without the DOM lib
// (tsconfig.no-dom.json): @roamhq/wrtc is loaded with the types @parley/browser gives it.
import { createRequire } from 'node:module';
import WebSocket from 'ws';
import { createPeer } from '@parley/core';
import type { Peer } from '@parley/core';
import { createRtcPort, keepLoopbackCandidates, loopbackOnly } from '@parley/browser';
import type { RtcPeerConnectionConstructor } from '@parley/browser';
import { createSignalingClient } from '@parley/signaling-ws/client';
import type { SignalingClient } from '@parley/signaling-ws/client';
import { createSignalingServer, silentLogger } from '@parley/signaling-ws/server';

const wrtc = createRequire(import.meta.url)('@roamhq/wrtc') as { RTCPeerConnection: RtcPeerConnectionConstructor };

const server = await createSignalingServer({ port: 0, logger: silentLogger });
const ada = createSignalingClient({ url: server.url, room: 'packed', name: 'ada', webSocket: WebSocket });
const bob = createSignalingClient({ url: server.url, room: 'packed', name: 'bob', webSocket: WebSocket });

/** The id of the first other member `client` sees. */
function firstPeerOf(client: SignalingClient): Promise<string> {
  return new Promise((resolve) => {
    const subscription = client.peers$.subscribe((peers) => {
      const remote = peers[0];
      if (remote === undefined) return;
      resolve(remote.id);
      queueMicrotask(() => subscription.unsubscribe());
    });
  });
}

/** A peer that says `greeting` on the `chat` channel once it opens; resolves with what it hears. */
function talk(client: SignalingClient, remoteId: string, polite: boolean, greeting: string): { peer: Peer; heard: Promise<unknown> } {
  const peer = createPeer({
    rtc: createRtcPort(new wrtc.RTCPeerConnection(loopbackOnly())),
    signaling: client.portFor(remoteId),
    polite,
    candidateFilter: keepLoopbackCandidates,
    dataChannels: [{ label: 'chat' }],
  });
  const heard = new Promise<unknown>((resolve) => {
    let said = false;
    peer.events$.subscribe((event) => {
      if (event.type === 'message') resolve(event.data);
      if (event.type === 'datachannel') {
        const chat = event.channel; // a DataChannel handle: send(data), readyState, state$, message$
        chat.state$.subscribe((state) => {
          if (said || state !== 'open') return;
          said = true;
          chat.send(greeting);
        });
      }
    });
  });
  return { peer, heard };
}

const [bobId, adaId] = await Promise.all([firstPeerOf(ada), firstPeerOf(bob)]);
const a = talk(ada, bobId, false, 'hello from ada');
const b = talk(bob, adaId, true, 'hello from bob');
const [adaHeard, bobHeard] = await Promise.all([a.heard, b.heard]);
console.log(JSON.stringify({ adaHeard, bobHeard }));
a.peer.close();
b.peer.close();
ada.close();
bob.close();
await server.close();
process.exit(0);
