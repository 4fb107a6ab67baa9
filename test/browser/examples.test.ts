// The built examples in real browsers, Chromium and Firefox (two wasm engines, each with its own SIMD
// code generation): examples/vite through `vite preview` (the default entry, its .wasm found by Vite
// from `new URL(…, import.meta.url)`), examples/webpack (webpack 5, no configuration) from a plain
// static server, examples/esbuild as one HTML file opened from disk (qkv/inline). Results in the page
// must equal Node's bit for bit for the same build.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runtimeHasRelaxedSimd } from '../../src/wasm/loader.js';
import { random } from '../support.js';
import {
  artifactPath, attribute, browserFound, browserNames, count, esbuildExample, innerHTML, launchBrowser, openPage, requireBuilt, servePreview,serveStatic, 
  text, webpackExample,
} from './support.js';

type Server = { url: string; close: () => Promise<void> };
let vite: Server;
let webpack: Server;

beforeAll(async () => {
  requireBuilt();
  vite = await servePreview();
  webpack = await serveStatic(webpackExample);
});
afterAll(async () => {
  await vite?.close();
  await webpack?.close();
});

/** The fixed inputs both sides run: attention with a causal mask and GQA, kernel regression, matmul. */
function fixedInputs() {
  const t = (shape: number[], seed: number) => ({ data: Array.from(random(shape, seed).data), shape });
  return { q: t([2, 4, 9, 16], 1), k: t([2, 2, 13, 16], 2), v: t([2, 2, 13, 8], 3), a: t([17, 33], 4), b: t([33, 19], 5), x: t([40], 6), keys: t([50], 7), values: t([50], 8) };
}
type Inputs = ReturnType<typeof fixedInputs>;

