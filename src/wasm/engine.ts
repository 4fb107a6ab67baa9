// createEngine(): instantiates the kernels and binds every op's wrapper to them.

import { disposeSymbol } from '../core/dispose.js';
import { positionalEncoding } from '../core/positionalEncoding.js';
import { CAUSAL_BOTTOM_RIGHT, CAUSAL_NONE, CAUSAL_TOP_LEFT, MASK_ADDITIVE, MASK_BOOLEAN, MASK_NONE } from '../core/scaledDotProductAttentionPlan.js';
import { checkShape, formatCall, sizeOf } from '../core/tensor.js';
import type { Engine, EngineInfo, EngineTensor, Implementation } from '../core/types.js';
import { describeValue } from '../core/validate.js';
import { type Kernels, KV_FORMATS, LAYOUT_OFFSETS } from './abi.js';
import { additiveAttention } from './additiveAttention.js';
import { batchAttention } from './batchAttention.js';
import type { WasmContext } from './context.js';
import { add, gatedActivation, softcap } from './elementwise.js';
import { createWasmGroupedQuery } from './groupedQueryAttention.js';
import { kernelRegression } from './kernelRegression.js';
import { kernelRegressionLoss } from './kernelRegressionLoss.js';
import { WasmKVCache } from './kvCache.js';
import { createWasmKVPool } from './kvPool.js';
import { createWasmLinear, createWasmLinearBuilder } from './linear.js';
import { buildOf, chooseBuild, compileKernels, defaultWasmUrl, importsMemory, instantiateKernels } from './loader.js';
import { matmul } from './matmul.js';
import { Arena, MAX_MEMORY_BYTES } from './memory.js';
import { createLayer, multiHeadAttention } from './multiHeadAttention.js';
import { CONTROL_BYTES, MAX_THREADS, type Parallel, pool, serial, whenReady } from './parallel.js';
import { rmsNorm } from './rmsNorm.js';
import { rotaryEmbedding } from './rotaryEmbedding.js';
import { scaledDotProductAttention } from './scaledDotProductAttention.js';
import { maskedSoftmax, softmax } from './softmax.js';

/** Options of {@link createEngine}. */
export interface EngineOptions {
  /**
   * Threads that run the kernels, the calling one included. Default 1. `'auto'` uses the available
   * cores (`os.availableParallelism()`, `navigator.hardwareConcurrency`). More than one starts worker
   * threads (Node `worker_threads`, browser Web Workers) over one shared wasm memory; results are
   * bit-identical for every thread count. Calls stay synchronous: the caller blocks in `Atomics.wait`
   * (on a browser's main thread, where blocking is not allowed, it spins until the workers finish).
   * Small calls run on the calling thread alone. In a browser without cross-origin isolation the
   * engine runs one thread and warns once. `engine.info.threads` says how many run.
   */
  threads?: number | 'auto';
  /**
   * Which build to run. Default `'auto'`: the relaxed-SIMD build (build/qkv-relaxed.wasm, fused
   * multiply-add) when this runtime validates relaxed SIMD, else the plain SIMD build (build/qkv.wasm).
   * `'simd'` always runs the plain build. `'relaxed'` throws an Error on a runtime without relaxed SIMD
   * (Node 20 needs `node --experimental-wasm-relaxed-simd`; Chrome >= 114 and Node >= 22 have it).
   * `engine.info.simd` says which build runs.
   */
  simd?: 'auto' | 'relaxed' | 'simd';
  /**
   * Where the .wasm comes from: a URL or path, its bytes, or a compiled module. Default: the build that
   * `simd` picks, shipped with the package in build/. A given module is used as is and `engine.info.simd`
   * reports which build it is; an explicit `simd: 'simd'` or `'relaxed'` that contradicts it throws.
   */
  wasm?: URL | string | ArrayBuffer | Uint8Array | WebAssembly.Module;
  /**
   * The most wasm memory the engine may hold, in bytes (rounded down to whole 64 KiB pages). A buffer
   * that would take the memory past it throws a RangeError instead of growing it, and the engine
   * stays usable (a call whose first buffers fit may have grown the memory, within the limit, before
   * a later one is refused). Default and ceiling: 4 GiB - 64 KiB.
   */
  maxMemoryBytes?: number;
}

const COOP_COEP = "threads need cross-origin isolation: serve the page with the headers 'Cross-Origin-Opener-Policy: same-origin' and 'Cross-Origin-Embedder-Policy: require-corp'";

/** Whether this runtime can share wasm memory between threads. */
function sharedMemoryAvailable(): boolean {
  if (typeof SharedArrayBuffer === 'undefined') return false;
  const g = globalThis as { crossOriginIsolated?: boolean };
  return g.crossOriginIsolated !== false;
}

