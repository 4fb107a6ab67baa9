// Finds, compiles and instantiates the kernels' .wasm with @assemblyscript/loader, in Node and in browsers.
import { instantiateSync } from '@assemblyscript/loader';
// Node reads files, browsers fetch: package.json "imports" picks src/platform/fetchBytes.node.ts under the
// "node" condition and fetchBytes.browser.ts otherwise, so no Node built-in reaches a browser bundle.
import { fetchBytes } from '#fetch-bytes';
import type { Kernels } from './abi.js';

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

/**
 * Whether `x` is a WebAssembly.Module, from this realm or another: a host that compiles a `.wasm`
 * import for the code it runs (Next.js's edge sandbox, a `node:vm` context, an iframe) hands a module
 * that fails `instanceof` here. The tag is the JS API's Symbol.toStringTag of WebAssembly.Module.
 */
export const isWasmModule = (x: unknown): boolean =>
  x instanceof WebAssembly.Module || Object.prototype.toString.call(x) === '[object WebAssembly.Module]';

/** Compiles the kernels' module from any WasmSource (a module is returned as is). */
export async function compileKernels(source: WasmSource): Promise<WebAssembly.Module> {
  if (isWasmModule(source)) return source as WebAssembly.Module;
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
  if (!(module instanceof WebAssembly.Module)) {
    // another realm's module: the loader would take it for bytes. The kernels import nothing but a
    // threads build's memory (and a debug build's abort) and need none of the loader's helpers.
    const abort = (): never => { throw new Error('qkv: the wasm aborted'); };
    return new WebAssembly.Instance(module, { env: memory ? { memory, abort } : { abort } }).exports as unknown as Kernels;
  }
  const { exports } = instantiateSync<Record<string, unknown>>(module, memory ? { env: { memory } } : {});
  return exports as unknown as Kernels;
}

/** Compiles (unless given a module) and instantiates the single-threaded kernels; by default the build that chooseBuild() picks. */
export async function loadKernels(source: WasmSource = defaultWasmUrl()): Promise<Kernels> {
  return instantiateKernels(await compileKernels(source));
}
