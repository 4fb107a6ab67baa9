// Skinny products (a few rows of A, assembly/kernels/gemv.ts): matmul picks the kernel from the
// shape, so these run through the public matmul on both engines, at the sizes around the kernel's
// vector widths (4 columns, 8 rows of B, 4 rows of Bᵀ, 32 floats of a dot) and its row thresholds.
import { describe, expect, it } from 'vitest';
import { type Engine, reference, type Tensor, tensor } from '../../src/index.js';
import { SKINNY_ROWS, SKINNY_ROWS_TRANSPOSED } from '../../src/wasm/gemv.js';
import { chooseBuild, compileKernels, defaultWasmUrl, instantiateKernels } from '../../src/wasm/loader.js';
import { PANEL } from '../../src/wasm/packed.js';
import { expectClose, random, TAIL_SIZES, wasmEngine } from '../support.js';

const engine: Engine = await wasmEngine();

/** Every element the same bits (NaN equal to NaN). */
function expectIdentical(a: Tensor, b: Tensor, label: string): void {
  expect(a.shape, label).toEqual(b.shape);
  let diff = -1;
  for (let i = 0; i < a.data.length && diff < 0; i++) if (!Object.is(a.data[i], b.data[i])) diff = i;
  expect(diff, `${label}: first difference at ${diff}: ${a.data[diff]} vs ${b.data[diff]}`).toBe(-1);
}

/** Against the reference engine (float64 sums), both layouts. */
function check(M: number, K: number, N: number, lead: number[] = []): void {
  const a = random([...lead, M, K], M * 1009 + K * 7 + N), b = random([...lead, K, N], N * 31 + K), bt = random([...lead, N, K], N * 37 + K);
  expectClose(engine.matmul(a, b), reference.matmul(a, b), `[${M}, ${K}] x [${K}, ${N}]`);
  expectClose(engine.matmul(a, bt, { transposeB: true }), reference.matmul(a, bt, { transposeB: true }), `[${M}, ${K}] x [${N}, ${K}]T`);
}

describe('skinny matmul', () => {
  const rows = [1, 2, 3, 4, 5, 15, 16, 17];
  it('the thresholds sit inside the tested rows', () => {
    expect(rows).toContain(SKINNY_ROWS);
    expect(rows).toContain(SKINNY_ROWS + 1);
    expect(rows).toContain(SKINNY_ROWS_TRANSPOSED);
    expect(rows).toContain(SKINNY_ROWS_TRANSPOSED + 1);
  });

  it.each(rows)('M=%i over tails in K and N', (M) => {
    for (const s of TAIL_SIZES) {
      check(M, s, 17);
      check(M, 33, s);
      check(M, s, s);
    }
  });

  it.each([[1, 1000, 300], [2, 513, 1031], [3, 257, 4100], [16, 129, 65]])('M=%i K=%i N=%i: longer rows, column blocks', (M, K, N) => {
    check(M, K, N);
  });

  it('batched and broadcast leading dimensions', () => {
    check(1, 37, 19, [3]);
    check(2, 9, 33, [2, 2]);
    const a = random([4, 1, 40], 1), b = random([40, 21], 2), bt = random([21, 40], 3);
    expectClose(engine.matmul(a, b), reference.matmul(a, b), 'shared b');
    expectClose(engine.matmul(a, bt, { transposeB: true }), reference.matmul(a, bt, { transposeB: true }), 'shared bT');
  });

  it('a matrix times a vector: 1-D a, and K = 0', () => {
    const v = random([50], 4), m = random([50, 7], 5);
    expectClose(engine.matmul(v, m), reference.matmul(v, m), 'v·m');
    expectClose(engine.matmul(v, random([7, 50], 6), { transposeB: true }), reference.matmul(v, random([7, 50], 6), { transposeB: true }), 'v·mT');
    expect(Array.from(engine.matmul(tensor([], [1, 0]), tensor([], [0, 5])).data)).toEqual([0, 0, 0, 0, 0]);
    expect(Array.from(engine.matmul(tensor([], [2, 0]), tensor([], [3, 0]), { transposeB: true }).data)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('NaN and Infinity reach only the columns they touch', () => {
    const K = 40, N = 37;
    const a = random([1, K], 7), b = random([K, N], 8), bt = random([N, K], 9);
    b.data[5 * N + 3] = NaN; b.data[6 * N + 36] = Infinity; bt.data[3 * K + 5] = NaN; bt.data[36 * K + 6] = Infinity;
    for (const [c, label] of [[engine.matmul(a, b), 'plain'], [engine.matmul(a, bt, { transposeB: true }), 'transposed']] as const) {
      expect(Number.isNaN(c.data[3]), label).toBe(true);
      expect(Math.abs(c.data[36]), label).toBe(Infinity);
      for (let j = 0; j < N; j++) if (j !== 3 && j !== 36) expect(Number.isFinite(c.data[j]), `${label} column ${j}`).toBe(true);
    }
  });

  // B larger than the stream chunk: a stateless call copies it in chunk by chunk, a resident one
  // (an engine tensor) is read in place; both compute the same bits
  it.each([[1, 700, 900], [3, 1000, 513], [16, 513, 700]])('M=%i K=%i N=%i: B streamed in chunks = B in engine memory, bit for bit', (M, K, N) => {
    const a = random([M, K], 10);
    for (const transposeB of [false, true]) {
      const b = random(transposeB ? [N, K] : [K, N], 11 + N);
      const resident = engine.tensor(b.shape);
      resident.data.set(b.data);
      const streamed = engine.matmul(a, b, { transposeB });
      expectClose(streamed, reference.matmul(a, b, { transposeB }), `transposeB ${transposeB}`);
      expectIdentical(engine.matmul(a, resident, { transposeB }), streamed, `transposeB ${transposeB}`);
      resident.dispose();
    }
  });

  it('streams a batched B from each matrix of it', () => {
    const a = random([2, 1, 600], 12), b = random([2, 600, 500], 13), bt = random([2, 500, 600], 14);
    expectClose(engine.matmul(a, b), reference.matmul(a, b), 'plain');
    expectClose(engine.matmul(a, bt, { transposeB: true }), reference.matmul(a, bt, { transposeB: true }), 'transposed');
  });
});

describe('packed weights', () => {
  it('the panel width of src/wasm/packed.ts matches the kernel', async () => {
    const k = instantiateKernels(await compileKernels(defaultWasmUrl(chooseBuild('simd'), false)));
    expect(k.gemm_packed_size_f32(1, 1)).toBe(PANEL);
    expect(k.gemm_packed_size_f32(PANEL + 1, 3)).toBe(3 * 2 * PANEL);
  });
});
