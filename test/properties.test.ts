// Property tests (fast-check): random shapes (0 and 1 included), options and masks.
//   - the wasm engine equals the reference within the tolerance of support.ts, on every op;
//   - softmax rows sum to 1, or to 0 when nothing is allowed (and then the output row is zero);
//   - permuting keys and values together leaves the output unchanged;
//   - adding a constant to every score of a row leaves its weights unchanged;
//   - a larger w in kernel regression puts more weight on the nearest key.
// A failure prints the smallest configuration fast-check shrank it to; run it again with
// FC_SEED=<seed> (and FC_RUNS=<n> to search harder). The seed is fixed by default so that CI is
// deterministic.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type AttentionOptions, type CausalMode, type Mask, type MultiHeadOptions, type MultiHeadParams, mask, type Tensor, tensor } from '../src/index.js';
import { engines, expectClose, random, rng } from './support.js';

const [reference, wasm] = await engines();
const each = [reference, wasm].map((e) => [e.name, e] as const);

const RUNS = Number(process.env.FC_RUNS ?? 200);
const SEED = Number(process.env.FC_SEED ?? 20261125);
/** A float option in [0, max]: 0, or a magnitude float32 kernels compute with (the engines refuse denormal-small ones). */
const float32Range = (max: number) => fc.oneof(fc.constant(0), fc.double({ min: 2 ** -60, max, noNaN: true }));
const check = <T>(arb: fc.Arbitrary<T>, predicate: (value: T) => void, runs = RUNS) =>
  fc.assert(fc.property(arb, predicate), { numRuns: runs, seed: SEED });

/** Tolerance for an invariant on one engine: the same as wasm vs reference (support.ts). */
const TOL = 1e-4;

const size = (max: number) => fc.integer({ min: 0, max });
const positive = (max: number) => fc.integer({ min: 1, max });
const seed = fc.integer({ min: 1, max: 0x7fffffff });

/** Uniform values in [-scale, scale), with a fraction `minusInf` of them -Infinity. */
function values(shape: number[], s: number, scale = 1, minusInf = 0): Float32Array {
  const data = random(shape, s, scale).data;
  if (minusInf > 0) {
    const r = rng(s ^ 0x5bd1e995);
    for (let i = 0; i < data.length; i++) if (r() < minusInf) data[i] = -Infinity;
  }
  return data;
}

/** Row sums over the last axis (`n` wide) of a tensor. */
function rowSums(t: Tensor, n: number): number[] {
  const sums: number[] = [];
  for (let i = 0; i < t.data.length; i += n) sums.push(t.data.subarray(i, i + n).reduce((a, b) => a + b, 0));
  return sums;
}

/** Every row (n wide) of weights sums to 1, or is all zero, and every weight is in [0, 1]. */
function expectDistributions(weights: Tensor, n: number, label: string): number[] {
  const sums = rowSums(weights, n);
  sums.forEach((s, r) => {
    if (!(Math.abs(s - 1) <= TOL || s === 0)) throw new Error(`${label}: row ${r} of ${n} sums to ${s}`);
  });
  for (const w of weights.data) if (!(w >= 0 && w <= 1 + TOL)) throw new Error(`${label}: weight ${w} outside [0, 1]`);
  return sums;
}

/** `data` gathered along the axis of length `L` (of stride `inner`) by `perm`: out[..., j, ...] = data[..., perm[j], ...]. */
function permuteAxis(data: Float32Array | Uint8Array, L: number, inner: number, perm: number[]): typeof data {
  const out = data.slice();
  const outer = L === 0 || inner === 0 ? 0 : data.length / (L * inner);
  for (let o = 0; o < outer; o++)
    for (let j = 0; j < L; j++)
      out.set(data.subarray((o * L + perm[j]) * inner, (o * L + perm[j] + 1) * inner), (o * L + j) * inner);
  return out;
}

const permutation = (n: number, s: number): number[] => {
  const r = rng(s), p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) { const j = Math.floor(r() * (i + 1)); [p[i], p[j]] = [p[j], p[i]]; }
  return p;
};

// ---------------------------------------------------------------- matmul

