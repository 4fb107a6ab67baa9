// createLinear on both engines: forward and lookup against a float64 evaluation written here, float32
// and float16 storage (binary16 rounding checked against an independent rounding by value), SIMD
// tails, K-blocks, NaN and Infinity, engine tensors, thread splits, errors and held memory.
import { describe, expect, it } from 'vitest';
import { createEngine, type Engine, type LinearDtype, type LinearLayer, type Tensor, tensor } from '../../src/index.js';
import type { Kernels } from '../../src/wasm/abi.js';
import type { WasmContext } from '../../src/wasm/context.js';
import { createWasmLinear } from '../../src/wasm/linear.js';
import { engines, expectClose, random, rng, TAIL_SIZES } from '../support.js';
import { distCurrent, splitContext } from './split.js';

const all = await engines();
// worker threads load dist/ (its kernel list must match the sources' to run these kernels)
const sameKernels = distCurrent;
const ROWS = [1, 2, 3, 4, 5, 15, 16, 17, 63, 64, 65];
const DTYPES: LinearDtype[] = ['float32', 'float16'];

/** Rounds to the nearest integer, ties to even. */
function roundEven(q: number): number {
  const f = Math.floor(q), d = q - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}

/** The nearest binary16 value of v (ties to even), computed by value: a multiple of the binade's ulp. */
function half(v: number): number {
  if (!Number.isFinite(v) || v === 0) return v;
  const e = Math.max(Math.floor(Math.log2(Math.abs(v))), -14);
  const ulp = 2 ** (e - 10);
  const r = roundEven(v / ulp) * ulp;
  return Math.abs(r) > 65504 ? Math.sign(v) * Infinity : r === 0 ? (v < 0 ? -0 : 0) : r;
}

/** The stored weight: as given, or each value rounded to binary16. */
const stored = (w: Tensor, dtype: LinearDtype): Float64Array => Float64Array.from(w.data, (v) => (dtype === 'float16' ? half(v) : v));

/** y = x Wᵀ + b in float64 over the stored values. */
function expected(x: Tensor, w: Tensor, b: Tensor | undefined, dtype: LinearDtype): Tensor {
  const [T, K] = x.shape, N = w.shape[0], W = stored(w, dtype);
  const y = new Float32Array(T * N);
  for (let t = 0; t < T; t++) {
    for (let o = 0; o < N; o++) {
      let s = b ? b.data[o] : 0;
      for (let i = 0; i < K; i++) s += x.data[t * K + i] * W[o * K + i];
      y[t * N + o] = s;
    }
  }
  return tensor(y, [T, N]);
}

/** Every element the same bits, NaN equal to NaN. */
function expectIdentical(a: Tensor, b: Tensor, label: string): void {
  expect([...a.shape], label).toEqual([...b.shape]);
  let diff = -1;
  for (let i = 0; i < a.data.length && diff < 0; i++) if (!Object.is(a.data[i], b.data[i])) diff = i;
  expect(diff, `${label}: first difference at ${diff}: ${a.data[diff]} vs ${b.data[diff]}`).toBe(-1);
}

const copy = (t: Tensor): Tensor => tensor(Float32Array.from(t.data), t.shape);

/** [in, out] pairs: every tail size on both sides, and K past one and two K-blocks of 256. */
const SHAPES: [number, number][] = [
  ...TAIL_SIZES.map((k, i): [number, number] => [k, TAIL_SIZES[(i + 5) % TAIL_SIZES.length]]),
  [16, 16], [33, 48], [257, 19], [600, 35], [129, 129],
];

