// Runs a command inside the test run's own network namespace (scripts/namespace.mjs): loopback
// and a veth interface at 10.99.0.1 for Firefox, nothing of the host. Exits with the command's
// code. Refuses (exit 3) where the namespace cannot be made: the command would otherwise reach
// the host's interfaces.
//   node scripts/in-namespace.mjs node apps/bench/dist/call-setup/firefox-pair.js
import { spawn } from 'node:child_process';
import { canIsolate, inNamespace, namespaceEnv } from './namespace.mjs';

const argv = process.argv.slice(2);
if (argv.length === 0) {
  console.error('usage: node scripts/in-namespace.mjs COMMAND [ARGS...]');
  process.exit(2);
}
if (!canIsolate()) {
  console.error('in-namespace: no network namespace here (needs Linux, unshare and ip from util-linux and iproute2, user namespaces; PARLEY_NETNS=off disables it)');
  process.exit(3);
}
const [command, args] = inNamespace(argv);
const child = spawn(command, args, { stdio: 'inherit', env: { ...process.env, ...namespaceEnv(true) } });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