const matmulCase = fc.record({
  lead: fc.array(positive(3), { maxLength: 2 }),
  aOnes: fc.array(fc.boolean(), { minLength: 2, maxLength: 2 }), // which leading axes of a are 1 (broadcast)
  bOnes: fc.array(fc.boolean(), { minLength: 2, maxLength: 2 }),
  bDrop: size(2), // leading axes of b dropped (broadcast)
  M: size(9), K: size(20), N: size(19),
  aVector: fc.boolean(), bVector: fc.boolean(), transposeB: fc.boolean(), seed,
});

describe('matmul', () => {
  it('wasm equals reference: broadcast batches, 1-D operands, transposeB, sizes 0 and 1', () => {
    check(matmulCase, (c) => {
      const aLead = c.lead.map((d, i) => (c.aOnes[i] ? 1 : d));
      const bLead = c.lead.map((d, i) => (c.bOnes[i] ? 1 : d)).slice(c.bDrop);
      const aShape = c.aVector ? [c.K] : [...aLead, c.M, c.K];
      const bInner = c.transposeB ? [c.N, c.K] : [c.K, c.N];
      const bShape = c.bVector ? [c.K] : [...bLead, ...bInner];
      const a = tensor(values(aShape, c.seed), aShape), b = tensor(values(bShape, c.seed + 1), bShape);
      expectClose(wasm.matmul(a, b, { transposeB: c.transposeB }), reference.matmul(a, b, { transposeB: c.transposeB }), 'matmul');
    });
  });
});

// ---------------------------------------------------------------- softmax and maskedSoftmax

const softmaxCase = fc.record({ lead: fc.array(size(4), { maxLength: 2 }), n: size(40), minusInf: fc.constantFrom(0, 0.3, 0.9), scale: fc.constantFrom(1, 30), seed });
const shiftCase = fc.record({ rows: size(5), n: positive(40), seed, shift: fc.double({ min: -60, max: 60, noNaN: true }) });

describe('softmax', () => {
  it('wasm equals reference', () => {
    check(softmaxCase, (c) => {
      const shape = [...c.lead, c.n], x = tensor(values(shape, c.seed, c.scale, c.minusInf), shape);
      expectClose(wasm.softmax(x), reference.softmax(x), 'softmax');
    });
  });

  it.each(each)('rows sum to 1, or to 0 when every entry is -Infinity, on %s', (_, engine) => {
    check(softmaxCase, (c) => {
      const shape = [...c.lead, c.n], x = tensor(values(shape, c.seed, c.scale, c.minusInf), shape);
      const y = engine.softmax(x);
      const sums = expectDistributions(y, c.n, 'softmax');
      sums.forEach((s, r) => expect(s === 0).toBe(x.data.subarray(r * c.n, (r + 1) * c.n).every((v) => v === -Infinity)));
    });
  });

  it.each(each)('adding a constant to every entry of a row leaves the row unchanged, on %s', (_, engine) => {
    check(shiftCase, (c) => {
      const x = tensor(values([c.rows, c.n], c.seed, 4), [c.rows, c.n]);
      const shifted = tensor(x.data.map((v) => v + c.shift), x.shape);
      expectClose(engine.softmax(shifted), engine.softmax(x), `shift ${c.shift}`);
    });
  });
});

const maskedCase = fc.record({ B: size(3), Lq: size(4), Lk: size(20), perRow: fc.boolean(), seed });

describe('maskedSoftmax', () => {
  it.each(each)('rows sum to 1 over the valid length (0 for length 0), wasm equals reference, on %s', (_, engine) => {
    check(maskedCase, (c) => {
      const x = tensor(values([c.B, c.Lq, c.Lk], c.seed, 5), [c.B, c.Lq, c.Lk]);
      const r = rng(c.seed);
      const lens = Array.from({ length: c.perRow ? c.B * c.Lq : c.B }, () => Math.floor(r() * (c.Lk + 1)));
      const y = engine.maskedSoftmax(x, lens);
      const sums = expectDistributions(y, c.Lk, 'maskedSoftmax');
      const rowLen = (row: number) => (c.perRow ? lens[row] : lens[Math.floor(row / c.Lq)]);
      sums.forEach((s, row) => {
        expect(s === 0).toBe(rowLen(row) === 0);
        for (let j = rowLen(row); j < c.Lk; j++) expect(y.data[row * c.Lk + j]).toBe(0);
      });
      if (engine === wasm) expectClose(y, reference.maskedSoftmax(x, lens), 'maskedSoftmax');
    });
  });
});

