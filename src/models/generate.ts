// Decoder.generate: feed the prompt (after what the sequence holds and its unfed token), then sample
// one token at a time, feeding each one before sampling the next. The last token yielded is kept
// unfed on the sequence (nothing needs its keys yet): the next generate on it feeds it first.
import { describeValue } from '../core/validate.js';
import { samplerOf, sampleRow } from './sample.js';
import { ModelSequence } from './sequence.js';
import type { Decoder, GenerateOptions } from './types.js';
import { nextTask } from '../core/nextTask.js';

const OP = 'Decoder.generate';

function tokenList(name: string, x: unknown): number[] {
  if (x === null || typeof x !== 'object' || typeof (x as ArrayLike<number>).length !== 'number') {
    throw new TypeError(`${OP}: ${name} must be an array of token ids, got ${describeValue(x)}`);
  }
  return Array.from(x as ArrayLike<number>);
}

export async function* generate(decoder: Decoder, prompt: ArrayLike<number>, options: GenerateOptions): AsyncGenerator<number, void, undefined> {
  if (options === null || typeof options !== 'object') throw new TypeError(`${OP}: options must be an object`);
  const tokens = tokenList('prompt', prompt);
  const sampler = samplerOf(OP, options);
  const { maxNewTokens = 256, signal } = options;
  if (typeof maxNewTokens !== 'number' || !Number.isInteger(maxNewTokens) || maxNewTokens < 0) {
    throw new RangeError(`${OP}: options.maxNewTokens must be an integer >= 0, got ${String(maxNewTokens)}`);
  }
  const stop = new Set(options.stop === undefined ? decoder.config.eosTokenIds : tokenList('options.stop', options.stop));
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