describe.each(all.map((e) => [e.name, e] as const))('createLinear on %s', (_, engine: Engine) => {
  it.each(DTYPES)('forward equals x Wᵀ + b in float64 (%s): T in 1..65, in/out at SIMD tails and K-blocks, bias or not', (dtype) => {
    let seed = 1;
    for (const [K, N] of SHAPES) {
      const w = random([N, K], seed++, 1 / Math.sqrt(K)), b = random([N], seed++, 0.5);
      for (const bias of [undefined, b]) {
        const layer = engine.createLinear(w, { bias, dtype });
        expect([layer.inFeatures, layer.outFeatures, layer.dtype]).toEqual([K, N, dtype]);
        for (const T of ROWS) {
          const x = random([T, K], seed++, 2);
          expectClose(layer.forward(x), expected(x, w, bias, dtype), `${dtype} [${N}, ${K}] T=${T} bias=${!!bias}`);
        }
        layer.dispose();
      }
    }
  });

  it('float16 stores binary16 rounded to nearest even: ties, overflow to Infinity, subnormals, NaN', () => {
    const values = [
      1 + 2 ** -11, 1 + 3 * 2 ** -11, -(1 + 2 ** -11), 2049, 2051, 65504, 65519, 65520, -65520, 1e5, -1e5,
      2 ** -24, 2 ** -25, 3 * 2 ** -25, -(3 * 2 ** -25), 2 ** -26, 1e-8, 2 ** -14, 2 ** -14 - 2 ** -25, 0.1, -0, NaN, Infinity, -Infinity,
    ];
    const K = values.length, w = tensor(values, [1, K]);
    const layer = engine.createLinear(w, { dtype: 'float16' });
    const row = layer.lookup([0]);
    const want = [
      1, 1 + 2 ** -9, -1, 2048, 2052, 65504, 65504, Infinity, -Infinity, Infinity, -Infinity,
      2 ** -24, 0, 2 ** -23, -(2 ** -23), 0, 0, 2 ** -14, 2 ** -14, half(0.1), -0, NaN, Infinity, -Infinity,
    ];
    expect(Array.from(row.data)).toEqual(want);
    expect(Array.from(row.data)).toEqual(values.map((v) => half(Math.fround(v))));
    layer.dispose();
    // every float32 exponent, random mantissas: the stored values equal the rounding by value
    const r = rng(7), many = Array.from({ length: 4000 }, (_, i) => Math.fround((r() - 0.5) * 2 ** ((i % 70) - 40)));
    const big = engine.createLinear(tensor(many, [40, 100]), { dtype: 'float16' });
    const got = big.lookup(Array.from({ length: 40 }, (_, i) => i));
    expect(Array.from(got.data)).toEqual(many.map(half));
    big.dispose();
  });

  it.each(DTYPES)('NaN and Infinity in x and in the weight flow through the affected outputs (%s)', (dtype) => {
    for (const [K, N] of [[37, 21], [300, 17]]) {
      const w = copy(random([N, K], 3, 0.2)), b = random([N], 4);
      w.data[5 * K + 2] = NaN;
      w.data[7 * K + 30] = Infinity;
      w.data[8 * K + 31] = -Infinity;
      w.data[9 * K + 10] = 1e6; // Infinity in binary16
      const layer = engine.createLinear(w, { bias: b, dtype });
      for (const T of [1, 2, 5, 17]) {
        const x = copy(random([T, K], 5 + T));
        x.data[0] = NaN;
        if (T > 1) x.data[K + 3] = Infinity;
        if (T > 2) x.data[2 * K + 4] = -Infinity;
        const y = layer.forward(x);
        expectClose(y, expected(x, w, b, dtype), `${dtype} [${N}, ${K}] T=${T}`);
        if (T > 3) expect(Number.isFinite(y.data[3 * N])).toBe(true); // an unaffected output of an unaffected row
      }
      layer.dispose();
    }
  });

  it.each(DTYPES)('a row gives the same bits alone (T = 1) as among others (%s): the wasm paths agree', (dtype) => {
    // wasm: one row reads the binary16 panels as they are (its x times 2^112 while every |x| < 2^16),
    // more rows go through widened float32 panels; both must round every product and sum alike
    for (const special of [false, true]) {
      const K = 300, N = 40, w = copy(random([N, K], 9, 0.5)), b = random([N], 10);
      w.data[4 * K + 3] = 1e-6; // a binary16 subnormal
      if (special) w.data[7] = Infinity;
      const layer = engine.createLinear(w, { bias: b, dtype });
      for (const big of [0, 1e-30, 65535, 65536, 3e38]) {
        const x = copy(random([1, K], 11, 3));
        x.data[5] = big;
        x.data[6] = -1e-40; // a float32 subnormal
        const many = tensor(new Float32Array(4 * K), [4, K]);
        for (let r = 0; r < 4; r++) many.data.set(random([1, K], 20 + r).data, r * K);
        many.data.set(x.data, 2 * K);
        const alone = layer.forward(x), among = layer.forward(many);
        expectIdentical(alone, tensor(among.data.slice(2 * N, 3 * N), [1, N]), `${dtype} special ${special} x[5] = ${big}`);
        expectClose(alone, expected(x, w, b, dtype), `${dtype} special ${special} x[5] = ${big}`);
      }
      layer.dispose();
    }
  });

  it.each(DTYPES)('each row has the bits it has alone at every T, read-ahead paths included (T = 8, 16, 32, 40; %s)', (dtype) => {
    // wasm: from 4 row pairs on, the GEMM's first pairs of a panel also load the next panel ahead
    const K = 600, N = 70, w = random([N, K], 12, 0.1), b = random([N], 13); // 5 panels, the last partial; 3 K-blocks
    const layer = engine.createLinear(w, { bias: b, dtype });
    const many = random([40, K], 14, 2);
    const alone = Array.from({ length: 40 }, (_, t) => layer.forward(tensor(many.data.slice(t * K, (t + 1) * K), [1, K])));
    for (const T of [8, 9, 16, 17, 32, 40]) {
      const y = layer.forward(tensor(many.data.slice(0, T * K), [T, K]));
      for (let t = 0; t < T; t++) expectIdentical(tensor(y.data.slice(t * N, (t + 1) * N), [1, N]), alone[t], `${dtype} T=${T} row ${t}`);
    }
    layer.dispose();
  });

  it('T = 0 returns [0, out] at once; one row and x of zeros give the bias', () => {
    const w = random([5, 3], 1), b = random([5], 2);
    const layer = engine.createLinear(w, { bias: b });
    const y = layer.forward(tensor([], [0, 3]));
    expect([...y.shape]).toEqual([0, 5]);
    const out = tensor([], [0, 5]);
    expect(layer.forward(tensor([], [0, 3]), { out })).toBe(out);
    expect(Array.from(layer.forward(tensor([0, 0, 0], [1, 3])).data)).toEqual(Array.from(b.data));
    layer.dispose();
  });

  it('engine tensors: the weight read in place and copied, x read in place, out written in place (x itself too)', () => {
    for (const dtype of DTYPES) {
      const K = 70, N = 70, w = engine.tensor([N, K]), b = engine.tensor([N]);
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
        expect(layer.forward(x, { out: x })).toBe(x); // in == out: the result may replace x
        expectIdentical(x, plain, `${dtype} out = x T=${T}`);
        x.dispose();
        out.dispose();
      }
      layer.dispose();
      want.dispose();
      w.dispose();
      b.dispose();
    }
  });

  it.each(DTYPES)('lookup gives rows of the stored weight times scale (%s), engine-tensor out included', (dtype) => {
    for (const [K, N] of [[1, 1], [5, 17], [300, 40], [129, 33]]) {
      const w = random([N, K], K + N, 3);
      const layer = engine.createLinear(w, { dtype, bias: random([N], 1) });
      const W = stored(w, dtype);
      const ids = [0, N - 1, Math.floor(N / 2), 0, N - 1];
      for (const scale of [1, -2.5, Math.sqrt(K), 0.1]) {
        const got = layer.lookup(ids, { scale });
        const want = new Float32Array(ids.length * K);
        ids.forEach((id, r) => { for (let i = 0; i < K; i++) want[r * K + i] = W[id * K + i] * Math.fround(scale); });
        expectIdentical(got, tensor(want, [ids.length, K]), `${dtype} [${N}, ${K}] scale ${scale}`);
      }
      const out = engine.tensor([3, K]);
      expect(layer.lookup(Int32Array.of(N - 1, 0, N - 1), { out })).toBe(out);
      expectIdentical(out, layer.lookup([N - 1, 0, N - 1]), `${dtype} lookup into an engine tensor`);
      out.dispose();
      expect([...layer.lookup([]).shape]).toEqual([0, K]);
      layer.dispose();
    }
  });

  it('lookup refuses bad ids: out of range and non-integers (RangeError naming the index), non-array-likes (TypeError)', () => {
    const layer = engine.createLinear(random([6, 4], 1));
    expect(() => layer.lookup([0, 6])).toThrow(RangeError);
    expect(() => layer.lookup([0, 6])).toThrow(/ids\[1\] = 6 .*\[0, 6\)/);
    expect(() => layer.lookup([-1])).toThrow(/ids\[0\] = -1/);
    expect(() => layer.lookup([1.5])).toThrow(RangeError);
    expect(() => layer.lookup([NaN])).toThrow(RangeError);
    expect(() => layer.lookup(['1' as never])).toThrow(TypeError);
    expect(() => layer.lookup(3 as never)).toThrow(TypeError);
    expect(() => layer.lookup(null as never)).toThrow(TypeError);
    expect(() => layer.lookup('01' as never)).toThrow(TypeError);
    expect(() => layer.lookup([1], { scale: '2' as never })).toThrow(TypeError);
    expect(() => layer.lookup([1], { scale: Infinity })).toThrow(RangeError);
    expect(() => layer.lookup([1], { out: tensor(new Float32Array(8), [2, 4]) })).toThrow(/options.out: expected shape \[1, 4\]/);
    layer.dispose();
  });

  it('refuses bad arguments with TypeError and RangeError', () => {
    const w = random([4, 3], 1);
    expect(() => engine.createLinear(null as never)).toThrow(TypeError);
    expect(() => engine.createLinear({ data: [1, 2], shape: [1, 2] } as never)).toThrow(TypeError);
    expect(() => engine.createLinear(random([12], 1))).toThrow(/createLinear: weight: expected a 2-D tensor/);
    expect(() => engine.createLinear(tensor([], [0, 3]))).toThrow(RangeError);
    expect(() => engine.createLinear(tensor([], [3, 0]))).toThrow(RangeError);
    expect(() => engine.createLinear(w, 'float16' as never)).toThrow(TypeError);
    expect(() => engine.createLinear(w, { bias: random([3], 2) })).toThrow(/options.bias: expected shape \[4\].*got \[3\]/);
    expect(() => engine.createLinear(w, { bias: [1, 2, 3, 4] as never })).toThrow(TypeError);
    expect(() => engine.createLinear(w, { dtype: 'bfloat16' as never })).toThrow(RangeError);
    expect(() => engine.createLinear(w, { dtype: 16 as never })).toThrow(TypeError);
    expect(() => engine.createLinear(w, { groupSize: '32' as never })).toThrow(TypeError);
    for (const dtype of ['int8', 'int4'] as const) {
      expect(() => engine.createLinear(random([4, 64], 1), { dtype, groupSize: 48 })).toThrow(/groupSize must be a multiple of 32/);
    }
    const layer = engine.createLinear(w);
    expect(() => layer.forward(random([2, 4], 1))).toThrow(/LinearLayer.forward: x: expected shape \[\*, 3\]/);
    expect(() => layer.forward(random([3], 1))).toThrow(RangeError);
    expect(() => layer.forward([1, 2, 3] as never)).toThrow(TypeError);
    expect(() => layer.forward(random([2, 3], 1), { out: random([2, 3], 2) })).toThrow(/options.out: expected shape \[2, 4\]/);
    expect(() => layer.forward(random([2, 3], 1), 5 as never)).toThrow(TypeError);
    layer.dispose();
    layer.dispose(); // twice is harmless
    expect(() => layer.forward(random([2, 3], 1))).toThrow(/disposed/);
    expect(() => layer.lookup([0])).toThrow(/disposed/);
  });

  it('reports the bytes its stored weight takes, bias included', () => {
    const pad = (n: number) => (engine.name === 'wasm' ? Math.ceil(n / 16) * 16 : n); // wasm: whole panels of 16 rows
    for (const [N, K] of [[16, 8], [17, 5], [1, 1]]) {
      expect(engine.createLinear(random([N, K], 1)).bytes).toBe(pad(N) * K * 4);
      expect(engine.createLinear(random([N, K], 1), { bias: random([N], 2) }).bytes).toBe(pad(N) * K * 4 + N * 4);
      expect(engine.createLinear(random([N, K], 1), { dtype: 'float16', bias: random([N], 2) }).bytes).toBe(pad(N) * K * 2 + N * 4);
    }
  });
});

