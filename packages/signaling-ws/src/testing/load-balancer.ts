// A loopback TCP load balancer (layer 4, node:net) in front of the nodes of a local cluster, as a
// real one would stand in front of a deployment: each new connection goes to the next backend in
// round-robin order, skipping backends that refuse it (a killed node), and its bytes are piped
// both ways untouched. When either side closes or fails, the other is destroyed too, so a client
// whose node dies sees its connection drop and, reconnecting to the same address, lands on a
// live node. No stickiness: the signaling server needs none (any node takes any client).

import { createConnection, createServer, type Socket } from 'node:net';

/** Options of `startLoadBalancer`. */
export interface LoadBalancerOptions {
  /** The backends' ports on `host`, in round-robin order. */
  readonly backends: readonly number[];
  /** The address of the backends and of the balancer. Default 127.0.0.1. */
  readonly host?: string;
  /** The balancer's port. Default 0 (a free one). */
  readonly port?: number;
  /** How long to wait for a backend to accept before trying the next one. Default 2000 ms. */
  readonly connectTimeoutMs?: number;
}

/** A running load balancer. */
export interface LoadBalancer {
  readonly port: number;
  /** `ws://HOST:PORT/`. */
  readonly url: string;
  /** `http://HOST:PORT/`. */
  readonly httpUrl: string;
  /** The backend port each accepted connection was forwarded to, in order. */
  readonly routed: readonly number[];
  /** Client connections that no backend accepted (each was closed). */
  readonly refused: number;
  /** Stops accepting, destroys every forwarded connection and resolves once closed. */
  close(): Promise<void>;
}

/** Starts a round-robin TCP load balancer over `backends` on a loopback port. */
export function startLoadBalancer(options: LoadBalancerOptions): Promise<LoadBalancer> {
  const host = options.host ?? '127.0.0.1';
  const connectTimeoutMs = options.connectTimeoutMs ?? 2000;
  const backends = [...options.backends];
  if (backends.length === 0) throw new TypeError('startLoadBalancer: at least one backend is needed');
  const routed: number[] = [];
  let refused = 0;
  let next = 0;
  const open = new Set<Socket>();

  /** Connects to the first backend from `next` on that accepts, or resolves undefined. */
  async function connectToBackend(): Promise<{ socket: Socket; port: number } | undefined> {
    const first = next;
    next = (next + 1) % backends.length;
    for (let tried = 0; tried < backends.length; tried += 1) {
      const port = backends[(first + tried) % backends.length]!;
      const socket = await new Promise<Socket | undefined>((resolve) => {
        const upstream = createConnection({ host, port });
        const fail = (): void => {
          upstream.destroy();
          resolve(undefined);
        };
        upstream.setTimeout(connectTimeoutMs, fail);
        upstream.once('error', fail);
        upstream.once('connect', () => {
          upstream.setTimeout(0);
          upstream.removeListener('error', fail);
          resolve(upstream);
        });
      });
      if (socket !== undefined) return { socket, port };
    }
    return undefined;
  }

  const server = createServer({ pauseOnConnect: true }, (client) => {
    open.add(client);
    client.once('close', () => open.delete(client));
    client.on('error', () => client.destroy());
    void connectToBackend().then((backend) => {
      if (backend === undefined) {
        refused += 1;
        client.destroy();
        return;
      }
      const upstream = backend.socket;
      if (client.destroyed) {
        upstream.destroy();
        return;
      }
      routed.push(backend.port);
      open.add(upstream);
      upstream.once('close', () => {
        open.delete(upstream);
        client.destroy();
      });
      upstream.on('error', () => upstream.destroy());
      client.once('close', () => upstream.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.removeListener('error', reject);
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      resolve({
        port,
        url: `ws://${host}:${port}/`,
        httpUrl: `http://${host}:${port}/`,
        routed,
        get refused() {
          return refused;
        },
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            for (const socket of open) socket.destroy();
          }),
      });
    });
  });
}
