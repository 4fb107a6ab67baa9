// Hostile and careless input (docs/VALIDATION.md): sizes whose arithmetic overflows, integers past
// 32 bits, floats past float32, arguments whose getters change between reads, objects disposed in
// the middle of a call, empty but huge shapes (which every op finishes at once), factory counts of 0,
// a wrong options.out beside inputs that would take seconds to compute, markup in colours. Every case
// runs on the reference engine and on wasm engines of 1 and 2 threads, and ends with the engine
// checked healthy.
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { attentionHeatmap, createEngine, type Engine, mask, reference, type Tensor, tensor } from '../src/index.js';
import { expectClose, random } from './support.js';

const engines: [string, Engine][] = [['reference', reference], ['wasm, 1 thread', await createEngine()], ['wasm, 2 threads', await createEngine({ threads: 2 })]];
afterAll(() => engines.slice(1).forEach(([, e]) => e.dispose()));

/** Canaries made before the hostile calls: a cache, an engine tensor and a matmul whose results are known. */
function canaries(e: Engine) {
  const cache = e.createKVCache({ batch: 1, kvHeads: 2, headDim: 4, capacity: 8 });
  cache.append(random([1, 2, 3, 4], 1), random([1, 2, 3, 4], 2));
  const kept = cache.read();
  const t = e.tensor([3, 5]);
  t.data.set(random([3, 5], 3).data);
  const a = random([17, 9], 4), b = random([9, 13], 5);
  const product = reference.matmul(a, b);
  return {
    /** The engine still computes right, reserves new blocks, and the canaries hold what they held. */
    expectHealthy(label: string) {
      expectClose(e.matmul(a, b), product, `${label}: matmul`);
      const fresh = e.tensor([2, 2]);
      expect(Array.from(fresh.data), `${label}: a new engine tensor`).toEqual([0, 0, 0, 0]);
      fresh.dispose();
      expect(cache.length, `${label}: cache length`).toBe(3);
      expectClose(cache.read().keys, kept.keys, `${label}: cache keys`);
      expectClose(cache.read().values, kept.values, `${label}: cache values`);
      expectClose(t, random([3, 5], 3), `${label}: engine tensor`);
    },
    dispose() { cache.dispose(); t.dispose(); },
  };
}

const q4 = random([1, 2, 5, 4], 11), k4 = random([1, 2, 7, 4], 12), v4 = random([1, 2, 7, 3], 13);

/** A tensor of no elements, however large its other sizes. */
const none = (shape: number[]): Tensor => ({ data: new Float32Array(0), shape });
/** A tensor of zeros (made at once, unlike random values: the large inputs below only need a size). */
const zeros = (shape: number[]): Tensor => ({ data: new Float32Array(shape.reduce((a, b) => a * b, 1)), shape });
/**
 * A bound on calls that must return at once: generous, far above what they take (a few
 * milliseconds), far below what computing would take (seconds). A guard against hangs, not a benchmark.
 */
const AT_ONCE_MS = 1000;
function timed<T>(label: string, call: () => T): T {
  const start = performance.now();
  const result = call();
  expect(performance.now() - start, `${label}: milliseconds`).toBeLessThan(AT_ONCE_MS);
  return result;
}
function timedThrow(label: string, call: () => unknown, error: RegExp): void {
  const start = performance.now();
  expect(call, label).toThrow(error);
  expect(performance.now() - start, `${label}: milliseconds to refuse`).toBeLessThan(AT_ONCE_MS);
}
/** The shapes of what an op returned: its tensor, or its output and weights. */
function shapesOf(r: Tensor | { output: Tensor; weights?: Tensor }): [readonly number[], (readonly number[])?] {
  return 'output' in r ? [r.output.shape, r.weights?.shape] : [r.shape];
}