describe('createLinear on a disposed wasm engine', () => {
  it('a layer of a disposed engine throws on use; its dispose stays harmless', async () => {
    const engine = await createEngine();
    const layers = DTYPES.map((dtype) => engine.createLinear(random([20, 10], 1), { dtype }));
    engine.dispose();
    for (const layer of layers) {
      expect(() => layer.forward(random([1, 10], 2))).toThrow(/engine has been disposed/);
      expect(() => layer.lookup([1])).toThrow(/engine has been disposed/);
      layer.dispose();
      layer.dispose();
    }
    expect(() => engine.createLinear(random([2, 2], 1))).toThrow(/engine has been disposed/);
  });
});

/** A wasm context of our own over fresh kernels (split.ts): its arena's held bytes can be read, its "threads" split every call. */
async function ownContext(threads: number, limit?: number): Promise<{ ctx: WasmContext; kernels: Kernels }> {
  const ctx = await splitContext(threads, { limit });
  return { ctx, kernels: ctx.kernels };
}

describe('createLinear on wasm: thread splits', () => {
  it('splitting the panels (T <= 16) or the rows (T > 16) among 2 and 3 threads gives the bits of one', async () => {
    const contexts = await Promise.all([1, 2, 3].map((t) => ownContext(t)));
    for (const dtype of DTYPES) {
      for (const [N, K] of [[100, 300], [33, 70], [64, 513]]) {
        const w = copy(random([N, K], N + K, 0.1)), b = random([N], 3);
        if (K === 70) w.data[3] = Infinity; // the general binary16 conversion
        const layers = contexts.map(({ ctx }) => createWasmLinear(() => ctx, w, { bias: b, dtype }));
        for (const T of [1, 2, 3, 5, 16, 17, 40]) {
          const x = random([T, K], T);
          const [one, ...more] = layers.map((l) => l.forward(x));
          expectClose(one, expected(x, w, b, dtype), `${dtype} [${N}, ${K}] T=${T}`);
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
      for (const dtype of DTYPES) {
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
});

describe('createLinear on wasm: nothing held after a refused create', () => {
  it('bad arguments, a weight past the memory limit, a bias that is a stale view of engine memory', async () => {
    const { ctx, kernels } = await ownContext(1, 2 ** 20 * 3);
    const create = (w: Tensor, o?: object) => createWasmLinear(() => ctx, w, o);
    const keep = create(random([8, 8], 1)); // a block held before, to check that the refused ones leave it
    const held = ctx.arena.heldBytes;
    const refused: [string, () => unknown][] = [
      ['bias shape', () => create(random([4, 3], 1), { bias: random([3], 2) })],
      ['int8 groupSize', () => create(random([4, 32], 1), { dtype: 'int8', groupSize: 48 })],
      ['float32 past the limit', () => create(random([1024, 1024], 1))],
      // the binary16 block fits; the float32 weight copied in for conversion does not
      ['float16 past the limit', () => create(random([800, 800], 1), { dtype: 'float16' })],
      ['stale bias view', () => create(random([4, 3], 1), { bias: { data: new Float32Array(kernels.memory.buffer, 0, 4), shape: [4] } })],
      ['stale bias view, float16', () => create(random([4, 3], 1), { dtype: 'float16', bias: { data: new Float32Array(kernels.memory.buffer, 0, 4), shape: [4] } })],
    ];
    for (const [label, call] of refused) {
      expect(call, label).toThrow();
      expect(ctx.arena.heldBytes, label).toBe(held);
    }
    expect(() => create(random([1024, 1024], 1))).toThrow(RangeError);
    const layer = create(random([100, 100], 1), { dtype: 'float16', bias: random([100], 2) }); // still usable
    expect(ctx.arena.heldBytes).toBe(held + layer.bytes);
    layer.dispose();
    keep.dispose();
    expect(ctx.arena.heldBytes).toBe(0);
  });
});
