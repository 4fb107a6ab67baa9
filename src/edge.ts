/**
 * The API of `qkv` for serverless and edge runtimes (Cloudflare Workers, Vercel's edge runtime):
 * what `import … from 'qkv'` resolves to under the "workerd" and "edge-light" export conditions.
 * Only {@link createEngine} differs from the main entry.
 * @module qkv
 */
// Those runtimes forbid compiling wasm from bytes at run time ("Wasm code generation disallowed by
// embedder"): a .wasm must be imported, which their bundlers (Wrangler, Next.js) turn into a
// WebAssembly.Module. They run no Web Workers and share no memory between threads, and an isolate
// has 128 MB for everything (JavaScript heap and wasm memory together). So this entry imports the
// plain SIMD single-threaded build as a module, runs one thread and caps the engine's memory.
// It imports nothing but the main entry (./index.js) and the .wasm: scripts/bundle.js bundles it
// with ./index.js left as an import of the main bundle, as for qkv/inline.
//
// `?module` is the suffix both Wrangler (its CompiledWasm rule: "**/*.wasm", "**/*.wasm?module")
// and Next.js's edge compiler read as "give me a WebAssembly.Module".
import wasmModule from '../build/qkv.wasm?module';
import { createEngine as createEngineFromSource, type Engine, type EngineOptions } from './index.js';

export * from './index.js';

/** What an isolate of Cloudflare Workers or Vercel's edge runtime may hold, heap and wasm memory together. */
const ISOLATE_BYTES = 128 * 1024 * 1024;
/** The engine's default limit here: 96 MiB of wasm memory, leaving 32 MiB of the isolate to JavaScript. */
const DEFAULT_MAX_MEMORY_BYTES = 96 * 1024 * 1024;

let warnedThreads = false;

/**
 * Creates the WebAssembly engine from the plain SIMD build imported as a module: the same engine,
 * options and errors as `createEngine` from `qkv` elsewhere, with three differences. Kernels run on
 * one thread (`threads` above 1 runs one and warns once; `'auto'` is one). `maxMemoryBytes`
 * defaults to 96 MiB and may be at most 128 MiB, an isolate's memory: a larger value is a
 * RangeError, and so is any buffer past the limit, as elsewhere. `options.wasm`, when given, is
 * used instead of the imported module.
 * @throws RangeError when `maxMemoryBytes` is over 128 MiB
 */
export async function createEngine(options: EngineOptions = {}): Promise<Engine> {
  // anything odd goes to the main createEngine unchanged, which validates it and throws
  if (options === null || typeof options !== 'object') return createEngineFromSource(options);
  const { threads, maxMemoryBytes = DEFAULT_MAX_MEMORY_BYTES } = options;
  if (typeof maxMemoryBytes === 'number' && maxMemoryBytes > ISOLATE_BYTES) {
    throw new RangeError(`createEngine: options.maxMemoryBytes must be at most ${ISOLATE_BYTES} (128 MiB, the memory of a Workers or edge isolate, JavaScript heap included), got ${maxMemoryBytes}`);
  }
  let one = threads;
  if (threads === 'auto') one = 1;
  else if (typeof threads === 'number' && Number.isInteger(threads) && threads > 1) {
    if (!warnedThreads) console.warn(`qkv: threads: ${threads} asked for, but serverless and edge runtimes run no threads that share memory. Running on one thread.`);
    warnedThreads = true;
    one = 1;
  }
  return createEngineFromSource({ ...options, threads: one, maxMemoryBytes, wasm: options.wasm ?? wasmModule });
}
