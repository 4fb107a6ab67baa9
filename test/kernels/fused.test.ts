// The fused (flash) attention kernel (assembly/kernels/flashAttention.ts) against the reference at its
// edges, forced with the test hook (fusedAttention, test/support.ts; which kernel runs by default:
// routing.test.ts): tiles, chunks of keys, and the lazy running max, each in its own section below.
import { describe, expect, it } from 'vitest';
import { type AttentionOptions, mask, reference, type Tensor, tensor } from '../../src/index.js';
import { expectClose, fusedAttention, poolAttention, random, wasmEngines } from '../support.js';

const [wasm1, wasm2] = await wasmEngines();

/** The wasm engine's attention output on the fused kernel, whatever the rows per kv head; checks that it ran. */
const fused = (q: Tensor, k: Tensor, v: Tensor, o?: AttentionOptions) => fusedAttention(wasm1, q, k, v, o);
const EDGES = [1, 2, 15, 16, 17, 63, 64, 65, 127, 128, 129];

// Tile edges: key lengths around the 16-key panel and 64-key block, odd query counts (rows go in
// pairs), and causal/window ranges that start and end at every alignment, so that skipped and partial
// blocks are all exercised.
describe('fused attention at tile edges', () => {
  it.each(EDGES)('Lk = %i against every query count parity, plain and causal both ways', (Lk) => {
    for (const Lq of [Lk === 1 ? 8 : 9, 16]) {
      const q = random([1, 2, Lq, 8], Lq + Lk, 2), k = random([1, 2, Lk, 8], Lk, 2), v = random([1, 2, Lk, 5], Lk + 1);
      for (const o of [{}, { causal: true }, { causal: 'bottom-right' }] as AttentionOptions[]) {
        expectClose(fused(q, k, v, o), reference.scaledDotProductAttention(q, k, v, o).output, `Lq=${Lq} ${JSON.stringify(o)}`);
      }
    }
  });

  it('windows of every width and offset skip the right blocks', () => {
    const Lq = 33, Lk = 150;
    const q = random([1, 1, Lq, 4], 1, 2), k = random([1, 1, Lk, 4], 2, 2), v = random([1, 1, Lk, 17], 3);
    const past = { pastKey: random([1, 1, 40, 4], 4, 2), pastValue: random([1, 1, 40, 17], 5) };
    for (const left of [0, 1, 15, 16, 17, 63, 64, 65, undefined]) {
      for (const right of [0, 3, 64, undefined]) {
        for (const o of [{ window: { left, right } }, { window: { left, right }, causal: true }, { window: { left, right }, ...past }] as AttentionOptions[]) {
          expectClose(fused(q, k, v, o), reference.scaledDotProductAttention(q, k, v, o).output, `left=${left} right=${right}`);
        }
      }
    }
  });

  it('validLens of every alignment with bottom-right causal', () => {
    const B = 6, Lq = 10, Lk = 130;
    const q = random([B, 2, Lq, 8], 6, 2), k = random([B, 2, Lk, 8], 7, 2), v = random([B, 2, Lk, 16], 8);
    const o: AttentionOptions = { validLens: [0, 5, 16, 64, 65, 130], causal: 'bottom-right' };
    expectClose(fused(q, k, v, o), reference.scaledDotProductAttention(q, k, v, o).output);
  });

  it('a NaN in a value that no query may see does not leak into the fused output', () => {
    const q = random([1, 2, 16, 8], 9), k = random([1, 2, 20, 8], 10), v = random([1, 2, 20, 16], 11);
    const vd = Float32Array.from(v.data);
    vd[3 * 16 + 2] = NaN; // head 0, key 3: masked for every query by the mask below
    vd[20 * 16 + 19 * 16] = Infinity; // head 1, key 19: beyond validLens
    const m = mask(Array.from({ length: 20 }, (_, j) => (j === 3 ? 0 : 1)), [20]);
    const o: AttentionOptions = { mask: m, validLens: [19], causal: 'bottom-right' };
    const got = fused(q, k, tensor(vd, v.shape), o);
    expect(got.data.every(Number.isFinite)).toBe(true);
    expectClose(got, reference.scaledDotProductAttention(q, k, tensor(vd, v.shape), o).output);
  });

  it('a NaN in one query row reaches only that row in the fused kernel', () => {
    const q = random([1, 1, 16, 8], 12), k = random([1, 1, 100, 8], 13), v = random([1, 1, 100, 4], 14);
    const qd = Float32Array.from(q.data);
    qd[5 * 8] = NaN;
    const got = fused(tensor(qd, q.shape), k, v);
    for (let r = 0; r < 16; r++) expect(Array.from(got.data.subarray(r * 4, r * 4 + 4)).every(Number.isNaN)).toBe(r === 5);
  });

  it('grouped-query heads share one packed K', () => {
    const q = random([2, 8, 17, 16], 15), k = random([2, 2, 70, 16], 16), v = random([2, 2, 70, 16], 17);
    for (const o of [{}, { causal: true }, { softcap: 2, mask: mask(random([17, 70], 18, 3).data, [17, 70]) }] as AttentionOptions[]) {
      expectClose(fused(q, k, v, o), reference.scaledDotProductAttention(q, k, v, o).output);
    }
  });
});

