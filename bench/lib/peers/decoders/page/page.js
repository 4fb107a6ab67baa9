// The bench page: qkv's browser build (in a module worker, qkv-worker.js) and wllama (llama.cpp's
// wasm build, which starts its own worker) side by side. bench/lib/peers/decoders/wllama.js drives it
// through window.bench with puppeteer; the page itself only relays.
import { Wllama } from '@wllama/wllama';
import wllamaWasm from '@wllama/wllama/esm/wasm/wllama.wasm?url';
import { promptText, readTokens } from '../../../ggufTokens.js';

const worker = new Worker(new URL('./qkv-worker.js', import.meta.url), { type: 'module' });
const pending = new Map();
let next = 0;
worker.onmessage = (e) => {
  const { id, result, error } = e.data;
  const p = pending.get(id);
  pending.delete(id);
  if (error !== undefined) p.reject(new Error(error));
  else p.resolve(result);
};
const qkv = (op, ...args) => new Promise((resolve, reject) => {
  const id = ++next;
  pending.set(id, { resolve, reject });
  worker.postMessage({ id, op, args });
});

const wllamas = new Map();
const quiet = { debug() {}, log() {}, warn: console.warn, error: console.error };

window.bench = {
  info: () => ({ crossOriginIsolated, cores: navigator.hardwareConcurrency, userAgent: navigator.userAgent }),
  qkvLoad: (key, url, options) => qkv('load', key, url, options),
  qkvRun: (key, prompt, decode) => qkv('run', key, prompt, decode),
  qkvDispose: (key) => qkv('dispose', key),

  /** Loads the GGUF at `url` into a new Wllama of `threads` threads (CPU only, one slot of nCtx). */
  async wllamaLoad(key, url, { threads, nCtx }) {
    const w = new Wllama({ default: wllamaWasm }, { logger: quiet, suppressNativeLog: true });
    const t0 = performance.now();
    const blob = await (await fetch(url)).blob();
    await w.loadModel([blob], { n_threads: threads, n_ctx: nCtx, n_batch: nCtx, n_ubatch: nCtx, n_gpu_layers: 0, n_parallel: 1, kv_unified: false });
    wllamas.set(key, w);
    return { loadMs: performance.now() - t0, threads: w.getNumThreads(), multithread: w.isMultithread(), version: Wllama.getLibllamaVersion() };
  },
  /**
   * One greedy run of decode + 1 new tokens after `prompt` (token ids), the prompt never cached.
   * wllama 3 takes a prompt only as text (llama.cpp's server reads a list of ids, but wllama's glue
   * refuses one): the ids are written as the text that the GGUF's tokenizer maps back to them
   * (bench/lib/ggufTokens.js), and promptN says how many tokens llama.cpp saw. Times from the
   * server's own clock: prompt_ms the prompt's forward, predicted_ms from there to the last token.
   */
  async wllamaRun(key, prompt, decode) {
    const w = wllamas.get(key);
    const t0 = performance.now();
    const r = await w.createCompletion({ prompt: promptText(prompt), max_tokens: decode + 1, temperature: 0, cache_prompt: false, ignore_eos: true, stream: false });
    const wallMs = performance.now() - t0;
    const t = r.timings;
    return { prefillMs: t.prompt_ms, promptN: t.prompt_n, cacheN: t.cache_n, decodeMs: t.predicted_ms, predictedN: t.predicted_n, wallMs, tokens: readTokens(r.choices[0].text) };
  },
  async wllamaDispose(key) {
    await wllamas.get(key)?.exit();
    wllamas.delete(key);
  },
};
document.body.dataset.ready = 'true';
