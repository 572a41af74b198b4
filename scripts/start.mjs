// `npm start`: one parley-signaling process that serves the built demo page and the WebSocket on
// the same port (PORT or PARLEY_PORT, default 1337), with its JSON log passed through, and the
// address to open printed once it listens. `npm start` builds first (turbo), so this only runs.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = `${root}packages/signaling-ws/dist/server/cli.js`;
const page = `${root}apps/demo/dist`;

for (const [path, what] of [
  [cli, 'the signaling server'],
  [`${page}/index.html`, 'the demo page'],
]) {
  if (!existsSync(path)) {
    console.error(`npm start: ${what} is not built (${path} is missing). Run npm ci, then npm start.`);
    process.exit(1);
  }
}

const child = spawn(process.execPath, [cli, '--static', page, ...process.argv.slice(2)], { stdio: ['inherit', 'pipe', 'inherit'] });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));

createInterface({ input: child.stdout }).on('line', (line) => {
  console.log(line);
  let event;
  try {
    event = JSON.parse(line);
  } catch {
    return;
  }
  if (event?.event !== 'listening' || typeof event.port !== 'number') return;
  // localhost, not 127.0.0.1: browsers treat http://localhost as a secure context, so the page may
  // open the camera. Any other host needs https (e.g. a reverse proxy in front of this port).
  const host = event.host === '127.0.0.1' || event.host === '::1' || event.host === undefined ? 'localhost' : event.host;
  const address = `http://${host}:${event.port}/`;
  console.log(
    [
      '',
      `  Parley demo: open ${address} in two browser tabs (or windows),`,
      '  join the same room with two names, and press Call in one of them.',
      '  Ctrl+C stops the server.',
      '',
    ].join('\n'),
  );
});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 0 : 1)));
