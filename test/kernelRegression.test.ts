import { describe, expect, it } from 'vitest';
import { type Engine, type Tensor, tensor } from '../src/index.js';
import { engines, expectClose, random, rows, TAIL_SIZES } from './support.js';

/** Float64 oracle of Nadaraya–Watson with a Gaussian kernel. */
function oracle(q: Tensor, k: Tensor, v: Tensor, w = 1): { output: Tensor; weights: Tensor } {
  const n = q.shape[0], m = k.shape[0], d = q.shape[1] ?? 1, dv = v.shape[1] ?? 1;
  const output = new Float32Array(n * dv), weights = new Float32Array(n * m);
  for (let i = 0; i < n; i++) {
    const s = Array.from({ length: m }, (_, j) => {
      let d2 = 0;
      for (let t = 0; t < d; t++) d2 += ((q.data[i * d + t] - k.data[j * d + t]) * w) ** 2;
      return -d2 / 2;
    });
    const mx = Math.max(...s), e = s.map((x) => Math.exp(x - mx)), sum = e.reduce((a, b) => a + b, 0);
    e.forEach((x, j) => (weights[i * m + j] = x / sum));
    for (let t = 0; t < dv; t++) output[i * dv + t] = e.reduce((acc, x, j) => acc + (x / sum) * v.data[j * dv + t], 0);
  }
  return { output: { data: output, shape: v.shape.length === 2 ? [n, dv] : [n] }, weights: { data: weights, shape: [n, m] } };
}

const all = await engines();

describe.each(all.map((e) => [e.name, e] as const))('kernelRegression on %s', (_, engine: Engine) => {
  it("reproduces the essay: waist 57 between (56 → 43) and (58 → 48) predicts 45.5 with weights 0.5 / 0.5", () => {
    const r = engine.kernelRegression(tensor([57], [1]), tensor([56, 58], [2]), tensor([43, 48], [2]), { returnWeights: true });
    expect(r.output.shape).toEqual([1]);
    expect(r.output.data[0]).toBe(45.5);
    expect(Array.from(r.weights!.data)).toEqual([0.5, 0.5]);
  });

  it.each(TAIL_SIZES)('1-D keys, m = %i', (m) => {
    const q = random([7], m, 3), k = random([m], m + 1, 3), v = random([m], m + 2, 10);
    const r = engine.kernelRegression(q, k, v, { returnWeights: true, w: 1.7 });
    const want = oracle(q, k, v, 1.7);
    expectClose(r.output, want.output, 'output');
    expectClose(r.weights, want.weights, 'weights');
  });

  it.each([[2, 1], [3, 4], [4, 5], [17, 16], [65, 3]])('d = %i, dv = %i', (d, dv) => {
    const q = random([5, d], d, 1), k = random([33, d], d + 1, 1), v = random([33, dv], dv + 2, 5);
    const r = engine.kernelRegression(q, k, v, { returnWeights: true });
    const want = oracle(q, k, v);
    expectClose(r.output, want.output, 'output');
    expectClose(r.weights, want.weights, 'weights');
  });

  it('reads 1-D queries or keys as one feature', () => {
    const q = random([4], 1, 2), k = random([6], 2, 2), v = random([6, 3], 3);
    const want = engine.kernelRegression(tensor(q.data, [4, 1]), tensor(k.data, [6, 1]), v).output;
    expectClose(engine.kernelRegression(q, tensor(k.data, [6, 1]), v).output, want);
    expectClose(engine.kernelRegression(tensor(q.data, [4, 1]), k, v).output, want);
  });

  it('a larger w puts the weight on the nearest key', () => {
    const k = tensor([0, 1, 2, 3, 4], [5]), v = tensor([0, 10, 20, 30, 40], [5]), q = tensor([2.2], [1]);
    const wide = engine.kernelRegression(q, k, v, { w: 0.5, returnWeights: true }).weights!;
    const narrow = engine.kernelRegression(q, k, v, { w: 10, returnWeights: true }).weights!;
    expect(narrow.data[2]).toBeGreaterThan(wide.data[2]);
    expect(narrow.data[2]).toBeGreaterThan(0.99);
  });

  it('does not overflow for far-away queries (scores of -1e4 and below)', () => {
    const r = engine.kernelRegression(tensor([1000], [1]), tensor([0, 999, 1001], [3]), tensor([5, 1, 3], [3]));
    expectClose(r.output, tensor([2], [1]));
  });

  it('handles zero queries and zero keys', () => {
    expect(engine.kernelRegression(tensor([], [0]), tensor([1, 2], [2]), tensor([3, 4], [2])).output.shape).toEqual([0]);
    const none = engine.kernelRegression(tensor([1, 2], [2]), tensor([], [0]), tensor([], [0]), { returnWeights: true });
    expect(Array.from(none.output.data)).toEqual([0, 0]);
    expect(none.weights!.shape).toEqual([2, 0]);
  });

  it('lets a NaN query spoil only its own row', () => {
    const r = engine.kernelRegression(tensor([NaN, 1], [2]), tensor([0, 1, 2], [3]), tensor([1, 2, 3], [3]));
    expect(Number.isNaN(r.output.data[0])).toBe(true);
    expect(r.output.data[1]).toBeCloseTo(2, 5);
  });
});

