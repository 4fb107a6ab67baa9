// Numerics at the edges: NaN and ±Infinity never crash an op and reach only the output rows that
// read them (every other row is what it was without them, and the wasm engine agrees with the
// reference everywhere, NaN for NaN); scores of ±1e30 give finite outputs (no overflow in exp).
// Shapes are large enough for the SIMD main loops and tails, and attention runs all three wasm
// paths: the packed flash kernel, the row kernel and the row kernel that writes weights.
import { describe, expect, it } from 'vitest';
import { type AttentionOptions, type Engine, type Tensor, tensor } from '../src/index.js';
import { engines, expectClose, kernelProbe, random } from './support.js';

const [reference, wasm] = await engines();
const each = [reference, wasm].map((e) => [e.name, e] as const);
const BAD = [NaN, Infinity, -Infinity];

/** A copy of `t` with `value` at flat index `at`. */
function poke(t: Tensor, at: number, value: number): Tensor {
  const data = t.data.slice();
  data[at] = value;
  return { data, shape: t.shape };
}

/**
 * `dirty` (with a bad input) equals `clean` (without it) at every element where `touched` is false,
 * and those elements are finite; `dirty` equals the reference's result `want` everywhere.
 */
function expectConfined(dirty: Tensor, clean: Tensor, want: Tensor, touched: (i: number) => boolean, label: string): void {
  expectClose(dirty, want, `${label}, against the reference`);
  let untouched = 0;
  for (let i = 0; i < clean.data.length; i++) {
    if (touched(i)) continue;
    untouched++;
    const a = dirty.data[i], b = clean.data[i];
    if (!Number.isFinite(a) || Math.abs(a - b) > 1e-5 + 1e-5 * Math.abs(b)) {
      throw new Error(`${label}: element ${i} does not read the bad value but changed from ${b} to ${a}`);
    }
  }
  expect(untouched, `${label}: the case leaves some elements untouched`).toBeGreaterThan(0);
}

const finite = (t: Tensor | undefined) => t !== undefined && t.data.every((x) => Number.isFinite(x));

