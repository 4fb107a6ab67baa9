// Thread splits for the op tests. Real threads run dist/ (workers load plain JavaScript, see
// test/threads.test.ts), whose list of kernels may be older than the sources: `distCurrent` says
// whether a worker would find the kernels these tests run. `splitContext` runs a wrapper's
// parallel.run shares one after another on this thread, every call split whatever its size, so the
// claim that threads cannot change a result (each element computed the same way whatever the
// share boundaries) is tested on the sources themselves.
import { KERNEL_NAMES as DIST_KERNEL_NAMES } from '../../dist/wasm/abi.js';
import { KERNEL_NAMES } from '../../src/wasm/abi.js';
import type { WasmContext } from '../../src/wasm/context.js';
import { defaultWasmUrl, loadKernels } from '../../src/wasm/loader.js';
import { Arena } from '../../src/wasm/memory.js';
import { type Parallel, serial, shares } from '../../src/wasm/parallel.js';

/** Whether dist/'s workers number the kernels as the sources do (dist built after these kernels). */
export const distCurrent = DIST_KERNEL_NAMES.length === KERNEL_NAMES.length && KERNEL_NAMES.every((k, i) => DIST_KERNEL_NAMES[i] === k);

/**
 * A wasm context of its own whose kernel calls are split into `threads` shares (1: not split), over
 * fresh kernels of `build` (default: the one this runtime picks) with an arena limited to `limit` bytes.
 */
export async function splitContext(threads: number, { build, limit }: { build?: 'simd' | 'relaxed'; limit?: number } = {}): Promise<WasmContext> {
  const kernels = await loadKernels(build ? defaultWasmUrl(build) : undefined);
  const arena = new Arena(kernels.memory, kernels.heap_base(), limit);
  if (threads === 1) return { kernels, arena, parallel: serial(kernels) };
  const parallel: Parallel = {
    threads,
    run(kernel, units, _work, args, align = 1) {
      const run = kernels[kernel] as unknown as (...a: readonly number[]) => void;
      shares(units, threads, align).forEach(([start, end], t) => { if (start < end) run(...args(t, start, end)); });
    },
    dispose() {},
  };
  return { kernels, arena, parallel };
}

/** Every element the same bits (NaN equal to NaN, -0 apart from 0). */
export function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length), y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return false;
  return true;
}
