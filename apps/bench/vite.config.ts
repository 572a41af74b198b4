import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { compileHints } from '@parley/browser/compile-hints';

// The browser benchmarks' pages: every `pages/*.html` is an entry. They are served, with relative
// asset paths, by the parley-signaling server each benchmark starts (`staticDir: dist/pages`).
const pagesDir = join(dirname(fileURLToPath(import.meta.url)), 'pages');
const input = Object.fromEntries(
  readdirSync(pagesDir)
    .filter((file) => file.endsWith('.html'))
    .map((file) => [file.replace(/\.html$/, ''), join(pagesDir, file)]),
);

export default defineConfig({
  root: pagesDir,
  // V8's explicit compile hint on every chunk, every subject's alike: a call runs most of a page's
  // code for the first time, and lazy compilation of it on the main thread is not what the
  // benchmarks compare (see packages/browser/src/compile-hints.ts).
  plugins: [compileHints({ includes: () => true })],
  base: './',
  build: {
    outDir: '../dist/pages',
    emptyOutDir: true,
    target: 'es2022',
    // Measured code: no minifier surprises in profiles, and the same treatment for every subject.
    minify: false,
    sourcemap: true,
    rollupOptions: { input },
  },
});