/** Runs the fixed inputs on the engine of `qkv`-shaped exports; returns the outputs' bytes. Runs in Node and, as source, in the page. */
async function runFixed(qkv: typeof import('../../src/index.js'), inputs: Inputs, simd: 'simd' | 'relaxed', threads = 1) {
  const engine = await qkv.createEngine({ simd, threads });
  const T = (x: { data: number[]; shape: number[] }) => qkv.tensor(x.data, x.shape);
  const bytes = (d: Float32Array) => Array.from(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  const attention = engine.scaledDotProductAttention(T(inputs.q), T(inputs.k), T(inputs.v), { causal: true, returnWeights: true });
  const regression = engine.kernelRegression(T(inputs.x), T(inputs.keys), T(inputs.values), { w: 3, returnWeights: true });
  const product = engine.matmul(T(inputs.a), T(inputs.b));
  const result = {
    build: engine.info.simd, threads: engine.info.threads,
    attention: bytes(attention.output.data), weights: bytes(attention.weights!.data),
    regression: bytes(regression.output.data), product: bytes(product.data),
  };
  engine.dispose();
  return result;
}

/** Fraction of pixels that differ from the most common colour, and whether some are heatmap-red, computed by the page from a PNG. */
async function pixelStats(page: Page, png: Uint8Array): Promise<{ width: number; height: number; nonBackground: number; reddish: number; colours: number }> {
  return page.evaluate(async (base64) => {
    const img = new Image();
    img.src = `data:image/png;base64,${base64}`;
    await img.decode();
    const canvas = Object.assign(document.createElement('canvas'), { width: img.width, height: img.height });
    const ctx = canvas.getContext('2d')!;
    ctx.drawImage(img, 0, 0);
    const { data } = ctx.getImageData(0, 0, img.width, img.height);
    const counts = new Map<number, number>();
    let reddish = 0;
    for (let i = 0; i < data.length; i += 4) {
      const key = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
      counts.set(key, (counts.get(key) ?? 0) + 1);
      if (data[i] > 150 && data[i + 1] < 110 && data[i + 2] < 110) reddish++;
    }
    const pixels = data.length / 4;
    const background = Math.max(...counts.values());
    return { width: img.width, height: img.height, nonBackground: 1 - background / pixels, reddish: reddish / pixels, colours: counts.size };
  }, Buffer.from(png).toString('base64'));
}

/** runFixed in the page, its source evaluated there against the page's bundled qkv (window.qkv). */
function runInPage(page: Page, inputs: Inputs, simd: 'simd' | 'relaxed', threads = 1): ReturnType<typeof runFixed> {
  return page.evaluate(
    // biome-ignore lint/suspicious/noExplicitAny: the page's global, set by its bundle
    async ([source, inputs, simd, threads]) => new Function(`return (${source})`)()((window as any).qkv, inputs, simd, threads),
    [runFixed.toString(), inputs, simd, threads] as const,
  );
}

/** The builds this page runs: the plain one, and the relaxed one where the browser validates relaxed SIMD. */
const pageBuilds = (page: Page): Promise<('simd' | 'relaxed')[]> =>
  // biome-ignore lint/suspicious/noExplicitAny: the page's global, set by its bundle
  page.evaluate(() => ['simd', ...((window as any).qkv.engine.info.simd === 'relaxed' ? ['relaxed'] : [])]) as Promise<('simd' | 'relaxed')[]>;

// a browser this machine lacks is skipped with one line saying how to install it (an error under QKV_REQUIRE_BROWSERS=1)
for (const name of browserNames) describe.skipIf(!browserFound(name))(name, () => {
  let browser: Browser;
  let closeBrowser: () => Promise<void>;
  beforeAll(async () => {
    ({ browser, close: closeBrowser } = await launchBrowser(name));
  });
  afterAll(async () => {
    await closeBrowser?.();
  });

  describe('examples/vite', () => {
    it('shows the essay example: 45.5, the curve and the weights heatmap', async () => {
      const { page, errors } = await openPage(browser, vite.url);
      expect(await text(page, '#prediction')).toBe('45.5');
      expect(await text(page, '#attention')).toBe('attention: 0.500 on 56 cm, 0.500 on 58 cm');
      // the heatmap is an SVG the browser laid out: 15 query waists x 2 keys, with a size on screen
      const map = await page.evaluate(() => {
        const svg = document.querySelector('#heatmap svg') as SVGSVGElement;
        const box = svg.getBoundingClientRect();
        return { cells: svg.querySelectorAll('g.panel rect').length, width: box.width, height: box.height, labels: Array.from(svg.querySelectorAll('text'), (t) => t.textContent) };
      });
      expect(map.cells).toBe(30);
      expect(map.width).toBeGreaterThan(50);
      expect(map.height).toBeGreaterThan(100);
      expect(map.labels).toEqual(expect.arrayContaining(['50 cm', '64 cm', '56 cm', '58 cm']));
      expect(await count(page, '#curve svg path')).toBe(1);
      expect(errors).toEqual([]);

      const png = await page.screenshot({ fullPage: true, path: artifactPath(`${name}-essay.png`) });
      const stats = await pixelStats(page, png);
      // the viewport's width, less a scrollbar where the browser draws one over the page (Firefox)
      expect(stats.width).toBeGreaterThanOrEqual(1180);
      expect(stats.width).toBeLessThanOrEqual(1200);
      expect(stats.nonBackground).toBeGreaterThan(0.03); // text, curve and heatmap, not a blank page
      expect(stats.reddish).toBeGreaterThan(0.002); // the heatmap's and the prediction's reds
      expect(stats.colours).toBeGreaterThan(50);
      await page.close();
    });

    it('follows the sliders: waist 56 moves the prediction toward 43, a larger w sharpens it', async () => {
      const { page, errors } = await openPage(browser, vite.url);
      const slide = (id: string, value: number) => page.evaluate(([id, value]) => {
        const input = document.getElementById(id as string) as HTMLInputElement;
        input.value = String(value);
        input.dispatchEvent(new Event('input', { bubbles: true }));
      }, [id, value] as const);
      await slide('waist', 56);
      const at56 = Number(await text(page, '#prediction'));
      await slide('w', 3);
      const sharper = Number(await text(page, '#prediction'));
      // Node's reference for the same numbers: weights softmax(-(56-56)²w²/2, -(56-58)²w²/2)
      const expected = (w: number) => { const e = Math.exp(-2 * w * w); return (43 + 48 * e) / (1 + e); };
      expect(at56).toBeCloseTo(expected(1), 1);
      expect(sharper).toBeCloseTo(expected(3), 1);
      expect(sharper).toBeLessThan(at56);
      expect(await text(page, '#waist-value')).toBe('56.0');
      expect(errors).toEqual([]);
      await page.close();
    });

    it('computes in the page exactly what Node computes, for the plain and the relaxed-SIMD build', async () => {
      const { page } = await openPage(browser, vite.url);
      const inputs = fixedInputs();
      // both browsers here validate relaxed SIMD (Chromium >= 114, Firefox ESR 153), and the browser
      // project starts node with --experimental-wasm-relaxed-simd (Node >= 22 has it by default)
      const builds = await pageBuilds(page);
      expect(builds, `${name} runs the relaxed-SIMD build`).toContain('relaxed');
      expect(runtimeHasRelaxedSimd(), 'node runs the relaxed-SIMD build').toBe(true);
      for (const simd of builds) {
        const inNode = await runFixed(await import('../../src/index.js'), inputs, simd);
        const inPage = await runInPage(page, inputs, simd);
        expect(inPage.build).toBe(simd);
        expect(inNode.build).toBe(simd);
        for (const key of ['attention', 'weights', 'regression', 'product'] as const) {
          expect(inPage[key].length, `${simd} ${key}`).toBe(inNode[key].length);
          expect(inPage[key], `${simd} ${key} differs between ${name} and Node`).toEqual(inNode[key]);
        }
      }
      await page.close();
    });

    it('shows one map per head and switches to the head that is picked', async () => {
      const { page, errors } = await openPage(browser, new URL('heads.html', vite.url).href);
      expect(await count(page, '#head-buttons button')).toBe(4);
      const panels = () => count(page, '#all-heads svg g.panel');
      expect(await panels()).toBe(4);
      const before = await innerHTML(page, '#head-map');
      await page.click('#head-buttons button[data-head="2"]');
      expect(await text(page, '#head-title')).toBe('head 2');
      expect(await attribute(page, '#head-buttons button[data-head="2"]', 'aria-pressed')).toBe('true');
      expect(await innerHTML(page, '#head-map')).not.toBe(before);
      await page.select('#num-heads', '8');
      expect(await panels()).toBe(8);
      // causal: the first query attends only to itself in every head
      const cells = await count(page, '#head-map svg g.panel rect');
      expect(cells).toBe(100); // ten words
      expect(errors).toEqual([]);
      await page.close();
    });

    it('runs the benchmark cases on both engines and fills the table and the bar chart', async () => {
      const { page, errors } = await openPage(browser, new URL('bench.html?suite=smoke&run', vite.url).href);
      await page.waitForSelector('body[data-bench-done="smoke"]', { timeout: 60_000 });
      const rows = await page.$$eval('#results tbody tr', (trs) => trs.map((tr) => ({ impl: (tr as HTMLElement).dataset.impl, cells: Array.from(tr.children, (td) => td.textContent) })));
      expect(rows.map((r) => r.impl)).toEqual(['wasm', 'reference', 'wasm', 'reference']);
      for (const { cells } of rows) {
        expect(Number(cells[3]), cells.join(' | ')).toBeGreaterThan(0); // median ms
        expect(Number.isFinite(Number(cells[5])), cells.join(' | ')).toBe(true); // GFLOP/s
      }
      expect(await count(page, '#chart svg rect.bar')).toBe(4);
      expect(errors).toEqual([]);
      await page.close();
    });
  });

  describe('examples/esbuild (qkv/inline in one HTML file)', () => {
    it('runs from file:// with nothing to fetch, and computes what Node computes', async () => {
      const { page, errors } = await openPage(browser, pathToFileURL(join(esbuildExample, 'dist/index.html')).href);
      expect(await text(page, '#prediction')).toBe('45.5');
      expect(await count(page, '#heatmap svg g.panel rect')).toBe(36);
      const inputs = fixedInputs();
      const inPage = await runInPage(page, inputs, 'simd');
      const inNode = await runFixed(await import('../../src/index.js'), inputs, 'simd');
      expect(inPage).toEqual(inNode);
      expect(errors).toEqual([]);
      await page.screenshot({ path: artifactPath(`${name}-esbuild.png`) });
      await page.close();
    });
  });

  describe('cross-origin isolation and threads', () => {
    it('without COOP/COEP a page asking for threads runs one thread and warns why', async () => {
      const { page, errors, warnings } = await openPage(browser, `${vite.url}?threads=2`);
      expect(await page.evaluate(() => crossOriginIsolated)).toBe(false);
      expect(await text(page, '#runtime')).toContain('1 thread · cross-origin isolated: no');
      expect(warnings.join('\n')).toMatch(/cross-origin isolation/);
      expect(await text(page, '#prediction')).toBe('45.5');
      expect(errors).toEqual([]);
      await page.close();
    });

    it('with QKV_ISOLATED=1 vite preview sends COOP/COEP: the page runs 2 threads and still matches Node bit for bit', async () => {
      const isolated = await servePreview({ isolated: true });
      try {
        const { page, errors, warnings } = await openPage(browser, `${isolated.url}?threads=2`);
        expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
        expect(await text(page, '#runtime')).toContain('2 threads · cross-origin isolated: yes');
        expect(await text(page, '#prediction')).toBe('45.5');
        const inputs = fixedInputs();
        const inPage = await runInPage(page, inputs, 'simd', 2);
        const inNode = await runFixed(await import('../../src/index.js'), inputs, 'simd', 1);
        expect(inPage.threads).toBe(2);
        expect({ ...inPage, threads: 1 }).toEqual(inNode);
        expect(errors).toEqual([]);
        expect(warnings).toEqual([]);
        await page.close();
      } finally {
        await isolated.close();
      }
    });
  });

  describe('examples/webpack (webpack 5, no configuration) from a static server', () => {
    it('finds the wasm webpack emitted, shows the example and computes what Node computes on both builds', async () => {
      const { page, errors } = await openPage(browser, webpack.url);
      expect(await text(page, '#prediction')).toBe('45.5');
      expect(await count(page, '#heatmap svg g.panel rect')).toBe(36);
      const inputs = fixedInputs();
      const builds = await pageBuilds(page);
      expect(builds).toContain('relaxed');
      for (const simd of builds) {
        const inPage = await runInPage(page, inputs, simd);
        expect(inPage, `${simd} build in ${name} (webpack) and Node`).toEqual(await runFixed(await import('../../src/index.js'), inputs, simd));
      }
      expect(errors).toEqual([]);
      await page.screenshot({ path: artifactPath(`${name}-webpack.png`) });
      await page.close();
    });

    it('with COOP/COEP runs 2 threads through the worker webpack emitted, bit for bit as Node on 1', async () => {
      const isolated = await serveStatic(webpackExample, { isolated: true });
      try {
        const { page, errors, warnings } = await openPage(browser, `${isolated.url}?threads=2`);
        expect(await text(page, '#runtime')).toContain('2 threads · cross-origin isolated: yes');
        const inputs = fixedInputs();
        const inPage = await runInPage(page, inputs, 'simd', 2);
        expect(inPage.threads).toBe(2);
        expect({ ...inPage, threads: 1 }).toEqual(await runFixed(await import('../../src/index.js'), inputs, 'simd', 1));
        expect(errors).toEqual([]);
        expect(warnings).toEqual([]);
        await page.close();
      } finally {
        await isolated.close();
      }
    });
  });
});
