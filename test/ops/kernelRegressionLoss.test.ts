// kernelRegressionLoss: predictions as kernelRegression's, the loss, and ∂loss/∂w checked against a
// central finite difference of a float64 evaluation written here independently of both engines.
import { describe, expect, it } from 'vitest';
import { type Engine, type KernelRegressionLossOptions, type Tensor, tensor } from '../../src/index.js';
import { ABS_TOL, engines, expectClose, REL_TOL, random, TAIL_SIZES } from '../support.js';

/** The loss in float64, straight from the definition: softmax over the keys each query may use, squared errors. */
function oracleLoss(q: Tensor, k: Tensor, v: Tensor, y: Tensor, w: number, leaveOneOut = false, reduction = 'mean'): number {
  const n = q.shape[0], m = k.shape[0], d = q.shape[1] ?? 1, dv = v.shape[1] ?? 1;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const keys = Array.from({ length: m }, (_, j) => j).filter((j) => !(leaveOneOut && j === i));
    const s = keys.map((j) => {
      let d2 = 0;
      for (let t = 0; t < d; t++) d2 += (q.data[i * d + t] - k.data[j * d + t]) ** 2;
      return (-w * w * d2) / 2;
    });
    const mx = Math.max(...s), e = s.map((x) => Math.exp(x - mx)), sum = e.reduce((a, b) => a + b, 0);
    for (let t = 0; t < dv; t++) {
      const yhat = keys.reduce((acc, j, u) => acc + (e[u] / sum) * v.data[j * dv + t], 0);
      total += (yhat - y.data[i * dv + t]) ** 2;
    }
  }
  return reduction === 'mean' ? total / (n * dv) : total;
}

/** (L(w + h) - L(w - h)) / 2h. */
function centralDifference(loss: (w: number) => number, w: number): number {
  const h = 1e-5 * Math.max(1, w);
  return (loss(w + h) - loss(w - h)) / (2 * h);
}

/** |a - b| <= ABS_TOL + REL_TOL · |b| (the README's float32 tolerance), with a message that shows both. */
function expectNear(actual: number, expected: number, label: string, abs = ABS_TOL, rel = REL_TOL): void {
  expect(Math.abs(actual - expected) <= abs + rel * Math.abs(expected), `${label}: got ${actual}, expected ${expected}`).toBe(true);
}

const all = await engines();
const [reference] = all;

