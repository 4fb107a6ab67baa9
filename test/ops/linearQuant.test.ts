// createLinear with int8 and int4 storage on both engines, against a float64 evaluation of docs/MODELS.md's
// definition (./quantDefinition.ts): per-group scales (int8 max|w| / 127; int4 m / -8 with m the first element
// of largest magnitude), round half to even, the input rows quantized per group to int8 (Q8_0), and
// y = b + Σ_g s_w · s_x · (exact integer sum). T = 1..65, groupSize 32/64/128, in/out at SIMD tails
// (out not a multiple of the wasm layout's 4 interleaved rows), zero groups, outliers, ties, NaN and
// Infinity, engine tensors, thread splits, a row alone against the same row among others, the
// relaxed build against the plain one, errors and bytes.
//
// NaN and Infinity (src/reference/linear.ts): a group holding a NaN has s = NaN, one holding an
// Infinity s = Infinity; such a group (and one with s = 0) holds q = 0, so its products are
// s · 0 = NaN: a non-finite value in a row of x makes every output of that row NaN, a non-finite
// weight makes its output row NaN for every row of x, and lookup reads its group back as NaN.
import { describe, expect, it } from 'vitest';
import { createEngine, type Engine, type LinearLayer, type Tensor, tensor } from '../../src/index.js';
import type { Kernels } from '../../src/wasm/abi.js';
import type { WasmContext } from '../../src/wasm/context.js';
import { createWasmLinear } from '../../src/wasm/linear.js';
import { defaultWasmUrl } from '../../src/wasm/loader.js';
import { engines, expectClose, random } from '../support.js';
import { expectIdentical, float32StepsOf, productOf, type Quant, quantizeRows } from './quantDefinition.js';
import { distCurrent, splitContext } from './split.js';

const all = await engines();
// worker threads load dist/ (its kernel list must match the sources' to run these kernels)
const sameKernels = distCurrent;
const ROWS = [1, 2, 3, 4, 5, 15, 16, 17, 63, 64, 65];
const QUANTS: Quant[] = ['int8', 'int4'];

const bitsOf = (dtype: Quant) => (dtype === 'int8' ? 8 : 4);

/** The float64 definition for float weights w quantized by the layer. */
const expected = (x: Tensor, w: Tensor, b: Tensor | undefined, dtype: Quant, g: number): Tensor =>
  productOf(x, quantizeRows(w.data, w.shape[0], w.shape[1], g, bitsOf(dtype)), w.shape[0], b, g);

/** The wasm kernels' float32 steps for float weights w quantized by the layer. */
const float32Steps = (x: Tensor, w: Tensor, b: Tensor | undefined, dtype: Quant, g: number): Float32Array =>
  float32StepsOf(x, quantizeRows(w.data, w.shape[0], w.shape[1], g, bitsOf(dtype)), w.shape[0], b, g);

/** The dequantized stored weight float32(q · s), as lookup gives it. */
function dequantized(w: Tensor, dtype: Quant, g: number): Float32Array {
  const [N, K] = w.shape, W = quantizeRows(w.data, N, K, g, bitsOf(dtype));
  return Float32Array.from(W.q, (q, i) => q * W.s[Math.floor(i / g)]);
}

const copy = (t: Tensor): Tensor => tensor(Float32Array.from(t.data), t.shape);

/** [in, out] pairs: out at every tail of 4 and 16, in over one and several 32-chunks and groups. */
const SHAPES: [number, number][] = [[32, 1], [64, 3], [128, 5], [96, 7], [256, 17], [384, 4], [128, 33], [512, 9]];

