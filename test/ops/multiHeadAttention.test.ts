import { describe, expect, it } from 'vitest';
import { type Engine, type MultiHeadOptions, type MultiHeadParams, mask, tensor } from '../../src/index.js';
import { engines, expectClose, random, rows } from '../support.js';

const all = await engines();
const [reference, wasm] = all;

function identity(n: number) {
  return tensor(Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0)), [n, n]);
}

function params(E: number, H: number, seed: number, extra: Partial<MultiHeadParams> = {}): MultiHeadParams {
  const s = 1 / Math.sqrt(E);
  return {
    numHeads: H,
    inProjWeight: random([3 * E, E], seed, s), inProjBias: random([3 * E], seed + 1, 0.1),
    outProjWeight: random([E, E], seed + 2, s), outProjBias: random([E], seed + 3, 0.1),
    ...extra,
  };
}

describe.each(all.map((e) => [e.name, e] as const))('multiHeadAttention on %s', (_, engine: Engine) => {
  it('with one head and identity projections is scaled dot-product attention', () => {
    const E = 6, x = random([2, 5, E], 1), y = random([2, 7, E], 2), z = random([2, 7, E], 3);
    const I = identity(E);
    const W = tensor([...I.data, ...I.data, ...I.data], [3 * E, E]);
    const r = engine.multiHeadAttention(x, y, z, { numHeads: 1, inProjWeight: W, outProjWeight: I }, { needWeights: true });
    const want = engine.scaledDotProductAttention(x, y, z, { returnWeights: true });
    expectClose(r.output, want.output);
    expectClose(r.weights, want.weights);
  });

  it('splits heads: head h uses features h·E/H .. (h+1)·E/H', () => {
    const E = 8, H = 2, D = E / H, x = random([1, 3, E], 4), kv = random([1, 5, E], 5);
    const I = identity(E);
    const r = engine.multiHeadAttention(x, kv, kv, { numHeads: H, qProjWeight: I, kProjWeight: I, vProjWeight: I, outProjWeight: I }, { needWeights: true, averageWeights: false });
    for (let h = 0; h < H; h++) {
      const slice = (t: typeof x, L: number) => tensor(Array.from({ length: L * D }, (_, i) => t.data[Math.floor(i / D) * E + h * D + (i % D)]), [1, L, D]);
      const head = engine.scaledDotProductAttention(slice(x, 3), slice(kv, 5), slice(kv, 5), { returnWeights: true });
      expectClose(tensor(rows(r.output).flatMap((row) => row.slice(h * D, (h + 1) * D)), [1, 3, D]), head.output, `head ${h}`);
      expectClose(tensor(r.weights!.data.subarray(h * 15, (h + 1) * 15), [1, 3, 5]), head.weights, `weights of head ${h}`);
    }
  });

  it('averages weights over heads by default; rows sum to 1', () => {
    const x = random([2, 4, 8], 6), p = params(8, 4, 7);
    const avg = engine.selfAttention(x, p, { needWeights: true }).weights!;
    const per = engine.selfAttention(x, p, { needWeights: true, averageWeights: false }).weights!;
    expect(avg.shape).toEqual([2, 4, 4]);
    expect(per.shape).toEqual([2, 4, 4, 4]);
    const mean = new Float32Array(32);
    for (let b = 0; b < 2; b++) for (let h = 0; h < 4; h++) for (let r = 0; r < 16; r++) mean[b * 16 + r] += per.data[(b * 4 + h) * 16 + r] / 4;
    expectClose(avg, tensor(mean, [2, 4, 4]));
    for (const row of rows(avg)) expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(engine.selfAttention(x, p).weights).toBeUndefined();
  });

  it('keyPaddingMask (1 = padding) is the inverted boolean mask over keys', () => {
    const x = random([2, 3, 8], 8), kv = random([2, 5, 8], 9), p = params(8, 2, 10);
    const kpm = mask([0, 0, 1, 0, 1, 0, 0, 0, 0, 1], [2, 5]);
    const asMask = mask([1, 1, 0, 1, 0, 1, 1, 1, 1, 0], [2, 1, 1, 5]);
    const a = engine.multiHeadAttention(x, kv, kv, p, { keyPaddingMask: kpm, needWeights: true });
    const b = engine.multiHeadAttention(x, kv, kv, p, { mask: asMask, needWeights: true });
    expectClose(a.output, b.output);
    expectClose(a.weights, b.weights);
    expect(rows(a.weights!).every((r) => r[2] === 0 && r[4] === 0 || r[4] === 0 && r[0] !== 0)).toBe(true);
  });

  it("reads PyTorch's 3-D [B·H, Lq, Lk] mask as [B, H, Lq, Lk]", () => {
    const x = random([2, 3, 8], 20), p = params(8, 2, 21);
    const m = random([4, 3, 3], 22, 2).data;
    const a = engine.selfAttention(x, p, { mask: mask(m, [4, 3, 3]), needWeights: true, averageWeights: false });
    const b = engine.selfAttention(x, p, { mask: mask(m, [2, 2, 3, 3]), needWeights: true, averageWeights: false });
    expectClose(a.weights, b.weights);
  });

  it('selfAttention(x) is multiHeadAttention(x, x, x)', () => {
    const x = random([2, 6, 8], 11), p = params(8, 2, 12);
    const o: MultiHeadOptions = { causal: true, needWeights: true };
    const a = engine.selfAttention(x, p, o), b = engine.multiHeadAttention(x, x, x, p, o);
    expect(Array.from(a.output.data)).toEqual(Array.from(b.output.data));
    // causal: no weight above the diagonal
    rows(a.weights!).forEach((r, i) => r.forEach((w, j) => { if (j > i % 6) expect(w).toBe(0); }));
  });

  it('biasK/biasV and addZeroAttn append key positions that every query sees', () => {
    const E = 4, x = random([1, 3, E], 13), p = params(E, 2, 14, {
      biasK: random([1, 1, E], 15), biasV: random([1, 1, E], 16), addZeroAttn: true,
    });
    const r = engine.selfAttention(x, p, { causal: true, needWeights: true });
    expect(r.weights!.shape).toEqual([1, 3, 5]);
    for (const row of rows(r.weights!)) {
      expect(row[3]).toBeGreaterThan(0); // biasK position
      expect(row[4]).toBeGreaterThan(0); // zero position
    }
    expect(rows(r.weights!)[0].slice(1, 3)).toEqual([0, 0]);
  });
});

