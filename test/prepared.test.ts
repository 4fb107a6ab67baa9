// Serving objects: prepared multi-head attention layers and KV caches, on both engines.
import { describe, expect, it } from 'vitest';
import { type Engine, type MultiHeadParams, mask, type Tensor, tensor } from '../src/index.js';
import { engines, expectClose, random } from './support.js';

const all = await engines();

function params(E: number, H: number, seed: number, extra: Partial<MultiHeadParams> = {}): MultiHeadParams {
  const s = 1 / Math.sqrt(E);
  return {
    numHeads: H, inProjWeight: random([3 * E, E], seed, s), inProjBias: random([3 * E], seed + 1, 0.1),
    outProjWeight: random([E, E], seed + 2, s), outProjBias: random([E], seed + 3, 0.1), ...extra,
  };
}

/** Rows [from, to) of the length axis of [B, H, L, D] (or [B, L, E]: pass H = 1 with a 3-D view). */
function slice(t: Tensor, from: number, to: number): Tensor {
  const [B, H, L, D] = t.shape.length === 4 ? t.shape : [t.shape[0], 1, t.shape[1], t.shape[2]];
  const out = new Float32Array(B * H * (to - from) * D);
  for (let bh = 0; bh < B * H; bh++) out.set(t.data.subarray((bh * L + from) * D, (bh * L + to) * D), bh * (to - from) * D);
  return tensor(out, t.shape.length === 4 ? [B, H, to - from, D] : [B, to - from, D]);
}

describe.each(all.map((e) => [e.name, e] as const))('prepared layers on %s', (_, engine: Engine) => {
  it('forward equals multiHeadAttention with the same params, for every option', () => {
    const p = params(16, 4, 1, { biasK: random([1, 1, 16], 5), biasV: random([1, 1, 16], 6), addZeroAttn: true });
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
    const p = params(8, 2, 10);
    const layer = engine.createMultiHeadAttention(p);
    const x = random([1, 3, 8], 11);
    const before = layer.forward(x, x, x).output;
    p.outProjWeight.data.fill(0);
    expect(Array.from(layer.forward(x, x, x).output.data)).toEqual(Array.from(before.data));
    layer.dispose();
  });

  it('rejects bad params when created, with the op\'s own messages', () => {
    expect(() => engine.createMultiHeadAttention({ ...params(8, 2, 12), numHeads: 3 })).toThrow(RangeError);
    expect(() => engine.createMultiHeadAttention(null as never)).toThrow(TypeError);
  });
});

describe.each(all.map((e) => [e.name, e] as const))('KV caches on %s', (_, engine: Engine) => {
  it('many appends attend like one call over the concatenated keys, bottom-right causal', () => {
    const [B, Hq, Hkv, E, Ev, L] = [2, 4, 2, 8, 6, 23];
    const k = random([B, Hkv, L, E], 1), v = random([B, Hkv, L, Ev], 2), q = random([B, Hq, L, E], 3);
    const cache = engine.createKVCache({ batch: B, kvHeads: Hkv, headDim: E, valueDim: Ev, capacity: 32 });
    const steps = [[0, 5], [5, 6], [6, 7], [7, 16], [16, 23]];
    for (const [from, to] of steps) {
      const r = engine.scaledDotProductAttention(slice(q, from, to), slice(k, from, to), slice(v, from, to), { cache, returnWeights: true });
      const whole = engine.scaledDotProductAttention(slice(q, from, to), slice(k, 0, to), slice(v, 0, to), { causal: 'bottom-right', returnWeights: true });
      expectClose(r.output, whole.output, `step ${from}..${to}`);
      expectClose(r.weights, whole.weights, `weights ${from}..${to}`);
      expect(cache.length).toBe(to);
    }
    expectClose(cache.read().keys, k);
    cache.reset();
    expect(cache.length).toBe(0);
    cache.dispose();
    cache.dispose();
    expect(() => cache.append(slice(k, 0, 1), slice(v, 0, 1))).toThrow(/disposed/);
  });

  it('refuses to overflow and stays unchanged', () => {
    const cache = engine.createKVCache({ batch: 1, kvHeads: 1, headDim: 4, capacity: 3 });
    cache.append(random([1, 1, 2, 4], 1), random([1, 1, 2, 4], 2));
    expect(() => cache.append(random([1, 1, 2, 4], 3), random([1, 1, 2, 4], 4))).toThrow(RangeError);
    expect(() => engine.scaledDotProductAttention(random([1, 1, 2, 4], 5), random([1, 1, 2, 4], 3), random([1, 1, 2, 4], 4), { cache })).toThrow(/overflow/);
    expect(cache.length).toBe(2);
    expect(() => cache.append(random([1, 2, 1, 4], 3), random([1, 2, 1, 4], 4))).toThrow(/expected key \[1, 1, L, 4\]/);
    expect(() => engine.createKVCache({ batch: 1, kvHeads: 1, headDim: -4, capacity: 3 })).toThrow(RangeError);
    cache.dispose();
  });

  it('decodes token by token through a prepared layer like the full causal self-attention', () => {
    const E = 16, H = 4, T = 9;
    const layer = engine.createMultiHeadAttention(params(E, H, 20));
    const x = random([2, T, E], 21);
    const full = engine.selfAttention(x, params(E, H, 20), { causal: true }).output;
    const cache = engine.createKVCache({ batch: 2, kvHeads: H, headDim: E / H, capacity: T });
    const first = layer.forward(slice(x, 0, 3), slice(x, 0, 3), slice(x, 0, 3), { cache });
    expectClose(first.output, slice(full, 0, 3), 'prefill of 3');
    for (let t = 3; t < T; t++) {
      const step = layer.forward(slice(x, t, t + 1), slice(x, t, t + 1), slice(x, t, t + 1), { cache });
      expectClose(step.output, slice(full, t, t + 1), `token ${t}`);
    }
    expect(cache.length).toBe(T);
    expect(() => layer.forward(slice(x, 0, 1), slice(x, 0, 1), slice(x, 0, 1), { cache })).toThrow(/overflow/);
    layer.dispose();
    cache.dispose();
  });

  it('a cache from another engine is refused', () => {
    const other = all.find((e) => e !== engine)!;
    const cache = other.createKVCache({ batch: 1, kvHeads: 1, headDim: 4, capacity: 3 });
    expect(() => engine.scaledDotProductAttention(random([1, 1, 1, 4], 1), random([1, 1, 1, 4], 2), random([1, 1, 1, 4], 3), { cache })).toThrow(/this engine/);
    cache.dispose();
  });
});

