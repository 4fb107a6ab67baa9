// A tour of qkv: from Nadaraya–Watson kernel regression to production attention.
//
//   npm start            (builds, then runs `node examples/tour.js`)
//
// Every op runs on both engines: `reference` (readable pure TypeScript) and the WebAssembly
// engine from `createEngine()`. The tour prints how far apart they are and how fast each one is.
// It ends where attention is used today: a decoder, loaded from a Hugging Face checkpoint shipped
// in examples/model/ (a toy trained on one page about attention), turning a prompt into text.

import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';
import { attentionHeatmap, createEngine, loadDecoder, mask, reference, tensor } from 'qkv';
import { lineChart } from './vite/src/plot.js'; // the SVG line chart of the Vite app's essay page

// ---------------------------------------------------------------------------------------------
// Small helpers: a seeded PRNG, tensors of random numbers, formatting, timing
// ---------------------------------------------------------------------------------------------

/** mulberry32: a tiny seeded PRNG returning floats in [0, 1), so every run prints the same numbers. */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = mulberry32(42);

/** A standard normal sample (Box–Muller). */
function randn() {
  const u = 1 - rand(); // (0, 1]: log(u) is finite
  const v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

const sizeOf = (shape) => shape.reduce((n, d) => n * d, 1);

/** A tensor of N(0, std^2) samples. */
function randnTensor(shape, std = 1) {
  return tensor(Array.from({ length: sizeOf(shape) }, () => std * randn()), shape);
}

/** A weight matrix [out, in] (PyTorch nn.Linear layout), N(0, 1) scaled by 1/sqrt(fan_in). */
function initWeight(outFeatures, inFeatures) {
  return randnTensor([outFeatures, inFeatures], 1 / Math.sqrt(inFeatures));
}

/** Largest |a - b| over two tensors (Infinity when the shapes differ or a value is NaN). */
function maxAbsDiff(a, b) {
  if (a.shape.join() !== b.shape.join()) return Infinity;
  let m = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(a.data[i] - b.data[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

const fmtShape = (shape) => `[${shape.join(', ')}]`;
const fmt = (x, digits = 3) => x.toFixed(digits).padStart(digits + 4);
const fmtMs = (t) => (t >= 100 ? t.toFixed(0) : t >= 10 ? t.toFixed(1) : t >= 1 ? t.toFixed(2) : t.toFixed(3));

/** Median wall time in ms of `fn()`: one warm-up call, then enough runs to fill ~200 ms (3 to 51 runs). */
function timeMs(fn) {
  let t0 = performance.now();
  fn();
  const first = performance.now() - t0;
  const runs = Math.min(51, Math.max(3, Math.round(200 / Math.max(first, 1e-3))));
  const times = [];
  for (let r = 0; r < runs; r++) {
    t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[runs >> 1];
}

const rule = (title) => console.log(`\n== ${title} ${'='.repeat(Math.max(0, 92 - title.length))}\n`);

// ---------------------------------------------------------------------------------------------

const wasm = await createEngine(); // the WebAssembly engine (options: { threads, simd, wasm })
const engines = [reference, wasm];

console.log('qkv tour: attention from first principles to production');
console.log(
  `Node ${process.version} | wasm engine: simd=${wasm.info.simd}, threads=${wasm.info.threads}, ` +
    `memory=${(wasm.info.memoryBytes / 2 ** 20).toFixed(1)} MiB | reference engine: pure TypeScript`,
);

// =============================================================================================
// 1. The essay's example: predict a weight from a waist with Nadaraya–Watson kernel regression
// =============================================================================================
rule('1. Nadaraya-Watson kernel regression: the essay example');

{
  const keys = tensor([56, 58], [2]); // waists of the two people we know
  const values = tensor([43, 48], [2]); // their weights
  const queries = tensor([57], [1]); // the waist we want a weight for
  console.log('keys (waists) [56, 58], values (weights) [43, 48], query waist 57, Gaussian kernel w = 1');
  for (const engine of engines) {
    const { output, weights } = engine.kernelRegression(queries, keys, values, { returnWeights: true });
    console.log(
      `  ${engine.name.padEnd(9)}  prediction ${output.data[0].toFixed(2)}   ` +
        `weights ${weights.data[0].toFixed(2)} / ${weights.data[1].toFixed(2)}`,
    );
  }
  console.log('57 is 1 away from both 56 and 58, so both keys get the same kernel score, the softmax');
  console.log('splits the attention 0.5 / 0.5, and the prediction is the plain average (43 + 48) / 2 = 45.5.');

  // Can the two people teach us w? Predict each from the other (leave one out) and ask for the slope.
  const loo = wasm.kernelRegressionLoss(keys, keys, values, values, { w: 1, leaveOneOut: true });
  console.log(
    `\nLeft out in turn, each person is predicted from the other alone: ${Array.from(loo.output.data).join(' and ')} ` +
      `(loss ${loo.loss}, dLoss/dw ${loo.dLossDw}),\nwhatever w is: two examples cannot teach the kernel width. Section 3 learns it from 50.`,
  );
}

// =============================================================================================
// 2. A realistic regression: 50 noisy samples of y = 2 sin x + x^0.8
// =============================================================================================
rule('2. Nadaraya-Watson regression of y = 2 sin(x) + x^0.8 (50 noisy samples)');

{
  const f = (x) => 2 * Math.sin(x) + x ** 0.8;
  const nTrain = 50;
  const xTrain = Array.from({ length: nTrain }, () => 5 * rand()).sort((a, b) => a - b);
  const yTrain = xTrain.map((x) => f(x) + 0.5 * randn()); // noise N(0, 0.5)
  const xTest = Array.from({ length: 50 }, (_, i) => i / 10); // 0, 0.1, ..., 4.9
  const yTrue = xTest.map(f);

  const keys = tensor(xTrain, [nTrain]);
  const values = tensor(yTrain, [nTrain]);
  const queries = tensor(xTest, [xTest.length]);

  // w scales the distances inside the Gaussian kernel: a larger w means a narrower kernel,
  // so each prediction averages fewer, closer training points (less bias, more variance).
  const ws = [1, 4, 20];
  const preds = {};
  let regDiff = 0;
  for (const w of ws) {
    const { output } = wasm.kernelRegression(queries, keys, values, { w });
    regDiff = Math.max(regDiff, maxAbsDiff(output, reference.kernelRegression(queries, keys, values, { w }).output));
    preds[w] = output.data;
  }
  const mse = (p) => p.reduce((s, y, i) => s + (y - yTrue[i]) ** 2, 0) / p.length;

  console.log('mean squared error against the true curve (50 test points x = 0, 0.1, ..., 4.9):');
  for (const w of ws) {
    const note = w === 1 ? 'non-parametric; wide kernel: over-smoothed' : w === 4 ? 'a good balance' : 'narrow kernel: chases the noise';
    console.log(`  w = ${String(w).padEnd(3)} MSE ${mse(preds[w]).toFixed(4)}   (${note})`);
  }
  console.log(`  (max |wasm - reference| over all predictions: ${regDiff.toExponential(1)})\n`);

  console.log(`${'x'.padStart(5)} ${'truth'.padStart(7)} ${ws.map((w) => `w=${w}`.padStart(7)).join(' ')}`);
  for (const i of [0, 5, 10, 15, 20, 30, 40, 49]) {
    console.log(`${xTest[i].toFixed(1).padStart(5)} ${fmt(yTrue[i])} ${ws.map((w) => fmt(preds[w][i])).join(' ')}`);
  }

  // A coarse ASCII plot: one column per test point, '.' truth, '*' the w = 4 fit, 'o' training samples.
  const rows = 11;
  const yMin = -1;
  const yMax = 4.5;
  const grid = Array.from({ length: rows }, () => Array(50).fill(' '));
  const put = (col, y, ch) => {
    const r = Math.round(((yMax - y) / (yMax - yMin)) * (rows - 1));
    if (col >= 0 && col < 50 && r >= 0 && r < rows) grid[r][col] = ch;
  };
  xTrain.forEach((x, j) => put(Math.round(x * 10), yTrain[j], 'o'));
  yTrue.forEach((y, i) => put(i, y, '.'));
  preds[4].forEach((y, i) => put(i, y, '*'));
  console.log(`\n  ('.' truth, '*' fit with w = 4, 'o' training samples)`);
  grid.forEach((row, r) => {
    const label = r === 0 ? yMax.toFixed(1) : r === rows - 1 ? yMin.toFixed(1) : '';
    console.log(`${label.padStart(5)} |${row.join('')}`);
  });
  console.log(`      +${'-'.repeat(50)}\n       x = 0${' '.repeat(40)}x = 4.9`);

  // ===========================================================================================
  // 3. Learning w: d2l's parametric Nadaraya–Watson, by gradient descent on a leave-one-out loss
  // ===========================================================================================
  rule("3. Learning the kernel width w by gradient descent (d2l's parametric Nadaraya-Watson)");

  // Each training point is predicted from the other 49 (leave one out: its own weight is masked),
  // so a narrow kernel cannot score by copying the point itself. kernelRegressionLoss returns the
  // predictions, their mean squared error against the targets, and dLoss/dw, which the op derives
  // by hand (see src/reference/kernelRegressionLoss.ts): no autograd, on either engine.
  const learningRate = 2;
  const steps = 15;
  const descend = (engine) => {
    const path = [];
    let w = 1; // start from the non-parametric kernel (w = 0 would be stuck: the slope there is 0)
    for (let step = 0; step <= steps; step++) {
      const { loss, dLossDw } = engine.kernelRegressionLoss(keys, keys, values, values, { w, leaveOneOut: true });
      path.push({ w, loss, dLossDw });
      if (step < steps) w -= learningRate * dLossDw;
    }
    return path;
  };
  const [path, refPath] = [wasm, reference].map(descend);
  console.log(`leave-one-out MSE over the 50 training samples, w -= ${learningRate} * dLoss/dw, from w = 1 (wasm engine):\n`);
  console.log(`${'step'.padStart(6)} ${'w'.padStart(8)} ${'loss'.padStart(9)} ${'dLoss/dw'.padStart(10)}`);
  path.forEach(({ w, loss, dLossDw }, step) => {
    console.log(`${String(step).padStart(6)} ${w.toFixed(4).padStart(8)} ${loss.toFixed(5).padStart(9)} ${dLossDw.toFixed(5).padStart(10)}`);
  });
  const learned = path[steps].w;
  const gap = (key) => Math.max(...path.map((p, i) => Math.abs(p[key] - refPath[i][key])));
  console.log(
    `\nlearned w = ${learned.toFixed(4)} (reference engine, the same steps: w = ${refPath[steps].w.toFixed(4)}; ` +
      `largest difference in loss ${gap('loss').toExponential(1)}, in dLoss/dw ${gap('dLossDw').toExponential(1)})`,
  );
  const fitted = wasm.kernelRegression(queries, keys, values, { w: learned }).output.data;
  console.log(`MSE against the true curve: w = 1 ${mse(preds[1]).toFixed(4)}, learned w = ${learned.toFixed(2)} ${mse(fitted).toFixed(4)}`);

  // The fitted curve next to the non-parametric one, as an SVG like the heatmaps of section 6.
  const xs = Array.from({ length: 101 }, (_, i) => i / 20); // 0, 0.05, ..., 5
  const curve = (w) => Array.from(wasm.kernelRegression(tensor(xs, [xs.length]), keys, values, { w }).output.data);
  writeFileSync('kernel-regression-fit.svg', lineChart({
    width: 560, height: 340, xRange: [0, 5], yRange: [-1.5, 5],
    lines: [
      { xs, ys: xs.map(f), color: '#737373', dash: '5 4' },
      { xs, ys: curve(1), color: '#2171b5' },
      { xs, ys: curve(learned), color: '#cb181d' },
    ],
    points: xTrain.map((x, j) => ({ x, y: yTrain[j], color: '#969696', r: 3 })),
    legend: [
      { label: 'truth: 2 sin(x) + x^0.8', color: '#737373', dash: '5 4' },
      { label: 'non-parametric, w = 1', color: '#2171b5' },
      { label: `learned, w = ${learned.toFixed(2)}`, color: '#cb181d' },
      { label: 'training samples', color: '#969696', point: true },
    ],
    xTitle: 'x', yTitle: 'y',
  }));
  console.log('wrote kernel-regression-fit.svg: the learned fit next to the non-parametric one');
}

// =============================================================================================
// 4. Every attention variant on both engines
// =============================================================================================
rule('4. Attention variants: reference vs wasm');

const results = [];
const header =
  `${'variant'.padEnd(42)}${'output shape'.padEnd(18)}${'max|diff|'.padStart(10)}` +
  `${'ref ms'.padStart(10)}${'wasm ms'.padStart(10)}${'speedup'.padStart(9)}`;
console.log(header);
console.log('-'.repeat(header.length));

/**
 * Runs `op(engine)` on both engines, compares every tensor it returns and prints one table row.
 * `op` returns a Tensor or a result object ({ output, weights?, presentKey?, ... }).
 */
function compare(name, op) {
  const tensorsOf = (r) => ('data' in r ? { output: r } : r);
  const ref = tensorsOf(op(reference));
  const got = tensorsOf(op(wasm));
  let diff = 0;
  for (const key of Object.keys(ref)) if (ref[key]) diff = Math.max(diff, maxAbsDiff(got[key], ref[key]));
  const refMs = timeMs(() => op(reference));
  const wasmMs = timeMs(() => op(wasm));
  results.push({ name, diff });
  console.log(
    `${name.padEnd(42)}${fmtShape(ref.output.shape).padEnd(18)}${diff.toExponential(1).padStart(10)}` +
      `${fmtMs(refMs).padStart(10)}${fmtMs(wasmMs).padStart(10)}${`${(refMs / wasmMs).toFixed(1)}x`.padStart(9)}`,
  );
  return { ref, got };
}

const sdpa = (q, k, v, options) => (engine) => engine.scaledDotProductAttention(q, k, v, options);
const notes = []; // extra lines printed under the table

// Plain dot-product attention: scale 1 instead of 1/sqrt(E); 3-D inputs [B, L, E] mean one head.
{
  const [q, k, v] = [0, 1, 2].map(() => randnTensor([2, 64, 32], 0.3));
  compare('dot-product (scale 1), 3-D', sdpa(q, k, v, { scale: 1 }));
}

// The common shape of a transformer layer: [B, H, L, E], default scale 1/sqrt(E).
const [B, H, L, E] = [1, 8, 256, 64];
const q = randnTensor([B, H, L, E]);
const k = randnTensor([B, H, L, E]);
const v = randnTensor([B, H, L, E]);
compare('scaled dot-product', sdpa(q, k, v));

// Padding as a boolean mask (1 = may attend): batch b sees only its first lens[b] keys.
{
  const lens = [L - 1 - Math.floor(rand() * 64), L - 1 - Math.floor(rand() * 64)];
  const bits = [];
  for (const n of lens) for (let j = 0; j < L; j++) bits.push(j < n ? 1 : 0);
  const padding = mask(bits, [2, 1, 1, L]); // broadcasts over heads and queries
  const [q2, k2, v2] = [0, 1, 2].map(() => randnTensor([2, H, L, E]));
  compare(`boolean mask (padding ${lens.join('/')})`, sdpa(q2, k2, v2, { mask: padding }));
}

// An additive mask is added to the scores: here an ALiBi-style bias -slope_h * |i - j| per head.
{
  const bias = new Float32Array(H * L * L);
  for (let h = 0; h < H; h++) {
    const slope = 2 ** (-(h + 1));
    for (let i = 0; i < L; i++) for (let j = 0; j < L; j++) bias[(h * L + i) * L + j] = -slope * Math.abs(i - j);
  }
  compare('additive mask (ALiBi bias [H, L, L])', sdpa(q, k, v, { mask: mask(bias, [H, L, L]) }));
}

compare('causal (top-left)', sdpa(q, k, v, { causal: true }));

// Bottom-right: 64 new queries line up with the end of each sequence's valid keys (chunked prefill).
{
  const qShort = randnTensor([2, H, 64, E]);
  const [k2, v2] = [0, 1].map(() => randnTensor([2, H, L, E]));
  compare('causal bottom-right, validLens 200/256', sdpa(qShort, k2, v2, { causal: 'bottom-right', validLens: [200, 256] }));
}

compare('sliding window (left 16) + causal', sdpa(q, k, v, { causal: true, window: { left: 16 } }));

// Grouped-query attention: 8 query heads share 2 key/value heads (4 query heads per kv head).
{
  const kGqa = randnTensor([B, 2, L, E]);
  const vGqa = randnTensor([B, 2, L, E]);
  compare('grouped-query, Hq 8 / Hkv 2, causal', sdpa(q, kGqa, vGqa, { causal: true }));
}

// Soft-capping (Gemma 2): scores = 30 tanh(scores / 30); larger inputs so the cap matters.
{
  const [qBig, kBig] = [0, 1].map(() => randnTensor([B, H, L, E], 4));
  compare('softcap 30', sdpa(qBig, kBig, v, { softcap: 30 }));
}

// Decoding with a KV cache: 255 cached positions plus one new token. presentKey/presentValue
// (past + new) are returned, ready to be passed back as pastKey/pastValue for the next token.
{
  const pastKey = randnTensor([B, H, L - 1, E]);
  const pastValue = randnTensor([B, H, L - 1, E]);
  const [q1, k1, v1] = [0, 1, 2].map(() => randnTensor([B, H, 1, E]));
  const { ref } = compare('KV-cache decode, 255 past + 1 new', sdpa(q1, k1, v1, { pastKey, pastValue, causal: true }));
  notes.push(`KV-cache decode: presentKey ${fmtShape(ref.presentKey.shape)}, presentValue ${fmtShape(ref.presentValue.shape)}`);
}

// Additive (Bahdanau) attention, the d2l example: keys all ones, so every valid key gets the same
// weight and the output is the mean of the first validLens[b] value rows.
{
  const query = randnTensor([2, 1, 20]);
  const key = tensor(new Array(2 * 10 * 2).fill(1), [2, 10, 2]);
  const value = tensor(Array.from({ length: 80 }, (_, i) => i % 40), [2, 10, 4]); // arange(40) twice
  const hidden = 8;
  const params = { Wq: initWeight(hidden, 20), Wk: initWeight(hidden, 2), wv: initWeight(1, hidden) };
  const { ref } = compare('additive attention (d2l), validLens 2/6', (engine) =>
    engine.additiveAttention(query, key, value, params, { validLens: [2, 6], returnWeights: true }),
  );
  const rows = [0, 1].map((b) => `[${Array.from(ref.output.data.slice(4 * b, 4 * b + 4), (x) => x.toFixed(1)).join(', ')}]`);
  notes.push(`additive attention output: ${rows.join('  ')}   (means of value rows 0-1 and 0-5)`);
}

// d2l's masked softmax: positions at or beyond the valid length get weight 0.
let maskedRows;
{
  const x = tensor(Array.from({ length: 16 }, rand), [2, 2, 4]);
  const { ref } = compare('maskedSoftmax (d2l), validLens 2/3', (engine) => engine.maskedSoftmax(x, [2, 3]));
  maskedRows = [0, 1, 2, 3].map((r) => Array.from(ref.output.data.slice(4 * r, 4 * r + 4), (p) => p.toFixed(4)).join('  '));
}

// Multi-head attention with the parameters of PyTorch nn.MultiheadAttention(embed_dim=64, num_heads=8).
{
  const Emb = 64;
  const params = {
    numHeads: 8,
    inProjWeight: initWeight(3 * Emb, Emb), // [3E, E]: q, k and v projections stacked
    inProjBias: randnTensor([3 * Emb], 0.02),
    outProjWeight: initWeight(Emb, Emb),
    outProjBias: randnTensor([Emb], 0.02),
  };
  const [query, memory] = [0, 1].map(() => randnTensor([2, 32, Emb]));
  compare('multi-head attention (E 64, 8 heads)', (engine) => engine.multiHeadAttention(query, memory, memory, params));
  compare('self-attention, causal', (engine) => engine.selfAttention(query, params, { causal: true }));
}

// Sinusoidal positional encoding [maxLen, dim].
{
  const { ref } = compare('positionalEncoding(64, 32)', (engine) => engine.positionalEncoding(64, 32));
  const P = ref.output;
  const row = (i) => Array.from(P.data.slice(i * 32, i * 32 + 4), (p) => p.toFixed(4).padStart(7)).join(' ');
  notes.push(`positionalEncoding P[1, 0:4] = ${row(1)}   P[63, 0:4] = ${row(63)}`);
}

{
  const a = randnTensor([256, 256]);
  const b = initWeight(256, 256); // scaled by 1/sqrt(256), so the products stay O(1)
  compare('matmul 256x256', (engine) => engine.matmul(a, b));
}

console.log('(times are medians; on tiny inputs such as maskedSoftmax [2, 2, 4] they measure call overhead)\n');
for (const line of notes) console.log(line);
console.log('maskedSoftmax rows (batch 0 keeps 2 positions, batch 1 keeps 3):');
maskedRows.forEach((r, i) => console.log(`  batch ${i >> 1}, row ${i & 1}:  ${r}`));

// =============================================================================================
// Summary
// =============================================================================================
const worst = results.reduce((a, b) => (b.diff > a.diff ? b : a));
console.log(
  `\nSummary: ${results.length} ops on both engines; max |wasm - reference| = ${worst.diff.toExponential(1)} (${worst.name}).`,
);

// =============================================================================================
// 5. Serving: threads, a prepared layer decoding into a KV cache
// =============================================================================================
rule('5. Serving: threads, a prepared layer, a KV cache');

{
  // The same call on one thread and on every core: results are bit-identical, only faster.
  const threaded = await createEngine({ threads: 'auto' });
  const q = randnTensor([1, 8, 1024, 64]), k = randnTensor([1, 8, 1024, 64]), v = randnTensor([1, 8, 1024, 64]);
  const one = wasm.scaledDotProductAttention(q, k, v, { causal: true }).output;
  const many = threaded.scaledDotProductAttention(q, k, v, { causal: true }).output;
  const identical = one.data.every((x, i) => Object.is(x, many.data[i]));
  const t1 = timeMs(() => wasm.scaledDotProductAttention(q, k, v, { causal: true }));
  const tn = timeMs(() => threaded.scaledDotProductAttention(q, k, v, { causal: true }));
  console.log(`causal attention [1, 8, 1024, 64]: 1 thread ${fmtMs(t1)} ms, ${threaded.info.threads} threads ${fmtMs(tn)} ms (${(t1 / tn).toFixed(2)}x), bit-identical: ${identical}`);

  // A decoder: a layer with its weights in engine memory, a cache filled by a prompt, then one
  // token at a time. Each step appends one key/value per head and attends over the whole cache.
  const E = 512, heads = 8, prompt = 1024, steps = 64;
  const layer = threaded.createMultiHeadAttention({ numHeads: heads, inProjWeight: initWeight(3 * E, E), outProjWeight: initWeight(E, E) });
  const cache = threaded.createKVCache({ batch: 1, kvHeads: heads, headDim: E / heads, capacity: prompt + steps });
  const x = randnTensor([1, prompt, E]);
  const tPrefill = timeMs(() => { cache.reset(); layer.forward(x, x, x, { cache }); });
  const token = randnTensor([1, 1, E]);
  const stepTimes = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    layer.forward(token, token, token, { cache });
    stepTimes.push(performance.now() - t0);
  }
  stepTimes.sort((a, b) => a - b);
  console.log(`decoder layer E=${E}, ${heads} heads: prefill of ${prompt} tokens ${fmtMs(tPrefill)} ms, then ${steps} steps of one token: median ${fmtMs(stepTimes[steps >> 1])} ms a step (cache ${cache.length}/${cache.capacity})`);
  layer.dispose();
  cache.dispose();
  threaded.dispose();
}

// =============================================================================================
// 6. Pictures: attention weights as SVG heatmaps (open them in a browser)
// =============================================================================================
rule('6. Heatmaps of attention weights');

{
  // Kernel regression, as in d2l: rows are test inputs, columns sorted training inputs. A wider
  // kernel (w = 1) spreads each row's attention; w = 10 concentrates it near the diagonal.
  const xTrain = Array.from({ length: 50 }, () => 5 * rand()).sort((a, b) => a - b);
  const yTrain = xTrain.map((x) => 2 * Math.sin(x) + x ** 0.8 + 0.5 * randn());
  const xTest = Array.from({ length: 50 }, (_, i) => i / 10);
  const keys = tensor(xTrain, [50]);
  const values = tensor(yTrain, [50]);
  for (const w of [1, 10]) {
    const { weights } = wasm.kernelRegression(tensor(xTest, [50]), keys, values, { w, returnWeights: true });
    const file = `heatmap-kernel-regression-w${w}.svg`;
    writeFileSync(file, attentionHeatmap(weights, { xLabel: 'sorted training inputs', yLabel: 'test inputs', title: `Nadaraya-Watson, w = ${w}` }));
    console.log(`wrote ${file}: weights ${fmtShape(weights.shape)}`);
  }

  // Causal multi-head self-attention over a short sentence: one panel per head.
  const words = 'the cat sat on the mat because it was tired'.split(' ');
  const Emb = 32;
  const heads = 4;
  const x = randnTensor([1, words.length, Emb]);
  const params = { numHeads: heads, inProjWeight: initWeight(3 * Emb, Emb), outProjWeight: initWeight(Emb, Emb) };
  const { weights } = wasm.selfAttention(x, params, { causal: true, needWeights: true, averageWeights: false });
  const perHead = tensor(weights.data, weights.shape.slice(1)); // [1, H, L, L] -> [H, L, L]
  writeFileSync('heatmap-multi-head.svg', attentionHeatmap(perHead, { rowLabels: words, colLabels: words, title: `causal self-attention, ${heads} heads` }));
  console.log(`wrote heatmap-multi-head.svg: weights ${fmtShape(perHead.shape)}`);
}

// =============================================================================================
// 7. A decoder: from a Hugging Face checkpoint to text
// =============================================================================================
rule('7. A decoder generating text from a checkpoint');

{
  // examples/model/ is what the Hugging Face Hub serves for a model: config.json, model.safetensors,
  // tokenizer.json. Its weights are a toy's (see its README): a character-level Llama trained on one
  // page about attention. loadDecoder reads the config, checks every tensor, and puts each layer on
  // the engine: the embedding and LM head, and per layer RMSNorm, grouped-query attention over a
  // paged KV pool with rotary embeddings, and the SwiGLU MLP.
  const folder = new URL('./model/', import.meta.url);
  const json = (file) => JSON.parse(readFileSync(new URL(file, folder), 'utf8'));
  const tokenizer = new Tokenizer(json('tokenizer.json'), json('tokenizer_config.json'));
  const decoder = await loadDecoder(fileURLToPath(folder), { engine: wasm, maxTokens: 1024 });
  const c = decoder.config;
  console.log(`${c.architecture}: ${c.numLayers} layers, hidden ${c.hiddenSize}, ${c.numHeads} query heads over ${c.numKvHeads} kv heads of ${c.headDim}, vocabulary ${c.vocabSize}; ${(decoder.bytes / 1024).toFixed(0)} KiB in the engine`);
  const slow = await loadDecoder(fileURLToPath(folder), { engine: reference, maxTokens: 1024 });
  for (const prompt of ['Attention ', 'The waist ']) {
    const ids = tokenizer.encode(prompt).ids;
    // generate yields tokens as they come: print each one's text at once
    process.stdout.write(`\n  ${prompt}`);
    const tokens = [];
    const t0 = performance.now();
    for await (const token of decoder.generate(ids, { maxNewTokens: 80 })) {
      tokens.push(token);
      process.stdout.write(tokenizer.decode([token]).replace('\n', ' '));
    }
    const ms = performance.now() - t0;
    const same = [];
    for await (const token of slow.generate(ids, { maxNewTokens: 80 })) same.push(token);
    console.log(`\n  (${tokens.length} tokens in ${fmtMs(ms)} ms on the wasm engine, ${(tokens.length / (ms / 1000)).toFixed(0)} tokens/s; the reference engine chose ${same.every((t, i) => t === tokens[i]) && same.length === tokens.length ? 'the same tokens' : 'other tokens'})`);
  }
  // sampling instead of the most likely token: seeded, so the tour prints the same text every run
  const ids = tokenizer.encode('Attention ').ids;
  const sampled = [];
  for await (const token of decoder.generate(ids, { maxNewTokens: 60, temperature: 0.8, topP: 0.9, seed: 7 })) sampled.push(token);
  console.log(`\n  sampled (temperature 0.8, top-p 0.9, seed 7): Attention ${tokenizer.decode(sampled).replaceAll('\n', ' ')}`);
  decoder.dispose();
  slow.dispose();
}

wasm.dispose(); // release the wasm memory
