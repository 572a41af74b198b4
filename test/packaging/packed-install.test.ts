import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_SOURCES, installPackedApp, runInApp } from './install-packed.js';
import type { PackedApp } from './install-packed.js';

// The packages as a stranger installs them (issue 17): packed, installed from the tarballs into
// an app outside the workspace, type-checked strictly from the README's examples, and run.

let app: PackedApp;

beforeAll(() => {
  app = installPackedApp(APP_SOURCES);
});

afterAll(() => {
  if (app !== undefined && process.env['PARLEY_KEEP_PACKED_APP'] === undefined) rmSync(app.dir, { recursive: true, force: true });
});

describe('the packed packages', () => {
  it('hold what a user needs and no build leftovers or tests', () => {
    for (const { manifest, files } of Object.values(app.packed)) {
      expect(files, manifest.name).toContain('README.md');
      expect(files, manifest.name).toContain('LICENSE');
      expect(files, manifest.name).toContain('package.json');
      expect(files.filter((f) => f.endsWith('.tsbuildinfo') || /(^|\/)test\//.test(f) || /\.test\.[cm]?[jt]s$/.test(f)), manifest.name).toEqual([]);
      expect(files.filter((f) => !/^(dist|src|bin)\//.test(f)).sort(), manifest.name).toEqual(['LICENSE', 'README.md', 'package.json']);
      expect(Object.values(manifest.dependencies ?? {}).filter((range) => /^\d/.test(range)), `${manifest.name}: exact pins`).toEqual([]);
    }
  });

  it('type-check a strict nodenext app written from the README (DOM lib, skipLibCheck off)', () => {
    runInApp(app, 'npx', ['tsc', '-p', 'tsconfig.json']);
  });

  it('type-check in Node without the DOM lib (lib: ["esnext"], skipLibCheck off)', () => {
    runInApp(app, 'npx', ['tsc', '-p', 'tsconfig.no-dom.json']);
  });

  it('make a two-peer call in Node with @roamhq/wrtc: a data channel message each way', () => {
    const out = runInApp(app, 'node', ['build/call.js']);
    expect(JSON.parse(out.trim().split('\n').at(-1)!)).toEqual({ adaHeard: 'hello from bob', bobHeard: 'hello from ada' });
  });
});