describe('wasm engine memory with held blocks', () => {
  it('decode steps do not grow memory, and disposing gives blocks back for reuse', async () => {
    const engine = all[1];
    const E = 64, H = 8;
    const layer = engine.createMultiHeadAttention(params(E, H, 30));
    const cache = engine.createKVCache({ batch: 1, kvHeads: H, headDim: E / H, capacity: 300 });
    const token = random([1, 1, E], 31);
    layer.forward(token, token, token, { cache });
    const afterFirst = engine.info.memoryBytes;
    for (let t = 1; t < 300; t++) layer.forward(token, token, token, { cache });
    expect(engine.info.memoryBytes).toBe(afterFirst);
    cache.dispose();
    layer.dispose();
    for (let i = 0; i < 20; i++) {
      const l = engine.createMultiHeadAttention(params(E, H, 30));
      const c = engine.createKVCache({ batch: 1, kvHeads: H, headDim: E / H, capacity: 300 });
      l.forward(token, token, token, { cache: c });
      c.dispose();
      l.dispose();
    }
    expect(engine.info.memoryBytes).toBe(afterFirst);
  });
});

describe.each(all.map((e) => [e.name, e] as const))('zero-copy tensors and options.out on %s', (_, engine: Engine) => {
  it('engine tensors are inputs and outputs of every op, and results equal the copying calls', () => {
    const a = engine.tensor([5, 6]), b = engine.tensor([6, 7]);
    a.data.set(random([5, 6], 1).data);
    b.data.set(random([6, 7], 2).data);
    const c = engine.tensor([5, 7]);
    expect(engine.matmul(a, b, { out: c })).toBe(c);
    expectClose(c, engine.matmul(tensor(Float32Array.from(a.data), [5, 6]), tensor(Float32Array.from(b.data), [6, 7])));
    // an output may be an input: the result is written after the inputs are read
    const s = engine.tensor([2, 3, 5]);
    s.data.set(random([2, 3, 5], 3, 4).data);
    const want = engine.softmax(tensor(Float32Array.from(s.data), s.shape));
    expect(engine.softmax(s, { out: s })).toBe(s);
    expectClose(s, want);
    const plain = tensor(new Float32Array(30), [2, 3, 5]);
    expect(engine.maskedSoftmax(random([2, 3, 5], 4), [2, 5], { out: plain })).toBe(plain);
    const q = random([1, 2, 16, 8], 5), k = random([1, 2, 20, 8], 6), v = random([1, 2, 20, 4], 7);
    const o = engine.tensor([1, 2, 16, 4]);
    expectClose(engine.scaledDotProductAttention(q, k, v, { causal: true, out: o }).output, engine.scaledDotProductAttention(q, k, v, { causal: true }).output);
    const kr = engine.tensor([3]);
    expect(engine.kernelRegression(random([3], 8), random([9], 9), random([9], 10), { out: kr }).output).toBe(kr);
    const x = random([2, 4, 8], 11), p = params(8, 2, 12), mo = engine.tensor([2, 4, 8]);
    expect(engine.selfAttention(x, p, { out: mo }).output).toBe(mo);
    expectClose(mo, engine.selfAttention(x, p).output);
    for (const t of [a, b, c, s, o, kr, mo]) t.dispose();
  });

  it('refuses an out of the wrong shape, and a disposed tensor', () => {
    expect(() => engine.matmul(random([2, 3], 1), random([3, 4], 2), { out: tensor(new Float32Array(6), [2, 3]) })).toThrow(/options.out: expected shape \[2, 4\]/);
    const t = engine.tensor([2]);
    t.dispose();
    t.dispose();
    expect(() => t.data).toThrow(/disposed/);
  });
});

