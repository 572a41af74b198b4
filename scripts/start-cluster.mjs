// `npm run start:cluster`: the demo on a local Parley cluster. One redis-server on a free loopback
// port (persistence off, started by @parley/signaling-ws/testing; never the system service) and
// three parley-signaling processes sharing it (`--redis`) and one resume secret, on consecutive
// ports from PORT or PARLEY_PORT (default 1337), each serving the built demo page. Open two tabs
// on two different nodes, join one room, call: presence and signaling go through Redis. Their
// JSON logs are passed through, prefixed with the node's port; extra arguments go to every node.
// Ctrl+C stops the nodes (they drain) and Redis. `npm run start:cluster` builds first (turbo).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = `${root}packages/signaling-ws/dist/server/cli.js`;
const testing = `${root}packages/signaling-ws/dist/testing/index.js`;
const page = `${root}apps/demo/dist`;
const NODES = 3;

for (const [path, what] of [
  [cli, 'the signaling server'],
  [testing, 'the signaling testing helpers'],
  [`${page}/index.html`, 'the demo page'],
]) {
  if (!existsSync(path)) {
    console.error(`npm run start:cluster: ${what} is not built (${path} is missing). Run npm ci, then npm run start:cluster.`);
    process.exit(1);
  }
}

const portText = process.env.PARLEY_PORT || process.env.PORT || '1337';
const firstPort = Number(portText);
if (!/^[0-9]+$/.test(portText) || firstPort < 1 || firstPort + NODES - 1 > 65_535) {
  console.error(`npm run start:cluster: PORT/PARLEY_PORT must be a port from 1 to ${65_535 - NODES + 1}, got "${portText}"`);
  process.exit(2);
}

const { startRedisServer, startSignalingCluster } = await import(testing);

let redis;
try {
  redis = await startRedisServer();
} catch (error) {
  console.error(`npm run start:cluster: could not start redis-server (${error.message}).`);
  console.error('It needs the redis-server executable on the PATH (Debian/Ubuntu: apt install redis-server; Valkey works too).');
  process.exit(1);
}

let cluster;
try {
  cluster = await startSignalingCluster({
    nodes: NODES,
    redis,
    firstPort,
    // The same secret on every node: a client that reconnects to another node keeps its id.
    resumeSecret: randomBytes(24).toString('base64url'),
    args: ['--static', page, ...process.argv.slice(2)],
    // The nodes see this environment (PARLEY_TURN_URL and the like); flags win over it.
    env: Object.fromEntries(Object.entries(process.env).filter(([, value]) => value !== undefined)),
    onLine: (index, line) => console.log(`[:${firstPort + index}] ${line}`),
    onStderr: (index, text) => process.stderr.write(`[:${firstPort + index}] ${text}`),
  });
} catch (error) {
  await redis.close();
  console.error(`npm run start:cluster: ${error.message}`);
  if (/EADDRINUSE/.test(error.message)) console.error(`Ports ${firstPort}-${firstPort + NODES - 1} must be free; PORT=N npm run start:cluster picks others.`);
  process.exit(1);
}

// localhost, not 127.0.0.1: browsers treat http://localhost as a secure context, so the page may
// open the camera.
const addresses = cluster.nodes.map((node) => `http://localhost:${node.port}/`);
console.log(
  [
    '',
    `  Parley cluster: ${NODES} signaling nodes on one Redis (${redis.url}):`,
    ...addresses.map((address, index) => `    node ${index + 1}  ${address}`),
    '  Open two browser tabs on two different nodes (e.g. the first two addresses),',
    '  join the same room with two names, and press Call in one of them.',
    '  Ctrl+C stops the nodes and Redis.',
    '',
  ].join('\n'),
);

let stopping = false;
async function stop(signal) {
  if (stopping) {
    // A second Ctrl+C: no more waiting for the nodes to drain.
    await Promise.all(cluster.nodes.map((node) => node.kill()));
    await redis.close();
    process.exit(1);
  }
  stopping = true;
  console.log(`\n  ${signal}: stopping the nodes and Redis.`);
  await Promise.all(cluster.nodes.map((node) => node.stop()));
  await redis.close();
  process.exit(0);
}
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => void stop(signal));
