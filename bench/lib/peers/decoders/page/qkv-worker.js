// qkv in a module worker of the bench page (a page's main thread may not block, so qkv's threads
// would spin there; llama.cpp's wasm build runs in a worker too). Messages: { id, op, args } ->
// { id, result } or { id, error }.
import { createEngine, loadDecoder, sample } from 'qkv';
import { runRound } from '../../../qkvRun.js';

const loaded = new Map();

const ops = {
  /** Loads `url` (a GGUF or safetensors checkpoint) as `weights` on an engine of `threads`. */
  async load(key, url, { weights, threads, maxTokens }) {
    const engine = await createEngine({ threads });
    const t0 = performance.now();
    const decoder = await loadDecoder(url, { engine, weights, maxTokens });
    loaded.set(key, { engine, decoder });
    return { loadMs: performance.now() - t0, bytes: decoder.bytes, threads: engine.info.threads, simd: engine.info.simd, memoryBytes: engine.info.memoryBytes };
  },
  run(key, prompt, decode) {
    const { decoder } = loaded.get(key);
    return runRound(decoder, sample, prompt, decode);
  },
  dispose(key) {
    const e = loaded.get(key);
    if (e === undefined) return;
    e.decoder.dispose();
    e.engine.dispose();
    loaded.delete(key);
  },
};

globalThis.onmessage = async (e) => {
  const { id, op, args } = e.data;
  try {
    globalThis.postMessage({ id, result: await ops[op](...args) });
  } catch (error) {
    globalThis.postMessage({ id, error: String(error?.stack ?? error) });
  }
};