describe.each(all.map((e) => [e.name, e] as const))('createLinear int8/int4 on %s', (_, engine: Engine) => {
  it.each(QUANTS)('forward equals the definition in float64 (%s): T in 1..65, groupSize 32/64/128, tails, bias or not', (dtype) => {
    let seed = 1;
    for (const [K, N] of SHAPES) {
      for (const g of [32, 64, 128].filter((g) => K % g === 0)) {
        const w = random([N, K], seed++, 1 / Math.sqrt(K)), b = random([N], seed++, 0.5);
        for (const bias of [undefined, b]) {
          const layer = engine.createLinear(w, { bias, dtype, groupSize: g });
          expect([layer.inFeatures, layer.outFeatures, layer.dtype]).toEqual([K, N, dtype]);
          for (const T of ROWS) {
            if (K > 256 && T > 17 && T !== 65) continue;
            const x = random([T, K], seed++, 2);
            const y = layer.forward(x);
            const label = `${dtype} [${N}, ${K}] g=${g} T=${T} bias=${!!bias}`;
            expectClose(y, expected(x, w, bias, dtype, g), label);
            if (engine.name === 'wasm') expectIdentical(y, float32Steps(x, w, bias, dtype, g), `${label}: float32 steps`);
          }
          layer.dispose();
        }
      }
    }
  });

  it('the default groupSize is 32', () => {
    const w = random([5, 128], 1), x = random([3, 128], 2);
    for (const dtype of QUANTS) expectIdentical(engine.createLinear(w, { dtype }).forward(x), engine.createLinear(w, { dtype, groupSize: 32 }).forward(x), dtype);
  });

  it.each(QUANTS)('lookup gives float32(q · s) times scale exactly (%s): random, zero groups, outliers', (dtype) => {
    for (const [K, N] of [[32, 1], [64, 5], [256, 9]]) {
      for (const g of [32, 64, 128].filter((g) => K % g === 0)) {
        const w = copy(random([N, K], K + N + g, 2));
        w.data.fill(0, 0, g); // a zero group: s = 0
        if (N > 1) w.data[K + 3] = 1e4; // an outlier: the rest of its group rounds to 0
        const layer = engine.createLinear(w, { dtype, groupSize: g });
        const want = dequantized(w, dtype, g);
        const ids = Array.from({ length: N }, (_, i) => N - 1 - i);
        for (const scale of [1, -2.5, 0.1]) {
          const got = layer.lookup(ids, { scale });
          const rows = new Float32Array(N * K);
          ids.forEach((id, r) => { for (let i = 0; i < K; i++) rows[r * K + i] = want[id * K + i] * Math.fround(scale); });
          expectIdentical(got, rows, `${dtype} [${N}, ${K}] g=${g} scale ${scale}`);
        }
        const x = random([4, K], 3, 2);
        expectClose(layer.forward(x), expected(x, w, undefined, dtype, g), `${dtype} forward with zero groups and outliers`);
        layer.dispose();
      }
    }
  });

  it('rounds half to even; int4 keeps the sign of the first element of largest magnitude; clamps to [-8, 7]', () => {
    // int8: max 127 gives s = 1, so every w / s is exact
    const ties8 = [127, 2.5, 3.5, -2.5, -3.5, 0.5, 1.5, -0.5, 126.5, -126.5, 0.49, 0.51];
    const w8 = new Array(32).fill(0);
    ties8.forEach((v, i) => { w8[i] = v; });
    const l8 = engine.createLinear(tensor(w8, [1, 32]), { dtype: 'int8' });
    expect(Array.from(l8.lookup([0]).data.slice(0, ties8.length))).toEqual([127, 2, 4, -2, -4, 0, 2, 0, 126, -126, 0, 1]);
    // int4: a first -8 gives s = 1, a first 8 gives s = -1 (a later -8 then clamps to 7 · -1)
    const base = [2.5, 3.5, 6.5, 7.5, -7.5, -0.5, 0.5, 1.5];
    const first = (m: number) => { const r = new Array(32).fill(0); r[0] = m; base.forEach((v, i) => { r[i + 1] = v; }); r[20] = -m; return r; };
    const l4 = engine.createLinear(tensor([...first(-8), ...first(8)], [2, 32]), { dtype: 'int4' });
    const rows = l4.lookup([0, 1]).data;
    expect(Array.from(rows.slice(0, 9))).toEqual([-8, 2, 4, 6, 7, -8, 0, 0, 2]);
    expect(rows[20]).toBe(7); // +8 / 1 clamps to 7
    expect(Array.from(rows.slice(32, 41))).toEqual([8, 2, 4, 6, 8, -7, -0, -0, 2]); // w / -1: 7.5 -> -7.5 -> -8, -7.5 -> 8 -> 7
    expect(rows[52]).toBe(-7); // -8 / -1 = 8 clamps to 7, times s = -1
    // activations: x quantized with s_x = max|x| / 127 the same way; a one-hot weight reads q_x back
    const eye = new Float32Array(64 * 64);
    for (let i = 0; i < 64; i++) eye[i * 64 + i] = 1;
    const x = new Float32Array(64);
    [127, 2.5, 3.5, -2.5, -3.5, 0.5, 1.5, 126.5].forEach((v, i) => { x[i] = v; x[32 + i] = v / 1024; });
    for (const dtype of QUANTS) {
      const id = engine.createLinear(tensor(eye, [64, 64]), { dtype });
      const y = id.forward(tensor(x, [1, 64])).data;
      const sw = dtype === 'int8' ? Math.fround(1 / 127) : Math.fround(1 / -8), qw = dtype === 'int8' ? 127 : -8;
      const sx = [1, Math.fround(127 / 1024 / 127)];
      const qx = [127, 2, 4, -2, -4, 0, 2, 126];
      for (let i = 0; i < 8; i++) {
        for (const [at, scale] of [[i, sx[0]], [32 + i, sx[1]]]) {
          const want = sw * scale * qw * qx[i];
          expect(Math.abs(y[at] - want), `${dtype} y[${at}] = ${y[at]}, expected ${want}`).toBeLessThanOrEqual(1e-6 * Math.abs(want));
        }
      }
    }
  });

  it.each(QUANTS)('NaN and Infinity: in a row of x, every output of that row is NaN; in the weight, its output row (%s)', (dtype) => {
    for (const [K, N] of [[64, 9], [128, 6]]) {
      const w = copy(random([N, K], 3, 0.2)), b = random([N], 4);
      w.data[2 * K + 5] = NaN;
      w.data[4 * K + 40] = Infinity;
      const layer = engine.createLinear(w, { bias: b, dtype });
      const lookup = layer.lookup([2, 4]).data;
      expect(lookup.slice(0, 32).every(Number.isNaN)).toBe(true);
      expect(lookup.slice(32, 64).every(Number.isFinite)).toBe(true);
      expect(lookup.slice(K + 32, K + 64).every(Number.isNaN)).toBe(true);
      for (const T of [1, 2, 5, 17]) {
        const x = copy(random([T, K], 5 + T));
        x.data[0] = NaN;
        if (T > 1) x.data[K + 33] = Infinity;
        if (T > 2) x.data[2 * K + 4] = -Infinity;
        const y = layer.forward(x);
        expectClose(y, expected(x, w, b, dtype, 32), `${dtype} [${N}, ${K}] T=${T}`);
        for (let t = 0; t < T; t++) {
          for (let o = 0; o < N; o++) {
            const nan = t < 3 || o === 2 || o === 4;
            expect(Number.isNaN(y.data[t * N + o]), `${dtype} T=${T} y[${t}, ${o}]`).toBe(nan);
          }
        }
      }
      layer.dispose();
    }
  });

  it.each(QUANTS)('x at float32\'s limits (huge, tiny, subnormal, one outlier among tiny values) quantizes as the definition (%s)', (dtype) => {
    const K = 128, N = 7, w = random([N, K], 21, 1 / Math.sqrt(K));
    const layer = engine.createLinear(w, { dtype });
    // each row of x its own magnitude; group 1 of each row an outlier among values 2^-40 of it, group 3 zeros but one
    const magnitudes = [3.4e38, 1.5e38, 1e-30, 1.2e-38, 1e-44, 1.4e-45, 1];
    const x = copy(random([magnitudes.length, K], 22));
    magnitudes.forEach((m, t) => {
      for (let i = 0; i < K; i++) x.data[t * K + i] = Math.fround(x.data[t * K + i] * m * (i >= 32 && i < 64 && i !== 40 ? 2 ** -40 : 1));
      x.data.fill(0, t * K + 96, t * K + 128);
      x.data[t * K + 100] = Math.fround(-m);
    });
    const y = layer.forward(x);
    if (engine.name === 'wasm') expectIdentical(y, float32Steps(x, w, undefined, dtype, 32), `${dtype}: float32 steps`);
    // the definition in float64, for the rows whose products stay inside float32
    const want = expected(x, w, undefined, dtype, 32);
    for (let t = 2; t < magnitudes.length; t++) {
      const rows = (v: Tensor) => tensor(v.data.slice(t * N, (t + 1) * N), [1, N]);
      expectClose(rows(y), rows(want), `${dtype} x of magnitude ${magnitudes[t]}`);
    }
    layer.dispose();
  });

  it.each(QUANTS)('a row gives the same bits alone as among others (%s): T = 65 and 2..5, at each place', (dtype) => {
    const K = 256, N = 37, w = random([N, K], 9, 0.5), b = random([N], 10);
    for (const g of [32, 128]) {
      const layer = engine.createLinear(w, { bias: b, dtype, groupSize: g });
      const many = random([65, K], 11, 3);
      const all = layer.forward(many);
      for (const t of [0, 1, 16, 33, 64]) {
        const alone = layer.forward(tensor(many.data.slice(t * K, (t + 1) * K), [1, K]));
        expectIdentical(alone, all.data.slice(t * N, (t + 1) * N), `${dtype} g=${g} row ${t}`);
        // among 2..5 rows at every place: either row of a pair that shares weight loads, or the odd last row
        for (let size = 2; size <= 5; size++) {
          for (let at = 0; at < size; at++) {
            const from = t - at;
            if (from < 0 || from + size > 65) continue;
            const few = layer.forward(tensor(many.data.slice(from * K, (from + size) * K), [size, K]));
            expectIdentical(few.data.slice(at * N, (at + 1) * N), all.data.slice(t * N, (t + 1) * N), `${dtype} g=${g} row ${t} at ${at} of ${size}`);
          }
        }
      }
      layer.dispose();
    }
  });

  it('T = 0 returns [0, out]; x of zeros gives the bias', () => {
    for (const dtype of QUANTS) {
      const w = random([5, 64], 1), b = random([5], 2);
      const layer = engine.createLinear(w, { bias: b, dtype });
      expect([...layer.forward(tensor([], [0, 64])).shape]).toEqual([0, 5]);
      expect(Array.from(layer.forward(tensor(new Float32Array(64), [1, 64])).data)).toEqual(Array.from(b.data));
      layer.dispose();
    }
  });

  it('engine tensors: the weight read in place and copied, x read in place, out written in place (x itself too)', () => {
    for (const dtype of QUANTS) {
      const K = 96, N = 70, w = engine.tensor([N, K]), b = engine.tensor([N]);
      w.data.set(random([N, K], 1, 0.1).data);
      b.data.set(random([N], 2).data);
      const want = engine.createLinear(copy(w), { bias: copy(b), dtype });
      const layer = engine.createLinear(w, { bias: b, dtype });
      w.data.fill(0); // the layer holds its own copy
      b.data.fill(0);
      for (const T of [1, 17]) {
        const x = engine.tensor([T, K]), out = engine.tensor([T, N]);
        x.data.set(random([T, K], 3 + T).data);
        const plain = want.forward(copy(x));
        expect(layer.forward(x, { out })).toBe(out);
        expectIdentical(out, plain, `${dtype} engine out T=${T}`);
        const js = tensor(new Float32Array(T * N), [T, N]);
        expect(layer.forward(x, { out: js })).toBe(js);
        expectIdentical(js, plain, `${dtype} JS out T=${T}`);
        const square = engine.createLinear(random([K, K], 5, 0.1), { dtype });
        const sq = square.forward(copy(x));
        expect(square.forward(x, { out: x })).toBe(x); // in == out
        expectIdentical(x, sq, `${dtype} out = x T=${T}`);
        square.dispose();
        x.dispose();
        out.dispose();
      }
      const rows = engine.tensor([2, K]);
      expect(layer.lookup([N - 1, 0], { out: rows })).toBe(rows);
      expectIdentical(rows, want.lookup([N - 1, 0]), `${dtype} lookup into an engine tensor`);
      rows.dispose();
      layer.dispose();
      want.dispose();
      w.dispose();
      b.dispose();
    }
  });

  it('refuses a groupSize that is not a multiple of 32 dividing in (RangeError), or not a number (TypeError)', () => {
    for (const dtype of QUANTS) {
      const w = random([4, 128], 1);
      for (const g of [0, 16, 48, 33.5, -32, 256, 96, Infinity, NaN]) {
        expect(() => engine.createLinear(w, { dtype, groupSize: g }), `${dtype} g=${g}`).toThrow(RangeError);
      }
      expect(() => engine.createLinear(w, { dtype, groupSize: 96 })).toThrow(/groupSize must be a multiple of 32 that divides in = 128 \(weight \[4, 128\]\), got 96/);
      expect(() => engine.createLinear(random([4, 48], 1), { dtype })).toThrow(/divides in = 48/);
      expect(() => engine.createLinear(w, { dtype, groupSize: '32' as never })).toThrow(TypeError);
      const layer = engine.createLinear(w, { dtype });
      expect(() => layer.forward(random([2, 64], 1))).toThrow(/expected shape \[\*, 128\]/);
      layer.dispose();
      expect(() => layer.forward(random([2, 128], 1))).toThrow(/disposed/);
      expect(() => layer.lookup([0])).toThrow(/disposed/);
    }
  });

  it('reports the bytes its stored weight takes: values, one float32 scale a group, bias', () => {
    // wasm: whole blocks of 4 interleaved rows
    const pad = (n: number) => (engine.name === 'wasm' ? Math.ceil(n / 4) * 4 : n);
    for (const [N, K, g] of [[16, 64, 32], [17, 128, 64], [1, 128, 128], [5, 256, 32]]) {
      const G = K / g;
      expect(engine.createLinear(random([N, K], 1), { dtype: 'int8', groupSize: g }).bytes).toBe(pad(N) * (K + 4 * G));
      expect(engine.createLinear(random([N, K], 1), { dtype: 'int4', groupSize: g }).bytes).toBe(pad(N) * (K / 2 + 4 * G));
      expect(engine.createLinear(random([N, K], 1), { dtype: 'int4', groupSize: g, bias: random([N], 2) }).bytes).toBe(pad(N) * (K / 2 + 4 * G) + 4 * N);
    }
  });
});

