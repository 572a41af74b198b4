// Child processes of the benchmark (servers and load generators) and a small request/response
// protocol over their IPC channel. Children exit when the channel closes, so a runner that dies
// leaves no orphans; the runner also kills whatever is still alive when it exits.

import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';

/** Parent -> child. */
export interface Request {
  readonly id: number;
  readonly op: string;
  readonly [arg: string]: unknown;
}
/** Child -> parent: the first message is `{ ready: info }`, then one reply per request. */
export type Reply =
  | { readonly ready: Record<string, unknown> }
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly error: string };

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

export class Child {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private stderrTail = '';
  private exitError: Error | undefined;
  readonly exited: Promise<void>;

  private constructor(
    readonly name: string,
    private readonly process: ChildProcess,
  ) {
    this.process.stderr?.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString()).slice(-2000);
    });
    this.exited = new Promise((resolve) => {
      this.process.once('exit', (code, signal) => {
        live.delete(this.process);
        this.exitError = new Error(
          `${this.name} (pid ${this.pid}) exited (code ${code}, signal ${signal})${this.stderrTail ? `: ${this.stderrTail.trim()}` : ''}`,
        );
        for (const { reject } of this.pending.values()) reject(this.exitError);
        this.pending.clear();
        resolve();
      });
    });
    this.process.on('message', (message: Reply) => {
      if (!('id' in message)) return;
      const waiter = this.pending.get(message.id);
      if (waiter === undefined) return;
      this.pending.delete(message.id);
      if (message.ok) waiter.resolve(message.value);
      else waiter.reject(new Error(`${this.name}: ${message.error}`));
    });
  }

  /** Why the process is gone, once it is. */
  get exitReason(): Error | undefined {
    return this.exitError;
  }

  get pid(): number {
    return this.process.pid ?? -1;
  }

  /** Forks `modulePath` and waits for its `ready` message. */
  static async start(
    name: string,
    modulePath: string,
    args: readonly string[],
    options: { readonly execArgv?: readonly string[]; readonly readyTimeoutMs?: number } = {},
  ): Promise<{ child: Child; ready: Record<string, unknown> }> {
    installExitHook();
    const process = fork(modulePath, [...args], {
      execArgv: [...(options.execArgv ?? [])],
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    live.add(process);
    const child = new Child(name, process);
    const timeoutMs = options.readyTimeoutMs ?? 20_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      const ready = await Promise.race([
        new Promise<Record<string, unknown>>((resolve) => {
          const onMessage = (message: Reply): void => {
            if ('ready' in message) {
              process.off('message', onMessage);
              resolve(message.ready);
            }
          };
          process.on('message', onMessage);
        }),
        child.exited.then(() => Promise.reject(child.exitError ?? new Error(`${name} exited before it was ready`))),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${name} was not ready within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      return { child, ready };
    } catch (error) {
      await child.stop();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  request<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    if (this.exitError !== undefined) return Promise.reject(this.exitError);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.process.send({ id, op, ...args } satisfies Request);
    });
  }

  /** Asks the child to exit (so that `--cpu-prof` writes its profile), then kills it. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    if (this.process.connected) this.process.disconnect();
    const timer = setTimeout(() => this.process.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/**
 * The child side: answers requests with `handlers[op](request)`, exits when the parent goes
 * away. Call once the child is ready, with what the parent should know.
 */
export function serveRequests(
  handlers: Readonly<Record<string, (request: Request) => unknown>>,
  ready: Record<string, unknown>,
  onExit: () => Promise<void> | void = () => undefined,
): void {
  const send = process.send?.bind(process);
  if (send === undefined) throw new Error('this module runs as a child process of the benchmark (fork with IPC)');
  process.on('disconnect', () => {
    void Promise.resolve()
      .then(onExit)
      .finally(() => process.exit(0));
  });
  process.on('message', (request: Request) => {
    const handler = handlers[request.op];
    Promise.resolve()
      .then(() => {
        if (handler === undefined) throw new Error(`unknown request ${request.op}`);
        return handler(request);
      })
      .then(
        (value) => {
          if (process.connected) send({ id: request.id, ok: true, value } satisfies Reply);
        },
        (error: unknown) => {
          if (process.connected) {
            send({ id: request.id, ok: false, error: error instanceof Error ? error.message : String(error) } satisfies Reply);
          }
        },
      );
  });
  send({ ready } satisfies Reply);
}
