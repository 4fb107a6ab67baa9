// createLinear from a weight given already quantized ({ dtype, shape, groupSize, q, scales }: a
// QuantizedWeight, what a GGUF file's Q8_0 and Q4_0 blocks are) on both engines. The claim: the layer
// is the one createLinear stores when it quantizes float weights to those same q and s. So float
// weights are quantized by createLinear, the same q and s computed here by docs/MODELS.md's definition
// (./quantDefinition.ts), a layer created from them, and its forward must give the float-made layer's
// bits (wasm at T = 1, 3, 17, 64 on 1 and 2 threads, and the reference engine), its lookup too. Then
// q and s no quantizer would make (int8 scales of either sign, groups without ±127 or -8), a zero
// scale over nonzero q, and every refusal, with nothing held in engine memory after one.
import { describe, expect, it } from 'vitest';
import { createEngine, type Engine, type LinearLayer, type QuantizedWeight, type Tensor, tensor } from '../../src/index.js';
import { createWasmLinear } from '../../src/wasm/linear.js';
import { engines, expectClose, random, rng } from '../support.js';
import { expectIdentical, float32StepsOf, type Groups, productOf, type Quant, quantizeRows } from './quantDefinition.js';
import { distCurrent, splitContext } from './split.js';

const all = await engines();
const QUANTS: Quant[] = ['int8', 'int4'];
const ROWS = [1, 3, 17, 64];
/** [in, out]: out at tails of the wasm layout's 4 interleaved rows, in over one and several groups. */
const SHAPES: [number, number][] = [[32, 1], [64, 3], [128, 5], [96, 7], [256, 17], [128, 33]];

const bitsOf = (dtype: Quant) => (dtype === 'int8' ? 8 : 4);

/** The QuantizedWeight of groups W (shape [N, K]). */
const quantized = (dtype: Quant, N: number, K: number, g: number | undefined, W: Groups): QuantizedWeight => ({
  dtype, shape: [N, K], groupSize: g, q: Int8Array.from(W.q), scales: Float32Array.from(W.s),
});

/** Float weights [N, K] with a zero group, an outlier and a group of ties, so that every rule of the quantizer shows. */
function weights(N: number, K: number, seed: number): Tensor {
  const w = Float32Array.from(random([N, K], seed, 1 / Math.sqrt(K)).data);
  w.fill(0, 0, 32); // a zero group: int8 s = 0, int4 s = -0
  if (N > 1) w[K + 3] = 40; // an outlier: the rest of its group rounds to 0
  if (N > 2) for (let i = 0; i < 32; i++) w[2 * K + i] = (i % 5) - 2.5; // halves: ties to even
  return tensor(w, [N, K]);
}

