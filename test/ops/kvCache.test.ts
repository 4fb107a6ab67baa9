// KV caches (engine.createKVCache) on both engines: appends that attend like one call over the
// concatenated keys, overflow refused with the cache unchanged, decoding token by token through a
// prepared multi-head layer, caches of another engine refused, memory flat over decode steps, and a
// wasm call that fails after appending leaving the cache as it was.
import { describe, expect, it } from 'vitest';
import { type Engine, type Tensor, tensor } from '../../src/index.js';
import { engines, expectClose, multiHeadParams, random } from '../support.js';

const all = await engines();

/** Rows [from, to) of the length axis of [B, H, L, D] (or [B, L, E]: pass H = 1 with a 3-D view). */
function slice(t: Tensor, from: number, to: number): Tensor {
  const [B, H, L, D] = t.shape.length === 4 ? t.shape : [t.shape[0], 1, t.shape[1], t.shape[2]];
  const out = new Float32Array(B * H * (to - from) * D);
  for (let bh = 0; bh < B * H; bh++) out.set(t.data.subarray((bh * L + from) * D, (bh * L + to) * D), bh * (to - from) * D);
  return tensor(out, t.shape.length === 4 ? [B, H, to - from, D] : [B, to - from, D]);
}

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
    const layer = engine.createMultiHeadAttention(multiHeadParams(E, H, 20));
    const x = random([2, T, E], 21);
    const full = engine.selfAttention(x, multiHeadParams(E, H, 20), { causal: true }).output;
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

describe.each(all.map((e) => [e.name, e] as const))('a foreign cache on %s', (_, engine: Engine) => {
  it('is refused as foreign before its shape is looked at', () => {
    const other = all.find((e) => e !== engine)!;
    const cache = other.createKVCache({ batch: 3, kvHeads: 3, headDim: 3, capacity: 3 }); // fits nothing below
    expect(() => engine.scaledDotProductAttention(random([1, 1, 1, 4], 1), random([1, 1, 1, 4], 2), random([1, 1, 1, 4], 3), { cache })).toThrow(TypeError);
    cache.dispose();
  });
});

describe('wasm engine memory with held blocks', () => {
  it('decode steps do not grow memory, and disposing gives blocks back for reuse', async () => {
    const engine = all[1];
    const E = 64, H = 8;
    const layer = engine.createMultiHeadAttention(multiHeadParams(E, H, 30));
    const cache = engine.createKVCache({ batch: 1, kvHeads: H, headDim: E / H, capacity: 300 });
    const token = random([1, 1, E], 31);
    layer.forward(token, token, token, { cache });
    const afterFirst = engine.info.memoryBytes;
    for (let t = 1; t < 300; t++) layer.forward(token, token, token, { cache });
    expect(engine.info.memoryBytes).toBe(afterFirst);
    cache.dispose();
    layer.dispose();
    for (let i = 0; i < 20; i++) {
      const l = engine.createMultiHeadAttention(multiHeadParams(E, H, 30));
      const c = engine.createKVCache({ batch: 1, kvHeads: H, headDim: E / H, capacity: 300 });
      l.forward(token, token, token, { cache: c });
      c.dispose();
      l.dispose();
    }
    expect(engine.info.memoryBytes).toBe(afterFirst);
  });
});

describe('a wasm call that fails after appending to a cache', () => {
  it('leaves the cache as it was (the memory limit hit by the output)', async () => {
    const { createEngine } = await import('../../src/index.js');
    const engine = await createEngine({ maxMemoryBytes: 4 * 2 ** 20 });
    try {
      const cache = engine.createKVCache({ batch: 1, kvHeads: 1, headDim: 8, capacity: 16 });
      cache.append(random([1, 1, 4, 8], 1), random([1, 1, 4, 8], 2));
      // 200,000 queries: the inputs fit, their output (and weights) do not
      const q = random([1, 1, 200_000, 8], 3);
      expect(() => engine.scaledDotProductAttention(q, random([1, 1, 1, 8], 4), random([1, 1, 1, 8], 5), { cache, returnWeights: true })).toThrow(RangeError);
      expect(cache.length).toBe(4);
      const layer = engine.createMultiHeadAttention(multiHeadParams(8, 1, 6));
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
