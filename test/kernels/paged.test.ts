// The paged attention kernel (assembly/kernels/pagedAttention.ts) against the reference at its edges,
// in two sections below: grouped-query decode rows of scaledDotProductAttention, and batchAttention's
// decode rows over KV pool blocks of each storage format. Which kernel runs by default:
// routing.test.ts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type AttentionOptions, type Engine, mask, reference, type Tensor, tensor } from '../../src/index.js';
import { expectClose, fillPool, kernelProbe, poolAttention, random, randomPasts, rng, wasmEngines } from '../support.js';

const [wasm, wasm2] = await wasmEngines();

// Grouped-query decode rows on the paged kernel (src/wasm/pagedAttention.ts): one query row per
// head, several query heads per kv head, over tensors, past ++ new and a KVCache, against the
// reference. The shapes walk the loops' edges: the paged kernel's runs of 256 keys, the score pairs
// of two heads (odd groups leave one), SIMD tails of E and Ev; every option the route takes, and
// the calls it must leave to the other kernels.

/** The call on `engine`, which must have run on the paged kernel. */
function paged(engine: Engine, q: Tensor, k: Tensor, v: Tensor, o?: AttentionOptions): Tensor {
  const probe = kernelProbe();
  const { output } = engine.scaledDotProductAttention(q, k, v, { ...o, ...probe.options });
  if (engine !== reference) expect(probe.ran, 'kernel').toEqual(['paged']);
  return output;
}

/** The call on both wasm engines (the same bits) and the reference (within tolerance). */
function check(q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions | undefined, label: string): void {
  const want = reference.scaledDotProductAttention(q, k, v, o).output;
  const got = paged(wasm, q, k, v, o);
  expectClose(got, want, label);
  expect(Array.from(paged(wasm2, q, k, v, o).data), `${label}: 2 threads`).toEqual(Array.from(got.data));
}

const GROUPS = [2, 3, 4, 7, 8, 16];
const LENGTHS = [1, 2, 5, 63, 64, 65, 129, 255, 256, 257, 513];
const FEATURES: [number, number][] = [[8, 8], [3, 5], [17, 65], [64, 64], [1, 16]];

