// The fused attention kernel's lazy running max (assembly/kernels/flashAttention.ts, scoreExpPanel and
// finishLazyBlock): a block whose scores stay within 8 (in base 2) of each row's running max takes its
// weights in the scoring pass, against that max; a panel whose scores rise further is kept raw and the
// block is finished by moving the max. Scores built to climb, fall, jump inside a block, and hold NaN
// and infinities in later blocks, so that both ways and their mix within a pair of rows are taken;
// against the reference, on 1 and 2 threads with the same bits.
import { describe, expect, it } from 'vitest';
import { type AttentionOptions, reference, type Tensor, tensor } from '../src/index.js';
import { expectClose, fusedAttention, poolAttention, random, wasmEngines } from './support.js';

const [wasm1, wasm2] = await wasmEngines();

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

describe('the fused kernel\'s lazy running max', () => {
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
