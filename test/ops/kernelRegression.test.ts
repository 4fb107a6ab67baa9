// kernelRegression (Nadaraya–Watson with a Gaussian kernel) on both engines against a float64 oracle:
// the essay's waist → weight example, SIMD tails in the number of keys, feature sizes, w, far-away
// queries, zero sizes and NaN.
import { describe, expect, it } from 'vitest';
import { type Engine, type Tensor, tensor } from '../../src/index.js';
import { engines, expectClose, random, TAIL_SIZES } from '../support.js';

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
