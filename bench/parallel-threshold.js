// Measures where splitting a kernel call over two threads starts to pay, to set MIN_PARALLEL_WORK
// (src/wasm/parallel.ts). Runs gemm (n x n x n) and flash attention (B=1, H=2, L, d=64) on one
// thread and on a two-thread pool that always splits, over growing sizes.
//   node bench/parallel-threshold.js

import { startWorkers } from '../dist/platform/threads.node.js';
import { chooseBuild, compileKernels, defaultWasmUrl, instantiateKernels } from '../dist/wasm/loader.js';
import { CONTROL_BYTES, pool, serial, whenReady } from '../dist/wasm/parallel.js';

const module = await compileKernels(defaultWasmUrl(chooseBuild(), true));
const memory = new WebAssembly.Memory({ initial: 2048, maximum: 4096, shared: true });
const kernels = instantiateKernels(module, memory);
const control = new SharedArrayBuffer(CONTROL_BYTES);
const workers = await startWorkers([{ module, memory, control, index: 0 }]);
await whenReady(control, 1, workers);
const two = pool(kernels, control, workers, true, 0);
const one = serial(kernels);

function median(f) {
  for (let i = 0; i < 20; i++) f();
  const ts = [];
  for (let r = 0; r < 41; r++) { const t0 = performance.now(); f(); ts.push(performance.now() - t0); }
  return ts.sort((a, b) => a - b)[20];
}

const base = 1 << 20;
console.log('work (multiply-adds)   1 thread ms   2 threads ms   speedup');
for (const n of [16, 32, 64, 128, 256, 384, 512, 768]) {
  const a = base, c = base + n * n * 4, scratch = c + n * n * 4;
  new Float32Array(memory.buffer, a, n * n).fill(0.5);
  const run = (p) => () => p.run('gemm_f32', n, n * n, (t, r0, r1) => [c + r0 * n * 4, a + r0 * n * 4, a, r1 - r0, n, n, 0, 0, scratch + t * 131072 * 4], 2);
  const t1 = median(run(one)), t2 = median(run(two));
  console.log(`gemm n=${String(n).padEnd(4)} ${String(n ** 3).padStart(10)}   ${t1.toFixed(4).padStart(11)}   ${t2.toFixed(4).padStart(12)}   ${(t1 / t2).toFixed(2)}x`);
}
two.dispose();