// ---------------------------------------------------------------- scaled dot-product attention

const attentionCase = fc.record({
  rank: fc.constantFrom(3, 4),
  B: size(2), Hkv: size(3), group: positive(3), Lq: size(9), Lnew: size(11), Lpast: fc.constantFrom(0, 0, 1, 4),
  E: size(9), Ev: size(9),
  scale: fc.option(float32Range(2), { nil: undefined }),
  softcap: fc.option(fc.constantFrom(0, 0.5, 3), { nil: undefined }),
  causal: fc.constantFrom<CausalMode | undefined>(undefined, false, true, 'top-left', 'bottom-right'),
  left: fc.option(size(5), { nil: undefined }), right: fc.option(size(5), { nil: undefined }), window: fc.boolean(),
  validLens: fc.boolean(),
  maskKind: fc.constantFrom('none', 'boolean', 'additive'),
  maskKeep: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }), // which axes of the mask are full (else 1)
  maskDrop: size(4), // leading mask axes dropped
  returnWeights: fc.boolean(),
  seed,
});
type AttentionCase = typeof attentionCase extends fc.Arbitrary<infer T> ? T : never;

interface Built { q: Tensor; k: Tensor; v: Tensor; options: AttentionOptions; Hq: number; Lk: number }

function buildAttention(c: AttentionCase): Built {
  const Hkv = c.rank === 3 ? 1 : c.Hkv, Hq = c.rank === 3 ? 1 : Hkv * c.group;
  const heads = (h: number) => (c.rank === 3 ? [] : [h]);
  const Lk = c.Lpast + c.Lnew;
  const options: AttentionOptions = { scale: c.scale, softcap: c.softcap, causal: c.causal, returnWeights: c.returnWeights };
  if (c.window) options.window = { left: c.left, right: c.right };
  const r = rng(c.seed);
  if (c.validLens) options.validLens = Array.from({ length: c.B }, () => Math.floor(r() * (Lk + 1)));
  if (c.Lpast > 0) {
    const pk = [c.B, ...heads(Hkv), c.Lpast, c.E], pv = [c.B, ...heads(Hkv), c.Lpast, c.Ev];
    options.pastKey = tensor(values(pk, c.seed + 3), pk);
    options.pastValue = tensor(values(pv, c.seed + 4), pv);
  }
  if (c.maskKind !== 'none') {
    const target = [c.B, ...heads(Hq), c.Lq, Lk];
    const shape = target.map((d, i) => (c.maskKeep[i] ? d : 1)).slice(Math.min(c.maskDrop, target.length));
    const n = shape.reduce((a, b) => a * b, 1);
    options.mask = c.maskKind === 'boolean'
      ? { data: Uint8Array.from({ length: n }, () => (r() < 0.7 ? 1 : 0)), shape }
      : { data: values(shape, c.seed + 5, 3, 0.2), shape };
  }
  const qs = [c.B, ...heads(Hq), c.Lq, c.E], ks = [c.B, ...heads(Hkv), c.Lnew, c.E], vs = [c.B, ...heads(Hkv), c.Lnew, c.Ev];
  return { q: tensor(values(qs, c.seed), qs), k: tensor(values(ks, c.seed + 1), ks), v: tensor(values(vs, c.seed + 2), vs), options, Hq, Lk };
}

