// Finds, compiles and instantiates the kernels' .wasm with @assemblyscript/loader, in Node and in browsers.
import { instantiateSync } from '@assemblyscript/loader';
// Node reads files, browsers fetch: package.json "imports" picks src/platform/fetchBytes.node.ts under the
// "node" condition and fetchBytes.browser.ts otherwise, so no Node built-in reaches a browser bundle.
import { fetchBytes } from '#fetch-bytes';

/** The kernel exports of build/qkv.wasm and build/qkv-relaxed.wasm (assembly/index.ts). Pointers are byte offsets into `memory`. */
export interface Kernels {
  memory: WebAssembly.Memory;
  /** 1 in the relaxed-SIMD build, 0 in the plain SIMD build (assembly/build.ts). */
  RELAXED_SIMD: WebAssembly.Global;
  heap_base(): number;
  gemm_f32(c: number, a: number, b: number, m: number, n: number, k: number, transposeB: boolean | number, bias: number, scratch: number): void;
  gemm_scratch_f32(n: number, k: number): number;
  gemm_pack_f32(bp: number, b: number, n: number, k: number, transposeB: boolean | number): void;
  gemm_packed_f32(c: number, a: number, bp: number, bias: number, m: number, n: number, k: number, ldc: number, panels: number, jp0: number, scratch: number): void;
  gemm_packed_scratch_f32(): number;
  gemm_packed_size_f32(n: number, k: number): number;
  gemv_f32(c: number, a: number, b: number, bias: number, m: number, n: number, k: number, ldc: number, lda: number, ldb: number, transposeB: boolean | number, accumulate: boolean | number): void;
  softmax_rows_f32(out: number, x: number, rows: number, n: number, lens: number, rowsPerLen: number): void;
  attention_f32(
    out: number, weights: number, scratch: number, q: number, k: number, v: number, mask: number, lens: number,
    b: number, hq: number, hkv: number, lq: number, lk: number, e: number, ev: number,
    scale: number, softcap: number, maskKind: number, msb: number, msh: number, msq: number, msk: number,
    causal: number, lpast: number, left: number, right: number, layout: number, rowStart: number, rowEnd: number,
  ): void;
  flash_attention_f32(
    out: number, scratch: number, q: number, k: number, v: number, mask: number, lens: number,
    b: number, hq: number, hkv: number, lq: number, lk: number, e: number, ev: number,
    scale: number, softcap: number, maskKind: number, msb: number, msh: number, msq: number, msk: number,
    causal: number, lpast: number, left: number, right: number, layout: number, unitStart: number, unitEnd: number,
  ): void;
  flash_scratch_f32(lk: number, e: number, ev: number): number;
  kernel_regression_f32(out: number, weights: number, scratch: number, q: number, k: number, v: number, n: number, m: number, d: number, dv: number, w: number): void;
  kernel_regression_grad_f32(out: number, stats: number, scratch: number, q: number, k: number, v: number, y: number, n: number, m: number, d: number, dv: number, w: number, masked: number): void;
  additive_scores_f32(out: number, qp: number, kp: number, wv: number, b: number, lq: number, lk: number, h: number, rowStart: number, rowEnd: number): void;
  exp_f32(out: number, x: number, n: number): void;
  exp_softmax_f32(out: number, x: number, n: number): void;
  exp2_nonpositive_f32(out: number, x: number, n: number): void;
  tanh_f32(out: number, x: number, n: number): void;
  weighted_rows_f32(out: number, w: number, v: number, b: number, lq: number, lk: number, dv: number, rowStart: number, rowEnd: number): void;
  rotary_f32(out: number, x: number, n: number, d: number, rot: number, interleaved: number, cos: number, sin: number, tableRow: number, xStride: number, outStride: number): void;
  paged_attention_f32: PagedAttentionKernel;
  paged_attention_f16: PagedAttentionKernel;
  paged_attention_i8: PagedAttentionKernel;
  kv_store_f32: KVStoreKernel; kv_store_f16: KVStoreKernel; kv_store_i8: KVStoreKernel;
  kv_load_f32: KVLoadKernel; kv_load_f16: KVLoadKernel; kv_load_i8: KVLoadKernel;
  paged_scratch_f32(maxLength: number, ev: number, group: number): number;
  rms_norm_rows_f32(x: number, n: number, d: number, w: number, eps: number): void;
  CAUSAL_NONE: WebAssembly.Global; CAUSAL_TOP_LEFT: WebAssembly.Global; CAUSAL_BOTTOM_RIGHT: WebAssembly.Global;
  MASK_NONE: WebAssembly.Global; MASK_BOOLEAN: WebAssembly.Global; MASK_ADDITIVE: WebAssembly.Global;
}

