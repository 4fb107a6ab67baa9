// rmsNorm on both engines against a float64 evaluation: SIMD tails, unitOffset, in place and engine
// tensors, non-finite, huge and tiny rows, every error, zero sizes, and thread splits.
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine, type Tensor, tensor } from '../../src/index.js';
import { rmsNorm as wasmRmsNorm } from '../../src/wasm/rmsNorm.js';
import { engines, expectClose, random, rows, TAIL_SIZES } from '../support.js';
import { distCurrent, sameBits, splitContext } from './split.js';

/** Float64 RMSNorm of each row: x / sqrt(mean(x²) + eps) · w (or · (1 + w)). */
function oracle(x: Tensor, w: Tensor, eps = 1e-6, unitOffset = false): Tensor {
  const d = x.shape[x.shape.length - 1];
  const out = new Float32Array(x.data.length);
  for (let at = 0; at < x.data.length; at += d) {
    let sq = 0;
    for (let c = 0; c < d; c++) sq += x.data[at + c] ** 2;
    const rms = Math.sqrt(sq / d + eps);
    for (let c = 0; c < d; c++) out[at + c] = (x.data[at + c] / rms) * ((unitOffset ? 1 : 0) + w.data[c]);
  }
  return { data: out, shape: x.shape };
}

const all = await engines();
const copy = (t: Tensor): Tensor => tensor(Float32Array.from(t.data), t.shape);