// Large inputs for the options.out checks below: what computing them would take on the reference
// engine (seconds) is what a refusal must not take. Zeros, made once for every engine.
const big = {
  a: zeros([800, 800]), x: zeros([1024, 1024]), x3: zeros([1, 1024, 1024]),
  kq: zeros([20000, 1]), kv: zeros([20000]),
  aq: zeros([1, 2000, 1]), additive: { Wq: zeros([64, 1]), Wk: zeros([64, 1]), wv: zeros([1, 64]) },
  q: zeros([1, 1, 8192, 8]), x8: zeros([1, 8192, 8]), padding: mask(new Uint8Array(8192), [1, 8192]),
  mha: { numHeads: 2, inProjWeight: zeros([24, 8]), outProjWeight: zeros([8, 8]) },
  rows: zeros([1, 1, 65536, 64]), t: zeros([4096, 1, 8]), t8: zeros([4096, 8]),
  gqa: { numHeads: 1, numKvHeads: 1, headDim: 8, qProjWeight: zeros([8, 8]), kProjWeight: zeros([8, 8]), vProjWeight: zeros([8, 8]), oProjWeight: zeros([8, 8]) },
};

describe.each(engines)('hostile input on %s', (name, engine) => {
  let health: ReturnType<typeof canaries>;
  beforeAll(() => { health = canaries(engine); });
  afterAll(() => health.dispose());

  it('refuses sizes whose product is NaN, unsafe or past 2^30, before touching memory', () => {
    const calls: [string, () => unknown][] = [
      ['engine.tensor NaN product', () => engine.tensor([1e200, 1e200, 0])],
      ['engine.tensor unsafe size', () => engine.tensor([2 ** 53, 0])],
      ['engine.tensor 2^31 elements', () => engine.tensor([2 ** 16, 2 ** 15])],
      ['createKVCache NaN product', () => engine.createKVCache({ batch: 1e200, kvHeads: 1e200, headDim: 0, capacity: 1 })],
      ['createKVCache over 2^30', () => engine.createKVCache({ batch: 2 ** 16, kvHeads: 2 ** 16, headDim: 1, capacity: 1 })],
      ['tensor NaN product', () => tensor([], [1e200, 1e200, 0])],
      ['matmul empty but huge', () => engine.matmul(tensor([], [1e12, 0, 0]), tensor([], [0, 3]))],
      ['matmul result past 2^30', () => engine.matmul(tensor(new Float32Array(2 ** 16), [2 ** 16, 1]), tensor(new Float32Array(2 ** 16), [1, 2 ** 16]))],
      ['positionalEncoding empty but huge', () => engine.positionalEncoding(1e13, 0)],
      ['attention weights past 2^30', () => engine.scaledDotProductAttention(tensor([], [1, 2 ** 16, 0]), tensor([], [1, 2 ** 16, 0]), tensor([], [1, 2 ** 16, 0]), { returnWeights: true })],
    ];
    for (const [label, call] of calls) expect(call, label).toThrow(RangeError);
    expect(() => engine.tensor([1e200, 1e200, 0])).toThrow(/safe integers/);
    expect(() => engine.tensor([2 ** 16, 2 ** 15])).toThrow(/too large/);
    health.expectHealthy(name);
  });

  it('returns at once when the result is empty, however many empty rows it has', () => {
    expect(engine.matmul(tensor([], [2 ** 28, 0, 0]), tensor([], [0, 4])).shape).toEqual([2 ** 28, 0, 4]);
    expect(engine.positionalEncoding(1e9, 0).shape).toEqual([1e9, 0]);
    const empty = tensor([], [1, 1, 2 ** 29, 0]);
    expect(engine.scaledDotProductAttention(empty, empty, empty).output.shape).toEqual([1, 1, 2 ** 29, 0]);
    expect(engine.kernelRegression(tensor([], [2 ** 29, 0]), tensor([], [2 ** 29, 0]), tensor([], [2 ** 29, 0])).output.shape).toEqual([2 ** 29, 0]);
    const huge = tensor([], [2 ** 29, 0]);
    expect(engine.kernelRegressionLoss(huge, huge, huge, huge, { leaveOneOut: true }).output.shape).toEqual([2 ** 29, 0]);
    health.expectHealthy(name);
  }, 10_000);

  it('finishes at once on an empty input, whatever its other sizes, in every op, with the empty result of the right shape', () => {
    const G = 2 ** 29, N = 1e9;
    const mha = { numHeads: 1, inProjWeight: none([0, 0]), outProjWeight: none([0, 0]) };
    const additive = { Wq: none([0, 0]), Wk: none([0, 0]), wv: none([1, 0]) };
    const layer = engine.createMultiHeadAttention(mha);
    const pool = engine.createKVPool({ kvHeads: 1, headDim: 4, blocks: 1 });
    const sequence = pool.sequence();
    // [label, call, the output's shape, the weights' shape when they are asked for]
    const calls: [string, () => Tensor | { output: Tensor; weights?: Tensor }, number[], number[]?][] = [
      ['maskedSoftmax [1e9, 1, 0]', () => engine.maskedSoftmax({ data: new Float32Array(0), shape: [1e9, 1, 0] }), [N, 1, 0]],
      ['maskedSoftmax, a valid length per batch', () => engine.maskedSoftmax(none([1, N, 0]), [0]), [1, N, 0]],
      ['maskedSoftmax, no batch', () => engine.maskedSoftmax(none([0, N, 1]), []), [0, N, 1]],
      ['softmax', () => engine.softmax(none([N, 0])), [N, 0]],
      ['matmul', () => engine.matmul(none([G, 0, 0]), none([0, 1])), [G, 0, 1]],
      ['matmul, no rows', () => engine.matmul(none([0, G]), none([G, 0])), [0, 0]],
      ['kernelRegression', () => engine.kernelRegression(none([G, 0]), none([0, 0]), none([0, 0]), { returnWeights: true }), [G, 0], [G, 0]],
      ['kernelRegressionLoss', () => engine.kernelRegressionLoss(none([G, 0]), none([G, 0]), none([G, 0]), none([G, 0]), { leaveOneOut: true }), [G, 0]],
      ['additiveAttention', () => engine.additiveAttention(none([G, 1, 0]), none([G, 1, 0]), none([G, 1, 0]), additive), [G, 1, 0]],
      ['additiveAttention, weights and validLens', () => engine.additiveAttention(none([1, G, 0]), none([1, 0, 0]), none([1, 0, 0]), additive, { returnWeights: true, validLens: [0] }), [1, G, 0], [1, G, 0]],
      ['scaledDotProductAttention', () => engine.scaledDotProductAttention(none([G, 1, 0]), none([G, 1, 0]), none([G, 1, 0])), [G, 1, 0]],
      ['scaledDotProductAttention, weights', () => engine.scaledDotProductAttention(none([1, G, 0]), none([1, 0, 0]), none([1, 0, 0]), { returnWeights: true }), [1, G, 0], [1, G, 0]],
      ['scaledDotProductAttention, no heads', () => engine.scaledDotProductAttention(none([G, 0, 1, 1]), none([G, 0, 1, 1]), none([G, 0, 1, 1])), [G, 0, 1, 1]],
      ['scaledDotProductAttention, past keys', () => engine.scaledDotProductAttention(none([G, 1, 1, 0]), none([G, 1, 0, 0]), none([G, 1, 0, 0]),
        { pastKey: none([G, 1, 1, 0]), pastValue: none([G, 1, 1, 0]) }), [G, 1, 1, 0]],
      ['scaledDotProductAttention, a mask, validLens, causal', () => engine.scaledDotProductAttention(none([1, G, 0]), none([1, 1, 0]), none([1, 1, 0]),
        { mask: mask([1], [1, 1]), validLens: [1], causal: true }), [1, G, 0]],
      ['multiHeadAttention', () => engine.multiHeadAttention(none([G, 1, 0]), none([G, 1, 0]), none([G, 1, 0]), mha), [G, 1, 0]],
      ['multiHeadAttention, key padding, causal, a zero position', () => engine.multiHeadAttention(none([1, G, 0]), none([1, 1, 0]), none([1, 1, 0]),
        { ...mha, addZeroAttn: true }, { causal: true, keyPaddingMask: mask([0], [1, 1]) }), [1, G, 0]],
      ['multiHeadAttention, weights of every head', () => engine.multiHeadAttention(none([2 ** 27, 0, 4]), none([2 ** 27, 0, 4]), none([2 ** 27, 0, 4]),
        { numHeads: 2, inProjWeight: zeros([12, 4]), outProjWeight: zeros([4, 4]), addZeroAttn: true }, { needWeights: true, averageWeights: false }),
        [2 ** 27, 0, 4], [2 ** 27, 2, 0, 1]],
      ['selfAttention', () => engine.selfAttention(none([G, 1, 0]), mha), [G, 1, 0]],
      ['a multi-head layer', () => layer.forward(none([G, 1, 0]), none([G, 1, 0]), none([G, 1, 0])), [G, 1, 0]],
      ['rotaryEmbedding', () => engine.rotaryEmbedding(none([G, 1, 1, 0])), [G, 1, 1, 0]],
      ['rotaryEmbedding, positions [L]', () => engine.rotaryEmbedding(none([2 ** 27, 0, 2, 4]), { positions: [1, 2] }), [2 ** 27, 0, 2, 4]],
      ['rotaryEmbedding, token-major', () => engine.rotaryEmbedding(none([2 ** 28, 0, 4])), [2 ** 28, 0, 4]],
      ['batchAttention', () => engine.batchAttention(none([0, 2 ** 28, 4]), none([0, 1, 4]), none([0, 1, 4]), { sequences: [sequence], queryLens: [0] }), [0, 2 ** 28, 4]],
      ['positionalEncoding(0, x)', () => engine.positionalEncoding(0, 2 ** 30), [0, 2 ** 30]],
      ['positionalEncoding(x, 0)', () => engine.positionalEncoding(N, 0), [N, 0]],
    ];
    try {
      for (const [label, call, output, weights] of calls) {
        const [got, gotWeights] = shapesOf(timed(label, call));
        expect(got, `${label}: the output's shape`).toEqual(output);
        expect(gotWeights, `${label}: the weights' shape`).toEqual(weights);
      }
      expect(sequence.length).toBe(0);
    } finally {
      layer.dispose();
      pool.dispose();
    }
    health.expectHealthy(name);
  }, 60_000);

  it('refuses a factory count that is not a positive integer: a pool or cache with 0 of anything holds nothing', () => {
    expect(() => engine.createKVPool({ kvHeads: 2, headDim: 16, blocks: 0 })).toThrow(/^createKVPool: options\.blocks must be a positive integer, got 0$/);
    const gqa = { numHeads: 2, numKvHeads: 1, headDim: 2, qProjWeight: zeros([4, 4]), kProjWeight: zeros([2, 4]), vProjWeight: zeros([2, 4]), oProjWeight: zeros([4, 4]) };
    const factories: [string, string[], (name: string, count: number) => unknown][] = [
      ['createKVPool: options', ['kvHeads', 'headDim', 'valueDim', 'blocks', 'blockSize'], (n, c) => engine.createKVPool({ kvHeads: 2, headDim: 16, blocks: 4, [n]: c })],
      ['createKVCache: options', ['batch', 'kvHeads', 'headDim', 'valueDim', 'capacity'], (n, c) => engine.createKVCache({ batch: 1, kvHeads: 2, headDim: 4, capacity: 8, [n]: c })],
      ['createGroupedQueryAttention: params', ['numHeads', 'numKvHeads', 'headDim'], (n, c) => engine.createGroupedQueryAttention({ ...gqa, [n]: c })],
    ];
    for (const count of [0, 1.5, NaN, Infinity, -1, -0.5]) {
      for (const [what, names, make] of factories) {
        for (const n of names) {
          const message = new RegExp(`^${what}\\.${n} must be a positive integer, got ${String(count).replace('.', '\\.')}$`);
          expect(() => make(n, count), `${what}.${n} = ${count}`).toThrow(RangeError);
          expect(() => make(n, count), `${what}.${n} = ${count}`).toThrow(message);
        }
      }
      expect(() => engine.createMultiHeadAttention({ numHeads: count, inProjWeight: zeros([12, 4]), outProjWeight: zeros([4, 4]) }), `numHeads ${count}`)
        .toThrow(/^createMultiHeadAttention: params\.numHeads must be a positive integer that divides E = 4, got /);
    }
    health.expectHealthy(name);
  });

  it('checks options.out before anything is computed: a wrong out is refused at once, whatever the call would cost', () => {
    const layer = engine.createMultiHeadAttention(big.mha);
    const gqa = engine.createGroupedQueryAttention(big.gqa);
    const pool = engine.createKVPool({ kvHeads: 1, headDim: 8, blocks: 300, blockSize: 16 });
    const sequence = pool.sequence();
    // [op, call with an out one column short, the result's shape]
    const calls: [string, (out: Tensor) => unknown, number[]][] = [
      ['matmul', (out) => engine.matmul(big.a, big.a, { out }), [800, 800]],
      ['softmax', (out) => engine.softmax(big.x, { out }), [1024, 1024]],
      ['maskedSoftmax', (out) => engine.maskedSoftmax(big.x3, [512], { out }), [1, 1024, 1024]],
      ['kernelRegression', (out) => engine.kernelRegression(big.kq, big.kq, big.kv, { out, returnWeights: false }), [20000]],
      ['kernelRegressionLoss', (out) => engine.kernelRegressionLoss(big.kq, big.kq, big.kv, big.kv, { out, leaveOneOut: true }), [20000]],
      ['additiveAttention', (out) => engine.additiveAttention(big.aq, big.aq, big.aq, big.additive, { out, validLens: [1000] }), [1, 2000, 1]],
      ['scaledDotProductAttention', (out) => engine.scaledDotProductAttention(big.q, big.q, big.q, { out, causal: true }), [1, 1, 8192, 8]],
      ['multiHeadAttention', (out) => engine.multiHeadAttention(big.x8, big.x8, big.x8, big.mha, { out, keyPaddingMask: big.padding }), [1, 8192, 8]],
      ['selfAttention', (out) => engine.selfAttention(big.x8, big.mha, { out, keyPaddingMask: big.padding }), [1, 8192, 8]],
      ['MultiHeadAttentionLayer.forward', (out) => layer.forward(big.x8, big.x8, big.x8, { out, keyPaddingMask: big.padding }), [1, 8192, 8]],
      ['rotaryEmbedding', (out) => engine.rotaryEmbedding(big.rows, { out }), [1, 1, 65536, 64]],
      ['batchAttention', (out) => engine.batchAttention(big.t, big.t, big.t, { sequences: [sequence], queryLens: [4096], out }), [4096, 1, 8]],
      ['GroupedQueryAttentionLayer.forward', (out) => gqa.forward(big.t8, { sequences: [sequence], queryLens: [4096], out }), [4096, 8]],
    ];
    try {
      for (const [op, call, shape] of calls) {
        const wrong = [...shape.slice(0, -1), shape[shape.length - 1] - 1];
        const format = (s: number[]) => `\\[${s.join(', ')}\\]`;
        const message = new RegExp(`^${op}: options\\.out: expected shape ${format(shape)} \\(the shape of the result\\), got ${format(wrong)}$`);
        timedThrow(op, () => call(zeros(wrong)), message);
      }
      expect(sequence.length, 'the refused calls appended nothing').toBe(0);
      expect(pool.freeBlocks).toBe(300);
    } finally {
      layer.dispose();
      gqa.dispose();
      pool.dispose();
    }
    health.expectHealthy(name);
  });

  it('treats window sides past what the shapes allow as unbounded (no 32-bit wrap)', () => {
    const all = engine.scaledDotProductAttention(q4, k4, v4);
    const causal = engine.scaledDotProductAttention(q4, k4, v4, { causal: true });
    for (const window of [{ right: 2 ** 31 - 1 }, { left: 2 ** 32 }, { left: 2 ** 31, right: 2 ** 53 - 1 }, { left: 12, right: 12 }]) {
      expectClose(engine.scaledDotProductAttention(q4, k4, v4, { window }).output, all.output, JSON.stringify(window));
    }
    expectClose(engine.scaledDotProductAttention(q4, k4, v4, { causal: true, window: { left: 2 ** 32 } }).output, causal.output, 'causal');
    // inside the range a side still counts, and both engines agree on it
    expectClose(engine.scaledDotProductAttention(q4, k4, v4, { window: { left: 1, right: 0 } }).output,
      reference.scaledDotProductAttention(q4, k4, v4, { window: { left: 1, right: 0 } }).output);
    health.expectHealthy(name);
  });

  it('refuses floats that float32 kernels would turn into Infinity or 0, and computes the ones it takes like the reference', () => {
    for (const x of [1e39, 1e-46, 2 ** 127, 2 ** -127]) {
      expect(() => engine.scaledDotProductAttention(q4, k4, v4, { scale: x }), `scale ${x}`).toThrow(/scale must be 0 or of a magnitude in \[2\^-126, 2\^126\]/);
      expect(() => engine.scaledDotProductAttention(q4, k4, v4, { softcap: x }), `softcap ${x}`).toThrow(RangeError);
    }
    const q = random([5, 2], 21), k = random([7, 2], 22), v = random([7, 1], 23);
    for (const w of [1e20, 1e-20]) expect(() => engine.kernelRegression(q, k, v, { w }), `w ${w}`).toThrow(/options\.w must be 0 or of a magnitude/);
    for (const scale of [0, 2 ** -126, 2 ** 60]) {
      expectClose(engine.scaledDotProductAttention(q4, k4, v4, { scale }).output, reference.scaledDotProductAttention(q4, k4, v4, { scale }).output, `scale ${scale}`);
    }
    for (const w of [0, 2 ** -63, 1e9]) {
      expectClose(engine.kernelRegression(q, k, v, { w }).output, reference.kernelRegression(q, k, v, { w }).output, `w ${w}`);
    }
    health.expectHealthy(name);
  });

  it('reads every argument once: getters that answer differently later change nothing', () => {
    const a = random([6, 5], 31), b = random([5, 4], 32);
    const want = reference.matmul(a, b);
    let reads = 0;
    const shifty = { shape: [6, 5], get data() { reads++; return reads === 1 ? a.data : new Float32Array(1); } };
    expectClose(engine.matmul(shifty as Tensor, b), want, 'a data getter');
    expect(reads).toBe(1);
    // a shape that a Proxy answers differently on each read
    let shapeReads = 0;
    const shape = new Proxy([6, 5], { get: (t, p) => (p === '0' && shapeReads++ > 0 ? 1 : Reflect.get(t, p)) });
    expectClose(engine.matmul({ data: a.data, shape } as Tensor, b), want, 'a shape proxy');
    // options.cache answering a cache first, then garbage
    const cache = engine.createKVCache({ batch: 1, kvHeads: 2, headDim: 4, valueDim: 3, capacity: 16 });
    let cacheReads = 0;
    const options = { get cache() { return cacheReads++ === 0 ? cache : { capacity: 1e9, append() {} }; } };
    engine.scaledDotProductAttention(q4, k4, v4, options as never);
    expect(cache.length).toBe(7);
    expect(cacheReads).toBe(1);
    cache.dispose();
    // an options getter that shrinks the query's resizable buffer after the query was read
    // resizable buffers (ES2024) are in Node 20; the test project's lib is older
    type Resizable = ArrayBuffer & { resize(bytes: number): void };
    const resizable = new (ArrayBuffer as unknown as new (bytes: number, options: { maxByteLength: number }) => Resizable)(q4.data.byteLength, { maxByteLength: q4.data.byteLength * 2 });
    const q = { data: new Float32Array(resizable), shape: q4.shape };
    q.data.set(q4.data);
    const shrinking = { get causal() { resizable.resize(0); return true; } };
    const got = engine.scaledDotProductAttention(q as Tensor, k4, v4, shrinking as never);
    expectClose(got.output, reference.scaledDotProductAttention(q4, k4, v4, { causal: true }).output, 'a shrunk resizable buffer');
    // a getter that detaches an input read before it
    const detachable = Float32Array.from(a.data);
    const detaching = { get transposeB() { structuredClone(detachable.buffer, { transfer: [detachable.buffer] }); return false; } };
    expect(() => engine.matmul({ data: detachable, shape: [6, 5] }, b, detaching as never)).toThrow(TypeError);
    health.expectHealthy(name);
  });

  it('accepts a Float32Array from another realm, and a typed array whose own length lies', () => {
    const foreign = runInNewContext('new Float32Array([1, 2, 3, 4, 5, 6])') as Float32Array;
    expect(foreign instanceof Float32Array).toBe(false);
    const x = { data: foreign, shape: [2, 3] };
    expectClose(engine.softmax(x), reference.softmax(tensor([1, 2, 3, 4, 5, 6], [2, 3])), 'another realm');
    const liar = new Float32Array(6);
    Object.defineProperty(liar, 'length', { value: 1e9 });
    expect(() => engine.softmax({ data: liar, shape: [1e9] })).toThrow(/needs 1000000000 values, data holds 6/);
    expect(() => engine.softmax({ data: new Int32Array(6) as never, shape: [6] })).toThrow(/must be a Float32Array, got an Int32Array/);
    health.expectHealthy(name);
  });

  it('changes nothing when a getter disposes an engine tensor the call already read', () => {
    const t = engine.tensor([1, 2, 5, 4]);
    t.data.set(q4.data);
    const options = { get causal() { t.dispose(); return true; } };
    if (name === 'reference') {
      // the reference engine read the values already: the call computes with them
      expectClose(engine.scaledDotProductAttention(t, k4, v4, options as never).output, reference.scaledDotProductAttention(q4, k4, v4, { causal: true }).output);
    } else {
      expect(() => engine.scaledDotProductAttention(t, k4, v4, options as never)).toThrow(/outside any live engine tensor/);
    }
    health.expectHealthy(name);
  });

  it('never writes a result into engine memory that is not a live engine tensor', () => {
    const t = engine.tensor([4]);
    const view = t.data;
    const overMemory = { data: new Float32Array(view.buffer, 0, 4), shape: [4] };
    if (name !== 'reference') expect(() => engine.softmax(random([4], 41), { out: overMemory })).toThrow(/outside any live engine tensor/);
    t.dispose();
    if (name !== 'reference') expect(() => engine.softmax(random([4], 41), { out: { data: view, shape: [4] } })).toThrow(Error);
    health.expectHealthy(name);
  });

  it('says what was wrong: data of strings or objects, sparse arrays, and an out-of-memory that names the call', () => {
    expect(() => tensor('abcd' as never, [4])).toThrow(TypeError);
    expect(() => tensor(['1', 2] as never, [2])).toThrow(/data\[0\] is a string, expected a number/);
    expect(() => tensor([{}, 2] as never, [2])).toThrow(/data\[0\] is an object/);
    // biome-ignore lint/suspicious/noSparseArray: the hole is the hostile input
    expect(() => tensor([1, , 3] as never, [3])).toThrow(/data\[1\] is a undefined|data\[1\] is an? undefined/);
    expect(() => tensor(new BigInt64Array(2) as never, [2])).toThrow(TypeError);
    expect(Array.from(tensor(Object.freeze([1, 2]), [2]).data)).toEqual([1, 2]);
    health.expectHealthy(name);
  });
});

