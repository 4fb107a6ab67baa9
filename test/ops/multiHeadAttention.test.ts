// multiHeadAttention and selfAttention (PyTorch's nn.MultiheadAttention) on both engines, and the
// prepared layer (engine.createMultiHeadAttention): heads split and averaged, masks, bias_kv and
// zero_attn, separate k/v widths, the wasm engine against the reference, and a layer's forward
// against the stateless op with its weights packed (KV caches through a layer: ops/kvCache.test.ts).
import { describe, expect, it } from 'vitest';
import { type Engine, type MultiHeadOptions, type MultiHeadParams, mask, tensor } from '../../src/index.js';
import { engines, expectClose, multiHeadParams, random, rows } from '../support.js';

const all = await engines();
const [reference, wasm] = all;

function identity(n: number) {
  return tensor(Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0)), [n, n]);
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
    const x = random([2, 4, 8], 6), p = multiHeadParams(8, 4, 7);
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
    const x = random([2, 3, 8], 8), kv = random([2, 5, 8], 9), p = multiHeadParams(8, 2, 10);
    const kpm = mask([0, 0, 1, 0, 1, 0, 0, 0, 0, 1], [2, 5]);
    const asMask = mask([1, 1, 0, 1, 0, 1, 1, 1, 1, 0], [2, 1, 1, 5]);
    const a = engine.multiHeadAttention(x, kv, kv, p, { keyPaddingMask: kpm, needWeights: true });
    const b = engine.multiHeadAttention(x, kv, kv, p, { mask: asMask, needWeights: true });
    expectClose(a.output, b.output);
    expectClose(a.weights, b.weights);
    expect(rows(a.weights!).every((r) => r[2] === 0 && r[4] === 0 || r[4] === 0 && r[0] !== 0)).toBe(true);
  });

  it("reads PyTorch's 3-D [B·H, Lq, Lk] mask as [B, H, Lq, Lk]", () => {
    const x = random([2, 3, 8], 20), p = multiHeadParams(8, 2, 21);
    const m = random([4, 3, 3], 22, 2).data;
    const a = engine.selfAttention(x, p, { mask: mask(m, [4, 3, 3]), needWeights: true, averageWeights: false });
    const b = engine.selfAttention(x, p, { mask: mask(m, [2, 2, 3, 3]), needWeights: true, averageWeights: false });
    expectClose(a.weights, b.weights);
  });

  it('selfAttention(x) is multiHeadAttention(x, x, x)', () => {
    const x = random([2, 6, 8], 11), p = multiHeadParams(8, 2, 12);
    const o: MultiHeadOptions = { causal: true, needWeights: true };
    const a = engine.selfAttention(x, p, o), b = engine.multiHeadAttention(x, x, x, p, o);
    expect(Array.from(a.output.data)).toEqual(Array.from(b.output.data));
    // causal: no weight above the diagonal
    rows(a.weights!).forEach((r, i) => r.forEach((w, j) => { if (j > i % 6) expect(w).toBe(0); }));
  });

  it('biasK/biasV and addZeroAttn append key positions that every query sees', () => {
    const E = 4, x = random([1, 3, E], 13), p = multiHeadParams(E, 2, 14, {
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
    const x = random([2, 65, 64], 13), p = multiHeadParams(64, 8, 14);
    const want = reference.selfAttention(x, p, { causal: true }), got = wasm.selfAttention(x, p, { causal: true });
    expectClose(got.output, want.output);
  });
});

describe.each(all.map((e) => [e.name, e] as const))('prepared layers on %s', (_, engine: Engine) => {
  it('forward equals multiHeadAttention with the same params, for every option', () => {
    const p = multiHeadParams(16, 4, 1, { biasK: random([1, 1, 16], 5), biasV: random([1, 1, 16], 6), addZeroAttn: true });
    const layer = engine.createMultiHeadAttention(p);
    expect([layer.embedDim, layer.numHeads]).toEqual([16, 4]);
    const q = random([2, 5, 16], 7), kv = random([2, 9, 16], 8);
    for (const o of [{}, { causal: true, needWeights: true }, { keyPaddingMask: mask(Array.from({ length: 18 }, (_, i) => (i % 5 === 4 ? 1 : 0)), [2, 9]), needWeights: true, averageWeights: false }]) {
      const want = engine.multiHeadAttention(q, kv, kv, p, o), got = layer.forward(q, kv, kv, o);
      expectClose(got.output, want.output, 'output');
      if (want.weights) expectClose(got.weights, want.weights, 'weights');
    }
    layer.dispose();
    layer.dispose();
    expect(() => layer.forward(q, kv, kv)).toThrow(/disposed/);
  });

  it('keeps its own copy of the weights', () => {
    const p = multiHeadParams(8, 2, 10);
    const layer = engine.createMultiHeadAttention(p);
    const x = random([1, 3, 8], 11);
    const before = layer.forward(x, x, x).output;
    p.outProjWeight.data.fill(0);
    expect(Array.from(layer.forward(x, x, x).output.data)).toEqual(Array.from(before.data));
    layer.dispose();
  });

  it('rejects bad params when created, with the op\'s own messages', () => {
    expect(() => engine.createMultiHeadAttention({ ...multiHeadParams(8, 2, 12), numHeads: 3 })).toThrow(RangeError);
    expect(() => engine.createMultiHeadAttention(null as never)).toThrow(TypeError);
  });
});

// A prepared layer holds its weights packed into the GEMM's panels (src/wasm/packed.ts): widths
// that leave a partial panel, K beyond one packed block (256), separate k/v widths, and row counts
// on both sides of the split between columns (decode) and rows (prefill) of the threads.
describe.each(all.map((e) => [e.name, e] as const))('prepared layers with packed weights on %s', (_, engine: Engine) => {
  it.each([[20, 4], [36, 3], [300, 6]])('E=%i H=%i: forward equals the stateless op for 1 to 33 rows', (E, H) => {
    const p = multiHeadParams(E, H, E);
    const layer = engine.createMultiHeadAttention(p);
    for (const [B, L] of [[1, 1], [1, 16], [1, 17], [3, 11]]) {
      const x = random([B, L, E], B * 100 + L);
      expectClose(layer.forward(x, x, x).output, engine.selfAttention(x, p).output, `B=${B} L=${L}`);
    }
    layer.dispose();
  });

  it('separate k and v widths (kProjWeight, vProjWeight)', () => {
    const E = 24, kdim = 19, vdim = 37;
    const p: MultiHeadParams = {
      numHeads: 4, qProjWeight: random([E, E], 1, 0.2), kProjWeight: random([E, kdim], 2, 0.2), vProjWeight: random([E, vdim], 3, 0.2),
      inProjBias: random([3 * E], 4, 0.1), outProjWeight: random([E, E], 5, 0.2),
    };
    const layer = engine.createMultiHeadAttention(p);
    const q = random([2, 1, E], 6), k = random([2, 7, kdim], 7), v = random([2, 7, vdim], 8);
    expectClose(layer.forward(q, k, v).output, engine.multiHeadAttention(q, k, v, p).output, 'one query');
    layer.dispose();
  });
});