describe.each(all.map((e) => [e.name, e] as const))('rmsNorm on %s', (_, engine: Engine) => {
  /** A tensor of the engine's own memory holding `t`'s values. */
  const resident = (t: Tensor) => { const r = engine.tensor(t.shape); r.data.set(t.data); return r; };

  it.each(TAIL_SIZES)('rows of length D = %i, with w and with 1 + w', (d) => {
    const x = random([5, d], d, 3), w = random([d], d + 1000, 2);
    expectClose(engine.rmsNorm(x, w), oracle(x, w), `D=${d}`);
    expectClose(engine.rmsNorm(x, w, { unitOffset: true }), oracle(x, w, 1e-6, true), `D=${d}, unitOffset`);
    expectClose(engine.rmsNorm(x, w, { eps: 0.5 }), oracle(x, w, 0.5), `D=${d}, eps 0.5`);
  });

  it('normalizes the last axis of any rank; a [D] x is one row', () => {
    const w = random([64], 2, 1);
    for (const shape of [[64], [3, 64], [2, 3, 64], [2, 1, 2, 64]]) {
      const x = random(shape, shape.length, 4);
      expectClose(engine.rmsNorm(x, w), oracle(x, w), `shape ${shape}`);
    }
  });

  it('gives x / rms: a golden row', () => {
    // mean of squares of [3, 4] is 12.5: y = [3, 4] / sqrt(12.5) · w
    const y = engine.rmsNorm(tensor([3, 4], [1, 2]), tensor([1, 2], [2]), { eps: 0 });
    expectClose(y, tensor([3 / Math.sqrt(12.5), 8 / Math.sqrt(12.5)], [1, 2]));
    const g = engine.rmsNorm(tensor([3, 4], [2]), tensor([0, -0.5], [2]), { eps: 0, unitOffset: true });
    expectClose(g, tensor([3 / Math.sqrt(12.5), 2 / Math.sqrt(12.5)], [2]));
  });

  it('writes into out = x (in place), into a plain out, and through a copy when out overlaps x shifted by a row', () => {
    const d = 67, shape = [6, d], x0 = random(shape, 3, 2), w = random([d], 4);
    const want = oracle(x0, w);
    const x = copy(x0);
    expect(engine.rmsNorm(x, w, { out: x })).toBe(x);
    expectClose(x, want, 'in place');
    const out = tensor(new Float32Array(6 * d), shape);
    expect(engine.rmsNorm(x0, w, { out })).toBe(out);
    expectClose(out, want, 'plain out');
    const both = new Float32Array(7 * d);
    both.set(x0.data);
    const from = { data: both.subarray(0, 6 * d), shape }, to = { data: both.subarray(d), shape };
    engine.rmsNorm(from, w, { out: to });
    expectClose(to, want, 'out shifted by a row');
  });

  it('reads engine tensors in place and writes into engine tensors: x, weight and out, x itself as out', () => {
    const d = 129, shape = [7, d], x0 = random(shape, 5, 3), w0 = random([d], 6);
    const want = oracle(x0, w0, 1e-6, true);
    const x = resident(x0), w = resident(w0), out = engine.tensor(shape);
    expect(engine.rmsNorm(x, w, { out, unitOffset: true })).toBe(out);
    expectClose(out, want, 'engine out');
    expect(Array.from(x.data)).toEqual(Array.from(x0.data));
    const plainOut = tensor(new Float32Array(7 * d), shape);
    engine.rmsNorm(x, w, { out: plainOut, unitOffset: true });
    expectClose(plainOut, want, 'engine x, plain out');
    expectClose(engine.rmsNorm(x0, w, { unitOffset: true }), want, 'engine weight');
    expect(engine.rmsNorm(x, w, { out: x, unitOffset: true })).toBe(x);
    expectClose(x, want, 'engine x in place');
    // out shifted by a row over the same engine tensor
    const big = engine.tensor([8, d]);
    big.data.set(x0.data);
    engine.rmsNorm({ data: big.data.subarray(0, 7 * d), shape }, w0, { out: { data: big.data.subarray(d), shape } });
    expectClose({ data: big.data.subarray(d), shape }, oracle(x0, w0), 'engine out shifted by a row');
    for (const t of [x, w, out, big]) t.dispose();
  });

  it('keeps rows apart: NaN makes its row NaN, Infinity its own entries; huge, tiny and zero rows', () => {
    for (const d of [5, 16, 67]) {
      const special: ((j: number) => number)[] = [
        (j) => (j === d - 1 ? NaN : 1), // NaN in the tail (or body): the row is NaN
        (j) => (j === 0 ? Infinity : 1), // Infinity: mean Infinity, so x · 0: 0, and Infinity · 0: NaN
        (j) => (j === 2 % d ? -Infinity : 0.5),
        (j) => (j % 2 ? 3e38 : -1e30), // float32 squares would overflow: still a unit-scale row
        (j) => (j % 3 ? 1e20 : -2e19),
        (j) => (j % 2 ? 1e-30 : -3e-31), // tiny with eps = 1e-6: nearly zero
        () => 0, // zero with eps = 1e-6: zero
      ];
      const plain = random([1, d], d, 2).data;
      const data = new Float32Array(2 * special.length * d);
      special.forEach((f, i) => {
        data.set(plain, 2 * i * d);
        for (let j = 0; j < d; j++) data[(2 * i + 1) * d + j] = f(j);
      });
      const x = tensor(data, [2 * special.length, d]), w = random([d], 7, 2);
      const y = rows(engine.rmsNorm(x, w));
      const want = rows(oracle(x, w));
      for (let r = 0; r < y.length; r++) {
        expectClose(tensor(y[r], [d]), tensor(want[r], [d]), `D=${d}, row ${r}`);
        if (r !== 1 && r !== 3 && r !== 5) expect(y[r].some(Number.isNaN), `D=${d}, row ${r}`).toBe(false);
      }
      expect(y[1].every(Number.isNaN), `D=${d}`).toBe(true);
      // mean(x²) = Infinity: x · 0, so the infinite entries are NaN and the others 0 (as in PyTorch)
      expect(y[3].map((v) => (Number.isNaN(v) ? 'NaN' : Math.abs(v))), `D=${d}`).toEqual(['NaN', ...new Array(d - 1).fill(0)]);
      expect(y[13].map(Math.abs)).toEqual(new Array(d).fill(0));
    }
  });

  it('with eps = 0: tiny and subnormal rows come out at unit scale; an all-zero row is NaN (0 / 0), as in PyTorch', () => {
    for (const d of [3, 16, 65]) {
      const x = tensor(Array.from({ length: 4 * d }, (_, k) => {
        const r = Math.floor(k / d), j = k % d;
        return [[1e-30, -2e-31][j % 2], [1e-40, -3e-41][j % 2], j === 1 ? 1e-45 : 0, 0][r];
      }), [4, d]);
      const w = random([d], 8, 2);
      const y = rows(engine.rmsNorm(x, w, { eps: 0 }));
      const want = rows(oracle(x, w, 0));
      // subnormal inputs hold few bits: compare to the oracle of the float32 values actually stored
      for (const r of [0, 1, 2]) expectClose(tensor(y[r], [d]), tensor(want[r], [d]), `D=${d}, row ${r}`);
      expect(Math.max(...y[0].map(Math.abs))).toBeGreaterThan(0.1);
      expect(y[3].every(Number.isNaN)).toBe(true);
    }
  });

  it('returns at once for zero sizes, into out too', () => {
    expect(engine.rmsNorm(tensor([], [0, 4]), tensor([1, 2, 3, 4], [4])).shape).toEqual([0, 4]);
    expect(engine.rmsNorm(tensor([], [3, 0]), tensor([], [0])).shape).toEqual([3, 0]);
    const huge = { data: new Float32Array(0), shape: [1e9, 0] };
    expect(engine.rmsNorm(huge, tensor([], [0]), { eps: 0 }).shape).toEqual([1e9, 0]);
    const out = { data: new Float32Array(0), shape: [1e9, 0] };
    expect(engine.rmsNorm(huge, tensor([], [0]), { out })).toBe(out);
  });

  it('refuses bad arguments with TypeError or RangeError naming them, and stays usable', () => {
    const x = random([2, 5], 1), w = random([5], 2);
    const bad: [() => unknown, ErrorConstructor, RegExp][] = [
      [() => engine.rmsNorm(null as never, w), TypeError, /rmsNorm: x: expected a Tensor/],
      [() => engine.rmsNorm({ data: new Float64Array(10), shape: [2, 5] } as never, w), TypeError, /rmsNorm: x: data must be a Float32Array/],
      [() => engine.rmsNorm(x, [1, 2, 3, 4, 5] as never), TypeError, /rmsNorm: weight: expected a Tensor/],
      [() => engine.rmsNorm(tensor([1], []), tensor([1], [1])), RangeError, /rmsNorm: x must be at least 1-D/],
      [() => engine.rmsNorm(x, random([4], 3)), RangeError, /rmsNorm: weight: expected shape \[5\] \(D, the last size of x \[2, 5\]\), got \[4\]/],
      [() => engine.rmsNorm(x, random([1, 5], 3)), RangeError, /rmsNorm: weight: expected shape \[5\].*got \[1, 5\]/],
      [() => engine.rmsNorm(x, w, { eps: '1e-6' } as never), TypeError, /rmsNorm: options.eps must be a number/],
      [() => engine.rmsNorm(x, w, { eps: -1e-6 }), RangeError, /rmsNorm: options.eps must be a finite number >= 0, got -0.000001/],
      [() => engine.rmsNorm(x, w, { eps: NaN }), RangeError, /options.eps must be a finite number/],
      [() => engine.rmsNorm(x, w, { eps: Infinity }), RangeError, /options.eps must be a finite number/],
      [() => engine.rmsNorm(x, w, { unitOffset: 1 } as never), TypeError, /rmsNorm: options.unitOffset must be a boolean/],
      [() => engine.rmsNorm(x, w, 'eps' as never), TypeError, /rmsNorm: options must be an object/],
      [() => engine.rmsNorm(x, w, { out: random([5, 2], 4) }), RangeError, /rmsNorm: options.out: expected shape \[2, 5\] \(the shape of the result\), got \[5, 2\]/],
      [() => engine.rmsNorm(x, w, { out: [1, 2] } as never), TypeError, /rmsNorm: options.out: expected a Tensor/],
      [() => engine.rmsNorm(x, w, { out: new Float32Array(10) } as never), TypeError, /rmsNorm: options.out: data must be a Float32Array/],
      // out is checked before the weight (a wrong out costs nothing)
      [() => engine.rmsNorm(x, random([4], 3), { out: random([3], 4) }), RangeError, /options.out: expected shape \[2, 5\]/],
    ];
    for (const [call, kind, message] of bad) {
      expect(call).toThrow(kind);
      expect(call).toThrow(message);
      expectClose(engine.rmsNorm(x, w), oracle(x, w), 'after an error');
    }
  });
});

