// Bad input: TypeError for a wrong type, RangeError for a shape that does not fit, a message that
// names the argument and both shapes, and an engine that still works afterwards.
import { describe, expect, it } from 'vitest';
import { createEngine, mask, tensor, type Engine } from '../src/index.js';
import { runtimeHasRelaxedSimd } from '../src/wasm/loader.js';
import { engines, expectClose, random } from './support.js';

const all = await engines();

const q = random([1, 2, 3, 4], 1), k = random([1, 2, 5, 4], 2), v = random([1, 2, 5, 6], 3);
const good = (e: Engine) => e.scaledDotProductAttention(q, k, v, { causal: true }).output;
const expected = good(all[0]);
const mhaParams = { numHeads: 2, inProjWeight: random([12, 4], 4), outProjWeight: random([4, 4], 5) };

type Call = [string, typeof TypeError | typeof RangeError, RegExp, (e: Engine) => unknown];
const calls: Call[] = [
  ['matmul a not a tensor', TypeError, /matmul: a/, (e) => e.matmul([1, 2] as never, q)],
  ['matmul data not Float32Array', TypeError, /Float32Array/, (e) => e.matmul({ data: [1, 2], shape: [1, 2] } as never, q)],
  ['matmul inner sizes', RangeError, /\[2, 3\].*\[4, 5\]/, (e) => e.matmul(random([2, 3], 1), random([4, 5], 2))],
  ['matmul scalar', RangeError, /at least 1-D/, (e) => e.matmul(tensor([3], []), random([3, 2], 2))],
  ['matmul batch broadcast', RangeError, /\[2\].*\[3\]/, (e) => e.matmul(random([2, 2, 3], 1), random([3, 3, 2], 2))],
  ['matmul options', TypeError, /transposeB/, (e) => e.matmul(random([2, 3], 1), random([3, 2], 2), { transposeB: 'yes' as never })],
  ['shape mismatch', RangeError, /needs 6 values, data holds 5/, (e) => e.softmax({ data: new Float32Array(5), shape: [2, 3] })],
  ['maskedSoftmax rank', RangeError, /3-D/, (e) => e.maskedSoftmax(random([2, 3], 1), [1, 1])],
  ['maskedSoftmax lens length', RangeError, /validLens: expected length 2 or 4, got 3/, (e) => e.maskedSoftmax(random([2, 2, 3], 1), [1, 1, 1])],
  ['maskedSoftmax lens range', RangeError, /\[0, 3\], got 4/, (e) => e.maskedSoftmax(random([2, 2, 3], 1), [1, 4])],
  ['maskedSoftmax lens type', TypeError, /validLens/, (e) => e.maskedSoftmax(random([2, 2, 3], 1), 3 as never)],
  ['attention key feature size', RangeError, /key feature size 5.*\[1, 2, 3, 4\].*\[1, 2, 5, 5\]/, (e) => e.scaledDotProductAttention(q, random([1, 2, 5, 5], 1), v)],
  ['attention rank', RangeError, /query: expected a 3-D or 4-D tensor, got shape \[3, 4\]/, (e) => e.scaledDotProductAttention(random([3, 4], 1), k, v)],
  ['attention value length', RangeError, /value/, (e) => e.scaledDotProductAttention(q, k, random([1, 2, 4, 6], 1))],
  ['attention heads', RangeError, /multiple of key\/value heads/, (e) => e.scaledDotProductAttention(random([1, 3, 3, 4], 1), k, v)],
  ['attention mask shape', RangeError, /mask: shape \[4, 5\] does not broadcast to \[1, 2, 3, 5\]/, (e) => e.scaledDotProductAttention(q, k, v, { mask: mask(new Array(20).fill(1), [4, 5]) })],
  ['attention mask dtype', TypeError, /Uint8Array \(boolean\) or Float32Array/, (e) => e.scaledDotProductAttention(q, k, v, { mask: { data: new Int32Array(15), shape: [3, 5] } as never })],
  ['attention causal', RangeError, /causal/, (e) => e.scaledDotProductAttention(q, k, v, { causal: 'top-right' as never })],
  ['attention scale NaN', RangeError, /scale/, (e) => e.scaledDotProductAttention(q, k, v, { scale: NaN })],
  ['attention softcap negative', RangeError, /softcap/, (e) => e.scaledDotProductAttention(q, k, v, { softcap: -1 })],
  ['attention window', RangeError, /window.left/, (e) => e.scaledDotProductAttention(q, k, v, { window: { left: -2 } })],
  ['attention validLens', RangeError, /validLens/, (e) => e.scaledDotProductAttention(q, k, v, { validLens: [6] })],
  ['attention past alone', TypeError, /pastKey and pastValue/, (e) => e.scaledDotProductAttention(q, k, v, { pastKey: k })],
  ['attention past shape', RangeError, /pastKey: expected \[1, 2, 5, 4\], got \[1, 1, 5, 4\]/, (e) => e.scaledDotProductAttention(q, k, v, { pastKey: random([1, 1, 5, 4], 1), pastValue: v })],
  ['attention options', TypeError, /options must be an object/, (e) => e.scaledDotProductAttention(q, k, v, 5 as never)],
  ['kernelRegression keys', RangeError, /keys/, (e) => e.kernelRegression(random([3, 2], 1), random([4, 3], 2), random([4], 3))],
  ['kernelRegression values', RangeError, /values/, (e) => e.kernelRegression(random([3], 1), random([4], 2), random([5], 3))],
  ['kernelRegression w', RangeError, /options.w/, (e) => e.kernelRegression(random([3], 1), random([4], 2), random([4], 3), { w: Infinity })],
  ['additive Wq', RangeError, /params.Wq: expected shape \[8, 3\]/, (e) => e.additiveAttention(random([1, 2, 3], 1), random([1, 4, 5], 2), random([1, 4, 6], 3), { Wq: random([8, 4], 4), Wk: random([8, 5], 5), wv: random([1, 8], 6) })],
  ['additive params', TypeError, /params/, (e) => e.additiveAttention(random([1, 2, 3], 1), random([1, 4, 5], 2), random([1, 4, 6], 3), null as never)],
  ['mha heads', RangeError, /numHeads.*divides E = 4, got 3/, (e) => e.multiHeadAttention(random([1, 2, 4], 1), random([1, 2, 4], 2), random([1, 2, 4], 3), { ...mhaParams, numHeads: 3 })],
  ['mha inProjWeight', RangeError, /inProjWeight: expected shape \[12, 4\]/, (e) => e.selfAttention(random([1, 2, 4], 1), { ...mhaParams, inProjWeight: random([12, 5], 1) })],
  ['mha weights missing', TypeError, /inProjWeight, or all of/, (e) => e.selfAttention(random([1, 2, 4], 1), { numHeads: 2, outProjWeight: random([4, 4], 5) })],
  ['mha keyPaddingMask', RangeError, /keyPaddingMask: expected shape \[1, 2\]/, (e) => e.selfAttention(random([1, 2, 4], 1), mhaParams, { keyPaddingMask: mask([0, 0, 0], [1, 3]) })],
  ['positionalEncoding', RangeError, /maxLen/, (e) => e.positionalEncoding(-1, 4)],
  ['positionalEncoding type', TypeError, /dim/, (e) => e.positionalEncoding(3, '4' as never)],
];