describe('grouped-query decode on the paged kernel', () => {
  it.each(GROUPS)('%i query heads a kv head, every key length and feature size, 1 and 3 batch rows', (group) => {
    let seed = group * 1000;
    for (const [i, Lk] of LENGTHS.entries()) {
      const [E, Ev] = FEATURES[i % FEATURES.length];
      for (const [B, Hkv] of [[1, 1], [3, 2]]) {
        const q = random([B, Hkv * group, 1, E], seed++), k = random([B, Hkv, Lk, E], seed++), v = random([B, Hkv, Lk, Ev], seed++);
        check(q, k, v, undefined, `group ${group}, B ${B}, Hkv ${Hkv}, Lk ${Lk}, E ${E}, Ev ${Ev}`);
      }
    }
  });

  it('causal both ways, windows, softcap, scale and validLens give the reference results', () => {
    const B = 3, Hkv = 2, Hq = 6, Lk = 150, E = 16;
    const q = random([B, Hq, 1, E], 1, 3), k = random([B, Hkv, Lk, E], 2), v = random([B, Hkv, Lk, E], 3);
    const options: AttentionOptions[] = [
      { causal: true }, { causal: 'bottom-right' }, { causal: 'top-left', window: { left: 0 } },
      { causal: 'bottom-right', window: { left: 70 } }, { window: { left: 3, right: 5 } }, { window: { right: 0 } },
      { softcap: 2 }, { softcap: 0.5, causal: 'bottom-right', window: { left: 64 } }, { scale: 1 }, { scale: 40 },
      { validLens: [150, 0, 65] }, { validLens: [1, 64, 129], causal: 'bottom-right' }, { validLens: [0, 0, 0] },
      { validLens: [100, 2, 150], causal: 'bottom-right', window: { left: 10, right: 3 }, softcap: 3 },
    ];
    for (const o of options) check(q, k, v, o, JSON.stringify(o));
  });

  it('a past given as pastKey/pastValue: its queries sit after it', () => {
    const q = random([2, 8, 1, 32], 4), k = random([2, 2, 1, 32], 5), v = random([2, 2, 1, 24], 6);
    const pastKey = random([2, 2, 90, 32], 7), pastValue = random([2, 2, 90, 24], 8);
    for (const o of [{}, { causal: true }, { causal: 'bottom-right' }, { window: { left: 20 } }, { window: { right: 2 } }] as AttentionOptions[]) {
      const opts = { ...o, pastKey, pastValue };
      const want = reference.scaledDotProductAttention(q, k, v, opts);
      const probe = kernelProbe();
      const got = wasm.scaledDotProductAttention(q, k, v, { ...opts, ...probe.options });
      expect(probe.ran).toEqual(['paged']);
      expectClose(got.output, want.output, JSON.stringify(o));
      expectClose(got.presentKey, want.presentKey, 'presentKey');
    }
  });

  it('decoding over a KVCache token by token equals the reference, on 1 and 2 threads', () => {
    const B = 2, Hkv = 2, Hq = 14, E = 64, steps = 70;
    const prompt = random([B, Hkv, 60, E], 9);
    const caches = [reference, wasm, wasm2].map((e) => {
      const cache = e.createKVCache({ batch: B, kvHeads: Hkv, headDim: E, capacity: 200 });
      e.scaledDotProductAttention(random([B, Hq, 60, E], 10), prompt, prompt, { cache });
      return cache;
    });
    for (let step = 0; step < steps; step++) {
      const q = random([B, Hq, 1, E], 100 + step), k = random([B, Hkv, 1, E], 300 + step), v = random([B, Hkv, 1, E], 500 + step);
      const o: AttentionOptions = step % 3 === 0 ? { window: { left: 50 }, softcap: 4 } : {};
      const want = reference.scaledDotProductAttention(q, k, v, { ...o, cache: caches[0] }).output;
      const one = paged(wasm, q, k, v, { ...o, cache: caches[1] });
      const two = paged(wasm2, q, k, v, { ...o, cache: caches[2] });
      expectClose(one, want, `step ${step}`);
      expect(Array.from(two.data), `step ${step}: 2 threads`).toEqual(Array.from(one.data));
    }
    expect(caches.map((c) => c.length)).toEqual([130, 130, 130]);
  });

  it('a call big enough to split over 2 threads gives the same bits as on 1', () => {
    const q = random([1, 16, 1, 64], 11), k = random([1, 4, 4096, 64], 12), v = random([1, 4, 4096, 64], 13);
    check(q, k, v, undefined, 'Lk 4096, 16 heads over 4');
    check(q, k, v, { causal: 'bottom-right', window: { left: 1000 } }, 'windowed');
  });

  it('NaN and infinite scores and values: where the reference has them, and only there', () => {
    const B = 1, Hkv = 2, Hq = 4, Lk = 70, E = 8;
    const base = () => [random([B, Hq, 1, E], 14), random([B, Hkv, Lk, E], 15), random([B, Hkv, Lk, E], 16)] as const;
    // a NaN value inside the window, one outside it, an infinite key, an infinite and a huge query
    const [q1, k1, v1] = base();
    v1.data[(0 * Lk + 69) * E + 2] = NaN; // kv head 0, key 69
    v1.data[(1 * Lk + 3) * E + 1] = NaN; // kv head 1, key 3: outside a left window of 40
    check(q1, k1, v1, undefined, 'NaN values');
    check(q1, k1, v1, { causal: 'bottom-right', window: { left: 40 } }, 'NaN outside the window');
    const [q2, k2, v2] = base();
    k2.data[(1 * Lk + 10) * E] = Infinity;
    check(q2, k2, v2, undefined, 'an infinite key');
    v2.data[(0 * Lk + 5) * E] = -Infinity;
    check(q2, k2, v2, undefined, 'an infinite value');
    const [q3, k3, v3] = base();
    q3.data[3] = Infinity;
    for (let i = E; i < 2 * E; i++) q3.data[i] *= 1e4;
    check(q3, k3, v3, undefined, 'infinite and huge queries');
    for (let i = 0; i < q3.data.length; i++) q3.data[i] = 1e-30;
    check(q3, k3, v3, undefined, 'tiny queries');
  });

  it('leaves to the other kernels what it cannot run, and the test hook says so', () => {
    const q = random([1, 4, 1, 8], 17), k = random([1, 2, 30, 8], 18), v = random([1, 2, 30, 8], 19);
    const runs = (o: AttentionOptions | undefined, qq = q, kk = k, vv = v) => {
      const probe = kernelProbe();
      expectClose(wasm.scaledDotProductAttention(qq, kk, vv, { ...o, ...probe.options }).output, reference.scaledDotProductAttention(qq, kk, vv, o).output);
      return probe.last();
    };
    expect(runs(undefined)).toBe('paged');
    expect(runs({ mask: mask(Array.from(random([1, 1, 1, 30], 20).data, (x) => x > 0), [1, 1, 1, 30]) })).toBe('row');
    expect(runs({ returnWeights: true })).toBe('row');
    const mha = random([1, 2, 1, 8], 21);
    expect(runs(undefined, mha)).toBe('row'); // one query head a kv head
    expect(runs(undefined, random([1, 4, 2, 8], 22))).toBe('row'); // two query rows
    expect(runs(undefined, random([1, 16, 2, 8], 23))).toBe('fused'); // 16 rows a kv head
    expect(() => wasm.scaledDotProductAttention(mha, k, v, kernelProbe('paged').options)).toThrow(/paged kernel on a call it cannot run/);
    expect(runs(undefined)).toBe('paged'); // the engine is still usable
  });
});

