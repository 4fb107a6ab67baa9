// Hostile and careless input (docs/VALIDATION.md): sizes whose arithmetic overflows, integers past
// 32 bits, floats past float32, arguments whose getters change between reads, objects disposed in
// the middle of a call, empty but huge shapes, markup in colours. Every case runs on the reference
// engine and on wasm engines of 1 and 2 threads, and ends with the engine checked healthy.
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { attentionHeatmap, createEngine, reference, tensor, type Engine, type Tensor } from '../src/index.js';
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

  it('refuses threads of the wrong type with a TypeError', async () => {
    await expect(createEngine({ threads: '2' as never })).rejects.toThrow(TypeError);
    await expect(createEngine({ threads: 0 })).rejects.toThrow(RangeError);
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