/** A wasm context over fresh kernels of `build` whose "threads" split every call on this thread (split.ts). */
async function ownContext(threads: number, build?: 'simd' | 'relaxed', limit?: number): Promise<{ ctx: WasmContext; kernels: Kernels }> {
  const ctx = await splitContext(threads, { build, limit });
  return { ctx, kernels: ctx.kernels };
}

describe('createLinear int8/int4 on wasm: threads and builds', () => {
  it('splitting the output rows among 2 and 3 threads gives the bits of one', async () => {
    const contexts = await Promise.all([1, 2, 3].map((t) => ownContext(t)));
    for (const dtype of QUANTS) {
      for (const [N, K] of [[101, 256], [33, 64], [9, 512]]) {
        const w = random([N, K], N + K, 0.1), b = random([N], 3);
        const layers = contexts.map(({ ctx }) => createWasmLinear(() => ctx, w, { bias: b, dtype }));
        for (const T of [1, 2, 5, 17, 40]) {
          const x = random([T, K], T);
          const [one, ...more] = layers.map((l) => l.forward(x));
          expectIdentical(one, float32Steps(x, w, b, dtype, 32), `${dtype} [${N}, ${K}] T=${T}`);
          more.forEach((y, i) => expectIdentical(y, one, `${dtype} [${N}, ${K}] T=${T}, ${i + 2} threads`));
        }
        layers.forEach((l) => l.dispose());
      }
    }
    for (const { ctx } of contexts) expect(ctx.arena.heldBytes).toBe(0);
  });

  it.skipIf(!sameKernels)('createEngine({ threads: 2 }) gives the bits of one thread', async () => {
    const [one, two] = await Promise.all([createEngine(), createEngine({ threads: 2 })]);
    try {
      for (const dtype of QUANTS) {
        const w = random([600, 2048], 1, 0.02), b = random([600], 2);
        const layers = [one, two].map((e) => e.createLinear(w, { bias: b, dtype }));
        for (const T of [1, 3, 16, 40]) {
          const x = random([T, 2048], T);
          expectIdentical(layers[1].forward(x), layers[0].forward(x), `${dtype} T=${T}`);
        }
        layers.forEach((l: LinearLayer) => l.dispose());
      }
    } finally {
      one.dispose();
      two.dispose();
    }
  });

  it('the relaxed build gives the plain build\'s bits (both the float32 steps of the exact sums)', async () => {
    const relaxed = WebAssembly.validate(new Uint8Array(await (await import('node:fs/promises')).readFile(defaultWasmUrl('relaxed'))));
    const builds = relaxed ? (['simd', 'relaxed'] as const) : (['simd'] as const);
    const contexts = await Promise.all(builds.map((b) => ownContext(1, b)));
    for (const dtype of QUANTS) {
      for (const g of [32, 64, 128]) {
        // extremes of the integer ranges: q_w at ±127 / -8..7 against q_x at ±127
        const K = 384, N = 13, w = copy(random([N, K], g, 1)), x = copy(random([5, K], g + 1, 1));
        for (let i = 0; i < K; i += 3) { w.data[i] = i % 2 ? 1 : -1; x.data[i] = i % 4 ? 1 : -1; x.data[K + i] = 1; }
        const want = float32Steps(x, w, undefined, dtype, g);
        for (const [i, { ctx }] of contexts.entries()) {
          const layer = createWasmLinear(() => ctx, w, { dtype, groupSize: g });
          expectIdentical(layer.forward(x), want, `${dtype} g=${g} ${builds[i]} build`);
          layer.dispose();
        }
      }
    }
  });

  it('nothing held after a refused create; a layer frees what it held', async () => {
    const { ctx } = await ownContext(1, undefined, 2 ** 20 * 3);
    const create = (w: Tensor, o?: object) => createWasmLinear(() => ctx, w, o);
    const held = ctx.arena.heldBytes;
    expect(() => create(random([4, 48], 1), { dtype: 'int8' })).toThrow(RangeError);
    expect(() => create(random([1024, 1024], 1), { dtype: 'int4' })).toThrow(RangeError); // the float32 weight copied in does not fit
    expect(ctx.arena.heldBytes).toBe(held);
    const layer = create(random([100, 128], 1), { dtype: 'int4', bias: random([100], 2) });
    expect(ctx.arena.heldBytes).toBe(held + layer.bytes);
    layer.forward(random([3, 128], 3));
    layer.dispose();
    expect(ctx.arena.heldBytes).toBe(held);
  });
});
