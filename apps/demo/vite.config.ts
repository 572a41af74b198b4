import { defineConfig } from 'vite';

// The page is served by parley-signaling (`--static apps/demo/dist`) on the same port as the
// WebSocket, so it uses relative asset paths and needs no proxy.
export default defineConfig({
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
  },
  server: { host: '127.0.0.1' },
});