const warned = new Set<string>();
function warnOnce(message: string): void {
  if (!warned.has(message)) console.warn(message);
  warned.add(message);
}

/**
 * A tensor held in engine memory: ops read it in place and write into it as options.out. Its data is
 * a view made afresh whenever the memory has grown since the last one (growing detaches old views).
 */
function engineTensor(arena: Arena, shape: readonly number[], alive: () => unknown): EngineTensor {
  const frozen = checkShape('engine.tensor', shape);
  const count = sizeOf(frozen);
  let ptr: number | null = arena.hold(count * 4, 'tensor', () => formatCall('engine.tensor', { shape: frozen }));
  let view = arena.f32(ptr, count);
  view.fill(0);
  const dispose = (): void => {
    if (ptr !== null) arena.free(ptr);
    ptr = null;
  };
  return {
    shape: frozen,
    get data(): Float32Array {
      if (ptr === null) throw new Error('qkv: this engine tensor has been disposed');
      alive(); // throws once the engine is disposed
      if (view.buffer !== arena.memory.buffer) view = arena.f32(ptr, count);
      return view;
    },
    dispose,
    [disposeSymbol]: dispose,
  };
}

/** The constants both sides define; a mismatch means a stale or foreign .wasm. */
function checkConstants(k: Kernels): void {
  if (!(k.RELAXED_SIMD instanceof WebAssembly.Global) || (k.RELAXED_SIMD.value !== 0 && k.RELAXED_SIMD.value !== 1)) {
    throw new Error('qkv: the .wasm does not match this version of qkv (RELAXED_SIMD); rebuild it with npm run build:wasm');
  }
  const expected = { CAUSAL_NONE, CAUSAL_TOP_LEFT, CAUSAL_BOTTOM_RIGHT, MASK_NONE, MASK_BOOLEAN, MASK_ADDITIVE, ...LAYOUT_OFFSETS, ...KV_FORMATS };
  for (const [name, value] of Object.entries(expected)) {
    const g = k[name as keyof typeof expected];
    if (!(g instanceof WebAssembly.Global) || g.value !== value) {
      throw new Error(`qkv: the .wasm does not match this version of qkv (${name}); rebuild it with npm run build:wasm`);
    }
  }
}

/**
 * Creates the WebAssembly engine: every op of {@link Engine}, run by SIMD kernels.
 * @throws Error when the runtime lacks WebAssembly SIMD, when `simd: 'relaxed'` is asked for on a runtime
 *   without relaxed SIMD, or when the .wasm cannot be loaded
 */
