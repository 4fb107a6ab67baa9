// Browser-test support: the built examples, served the way users serve them, and Debian's Chromium
// driven by playwright-core (its own browser download is not used).
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { preview, type PreviewServer } from 'vite';

export const repo = fileURLToPath(new URL('../../', import.meta.url));
export const viteExample = join(repo, 'examples/vite');
export const esbuildExample = join(repo, 'examples/esbuild');
/** Screenshots land here (gitignored), to be looked at after a run. */
export const artifacts = join(repo, 'test-results/browser');

/** Chromium from Debian (`apt-get install chromium`), or QKV_CHROMIUM. */
export const chromiumPath = process.env.QKV_CHROMIUM ?? '/usr/bin/chromium';

/** Fails with what to do when the examples were not built (npm run build:examples does it). */
export function requireBuilt(): void {
  for (const file of [join(viteExample, 'dist/index.html'), join(esbuildExample, 'dist/index.html')]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run npm run build:examples first (npm test does)`);
  }
}

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

/** A fresh headless Chromium with its own throw-away profile. */
export async function launchChromium(): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  if (!existsSync(chromiumPath)) {
    throw new Error(`no Chromium at ${chromiumPath}: apt-get install -y chromium (or set QKV_CHROMIUM to a Chromium binary)`);
  }
  const profile = mkdtempSync(join(tmpdir(), 'qkv-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1200, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Opens a page, collects its errors and warnings, and waits until it says it has rendered (body[data-ready]). */
export async function openPage(context: BrowserContext, url: string): Promise<{ page: Page; errors: string[]; warnings: string[] }> {
  const page = await context.newPage();
  const errors: string[] = [];
  const warnings: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console.error: ${m.text()}`);
    if (m.type() === 'warning') warnings.push(m.text());
  });
  await page.goto(url);
  await page.waitForSelector('body[data-ready]', { timeout: 30_000 });
  const state = await page.getAttribute('body', 'data-ready');
  if (state !== 'true') throw new Error(`${url} failed to render: ${await page.textContent('body')}\n${errors.join('\n')}`);
  return { page, errors, warnings };
}

/** The bytes of a float32 array, to compare results bit for bit. */
export const bytesOf = (data: Float32Array): number[] => Array.from(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));

export function artifactPath(name: string): string {
  mkdirSync(artifacts, { recursive: true });
  return join(artifacts, name);
}