describe.each(all.map((e) => [e.name, e] as const))('kernelRegressionLoss on %s', (_, engine: Engine) => {
  it("the essay: 57 between (56 → 43) and (58 → 48) predicts 45.5, a minimum in w; left out, each predicts the other", () => {
    const waists = tensor([56, 58], [2]), weights = tensor([43, 48], [2]);
    const r = engine.kernelRegressionLoss(tensor([57], [1]), waists, weights, tensor([45.5], [1]), { w: 3 });
    expect(r.output.data[0]).toBe(45.5);
    expect(r.loss).toBe(0);
    expect(r.dLossDw).toBe(0); // both keys are 1 away: the weights are 0.5 / 0.5 whatever w is
    for (const w of [0.1, 1, 10]) {
      const loo = engine.kernelRegressionLoss(waists, waists, weights, weights, { w, leaveOneOut: true });
      expect(Array.from(loo.output.data)).toEqual([48, 43]);
      expect(loo.loss).toBe(25); // (48 - 43)², both rows, mean
      expect(loo.dLossDw).toBe(0); // one key left per row: nothing for w to change
    }
  });

  it.each([
    ['1-D, m = 17', [17], [17], [17], {}],
    ['1-D, leave-one-out, sum', [33], [33], [33], { leaveOneOut: true, reduction: 'sum' }],
    ['d = 2, dv = 3, leave-one-out', [20, 2], [20, 2], [20, 3], { leaveOneOut: true }],
    ['d = 5, dv = 4', [9, 5], [31, 5], [31, 4], {}],
    ['d = 3, dv = 17, leave-one-out', [19, 3], [19, 3], [19, 17], { leaveOneOut: true }],
  ] as const)('∂loss/∂w matches a central difference of the float64 loss (%s)', (_label, qs, ks, vs, opts) => {
    const options: KernelRegressionLossOptions = opts;
    const q = random([...qs], 1, 2), v = random([...vs], 3, 5);
    const k = options.leaveOneOut ? q : random([...ks], 2, 2);
    const y = random(vs.length === 2 ? [qs[0], vs[1]] : [qs[0]], 4, 5);
    for (const w of [0.3, 1, 2.5, 6]) {
      const r = engine.kernelRegressionLoss(q, k, v, y, { ...options, w });
      const f = (x: number) => oracleLoss(q, k, v, y, x, options.leaveOneOut, options.reduction);
      expectNear(r.loss, f(w), `loss at w = ${w}`);
      const fd = centralDifference(f, w);
      // the reference computes in float64: its derivative matches to rounding; wasm's sums are float32
      if (engine === reference) expectNear(r.dLossDw, fd, `dLossDw at w = ${w}`, 1e-7, 1e-6);
      else expectNear(r.dLossDw, fd, `dLossDw at w = ${w}`);
    }
  });

  it.each(TAIL_SIZES)('leave-one-out over m = %i one-dimensional points agrees with the reference', (m) => {
    const x = random([m], m, 3), y = random([m], m + 1, 4), t = random([m], m + 2, 4);
    const want = reference.kernelRegressionLoss(x, x, y, t, { w: 1.7, leaveOneOut: true });
    const got = engine.kernelRegressionLoss(x, x, y, t, { w: 1.7, leaveOneOut: true });
    expectClose(got.output, want.output, 'output');
    expectNear(got.loss, want.loss, 'loss');
    expectNear(got.dLossDw, want.dLossDw, 'dLossDw');
    expectNear(got.dLossDw, centralDifference((w) => oracleLoss(x, x, y, t, w, true), 1.7), 'dLossDw vs central difference');
  });

  it.each([[1, 1], [2, 3], [4, 4], [5, 5], [3, 15], [1, 16], [17, 17], [65, 2]])('d = %i, dv = %i agrees with the reference', (d, dv) => {
    const q = random([7, d], d, 1), k = random([41, d], d + 1, 1), v = random([41, dv], dv + 2, 5), y = random([7, dv], dv + 3, 5);
    const want = reference.kernelRegressionLoss(q, k, v, y, { w: 1.3 });
    const got = engine.kernelRegressionLoss(q, k, v, y, { w: 1.3 });
    expectClose(got.output, want.output, 'output');
    expectNear(got.loss, want.loss, 'loss');
    expectNear(got.dLossDw, want.dLossDw, 'dLossDw');
  });

  it('predicts what kernelRegression predicts, bit for bit', () => {
    const q = random([13], 5, 3), k = random([29], 6, 3), v = random([29, 3], 7, 4), y = random([13, 3], 8);
    expect(Array.from(engine.kernelRegressionLoss(q, k, v, y, { w: 2 }).output.data))
      .toEqual(Array.from(engine.kernelRegression(q, k, v, { w: 2 }).output.data));
    const flat = engine.kernelRegressionLoss(q, k, random([29], 9), random([13], 10));
    expect(flat.output.shape).toEqual([13]);
    expect(Array.from(flat.output.data)).toEqual(Array.from(engine.kernelRegression(q, k, random([29], 9)).output.data));
  });

  it('values far from zero with a small spread keep their digits (the derivative is summed over v - ŷ)', () => {
    // weights of about 1000 kg that differ by a few: Σ a (D - D̄) v alone would cancel most digits in float32
    const x = random([64], 11, 3), v = tensor(Array.from(random([64], 12, 2).data, (t) => 1000 + t), [64]);
    const y = tensor(Array.from(random([64], 13, 2).data, (t) => 1000 + t), [64]);
    const f = (w: number) => oracleLoss(x, x, v, y, w, true);
    expectNear(engine.kernelRegressionLoss(x, x, v, y, { w: 2, leaveOneOut: true }).dLossDw, centralDifference(f, 2), 'dLossDw');
  });

  it('gradient descent on w lowers the leave-one-out loss', () => {
    const x = tensor(Array.from({ length: 40 }, (_, i) => (5 * i) / 40), [40]);
    const y = tensor(Array.from(x.data, (t, i) => 2 * Math.sin(t) + t ** 0.8 + 0.3 * Math.sin(7 * i)), [40]);
    let w = 1;
    const first = engine.kernelRegressionLoss(x, x, y, y, { w, leaveOneOut: true }).loss;
    let last = first;
    for (let step = 0; step < 10; step++) {
      const r = engine.kernelRegressionLoss(x, x, y, y, { w, leaveOneOut: true });
      expect(r.loss).toBeLessThanOrEqual(last + 1e-6);
      last = r.loss;
      w -= 2 * r.dLossDw;
    }
    expect(last).toBeLessThan(0.8 * first);
    expect(w).toBeGreaterThan(1);
  });

  it('w at its limits: 0 gives the mean and no slope, 2^63 the nearest key, beyond them a RangeError', () => {
    // (the nearest distances stay below 8, so that the float32 scores -w²·D/2 of the nearest keys stay finite)
    const x = tensor([0, 1, 3, 4.5], [4]), v = tensor([1, 2, 4, 9], [4]), y = tensor([2, 2, 2, 2], [4]);
    const flat = engine.kernelRegressionLoss(x, x, v, y, { w: 0 });
    expectClose(flat.output, tensor([4, 4, 4, 4], [4]));
    expect(flat.dLossDw).toBe(0);
    expect(engine.kernelRegressionLoss(x, x, v, y, { w: 0, leaveOneOut: true }).dLossDw).toBe(0);
    const sharp = engine.kernelRegressionLoss(x, x, v, y, { w: 2 ** 63, leaveOneOut: true });
    expect(Array.from(sharp.output.data)).toEqual([2, 1, 9, 4]); // each point's nearest other point
    expect(sharp.dLossDw).toBe(0);
    const wide = engine.kernelRegressionLoss(x, x, v, y, { w: 2 ** -63 });
    expectClose(wide.output, tensor([4, 4, 4, 4], [4]));
    expect(Number.isFinite(wide.dLossDw)).toBe(true);
    for (const w of [2 ** 64, 2 ** -64, -1, NaN, Infinity]) {
      expect(() => engine.kernelRegressionLoss(x, x, v, y, { w }), `w ${w}`).toThrow(RangeError);
    }
  });

  it('one point: alone it predicts itself; left out it has no key and predicts 0', () => {
    const x = tensor([2], [1]), v = tensor([5], [1]), y = tensor([3], [1]);
    const alone = engine.kernelRegressionLoss(x, x, v, y);
    expect([alone.output.data[0], alone.loss, alone.dLossDw]).toEqual([5, 4, 0]);
    const left = engine.kernelRegressionLoss(x, x, v, y, { leaveOneOut: true });
    expect([left.output.data[0], left.loss, left.dLossDw]).toEqual([0, 9, 0]);
  });

  it('zero sizes: no queries (a mean over nothing is NaN, as in PyTorch), no keys, no value features', () => {
    const none = engine.kernelRegressionLoss(tensor([], [0]), tensor([1, 2], [2]), tensor([3, 4], [2]), tensor([], [0]));
    expect(none.output.shape).toEqual([0]);
    expect(none.loss).toBeNaN();
    expect(none.dLossDw).toBe(0);
    expect(engine.kernelRegressionLoss(tensor([], [0]), tensor([1, 2], [2]), tensor([3, 4], [2]), tensor([], [0]), { reduction: 'sum' }).loss).toBe(0);
    const noKeys = engine.kernelRegressionLoss(tensor([1, 2], [2]), tensor([], [0]), tensor([], [0]), tensor([3, 4], [2]));
    expect(Array.from(noKeys.output.data)).toEqual([0, 0]);
    expect([noKeys.loss, noKeys.dLossDw]).toEqual([12.5, 0]);
    const noFeatures = engine.kernelRegressionLoss(tensor([1, 2], [2]), tensor([1, 2, 3], [3]), tensor([], [3, 0]), tensor([], [2, 0]));
    expect(noFeatures.output.shape).toEqual([2, 0]);
    expect(noFeatures.loss).toBeNaN();
    const loo = engine.kernelRegressionLoss(tensor([], [0, 2]), tensor([], [0, 2]), tensor([], [0]), tensor([], [0]), { leaveOneOut: true, reduction: 'sum' });
    expect([loo.loss, loo.dLossDw]).toEqual([0, 0]);
  });

  it('a NaN or infinite target spoils the loss and its derivative, not the predictions', () => {
    const x = random([9], 20, 2), v = random([9], 21, 3);
    const clean = engine.kernelRegressionLoss(x, x, v, random([9], 22), { w: 1.5, leaveOneOut: true });
    for (const bad of [NaN, Infinity]) {
      const y = random([9], 22);
      y.data[4] = bad;
      const r = engine.kernelRegressionLoss(x, x, v, y, { w: 1.5, leaveOneOut: true });
      expect(Array.from(r.output.data)).toEqual(Array.from(clean.output.data));
      if (Number.isNaN(bad)) {
        expect(r.loss).toBeNaN();
        expect(r.dLossDw).toBeNaN();
      } else {
        expect(r.loss).toBe(Infinity);
        expect(Number.isFinite(r.dLossDw)).toBe(false);
      }
    }
  });

  it('a NaN input reaches only the rows it touches, as in kernelRegression', () => {
    const x = random([6], 23, 2), v = random([6], 24, 3), y = random([6], 25);
    const q = tensor(x.data, [6]);
    q.data[2] = NaN;
    const r = engine.kernelRegressionLoss(q, x, v, y, { w: 1.5 });
    expect(Array.from(r.output.data, Number.isNaN)).toEqual([false, false, true, false, false, false]);
    expect(r.loss).toBeNaN();
    const want = reference.kernelRegressionLoss(q, x, v, y, { w: 1.5 });
    expectClose(r.output, want.output, 'output');
  });

  it('writes the predictions into options.out', () => {
    const out = tensor(new Array(5).fill(7), [5]);
    const q = random([5], 26), k = random([8], 27), v = random([8], 28), y = random([5], 29);
    const r = engine.kernelRegressionLoss(q, k, v, y, { out });
    expect(r.output).toBe(out);
    expectClose(out, engine.kernelRegression(q, k, v).output);
  });

  it('refuses wrong shapes and options with RangeError or TypeError, naming the argument', () => {
    const x = random([4], 30), v = random([4], 31), y = random([4], 32);
    expect(() => engine.kernelRegressionLoss(x, x, v, tensor(y.data, [4, 1]))).toThrow(/kernelRegressionLoss: targets: expected shape \[4\] \(the shape of the output; values are \[4\]\), got \[4, 1\]/);
    expect(() => engine.kernelRegressionLoss(x, x, random([4, 2], 33), y)).toThrow(/targets: expected shape \[4, 2\]/);
    expect(() => engine.kernelRegressionLoss(x, x, v, null as never)).toThrow(TypeError);
    expect(() => engine.kernelRegressionLoss(random([3], 34), x, v, random([3], 35), { leaveOneOut: true })).toThrow(/leaveOneOut .* as many queries as keys: queries \[3\], keys \[4\]/);
    expect(() => engine.kernelRegressionLoss(x, x, v, y, { leaveOneOut: 1 as never })).toThrow(TypeError);
    expect(() => engine.kernelRegressionLoss(x, x, v, y, { reduction: 'none' as never })).toThrow(/options.reduction must be 'mean' or 'sum', got 'none'/);
    expect(() => engine.kernelRegressionLoss(x, x, v, y, { reduction: 1 as never })).toThrow(TypeError);
    expect(() => engine.kernelRegressionLoss(x, x, random([5], 36), y)).toThrow(/values: expected shape \[4\]/);
    expect(() => engine.kernelRegressionLoss(x, x, v, y, { out: random([5], 37) })).toThrow(/options.out: expected shape \[4\]/);
    // the engine stays usable
    expect(engine.kernelRegressionLoss(x, x, v, y).output.shape).toEqual([4]);
  });
});