describe('scaledDotProductAttention', () => {
  it('wasm equals reference: grouped heads, 3-D and 4-D, masks, causal, window, validLens, softcap, KV cache', () => {
    check(attentionCase, (c) => {
      const { q, k, v, options } = buildAttention(c);
      const got = wasm.scaledDotProductAttention(q, k, v, options);
      const want = reference.scaledDotProductAttention(q, k, v, options);
      expectClose(got.output, want.output, 'output');
      if (c.returnWeights) expectClose(got.weights, want.weights, 'weights');
      else expect(got.weights).toBeUndefined();
      if (c.Lpast > 0) {
        expectClose(got.presentKey, want.presentKey, 'presentKey');
        expectClose(got.presentValue, want.presentValue, 'presentValue');
      }
    }, 2 * RUNS);
  });

  it.each(each)('weights rows sum to 1, or to 0 with an all-zero output row when no key is allowed, on %s', (_, engine) => {
    check(attentionCase, (c) => {
      const { q, k, v, options, Lk } = buildAttention(c);
      const { output, weights } = engine.scaledDotProductAttention(q, k, v, { ...options, returnWeights: true });
      const sums = expectDistributions(weights!, Lk, 'weights');
      sums.forEach((s, row) => {
        if (s === 0) for (let t = 0; t < c.Ev; t++) expect(output.data[row * c.Ev + t]).toBe(0);
      });
    });
  });

  const permuteCase = fc.record({
    B: size(2), Hkv: positive(2), group: positive(2), Lq: size(6), Lk: size(12), E: size(8), Ev: size(8),
    maskKind: fc.constantFrom('none', 'boolean', 'additive'), perHeadMask: fc.boolean(), seed,
  });

  it.each(each)('permuting keys and values (and the mask over keys) together leaves the output unchanged, on %s', (_, engine) => {
    check(permuteCase, (c) => {
      const Hq = c.Hkv * c.group;
      const qs = [c.B, Hq, c.Lq, c.E], ks = [c.B, c.Hkv, c.Lk, c.E], vs = [c.B, c.Hkv, c.Lk, c.Ev];
      const q = tensor(values(qs, c.seed), qs), k = tensor(values(ks, c.seed + 1), ks), v = tensor(values(vs, c.seed + 2), vs);
      const ms = [c.B, c.perHeadMask ? Hq : 1, c.Lq, c.Lk];
      const r = rng(c.seed + 3), n = ms.reduce((a, b) => a * b, 1);
      const m: Mask | undefined = c.maskKind === 'none' ? undefined : c.maskKind === 'boolean'
        ? { data: Uint8Array.from({ length: n }, () => (r() < 0.6 ? 1 : 0)), shape: ms }
        : { data: values(ms, c.seed + 4, 2, 0.2), shape: ms };
      const perm = permutation(c.Lk, c.seed + 5);
      const permuted = (t: Tensor) => tensor(permuteAxis(t.data, c.Lk, t.shape[3], perm), t.shape);
      const pm: Mask | undefined = m && { data: permuteAxis(m.data, c.Lk, 1, perm), shape: ms };
      const a = engine.scaledDotProductAttention(q, k, v, { mask: m, returnWeights: true });
      const b = engine.scaledDotProductAttention(q, permuted(k), permuted(v), { mask: pm, returnWeights: true });
      expectClose(b.output, a.output, 'output');
      expectClose(b.weights, tensor(permuteAxis(a.weights!.data, c.Lk, 1, perm), a.weights!.shape), 'weights, permuted');
    });
  });

  it.each(each)('adding a constant to every score of a row (a [B, H, Lq, 1] additive mask) leaves its weights unchanged, on %s', (_, engine) => {
    const shiftRows = fc.record({ B: size(2), H: positive(3), Lq: size(6), Lk: positive(12), E: size(8), causal: fc.boolean(), seed });
    check(shiftRows, (c) => {
      const qs = [c.B, c.H, c.Lq, c.E], ks = [c.B, c.H, c.Lk, c.E];
      const q = tensor(values(qs, c.seed), qs), k = tensor(values(ks, c.seed + 1), ks), v = tensor(values(ks, c.seed + 2), ks);
      const shift: Mask = { data: values([c.B, c.H, c.Lq, 1], c.seed + 3, 40), shape: [c.B, c.H, c.Lq, 1] };
      const plain = engine.scaledDotProductAttention(q, k, v, { causal: c.causal, returnWeights: true });
      const shifted = engine.scaledDotProductAttention(q, k, v, { causal: c.causal, mask: shift, returnWeights: true });
      expectClose(shifted.weights, plain.weights, 'weights');
      expectClose(shifted.output, plain.output, 'output');
    });
  });
});

// ---------------------------------------------------------------- kernel regression

const regressionCase = fc.record({
  n: size(12), m: size(40), d: fc.constantFrom(0, 1, 2, 3), dv: fc.constantFrom(0, 1, 2, 5),
  w: fc.option(float32Range(6), { nil: undefined }), returnWeights: fc.boolean(), seed,
});

