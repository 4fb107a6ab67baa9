// The public types of decoders (the README's "Run a model"): what loadDecoder takes and gives.

import type { LinearDtype } from '../core/modelTypes.js';
import type { Tensor } from '../core/tensor.js';
import type { Engine } from '../core/types.js';

/** Options of {@link loadDecoder}. */
export interface DecoderOptions {
  /** The engine that holds the weights and runs the decoder: `reference` or a wasm engine. */
  engine: Engine;
  /**
   * Storage of every linear layer's weight (the LM head included). Not given: `'float32'`, except a
   * GGUF file's Q8_0 and Q4_0 tensors, which keep their stored format as `'int8'`/`'int4'` groups of
   * 32 (createLinear's QuantizedWeight: no requantizing). Given: every linear layer is stored so; a
   * GGUF tensor already in that format (Q8_0 for `'int8'`, Q4_0 for `'int4'`, with groupSize 32) is
   * taken as stored, any other is dequantized first and converted (so Q4_0 to `'int8'`, or Q8_0 to
   * `'int4'`, is rounded twice). An untied embedding table is only looked up and keeps the
   * checkpoint's values: float32 (float16 when this is `'float16'`), or its Q8_0/Q4_0 groups as stored.
   */
  weights?: LinearDtype;
  /** int8/int4 weights: inputs per scale, as in createLinear. Default 32 (a GGUF's blocks kept as stored have 32). */
  groupSize?: number;
  /** Every layer's KV pool: storage (default `'float32'`) and positions per block (default 16). */
  kv?: { dtype?: 'float32' | 'float16' | 'int8'; blockSize?: number };
  /** Sizes the pools: ceil(maxTokens / blockSize) blocks in every layer's pool. Default 8192. */
  maxTokens?: number;
  /** Called after each tensor is read. */
  onProgress?: (p: { loadedBytes: number; totalBytes: number }) => void;
  /** Aborts the load; nothing stays allocated in the engine. */
  signal?: AbortSignal;
}

/** What a decoder is, read from its config.json. */
export interface DecoderConfig {
  /** `architectures[0]` of config.json, e.g. `'LlamaForCausalLM'`. */
  readonly architecture: string;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly intermediateSize: number;
  /** The most positions a sequence may hold: config.json's max_position_embeddings. */
  readonly maxPositions: number;
  /** Tokens that end generation by default (config.json's, then generation_config.json's eos_token_id). */
  readonly eosTokenIds: readonly number[];
  /** BOS token id, when the config names one. */
  readonly bosTokenId: number | null;
  readonly tieWordEmbeddings: boolean;
  readonly rmsNormEps: number;
  /** Which layers attend over a sliding window (their window, in keys ending at the query), null for full attention. */
  readonly slidingWindows: readonly (number | null)[];
}

/** Sampling as Hugging Face's generate applies it. */
export interface SamplingOptions {
  /** 0 (default): greedy, the first index of the largest logit. Otherwise logits are divided by it before sampling. */
  temperature?: number;
  /** Keep the k most likely tokens (ties with the k-th kept). 0 or absent: off. */
  topK?: number;
  /** Keep the most likely tokens whose probabilities add up to at least topP. 1 or absent: off. */
  topP?: number;
  /** Drop tokens less likely than minP times the most likely one's probability. 0 or absent: off. */
  minP?: number;
  /** Hugging Face's: a seen token's logit is divided by it when positive, multiplied when negative. 1: off. */
  repetitionPenalty?: number;
  /** The same engine, inputs and seed give the same tokens. Default: a random seed. */
  seed?: number;
}

/** Options of {@link Decoder.generate}. */
export interface GenerateOptions extends SamplingOptions {
  /** Most tokens to generate. Default 256. */
  maxNewTokens?: number;
  /** Tokens that end the stream (neither yielded nor fed). Default: config.eosTokenIds. */
  stop?: ArrayLike<number>;
  /**
   * Continue this sequence (a chat's next turn): the prompt is appended to what it holds. The last
   * token a generate call yields is not fed; the sequence keeps it and the next generate on it feeds
   * it before the prompt (fork() copies it, truncate() drops it).
   */
  sequence?: DecoderSequence;
  /** Ends the generator (quietly, as a stop token would); the sequence's blocks go back unless `sequence` was given. */
  signal?: AbortSignal;
}

/** One sequence's keys and values in every layer's pool. */
export interface DecoderSequence {
  /** Positions held. */
  readonly length: number;
  /** The tokens whose keys and values it holds (`length` of them). */
  readonly tokens: Int32Array;
  /** A second sequence with the same positions (blocks shared until written), and the same unfed token. */
  fork(): DecoderSequence;
  /** Keeps the first `length` positions (and drops an unfed token). */
  truncate(length: number): void;
  /** Blocks go back to the pools; later use throws. */
  free(): void;
  /** free(), for `using`; nothing when the sequence is already freed. */
  [Symbol.dispose](): void;
}

/** Options of {@link Decoder.forward}. */
export interface ForwardOptions {
  /** One per batch entry, of this decoder, none twice. */
  sequences: readonly DecoderSequence[];
  /** New tokens of each sequence, in order (as batchAttention). */
  queryLens: ArrayLike<number>;
  /** `'last'` (default): logits of each sequence's last new token, [S, vocab]; `'all'`: of every token, [T, vocab]. */
  logits?: 'last' | 'all';
  /** Write the logits here (an engine tensor is written in place). */
  out?: Tensor;
}

/** A decoder-only language model whose every layer runs on one engine. */
export interface Decoder {
  readonly config: DecoderConfig;
  /** Engine memory held by the weights and the KV pools. */
  readonly bytes: number;
  /** Blocks no sequence holds, in each layer's pool (the pools move in step: every layer holds the same positions). */
  readonly freeBlocks: number;
  /** Positions a block holds. */
  readonly blockSize: number;
  /** A new, empty sequence. */
  sequence(): DecoderSequence;
  /**
   * Runs the new tokens of every sequence through every layer (their keys and values are appended to
   * the sequences) and returns logits. tokens [T], T = sum of queryLens.
   */
  forward(tokens: ArrayLike<number>, options: ForwardOptions): Tensor;
  /** Generates tokens after `prompt`, one at a time, as they come. */
  generate(prompt: ArrayLike<number>, options?: GenerateOptions): AsyncGenerator<number, void, undefined>;
  /** Releases the weights and pools; later use throws. Twice is harmless. */
  dispose(): void;
  /** dispose(), for `using`. */
  [Symbol.dispose](): void;
}
