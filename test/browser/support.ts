// Browser-test support: the built examples, served the way users serve them, and the machine's own
// browsers driven by puppeteer-core (it downloads no browser): Debian's Chromium over the DevTools
// protocol and Debian's Firefox ESR over WebDriver BiDi, both headless. Every browser test runs in both
// (a browser this machine lacks is skipped, with one line saying how to run it: see browserFound).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { type PreviewServer, preview } from 'vite';

export const repo = fileURLToPath(new URL('../../', import.meta.url));
export const viteExample = join(repo, 'examples/vite');
export const esbuildExample = join(repo, 'examples/esbuild');
export const webpackExample = join(repo, 'examples/webpack');
/** Screenshots land here (gitignored), to be looked at after a run. */
export const artifacts = join(repo, 'test-results/browser');

export type BrowserName = 'chromium' | 'firefox';
/** The browsers every browser test runs in. */
export const browserNames: BrowserName[] = ['chromium', 'firefox'];
/** Chromium from Debian (`apt-get install chromium`) or QKV_CHROMIUM; Firefox ESR (`apt-get install firefox-esr`) or QKV_FIREFOX. */
export const browserPaths: Record<BrowserName, string> = {
  chromium: process.env.QKV_CHROMIUM ?? '/usr/bin/chromium',
  firefox: process.env.QKV_FIREFOX ?? '/usr/bin/firefox-esr',
};

/** Each browser's name for people, its Debian package and the variable that points at another binary. */
const BROWSERS: Record<BrowserName, { label: string; pkg: string; variable: string }> = {
  chromium: { label: 'Chromium', pkg: 'chromium', variable: 'QKV_CHROMIUM' },
  firefox: { label: 'Firefox', pkg: 'firefox-esr', variable: 'QKV_FIREFOX' },
};

/**
 * Whether `name`'s binary is there. When it is not (not installed, or QKV_CHROMIUM / QKV_FIREFOX names
 * nothing), its suites are skipped with one line saying how to run them, so that `npm test` passes on a
 * machine without browsers; with QKV_REQUIRE_BROWSERS=1 (CI sets it) a missing browser is an error.
 */
export function browserFound(name: BrowserName): boolean {
  const path = browserPaths[name];
  if (existsSync(path)) return true;
  const { label, pkg, variable } = BROWSERS[name];
  const how = `apt-get install ${pkg}, or set ${variable} to its binary`;
  if (process.env.QKV_REQUIRE_BROWSERS === '1') {
    throw new Error(`qkv: ${label} not found at ${path}, and QKV_REQUIRE_BROWSERS=1 needs its browser tests: ${how}`);
  }
  console.warn(`qkv: ${label} not found at ${path}: skipping its browser tests; ${how} (then npm run test:browser)`);
  return false;
}

/** Fails with what to do when the examples were not built (npm run build:examples does it). */
export function requireBuilt(): void {
  for (const file of [join(viteExample, 'dist/index.html'), join(esbuildExample, 'dist/index.html'), join(webpackExample, 'dist/main.js')]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run npm run build:examples first (npm test does)`);
  }
}

/** The headers of a cross-origin isolated page (SharedArrayBuffer, hence wasm threads). */
const ISOLATION_HEADERS = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

/**
 * `vite preview` of examples/vite/dist on a free port of 127.0.0.1, with the example's own config;
 * `isolated` sets QKV_ISOLATED=1 while the config loads, which turns on the COOP/COEP headers.
 */
export async function servePreview({ isolated = false } = {}): Promise<{ url: string; close: () => Promise<void> }> {
  const saved = process.env.QKV_ISOLATED;
  process.env.QKV_ISOLATED = isolated ? '1' : '0';
  let server: PreviewServer;
  try {
    server = await preview({
      root: viteExample,
      configFile: join(viteExample, 'vite.config.js'),
      logLevel: 'silent',
      preview: { host: '127.0.0.1', port: 0, strictPort: false, open: false },
    });
  } finally {
    if (saved === undefined) delete process.env.QKV_ISOLATED;
    else process.env.QKV_ISOLATED = saved;
  }
  const { port } = server.httpServer.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/`, close: () => server.close() };
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.wasm': 'application/wasm', '.json': 'application/json',
};

/**
 * A plain static server of `root` on a free port of 127.0.0.1, as a user would put a webpack build
 * on any web server; `isolated` adds the COOP/COEP headers. Unknown paths get a 404.
 */
export async function serveStatic(root: string, { isolated = false } = {}): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((request, response) => {
    const path = normalize(decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    let file = join(root, path);
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (!file.startsWith(root) || !existsSync(file)) {
      response.writeHead(404).end('not found');
      return;
    }
    response.writeHead(200, { 'Content-Type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream', ...(isolated ? ISOLATION_HEADERS : {}) });
    response.end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const close = () => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections(); // a browser keeps its connections alive, which close() would wait for
  });
  return { url: `http://127.0.0.1:${port}/`, close };
}

/** A fresh headless browser with its own throw-away profile and a 1200×900 viewport. */
export async function launchBrowser(name: BrowserName): Promise<{ browser: Browser; close: () => Promise<void> }> {
  const executablePath = browserPaths[name];
  if (!existsSync(executablePath)) {
    const { pkg, variable } = BROWSERS[name];
    throw new Error(`no ${name} at ${executablePath}: apt-get install -y ${pkg} (or set ${variable} to its binary)`);
  }
  const profile = mkdtempSync(join(tmpdir(), `qkv-${name}-`));
  const defaultViewport = { width: 1200, height: 900 };
  const browser = name === 'chromium'
    ? await puppeteer.launch({
      browser: 'chrome', executablePath, headless: true, userDataDir: profile, defaultViewport,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    })
    : await puppeteer.launch({ browser: 'firefox', executablePath, headless: true, userDataDir: profile, defaultViewport });
  return {
    browser,
    close: async () => {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Opens a page, collects its errors and warnings, and waits until it says it has rendered (body[data-ready]). */
export async function openPage(browser: Browser, url: string): Promise<{ page: Page; errors: string[]; warnings: string[] }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  const warnings: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e instanceof Error ? e.message : String(e)}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console.error: ${m.text()}`);
    if (m.type() === 'warn') warnings.push(m.text());
  });
  await page.goto(url);
  await page.waitForSelector('body[data-ready]', { timeout: 30_000 });
  const state = await page.$eval('body', (b) => b.dataset.ready);
  if (state !== 'true') throw new Error(`${url} failed to render: ${await text(page, 'body')}\n${errors.join('\n')}`);
  return { page, errors, warnings };
}

/** The text of the first element matching `selector`. */
export const text = (page: Page, selector: string): Promise<string | null> => page.$eval(selector, (e) => e.textContent);
/** How many elements match `selector`. */
export const count = (page: Page, selector: string): Promise<number> => page.$$eval(selector, (es) => es.length);
/** An attribute of the first element matching `selector`. */
export const attribute = (page: Page, selector: string, name: string): Promise<string | null> => page.$eval(selector, (e, name) => e.getAttribute(name), name);
/** The inner HTML of the first element matching `selector`. */
export const innerHTML = (page: Page, selector: string): Promise<string> => page.$eval(selector, (e) => e.innerHTML);

export function artifactPath(name: string): string {
  mkdirSync(artifacts, { recursive: true });
  return join(artifacts, name);
}