describe('a KV pool of blocks longer than a run of the paged kernel', () => {
  it.each([100, 256, 257, 300])('blocks of %i positions, decode and a prompt, against the reference', (blockSize) => {
    const Hkv = 2, Hq = 6, D = 16;
    const pools = [reference, wasm, wasm2].map((e) => e.createKVPool({ kvHeads: Hkv, headDim: D, blocks: 16, blockSize }));
    const pasts = [{ keys: random([700, Hkv, D], 24), values: random([700, Hkv, D], 25) }, { keys: random([7, Hkv, D], 26), values: random([7, Hkv, D], 27) }];
    const seqs = pools.map((p) => fillPool(p, pasts));
    for (const [step, queryLens] of [[0, [1, 1]], [1, [3, 1]], [2, [1, 20]]] as const) {
      const T = queryLens[0] + queryLens[1];
      const q = random([T, Hq, D], 30 + step), k = random([T, Hkv, D], 40 + step), v = random([T, Hkv, D], 50 + step);
      const outs = [reference, wasm, wasm2].map((e, i) => e.batchAttention(q, k, v, { sequences: seqs[i], queryLens: [...queryLens], window: step === 1 ? { left: 100 } : undefined }).output);
      expectClose(outs[1], outs[0], `blocks of ${blockSize}, step ${step}`);
      expect(Array.from(outs[2].data), '2 threads').toEqual(Array.from(outs[1].data));
    }
    pools.forEach((p) => p.dispose());
  });
});

