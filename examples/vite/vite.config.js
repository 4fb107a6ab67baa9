// Vite needs no configuration for qkv: the .wasm is found through `new URL(…, import.meta.url)`.
// This file only lists the four pages, builds workers as ES modules (the models page runs qkv in a
// worker, which starts qkv's thread workers and imports the tokenizer on demand: code splitting, which
// Vite's default iife workers refuse), and lets the servers send the headers that make a page
// cross-origin isolated (SharedArrayBuffer, hence wasm threads):
//
//   npm run dev                          plain headers: one thread
//   QKV_ISOLATED=1 npm run dev           COOP/COEP on the dev server (and on `npm run preview`)
import { defineConfig } from 'vite';

const isolated = process.env.QKV_ISOLATED === '1';

/** The headers of a cross-origin isolated page; every sub-resource here is same-origin, so require-corp costs nothing. */
const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

const headers = isolated ? ISOLATION_HEADERS : {};

export default defineConfig({
  server: { headers },
  preview: { headers },
  worker: { format: 'es' },
  build: {
    target: 'es2022',
    rolldownOptions: {
      input: {
        essay: new URL('./index.html', import.meta.url).pathname,
        heads: new URL('./heads.html', import.meta.url).pathname,
        bench: new URL('./bench.html', import.meta.url).pathname,
        models: new URL('./models.html', import.meta.url).pathname,
      },
    },
  },
});
