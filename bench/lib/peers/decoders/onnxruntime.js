// Peer: onnxruntime-web's wasm backend in Node, on the ONNX decoder of bench/lib/onnxDecoder.js,
// driven as transformers.js drives its exports: the prompt in one run with an empty past, then one
// run a token, each run's present.N.key/value fed back as the next one's past (copied out of ORT's
// heap and in again every step, as transformers.js does on the wasm backend), greedy (argmax of the
// last position's logits). ORT fixes its thread count when its wasm starts, once a process: the bench
// runs each thread count in its own process (ort.env.wasm.numThreads before the first session).
import { join } from 'node:path';
import * as ort from 'onnxruntime-web';

let started = null;

/** Starts ORT's wasm with `threads` threads; a later call must ask for the same. */
function start(threads) {
  if (started !== null && started !== threads) throw new Error(`onnxruntime-web already runs ${started} threads in this process; it cannot change to ${threads}`);
  started = threads;
  ort.env.wasm.numThreads = threads;
  ort.env.logLevel = 'error';
}

const argmaxLast = (logits) => {
  const V = logits.dims[2], data = logits.data, at = (logits.dims[1] - 1) * V;
  let best = 0;
  for (let i = 1; i < V; i++) if (data[at + i] > data[at + best]) best = i;
  return best;
};

/**
 * Opens `dir`'s model.onnx (with model.onnx_data) on `threads` threads. Resolves to { run(prompt,
 * decode), release(), version }; run as qkvRun.js' runRound: { prefillMs, decodeMs, tokens }.
 */
export async function openOnnxDecoder(dir, { threads, numLayers, kvHeads, headDim }) {
  start(threads);
  const session = await ort.InferenceSession.create(join(dir, 'model.onnx'), {
    executionProviders: ['wasm'], graphOptimizationLevel: 'all',
    externalData: [{ path: 'model.onnx_data', data: join(dir, 'model.onnx_data') }],
  });
  const emptyPast = () => {
    const past = {};
    for (let l = 0; l < numLayers; l++) {
      for (const kv of ['key', 'value']) past[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, kvHeads, 0, headDim]);
    }
    return past;
  };
  const ids = (tokens) => new ort.Tensor('int64', BigInt64Array.from(tokens, BigInt), [1, tokens.length]);
  const mask = (n) => new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]);
  /** One forward: new tokens after `past` (the previous outputs' presents); resolves to the outputs. */
  const forward = (tokens, total, past) => session.run({ input_ids: ids(tokens), attention_mask: mask(total), ...past });
  const presents = (out) => {
    const past = {};
    for (let l = 0; l < numLayers; l++) {
      for (const kv of ['key', 'value']) past[`past_key_values.${l}.${kv}`] = out[`present.${l}.${kv}`];
    }
    return past;
  };
  return {
    version: ort.env.versions.web,
    async run(prompt, decode) {
      let t0 = performance.now();
      let out = await forward(prompt, prompt.length, emptyPast());
      const prefillMs = performance.now() - t0;
      const tokens = [];
      t0 = performance.now();
      for (let i = 0; i < decode; i++) {
        const token = argmaxLast(out.logits);
        tokens.push(token);
        const next = await forward([token], prompt.length + i + 1, presents(out));
        for (const t of Object.values(out)) t.dispose();
        out = next;
      }
      const decodeMs = performance.now() - t0;
      tokens.push(argmaxLast(out.logits));
      for (const t of Object.values(out)) t.dispose();
      return { prefillMs, decodeMs, tokens };
    },
    release: () => session.release(),
  };
}