// The fused attention kernel's key chunks (assembly/kernels/flashAttention.ts): when a kv head's
// packed keys and values outgrow CHUNK_BYTES, the keys go in chunks and segments of up to 64 pairs
// of query rows go through each chunk, every pair's state kept in scratch. Head sizes of 512 make
// chunks of 128 keys, so that small calls cross several chunks: key lengths off the chunk, more
// pairs than a segment holds, segments that end inside a kv head and at its end, rows whose range
// misses some chunks (causal, windows, valid lengths), masks, softcap, sinks, and NaN and infinite
// values; against the reference on 1 and 2 threads (which split the segments elsewhere: same bits).
interface Case { B?: number; Hq: number; Hkv: number; Lq: number; Lk: number; E?: number; Ev?: number; options?: AttentionOptions; specials?: boolean }

const cases: [string, Case][] = [
  ['keys off the chunk (300 = 2 x 128 + 44), an odd query count', { Hq: 2, Hkv: 1, Lq: 37, Lk: 300 }],
  ['more pairs than a segment (140 rows x 2 heads per kv head)', { Hq: 2, Hkv: 1, Lq: 140, Lk: 260 }],
  ['two batches, grouped heads, causal bottom-right', { B: 2, Hq: 4, Hkv: 2, Lq: 40, Lk: 290, options: { causal: 'bottom-right' } }],
  ['causal top-left with a past (rows end in different chunks)', { Hq: 2, Hkv: 2, Lq: 50, Lk: 400, options: { causal: true } }],
  ['a window that misses whole chunks, value size apart', { Hq: 2, Hkv: 1, Lq: 30, Lk: 420, Ev: 100, options: { causal: 'bottom-right', window: { left: 70, right: 0 } } }],
  ['valid lengths per batch, one ending inside the first chunk', { B: 2, Hq: 2, Hkv: 1, Lq: 20, Lk: 300, options: { validLens: [100, 290] } }],
  ['an additive mask and softcap', { Hq: 2, Hkv: 1, Lq: 18, Lk: 270, options: { softcap: 4 } }],
  ['NaN and infinite values (some rows see them)', { Hq: 2, Hkv: 1, Lq: 24, Lk: 280, options: { causal: 'bottom-right', window: { left: 100 } }, specials: true }],
];

function inputs(c: Case, seed: number) {
  const B = c.B ?? 1, E = c.E ?? 512, Ev = c.Ev ?? E;
  const q = random([B, c.Hq, c.Lq, E], seed, 0.2), k = random([B, c.Hkv, c.Lk, E], seed + 1, 0.2), v = random([B, c.Hkv, c.Lk, Ev], seed + 2);
  if (c.specials) [[5, NaN], [150, Infinity], [260, -Infinity]].forEach(([j, x]) => { v.data[j * Ev + 3] = x; });
  const options: AttentionOptions = { ...c.options };
  if (c.options?.softcap) options.mask = random([c.Lq, c.Lk], seed + 3, 2); // float32: additive
  return { q, k, v, options };
}