describe('rmsNorm over threads', async () => {
  const [one, two, three] = await Promise.all([1, 2, 3].map((t) => splitContext(t)));
  const x = random([301, 1200], 11, 4), w = random([1200], 12, 2);

  it('rows split into 2 or 3 shares give the same bits as one call', () => {
    for (const unitOffset of [false, true]) {
      const y1 = wasmRmsNorm(one, x, w, { unitOffset });
      expectClose(y1, oracle(x, w, 1e-6, unitOffset));
      expect(sameBits(wasmRmsNorm(two, x, w, { unitOffset }).data, y1.data)).toBe(true);
      expect(sameBits(wasmRmsNorm(three, x, w, { unitOffset }).data, y1.data)).toBe(true);
    }
  });

  // worker threads run dist/: only once it has been built with these kernels
  describe.skipIf(!distCurrent)('on worker threads (dist/ built with these kernels)', async () => {
    const engine1 = await createEngine(), engine2 = await createEngine({ threads: 2 });
    afterAll(() => { engine1.dispose(); engine2.dispose(); });

    it('2 threads give the same bits as 1 (a call big enough to split: 301 rows of 3 · 1200)', () => {
      expect(engine2.info.threads).toBe(2);
      const y1 = engine1.rmsNorm(x, w, { unitOffset: true }), y2 = engine2.rmsNorm(x, w, { unitOffset: true });
      expect(sameBits(y2.data, y1.data)).toBe(true);
      const xe = engine2.tensor(x.shape);
      xe.data.set(x.data);
      engine2.rmsNorm(xe, w, { out: xe, unitOffset: true });
      expect(sameBits(xe.data, y1.data)).toBe(true);
      xe.dispose();
    });
  });
});
