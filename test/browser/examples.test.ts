// The built examples in real browsers, Chromium and Firefox (two wasm engines, each with its own SIMD
// code generation): examples/vite through `vite preview` (the default entry, its .wasm found by Vite
// from `new URL(…, import.meta.url)`), examples/webpack (webpack 5, no configuration) from a plain
// static server, examples/esbuild as one HTML file opened from disk (qkv/inline). Results in the page
// must equal Node's bit for bit for the same build; the models page's tokens equal those the built
// package generates in Node from the same checkpoint files.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Browser, ElementHandle, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: bench/ is plain JavaScript without declarations
import { writeGguf } from '../../bench/lib/gguf.js';
// @ts-expect-error: bench/ is plain JavaScript without declarations
import { SHAPES, writeRandomCheckpoint } from '../../bench/lib/randomCheckpoint.js';
import * as built from '../../dist/index.js';
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

/**
 * A rate cell of the models page: tokens/s, or "> n" when the time was under the clock's resolution
 * (Firefox rounds performance.now() to 1 ms; llama.cpp's timings in the page come from it).
 */
const rateIn = (cell: string | null) => Number(/^(?:> )?([\d.]+)$/.exec(cell ?? '')?.[1] ?? Number.NaN);

const DECODERS = fileURLToPath(new URL('../fixtures/decoders/', import.meta.url));
const GGUFS = fileURLToPath(new URL('../fixtures/gguf/', import.meta.url));

/**
 * A folder for the models page's files that are made here: the llama3 fixture with a tokenizer.json
 * (a BPE with no merges: a to z are ids 3 to 28, A to S ids 29 to 47, so every id decodes, and the
 * post-processor adds <s>, id 1), and truncated copies of a safetensors and a GGUF file.
 */
function modelFiles(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'qkv-models-page-'));
  const vocab: Record<string, number> = { '<pad>': 0, '<s>': 1, '</s>': 2 };
  for (let i = 0; i < 26; i++) vocab[String.fromCharCode(97 + i)] = 3 + i;
  for (let i = 0; i < 19; i++) vocab[String.fromCharCode(65 + i)] = 29 + i;
  const special = (content: string, id: number) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const tokenizer = {
    version: '1.0', truncation: null, padding: null, normalizer: null,
    added_tokens: [special('<pad>', 0), special('<s>', 1), special('</s>', 2)],
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: { type: 'Fuse' },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: [] },
  };
  for (const f of ['config.json', 'generation_config.json', 'model.safetensors']) copyFileSync(join(DECODERS, 'llama3', f), join(dir, f));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  const cut = (from: string, to: string, keep: number) => writeFileSync(to, readFileSync(from).subarray(0, keep));
  const safetensors = readFileSync(join(DECODERS, 'llama3/model.safetensors'));
  // the header and half the tensors' bytes: every header check passes, the reads run out
  cut(join(DECODERS, 'llama3/model.safetensors'), join(dir, 'truncated.safetensors'), 8 + Number(safetensors.readBigUInt64LE(0)) + 1000);
  cut(join(GGUFS, 'llama3-q8_0.gguf'), join(dir, 'truncated.gguf'), 600);
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The tokens the built package generates in Node (wasm engine, greedy), as the models page asks for them. */
async function nodeGenerate(source: string, weights: 'stored' | 'float32' | 'int8' | 'int4', prompt: number[], maxNewTokens: number): Promise<number[]> {
  const engine = await built.createEngine();
  const decoder = await built.loadDecoder(source, { engine, weights: weights === 'stored' ? undefined : weights, maxTokens: 4096 });
  try {
    const out: number[] = [];
    for await (const t of decoder.generate(prompt, { maxNewTokens })) out.push(t);
    return out;
  } finally {
    decoder.dispose();
    engine.dispose();
  }
}

/** The models page's state (body[data-models]) once it leaves `from`: loaded, done or error. */
async function modelsState(page: Page, from: string): Promise<string> {
  await page.waitForFunction((from) => !['', from].includes(document.body.dataset.models ?? ''), { timeout: 60_000 }, from);
  return page.$eval('body', (b) => b.dataset.models ?? '');
}

/** Picks `paths` in the models page's file input, chooses `weights` and loads; returns the page's state. */
async function loadInPage(page: Page, paths: string[], weights: string): Promise<string> {
  await page.evaluate(() => { document.body.dataset.models = 'picking'; });
  const input = (await page.$('#files')) as ElementHandle<HTMLInputElement>;
  await input.uploadFile(...paths);
  await page.select('#weights', weights);
  if (await page.$eval('#load', (b) => (b as HTMLButtonElement).disabled)) return page.$eval('body', (b) => b.dataset.models ?? '');
  await page.click('#load');
  return modelsState(page, 'loading');
}

