import { defineConfig } from 'vite';
import { compileHints } from '@parley/browser/compile-hints';

// The page is served by parley-signaling (`--static apps/demo/dist`) on the same port as the
// WebSocket, so it uses relative asset paths. Under `vite` (dev), `/signaling` is forwarded to a
// parley-signaling on port 1337 (PARLEY_SIGNALING overrides), started separately.
export default defineConfig({
  base: './',
  // Parley's chunks compiled while the page loads, not on the main thread at the first call.
  plugins: [compileHints()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
  },
  server: {
    host: '127.0.0.1',
    proxy: {
      '/signaling': { target: process.env['PARLEY_SIGNALING'] ?? 'ws://127.0.0.1:1337', ws: true },
    },
  },
});
