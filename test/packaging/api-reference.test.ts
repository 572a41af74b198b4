import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WORKSPACE } from './install-packed.js';

// `npm run docs` builds the API reference without a warning (typedoc.json treats warnings as
// errors: a broken {@link}, a type a public declaration uses that no entry point exports). Built
// here into a temporary folder, so the test leaves docs/api alone.

const out = mkdtempSync(join(tmpdir(), 'parley-api-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('the API reference', () => {
  // typedoc type-checks every entry point's whole program: about 15 s of CPU alone, and it is
  // synchronous, so on a loaded 2-core machine (the suite's other worker, two CPU burners) its wall
  // time is many times that (212 s seen with helpers' builds beside it). The bound is the
  // project's hook bound, not the 120 s meant for one packed install.
  it('builds from the entry points without a warning', { timeout: 300_000 }, () => {
    try {
      execFileSync('npx', ['typedoc', '--out', out], { cwd: WORKSPACE, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      const e = error as { stdout?: string; stderr?: string };
      expect.fail(`typedoc failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    }
    for (const page of ['index.html', 'modules/_parley_core.html', 'modules/_parley_browser.html', 'modules/_parley_signaling-ws_client.html']) {
      expect(existsSync(join(out, page)), page).toBe(true);
    }
  });
});