describe.each(each)('NaN and ±Infinity reach only the rows that read them, on %s', (_, engine: Engine) => {
  it.each(BAD)('matmul: a bad a[i, k] reaches row i only, a bad b[k, j] column j only (%s)', (bad) => {
    const M = 9, K = 37, N = 21, a = random([M, K], 1), b = random([K, N], 2);
    const clean = engine.matmul(a, b);
    const da = poke(a, 4 * K + 30, bad);
    expectConfined(engine.matmul(da, b), clean, reference.matmul(da, b), (i) => Math.floor(i / N) === 4, 'a');
    const db = poke(b, 5 * N + 17, bad);
    expectConfined(engine.matmul(a, db), clean, reference.matmul(a, db), (i) => i % N === 17, 'b');
  });

  it.each(BAD)('softmax: a bad entry reaches its row only (%s)', (bad) => {
    const n = 67, x = random([5, n], 3, 4);
    const dx = poke(x, 2 * n + 64, bad); // in the tail of row 2
    expectConfined(engine.softmax(dx), engine.softmax(x), reference.softmax(dx), (i) => Math.floor(i / n) === 2, 'softmax');
  });

  it.each(BAD)('maskedSoftmax: a bad entry past the valid length reaches nothing; within it, its row (%s)', (bad) => {
    const Lk = 35, x = random([2, 3, Lk], 4, 4), lens = [20, 35];
    const clean = engine.maskedSoftmax(x, lens);
    const past = poke(x, 1 * Lk + 25, bad); // batch 0, row 1, position 25 >= 20
    expectConfined(engine.maskedSoftmax(past, lens), clean, reference.maskedSoftmax(past, lens), () => false, 'past the length');
    const within = poke(x, 4 * Lk + 33, bad); // batch 1, row 1
    expectConfined(engine.maskedSoftmax(within, lens), clean, reference.maskedSoftmax(within, lens), (i) => Math.floor(i / Lk) === 4, 'within');
  });

  it.each(paths())('the %s path runs the kernel it names, at both head layouts used here', (name, L, returnWeights) => {
    for (const Hkv of [1, 2]) {
      const probe = kernelProbe();
      wasm.scaledDotProductAttention(random([2, 2, L, 16], 1), random([2, Hkv, 23, 16], 2), random([2, Hkv, 23, 9], 3), { returnWeights, ...probe.options });
      expect(probe.ran).toEqual([name.startsWith('flash') ? 'fused' : 'row']);
    }
  });

  // B = 2, two query heads over one kv head, causal over Lq = Lk: row (b, h, i) reads keys j <= i
  describe.each(paths())('scaledDotProductAttention, %s', (_, L, returnWeights) => {
    const B = 2, Hq = 2, Hkv = 1, E = 16, Ev = 17;
    const q = random([B, Hq, L, E], 5), k = random([B, Hkv, L, E], 6), v = random([B, Hkv, L, Ev], 7);
    const options: AttentionOptions = { causal: true, returnWeights };
    const run = (e: Engine, qq = q, kk = k, vv = v, o = options) => e.scaledDotProductAttention(qq, kk, vv, o).output;
    const clean = run(engine);
    const row = (i: number) => Math.floor(i / Ev); // flat output index -> (b, h, i) row
    const at = (b: number, h: number, i: number) => (b * Hq + h) * L + i;

    it.each(BAD)('a bad query element reaches its own row (%s)', (bad) => {
      const dq = poke(q, at(1, 0, L - 1) * E + 3, bad);
      expectConfined(run(engine, dq), clean, run(reference, dq), (i) => row(i) === at(1, 0, L - 1), 'query');
    });

    it.each(BAD)('a bad key element reaches the rows of its batch that see that key (%s)', (bad) => {
      const j = L - 2, dk = poke(k, (1 * L + j) * E + 5, bad); // batch 1, key j: rows i >= j of both heads
      expectConfined(run(engine, q, dk), clean, run(reference, q, dk),
        (i) => Math.floor(row(i) / (Hq * L)) === 1 && row(i) % L >= j, 'key');
    });

    it.each(BAD)('a bad value element reaches one column of the rows that see it (%s)', (bad) => {
      const j = 1, t = 16, dv = poke(v, (0 * L + j) * Ev + t, bad); // batch 0, key 1, last column
      expectConfined(run(engine, q, k, dv), clean, run(reference, q, k, dv),
        (i) => Math.floor(row(i) / (Hq * L)) === 0 && row(i) % L >= j && i % Ev === t, 'value');
    });

    it.each(BAD)('a bad key hidden by validLens, a boolean mask or the window reaches no row (%s)', (bad) => {
      const j = 2, dk = poke(k, (0 * L + j) * E + 1, bad); // batch 0, key 2
      const hidden = Uint8Array.from({ length: L }, (_, c) => (c === j ? 0 : 1));
      for (const hide of [{ validLens: [j, L] }, { mask: { data: hidden, shape: [L] } }, { window: { left: 0 } }]) {
        const o = { ...options, ...hide };
        expectConfined(run(engine, q, dk, v, o), run(engine, q, k, v, o), run(reference, q, dk, v, o),
          (i) => 'window' in hide && row(i) % L === j && Math.floor(row(i) / (Hq * L)) === 0, Object.keys(hide)[0]);
      }
    });

    it.each(BAD)('a bad additive mask entry reaches its query row in every batch and head (%s)', (bad) => {
      const m = random([L, L], 8), i0 = L - 1; // key 0 is in view of row i0
      const withMask = { ...options, mask: m }, dm = { ...options, mask: poke(m, i0 * L + 0, bad) };
      expectConfined(run(engine, q, k, v, dm), run(engine, q, k, v, withMask), run(reference, q, k, v, dm), (i) => row(i) % L === i0, 'mask');
    });
  });

  it.each(BAD)('kernelRegression: a bad query reaches its own output row (%s)', (bad) => {
    const queries = random([13, 3], 9), keys = random([41, 3], 10), values = random([41, 5], 11);
    const dq = poke(queries, 7 * 3 + 1, bad);
    expectConfined(engine.kernelRegression(dq, keys, values).output, engine.kernelRegression(queries, keys, values).output,
      reference.kernelRegression(dq, keys, values).output, (i) => Math.floor(i / 5) === 7, 'query');
  });

  it.each(BAD)('additiveAttention: a bad query reaches its row, a bad key its batch (%s)', (bad) => {
    const q = random([2, 5, 6], 12), k = random([2, 9, 7], 13), v = random([2, 9, 4], 14);
    const params = { Wq: random([8, 6], 15), Wk: random([8, 7], 16), wv: random([1, 8], 17) };
    const clean = engine.additiveAttention(q, k, v, params).output;
    const dq = poke(q, (1 * 5 + 2) * 6, bad);
    expectConfined(engine.additiveAttention(dq, k, v, params).output, clean, reference.additiveAttention(dq, k, v, params).output, (i) => Math.floor(i / 4) === 7, 'query');
    const dk = poke(k, 3 * 7 + 2, bad);
    expectConfined(engine.additiveAttention(q, dk, v, params).output, clean, reference.additiveAttention(q, dk, v, params).output, (i) => i < 5 * 4, 'key');
  });

  it.each(BAD)('multiHeadAttention: a bad key token reaches, in its batch, the causal rows that see it (%s)', (bad) => {
    const E = 8, L = 10, x = random([2, L, E], 18);
    const params = { numHeads: 2, inProjWeight: random([3 * E, E], 19, 0.3), outProjWeight: random([E, E], 20, 0.3) };
    const kv = poke(x, (1 * L + 6) * E + 2, bad); // batch 1, token 6
    const dirty = engine.multiHeadAttention(x, kv, kv, params, { causal: true }).output;
    expectConfined(dirty, engine.multiHeadAttention(x, x, x, params, { causal: true }).output,
      reference.multiHeadAttention(x, kv, kv, params, { causal: true }).output,
      (i) => Math.floor(i / (L * E)) === 1 && Math.floor(i / E) % L >= 6, 'key token');
  });
});

