// The multi-threaded engine: identical results for every thread count, worker errors reach the
// caller, dispose is idempotent, and an undisposed engine does not keep a Node process alive.
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
// Worker threads load plain JavaScript, so this file tests the built package (dist/, which
// `npm test` builds first) rather than the TypeScript sources the other tests import.
import { createEngine, type Engine, mask, type Tensor } from '../dist/index.js';
import { startWorkers } from '../dist/platform/threads.node.js';
import type { KernelArgs } from '../dist/wasm/abi.js';
import { chooseBuild, compileKernels, defaultWasmUrl, instantiateKernels } from '../dist/wasm/loader.js';
import { CONTROL_BYTES, MIN_PARALLEL_WORK, pool, shares, whenReady } from '../dist/wasm/parallel.js';
import { random } from './support.js';

const engines = await Promise.all([1, 2, 3].map((threads) => createEngine({ threads })));
afterAll(() => engines.forEach((e) => e.dispose()));

/** Every element the same bits (NaN equal to NaN). */
function expectIdentical(a: Tensor | undefined, b: Tensor | undefined, label: string): void {
  expect(a?.shape, label).toEqual(b?.shape);
  const x = a!.data, y = b!.data;
  let diff = -1;
  for (let i = 0; i < x.length && diff < 0; i++) if (!Object.is(x[i], y[i])) diff = i;
  expect(diff, `${label}: first difference at ${diff}: ${x[diff]} vs ${y[diff]}`).toBe(-1);
}

// every case is big enough to be split (more than MIN_PARALLEL_WORK multiply-adds)
const q = random([2, 4, 97, 64], 1), k = random([2, 2, 130, 64], 2), v = random([2, 2, 130, 48], 3);
const cases: Record<string, (e: Engine) => Record<string, Tensor | undefined>> = {
  'matmul 255 x 130 x 257 and transposeB': (e) => ({
    plain: e.matmul(random([255, 130], 4), random([130, 257], 5)),
    transposed: e.matmul(random([3, 85, 130], 4), random([257, 130], 6), { transposeB: true }),
  }),
  'skinny matmul (columns split), B in engine memory and streamed in': (e) => {
    const resident = (t: Tensor) => { const r = e.tensor(t.shape); r.data.set(t.data); return r; };
    const b = random([1100, 1001], 25), bt = random([1001, 1100], 26);
    return {
      plain: e.matmul(random([1, 1100], 27), resident(b)),
      rows3: e.matmul(random([3, 1100], 28), resident(b)),
      transposed: e.matmul(random([1, 1100], 29), resident(bt), { transposeB: true }),
      transposed5: e.matmul(random([5, 1100], 30), resident(bt), { transposeB: true }),
      streamed: e.matmul(random([2, 1100], 31), b),
      streamedT: e.matmul(random([2, 1100], 32), bt, { transposeB: true }),
    };
  },
  'prepared layer (packed weights): one token, and rows split': (e) => {
    const E = 304, params = { numHeads: 8, inProjWeight: random([3 * E, E], 33, 0.05), outProjWeight: random([E, E], 34, 0.05) };
    const layer = e.createMultiHeadAttention(params);
    const one = random([1, 1, E], 35), many = random([2, 40, E], 36);
    const r = { token: layer.forward(one, one, one).output, rows: layer.forward(many, many, many).output };
    layer.dispose();
    return r;
  },
  'softmax and maskedSoftmax': (e) => ({
    softmax: e.softmax(random([513, 700], 7, 5)),
    masked: e.maskedSoftmax(random([3, 171, 700], 8, 5), Array.from({ length: 513 }, (_, i) => (i * 37) % 701)),
  }),
  'softmax from an engine tensor into one, long rows': (e) => {
    const shape = [37, 8193], x = e.tensor(shape), out = e.tensor(shape);
    x.data.set(random(shape, 25, 20).data);
    e.softmax(x, { out });
    const result = { data: Float32Array.from(out.data), shape };
    x.dispose(); out.dispose();
    return { result };
  },
  'fused attention, grouped heads, causal, mask, softcap': (e) => ({
    plain: e.scaledDotProductAttention(q, k, v).output,
    causal: e.scaledDotProductAttention(q, k, v, { causal: 'bottom-right', validLens: [100, 130] }).output,
    masked: e.scaledDotProductAttention(q, k, v, { mask: mask(random([97, 130], 9, 3).data, [97, 130]), softcap: 4 }).output,
  }),
  'row attention with weights, and decode': (e) => {
    const r = e.scaledDotProductAttention(q, k, v, { returnWeights: true, window: { left: 20 } });
    const decode = e.scaledDotProductAttention(random([1, 8, 1, 64], 10), random([1, 2, 5000, 64], 11), random([1, 2, 5000, 64], 12));
    return { output: r.output, weights: r.weights, decode: decode.output };
  },
  'kernel regression': (e) => {
    const r = e.kernelRegression(random([301], 13, 3), random([5001], 14, 3), random([5001, 3], 15), { returnWeights: true, w: 2 });
    return { output: r.output, weights: r.weights };
  },
  'kernel regression loss, leave-one-out (every share masks its own keys)': (e) => {
    const x = random([601], 30, 3), y = random([601], 31, 2), v = random([601, 5], 32);
    const loo = e.kernelRegressionLoss(x, x, v, random([601, 5], 33, 2), { w: 1.5, leaveOneOut: true });
    const flat = e.kernelRegressionLoss(x, x, y, random([601], 38, 2), { w: 1.5, leaveOneOut: true });
    const wide = e.kernelRegressionLoss(random([301, 2], 34), random([997, 2], 35), random([997, 5], 36), random([301, 5], 37), { w: 0.7 });
    // loss and dLossDw are float64 numbers: compared exactly through a Float64Array
    const numbers = (r: { loss: number; dLossDw: number }) => ({ data: new Float64Array([r.loss, r.dLossDw]) as unknown as Float32Array, shape: [2] });
    return { output: loo.output, loss: numbers(loo), flat: flat.output, flatLoss: numbers(flat), wide: wide.output, wideLoss: numbers(wide) };
  },
  'additive attention': (e) => {
    const r = e.additiveAttention(random([2, 65, 16], 16), random([2, 129, 8], 17), random([2, 129, 12], 18),
      { Wq: random([32, 16], 19), Wk: random([32, 8], 20), wv: random([1, 32], 21) }, { validLens: [100, 129], returnWeights: true });
    return { output: r.output, weights: r.weights };
  },
  'multi-head self-attention': (e) => {
    const E = 128, x = random([2, 64, E], 22);
    const params = { numHeads: 8, inProjWeight: random([3 * E, E], 23, 0.1), outProjWeight: random([E, E], 24, 0.1) };
    const r = e.selfAttention(x, params, { causal: true, needWeights: true });
    return { output: r.output, weights: r.weights };
  },
};