describe('fused attention over chunks of keys', () => {
  it.each(cases)('%s: equals the reference on 1 and 2 threads, with the same bits', (name, c) => {
    const { q, k, v, options } = inputs(c, 10);
    const want = reference.scaledDotProductAttention(q, k, v, options).output;
    const one = fusedAttention(wasm1, q, k, v, options), two = fusedAttention(wasm2, q, k, v, options);
    expectClose(one, want, `${name}, 1 thread`);
    expect(Array.from(two.data), `${name}, 2 threads`).toEqual(Array.from(one.data));
  });

  it('a prompt over an int8 pool with a long past, sinks included, goes through chunks too', () => {
    const Hq = 4, Hkv = 2, D = 512, past = 230, n = 20;
    const sinks = random([Hq], 30);
    const outs = [wasm1, wasm2, reference].map((engine) => poolAttention(engine, { kvHeads: Hkv, headDim: D, blocks: 20, blockSize: 16, dtype: 'int8' },
      [{ keys: random([past, Hkv, D], 31, 0.2), values: random([past, Hkv, D], 32) }],
      random([n, Hq, D], 33, 0.2), random([n, Hkv, D], 34, 0.2), random([n, Hkv, D], 35), { queryLens: [n], sinks }));
    expectClose(outs[0], outs[2], '1 thread');
    expect(Array.from(outs[1].data)).toEqual(Array.from(outs[0].data));
  });
});