describe.each(all.map((e) => [e.name, e] as const))('createLinear from a quantized weight on %s', (_, engine: Engine) => {
  it.each(QUANTS)('is the layer createLinear makes from float weights that quantize to the same q and s (%s)', (dtype) => {
    let seed = 1;
    for (const [K, N] of SHAPES) {
      for (const g of [32, 64, 128].filter((g) => K % g === 0)) {
        const w = weights(N, K, seed++), b = random([N], seed++, 0.5);
        const W = quantizeRows(w.data, N, K, g, bitsOf(dtype));
        for (const bias of [undefined, b]) {
          const made = engine.createLinear(w, { bias, dtype, groupSize: g });
          const given = engine.createLinear(quantized(dtype, N, K, g, W), { bias });
          expect([given.inFeatures, given.outFeatures, given.dtype, given.bytes]).toEqual([made.inFeatures, made.outFeatures, made.dtype, made.bytes]);
          const label = `${dtype} [${N}, ${K}] g=${g} bias=${!!bias}`;
          for (const T of ROWS) {
            const x = random([T, K], seed++, 2);
            const y = given.forward(x);
            expectIdentical(y, made.forward(x), `${label} T=${T}`);
            if (engine.name === 'wasm') expectIdentical(y, float32StepsOf(x, W, N, bias, g), `${label} T=${T}: float32 steps`);
            else expectClose(y, productOf(x, W, N, bias, g), `${label} T=${T}`);
          }
          const ids = Array.from({ length: N }, (_, i) => N - 1 - i);
          expectIdentical(given.lookup(ids, { scale: -1.5 }), made.lookup(ids, { scale: -1.5 }), `${label} lookup`);
          made.dispose();
          given.dispose();
        }
      }
    }
  });

  it.each(QUANTS)('takes q and s no quantizer makes: scales of either sign, groups without the extreme q (%s)', (dtype) => {
    const [lo, hi] = dtype === 'int8' ? [-127, 127] : [-8, 7];
    for (const [K, N] of [[64, 5], [128, 9]]) {
      const g = 32, next = rng(K + N);
      const W: Groups = {
        q: Array.from({ length: N * K }, () => Math.floor(lo / 2 + next() * (hi - lo) / 2)),
        s: Array.from({ length: (N * K) / g }, () => Math.fround((next() - 0.5) * 0.02)),
      };
      W.q[0] = lo; // the extremes themselves
      W.q[1] = hi;
      const layer = engine.createLinear(quantized(dtype, N, K, undefined, W));
      expect(layer.dtype).toBe(dtype);
      for (const T of ROWS) {
        const x = random([T, K], T, 3);
        const y = layer.forward(x);
        expectClose(y, productOf(x, W, N, undefined, g), `${dtype} [${N}, ${K}] T=${T}`);
        if (engine.name === 'wasm') expectIdentical(y, float32StepsOf(x, W, N, undefined, g), `${dtype} [${N}, ${K}] T=${T}: float32 steps`);
      }
      const rows = layer.lookup(Array.from({ length: N }, (_, i) => i));
      expectIdentical(rows, Float32Array.from(W.q, (q, i) => Math.fround(q * W.s[Math.floor(i / g)])), `${dtype} lookup: float32(q · s)`);
      layer.dispose();
    }
  });

  it.each(QUANTS)('a group whose scale is 0 holds q = 0, as a quantized zero group does (%s)', (dtype) => {
    const K = 64, N = 3, W: Groups = { q: Array.from({ length: N * K }, (_, i) => (i % 7) - 3), s: [0.5, 0, -0, 0.25, 0, 0.125] };
    const zeroed: Groups = { q: W.q.map((q, i) => (W.s[Math.floor(i / 32)] === 0 ? 0 : q)), s: W.s };
    const layer = engine.createLinear(quantized(dtype, N, K, 32, W));
    const same = engine.createLinear(quantized(dtype, N, K, 32, zeroed));
    const x = random([5, K], 1);
    expectIdentical(layer.forward(x), same.forward(x), dtype);
    const rows = layer.lookup([0, 1, 2]).data;
    for (let i = 0; i < N * K; i++) if (W.s[Math.floor(i / 32)] === 0) expect(Math.abs(rows[i]), `lookup[${i}]`).toBe(0);
    expectIdentical(rows, same.lookup([0, 1, 2]), `${dtype} lookup`);
    layer.dispose();
    same.dispose();
  });

  it.each(QUANTS)('packs a weight outside engine memory a piece of rows at a time: the layer an engine tensor makes (%s)', (dtype) => {
    // 4,099 x 512: wasm packs 2,048 rows a piece (src/wasm/linear.ts, PACK_VALUES), so three pieces, the last one ragged
    const N = 4099, K = 512, g = 64;
    const w = weights(N, K, 7), W = quantizeRows(w.data, N, K, g, bitsOf(dtype)), given = quantized(dtype, N, K, g, W);
    const x = random([3, K], 8);
    const fromArray = [engine.createLinear(w, { dtype, groupSize: g }), engine.createLinear(given)];
    const expected = fromArray[0].forward(x);
    expectIdentical(fromArray[1].forward(x), expected, `${dtype}: q and s against float weights`);
    if (engine.name === 'wasm') {
      const resident = engine.tensor([N, K]);
      resident.data.set(w.data);
      const fromTensor = engine.createLinear(resident, { dtype, groupSize: g });
      expect(fromTensor.bytes).toBe(fromArray[0].bytes);
      expectIdentical(fromTensor.forward(x), expected, `${dtype}: from an engine tensor`);
      const ids = [0, 2047, 2048, 4095, 4096, 4098];
      expectIdentical(fromArray[0].lookup(ids), fromTensor.lookup(ids), `${dtype}: rows at the pieces' edges`);
      fromTensor.dispose();
      resident.dispose();
    }
    fromArray.forEach((l) => l.dispose());
  });

  it('keeps its own copy: the caller may change q and scales afterwards', () => {
    const w = weights(6, 64, 3), W = quantizeRows(w.data, 6, 64, 32, 8), given = quantized('int8', 6, 64, 32, W);
    const layer = engine.createLinear(given);
    const x = random([2, 64], 4), before = layer.forward(x);
    given.q.fill(5);
    given.scales.fill(1);
    expectIdentical(layer.forward(x), before, 'after the caller changed its arrays');
    layer.dispose();
  });

  it('refuses what does not fit, naming the field: TypeError for a wrong type, RangeError for a wrong size or value', () => {
    const N = 4, K = 64, W = quantizeRows(random([N, K], 1).data, N, K, 32, 8);
    const ok = (): QuantizedWeight => quantized('int8', N, K, 32, W);
    const bad = (change: Partial<Record<keyof QuantizedWeight, unknown>>) => ({ ...ok(), ...change }) as QuantizedWeight;
    const refusals: [unknown, object | undefined, typeof TypeError | typeof RangeError, RegExp][] = [
      [bad({ q: Uint8Array.from(W.q) }), undefined, TypeError, /createLinear: weight\.q must be an Int8Array, got an? Uint8Array/],
      [bad({ q: W.q }), undefined, TypeError, /weight\.q must be an Int8Array, got an array/],
      [bad({ scales: Float64Array.from(W.s) }), undefined, TypeError, /weight\.scales must be a Float32Array, got a Float64Array/],
      [bad({ dtype: 8 }), undefined, TypeError, /weight\.dtype must be 'int8' or 'int4', got a number/],
      [bad({ dtype: 'float32' }), undefined, RangeError, /weight\.dtype must be 'int8' or 'int4' \(a quantized weight\), got 'float32'/],
      [{ ...ok(), data: new Float32Array(N * K) }, undefined, TypeError, /a Tensor \{ data, shape \} or a quantized weight .* not both/],
      [bad({ shape: [N * K] }), undefined, RangeError, /weight: shape must be \[out, in\] with out >= 1 and in >= 1, got \[256\]/],
      [bad({ shape: [0, K], q: new Int8Array(0), scales: new Float32Array(0) }), undefined, RangeError, /shape must be \[out, in\]/],
      [bad({ shape: 'x' }), undefined, TypeError, /weight: shape must be an array/],
      [bad({ groupSize: 48 }), undefined, RangeError, /weight\.groupSize must be a multiple of 32 that divides in = 64 \(weight \[4, 64\]\), got 48/],
      [bad({ groupSize: '32' }), undefined, TypeError, /weight\.groupSize must be a number/],
      [bad({ q: new Int8Array(N * K - 1) }), undefined, RangeError, /weight\.q must hold out · in = 256 values .* got 255/],
      [bad({ scales: new Float32Array(4) }), undefined, RangeError, /weight\.scales must hold out · in \/ groupSize = 8 values .* got 4/],
      [bad({ groupSize: 64 }), undefined, RangeError, /weight\.scales must hold out · in \/ groupSize = 4 values \(one per group of 64 of \[4, 64\]\), got 8/],
      [ok(), { dtype: 'int4' }, RangeError, /options\.dtype 'int4' differs from the quantized weight's 'int8'/],
      [ok(), { dtype: 1 }, TypeError, /options\.dtype must be a string/],
      [ok(), { groupSize: 64 }, RangeError, /options\.groupSize 64 differs from the quantized weight's groupSize 32/],
      [ok(), { bias: random([N + 1], 1) }, RangeError, /options\.bias: expected shape \[4\]/],
    ];
    const outside = ok();
    outside.q[K + 5] = -128; // a Q8_0 block may hold it; the format does not
    refusals.push([outside, undefined, RangeError, /weight\.q\[69\] \(row 1, input 5\) = -128 is outside int8's \[-127, 127\]/]);
    const int4 = quantized('int4', N, K, 32, quantizeRows(random([N, K], 2).data, N, K, 32, 4));
    int4.q[7] = 8;
    refusals.push([int4, undefined, RangeError, /weight\.q\[7\] \(row 0, input 7\) = 8 is outside int4's \[-8, 7\]/]);
    for (const v of [NaN, Infinity, -Infinity]) {
      const s = ok();
      s.scales[3] = v;
      refusals.push([s, undefined, RangeError, new RegExp(`weight\\.scales\\[3\\] \\(row 1, group 1\\) is ${v}: scales must be finite`)]);
    }
    for (const [weight, options, kind, message] of refusals) {
      const call = () => engine.createLinear(weight as QuantizedWeight, options);
      expect(call, String(message)).toThrow(kind);
      expect(call, String(message)).toThrow(message);
    }
    // the same weight, whole, is taken, and the defaults (groupSize 32, options' dtype) fit it
    const layer = engine.createLinear({ dtype: 'int8', shape: [N, K], q: Int8Array.from(W.q), scales: Float32Array.from(W.s) }, { dtype: 'int8', groupSize: 32 });
    expect(layer.bytes).toBeGreaterThan(0);
    layer.dispose();
  });

  it('reads each field of the weight once', () => {
    const N = 4, K = 64, W = quantizeRows(random([N, K], 1).data, N, K, 32, 4);
    const reads: Record<string, number> = {};
    const weight = new Proxy(quantized('int4', N, K, 32, W) as object, {
      get(target, key) {
        reads[String(key)] = (reads[String(key)] ?? 0) + 1;
        return Reflect.get(target, key);
      },
    }) as QuantizedWeight;
    engine.createLinear(weight).dispose();
    expect(reads).toEqual({ dtype: 1, shape: 1, groupSize: 1, q: 1, scales: 1 });
  });
});

describe('createLinear from a quantized weight on wasm: threads, memory', () => {
  it('1 and 2 threads (split shares) give the float-made layer\'s bits at T = 1, 3, 17, 64', async () => {
    const contexts = await Promise.all([1, 2].map((t) => splitContext(t)));
    for (const dtype of QUANTS) {
      for (const [N, K] of [[101, 256], [33, 64]]) {
        const w = weights(N, K, N), b = random([N], 3), W = quantizeRows(w.data, N, K, 32, bitsOf(dtype));
        const layers = contexts.map((ctx) => [createWasmLinear(() => ctx, w, { bias: b, dtype }), createWasmLinear(() => ctx, quantized(dtype, N, K, 32, W), { bias: b })]);
        for (const T of ROWS) {
          const x = random([T, K], T);
          const want = float32StepsOf(x, W, N, b, 32);
          layers.forEach(([made, given], i) => {
            expectIdentical(given.forward(x), made.forward(x), `${dtype} [${N}, ${K}] T=${T}, ${i + 1} threads`);
            expectIdentical(given.forward(x), want, `${dtype} [${N}, ${K}] T=${T}, ${i + 1} threads: float32 steps`);
          });
        }
        layers.flat().forEach((l) => l.dispose());
      }
    }
    for (const ctx of contexts) expect(ctx.arena.heldBytes).toBe(0);
  });

  it.skipIf(!distCurrent)('createEngine({ threads: 2 }) gives one thread\'s bits', async () => {
    const [one, two] = await Promise.all([createEngine(), createEngine({ threads: 2 })]);
    try {
      for (const dtype of QUANTS) {
        const N = 300, K = 1024, w = random([N, K], 1, 0.05), W = quantizeRows(w.data, N, K, 32, bitsOf(dtype));
        const layers = [one, two].map((e) => e.createLinear(quantized(dtype, N, K, 32, W)));
        const made = one.createLinear(w, { dtype });
        for (const T of ROWS) {
          const x = random([T, K], T);
          expectIdentical(layers[1].forward(x), layers[0].forward(x), `${dtype} T=${T}: 2 threads`);
          expectIdentical(layers[0].forward(x), made.forward(x), `${dtype} T=${T}: the float-made layer`);
        }
        [...layers, made].forEach((l: LinearLayer) => l.dispose());
      }
    } finally {
      one.dispose();
      two.dispose();
    }
  });

  it('nothing held after a refused create or one over the memory limit; q and s in engine memory are read in place', async () => {
    const ctx = await splitContext(1, { limit: 2 ** 20 * 3 });
    const held = ctx.arena.heldBytes;
    const W = quantizeRows(random([4, 64], 1).data, 4, 64, 32, 8);
    const outside = quantized('int8', 4, 64, 32, W);
    outside.q[0] = -128;
    expect(() => createWasmLinear(() => ctx, outside)).toThrow(RangeError);
    const nan = quantized('int8', 4, 64, 32, W);
    nan.scales[0] = NaN;
    expect(() => createWasmLinear(() => ctx, nan)).toThrow(RangeError);
    // 2048 x 2048 int8: 4.5 MB packed, over the 3 MiB limit
    const big: QuantizedWeight = { dtype: 'int8', shape: [2048, 2048], q: new Int8Array(2048 * 2048), scales: new Float32Array(2048 * 64) };
    expect(() => createWasmLinear(() => ctx, big)).toThrow(/createLinear: weight \[2048, 2048\]/);
    expect(ctx.arena.heldBytes).toBe(held);
    // q and scales that live in engine memory (views over an engine tensor) are read from there
    const engine = await createEngine();
    try {
      const N = 8, K = 64, w = weights(N, K, 5), Wq = quantizeRows(w.data, N, K, 32, 4);
      const box = engine.tensor([N * K / 4 + N * 2]);
      const q = new Int8Array(box.data.buffer, box.data.byteOffset, N * K);
      const scales = new Float32Array(box.data.buffer, box.data.byteOffset + N * K, N * 2);
      q.set(Wq.q);
      scales.set(Wq.s);
      const layer = engine.createLinear({ dtype: 'int4', shape: [N, K], q, scales });
      const x = random([3, K], 6);
      expectIdentical(layer.forward(x), engine.createLinear(w, { dtype: 'int4' }).forward(x), 'from engine memory');
      layer.dispose();
      box.dispose();
    } finally {
      engine.dispose();
    }
  });
});
