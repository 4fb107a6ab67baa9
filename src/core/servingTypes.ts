// The types of serving many sequences (docs/ATTENTION.md, "Many sequences"): rotary embeddings, a paged
// KV pool and its sequences, batched attention over them, and the grouped-query attention layer.
import type { Tensor } from './tensor.js';

/** Rotary position embeddings (RoPE): how each pair of features turns with the position. */
export interface RotaryOptions {
  /** Pair i turns by angle p · base^(-2i/dim) at position p. Default 10000. */
  base?: number;
  /** Rotated features: even, at most D; the rest pass through unchanged. Default D. */
  dim?: number;
  /**
   * false (default): pairs (x[i], x[i + dim/2]), as Llama, GPT-NeoX and ONNX RotaryEmbedding;
   * true: pairs (x[2i], x[2i+1]), as GPT-J.
   */
  interleaved?: boolean;
  /** `[maxPositions, dim/2]` tables used instead of `base` (scaled RoPE variants); give both. */
  cos?: Tensor;
  sin?: Tensor;
}

/** Options of rotaryEmbedding: RotaryOptions and the positions of the rows. */
export interface RotaryEmbeddingOptions extends RotaryOptions {
  /** `[L]` or [B, L] for x [B, H, L, D] (default 0..L-1); [T] for token-major x [T, H, D] (default 0..T-1). */
  positions?: ArrayLike<number> | Tensor;
  /** Where the result goes, shaped like x (an engine tensor is written in place; x itself may be given). */
  out?: Tensor;
}

/** Options of createKVPool. */
export interface KVPoolOptions {
  /** Hkv: key/value heads of every position. */
  kvHeads: number;
  /** D: features of a key. */
  headDim: number;
  /** Dv: features of a value. Default headDim. */
  valueDim?: number;
  /** Blocks in the pool, allocated once. */
  blocks: number;
  /** Positions per block. Default 16. */
  blockSize?: number;
  /** Storage of keys and values. Default 'float32' (the only one so far). */
  dtype?: 'float32' | 'float16' | 'int8';
}

/** A pool of fixed-size blocks of keys and values that many sequences share (vLLM's PagedAttention). */
export interface KVPool {
  readonly kvHeads: number;
  readonly headDim: number;
  readonly valueDim: number;
  readonly blocks: number;
  readonly blockSize: number;
  readonly dtype: string;
  /** Blocks no sequence holds. */
  readonly freeBlocks: number;
  /** A new, empty sequence. */
  sequence(): KVSequence;
  /** Frees the pool's memory; its sequences throw from then on. */
  dispose(): void;
  /** dispose(), for `using`. */
  [Symbol.dispose](): void;
}

/** One sequence's keys and values, in blocks of its pool. */
export interface KVSequence {
  /** Positions held. */
  readonly length: number;
  /** Appends keys [n, Hkv, D] and values [n, Hkv, Dv], stored as given (no rotary). */
  append(key: Tensor, value: Tensor): void;
  /** Keys [length, Hkv, D] and values [length, Hkv, Dv], as stored. */
  read(): { keys: Tensor; values: Tensor };
  /**
   * A second sequence with the same positions: blocks are shared (reference counts), so a fork takes
   * no block until a branch writes into a shared one, which is then copied (at most one per branch).
   */
  fork(): KVSequence;
  /** Keeps the first `length` positions; blocks past them go back to the pool. */
  truncate(length: number): void;
  /** Blocks go back to the pool; later use throws. */
  free(): void;
  /** free(), for `using`; nothing when the sequence is already freed. */
  [Symbol.dispose](): void;
}

/** Options of batchAttention. */
export interface BatchAttentionOptions {
  /** One per batch entry, of one pool, none twice. */
  sequences: readonly KVSequence[];
  /** New tokens of each sequence: its rows of query/key/value, in order; 0 allowed. */
  queryLens: ArrayLike<number>;
  /** Key j is allowed for the query at position p when j <= p. Default true. */
  causal?: boolean;
  /** Multiplies the dot products. Default 1 / sqrt(D). */
  scale?: number;
  /** When > 0, scores become softcap · tanh(scores / softcap) after scaling. */
  softcap?: number;
  /** Keys j with p - left <= j <= p + right; an absent side is unbounded. */
  window?: { left?: number; right?: number };
  /** Turns each query and key row by its position before the keys are stored. */
  rotary?: RotaryOptions;
  /** `[Hq]`: adds -slope_h · |p - j| to the scores (after scale and softcap). */
  alibiSlopes?: Tensor;
  /** `[Hq]`: one more logit per head in the softmax's denominator, with no value (attention sinks). */
  sinks?: Tensor;
  /** Write the output [T, Hq, Dv] here instead of a fresh tensor. */
  out?: Tensor;
}

/** The attention block of Llama, Mistral, Qwen and Gemma, in Hugging Face layout (y = x Wᵀ + b). */
export interface GroupedQueryParams {
  /** Hq: query heads, a multiple of numKvHeads. */
  numHeads: number;
  /** Hkv: key/value heads. */
  numKvHeads: number;
  /** D: features per head. */
  headDim: number;
  /** `[Hq·D, E]` */
  qProjWeight: Tensor;
  /** `[Hkv·D, E]` */
  kProjWeight: Tensor;
  /** `[Hkv·D, E]` */
  vProjWeight: Tensor;
  /** `[E, Hq·D]` */
  oProjWeight: Tensor;
  qProjBias?: Tensor;
  kProjBias?: Tensor;
  vProjBias?: Tensor;
  oProjBias?: Tensor;
  /** `[D]`: RMSNorm of every head's query before rotary, x / sqrt(mean(x²) + eps) · w (Qwen3, Gemma 3). */
  qNormWeight?: Tensor;
  /** `[D]`: the same for keys. */
  kNormWeight?: Tensor;
  /** RMSNorm's epsilon. Default 1e-6. */
  normEps?: number;
  rotary?: RotaryOptions;
  scale?: number;
  softcap?: number;
  window?: { left?: number; right?: number };
  sinks?: Tensor;
  alibiSlopes?: Tensor;
}

/** A prepared grouped-query attention block: weights copied into the engine once. */
export interface GroupedQueryAttentionLayer {
  /** x [T, E] -> [T, E]: projections, q/k norm, rotary, batchAttention over the sequences, output projection. */
  forward(x: Tensor, options: { sequences: readonly KVSequence[]; queryLens: ArrayLike<number>; out?: Tensor }): { output: Tensor };
  dispose(): void;
  /** dispose(), for `using`. */
  [Symbol.dispose](): void;
}
