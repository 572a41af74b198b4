// `npm test` runs vitest here. Every test talks over loopback only, but libwebrtc also sends
// connectivity checks from the machine's other interfaces to a peer's 127.0.0.1 candidate (the
// peer then learns that address as peer-reflexive and answers it), whatever candidates are
// signaled. So where the machine allows it, the suite runs in a network namespace of its own
// that holds nothing but a loopback interface (`unshare --net`, mapped to the current user so
// no root is needed): nothing can reach another interface because there is none. Elsewhere the
// suite runs as is and says so. PARLEY_NETNS=off skips the namespace.
//
// Firefox gathers no candidate at all where the only interface is `lo` (and never 127.0.0.1):
// it wants an interface with an address and a default route. So inside that same namespace (never
// on the host) the script adds a veth pair, parley0 (10.99.0.1/24) and parley1, with the default
// route through parley0. Both ends live in the test's namespace: traffic to 10.99.0.1 stays there.
import { spawn } from 'node:child_process';
import { NAMESPACE_ADDRESS, canIsolate, inNamespace, namespaceEnv } from './namespace.mjs';

const vitest = ['npx', 'vitest', 'run', ...process.argv.slice(2)];
const isolated = canIsolate();
const [command, args] = isolated ? inNamespace(vitest) : [vitest[0], vitest.slice(1)];
console.log(
  isolated
    ? `tests: in a network namespace of their own: loopback, and a veth pair at ${NAMESPACE_ADDRESS} for Firefox`
    : 'tests: on the host network (no network namespace here: unshare and ip from util-linux and iproute2 isolate it)',
);
const child = spawn(command, args, {
  stdio: 'inherit',
  env: { ...process.env, ...namespaceEnv(isolated) },
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