describe('grouped-query decode: random calls (fast-check)', () => {
  const RUNS = Number(process.env.FC_RUNS ?? 60), SEED = Number(process.env.FC_SEED ?? 20261201);
  const decodeCase = fc.record({
    B: fc.integer({ min: 1, max: 3 }), Hkv: fc.integer({ min: 1, max: 3 }), group: fc.integer({ min: 2, max: 9 }),
    Lnew: fc.integer({ min: 1, max: 300 }), Lpast: fc.constantFrom(0, 0, 5, 256), E: fc.integer({ min: 1, max: 20 }), Ev: fc.integer({ min: 1, max: 20 }),
    causal: fc.constantFrom<AttentionOptions['causal']>(undefined, true, 'bottom-right'),
    left: fc.option(fc.integer({ min: 0, max: 300 }), { nil: undefined }), right: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
    softcap: fc.constantFrom(0, 0, 0.7, 5), validLens: fc.boolean(), scaleBig: fc.boolean(), cache: fc.boolean(), seed: fc.integer({ min: 1, max: 1e9 }),
  });
  it('equals the reference, over tensors, past ++ new and a KVCache, 2 threads with the same bits', () => {
    fc.assert(fc.property(decodeCase, (c) => {
      const Hq = c.Hkv * c.group, Lk = c.Lpast + c.Lnew, r = rng(c.seed);
      const q = random([c.B, Hq, 1, c.E], c.seed, c.scaleBig ? 30 : 1), k = random([c.B, c.Hkv, c.Lnew, c.E], c.seed + 1), v = random([c.B, c.Hkv, c.Lnew, c.Ev], c.seed + 2);
      const o: AttentionOptions = { causal: c.causal, softcap: c.softcap };
      if (c.left !== undefined || c.right !== undefined) o.window = { left: c.left, right: c.right };
      if (c.validLens && !c.cache) o.validLens = Array.from({ length: c.B }, () => Math.floor(r() * (Lk + 1)));
      const past = c.Lpast > 0 ? [random([c.B, c.Hkv, c.Lpast, c.E], c.seed + 3), random([c.B, c.Hkv, c.Lpast, c.Ev], c.seed + 4)] as const : null;
      if (!c.cache) {
        const opts = past ? { ...o, pastKey: past[0], pastValue: past[1] } : o;
        check(q, k, v, opts, JSON.stringify(c));
        return;
      }
      // the cache holds the past (and a prompt of Lpast rows put it there), then the new rows
      const results = [reference, wasm, wasm2].map((e) => {
        const cache = e.createKVCache({ batch: c.B, kvHeads: c.Hkv, headDim: c.E, valueDim: c.Ev, capacity: Lk + 3 });
        if (past) e.scaledDotProductAttention(random([c.B, Hq, c.Lpast, c.E], c.seed + 5), past[0], past[1], { cache });
        const probe = kernelProbe();
        const output = e.scaledDotProductAttention(q, k, v, { ...o, cache, ...probe.options }).output;
        if (e !== reference) expect(probe.ran, 'kernel').toEqual(['paged']);
        cache.dispose();
        return output;
      });
      expectClose(results[1], results[0], JSON.stringify(c));
      expect(Array.from(results[2].data), '2 threads').toEqual(Array.from(results[1].data));
    }), { numRuns: RUNS, seed: SEED });
  });
});

// The paged attention kernels' inner loops, each storage format against the reference engine (the
// readable definition): two query heads at once over float32 blocks, the int8 scores through 16-bit
// queries and integer dot products (chunked past 2048 elements), binary16 widened eight at a time
// (or, for 4+ query heads a kv head, each run widened once into float32 rows, 16 at a time).
// Sizes sit at and around the loops' steps (4 keys, 8 and 16 elements, 2 heads), and the queries hold
// the rows those loops must hand to a slower path: Infinity, NaN, zero, too small to scale, huge.
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
    expectClose(run(wasm, dtype, c, false), want, `${name}, 1 thread`);
    expectClose(run(wasm2, dtype, c, false), want, `${name}, 2 threads`);
  });

  it('2 threads give the same bits as 1 (a call big enough to be split: 6 units of about 0.4 M multiply-adds)', () => {
    const c: Case = { Hq: 14, Hkv: 2, D: 64, Dv: 64, blockSize: 16, past: [900, 700, 5] };
    const one = run(wasm, dtype, c, true), two = run(wasm2, dtype, c, true);
    expect(Array.from(two.data)).toEqual(Array.from(one.data));
    expectClose(one, run(reference, dtype, c, true));
  });

  it.each(cases.slice(0, 4))('%s: stored keys and values that are NaN or beyond binary16 (read as Infinity there)', (name, c) => {
    for (const stored of ['keys', 'values'] as const) {
      expectClose(run(wasm, dtype, c, false, stored), run(reference, dtype, c, false, stored), `${name}, ${stored}`);
    }
  });

  it.each(cases.slice(0, 4))('%s: rows with NaN, Infinity, zeros, tiny and huge queries', (name, c) => {
    const want = run(reference, dtype, c, true);
    const got = run(wasm, dtype, c, true);
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
    for (const engine of [reference, wasm]) {
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