describe('multiHeadAttention: wasm equals the reference', () => {
  const E = 16, H = 4, kdim = 5, vdim = 7;
  const q = random([2, 9, E], 1), k = random([2, 11, kdim], 2), v = random([2, 11, vdim], 3);
  const sep: MultiHeadParams = {
    numHeads: H, qProjWeight: random([E, E], 4, 0.3), kProjWeight: random([E, kdim], 5, 0.3), vProjWeight: random([E, vdim], 6, 0.3),
    inProjBias: random([3 * E], 7, 0.1), outProjWeight: random([E, E], 8, 0.3), outProjBias: random([E], 9, 0.1),
  };
  const cases: Record<string, [MultiHeadParams, MultiHeadOptions]> = {
    'separate q/k/v weights (kdim, vdim)': [sep, { needWeights: true }],
    'bias kv + zero attn + key padding': [{ ...sep, biasK: random([1, 1, E], 10), biasV: random([1, 1, E], 11), addZeroAttn: true },
      { keyPaddingMask: mask(Array.from({ length: 22 }, (_, i) => (i % 4 === 3 ? 1 : 0)), [2, 11]), needWeights: true }],
    'additive mask + causal, per-head weights': [sep, { mask: mask(random([9, 11], 12, 2).data, [9, 11]), causal: true, needWeights: true, averageWeights: false }],
    'bottom-right causal': [sep, { causal: 'bottom-right', needWeights: true }],
  };
  it.each(Object.entries(cases))('%s', (_, [p, o]) => {
    const want = reference.multiHeadAttention(q, k, v, p, o), got = wasm.multiHeadAttention(q, k, v, p, o);
    expectClose(got.output, want.output, 'output');
    expectClose(got.weights, want.weights, 'weights');
  });

  it('inProjWeight self-attention at E = 64, H = 8, L = 65', () => {
    const x = random([2, 65, 64], 13), p = params(64, 8, 14);
    const want = reference.selfAttention(x, p, { causal: true }), got = wasm.selfAttention(x, p, { causal: true });
    expectClose(got.output, want.output);
  });
});