describe('threads', () => {
  it('report how many run; auto means the available cores', async () => {
    expect(engines.map((e) => e.info.threads)).toEqual([1, 2, 3]);
    const auto = await createEngine({ threads: 'auto' });
    expect(auto.info.threads).toBe(os.availableParallelism());
    auto.dispose();
  });

  it.each(Object.entries(cases))('%s: bit-identical for 1, 2 and 3 threads', (_, run) => {
    const [one, two, three] = engines.map(run);
    for (const name of Object.keys(one)) {
      expectIdentical(two[name], one[name], `${name}, 2 threads`);
      expectIdentical(three[name], one[name], `${name}, 3 threads`);
    }
  });

  it('splits into contiguous shares on aligned boundaries', () => {
    expect(shares(10, 3, 2)).toEqual([[0, 2], [2, 6], [6, 10]]);
    expect(shares(1, 2)).toEqual([[0, 0], [0, 1]]);
    expect(shares(7, 3, 1).flat()).toEqual([0, 2, 2, 4, 4, 7]);
  });

  it('an error in a worker reaches the caller as an Error, and the pool keeps working', async () => {
    const module = await compileKernels(defaultWasmUrl(chooseBuild(), true));
    const memory = new WebAssembly.Memory({ initial: 64, maximum: 1024, shared: true });
    const kernels = instantiateKernels(module, memory);
    const control = new SharedArrayBuffer(CONTROL_BYTES);
    const workers = await startWorkers([{ module, memory, control, index: 0 }]);
    await whenReady(control, 1, workers);
    const threads = pool(kernels, control, workers, true);
    const n = 256, base = 1 << 20, scratch = base + 3 * n * n * 4;
    const args = (bad: boolean) => (t: number, r0: number, r1: number): KernelArgs<'gemm_f32'> =>
      [base + r0 * n * 4, (bad && t === 1 ? 2 ** 31 : base) + r0 * n * 4, base, r1 - r0, n, n, 0, 0, scratch + t * 65536 * 4];
    expect(n * n * n).toBeGreaterThan(MIN_PARALLEL_WORK);
    expect(() => threads.run('gemm_f32', n, n * n, args(true), 2)).toThrow(/worker thread.*out of bounds/i);
    expect(() => threads.run('gemm_f32', n, n * n, args(false), 2)).not.toThrow();
    threads.dispose();
    threads.dispose();
    expect(() => threads.run('gemm_f32', n, n * n, args(false), 2)).toThrow(/disposed/);
  });

  it('dispose is idempotent and later calls throw', async () => {
    const e = await createEngine({ threads: 2 });
    e.dispose();
    e.dispose();
    expect(() => e.matmul(random([2, 2], 1), random([2, 2], 2))).toThrow(/disposed/);
  });

  it('an undisposed engine does not keep a Node process alive', () => {
    const script = `
      const { createEngine, tensor } = await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)});
      const e = await createEngine({ threads: 2 });
      const x = tensor(new Float32Array(512 * 512).fill(1), [512, 512]);
      console.log(e.info.threads, e.matmul(x, x).data[0]);
    `;
    const started = Date.now();
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('..', import.meta.url)), encoding: 'utf8', timeout: 20_000,
    });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('2 512');
    expect(r.status).toBe(0);
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});
