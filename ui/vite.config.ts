import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// Relative asset paths: the same build is served at `/` by `casewire serve` and loaded by the
// desktop shell from its own origin. Hash routing means no server-side routes are needed.
const API = process.env.CASEWIRE_API ?? 'http://127.0.0.1:5050';

export default defineConfig({
  base: './',
  plugins: [svelte()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // One CSS file and no inline scripts or styles: strict CSP (script-src 'self').
    cssCodeSplit: false,
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
  },
  // `npm run dev`: the page on Vite's origin, the API proxied to `casewire serve` (CASEWIRE_API,
  // default 127.0.0.1:5050). The server refuses other sites' origins, so the proxy presents the
  // request as the server's own.
  server: {
    proxy: Object.fromEntries(
      ['/api', '/metrics'].map((path) => [
        path,
        {
          target: API,
          changeOrigin: true,
          configure: (proxy: { on: (event: 'proxyReq', fn: (req: { getHeader: (n: string) => unknown; setHeader: (n: string, v: string) => void }) => void) => void }) => {
            proxy.on('proxyReq', (req) => {
              if (req.getHeader('origin')) req.setHeader('origin', API);
            });
          },
        },
      ]),
    ),
  },
  test: {
    include: ['tests/**/*.test.ts'],
    environment: 'happy-dom',
  },
});
