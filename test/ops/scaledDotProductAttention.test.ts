import { describe, expect, it } from 'vitest';
import { type AttentionOptions, type Engine, mask, reference, type Tensor, tensor } from '../../src/index.js';
import { engines, expectClose, kernelProbe, random, rows, TAIL_SIZES } from '../support.js';

const all = await engines();
const wasm = all[1];
const each = all.map((e) => [e.name, e] as const);

/** Which keys each query row attends to, read off the weights of all-equal scores. */
function allowedPattern(engine: Engine, B: number, Lq: number, Lk: number, options: AttentionOptions, Lpast = 0): number[][] {
  const q = tensor(new Array(B * Lq * 2).fill(0), [B, 1, Lq, 2]);
  const k = tensor(new Array(B * (Lk - Lpast) * 2).fill(0), [B, 1, Lk - Lpast, 2]);
  const v = tensor(new Array(B * (Lk - Lpast)).fill(1), [B, 1, Lk - Lpast, 1]);
  const past = Lpast > 0 ? { pastKey: tensor(new Array(B * Lpast * 2).fill(0), [B, 1, Lpast, 2]), pastValue: tensor(new Array(B * Lpast).fill(1), [B, 1, Lpast, 1]) } : {};
  const { weights, output } = engine.scaledDotProductAttention(q, k, v, { ...options, ...past, returnWeights: true });
  const pattern = rows(weights!, Lk).map((r) => r.map((w) => (w > 0 ? 1 : 0)));
  // allowed keys share the weight equally; a row with none is all zero, output included
  rows(weights!, Lk).forEach((r, i) => {
    const n = pattern[i].reduce<number>((a, b) => a + b, 0);
    r.forEach((w) => expect(w === 0 || Math.abs(w - 1 / n) < 1e-6).toBe(true));
    expect(output.data[i]).toBeCloseTo(n > 0 ? 1 : 0, 6);
  });
  return pattern;
}

/** PyTorch's tril(ones(L, S), diagonal): row i allows j <= i + diagonal. */
function tril(L: number, S: number, diagonal: number): number[][] {
  return Array.from({ length: L }, (_, i) => Array.from({ length: S }, (_, j) => (j <= i + diagonal ? 1 : 0)));
}

