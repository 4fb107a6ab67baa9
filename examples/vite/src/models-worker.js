// qkv in a module worker of the models page: the engine, the decoder loaded from the page's File
// objects, the checkpoint's tokenizer when it has a tokenizer.json, and greedy generation. A worker,
// so that the page stays responsive (and can draw each token) while a forward runs, and because a
// page's main thread may not block, so qkv's threads would spin there.
//
// Messages in:  { id, op: 'load', files: { [name]: File }, weights, threads }
//               { id, op: 'generate', prompt: number[] | string, maxNewTokens, stopAtEos }
//               { op: 'stop' }
// Messages out: { id, result } or { id, error } once per call; while one runs,
//               { event: 'progress', loadedBytes, totalBytes } and { event: 'token', token, ms, text }.
import { createEngine, loadDecoder } from 'qkv';

let engine = null;
let decoder = null;
let tokenizer = null;
let controller = null;

const post = (message) => self.postMessage(message);

/** The tokenizer of `files` (tokenizer.json and, when there, tokenizer_config.json), or null. */
async function loadTokenizer(files) {
  if (!files['tokenizer.json']) return null;
  const json = JSON.parse(await files['tokenizer.json'].text());
  const config = files['tokenizer_config.json'] ? JSON.parse(await files['tokenizer_config.json'].text()) : {};
  // loaded only for a checkpoint that has one, as qkv's server does (src/serving/text.ts)
  const { Tokenizer } = await import('@huggingface/tokenizers');
  const t = new Tokenizer(json, config);
  return {
    encode: (text) => t.encode(text).ids,
    decode: (ids) => t.decode(ids, { skip_special_tokens: true }),
  };
}

function unload() {
  decoder?.dispose();
  decoder = null;
  tokenizer = null;
}

const ops = {
  async load({ files, weights, threads }) {
    unload();
    if (engine === null || engine.info.threads !== threads) {
      engine?.dispose();
      engine = null;
      engine = await createEngine({ threads });
    }
    const format = Object.keys(files).some((n) => /\.gguf$/i.test(n)) && !Object.keys(files).some((n) => /\.safetensors$/.test(n)) ? 'gguf' : 'safetensors';
    const t0 = performance.now();
    // the page's maxTokens: 4096 positions of keys and values at most (default 8192), fewer when the model has fewer
    decoder = await loadDecoder({ files }, {
      engine,
      weights: weights === 'stored' ? undefined : weights,
      maxTokens: 4096,
      onProgress: ({ loadedBytes, totalBytes }) => post({ event: 'progress', loadedBytes, totalBytes }),
    });
    const loadMs = performance.now() - t0;
    try {
      tokenizer = await loadTokenizer(files);
    } catch (error) {
      unload();
      throw new Error(`tokenizer.json: ${error.message}`, { cause: error });
    }
    return { format, loadMs, config: { ...decoder.config }, bytes: decoder.bytes, hasTokenizer: tokenizer !== null, engine: engine.info, crossOriginIsolated };
  },

  async generate({ prompt, maxNewTokens, stopAtEos }) {
    if (decoder === null) throw new Error('no checkpoint is loaded');
    let ids;
    if (typeof prompt === 'string') {
      if (tokenizer === null) throw new Error('this checkpoint has no tokenizer.json: give the prompt as token ids, e.g. 1, 5, 9');
      ids = tokenizer.encode(prompt);
    } else {
      ids = prompt;
    }
    const { vocabSize, maxPositions } = decoder.config;
    const bad = ids.find((t) => !(t >= 0 && t < vocabSize));
    if (bad !== undefined) throw new RangeError(`token id ${bad} is not in this model's vocabulary (0 to ${vocabSize - 1})`);
    if (ids.length === 0) throw new RangeError('the prompt is empty');
    const room = Math.min(maxPositions, 4096) - ids.length;
    if (room < 1) throw new RangeError(`the prompt's ${ids.length} tokens leave no room in the model's ${Math.min(maxPositions, 4096)} positions`);
    const n = Math.min(maxNewTokens, room);
    post({ event: 'prompt', ids, maxNewTokens: n });
    controller = new AbortController();
    const tokens = [];
    const t0 = performance.now();
    try {
      for await (const token of decoder.generate(ids, { maxNewTokens: n, stop: stopAtEos ? undefined : [], signal: controller.signal })) {
        tokens.push(token);
        post({ event: 'token', token, ms: performance.now() - t0, text: tokenizer?.decode(tokens) ?? null });
      }
    } finally {
      controller = null;
    }
    return { promptIds: ids, tokens, ms: performance.now() - t0, stopped: tokens.length < n };
  },
};

self.onmessage = async ({ data }) => {
  if (data.op === 'stop') {
    controller?.abort();
    return;
  }
  try {
    post({ id: data.id, result: await ops[data.op](data) });
  } catch (error) {
    post({ id: data.id, error: error?.message ?? String(error) });
  }
};
