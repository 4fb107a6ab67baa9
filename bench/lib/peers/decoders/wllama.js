// Peer: llama.cpp's wasm build through wllama (npm @wllama/wllama), in headless Chromium, in the same
// page as qkv's browser build. The page (./page/) is built with Vite as an app would build it (qkv
// from its package entry, qkv's thread workers and wllama's wasm found by Vite), served from
// 127.0.0.1 with the COOP/COEP headers that make it cross-origin isolated (SharedArrayBuffer, hence
// threads for both), with the model files under /models/ (Range requests answered: qkv reads a
// checkpoint a tensor at a time; wllama fetches the whole GGUF as a Blob).
//
//   const page = await openPeerPage(modelsDir);
//   await page.call('wllamaLoad', key, page.model('x.gguf'), { threads, nCtx });
//   await page.call('qkvLoad', key, page.model('x.gguf'), { weights, threads, maxTokens });
//   await page.peakAdded(async () => …)    what the browser's processes held at most beyond their start
//   await page.close();
import { createReadStream, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { peakAdded, processTree } from '../../memory.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const repo = fileURLToPath(new URL('../../../../', import.meta.url));
export const CHROMIUM = process.env.QKV_CHROMIUM ?? '/usr/bin/chromium';

const ISOLATION = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cross-Origin-Resource-Policy': 'same-origin' };
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.wasm': 'application/wasm', '.json': 'application/json' };

/** Builds ./page with Vite into a fresh temp folder; returns the folder. */
async function buildPage() {
  const { build } = await import('vite');
  const outDir = mkdtempSync(join(tmpdir(), 'qkv-peer-page-'));
  await build({
    root: join(here, 'page'),
    configFile: false,
    logLevel: 'warn',
    // the package by its name, as an app that depends on it imports it (this repository is the package)
    resolve: { alias: [{ find: /^qkv$/, replacement: repo }] },
    build: { outDir, emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 100_000 },
    worker: { format: 'es' },
  });
  return outDir;
}

/** A static server of `root` with the isolation headers; /models/NAME from `modelsDir`, with Range. */
async function serve(root, modelsDir) {
  const server = createServer((request, response) => {
    const path = normalize(decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname));
    if (path === '/favicon.ico') {
      response.writeHead(204, ISOLATION).end();
      return;
    }
    const [base, rel] = path.startsWith('/models/') ? [modelsDir, path.slice('/models/'.length)] : [root, path];
    let file = join(base, rel);
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (!file.startsWith(base) || !existsSync(file)) {
      response.writeHead(404, ISOLATION).end('not found');
      return;
    }
    const size = statSync(file).size;
    const headers = { ...ISOLATION, 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Accept-Ranges': 'bytes', 'Cache-Control': 'no-store' };
    const range = /^bytes=(\d+)-(\d*)$/.exec(request.headers.range ?? '');
    if (range) {
      const start = Number(range[1]), end = range[2] === '' ? size - 1 : Math.min(size - 1, Number(range[2]));
      response.writeHead(206, { ...headers, 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${size}` });
      createReadStream(file, { start, end }).pipe(response);
    } else {
      response.writeHead(200, { ...headers, 'Content-Length': size });
      createReadStream(file).pipe(response);
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    close: () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}

/** Builds and serves the page, starts Chromium on it; `modelsDir` is served as /models/. */
export async function openPeerPage(modelsDir) {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (or set QKV_CHROMIUM)`);
  const puppeteer = (await import('puppeteer-core')).default;
  const outDir = await buildPage();
  const server = await serve(outDir, modelsDir);
  const profile = mkdtempSync(join(tmpdir(), 'qkv-peer-chromium-'));
  const browser = await puppeteer.launch({
    browser: 'chrome', executablePath: CHROMIUM, headless: true, userDataDir: profile, protocolTimeout: 0,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // a page in the background (no visible tab) must not be slowed down
      '--disable-background-timer-throttling', '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows'],
  });
  const errors = [];
  try {
    const page = await browser.newPage();
    page.on('pageerror', (e) => errors.push(String(e?.message ?? e)));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.setDefaultTimeout(0);
    await page.goto(server.url);
    await page.waitForSelector('body[data-ready]', { timeout: 60_000 });
    const info = await page.evaluate(() => window.bench.info());
    if (!info.crossOriginIsolated) throw new Error('the bench page is not cross-origin isolated: no threads');
    const pids = () => processTree(browser.process().pid);
    return {
      info,
      errors,
      model: (name) => `${server.url}models/${name}`,
      /** Calls window.bench[name](...args) in the page. */
      call: async (name, ...args) => {
        try {
          return await page.evaluate((n, a) => window.bench[n](...a), name, args);
        } catch (error) {
          throw new Error(`${name}: ${error.message}${errors.length ? `\npage errors:\n${errors.join('\n')}` : ''}`);
        }
      },
      peakAdded: (f) => peakAdded(pids, f),
      close: async () => {
        await browser.close();
        await server.close();
        rmSync(profile, { recursive: true, force: true });
        rmSync(outDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await browser.close();
    await server.close();
    throw error;
  }
}