/** assembly/kernels/pagedAttention.ts, one export per storage format. */
type PagedAttentionKernel = (
  out: number, scratch: number, q: number, kPool: number, vPool: number, kScales: number, vScales: number, tables: number, rowInfo: number,
  hq: number, hkv: number, e: number, ev: number, bs: number, scale: number, softcap: number, causal: number, left: number, right: number,
  alibi: number, sinks: number, maxLength: number, unitStart: number, unitEnd: number,
) => void;
/** assembly/kernels/kvStore.ts: rows into a pool's format, and back. */
type KVStoreKernel = (pool: number, scales: number, src: number, n: number, h: number, d: number, slots: number, bs: number) => void;
type KVLoadKernel = (dst: number, pool: number, scales: number, n: number, h: number, d: number, slots: number, bs: number) => void;

/** Where the .wasm comes from: a URL or path, its bytes, or a compiled module. */
export type WasmSource = URL | string | ArrayBuffer | Uint8Array | WebAssembly.Module;

/** The two builds: `'simd'` is build/qkv.wasm, `'relaxed'` is build/qkv-relaxed.wasm (asc --enable relaxed-simd). */
export type SimdBuild = 'simd' | 'relaxed';

// Feature probes: tiny hand-assembled modules, so that detection validates a few dozen bytes, never a whole build.
// (module (func (param v128) (result v128) local.get 0 local.get 0 f32x4.add))
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
  0x01, 0x06, 0x01, 0x60, 0x01, 0x7b, 0x01, 0x7b, // type section: (v128) -> v128
  0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
  0x0a, 0x0b, 0x01, 0x09, 0x00, 0x20, 0x00, 0x20, 0x00, 0xfd, 0xe4, 0x01, 0x0b, // code: f32x4.add = 0xfd 228
]);
// (module (func (param v128) (result v128) local.get 0 local.get 0 local.get 0 f32x4.relaxed_madd))
const RELAXED_SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x06, 0x01, 0x60, 0x01, 0x7b, 0x01, 0x7b,
  0x03, 0x02, 0x01, 0x00,
  0x0a, 0x0d, 0x01, 0x0b, 0x00, 0x20, 0x00, 0x20, 0x00, 0x20, 0x00, 0xfd, 0x85, 0x02, 0x0b, // f32x4.relaxed_madd = 0xfd 261
]);

/** Whether this runtime runs WebAssembly fixed-width SIMD (required by both builds). */
export function runtimeHasSimd(): boolean {
  return typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE);
}

/** Whether this runtime runs WebAssembly relaxed SIMD (Node 20 only with --experimental-wasm-relaxed-simd). */
export function runtimeHasRelaxedSimd(): boolean {
  return typeof WebAssembly === 'object' && WebAssembly.validate(RELAXED_SIMD_PROBE);
}

const NEEDS_SIMD = 'qkv needs WebAssembly SIMD (128-bit fixed-width SIMD), which this runtime lacks; '
  + 'Node >= 16.4, Chrome >= 91, Firefox >= 89 and Safari >= 16.4 have it';
const RELAXED_HOW = 'On Node 20 start node with --experimental-wasm-relaxed-simd (node does not accept it in NODE_OPTIONS); '
  + 'Chrome >= 114 and Node >= 22 have relaxed SIMD by default';

/**
 * The build that `simd` (EngineOptions.simd) asks for on this runtime: `'auto'` is the relaxed build
 * when the runtime validates relaxed SIMD, else the plain one; `'simd'` is the plain build.
 * @throws Error when the runtime lacks WebAssembly SIMD, or lacks relaxed SIMD and `'relaxed'` is asked for
 */
