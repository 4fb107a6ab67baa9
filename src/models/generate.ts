// Decoder.generate: feed the prompt (after what the sequence holds and its unfed token), then sample
// one token at a time, feeding each one before sampling the next. The last token yielded is kept
// unfed on the sequence (nothing needs its keys yet): the next generate on it feeds it first.

import { nextTask } from '../core/nextTask.js';
import { describeValue } from '../core/validate.js';
import { sampleRow, samplerOf } from './sample.js';
import { ModelSequence } from './sequence.js';
import type { Decoder, GenerateOptions } from './types.js';

const OP = 'Decoder.generate';

/**
 * Token ids from an array-like `x` (a prompt, stop tokens) of `op`'s options; with `vocab`, each an
 * integer in [0, vocab) (RangeError otherwise). createBatcher's submit checks its requests with it too.
 */
export function tokenList(op: string, name: string, x: unknown, vocab?: number): number[] {
  if (x === null || typeof x !== 'object' || typeof (x as ArrayLike<number>).length !== 'number') {
    throw new TypeError(`${op}: ${name} must be an array of token ids, got ${describeValue(x)}`);
  }
  const a = Array.from(x as ArrayLike<number>);
  if (vocab !== undefined) {
    a.forEach((t, i) => {
      if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t >= vocab) throw new RangeError(`${op}: ${name}[${i}] must be an integer in [0, ${vocab}), got ${String(t)}`);
    });
  }
  return a;
}

/** options.maxNewTokens of `op` (generate, the batcher's submit): an integer >= 0, default 256. */
export function maxNewTokensOf(op: string, options: GenerateOptions): number {
  const { maxNewTokens = 256 } = options;
  if (typeof maxNewTokens !== 'number' || !Number.isInteger(maxNewTokens) || maxNewTokens < 0) {
    throw new RangeError(`${op}: options.maxNewTokens must be an integer >= 0, got ${String(maxNewTokens)}`);
  }
  return maxNewTokens;
}

export async function* generate(decoder: Decoder, prompt: ArrayLike<number>, options: GenerateOptions): AsyncGenerator<number, void, undefined> {
  if (options === null || typeof options !== 'object') throw new TypeError(`${OP}: options must be an object`);
  const tokens = tokenList(OP, 'prompt', prompt);
  const sampler = samplerOf(OP, options);
  const maxNewTokens = maxNewTokensOf(OP, options);
  const { signal } = options;
  const stop = new Set(options.stop === undefined ? decoder.config.eosTokenIds : tokenList(OP, 'options.stop', options.stop));
  const given = options.sequence;
  if (given !== undefined && (!(given instanceof ModelSequence) || given.owner !== decoder)) {
    throw new TypeError(`${OP}: options.sequence is not a sequence of this decoder`);
  }
  const sequence = given ?? (decoder.sequence() as ModelSequence);
  try {
    const feed = [...sequence.pending, ...tokens];
    if (feed.length === 0) throw new RangeError(`${OP}: the prompt is empty and the sequence has no token to continue from`);
    if (maxNewTokens === 0 || signal?.aborted) return;
    let logits = decoder.forward(feed, { sequences: [sequence], queryLens: [feed.length] });
    sequence.pending = [];
    for (let n = 0; ; n++) {
      const token = sampleRow(logits.data, sampler, sequence.tokens);
      if (stop.has(token)) return;
      // yielded and not yet fed: if the consumer stops here, the sequence keeps it unfed
      sequence.pending = [token];
      yield token;
      if (n + 1 >= maxNewTokens || signal?.aborted) return;
      logits = decoder.forward([token], { sequences: [sequence], queryLens: [1] });
      sequence.pending = [];
      // let other work (a signal's abort, another generator) run between tokens
      await nextTask();
      if (signal?.aborted) return;
    }
  } finally {
    if (given === undefined) sequence.free();
  }
}