export async function createEngine(options: EngineOptions = {}): Promise<Engine> {
  if (options === null || typeof options !== 'object') throw new TypeError('createEngine: options must be an object');
  const { threads = 1, simd = 'auto', wasm, maxMemoryBytes = MAX_MEMORY_BYTES } = options;
  if (threads !== 'auto' && typeof threads !== 'number') {
    throw new TypeError(`createEngine: options.threads must be a positive integer or 'auto', got ${describeValue(threads)}`);
  }
  if (threads !== 'auto' && (!Number.isInteger(threads) || threads < 1)) {
    throw new RangeError(`createEngine: options.threads must be a positive integer or 'auto', got ${String(threads)}`);
  }
  if (simd !== 'auto' && simd !== 'simd' && simd !== 'relaxed') {
    throw new RangeError(`createEngine: options.simd must be 'auto', 'simd' or 'relaxed', got ${String(simd)}`);
  }
  if (typeof maxMemoryBytes !== 'number') throw new TypeError(`createEngine: options.maxMemoryBytes must be a number, got ${typeof maxMemoryBytes}`);
  if (!(maxMemoryBytes >= 65536) || maxMemoryBytes > MAX_MEMORY_BYTES) {
    throw new RangeError(`createEngine: options.maxMemoryBytes must be a number in [65536, ${MAX_MEMORY_BYTES}], got ${String(maxMemoryBytes)}`);
  }
  // memory grows by whole 64 KiB pages: a limit between two pages means the page below it
  const memoryLimit = Math.floor(maxMemoryBytes / 65536) * 65536;
  const chosen = chooseBuild(simd); // throws when the runtime cannot run what is asked for

  // Node or browser threads, chosen by package.json "imports" so that no Node built-in reaches a
  // browser bundle; loaded only when asked for (node:worker_threads alone costs ~2.5 ms of a cold start)
  const platform = threads === 1 ? null : await import('#threads');
  let count = threads === 'auto' ? await platform!.availableCores() : threads;
  if (count > MAX_THREADS) {
    // the thread pool's control block has a slot for each of MAX_THREADS - 1 workers
    if (threads !== 'auto') warnOnce(`qkv: threads: ${threads} is more than the ${MAX_THREADS} the engine runs; running ${MAX_THREADS}.`);
    count = MAX_THREADS;
  }
  if (count > 1 && !sharedMemoryAvailable()) {
    warnOnce(`qkv: ${COOP_COEP}. Running on one thread.`);
    count = 1;
  }
  const module = await compileKernels(wasm === undefined ? defaultWasmUrl(chosen, count > 1) : wasm);
  if (count > 1 && !importsMemory(module)) {
    warnOnce('qkv: options.wasm is not a threads build (it does not import a shared memory). Running on one thread.');
    count = 1;
  } else if (count === 1 && importsMemory(module)) {
    if (wasm !== undefined) throw new Error('createEngine: options.wasm is a threads build; pass threads > 1 with it, or give a single-threaded build');
  }

  let kernels: Kernels;
  let parallel: Parallel;
  if (count > 1) {
    const maximum = memoryLimit / 65536;
    const memory = new WebAssembly.Memory({ initial: 1, maximum, shared: true });
    kernels = instantiateKernels(module, memory);
    checkConstants(kernels);
    const control = new SharedArrayBuffer(CONTROL_BYTES);
    const workers = await platform!.startWorkers(Array.from({ length: count - 1 }, (_, index) => ({ module, memory, control, index })));
    try {
      await whenReady(control, count - 1, workers);
    } catch (error) {
      for (const w of workers) w.terminate();
      throw error;
    }
    parallel = pool(kernels, control, workers, platform!.canBlock());
  } else {
    kernels = instantiateKernels(module);
    checkConstants(kernels);
    parallel = serial(kernels);
  }
  const build = buildOf(kernels);
  if (wasm !== undefined && simd !== 'auto' && build !== simd) {
    parallel.dispose();
    throw new Error(`createEngine: options.simd is '${simd}' but options.wasm is the ${build === 'relaxed' ? 'relaxed-SIMD' : 'plain SIMD'} build`);
  }
  let ctx: WasmContext | null = { kernels, arena: new Arena(kernels.memory, kernels.heap_base(), memoryLimit), parallel };
  /** The engine's context; throws once the engine is disposed (also passed on as the `alive` check). */
  const context = (): WasmContext => {
    if (ctx === null) throw new Error('qkv: this engine has been disposed');
    return ctx;
  };
  const engine: Implementation<Engine> = {
    name: 'wasm',
    /** A snapshot: memoryBytes is the wasm memory held now. */
    get info(): EngineInfo {
      return { simd: build, threads: parallel.threads, memoryBytes: ctx === null ? 0 : ctx.arena.bytes };
    },
    dispose() {
      parallel.dispose();
      ctx = null;
    },
    [disposeSymbol]: () => engine.dispose(),
    matmul: (...a) => matmul(context(), ...a),
    scaledDotProductAttention: (...a) => scaledDotProductAttention(context(), ...a),
    softmax: (x, opts) => softmax(context(), x, opts),
    maskedSoftmax: (x, validLens, opts) => maskedSoftmax(context(), x, validLens, opts),
    kernelRegression: (...a) => kernelRegression(context(), ...a),
    kernelRegressionLoss: (...a) => kernelRegressionLoss(context(), ...a),
    additiveAttention: (...a) => additiveAttention(context(), ...a),
    multiHeadAttention: (query, key, value, params, opts) => multiHeadAttention(context(), query, key, value, params, opts),
    selfAttention: (x, params, opts) => multiHeadAttention(context(), x, x, x, params, opts, 'selfAttention'),
    positionalEncoding: (maxLen, dim) => { context(); return positionalEncoding(maxLen, dim); },
    createMultiHeadAttention: (params) => createLayer(context, params),
    createKVCache: (opts) => new WasmKVCache(context().arena, opts, context),
    tensor: (shape) => engineTensor(context().arena, shape, context),
    rotaryEmbedding: (x, opts) => rotaryEmbedding(context(), x, opts),
    createKVPool: (opts) => createWasmKVPool(context(), opts, context),
    batchAttention: (query, key, value, opts) => batchAttention(context(), query, key, value, opts),
    createGroupedQueryAttention: (params) => createWasmGroupedQuery(context, params),
    rmsNorm: (x, weight, opts) => rmsNorm(context(), x, weight, opts),
    createLinear: (weight, opts) => createWasmLinear(context, weight, opts),
    createLinearBuilder: (shape, opts) => createWasmLinearBuilder(context, shape, opts),
    add: (a, b, opts) => add(context(), a, b, opts),
    gatedActivation: (x, opts) => gatedActivation(context(), x, opts),
    softcap: (x, cap, opts) => softcap(context(), x, cap, opts),
  };
  return Object.freeze(engine) as Engine;
}
