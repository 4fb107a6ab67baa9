import { describe, expect, it } from 'vitest';
import { type Engine, type Tensor, tensor } from '../../src/index.js';
import { engines, expectClose, random, TAIL_SIZES } from '../support.js';

/** Float64 oracle: C[z, i, j] = sum_k A[z, i, k] B[z, k, j], with A or B shared when its batch is 1. */
function oracle(a: Tensor, b: Tensor, transposeB: boolean, batch: number): Tensor {
  const [M, K] = a.shape.slice(-2);
  const N = transposeB ? b.shape[b.shape.length - 2] : b.shape[b.shape.length - 1];
  const aBatch = a.data.length / (M * K), bBatch = b.data.length / (K * N);
  const out = new Float64Array(batch * M * N);
  for (let z = 0; z < batch; z++)
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = a.data[(aBatch === 1 ? 0 : z) * M * K + i * K + k];
          const bv = transposeB ? b.data[(bBatch === 1 ? 0 : z) * N * K + j * K + k] : b.data[(bBatch === 1 ? 0 : z) * K * N + k * N + j];
          s += av * bv;
        }
        out[(z * M + i) * N + j] = s;
      }
  return { data: Float32Array.from(out), shape: [...(batch > 1 || a.shape.length > 2 ? [batch] : []), M, N] };
}

const all = await engines();

describe.each(all.map((e) => [e.name, e] as const))('matmul on %s', (_, engine: Engine) => {
  it('multiplies a small case by hand', () => {
    const c = engine.matmul(tensor([1, 2, 3, 4, 5, 6], [2, 3]), tensor([7, 8, 9, 10, 11, 12], [3, 2]));
    expect(c.shape).toEqual([2, 2]);
    expect(Array.from(c.data)).toEqual([58, 64, 139, 154]);
  });

  // M, N and K each over the tail sizes, paired so that every size meets every role
  const cases: [number, number, number][] = [];
  for (const s of TAIL_SIZES) cases.push([s, 17, 5], [7, s, 16], [9, 13, s], [s, s, s > 64 ? 33 : s]);
  it.each(cases)('M=%i N=%i K=%i, plain and transposeB', (M, N, K) => {
    const a = random([M, K], M * 131 + K), b = random([K, N], N * 7 + 1), bt = random([N, K], N * 7 + 2);
    expectClose(engine.matmul(a, b), oracle(a, b, false, 1), 'A·B');
    expectClose(engine.matmul(a, bt, { transposeB: true }), oracle(a, bt, true, 1), 'A·Bᵀ');
  });

  // K beyond one packed K-block (256) accumulates into C; odd M and partial 16-column panels meet it
  it.each([[3, 17, 257], [2, 16, 300], [5, 33, 513], [1, 1, 1000]])('M=%i N=%i K=%i across K-blocks', (M, N, K) => {
    const a = random([M, K], K, 0.5), b = random([K, N], K + 1, 0.5), bt = random([N, K], K + 2, 0.5);
    expectClose(engine.matmul(a, b), oracle(a, b, false, 1), 'A·B');
    expectClose(engine.matmul(a, bt, { transposeB: true }), oracle(a, bt, true, 1), 'A·Bᵀ');
  });

  it('broadcasts leading dimensions', () => {
    const a = random([3, 5, 6], 1), b = random([6, 7], 2);
    expectClose(engine.matmul(a, b), oracle(a, b, false, 3), 'batched a, shared b');
    const a1 = random([1, 5, 6], 3), b3 = random([3, 6, 7], 4);
    expectClose(engine.matmul(a1, b3), oracle(a1, b3, false, 3), 'shared a, batched b');
    const c = engine.matmul(random([2, 1, 4, 3], 5), random([1, 3, 3, 2], 6));
    expect(c.shape).toEqual([2, 3, 4, 2]);
    // each output matrix is the product of its broadcast operands
    const A = random([2, 1, 4, 3], 5), B = random([1, 3, 3, 2], 6);
    for (let x = 0; x < 2; x++)
      for (let y = 0; y < 3; y++) {
        const ax = tensor(A.data.subarray(x * 12, x * 12 + 12), [4, 3]);
        const by = tensor(B.data.subarray(y * 6, y * 6 + 6), [3, 2]);
        expectClose(tensor(c.data.subarray((x * 3 + y) * 8, (x * 3 + y + 1) * 8), [4, 2]), oracle(ax, by, false, 1), `batch ${x},${y}`);
      }
  });

  it('treats 1-D operands as a row (a) or a column (b), as numpy and PyTorch do', () => {
    const m = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const v2 = tensor([1, -1], [2]), v3 = tensor([1, 0, -1], [3]);
    expect(engine.matmul(v2, m).shape).toEqual([3]);
    expect(Array.from(engine.matmul(v2, m).data)).toEqual([-3, -3, -3]);
    expect(Array.from(engine.matmul(m, v3).data)).toEqual([-2, -2]);
    expect(Array.from(engine.matmul(m, v3, { transposeB: true }).data)).toEqual([-2, -2]);
    expect(engine.matmul(v3, v3).shape).toEqual([]);
    expect(Array.from(engine.matmul(v3, v3).data)).toEqual([2]);
    expect(engine.matmul(random([4, 2, 3], 1), v3).shape).toEqual([4, 2]);
  });

  it('handles zero sizes', () => {
    expect(engine.matmul(random([0, 3], 1), random([3, 4], 2)).shape).toEqual([0, 4]);
    const z = engine.matmul(tensor([], [2, 0]), tensor([], [0, 3]));
    expect(z.shape).toEqual([2, 3]);
    expect(Array.from(z.data)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(engine.matmul(random([0, 2, 3], 1), random([3, 4], 2)).shape).toEqual([0, 2, 4]);
  });

  it('lets NaN and Infinity flow into the rows and columns they touch', () => {
    const a = tensor([1, 2, NaN, 4], [2, 2]), b = tensor([1, 0, 0, 1], [2, 2]);
    const c = engine.matmul(a, b);
    expect(Array.from(c.data.subarray(0, 2))).toEqual([1, 2]);
    expect(Number.isNaN(c.data[2])).toBe(true);
    expect(engine.matmul(tensor([Infinity, 1], [1, 2]), tensor([1, 1], [2, 1])).data[0]).toBe(Infinity);
  });
});