describe('wasm engine tensors when the memory grows', () => {
  it('an engine tensor is copied in right even when that copy grows the memory', async () => {
    const { createEngine } = await import('../src/index.js');
    const engine = await createEngine();
    const x = engine.tensor([512, 1024]), out = engine.tensor([512, 1024]);
    x.data.set(random([512, 1024], 1, 3).data);
    const want = all[1].softmax(tensor(Float32Array.from(x.data), x.shape));
    expectClose(engine.softmax(x, { out }), want); // softmax copies x (it works in place), growing the memory
    engine.dispose();
  });

  it('data is always a live view; a view kept across growth is refused by ops, not silently read', () => {
    const engine = all[1];
    const t = engine.tensor([4, 4]);
    t.data.set(random([4, 4], 1).data);
    const kept = t.data;
    engine.matmul(random([700, 700], 2), random([700, 700], 3)); // grows the memory
    expect(Array.from(t.data.subarray(0, 3))).toEqual(Array.from(random([4, 4], 1).data.subarray(0, 3)));
    if (kept.length === 0) expect(() => engine.softmax({ data: kept, shape: [4, 4] })).toThrow(RangeError);
    t.dispose();
  });
});

describe('a wasm call that fails after appending to a cache', () => {
  it('leaves the cache as it was (the memory limit hit by the output)', async () => {
    const { createEngine } = await import('../src/index.js');
    const engine = await createEngine({ maxMemoryBytes: 4 * 2 ** 20 });
    try {
      const cache = engine.createKVCache({ batch: 1, kvHeads: 1, headDim: 8, capacity: 16 });
      cache.append(random([1, 1, 4, 8], 1), random([1, 1, 4, 8], 2));
      // 200,000 queries: the inputs fit, their output (and weights) do not
      const q = random([1, 1, 200_000, 8], 3);
      expect(() => engine.scaledDotProductAttention(q, random([1, 1, 1, 8], 4), random([1, 1, 1, 8], 5), { cache, returnWeights: true })).toThrow(RangeError);
      expect(cache.length).toBe(4);
      const layer = engine.createMultiHeadAttention(params(8, 1, 6));
      const x = random([1, 1, 8], 7);
      const lcache = engine.createKVCache({ batch: 1, kvHeads: 1, headDim: 8, capacity: 4 });
      layer.forward(x, x, x, { cache: lcache });
      expect(() => layer.forward(random([1, 100_000, 8], 8), x, x, { cache: lcache, needWeights: true })).toThrow(RangeError);
      expect(lcache.length).toBe(1);
    } finally {
      engine.dispose();
    }
  });
});

describe('objects of a disposed wasm engine', () => {
  it('a cache, a layer and an engine tensor throw once their engine is disposed', async () => {
    const { createEngine } = await import('../src/index.js');
    const engine = await createEngine();
    const cache = engine.createKVCache({ batch: 1, kvHeads: 1, headDim: 4, capacity: 4 });
    const layer = engine.createMultiHeadAttention(params(4, 1, 40));
    const t = engine.tensor([2]);
    engine.dispose();
    expect(() => cache.append(random([1, 1, 1, 4], 1), random([1, 1, 1, 4], 2))).toThrow(/disposed/);
    expect(() => cache.read()).toThrow(/disposed/);
    expect(() => layer.forward(random([1, 1, 4], 3), random([1, 1, 4], 3), random([1, 1, 4], 3))).toThrow(/disposed/);
    expect(() => t.data).toThrow(/disposed/);
  });
});

describe.each(all.map((e) => [e.name, e] as const))('a foreign cache on %s', (_, engine: Engine) => {
  it('is refused as foreign before its shape is looked at', () => {
    const other = all.find((e) => e !== engine)!;
    const cache = other.createKVCache({ batch: 3, kvHeads: 3, headDim: 3, capacity: 3 }); // fits nothing below
    expect(() => engine.scaledDotProductAttention(random([1, 1, 1, 4], 1), random([1, 1, 1, 4], 2), random([1, 1, 1, 4], 3), { cache })).toThrow(TypeError);
    cache.dispose();
  });
});

// A prepared layer holds its weights packed into the GEMM's panels (src/wasm/packed.ts): widths
// that leave a partial panel, K beyond one packed block (256), separate k/v widths, and row counts
// on both sides of the split between columns (decode) and rows (prefill) of the threads.
describe.each(all.map((e) => [e.name, e] as const))('prepared layers with packed weights on %s', (_, engine: Engine) => {
  it.each([[20, 4], [36, 3], [300, 6]])('E=%i H=%i: forward equals the stateless op for 1 to 33 rows', (E, H) => {
    const p = params(E, H, E);
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
