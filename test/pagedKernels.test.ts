// The paged attention kernels' inner loops, each storage format against the reference engine (the
// readable definition): two query heads at once over float32 blocks, the int8 scores through 16-bit
// queries and integer dot products (chunked past 2048 elements), binary16 widened eight at a time
// (or, for 4+ query heads a kv head, each run widened once into float32 rows, 16 at a time).
// Sizes sit at and around the loops' steps (4 keys, 8 and 16 elements, 2 heads), and the queries hold
// the rows those loops must hand to a slower path: Infinity, NaN, zero, too small to scale, huge.
import { describe, expect, it } from 'vitest';
import { type Engine, reference, type Tensor, tensor } from '../src/index.js';
import { expectClose, poolAttention, random, randomPasts, wasmEngines } from './support.js';

const [wasm1, wasm2] = await wasmEngines();

type Dtype = 'float32' | 'float16' | 'int8';
interface Case { Hq: number; Hkv: number; D: number; Dv: number; blockSize: number; past: number[]; news?: number[] }

/** Query rows whose head h is scaled by SPECIALS[h % 6] (NaN and Infinity put in one element). */
const SPECIALS = ['normal', 'nan', 'inf', 'zero', 'tiny', 'huge'] as const;
function queries(T: number, Hq: number, D: number, seed: number, specials: boolean): Tensor {
  const q = random([T, Hq, D], seed);
  if (!specials) return q;
  for (let t = 0; t < T; t++) for (let h = 0; h < Hq; h++) {
    const row = q.data.subarray((t * Hq + h) * D, (t * Hq + h + 1) * D);
    switch (SPECIALS[h % SPECIALS.length]) {
      case 'nan': row[D >> 1] = NaN; break;
      case 'inf': row[0] = -Infinity; break;
      case 'zero': row.fill(0); break;
      case 'tiny': row.forEach((x, i) => { row[i] = x * 1e-38; }); break; // 1 / (max|q| / 32767) overflows float32
      case 'huge': row.forEach((x, i) => { row[i] = x * 1e30; }); break;
      default:
    }
  }
  return q;
}

/** Past rows with values binary16 cannot hold (it stores them as Infinity) and a NaN, at a few positions of kv head 0. */
function withStoredSpecials(t: Tensor, Hkv: number, D: number): Tensor {
  const L = t.shape[0];
  for (const [at, x] of [[3, 1e6], [7, -7e4], [10, NaN]] as const) if (at < L) t.data[at * Hkv * D + (at % D)] = x;
  return t;
}

function run(engine: Engine, dtype: Dtype, c: Case, specials: boolean, stored: 'keys' | 'values' | null = null): Tensor {
  const news = c.news ?? c.past.map(() => 1);
  const pasts = randomPasts(c.past, c.Hkv, c.D, c.Dv);
  for (const { keys, values } of pasts) {
    if (stored === 'keys') withStoredSpecials(keys, c.Hkv, c.D);
    if (stored === 'values') withStoredSpecials(values, c.Hkv, c.Dv);
  }
  const T = news.reduce((a, b) => a + b, 0);
  return poolAttention(engine, { kvHeads: c.Hkv, headDim: c.D, valueDim: c.Dv, blockSize: c.blockSize, dtype }, pasts,
    queries(T, c.Hq, c.D, 1, specials), random([T, c.Hkv, c.D], 2), random([T, c.Hkv, c.Dv], 3), { queryLens: news });
}

const cases: [string, Case][] = [
  ['GQA 7:1 (three pairs and one), D 64', { Hq: 7, Hkv: 1, D: 64, Dv: 64, blockSize: 16, past: [37, 5] }],
  ['GQA 4:1, block 40 (binary16 runs widened 16 rows at a time), D 13, Dv 21', { Hq: 8, Hkv: 2, D: 13, Dv: 21, blockSize: 40, past: [93, 40, 7] }],
  ['GQA 2:1, block 5 (runs of 1..5 keys), D 17, Dv 33', { Hq: 4, Hkv: 2, D: 17, Dv: 33, blockSize: 5, past: [23, 4, 1] }],
  ['GQA 6:1, D 8, Dv 16, three new rows over a past', { Hq: 6, Hkv: 1, D: 8, Dv: 16, blockSize: 4, past: [13], news: [3] }],
  ['GQA 3:1, D 7, Dv 15', { Hq: 3, Hkv: 1, D: 7, Dv: 15, blockSize: 3, past: [11] }],
  ['GQA 2:1, D 1, Dv 1', { Hq: 2, Hkv: 1, D: 1, Dv: 1, blockSize: 4, past: [9] }],
  ['one head per kv head, D 9, Dv 65', { Hq: 2, Hkv: 2, D: 9, Dv: 65, blockSize: 8, past: [30] }],
  ['D 2056: int8 sums split past 2048 elements', { Hq: 2, Hkv: 1, D: 2056, Dv: 8, blockSize: 4, past: [6] }],
  ['D 2063, Dv 17, odd block', { Hq: 3, Hkv: 1, D: 2063, Dv: 17, blockSize: 3, past: [5] }],
];

