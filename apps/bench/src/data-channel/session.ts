import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { launchChromium } from '../chromium.js';
import { startPageServer } from '../page-server.js';
import { withTimeout } from '../timing.js';
import type { PageServer } from '../page-server.js';
import type { SignalingServerOptions } from '@parley/signaling-ws/server';
import { transferResult } from './plan.js';
import type { ConnectOptions, ReceiverReport, SenderReport, Subject, TransferPlan, TransferResult } from './plan.js';

// Two pages of one Chromium, each in its own browser context (contexts never share a renderer
// process, so the sender's heap is its own), served with the signaling WebSocket by one
// parley-signaling. One transfer: the receiver joins a fresh room, the sender joins and connects
// (not timed), a forced GC on the sender, then the timed transfer, then both close.

interface BenchWindow {
  readonly dataChannelBench: {
    connect(options: ConnectOptions): Promise<void>;
    transfer(): Promise<SenderReport>;
    received(): Promise<ReceiverReport>;
    close(): void;
  };
}

/** `--enable-precise-memory-info`: performance.memory without the 20-minute quantisation. */
export const DATA_CHANNEL_FLAGS: readonly string[] = ['--enable-precise-memory-info'];

export interface DataChannelSession {
  /** One transfer of `plan` by `subject`; rejects if it does not complete within `timeoutMs`. */
  transfer(subject: Subject, plan: TransferPlan, timeoutMs?: number): Promise<TransferResult>;
  /** The sender page, e.g. for a CDP profile. */
  readonly senderPage: Page;
  readonly senderCdp: CDPSession;
  close(): Promise<void>;
}

let rooms = 0;

/** `serverOptions`: e.g. `staticDir` for tests, which run from the sources rather than dist. */
export async function openSession(serverOptions: Partial<SignalingServerOptions> = {}): Promise<DataChannelSession> {
  let browser: Browser | undefined;
  let server: PageServer | undefined;
  try {
    server = await startPageServer(serverOptions);
    browser = await launchChromium(DATA_CHANNEL_FLAGS);
    const contexts: BrowserContext[] = [await browser.newContext(), await browser.newContext()];
    const [senderPage, receiverPage] = await Promise.all(contexts.map((context) => context.newPage())) as [Page, Page];
    const errors: string[] = [];
    for (const page of [senderPage, receiverPage]) {
      page.on('pageerror', (error) => errors.push(error.message));
      await page.goto(`${server.origin}data-channel.html`);
      await page.waitForFunction(() => 'dataChannelBench' in window);
    }
    const senderCdp = await contexts[0]!.newCDPSession(senderPage);
    const signalingUrl = server.signalingUrl;
    const openedBrowser = browser;
    const openedServer = server;

    const transfer = async (subject: Subject, plan: TransferPlan, timeoutMs = 60_000): Promise<TransferResult> => {
      const room = `dc-${process.pid}-${++rooms}`;
      const options = (role: ConnectOptions['role']): ConnectOptions => ({ role, subject, room, signalingUrl, plan });
      try {
        await receiverPage.evaluate((o) => (window as unknown as BenchWindow).dataChannelBench.connect(o), options('receiver'));
        await withTimeout(
          senderPage.evaluate((o) => (window as unknown as BenchWindow).dataChannelBench.connect(o), options('sender')),
          15_000,
          () => new Error(`${subject}: connecting took more than 15000 ms`),
        );
        await senderCdp.send('HeapProfiler.collectGarbage');
        const received = receiverPage.evaluate(() => (window as unknown as BenchWindow).dataChannelBench.received());
        const sent = senderPage.evaluate(() => (window as unknown as BenchWindow).dataChannelBench.transfer());
        const [sender, receiver] = await withTimeout(Promise.all([sent, received]), timeoutMs, () => new Error(`${subject}: transfer of ${plan.totalBytes} bytes took more than ${timeoutMs} ms`));
        return transferResult(subject, plan, sender, receiver);
      } catch (error) {
        if (errors.length > 0) throw new Error(`${error instanceof Error ? error.message : String(error)}; page errors: ${errors.join('; ')}`, { cause: error });
        throw error;
      } finally {
        await Promise.all([senderPage, receiverPage].map((page) => page.evaluate(() => (window as unknown as BenchWindow).dataChannelBench.close()).catch(() => {})));
      }
    };

    return {
      transfer,
      senderPage,
      senderCdp,
      async close() {
        await openedBrowser.close().catch(() => {});
        await openedServer.close();
      },
    };
  } catch (error) {
    await browser?.close().catch(() => {});
    await server?.close().catch(() => {});
    throw error;
  }
}