describe.each(each)('scores of ±1e30 give finite outputs, equal to the reference, on %s', (_, engine: Engine) => {
  const big = (shape: number[], seed: number) => {
    const t = random(shape, seed);
    // about a third each of +1e30, -1e30 and ordinary values
    return { data: t.data.map((x) => (x > 0.33 ? 1e30 : x < -0.33 ? -1e30 : x)), shape };
  };

  it('softmax and maskedSoftmax', () => {
    const x = big([3, 4, 67], 1);
    const y = engine.softmax(x);
    expect(finite(y)).toBe(true);
    expectClose(y, reference.softmax(x));
    const lens = [0, 1, 5, 67, 66, 2, 3, 64, 65, 13, 33, 40];
    const m = engine.maskedSoftmax(x, lens);
    expect(finite(m)).toBe(true);
    expectClose(m, reference.maskedSoftmax(x, lens));
  });

  it.each(paths())('scaledDotProductAttention, %s: scale 1e30, an additive mask of ±1e30, softcap over 1e30 scores', (_, L, returnWeights) => {
    const q = random([2, 2, L, 16], 2), k = random([2, 1, 23, 16], 3), v = random([2, 1, 23, 9], 4);
    const mask = big([L, 23], 5);
    for (const options of [{ scale: 1e30 }, { mask }, { mask, scale: 1e30 }, { scale: 1e30, softcap: 30 }, { mask, causal: 'bottom-right' as const }]) {
      const o = { ...options, returnWeights };
      const got = engine.scaledDotProductAttention(q, k, v, o);
      expect(finite(got.output), JSON.stringify(options)).toBe(true);
      expect(returnWeights ? finite(got.weights) : true).toBe(true);
      const want = reference.scaledDotProductAttention(q, k, v, o);
      expectClose(got.output, want.output, Object.keys(options).join(' + '));
    }
  });

  it.each(paths())('scaledDotProductAttention, %s: inputs of ±1e15 (dot products of ±1e30)', (_, L, returnWeights) => {
    // feature 0 is ±1e15 in every query and key, the keys' other features are 0: each score is
    // exactly ±1e30 on both engines, so each query averages the values of the keys of its sign
    const E = 16, q = random([1, 2, L, E], 6), k = tensor(new Array(2 * 21 * E).fill(0), [1, 2, 21, E]), v = random([1, 2, 21, 8], 8);
    for (let r = 0; r < 2 * L; r++) q.data[r * E] = r % 3 === 0 ? -1e15 : 1e15;
    for (let r = 0; r < 2 * 21; r++) k.data[r * E] = r % 4 === 1 ? -1e15 : 1e15;
    const got = engine.scaledDotProductAttention(q, k, v, { scale: 1, returnWeights });
    expect(finite(got.output)).toBe(true);
    expectClose(got.output, reference.scaledDotProductAttention(q, k, v, { scale: 1 }).output);
  });

  it('kernelRegression with w = 1e15 (scores near -1e30) picks the nearest key', () => {
    const queries = random([17], 9), keys = random([33], 10), values = random([33, 3], 11);
    const r = engine.kernelRegression(queries, keys, values, { w: 1e15, returnWeights: true });
    expect(finite(r.output) && finite(r.weights)).toBe(true);
    expectClose(r.output, reference.kernelRegression(queries, keys, values, { w: 1e15 }).output);
  });

  it('additiveAttention with wv of ±1e30', () => {
    const q = random([2, 9, 4], 12), k = random([2, 11, 5], 13), v = random([2, 11, 3], 14);
    const params = { Wq: random([6, 4], 15), Wk: random([6, 5], 16), wv: big([1, 6], 17) };
    const r = engine.additiveAttention(q, k, v, params, { validLens: [11, 4] });
    expect(finite(r.output)).toBe(true);
    expectClose(r.output, reference.additiveAttention(q, k, v, params, { validLens: [11, 4] }).output);
  });

  it('multiHeadAttention with an additive mask of ±1e30', () => {
    const x = random([2, 9, 8], 18), params = { numHeads: 2, inProjWeight: random([24, 8], 19, 0.3), outProjWeight: random([8, 8], 20, 0.3) };
    const mask = big([9, 9], 21);
    const r = engine.selfAttention(x, params, { mask });
    expect(finite(r.output)).toBe(true);
    expectClose(r.output, reference.selfAttention(x, params, { mask }).output);
  });
});

/** The three wasm attention paths, by query length and returnWeights (src/wasm/attention.ts). */
function paths(): [string, number, boolean][] {
  return [['flash kernel', 19, false], ['row kernel', 3, false], ['row kernel with weights', 19, true]];
}
