/**
 * The API of `qkv` with both single-threaded wasm builds embedded as base64: nothing to fetch or serve.
 * Only {@link createEngine} differs from the main entry.
 * @module qkv/inline
 */
// `qkv/inline`: the API of `qkv`, with both single-threaded wasm builds embedded as base64, for
// places that cannot serve a .wasm next to the JS: browser extensions, single-file builds, bundlers
// without `new URL(…, import.meta.url)` support. It costs about 4/3 of the wasm size in JS.
//
//   import { createEngine, tensor } from 'qkv/inline';
//
// Everything but createEngine is re-exported from the main entry unchanged. It imports nothing but the
// main entry (./index.js) and the base64: scripts/bundle.js bundles this file with ./index.js left
// as an import of the main bundle, so an app that imports both qkv and qkv/inline gets one copy.
import { RELAXED_WASM_BASE64, SIMD_WASM_BASE64 } from './generated/wasm.js';
import { createEngine as createEngineFromSource, type Engine, type EngineOptions } from './index.js';

export * from './index.js';

const decoded: { simd?: Uint8Array; relaxed?: Uint8Array } = {};

function decodeBase64(base64: string): Uint8Array {
  const binary = atob(base64); // in browsers and in Node >= 16
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** The embedded bytes of one build, decoded once. */
function embedded(build: 'simd' | 'relaxed'): Uint8Array {
  return (decoded[build] ??= decodeBase64(build === 'relaxed' ? RELAXED_WASM_BASE64 : SIMD_WASM_BASE64));
}

/**
 * Creates the WebAssembly engine from the embedded wasm: the same engine, options and errors as
 * `createEngine` from `qkv`, without fetching anything. `simd: 'auto'` picks the embedded
 * relaxed-SIMD build where the runtime validates relaxed SIMD; `options.wasm`, when given, is used
 * instead of the embedded bytes. Kernels run on one thread: only the single-threaded builds are
 * embedded, so `threads` above 1 (or `'auto'`) runs one thread and warns once (import `qkv` for threads).
 * @throws Error when the runtime lacks WebAssembly SIMD, or `simd: 'relaxed'` is asked for where relaxed SIMD is missing
 */
export function createEngine(options: EngineOptions = {}): Promise<Engine> {
  // anything odd goes to the main createEngine unchanged, which validates it and throws
  if (options === null || typeof options !== 'object' || options.wasm !== undefined) return createEngineFromSource(options);
  // the relaxed build validates exactly where the runtime has relaxed SIMD
  const build = options.simd === 'simd' || !WebAssembly.validate(embedded('relaxed') as BufferSource) ? 'simd' : 'relaxed';
  const { threads } = options;
  // a bad count still reaches the main createEngine, which rejects it
  if (threads === 'auto' || (typeof threads === 'number' && Number.isInteger(threads) && threads > 1)) {
    if (!warnedThreads) console.warn(`qkv/inline: threads: ${String(threads)} asked for, but qkv/inline embeds only the single-threaded wasm builds. Running on one thread; import 'qkv' (which loads the threads builds next to it) to run threads.`);
    warnedThreads = true;
    return createEngineFromSource({ ...options, threads: 1, wasm: embedded(build) });
  }
  return createEngineFromSource({ ...options, wasm: embedded(build) });
}

let warnedThreads = false;