// The fused attention kernel's lazy running max (assembly/kernels/flashAttention.ts, scoreExpPanel and
// finishLazyBlock): a block whose scores stay within 8 (in base 2) of each row's running max takes its
// weights in the scoring pass, against that max; a panel whose scores rise further is kept raw and the
// block is finished by moving the max. Scores built to climb, fall, jump inside a block, and hold NaN
// and infinities in later blocks, so that both ways and their mix within a pair of rows are taken;
// against the reference, on 1 and 2 threads with the same bits.
describe('the fused kernel\'s lazy running max', () => {
  const E = 8, Ev = 12, LK = 700; // blocks of 128 keys: five whole ones and a partial one

  /** Both engines against the reference, and 2 threads bit for bit with 1. */
  function check(q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions = {}, label = '') {
    const want = reference.scaledDotProductAttention(q, k, v, o).output;
    const one = fusedAttention(wasm1, q, k, v, o), two = fusedAttention(wasm2, q, k, v, o);
    expectClose(one, want, `${label}, 1 thread`);
    expect(Array.from(two.data), `${label}, 2 threads`).toEqual(Array.from(one.data));
    return one;
  }

  /** Keys whose feature 0 is ramp(j) (the score of a query [c, 0, ...] is then c·ramp(j)/√E), the rest small noise. */
  function keys(ramp: (j: number) => number, seed: number): Tensor {
    const k = random([1, 1, LK, E], seed, 0.1);
    for (let j = 0; j < LK; j++) k.data[j * E] = ramp(j);
    return k;
  }

  /** Query rows [c, noise...] for each c. */
  function queries(cs: number[], seed: number): Tensor {
    const q = random([1, 1, cs.length, E], seed, 0.1);
    cs.forEach((c, i) => { q.data[i * E] = c; });
    return q;
  }

  const v = random([1, 1, LK, Ev], 3);

  it('scores that climb past the slack in every block, fall, or rise within it, in pairs that mix them', () => {
    // rows in pairs (0, 1), (2, 3), (4, 5): climbing and falling rows share a pair, so a panel kept raw
    // for one row is finished for the other without its max moving
    const k = keys((j) => 0.25 * j, 1); // base-2 scores climb by about 16 a block for c = 1, to 178 for c = 2
    for (const cs of [[1, -1, 0.02, 1, -0.5, 0.05, 2, -2], [-1, 1, 0.3, 0.3], [0.05, 0.05, -0.05, 1, 1, -1, 0.5]]) {
      check(queries(cs, 2), k, v, {}, `rows ${cs}`);
      check(queries(cs, 2), k, v, { causal: 'bottom-right' }, `rows ${cs}, causal`);
    }
  });

  it('a jump inside one panel of a later block, at its first, middle and last panel', () => {
    for (const at of [256, 256 + 48, 256 + 112, 256 + 127, 640]) {
      const k = keys((j) => (j >= at && j < at + 3 ? 60 : 1), 4);
      check(queries([1, 0.5, -1, 1], 5), k, v, {}, `jump at ${at}`);
    }
  });

  it('weights above 1 (scores that rise by less than the slack) stay accurate where they sum', () => {
    // base-2 scores rise by about 7.9 from the first block to the last; weights reach about 2^7.9
    const k = keys((j) => (7.8 * Math.sqrt(E) * j) / LK / Math.LOG2E, 6);
    const got = check(queries([1, 1, 1, -1], 7), k, v, {}, 'rise within the slack');
    expect(got.data.every(Number.isFinite)).toBe(true);
  });

  it('NaN, +Infinity and -Infinity scores in later blocks, with non-finite values where the weight is 0', () => {
    const k = keys(() => 0.5, 8), vs = Float32Array.from(v.data);
    k.data[300 * E] = NaN; // row pairs with c != 0: NaN for every row that sees key 300
    const nan = check(queries([1, 1], 9), k, v, {}, 'NaN score');
    expect(Array.from(nan.data).every(Number.isNaN)).toBe(true);
    const kInf = keys(() => 0.5, 8);
    kInf.data[400 * E] = Infinity; // +Infinity for c > 0 (NaN output, as the reference), -Infinity for c < 0
    vs[400 * Ev + 5] = NaN; // a value of weight 0 for the rows whose score is -Infinity
    check(queries([1, -1, -2, -0.5], 10), kInf, tensor(vs, v.shape), {}, 'infinite scores');
    const neg = check(queries([-1, -2], 11), kInf, tensor(vs, v.shape), {}, '-Infinity score, NaN value');
    expect(Array.from(neg.data).every(Number.isFinite)).toBe(true);
    // a weight of 0 (e^-35355, 0 in float64 too) in one row of a pair only, in a block that takes the
    // one pass: that row alone must skip the NaN value
    const kLow = keys(() => 0.5, 8);
    kLow.data[400 * E] = -1e5;
    const low = check(queries([1, -1e-5], 12), kLow, tensor(vs, v.shape), {}, 'a zero weight in one row');
    expect(Array.from(low.data.subarray(0, Ev)).every(Number.isFinite)).toBe(true);
    const low1 = check(queries([-1e-5, 1], 12), kLow, tensor(vs, v.shape), {}, 'a zero weight in the other row');
    expect(Array.from(low1.data.subarray(Ev)).every(Number.isFinite)).toBe(true);
  });

  it('a sink logit above every score: blocks take their weights in one pass from the first', () => {
    const Hq = 2, Hkv = 1, past = 600, n = 20;
    const sinks = tensor(Float32Array.of(20, -3), [Hq]);
    const outs = [wasm1, wasm2, reference].map((engine) => poolAttention(engine, { kvHeads: Hkv, headDim: E, blocks: 48, blockSize: 16 },
      [{ keys: random([past, Hkv, E], 12), values: random([past, Hkv, E], 13) }],
      random([n, Hq, E], 14), random([n, Hkv, E], 15), random([n, Hkv, E], 16), { queryLens: [n], sinks }));
    expectClose(outs[0], outs[2], '1 thread');
    expect(Array.from(outs[1].data)).toEqual(Array.from(outs[0].data));
  });
});
