// llama.cpp's wasm build through wllama (npm @wllama/wllama), on the GGUF file the models page loaded
// into qkv, as bench/lib/peers/decoders/page/page.js runs it. Imported only when asked for: its wasm
// (10 MB) is fetched the first time, and wllama starts its own worker (threads when the page is
// cross-origin isolated).
//
// wllama 3 takes a prompt only as text (llama.cpp's server reads a list of ids, but wllama's glue
// refuses one), which llama.cpp tokenizes with the GGUF's own vocabulary: the page runs it on a text
// prompt only, and the two engines' prompt lengths may then differ (each row shows its own).

/** Whether the page was built with wllama (it is a devDependency of the example). */
export const wllamaAvailable = true;

const quiet = { debug() {}, log() {}, warn: console.warn, error: console.error };
let loaded = null; // { file, threads, wllama, loadMs }

/**
 * Loads `file` (once per file and thread count) and runs one greedy completion of `prompt`, streamed:
 * onToken(ms since the request, text so far) per chunk. Returns llama.cpp's own timings.
 */
export async function runWllama(file, { prompt, maxNewTokens, threads, ignoreEos, onToken }) {
  const [{ Wllama }, { default: wasmUrl }] = await Promise.all([import('@wllama/wllama'), import('@wllama/wllama/esm/wasm/wllama.wasm?url')]);
  if (loaded?.file !== file || loaded.threads !== threads) {
    await loaded?.wllama.exit();
    loaded = null;
    const wllama = new Wllama({ default: wasmUrl }, { logger: quiet, suppressNativeLog: true });
    const nCtx = 2048;
    const t0 = performance.now();
    try {
      await wllama.loadModel([file], { n_threads: threads, n_ctx: nCtx, n_batch: 512, n_ubatch: 512, n_gpu_layers: 0, n_parallel: 1, kv_unified: false });
    } catch (error) {
      await wllama.exit().catch(() => {});
      throw new Error(`llama.cpp (wllama) could not load ${file.name}: ${error?.message ?? error}`, { cause: error });
    }
    loaded = { file, threads, wllama, loadMs: performance.now() - t0 };
  }
  const { wllama } = loaded;
  const t0 = performance.now();
  let text = '';
  let timings = null;
  const stream = await wllama.createCompletion({ prompt, max_tokens: maxNewTokens, temperature: 0, cache_prompt: false, ignore_eos: ignoreEos, stream: true });
  for await (const chunk of stream) {
    const piece = chunk.choices?.[0]?.text ?? '';
    if (chunk.timings) timings = chunk.timings;
    if (piece !== '') {
      text += piece;
      onToken(performance.now() - t0, text);
    }
  }
  return {
    version: Wllama.getLibllamaVersion?.() ?? '',
    threads: wllama.getNumThreads(),
    loadMs: loaded.loadMs,
    text,
    promptN: timings?.prompt_n ?? 0,
    prefillMs: timings?.prompt_ms,
    // llama.cpp's predicted_ms runs from the prompt's end to the last token: predicted_n tokens, the
    // first one sampled from the prompt's logits, so predicted_n - 1 forwards, as qkv's decode rate counts
    decodeMs: timings ? timings.predicted_ms : undefined,
    decodeN: timings ? timings.predicted_n - 1 : undefined,
  };
}
