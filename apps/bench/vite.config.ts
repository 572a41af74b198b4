import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

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
