// The test run's own network namespace (see scripts/test.mjs): only `lo`, plus a veth pair for
// Firefox, parley0 (10.99.0.1/24) and parley1, with the default route through parley0. Both ends
// live in the namespace: traffic to 10.99.0.1 stays there. Used by scripts/test.mjs (vitest) and
// scripts/in-namespace.mjs (any command, e.g. the bench's Chromium <-> Firefox calls).
import { spawnSync } from 'node:child_process';

/** The namespace's private interface for Firefox; PARLEY_NAMESPACE_ADDRESS inside. */
export const NAMESPACE_ADDRESS = '10.99.0.1';
const LOOPBACK_UP = 'ip link set lo up';
const VETH_UP = [
  'ip link add parley0 type veth peer name parley1',
  `ip addr add ${NAMESPACE_ADDRESS}/24 dev parley0`,
  'ip link set parley1 up',
  'ip link set parley0 up',
  'ip route add default dev parley0',
].join(' && ');

/** Whether this machine can make the namespace (unshare and ip, user namespaces); PARLEY_NETNS=off says no. */
export function canIsolate() {
  if (process.env.PARLEY_NETNS === 'off' || process.platform !== 'linux') return false;
  const probe = spawnSync('unshare', ['--map-root-user', '--net', 'sh', '-c', `${LOOPBACK_UP} && ${VETH_UP}`], { stdio: 'ignore' });
  return probe.status === 0;
}

/** The command and arguments that run `argv` inside a fresh namespace. */
export function inNamespace(argv) {
  return ['unshare', ['--map-root-user', '--net', 'sh', '-c', `${LOOPBACK_UP} && ${VETH_UP} && exec "$@"`, 'parley-namespace', ...argv]];
}

/** The environment inside the namespace (PARLEY_NETWORK, PARLEY_NAMESPACE_ADDRESS). */
export function namespaceEnv(isolated) {
  return { PARLEY_NETWORK: isolated ? 'loopback-only' : 'host', ...(isolated ? { PARLEY_NAMESPACE_ADDRESS: NAMESPACE_ADDRESS } : {}) };
}
