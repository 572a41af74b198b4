#!/usr/bin/env node
// `parley-signaling`: a committed launcher for the built CLI (dist/server/cli.js). npm links a
// workspace's bin only if the file exists at install time, and dist/ does not exist before the
// first build: this file does, so `npm ci && npm run build && npx parley-signaling` works.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/server/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  process.stderr.write(
    `parley-signaling: not built yet (${fileURLToPath(cli)} is missing).\n` +
      'Run `npm run build` at the repository root (or `npx tsc -b packages/signaling-ws`) first.\n',
  );
  process.exit(1);
}
await import(cli.href);
