import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import type { Rolldown } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_FUNCTIONS_CALLED_ON_LOAD, compileHints, isCallModule } from '../src/compile-hints.js';

describe('compileHints: V8’s explicit compile hint on the chunks that hold Parley', () => {
  it('knows Parley’s, xstate’s and rxjs’s modules, installed or in the monorepo, and nothing else', () => {
    for (const id of [
      '/app/node_modules/@parley/core/dist/create-call.js',
      // This checkout's packages, where a bundler finds them through the workspace links.
      fileURLToPath(new URL('../../core/dist/create-call.js', import.meta.url)),
      fileURLToPath(new URL('../../signaling-ws/dist/client/client.js', import.meta.url)),
      '/app/node_modules/xstate/dist/xstate.esm.js',
      'C:\\app\\node_modules\\rxjs\\dist\\esm5\\internal\\Subject.js',
    ]) {
      expect(isCallModule(id), id).toBe(true);
    }
    for (const id of ['/app/src/main.ts', '/app/node_modules/react/index.js', '/app/node_modules/my-xstate-ui/index.js', '/repo/packages/core/src/app.ts', fileURLToPath(new URL('../../../apps/demo/src/app.ts', import.meta.url))]) {
      expect(isCallModule(id), id).toBe(false);
    }
  });

  it('on Rollup, gives the hint as the banner of a chunk with one such module, and an empty banner to the others', () => {
    const rollup = { meta: {} };
    const plugin = compileHints();
    expect(plugin.outputOptions.call(rollup, {})).toBeNull();
    expect(plugin.banner.call(rollup, { moduleIds: ['/app/src/main.ts', '/app/node_modules/@parley/core/dist/index.js'] })).toBe(ALL_FUNCTIONS_CALLED_ON_LOAD);
    expect(plugin.banner.call(rollup, { moduleIds: ['/app/src/main.ts'] })).toBe('');
    expect(compileHints({ includes: () => true }).banner.call(rollup, { moduleIds: ['/app/src/main.ts'] })).toBe(ALL_FUNCTIONS_CALLED_ON_LOAD);
  });

  it('on Rolldown, puts the hint before the post-minification banner the app already has', async () => {
    const rolldown = { meta: { rolldownVersion: '1.0.0' } };
    const plugin = compileHints();
    expect(plugin.banner.call(rolldown, { moduleIds: ['/app/node_modules/xstate/dist/xstate.esm.js'] })).toBe('');
    const parley = { moduleIds: ['/app/node_modules/xstate/dist/xstate.esm.js'] };
    const app = { moduleIds: ['/app/src/main.ts'] };
    const extended = plugin.outputOptions.call(rolldown, { postBanner: (chunk) => `/* ${chunk.moduleIds.length} module */` });
    const postBanner = extended?.postBanner as (chunk: { moduleIds: string[] }) => Promise<string>;
    expect(await postBanner(parley)).toBe(`${ALL_FUNCTIONS_CALLED_ON_LOAD}\n/* 1 module */`);
    expect(await postBanner(app)).toBe('/* 1 module */');
    const alone = plugin.outputOptions.call(rolldown, {})?.postBanner as (chunk: { moduleIds: string[] }) => Promise<string>;
    expect(await alone(parley)).toBe(ALL_FUNCTIONS_CALLED_ON_LOAD);
  });

  describe('in a real Vite build', () => {
    let dir: string;
    beforeAll(async () => {
      // An app of its own, whose node_modules are this checkout's (@parley/core among them).
      dir = await mkdtemp(join(tmpdir(), 'parley-compile-hints-'));
      await symlink(fileURLToPath(new URL('../../../node_modules', import.meta.url)), join(dir, 'node_modules'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it.each([false, true])('puts the hint on the first line of the chunk that holds Parley, not of the app’s own chunk, and keeps the source map right (minified: %s)', async (minify) => {
      // Two entries: one calls Parley (through a lazily loaded chunk), one does not.
      await writeFile(join(dir, 'call.js'), "export { createCall } from '@parley/core';\nexport const marker = 'parley chunk';\n");
      await writeFile(join(dir, 'main.js'), "console.log('the app');\nvoid import('./call.js').then((call) => console.log(call.marker, call.createCall));\n");
      const result = await build({
        root: dir,
        logLevel: 'silent',
        configFile: false,
        plugins: [compileHints()],
        build: { write: false, minify, sourcemap: true, lib: false, rollupOptions: { input: { main: join(dir, 'main.js') } } },
      });
      const outputs = (Array.isArray(result) ? result : [result]) as Rolldown.RolldownOutput[];
      const chunks = outputs.flatMap((output) => output.output).filter((item): item is Rolldown.OutputChunk => item.type === 'chunk');
      const parley = chunks.find((chunk) => chunk.code.includes('parley chunk'));
      const app = chunks.find((chunk) => chunk.code.includes('the app'));
      expect(parley).toBeDefined();
      expect(parley!.code).not.toBe(app?.code);
      expect(app).toBeDefined();
      expect(parley!.code.split('\n')[0]).toBe(ALL_FUNCTIONS_CALLED_ON_LOAD);
      expect(app!.code).not.toContain(ALL_FUNCTIONS_CALLED_ON_LOAD);
      // The banner line is accounted for: the map's first line maps nothing, and the code below it does map.
      const mappings = String(parley!.map?.mappings ?? '');
      expect(mappings.startsWith(';')).toBe(true);
      expect(mappings.replace(/;/g, '')).not.toBe('');
    });
  });
});