describe.each(all.map((e) => [e.name, e] as const))('bad input on %s', (_, engine: Engine) => {
  it.each(calls)('%s', (_, type, message, call) => {
    let thrown: unknown;
    try { call(engine); } catch (err) { thrown = err; }
    expect(thrown).toBeInstanceOf(type);
    expect((thrown as Error).message).toMatch(message);
    expectClose(good(engine), expected, 'after the error');
  });

  it('keeps no memory from failed calls', () => {
    for (const [, , , call] of calls) try { call(engine); } catch { /* expected */ }
    const before = engine.info.memoryBytes;
    for (let i = 0; i < 200; i++) for (const [, , , call] of calls) try { call(engine); } catch { /* expected */ }
    expect(engine.info.memoryBytes).toBe(before);
    expectClose(good(engine), expected);
  });
});

describe('tensor and mask constructors', () => {
  it('copy, check sizes and convert booleans', () => {
    const src = [1, 2, 3, 4];
    const t = tensor(src, [2, 2]);
    src[0] = 9;
    expect(t.data[0]).toBe(1);
    expect(() => tensor([1, 2, 3], [2, 2])).toThrow(RangeError);
    expect(() => tensor([1], [-1] as never)).toThrow(RangeError);
    expect(() => tensor(5 as never, [1])).toThrow(TypeError);
    expect(mask([true, false], [2]).data).toEqual(Uint8Array.from([1, 0]));
    expect(mask(Float32Array.from([0, -Infinity]), [2]).data).toBeInstanceOf(Float32Array);
    expect(mask([0, 1, 1], [3]).data).toEqual(Uint8Array.from([0, 1, 1]));
    expect(mask([0, -Infinity, 0.5], [3]).data).toEqual(Float32Array.from([0, -Infinity, 0.5]));
    expect(() => mask([true, 2] as never, [2])).toThrow(TypeError);
    expect(() => mask(['1'] as never, [1])).toThrow(TypeError);
  });
});

describe('wasm engine lifecycle', () => {
  it('validates options, reports its build and refuses calls after dispose (twice is harmless)', async () => {
    await expect(createEngine({ simd: 'fast' as never })).rejects.toThrow(RangeError); // the builds: engineBuilds.test.ts
    await expect(createEngine({ threads: 0 })).rejects.toThrow(RangeError);
    await expect(createEngine({ wasm: 42 as never })).rejects.toThrow(TypeError);
    const e = await createEngine();
    expect(e.info).toMatchObject({ simd: runtimeHasRelaxedSimd() ? 'relaxed' : 'simd', threads: 1 });
    expect(e.info.memoryBytes).toBeGreaterThan(0);
    e.dispose();
    e.dispose();
    expect(() => e.softmax(random([2, 2], 1))).toThrow(/disposed/);
    expect(e.info.memoryBytes).toBe(0);
  });

  it('loads from bytes and from a compiled module', async () => {
    const { readFile } = await import('node:fs/promises');
    const bytes = await readFile(new URL('../build/qkv.wasm', import.meta.url));
    const fromBytes = await createEngine({ wasm: new Uint8Array(bytes) });
    const fromModule = await createEngine({ wasm: await WebAssembly.compile(bytes) });
    expectClose(good(fromBytes), expected);
    expectClose(good(fromModule), expected);
  });

  it('shares its enum codes with the kernels (must match on both sides)', async () => {
    const plan = await import('../src/core/attentionPlan.js');
    const { loadKernels } = await import('../src/wasm/loader.js');
    const kernels = await loadKernels();
    for (const name of ['CAUSAL_NONE', 'CAUSAL_TOP_LEFT', 'CAUSAL_BOTTOM_RIGHT', 'MASK_NONE', 'MASK_BOOLEAN', 'MASK_ADDITIVE'] as const) {
      expect(kernels[name].value, name).toBe(plan[name]);
    }
  });
});