describe('the wasm engine: threads and messages', () => {
  it('caps threads at 65 with a warning, and computes every row', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const e = await createEngine({ threads: 70 });
    try {
      expect(e.info.threads).toBe(65);
      expect(warn.mock.calls.flat().join(' ')).toMatch(/threads: 70 is more than the 65/);
      const a = random([300, 64], 51), b = random([64, 200], 52);
      expectClose(e.matmul(a, b), reference.matmul(a, b));
    } finally {
      e.dispose();
      warn.mockRestore();
    }
  }, 60_000);

  it('refuses threads of the wrong type with a TypeError, and a count that is not a positive integer with a RangeError', async () => {
    await expect(createEngine({ threads: '2' as never })).rejects.toThrow(TypeError);
    for (const threads of [0, 1.5, NaN, Infinity, -1]) {
      await expect(createEngine({ threads }), `threads ${threads}`).rejects.toThrow(RangeError);
      await expect(createEngine({ threads })).rejects.toThrow(`createEngine: options.threads must be a positive integer or 'auto', got ${threads}`);
    }
    for (const maxMemoryBytes of [0, NaN, Infinity, -1]) {
      await expect(createEngine({ maxMemoryBytes }), `maxMemoryBytes ${maxMemoryBytes}`).rejects.toThrow(RangeError);
    }
  });

  it('reports a file that is not wasm without echoing its bytes', async () => {
    const page = new TextEncoder().encode('<html>404 secret-token</html>');
    const error = await createEngine({ wasm: page }).then(() => new Error('no error'), (e: unknown) => e as Error);
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toMatch(/not a WebAssembly module/);
    expect(error.message).not.toMatch(/3c|secret|html/);
  });

  it('names the op and the shapes when the memory limit is reached', async () => {
    const e = await createEngine({ maxMemoryBytes: 2 ** 20 });
    try {
      expect(() => e.matmul(random([600, 1], 1), random([1, 600], 2))).toThrow(/^matmul: a \[600, 1\], b \[1, 600\]: needs \d+ bytes/);
      expect(() => e.tensor([300_000])).toThrow(/^engine\.tensor: shape \[300000\]: needs/);
      expect(() => e.createKVCache({ batch: 1, kvHeads: 1, headDim: 4, capacity: 100_000 })).toThrow(/^createKVCache: keys \[1, 1, 100000, 4\]/);
      const t = e.tensor([2]);
      expect(Array.from(t.data)).toEqual([0, 0]);
    } finally {
      e.dispose();
    }
  });
});

describe('attentionHeatmap colours', () => {
  const w = tensor([0.25, 0.75], [1, 2]);
  it('refuses a colormap that returns markup, and takes CSS colours', () => {
    expect(() => attentionHeatmap(w, { colormap: () => 'red" onload="alert(1)' })).toThrow(/not a CSS colour/);
    expect(() => attentionHeatmap(w, { colormap: () => '#fff"/><script>' })).toThrow(RangeError);
    expect(() => attentionHeatmap(w, { colormap: () => 3 as never })).toThrow(TypeError);
    for (const c of ['#abc', '#a1b2c3', '#a1b2c3d4', 'rgb(10, 20, 30)', 'hsl(120deg 50% 50% / 0.5)', 'steelblue']) {
      expect(attentionHeatmap(w, { colormap: () => c })).toContain(`fill="${c}"`);
    }
  });
});