/** d = 0 means 1-D queries and keys ([n], [m]); dv = 0 means 1-D values ([m]). */
function buildRegression(c: { n: number; m: number; d: number; dv: number; seed: number }) {
  const qs = c.d === 0 ? [c.n] : [c.n, c.d], ks = c.d === 0 ? [c.m] : [c.m, c.d], vs = c.dv === 0 ? [c.m] : [c.m, c.dv];
  return { q: tensor(values(qs, c.seed, 2), qs), k: tensor(values(ks, c.seed + 1, 2), ks), v: tensor(values(vs, c.seed + 2), vs) };
}

describe('kernelRegression', () => {
  it('wasm equals reference', () => {
    check(regressionCase, (c) => {
      const { q, k, v } = buildRegression(c);
      const got = wasm.kernelRegression(q, k, v, { w: c.w, returnWeights: c.returnWeights });
      const want = reference.kernelRegression(q, k, v, { w: c.w, returnWeights: c.returnWeights });
      expectClose(got.output, want.output, 'output');
      if (c.returnWeights) expectClose(got.weights, want.weights, 'weights');
    });
  });

  it.each(each)('a larger w puts at least as much weight on the nearest key, on %s', (_, engine) => {
    const widths = fc.record({
      n: positive(6), m: positive(30), d: fc.constantFrom(0, 1, 3), seed,
      w: float32Range(4), more: fc.double({ min: 0.05, max: 4, noNaN: true }),
    });
    check(widths, (c) => {
      const { q, k, v } = buildRegression({ ...c, dv: 0 });
      const D = c.d === 0 ? 1 : c.d;
      const narrow = engine.kernelRegression(q, k, v, { w: c.w + c.more, returnWeights: true }).weights!;
      const wide = engine.kernelRegression(q, k, v, { w: c.w, returnWeights: true }).weights!;
      for (let i = 0; i < c.n; i++) {
        // the nearest key (ties: each of them gains)
        const dist = Array.from({ length: c.m }, (_, j) => {
          let s = 0;
          for (let t = 0; t < D; t++) s += (q.data[i * D + t] - k.data[j * D + t]) ** 2;
          return s;
        });
        const nearest = dist.indexOf(Math.min(...dist));
        const before = wide.data[i * c.m + nearest], after = narrow.data[i * c.m + nearest];
        if (!(after >= before - 1e-6)) throw new Error(`query ${i}: weight on the nearest key fell from ${before} (w = ${c.w}) to ${after} (w = ${c.w + c.more})`);
      }
    });
  });

  it.each(each)('permuting keys and values together leaves the output unchanged, on %s', (_, engine) => {
    check(regressionCase, (c) => {
      const { q, k, v } = buildRegression(c);
      const perm = permutation(c.m, c.seed + 7);
      const pk = tensor(permuteAxis(k.data, c.m, Math.max(c.d, 1), perm), k.shape), pv = tensor(permuteAxis(v.data, c.m, Math.max(c.dv, 1), perm), v.shape);
      expectClose(engine.kernelRegression(q, pk, pv, { w: c.w }).output, engine.kernelRegression(q, k, v, { w: c.w }).output, 'output');
    });
  });
});

// ---------------------------------------------------------------- additive attention

const additiveCase = fc.record({
  B: size(2), Lq: size(5), Lk: size(9), Dq: size(6), Dk: size(6), Dv: size(6), h: size(8),
  lens: fc.constantFrom('none', 'batch', 'row'), permute: fc.boolean(), returnWeights: fc.boolean(), seed,
});

