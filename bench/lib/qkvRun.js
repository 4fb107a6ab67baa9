// One round of the decoder workload on a qkv decoder, the same in Node (bench/decoder.js) and in the
// peers' browser page: a prompt of token ids in one forward (prefill), then `decode` steps, each the
// greedy sample of the last logits and the forward of that token; then one last sample. So a round
// samples decode + 1 tokens and runs decode one-token forwards, as a peer's greedy run of decode + 1
// new tokens does (llama.cpp's server: max_tokens = decode + 1).
/**
 * Runs `prompt` then `decode` greedy steps on a fresh sequence of `decoder`; `sample` is qkv's. Returns
 * { prefillMs, decodeMs (all `decode` steps), tokens (the decode + 1 greedy tokens, the prefill's first) }.
 */
export function runRound(decoder, sample, prompt, decode, now = () => performance.now()) {
  const seq = decoder.sequence();
  try {
    let t0 = now();
    let logits = decoder.forward(prompt, { sequences: [seq], queryLens: [prompt.length] });
    const prefillMs = now() - t0;
    const tokens = [];
    t0 = now();
    for (let i = 0; i < decode; i++) {
      const token = sample(logits)[0];
      tokens.push(token);
      logits = decoder.forward([token], { sequences: [seq], queryLens: [1] });
    }
    const decodeMs = now() - t0;
    tokens.push(sample(logits)[0]);
    return { prefillMs, decodeMs, tokens };
  } finally {
    seq.free();
  }
}