export function chooseBuild(simd: 'auto' | SimdBuild = 'auto'): SimdBuild {
  if (!runtimeHasSimd()) throw new Error(NEEDS_SIMD);
  if (simd === 'simd') return 'simd';
  if (runtimeHasRelaxedSimd()) return 'relaxed';
  if (simd === 'relaxed') {
    throw new Error(`createEngine: simd: 'relaxed' asks for the relaxed-SIMD build, but this runtime does not support WebAssembly relaxed SIMD. ${RELAXED_HOW}. simd: 'auto' falls back to the plain SIMD build.`);
  }
  return 'simd';
}

/**
 * Where a build is shipped: build/ at the package root (the same relative path from src/wasm/ and dist/wasm/).
 * Each URL is a literal `new URL('…', import.meta.url)` so that bundlers find and emit every file.
 * `threaded` builds import a shared memory (asc --enable threads --importMemory --sharedMemory).
 */
export const defaultWasmUrl = (build: SimdBuild = chooseBuild(), threaded = false): URL => {
  if (threaded) {
    return build === 'relaxed'
      ? new URL('../../build/qkv-relaxed-threads.wasm', import.meta.url)
      : new URL('../../build/qkv-threads.wasm', import.meta.url);
  }
  return build === 'relaxed'
    ? new URL('../../build/qkv-relaxed.wasm', import.meta.url)
    : new URL('../../build/qkv.wasm', import.meta.url);
};

/** Which build a loaded module is, from its RELAXED_SIMD marker. */
export const buildOf = (kernels: Kernels): SimdBuild => (kernels.RELAXED_SIMD.value === 1 ? 'relaxed' : 'simd');

/** Compiles, naming the likely cause when a runtime without relaxed SIMD is handed the relaxed build. */
async function compile(bytes: ArrayBuffer | Uint8Array): Promise<WebAssembly.Module> {
  // not a module at all (an HTML error page, a truncated download): say so, without echoing its bytes
  const head = new Uint8Array(bytes instanceof ArrayBuffer ? bytes : bytes.buffer, bytes instanceof ArrayBuffer ? 0 : bytes.byteOffset, Math.min(4, bytes.byteLength));
  if (head.length < 4 || head[0] !== 0x00 || head[1] !== 0x61 || head[2] !== 0x73 || head[3] !== 0x6d) {
    throw new Error(`qkv: the wasm given (${bytes.byteLength} bytes) is not a WebAssembly module: it does not start with the wasm magic number. Was a page served instead of the .wasm file? Pass options.wasm, or import qkv/inline, which embeds the module.`);
  }
  try {
    return await WebAssembly.compile(bytes as BufferSource);
  } catch (error) {
    if (!(error instanceof WebAssembly.CompileError) || runtimeHasRelaxedSimd()) throw error;
    throw new Error(`qkv: could not compile the wasm (${error.message}). If it is the relaxed-SIMD build, this runtime lacks relaxed SIMD: ${RELAXED_HOW}; build/qkv.wasm is the plain SIMD build.`, { cause: error });
  }
}

/** Compiles the kernels' module from any WasmSource (a module is returned as is). */
export async function compileKernels(source: WasmSource): Promise<WebAssembly.Module> {
  if (source instanceof WebAssembly.Module) return source;
  if (source instanceof ArrayBuffer || source instanceof Uint8Array) return compile(source);
  if (source instanceof URL || typeof source === 'string') return compile(await fetchBytes(source));
  throw new TypeError('createEngine: options.wasm must be a URL, a path, an ArrayBuffer, a Uint8Array or a WebAssembly.Module');
}

/** Whether a module is a threads build: it imports its (shared) memory instead of exporting its own. */
export const importsMemory = (module: WebAssembly.Module): boolean =>
  WebAssembly.Module.imports(module).some((i) => i.kind === 'memory');

/**
 * Instantiates compiled kernels (over `memory` for a threads build). Synchronous: the loader's async
 * instantiate would probe the global Response, which in Node loads the whole fetch implementation
 * (about 20 ms of cold start).
 */
export function instantiateKernels(module: WebAssembly.Module, memory?: WebAssembly.Memory): Kernels {
  const { exports } = instantiateSync<Record<string, unknown>>(module, memory ? { env: { memory } } : {});
  return exports as unknown as Kernels;
}

/** Compiles (unless given a module) and instantiates the single-threaded kernels; by default the build that chooseBuild() picks. */
export async function loadKernels(source: WasmSource = defaultWasmUrl()): Promise<Kernels> {
  return instantiateKernels(await compileKernels(source));
}