describe.each(['float32', 'float16', 'int8'] as const)('paged attention over %s blocks', (dtype) => {
  it.each(cases)('%s: the wasm engine on 1 and 2 threads equals the reference', (name, c) => {
    const want = run(reference, dtype, c, false);
    expectClose(run(wasm1, dtype, c, false), want, `${name}, 1 thread`);
    expectClose(run(wasm2, dtype, c, false), want, `${name}, 2 threads`);
  });

  it('2 threads give the same bits as 1 (a call big enough to be split: 6 units of about 0.4 M multiply-adds)', () => {
    const c: Case = { Hq: 14, Hkv: 2, D: 64, Dv: 64, blockSize: 16, past: [900, 700, 5] };
    const one = run(wasm1, dtype, c, true), two = run(wasm2, dtype, c, true);
    expect(Array.from(two.data)).toEqual(Array.from(one.data));
    expectClose(one, run(reference, dtype, c, true));
  });

  it.each(cases.slice(0, 4))('%s: stored keys and values that are NaN or beyond binary16 (read as Infinity there)', (name, c) => {
    for (const stored of ['keys', 'values'] as const) {
      expectClose(run(wasm1, dtype, c, false, stored), run(reference, dtype, c, false, stored), `${name}, ${stored}`);
    }
  });

  it.each(cases.slice(0, 4))('%s: rows with NaN, Infinity, zeros, tiny and huge queries', (name, c) => {
    const want = run(reference, dtype, c, true);
    const got = run(wasm1, dtype, c, true);
    expectClose(got, want, name);
    // a NaN query makes its row NaN; zero, tiny and huge ones stay finite (an infinite one gives NaN,
    // or zeros when every score is -Infinity: the reference decides, and expectClose compared it)
    const { Hq, Dv } = c;
    for (let r = 0; r < got.shape[0]; r++) for (let h = 0; h < Hq; h++) {
      const row = Array.from(got.data.subarray((r * Hq + h) * Dv, (r * Hq + h + 1) * Dv));
      const kind = SPECIALS[h % SPECIALS.length];
      if (kind === 'inf') continue;
      expect(row.every((x) => (kind === 'nan' ? Number.isNaN(x) : Number.isFinite(x))), `${name}: row ${r} head ${h} (${kind}): ${row.slice(0, 4)}`).toBe(true);
    }
  });
});

describe('int8 scores of the longest rows', () => {
  it('keep exact 32-bit sums where every product is the largest (D 4100: 127 · 32767 · 4100 > 2^31)', () => {
    // key row j is (j + 1) / 10 everywhere: stored as 127s with scale (j + 1) / 1270; the query is all ones
    const D = 4100, L = 6;
    for (const engine of [reference, wasm1]) {
      const keys = tensor(Float32Array.from({ length: L * D }, (_, i) => (Math.floor(i / D) + 1) / 10), [L, 1, D]);
      const values = tensor(Float32Array.from({ length: L * 4 }, (_, i) => (i % 4 === 0 ? Math.floor(i / 4) : 0)), [L, 1, 4]);
      const q = tensor(new Float32Array(D).fill(1), [1, 1, D]);
      const output = poolAttention(engine, { kvHeads: 1, headDim: D, valueDim: 4, blocks: 3, blockSize: 4, dtype: 'int8' }, [{ keys, values }],
        q, tensor(new Float32Array(D), [1, 1, D]), tensor(new Float32Array(4), [1, 1, 4]), { queryLens: [1], scale: 1 / D });
      // scores (j + 1) / 10 for the stored rows and 0 for the new one; output[0] = sum_j w_j · j
      const scores = [...Array.from({ length: L }, (_, j) => (j + 1) / 10), 0];
      const w = scores.map(Math.exp), sum = w.reduce((a, b) => a + b);
      const want = w.slice(0, L).reduce((a, wj, j) => a + wj * j, 0) / sum;
      expect(Math.abs(output.data[0] - want), `${engine === reference ? 'reference' : 'wasm'}: ${output.data[0]} vs ${want}`).toBeLessThan(1e-5);
    }
  });
});
