import { describe, expect, it } from 'vitest';
import { type Engine, type Tensor, tensor } from '../../src/index.js';
import { engines, expectClose, random, rows, TAIL_SIZES, wasmEngine } from '../support.js';

/** Float64 oracle of softmax over the first len entries of each row, zeros after. */
function oracle(x: Tensor, lens?: number[]): Tensor {
  const n = x.shape[x.shape.length - 1];
  const out = new Float32Array(x.data.length);
  for (let r = 0; r < x.data.length / n; r++) {
    const len = lens ? lens[r] : n;
    const row = Array.from(x.data.subarray(r * n, r * n + len));
    const m = Math.max(...row);
    const e = row.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    e.forEach((v, j) => (out[r * n + j] = v / s));
  }
  return { data: out, shape: x.shape };
}

const all = await engines();

describe.each(all.map((e) => [e.name, e] as const))('softmax on %s', (_, engine: Engine) => {
  it.each(TAIL_SIZES)('rows of length %i', (n) => {
    const x = random([3, n], n, 5);
    const y = engine.softmax(x);
    expectClose(y, oracle(x), `n=${n}`);
    for (const row of rows(y)) expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  });

  it('works along the last axis of any rank', () => {
    const x = random([2, 3, 4, 5], 9, 3);
    expectClose(engine.softmax(x), oracle(x));
    expect(engine.softmax(tensor([1, 2, 3], [3])).shape).toEqual([3]);
  });

  it('does not overflow on scores of ±1e4 or ±1e30', () => {
    const y = engine.softmax(tensor([1e4, 0, -1e4, 1e4, 1e30, -1e30, 0, 1e30], [2, 4]));
    expectClose(y, tensor([0.5, 0, 0, 0.5, 0.5, 0, 0, 0.5], [2, 4]));
  });

  it('gives zeros for a row of -Infinity and lets NaN flow only into its row', () => {
    const y = engine.softmax(tensor([-Infinity, -Infinity, -Infinity, 0, NaN, 1, 0, 0, 0], [3, 3]));
    expect(rows(y)[0]).toEqual([0, 0, 0]);
    expect(rows(y)[1].every(Number.isNaN)).toBe(true);
    expectClose(tensor(rows(y)[2], [3]), tensor([1 / 3, 1 / 3, 1 / 3], [3]));
  });

  it('handles a row with only NaN and -Infinity in a SIMD body', () => {
    const y = engine.softmax(tensor([NaN, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity], [1, 8]));
    expect(Array.from(y.data).every(Number.isNaN)).toBe(true);
  });

  it('handles zero sizes', () => {
    expect(engine.softmax(tensor([], [0, 4])).shape).toEqual([0, 4]);
    expect(engine.softmax(tensor([], [3, 0])).shape).toEqual([3, 0]);
  });

  it.each([128, 1000, 1024, 8192, 8193, 16399])('rows of length %i (short and long, SIMD tails), scores up to ±30', (n) => {
    const x = random([3, n], n + 1, 30);
    expectClose(engine.softmax(x), oracle(x), `n=${n}`);
  });

  it('keeps rows apart: -Infinity, NaN, +Infinity and ±1e4 rows between ordinary ones, in body and tail', () => {
    // the wasm kernel takes each row's max while it computes the previous row's exp
    for (const n of [17, 64, 133]) {
      const special = [
        () => -Infinity, // all masked: zeros
        (j: number) => (j === n - 1 ? NaN : -Infinity), // NaN in the scalar tail or the SIMD body: NaN
        (j: number) => (j === 5 ? Infinity : 0), // +Infinity: NaN, as in the reference
        (j: number) => (j % 3 === 0 ? 1e4 : j % 3 === 1 ? -1e4 : 1e4 - 0.5), // large scores, close together
        (j: number) => (j === n - 1 ? 3 : -1e30), // the max in the tail
      ];
      const plain = random([1, n], n, 4).data;
      const data = new Float32Array(2 * special.length * n);
      special.forEach((f, i) => {
        data.set(plain, 2 * i * n);
        for (let j = 0; j < n; j++) data[(2 * i + 1) * n + j] = f(j);
      });
      const x = tensor(data, [2 * special.length, n]);
      const y = rows(engine.softmax(x));
      const want = rows(oracle(x));
      for (let r = 0; r < y.length; r++) {
        if (r === 1) expect(y[r]).toEqual(new Array(n).fill(0));
        else if (r === 3 || r === 5) expect(y[r].every(Number.isNaN), `n=${n}, row ${r}`).toBe(true);
        else expectClose(tensor(y[r], [n]), tensor(want[r], [n]), `n=${n}, row ${r}`);
      }
    }
  });
});