describe.each(all.map((e) => [e.name, e] as const))('additiveAttention on %s', (_, engine: Engine) => {
  it("reproduces d2l's example: equal keys give the mean of the valid values", () => {
    // d2l 11.3: queries N(0,1) [2, 1, 20], keys ones [2, 10, 2], values arange(40) [2, 10, 4], valid_lens [2, 6]
    const query = random([2, 1, 20], 1), key = tensor(new Array(40).fill(1), [2, 10, 2]);
    const value = tensor([...Array.from({ length: 40 }, (_, i) => i), ...Array.from({ length: 40 }, (_, i) => i)], [2, 10, 4]);
    const params = { Wq: random([8, 20], 2, 0.3), Wk: random([8, 2], 3, 0.3), wv: random([1, 8], 4, 0.3) };
    const r = engine.additiveAttention(query, key, value, params, { validLens: [2, 6], returnWeights: true });
    expectClose(r.output, tensor([2, 3, 4, 5, 10, 11, 12, 13], [2, 1, 4]));
    expect(rows(r.weights!).map((row) => row.filter((w) => w > 0).length)).toEqual([2, 6]);
  });

  it('computes wv · tanh(Wq q + Wk k) scores by hand', () => {
    // h = 1: score_j = tanh(q + k_j), one query 0.5 against keys 0 and 1
    const r = engine.additiveAttention(tensor([0.5], [1, 1, 1]), tensor([0, 1], [1, 2, 1]), tensor([1, 3], [1, 2, 1]),
      { Wq: tensor([1], [1, 1]), Wk: tensor([1], [1, 1]), wv: tensor([2], [1, 1]) }, { returnWeights: true });
    const s0 = 2 * Math.tanh(0.5), s1 = 2 * Math.tanh(1.5), w0 = 1 / (1 + Math.exp(s1 - s0));
    expectClose(r.weights, tensor([w0, 1 - w0], [1, 1, 2]));
    expectClose(r.output, tensor([w0 + 3 * (1 - w0)], [1, 1, 1]));
  });

  it.each([[1, 1, 1, 1], [3, 5, 4, 7], [4, 17, 16, 9], [2, 65, 33, 3]])('Lq=%i Lk=%i h=%i Dv=%i with per-row lengths', (Lq, Lk, h, Dv) => {
    const query = random([2, Lq, 6], Lq), key = random([2, Lk, 5], Lk), value = random([2, Lk, Dv], Dv);
    const params = { Wq: random([h, 6], h), Wk: random([h, 5], h + 1), wv: random([1, h], h + 2) };
    const lens = Array.from({ length: 2 * Lq }, (_, i) => (i * 7) % (Lk + 1));
    const [ref, wasm] = all;
    const want = ref.additiveAttention(query, key, value, params, { validLens: lens, returnWeights: true });
    const got = engine.additiveAttention(query, key, value, params, { validLens: lens, returnWeights: true });
    expectClose(got.output, want.output, 'output');
    expectClose(got.weights, want.weights, 'weights');
    if (engine !== wasm) return;
    // rows of length 0 are all zero
    lens.forEach((len, r) => { if (len === 0) expect(rows(got.output)[r].every((x) => x === 0)).toBe(true); });
  });
});

describe.each(all.map((e) => [e.name, e] as const))('positionalEncoding on %s', (_, engine: Engine) => {
  it('follows sin/cos of i / 10000^(2j/dim)', () => {
    const P = engine.positionalEncoding(50, 8);
    expect(P.shape).toEqual([50, 8]);
    for (const [i, c] of [[0, 0], [0, 1], [7, 2], [7, 3], [49, 6], [49, 7]]) {
      const angle = i / 10000 ** ((c - (c % 2)) / 8);
      expect(P.data[i * 8 + c]).toBeCloseTo(c % 2 ? Math.cos(angle) : Math.sin(angle), 6);
    }
    expect(engine.positionalEncoding(3, 5).shape).toEqual([3, 5]); // odd width: the last column is a sin
    expect(engine.positionalEncoding(0, 4).shape).toEqual([0, 4]);
  });
});