describe.each(each)('scaledDotProductAttention on %s: which keys a query sees', (_, engine) => {
  it('causal true and top-left: tril(ones(Lq, Lk))', () => {
    expect(allowedPattern(engine, 1, 3, 5, { causal: true })).toEqual(tril(3, 5, 0));
    expect(allowedPattern(engine, 1, 3, 5, { causal: 'top-left' })).toEqual(tril(3, 5, 0));
  });

  it("bottom-right: tril(ones(Lq, Lk), Lk - Lq); Lq > Lk leaves the first rows with no key", () => {
    expect(allowedPattern(engine, 1, 3, 5, { causal: 'bottom-right' })).toEqual(tril(3, 5, 2));
    expect(allowedPattern(engine, 1, 4, 2, { causal: 'bottom-right' })).toEqual([[0, 0], [0, 0], [1, 0], [1, 1]]);
  });

  it('top-left with past keys: query i sees j <= i + Lpast (ONNX is_causal with past_key)', () => {
    expect(allowedPattern(engine, 1, 2, 5, { causal: true }, 3)).toEqual(tril(2, 5, 3));
    expect(allowedPattern(engine, 1, 2, 5, { causal: 'bottom-right' }, 2)).toEqual(tril(2, 5, 3));
  });

  it('validLens pads keys per batch; bottom-right lines the last query up with the last valid key', () => {
    expect(allowedPattern(engine, 2, 2, 5, { validLens: [3, 5] })).toEqual([
      [1, 1, 1, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1]]);
    expect(allowedPattern(engine, 2, 2, 5, { validLens: [3, 5], causal: 'bottom-right' })).toEqual([
      [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]);
    expect(allowedPattern(engine, 1, 2, 4, { validLens: [0] })).toEqual([[0, 0, 0, 0], [0, 0, 0, 0]]);
  });

  it('window: p - left <= j <= p + right around the query position', () => {
    expect(allowedPattern(engine, 1, 4, 4, { causal: true, window: { left: 1 } })).toEqual([
      [1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]);
    expect(allowedPattern(engine, 1, 4, 5, { window: { left: 1, right: 1 } })).toEqual([
      [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1]]);
    expect(allowedPattern(engine, 1, 3, 4, { window: { right: 0 } })).toEqual(tril(3, 4, 0));
    // with bottom-right causal the window follows the shifted frontier
    expect(allowedPattern(engine, 1, 2, 5, { causal: 'bottom-right', window: { left: 0 } })).toEqual([
      [0, 0, 0, 1, 0], [0, 0, 0, 0, 1]]);
    // with past keys and no causal, p = i + Lpast
    expect(allowedPattern(engine, 1, 2, 5, { window: { left: 1, right: 0 } }, 3)).toEqual([
      [0, 0, 1, 1, 0], [0, 0, 0, 1, 1]]);
  });

  it('a boolean mask (1 = may attend) combines with causal', () => {
    const m = mask([1, 0, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1], [3, 4]);
    expect(allowedPattern(engine, 1, 3, 4, { mask: m })).toEqual([[1, 0, 1, 1], [0, 1, 1, 1], [1, 0, 1, 1]]);
    expect(allowedPattern(engine, 1, 3, 4, { mask: m, causal: true })).toEqual([[1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 1, 0]]);
  });
});

describe.each(each)('scaledDotProductAttention on %s: values', (_, engine) => {
  it('computes softmax(q·k) v by hand', () => {
    // one query [1, 0] against keys [1, 0] and [0, 1]: weights e/(e+1) and 1/(e+1)
    const q = tensor([1, 0], [1, 1, 2]), k = tensor([1, 0, 0, 1], [1, 2, 2]), v = tensor([10, 20], [1, 2, 1]);
    const w0 = Math.E / (Math.E + 1);
    const r = engine.scaledDotProductAttention(q, k, v, { scale: 1, returnWeights: true });
    expectClose(r.weights, tensor([w0, 1 - w0], [1, 1, 2]));
    expectClose(r.output, tensor([10 * w0 + 20 * (1 - w0)], [1, 1, 1]));
    // default scale 1/sqrt(E)
    const s = 1 / Math.sqrt(2), ws = Math.exp(s) / (Math.exp(s) + 1);
    expectClose(engine.scaledDotProductAttention(q, k, v).output, tensor([10 * ws + 20 * (1 - ws)], [1, 1, 1]));
  });

  it('adds an additive mask to the scaled scores', () => {
    const q = tensor([1, 0], [1, 1, 2]), k = tensor([1, 0, 0, 1], [1, 2, 2]), v = tensor([10, 20], [1, 2, 1]);
    const m = mask(Float32Array.from([0, 1]), [1, 2]); // scores become [1, 1]: equal weights
    expectClose(engine.scaledDotProductAttention(q, k, v, { scale: 1, mask: m }).output, tensor([15], [1, 1, 1]));
  });

  it('softcap bounds the scores: c·tanh(s/c)', () => {
    const q = tensor([100, 0], [1, 1, 2]), k = tensor([1, 0, 0, 1], [1, 2, 2]), v = tensor([10, 20], [1, 2, 1]);
    const c = 2, capped = c * Math.tanh(100 / c); // ≈ 2 against 0
    const w0 = Math.exp(capped) / (Math.exp(capped) + 1);
    expectClose(engine.scaledDotProductAttention(q, k, v, { scale: 1, softcap: c, returnWeights: true }).weights, tensor([w0, 1 - w0], [1, 1, 2]));
  });

  it('gives zero output and zero weights for fully masked rows, never NaN', () => {
    const q = random([1, 2, 3, 4], 1), k = random([1, 2, 5, 4], 2), v = random([1, 2, 5, 3], 3);
    const boolMask = mask([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1], [3, 5]);
    const addMask = mask(Float32Array.from([-Infinity, -Infinity, -Infinity, -Infinity, -Infinity, 0, 0, 0, 0, 0, 0, -Infinity, 0, -Infinity, 0]), [3, 5]);
    for (const m of [boolMask, addMask]) {
      const r = engine.scaledDotProductAttention(q, k, v, { mask: m, returnWeights: true, softcap: 5 });
      for (const h of [0, 1]) {
        expect(Array.from(r.output.data.subarray(h * 9, h * 9 + 3))).toEqual([0, 0, 0]);
        expect(Array.from(r.weights!.data.subarray(h * 15, h * 15 + 5))).toEqual([0, 0, 0, 0, 0]);
      }
      expect(r.output.data.every(Number.isFinite)).toBe(true);
    }
  });

  it('lets NaN in one query row reach only that row', () => {
    const q = random([2, 2, 5, 8], 4), k = random([2, 2, 7, 8], 5), v = random([2, 2, 7, 6], 6);
    const clean = engine.scaledDotProductAttention(q, k, v).output;
    const qd = Float32Array.from(q.data);
    const row = (1 * 2 + 1) * 5 + 2; // batch 1, head 1, query 2
    qd[row * 8 + 3] = NaN;
    const dirty = engine.scaledDotProductAttention(tensor(qd, q.shape), k, v).output;
    for (let r = 0; r < 20; r++) {
      const got = Array.from(dirty.data.subarray(r * 6, r * 6 + 6));
      if (r === row) expect(got.every(Number.isNaN)).toBe(true);
      else expect(got).toEqual(Array.from(clean.data.subarray(r * 6, r * 6 + 6)));
    }
    // a NaN in a masked-out value cannot leak into the output
    const vd = Float32Array.from(v.data);
    vd[6] = NaN; // batch 0, head 0, key 1
    const masked = engine.scaledDotProductAttention(q, k, tensor(vd, v.shape), { mask: mask([1, 0, 1, 1, 1, 1, 1], [7]) }).output;
    expect(masked.data.every(Number.isFinite)).toBe(true);
  });

  it('does not overflow with scores of ±1e4: the top key takes all the weight', () => {
    const q = tensor([100, 0, -100, 0], [1, 2, 2]), k = tensor([100, 0, -100, 0, 0, 100], [1, 3, 2]);
    const v = tensor([1, 2, 3], [1, 3, 1]);
    const r = engine.scaledDotProductAttention(q, k, v, { scale: 1 });
    expectClose(r.output, tensor([1, 2], [1, 2, 1]));
  });

  it('handles zero sizes', () => {
    expect(engine.scaledDotProductAttention(random([0, 2, 3, 4], 1), random([0, 2, 3, 4], 2), random([0, 2, 3, 4], 3)).output.shape).toEqual([0, 2, 3, 4]);
    expect(engine.scaledDotProductAttention(random([1, 2, 0, 4], 1), random([1, 2, 3, 4], 2), random([1, 2, 3, 5], 3)).output.shape).toEqual([1, 2, 0, 5]);
    const noKeys = engine.scaledDotProductAttention(random([1, 1, 2, 4], 1), random([1, 1, 0, 4], 2), random([1, 1, 0, 3], 3), { returnWeights: true });
    expect(Array.from(noKeys.output.data)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(noKeys.weights!.shape).toEqual([1, 1, 2, 0]);
    expect(engine.scaledDotProductAttention(random([1, 1, 2, 0], 1), random([1, 1, 3, 0], 2), random([1, 1, 3, 2], 3)).output.shape).toEqual([1, 1, 2, 2]);
  });
});

describe.each(each)('scaledDotProductAttention on %s: equivalences', (_, engine) => {
  it('3-D inputs equal 4-D inputs with one head', () => {
    const q = random([2, 5, 6], 1), k = random([2, 7, 6], 2), v = random([2, 7, 3], 3);
    const four = (t: Tensor) => tensor(t.data, [t.shape[0], 1, t.shape[1], t.shape[2]]);
    const r3 = engine.scaledDotProductAttention(q, k, v, { causal: 'bottom-right', returnWeights: true });
    const r4 = engine.scaledDotProductAttention(four(q), four(k), four(v), { causal: 'bottom-right', returnWeights: true });
    expect(r3.output.shape).toEqual([2, 5, 3]);
    expect(r3.weights!.shape).toEqual([2, 5, 7]);
    expect(Array.from(r3.output.data)).toEqual(Array.from(r4.output.data));
  });

  it('3-D inputs take a 3-D cache, or a 4-D one with one head', () => {
    const q = random([2, 3, 4], 1), k = random([2, 3, 4], 2), v = random([2, 3, 5], 3);
    const pk = random([2, 6, 4], 4), pv = random([2, 6, 5], 5);
    const r3 = engine.scaledDotProductAttention(q, k, v, { pastKey: pk, pastValue: pv, causal: true });
    const r4 = engine.scaledDotProductAttention(q, k, v, { pastKey: tensor(pk.data, [2, 1, 6, 4]), pastValue: tensor(pv.data, [2, 1, 6, 5]), causal: true });
    expect(r3.presentKey!.shape).toEqual([2, 9, 4]);
    expect(Array.from(r4.output.data)).toEqual(Array.from(r3.output.data));
  });

  it('grouped-query heads read kv head floor(h / (Hq / Hkv))', () => {
    const q = random([2, 8, 5, 4], 1), k = random([2, 2, 6, 4], 2), v = random([2, 2, 6, 3], 3);
    const repeat = (t: Tensor) => {
      const [B, H, L, D] = t.shape;
      const out = new Float32Array(B * 8 * L * D);
      for (let b = 0; b < B; b++) for (let h = 0; h < 8; h++) out.set(t.data.subarray((b * H + Math.floor(h / 4)) * L * D, (b * H + Math.floor(h / 4) + 1) * L * D), (b * 8 + h) * L * D);
      return tensor(out, [B, 8, L, D]);
    };
    expectClose(engine.scaledDotProductAttention(q, k, v, { causal: true }).output,
      engine.scaledDotProductAttention(q, repeat(k), repeat(v), { causal: true }).output);
  });

  it('past keys and values are prepended and returned as present', () => {
    const q = random([2, 2, 3, 4], 1), k = random([2, 2, 3, 4], 2), v = random([2, 2, 3, 5], 3);
    const pk = random([2, 2, 6, 4], 4), pv = random([2, 2, 6, 5], 5);
    const r = engine.scaledDotProductAttention(q, k, v, { pastKey: pk, pastValue: pv, causal: true, returnWeights: true });
    expect(r.presentKey!.shape).toEqual([2, 2, 9, 4]);
    expect(r.weights!.shape).toEqual([2, 2, 3, 9]);
    expect(Array.from(r.presentKey!.data.subarray(0, 24))).toEqual(Array.from(pk.data.subarray(0, 24)));
    expect(Array.from(r.presentKey!.data.subarray(24, 36))).toEqual(Array.from(k.data.subarray(0, 12)));
    // with as many new keys as queries, top-left with past equals bottom-right over the concatenation
    const whole = engine.scaledDotProductAttention(q, r.presentKey!, r.presentValue!, { causal: 'bottom-right' });
    expectClose(r.output, whole.output);
  });

  it('masks broadcast from [Lq, Lk], [B, 1, Lq, Lk] and [Lk] like the full [B, H, Lq, Lk]', () => {
    const [B, H, Lq, Lk] = [2, 3, 4, 5];
    const q = random([B, H, Lq, 6], 1), k = random([B, H, Lk, 6], 2), v = random([B, H, Lk, 2], 3);
    const small = random([Lq, Lk], 9, 3);
    const full = new Float32Array(B * H * Lq * Lk);
    for (let z = 0; z < B * H; z++) full.set(small.data, z * Lq * Lk);
    const expected = engine.scaledDotProductAttention(q, k, v, { mask: mask(full, [B, H, Lq, Lk]) }).output;
    expectClose(engine.scaledDotProductAttention(q, k, v, { mask: mask(small.data, [Lq, Lk]) }).output, expected);
    expectClose(engine.scaledDotProductAttention(q, k, v, { mask: mask(small.data, [1, 1, Lq, Lk]) }).output, expected);
    const keyRow = mask([1, 1, 0, 1, 0], [Lk]);
    const keyFull = mask(new Array(B * H * Lq).fill([1, 1, 0, 1, 0]).flat(), [B, H, Lq, Lk]);
    expectClose(engine.scaledDotProductAttention(q, k, v, { mask: keyRow }).output, engine.scaledDotProductAttention(q, k, v, { mask: keyFull }).output);
  });
});

// The wasm engine against the reference (the float64 definition) over shapes that hit every SIMD tail.
describe('scaledDotProductAttention: wasm equals the reference', () => {
  const grid: [number, number, number, number][] = [];
  for (const s of TAIL_SIZES) grid.push([s, 17, 16, 5], [9, s, 7, 16], [4, 13, s, s === 129 ? 3 : s + 2], [3, 5, 8, s]);
  it.each(grid)('Lq=%i Lk=%i E=%i Ev=%i, B=2, Hq=8, Hkv=2', (Lq, Lk, E, Ev) => {
    const q = random([2, 8, Lq, E], Lq * 3 + E, 2), k = random([2, 2, Lk, E], Lk * 5 + E, 2), v = random([2, 2, Lk, Ev], Ev + 11);
    const o: AttentionOptions = { returnWeights: true };
    const want = reference.scaledDotProductAttention(q, k, v, o), got = wasm.scaledDotProductAttention(q, k, v, o);
    expectClose(got.output, want.output, 'output (with weights: row kernel)');
    expectClose(got.weights, want.weights, 'weights');
    const probe = kernelProbe('fused');
    expectClose(wasm.scaledDotProductAttention(q, k, v, probe.options).output, want.output, 'output (without weights: fused kernel)');
    expect(probe.ran).toEqual(['fused']);
  });

  const B = 2, Hq = 4, Hkv = 2, Lq = 17, Lnew = 17, Lpast = 16, E = 20, Ev = 9;
  const q = random([B, Hq, Lq, E], 1, 2), k = random([B, Hkv, Lnew, E], 2, 2), v = random([B, Hkv, Lnew, Ev], 3);
  const pastKey = random([B, Hkv, Lpast, E], 4, 2), pastValue = random([B, Hkv, Lpast, Ev], 5);
  const boolMask = mask(Array.from(random([B, 1, Lq, Lnew + Lpast], 6).data, (x) => (x > -0.6 ? 1 : 0)), [B, 1, Lq, Lnew + Lpast]);
  const addMask = mask(Float32Array.from(random([Lq, Lnew + Lpast], 7, 2).data, (x) => (x < -1.5 ? -Infinity : x)), [Lq, Lnew + Lpast]);
  const options: Record<string, AttentionOptions> = {
    'scale': { scale: 0.3 },
    'boolean mask': { mask: boolMask },
    'additive mask': { mask: addMask },
    'causal': { causal: true },
    'bottom-right': { causal: 'bottom-right' },
    'validLens': { validLens: [20, 33] },
    'softcap': { softcap: 1.5 },
    'window': { window: { left: 3, right: 2 } },
    'past': { pastKey, pastValue },
    'mask + causal': { mask: boolMask, causal: true },
    'past + causal': { pastKey, pastValue, causal: true },
    'validLens + bottom-right causal': { validLens: [20, 33], causal: 'bottom-right' },
    'window + causal': { window: { left: 4 }, causal: true },
    'softcap + additive -Infinity mask': { softcap: 2, mask: addMask },
    'everything': { pastKey, pastValue, causal: 'bottom-right', validLens: [30, 33], window: { left: 9, right: 1 }, softcap: 3, mask: boolMask, scale: 0.5 },
  };
  it.each(Object.entries(options))('%s', (_, opts) => {
    const o = { ...opts, returnWeights: true };
    const needsAll = o.pastKey === undefined && ((o.mask?.shape.at(-1) ?? 0) === Lnew + Lpast || ((o.validLens as number[] | undefined)?.[1] ?? 0) > Lnew);
    const kk = needsAll ? random([B, Hkv, Lnew + Lpast, E], 2, 2) : k;
    const vv = needsAll ? random([B, Hkv, Lnew + Lpast, Ev], 3) : v;
    const want = reference.scaledDotProductAttention(q, kk, vv, o), got = wasm.scaledDotProductAttention(q, kk, vv, o);
    expectClose(got.output, want.output, 'output (with weights: row kernel)');
    expectClose(got.weights, want.weights, 'weights');
    const probe = kernelProbe('fused');
    const fused = wasm.scaledDotProductAttention(q, kk, vv, { ...opts, ...probe.options });
    expect(probe.ran).toEqual(['fused']);
    expectClose(fused.output, want.output, 'output (without weights: fused kernel)');
    if (o.pastKey) {
      expectClose(got.presentKey, want.presentKey, 'presentKey');
      expectClose(got.presentValue, want.presentValue, 'presentValue');
    }
  });
});