describe('softmax on wasm with plain arrays larger than its blocks', async () => {
  const engine = await wasmEngine();
  // 70 rows of 1100 floats: 308 KB, more than the wrapper's 256 KiB blocks (59 rows, then 11)
  const shape = [70, 1100];
  const data = random(shape, 11, 6).data;

  it('gives the same as a plain evaluation, masked rows too', () => {
    expectClose(engine.softmax(tensor(data, shape)), oracle(tensor(data, shape)));
    const lens = Array.from({ length: 70 }, (_, r) => (r * 97) % 1101);
    expectClose(engine.maskedSoftmax(tensor(data, [1, ...shape]), lens), oracle(tensor(data, [1, ...shape]), lens));
  });

  it('writes into out = x, and into an out that overlaps x shifted by one row', () => {
    const x = tensor(Float32Array.from(data), shape);
    expect(engine.softmax(x, { out: x })).toBe(x);
    expectClose(x, oracle(tensor(data, shape)));
    const both = new Float32Array(71 * 1100);
    both.set(data);
    const from = { data: both.subarray(0, 70 * 1100), shape }, to = { data: both.subarray(1100), shape };
    engine.softmax(from, { out: to });
    expectClose(to, oracle(tensor(data, shape)));
  });
});

describe('softmax on wasm with engine tensors', async () => {
  const engine = await wasmEngine();
  const n = 67, shape = [5, n];

  it('reads x in place and writes into out directly, leaving x as it was', () => {
    const x = engine.tensor(shape), out = engine.tensor(shape);
    x.data.set(random(shape, 3, 3).data);
    const before = Float32Array.from(x.data);
    const y = engine.softmax(x, { out });
    expect(y).toBe(out);
    expect(Array.from(x.data)).toEqual(Array.from(before));
    expectClose(out, oracle(tensor(before, shape)));
    x.dispose(); out.dispose();
  });

  it('computes in place when out is x, and through a copy when out overlaps x otherwise', () => {
    const x = engine.tensor(shape);
    const data = random(shape, 4, 3).data;
    x.data.set(data);
    engine.softmax(x, { out: x });
    expectClose(x, oracle(tensor(data, shape)));
    // out shifted by one row over the same memory: the kernel must not read what it has written
    const big = engine.tensor([6, n]);
    big.data.set(data, 0);
    const shifted = { data: big.data.subarray(n), shape };
    const from = { data: big.data.subarray(0, 5 * n), shape };
    engine.softmax(from, { out: shifted });
    expectClose(shifted, oracle(tensor(data, shape)));
    x.dispose(); big.dispose();
  });

  it('masks rows of an engine tensor into a plain out', () => {
    const x = engine.tensor([1, 5, n]);
    x.data.set(random(shape, 5, 3).data);
    const lens = [0, 1, 66, 67, 16];
    const out = tensor(new Float32Array(5 * n), [1, 5, n]);
    expect(engine.maskedSoftmax(x, lens, { out })).toBe(out);
    expectClose(out, oracle(tensor(Float32Array.from(x.data), [1, 5, n]), lens));
    x.dispose();
  });
});

describe.each(all.map((e) => [e.name, e] as const))('maskedSoftmax on %s', (_, engine: Engine) => {
  it("reproduces d2l's example: rows masked beyond 2 and 3", () => {
    // d2l 11.3: masked_softmax(torch.rand(2, 2, 4), torch.tensor([2, 3]))
    const x = tensor([0.4880, 0.2755, 0.6311, 0.4466, 0.5287, 0.6021, 0.0918, 0.3232,
      0.1736, 0.4219, 0.7584, 0.5391, 0.3446, 0.7474, 0.4620, 0.9236], [2, 2, 4]);
    const y = engine.maskedSoftmax(x, [2, 3]);
    const e = (a: number, b: number) => 1 / (1 + Math.exp(b - a));
    expectClose(y, tensor([
      e(0.4880, 0.2755), e(0.2755, 0.4880), 0, 0,
      e(0.5287, 0.6021), e(0.6021, 0.5287), 0, 0,
      ...oracle(tensor([0.1736, 0.4219, 0.7584], [3])).data, 0,
      ...oracle(tensor([0.3446, 0.7474, 0.4620], [3])).data, 0,
    ], [2, 2, 4]));
    expect(rows(y).map((r) => r.filter((v) => v > 0).length)).toEqual([2, 2, 3, 3]);
  });

  it('takes lengths as a Tensor (as d2l passes them) and means softmax without them', () => {
    const x = random([2, 2, 5], 8, 2);
    expectClose(engine.maskedSoftmax(x, tensor([2, 3], [2])), engine.maskedSoftmax(x, [2, 3]));
    expectClose(engine.maskedSoftmax(x, undefined), engine.softmax(x));
  });

  it('takes one length per row', () => {
    const x = random([2, 3, 17], 4, 2);
    const lens = [0, 1, 17, 5, 16, 4];
    const y = engine.maskedSoftmax(x, lens);
    expectClose(y, oracle(x, lens));
    expect(rows(y)[0]).toEqual(new Array(17).fill(0));
  });

  it.each(TAIL_SIZES)('masks tails of rows of length %i', (n) => {
    const x = random([2, 2, n], n + 3, 4);
    const lens = [Math.max(0, n - 1), Math.floor(n / 2)];
    expectClose(engine.maskedSoftmax(x, lens), oracle(x, [lens[0], lens[0], lens[1], lens[1]]));
  });
});
