// `npm test` runs vitest here. Every test talks over loopback only, but libwebrtc also sends
// connectivity checks from the machine's other interfaces to a peer's 127.0.0.1 candidate (the
// peer then learns that address as peer-reflexive and answers it), whatever candidates are
// signaled. So where the machine allows it, the suite runs in a network namespace of its own
// that holds nothing but a loopback interface (`unshare --net`, mapped to the current user so
// no root is needed): nothing can reach another interface because there is none. Elsewhere the
// suite runs as is and says so. PARLEY_NETNS=off skips the namespace.
import { spawn, spawnSync } from 'node:child_process';

const vitest = ['npx', 'vitest', 'run', ...process.argv.slice(2)];
const LOOPBACK_UP = 'ip link set lo up';

function canIsolate() {
  if (process.env.PARLEY_NETNS === 'off' || process.platform !== 'linux') return false;
  const probe = spawnSync('unshare', ['--map-root-user', '--net', 'sh', '-c', LOOPBACK_UP], { stdio: 'ignore' });
  return probe.status === 0;
}

const isolated = canIsolate();
const [command, args] = isolated
  ? ['unshare', ['--map-root-user', '--net', 'sh', '-c', `${LOOPBACK_UP} && exec "$@"`, 'parley-test', ...vitest]]
  : [vitest[0], vitest.slice(1)];
console.log(
  isolated
    ? 'tests: in a network namespace with only a loopback interface'
    : 'tests: on the host network (no network namespace here: unshare and ip from util-linux and iproute2 isolate it)',
);
const child = spawn(command, args, {
  stdio: 'inherit',
  env: { ...process.env, PARLEY_NETWORK: isolated ? 'loopback-only' : 'host' },
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