describe('additiveAttention', () => {
  it('wasm equals reference; permuting keys and values together leaves the output unchanged', () => {
    check(additiveCase, (c) => {
      const qs = [c.B, c.Lq, c.Dq], ks = [c.B, c.Lk, c.Dk], vs = [c.B, c.Lk, c.Dv];
      const q = tensor(values(qs, c.seed), qs), k = tensor(values(ks, c.seed + 1), ks), v = tensor(values(vs, c.seed + 2), vs);
      const params = { Wq: tensor(values([c.h, c.Dq], c.seed + 3), [c.h, c.Dq]), Wk: tensor(values([c.h, c.Dk], c.seed + 4), [c.h, c.Dk]), wv: tensor(values([1, c.h], c.seed + 5), [1, c.h]) };
      const r = rng(c.seed + 6);
      const validLens = c.lens === 'none' ? undefined : Array.from({ length: c.lens === 'row' ? c.B * c.Lq : c.B }, () => Math.floor(r() * (c.Lk + 1)));
      const options = { validLens, returnWeights: c.returnWeights };
      const got = wasm.additiveAttention(q, k, v, params, options);
      const want = reference.additiveAttention(q, k, v, params, options);
      expectClose(got.output, want.output, 'output');
      if (c.returnWeights) {
        expectClose(got.weights, want.weights, 'weights');
        expectDistributions(got.weights!, c.Lk, 'weights');
      }
      if (c.permute && c.lens === 'none') {
        const perm = permutation(c.Lk, c.seed + 7);
        const pk = tensor(permuteAxis(k.data, c.Lk, c.Dk, perm), ks), pv = tensor(permuteAxis(v.data, c.Lk, c.Dv, perm), vs);
        for (const engine of [reference, wasm]) expectClose(engine.additiveAttention(q, pk, pv, params).output, engine.additiveAttention(q, k, v, params).output, `${engine.name}, permuted`);
      }
    });
  });
});

// ---------------------------------------------------------------- multi-head attention

const multiHeadCase = fc.record({
  B: size(2), Lq: size(5), Lk: size(6), H: positive(3), D: positive(4), kdim: fc.option(positive(6), { nil: undefined }), vdim: positive(6),
  biases: fc.boolean(), biasKV: fc.boolean(), addZeroAttn: fc.boolean(),
  keyPadding: fc.boolean(), maskKind: fc.constantFrom('none', 'boolean', 'additive', 'pytorch3d'),
  causal: fc.constantFrom<CausalMode>(false, true, 'bottom-right'), needWeights: fc.boolean(), averageWeights: fc.boolean(), seed,
});

describe('multiHeadAttention', () => {
  it('wasm equals reference: projections, biases, bias_kv, zero_attn, padding, masks, causal', () => {
    check(multiHeadCase, (c) => {
      const E = c.H * c.D, kdim = c.kdim ?? E, vdim = c.kdim === undefined ? E : c.vdim;
      const s = 1 / Math.sqrt(E);
      const W = (shape: number[], k: number) => tensor(values(shape, c.seed + k, s), shape);
      const params: MultiHeadParams = {
        numHeads: c.H, outProjWeight: W([E, E], 1),
        ...(c.kdim === undefined ? { inProjWeight: W([3 * E, E], 2) } : { qProjWeight: W([E, E], 3), kProjWeight: W([E, kdim], 4), vProjWeight: W([E, vdim], 5) }),
        ...(c.biases ? { inProjBias: W([3 * E], 6), outProjBias: W([E], 7) } : {}),
        ...(c.biasKV ? { biasK: W([1, 1, E], 8), biasV: W([1, 1, E], 9) } : {}),
        addZeroAttn: c.addZeroAttn,
      };
      const query = W([c.B, c.Lq, E], 10), key = W([c.B, c.Lk, kdim], 11), value = W([c.B, c.Lk, vdim], 12);
      const r = rng(c.seed + 13);
      const bits = (n: number) => Array.from({ length: n }, () => (r() < 0.7 ? 1 : 0));
      const options: MultiHeadOptions = { causal: c.causal, needWeights: c.needWeights, averageWeights: c.averageWeights };
      if (c.keyPadding) options.keyPaddingMask = mask(bits(c.B * c.Lk).map((b) => 1 - b), [c.B, c.Lk]);
      if (c.maskKind === 'boolean') options.mask = { data: Uint8Array.from(bits(c.Lq * c.Lk)), shape: [c.Lq, c.Lk] };
      if (c.maskKind === 'additive') options.mask = { data: values([c.B, 1, c.Lq, c.Lk], c.seed + 14, 2, 0.2), shape: [c.B, 1, c.Lq, c.Lk] };
      if (c.maskKind === 'pytorch3d') options.mask = { data: Uint8Array.from(bits(c.B * c.H * c.Lq * c.Lk)), shape: [c.B * c.H, c.Lq, c.Lk] };
      const got = wasm.multiHeadAttention(query, key, value, params, options);
      const want = reference.multiHeadAttention(query, key, value, params, options);
      expectClose(got.output, want.output, 'output');
      if (c.needWeights) expectClose(got.weights, want.weights, 'weights');
    });
  });
});