/** Types `prompt` and the token count, generates; returns the page's state. */
async function generateInPage(page: Page, prompt: string, maxNewTokens: number): Promise<string> {
  const set = (selector: string, value: string) => page.$eval(selector, (e, value) => {
    (e as HTMLInputElement).value = value;
    e.dispatchEvent(new Event('input', { bubbles: true }));
  }, value);
  await set('#prompt', prompt);
  await set('#max-new', String(maxNewTokens));
  await page.click('#generate');
  return modelsState(page, 'generating');
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

  describe('examples/vite models page: a checkpoint from disk', () => {
    let files: ReturnType<typeof modelFiles>;
    beforeAll(() => {
      files = modelFiles();
    });
    afterAll(() => files?.remove());
    const llama3 = JSON.parse(readFileSync(join(DECODERS, 'llama3/expected.json'), 'utf8')) as { prompt: number[]; greedy: number[] };

    it('loads a safetensors checkpoint, generates greedily what Node and transformers generate, and shows the rates and the chart', async () => {
      const { page, errors } = await openPage(browser, new URL('models.html', vite.url).href);
      expect(await text(page, 'nav')).toContain('Models');
      const paths = ['config.json', 'generation_config.json', 'model.safetensors'].map((f) => join(DECODERS, 'llama3', f));
      expect(await loadInPage(page, paths, 'float32')).toBe('loaded');
      expect(await text(page, '#model')).toMatch(/loaded LlamaForCausalLM \(safetensors\): 2 layers, hidden 32, vocabulary 48/);
      expect(await generateInPage(page, llama3.prompt.join(', '), 8)).toBe('done');
      const tokens = (await text(page, '#tokens'))!.split(', ').map(Number);
      expect(tokens).toEqual(await nodeGenerate(join(DECODERS, 'llama3'), 'float32', llama3.prompt, 8));
      expect(tokens).toEqual(llama3.greedy); // transformers' greedy tokens (no end-of-sequence token among them)
      const cells = await page.$$eval('#rate-qkv td', (tds) => tds.map((td) => td.textContent));
      expect(cells[1]).toBe('14');
      expect(cells[3]).toBe('8');
      expect(rateIn(cells[2]), cells.join(' | ')).toBeGreaterThan(0); // prefill tok/s
      expect(rateIn(cells[4]), cells.join(' | ')).toBeGreaterThan(0); // decode tok/s
      expect(await count(page, '#chart svg path')).toBe(1);
      expect(errors).toEqual([]);
      await page.screenshot({ fullPage: true, path: artifactPath(`${name}-models.png`) });
      await page.close();
    });

    it('loads GGUF files as stored and as int4, each generating what Node generates from the same file', async () => {
      const { page, errors } = await openPage(browser, new URL('models.html', vite.url).href);
      for (const [file, weights] of [['llama3-q8_0.gguf', 'stored'], ['qwen2w-f32.gguf', 'int4']] as const) {
        expect(await loadInPage(page, [join(GGUFS, file)], weights), `${file}: ${await text(page, '#error')}`).toBe('loaded');
        expect(await text(page, '#model')).toContain('(gguf)');
        expect(await page.$eval('#with-wllama', (e) => (e as HTMLInputElement).disabled)).toBe(false);
        expect(await generateInPage(page, llama3.prompt.join(' '), 6), file).toBe('done');
        const tokens = (await text(page, '#tokens'))!.split(', ').filter(Boolean).map(Number);
        expect(tokens.length, file).toBeGreaterThan(0);
        expect(tokens, `${file} ${weights}`).toEqual(await nodeGenerate(join(GGUFS, file), weights, llama3.prompt, 6));
      }
      expect(errors).toEqual([]);
      await page.close();
    });

    it('takes a text prompt through the checkpoint\'s tokenizer.json and shows the text', async () => {
      const { page, errors } = await openPage(browser, new URL('models.html', vite.url).href);
      const paths = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json'].map((f) => join(files.dir, f));
      expect(await loadInPage(page, paths, 'float32'), (await text(page, '#error'))!).toBe('loaded');
      expect(await text(page, '#model')).toContain('the prompt may be text');
      expect(await generateInPage(page, 'hello world', 5)).toBe('done');
      // the tokenizer's ids for "hello world": <s>, then one id per letter
      const prompt = [1, ...'helloworld'].map((c) => (typeof c === 'number' ? c : c.charCodeAt(0) - 97 + 3));
      expect(await page.$eval('body', (b) => b.dataset.promptTokens)).toBe(prompt.join(','));
      const tokens = (await text(page, '#tokens'))!.split(', ').map(Number);
      expect(tokens).toEqual(await nodeGenerate(files.dir, 'float32', prompt, 5));
      const letters = tokens.filter((t) => t > 2).map((t) => (t < 29 ? String.fromCharCode(97 + t - 3) : String.fromCharCode(65 + t - 29))).join('');
      expect(await text(page, '#text')).toBe(letters);
      expect(errors).toEqual([]);
      await page.close();
    });

    it('runs llama.cpp (wllama) beside qkv on a GGUF with a text prompt: both rates, the same greedy text', async () => {
      // the bench's tiny llama as Q8_0, with its byte-level vocabulary (printable ASCII: one token per
      // character, its byte value; bench/lib/gguf.js) and a tokenizer.json that encodes it the same way for qkv
      writeRandomCheckpoint(join(files.dir, 'tiny'), SHAPES['tiny-llama'], { seed: 3 });
      writeGguf(join(files.dir, 'tiny.gguf'), join(files.dir, 'tiny'), { type: 'Q8_0' });
      const vocab: Record<string, number> = {};
      for (let id = 0; id < 512; id++) vocab[id >= 33 && id <= 126 ? String.fromCharCode(id) : `<${id}>`] = id;
      const bytes = { ...JSON.parse(readFileSync(join(files.dir, 'tokenizer.json'), 'utf8')), added_tokens: [], post_processor: null };
      bytes.model = { ...bytes.model, vocab };
      mkdirSync(join(files.dir, 'tiny-gguf'));
      writeFileSync(join(files.dir, 'tiny-gguf/tokenizer.json'), JSON.stringify(bytes));
      const { page, errors } = await openPage(browser, new URL('models.html', vite.url).href);
      expect(await loadInPage(page, [join(files.dir, 'tiny.gguf'), join(files.dir, 'tiny-gguf/tokenizer.json')], 'stored'), (await text(page, '#error'))!).toBe('loaded');
      await page.click('#with-wllama');
      expect(await generateInPage(page, 'Hello', 8), (await text(page, '#error'))!).toBe('done');
      const tokens = (await text(page, '#tokens'))!.split(', ').map(Number);
      expect(tokens).toEqual(await nodeGenerate(join(files.dir, 'tiny.gguf'), 'stored', [...'Hello'].map((c) => c.charCodeAt(0)), 8));
      const rows = await page.$$eval('#rates tbody tr', (trs) => trs.map((tr) => Array.from(tr.children, (td) => td.textContent)));
      expect(rows.map((r) => r[0])).toEqual(['qkv', 'llama.cpp (wllama)']);
      for (const row of rows) {
        expect(row[1], row.join(' | ')).toBe('5'); // "Hello": five tokens for both tokenizers
        expect(rateIn(row[2]), row.join(' | ')).toBeGreaterThan(0);
        expect(rateIn(row[4]), row.join(' | ')).toBeGreaterThan(0);
      }
      // the same Q8_0 blocks, greedy: the same text (qkv's int8 rows are llama.cpp's Q8_0 x Q8_0 products)
      expect(await text(page, '#wllama-text')).toBe(`llama.cpp: ${await text(page, '#text')}`);
      expect(await count(page, '#chart svg path')).toBe(2);
      expect(errors).toEqual([]);
      await page.close();
    });

    it('says in the page what is wrong with a file that is no checkpoint, a truncated file or a bad prompt', async () => {
      const { page, errors } = await openPage(browser, new URL('models.html', vite.url).href);
      const message = async () => ((await page.$eval('#error', (e) => (e as HTMLElement).hidden)) ? '' : await text(page, '#error'));
      // not a checkpoint: refused before loading
      expect(await loadInPage(page, [join(DECODERS, 'README.md')], 'float32')).toBe('error');
      expect(await message()).toMatch(/README\.md is not a checkpoint: pick a \.gguf file, or a checkpoint's config\.json and model\.safetensors/);
      expect(await page.$eval('#load', (b) => (b as HTMLButtonElement).disabled)).toBe(true);
      // config.json alone
      expect(await loadInPage(page, [join(DECODERS, 'llama3/config.json')], 'float32')).toBe('error');
      expect(await message()).toMatch(/config\.json but no \.safetensors file/);
      // truncated safetensors (renamed by its folder: the page reads it as model.safetensors)
      const cutDir = mkdtempSync(join(tmpdir(), 'qkv-models-cut-'));
      try {
        copyFileSync(join(DECODERS, 'llama3/config.json'), join(cutDir, 'config.json'));
        copyFileSync(join(files.dir, 'truncated.safetensors'), join(cutDir, 'model.safetensors'));
        expect(await loadInPage(page, [join(cutDir, 'config.json'), join(cutDir, 'model.safetensors')], 'float32')).toBe('error');
        expect(await message()).toMatch(/^could not load the checkpoint: .*model\.safetensors/);
      } finally {
        rmSync(cutDir, { recursive: true, force: true });
      }
      // truncated GGUF
      expect(await loadInPage(page, [join(files.dir, 'truncated.gguf')], 'stored')).toBe('error');
      expect(await message()).toMatch(/^could not load the checkpoint: .*truncated\.gguf/);
      // a good checkpoint after the bad ones, then prompts it cannot take
      expect(await loadInPage(page, [join(GGUFS, 'llama3-q8_0.gguf')], 'stored')).toBe('loaded');
      expect(await message()).toBe('');
      expect(await generateInPage(page, 'some text', 4)).toBe('error');
      expect(await message()).toMatch(/no tokenizer\.json: give the prompt as token ids/);
      expect(await generateInPage(page, '1, 2, 99', 4)).toBe('error');
      expect(await message()).toMatch(/token id 99 is not in this model's vocabulary \(0 to 47\)/);
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
