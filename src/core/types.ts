import type { GatedActivationOptions, LinearBuilder, LinearBuilderOptions, LinearLayer, LinearOptions, QuantizedWeight, RmsNormOptions } from './modelTypes.js';
import type {
  BatchAttentionOptions, GroupedQueryAttentionLayer, GroupedQueryParams, KVPool, KVPoolOptions, RotaryEmbeddingOptions,
} from './servingTypes.js';
import type { Mask, Tensor } from './tensor.js';

// `using x = …` needs [Symbol.dispose] typed: TypeScript's lib esnext.disposable and @types/node declare
// it; this declares the same for a program with neither (lib ES2022 alone), whose compile of these
// declarations would otherwise fail. At run time see src/core/dispose.ts.
declare global {
  interface SymbolConstructor {
    readonly dispose: unique symbol;
    readonly asyncDispose: unique symbol;
  }
}

/** How causal masking lines up queries with keys. `true` means `'top-left'`. */
export type CausalMode = boolean | 'top-left' | 'bottom-right';

/** Options of {@link Engine.matmul}. */
export interface MatmulOptions {
  /** Read `b` as `[..., N, K]` and multiply by its transpose. Default `false`. */
  transposeB?: boolean;
  /**
   * Write the result into this tensor (of the result's shape) instead of a fresh one, and return it.
   * An engine tensor (`engine.tensor(shape)`) lives in the engine's memory, so nothing is allocated.
   */
  out?: Tensor;
}

/** Options of {@link Engine.softmax} and {@link Engine.maskedSoftmax}. */
export interface OutOptions {
  /**
   * Write the result into this tensor (of the result's shape) instead of a fresh one, and return it.
   * An engine tensor (`engine.tensor(shape)`) lives in the engine's memory, so nothing is allocated.
   */
  out?: Tensor;
}

/** Options of {@link Engine.kernelRegression}. */
export interface KernelRegressionOptions {
  /** Width parameter of the Gaussian kernel: distances are multiplied by `w` before squaring. Default 1. */
  w?: number;
  /** Also return the `[n, m]` attention weights. Default `false`. */
  returnWeights?: boolean;
  /**
   * Write the output into this tensor (of the output's shape) instead of a fresh one, and return it.
   * An engine tensor (`engine.tensor(shape)`) lives in the engine's memory, so nothing is allocated.
   */
  out?: Tensor;
}

/** Options of {@link Engine.kernelRegressionLoss}. */
export interface KernelRegressionLossOptions {
  /** Width parameter of the Gaussian kernel, the parameter that `dLossDw` is the derivative for. Default 1. */
  w?: number;
  /**
   * Leave one out: query i is predicted from every key but key i (its own weight is masked out), as
   * when a model is fitted to its training points. Needs as many queries as keys. Default `false`.
   */
  leaveOneOut?: boolean;
  /**
   * `'mean'` (default, as PyTorch's `MSELoss`): the loss is the mean of the squared errors over the
   * n · dv outputs (NaN when there are none); `'sum'`: their sum (d2l sums them).
   */
  reduction?: 'mean' | 'sum';
  /**
   * Write the predictions into this tensor (of the output's shape) instead of a fresh one.
   * An engine tensor (`engine.tensor(shape)`) lives in the engine's memory, so nothing is allocated.
   */
  out?: Tensor;
}

/** What {@link Engine.kernelRegressionLoss} returns. */
export interface KernelRegressionLossResult {
  /** The predictions, as `kernelRegression` returns them (`[n]` or `[n, dv]`). */
  output: Tensor;
  /** The mean (or sum, see `reduction`) of the squared errors `(output - targets)²`, in float64. */
  loss: number;
  /** ∂loss/∂w at the given `w`: a step of gradient descent is `w -= learningRate * dLossDw`. */
  dLossDw: number;
}

/** Parameters of {@link Engine.additiveAttention}, in PyTorch `nn.Linear` layout (no biases). */
export interface AdditiveParams {
  /** `[h, Dq]`: projects queries to the hidden size h. */
  Wq: Tensor;
  /** `[h, Dk]`: projects keys to the hidden size h. */
  Wk: Tensor;
  /** `[1, h]`: reduces `tanh(Wq q + Wk k)` to one score. */
  wv: Tensor;
}

/** Options of {@link Engine.additiveAttention}. */
export interface AdditiveOptions {
  /** Length B (one per batch) or B*Lq (one per query row), array or Tensor: keys at positions >= the length get weight 0. */
  validLens?: ArrayLike<number> | Tensor;
  /** Also return the `[B, Lq, Lk]` weights. Default `false`. */
  returnWeights?: boolean;
  /**
   * Write the output into this tensor (of the output's shape) instead of a fresh one, and return it.
   * An engine tensor (`engine.tensor(shape)`) lives in the engine's memory, so nothing is allocated.
   */
  out?: Tensor;
}

/** Options of {@link Engine.scaledDotProductAttention}. */
export interface AttentionOptions {
  /** Multiplies the dot products. Default `1 / sqrt(E)`; pass 1 for plain dot-product attention. */
  scale?: number;
  /** Boolean (1 = may attend) or additive mask, broadcast to `[B, H, Lq, Lk]` (`[B, Lq, Lk]` for 3-D inputs). */
  mask?: Mask;
  /**
   * Causal masking. `true`/`'top-left'`: query i sees keys j <= i + Lpast. `'bottom-right'`: the last
   * query lines up with the last valid key, j <= i + n_b - Lq with n_b = validLens[b] or Lpast + Lk.
   * Default `false`.
   */
  causal?: CausalMode;
  /** Length B, array or Tensor: keys at positions >= validLens[b] (counted over past + new keys) are masked for batch b. */
  validLens?: ArrayLike<number> | Tensor;
  /** When > 0, scores become `softcap * tanh(scores / softcap)` after scaling, before the mask. Default off. */
  softcap?: number;
  /**
   * Sliding window around the query's position p (the causal frontier when `causal` is set, else i + Lpast):
   * keys j with p - left <= j <= p + right. An absent side is unbounded.
   */
  window?: { left?: number; right?: number };
  /** `[B, Hkv, Lpast, E]`: cached keys prepended to `key`. Give with `pastValue`. */
  pastKey?: Tensor;
  /** `[B, Hkv, Lpast, Ev]`: cached values prepended to `value`. Give with `pastKey`. */
  pastValue?: Tensor;
  /** Also return the weights `[B, H, Lq, Lpast + Lk]` after the softmax. Default `false`. */
  returnWeights?: boolean;
  /**
   * A KV cache of this engine (engine.createKVCache): `key` and `value` are appended to it, then the
   * queries attend over everything it holds, without copying it; causal defaults to 'bottom-right'
   * (the last query lines up with the newest key). Excludes pastKey/pastValue.
   */
  cache?: KVCache;
  /**
   * Write the output into this tensor (of the output's shape) instead of a fresh one, and return it.
   * An engine tensor (`engine.tensor(shape)`) lives in the engine's memory, so nothing is allocated.
   */
  out?: Tensor;
}

/** Options of {@link Engine.createKVCache}. */
export interface KVCacheOptions {
  /** Batch size B. */
  batch: number;
  /** Key/value heads Hkv. */
  kvHeads: number;
  /** Key feature size E. */
  headDim: number;
  /** Value feature size Ev. Default: headDim. */
  valueDim?: number;
  /** Most positions the cache holds. */
  capacity: number;
}

/**
 * A preallocated key/value cache for decoding, `[B, Hkv, capacity, E]` and `[B, Hkv, capacity, Ev]`
 * in the engine's memory. Appending past `capacity` throws a RangeError and leaves it unchanged.
 */
export interface KVCache {
  readonly batch: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly valueDim: number;
  readonly capacity: number;
  /** Positions held now. */
  readonly length: number;
  /** Appends keys `[B, Hkv, Lnew, E]` and values `[B, Hkv, Lnew, Ev]`. */
  append(key: Tensor, value: Tensor): void;
  /** The held keys `[B, Hkv, length, E]` and values, as fresh tensors. */
  read(): { keys: Tensor; values: Tensor };
  /** Empties the cache (capacity stays). */
  reset(): void;
  /** Releases its memory; later use throws. Twice is harmless. */
  dispose(): void;
  /** dispose(), for `using`. */
  [Symbol.dispose](): void;
}

/**
 * A multi-head attention layer whose weights were copied into the engine once
 * (engine.createMultiHeadAttention). Results equal multiHeadAttention with the same params.
 */
export interface MultiHeadAttentionLayer {
  /** E. */
  readonly embedDim: number;
  readonly numHeads: number;
  /** With `needWeights: true` the result has `weights` (typed as present); otherwise as the signature below. */
  forward(query: Tensor, key: Tensor, value: Tensor, options: MultiHeadOptions & { cache?: KVCache; needWeights: true }): WithWeights<OutputWithWeights>;
  /**
   * multiHeadAttention(query, key, value, params, options). With `options.cache` (kvHeads = numHeads,
   * headDim = E / numHeads), the projected keys and values are appended to it and the queries attend
   * over all of it, causal 'bottom-right' by default.
   */
  forward(query: Tensor, key: Tensor, value: Tensor, options?: MultiHeadOptions & { cache?: KVCache }): OutputWithWeights;
  /** Releases the weights; later use throws. Twice is harmless. */
  dispose(): void;
  /** dispose(), for `using`. */
  [Symbol.dispose](): void;
}

/** Result of {@link Engine.scaledDotProductAttention}. */
export interface AttentionResult {
  /** `[B, Hq, Lq, Ev]` (`[B, Lq, Ev]` for 3-D inputs). */
  output: Tensor;
  /** `[B, Hq, Lq, Lpast + Lk]` (`[B, Lq, Lpast + Lk]` for 3-D inputs), when `returnWeights`. */
  weights?: Tensor;
  /** Past and new keys, `[B, Hkv, Lpast + Lk, E]`, when `pastKey` was given. */
  presentKey?: Tensor;
  /** Past and new values, `[B, Hkv, Lpast + Lk, Ev]`, when `pastValue` was given. */
  presentValue?: Tensor;
}

/** The parameters of PyTorch `nn.MultiheadAttention`, same shapes and layout (y = x W^T + b). */
export interface MultiHeadParams {
  /** Number of heads H; E must be a multiple of it. */
  numHeads: number;
  /** `[3E, E]`: the stacked q, k, v projections, when key and value have width E. */
  inProjWeight?: Tensor;
  /** `[E, E]`: query projection (instead of `inProjWeight`). */
  qProjWeight?: Tensor;
  /** `[E, kdim]`: key projection (instead of `inProjWeight`). */
  kProjWeight?: Tensor;
  /** `[E, vdim]`: value projection (instead of `inProjWeight`). */
  vProjWeight?: Tensor;
  /** `[3E]`: biases of the q, k, v projections. */
  inProjBias?: Tensor;
  /** `[E, E]`: output projection. */
  outProjWeight: Tensor;
  /** `[E]`: output projection bias. */
  outProjBias?: Tensor;
  /** `[1, 1, E]`: appended as one extra key position (PyTorch `add_bias_kv`). Give with `biasV`. */
  biasK?: Tensor;
  /** `[1, 1, E]`: appended as one extra value position (PyTorch `add_bias_kv`). Give with `biasK`. */
  biasV?: Tensor;
  /** Append one all-zero key/value position after the projections (PyTorch `add_zero_attn`). Default `false`. */
  addZeroAttn?: boolean;
}

/** Options of {@link Engine.multiHeadAttention} and {@link Engine.selfAttention}. */
export interface MultiHeadOptions {
  /** `[B, Lk]` boolean, 1 = this key is padding and is ignored (the PyTorch meaning). */
  keyPaddingMask?: Mask;
  /**
   * Boolean (1 = may attend) or additive mask, broadcast to `[B, H, Lq, Lk]`; PyTorch's 3-D
   * `[B·H, Lq, Lk]` layout is read as `[B, H, Lq, Lk]`. (PyTorch's boolean `attn_mask` means the
   * opposite, 1 = masked: invert it.)
   */
  mask?: Mask;
  /** Causal masking over the key positions, as in {@link AttentionOptions.causal}. Default `false`. */
  causal?: CausalMode;
  /** Also return the attention weights. Default `false`. */
  needWeights?: boolean;
  /** Average the weights over heads (`[B, Lq, Lk]`); `false` gives `[B, H, Lq, Lk]`. Default `true`. */
  averageWeights?: boolean;
  /**
   * Write the output into this tensor (of the output's shape) instead of a fresh one, and return it.
   * An engine tensor (`engine.tensor(shape)`) lives in the engine's memory, so nothing is allocated.
   */
  out?: Tensor;
}

/** Result of the ops that can return their weights. */
export interface OutputWithWeights {
  output: Tensor;
  /** The attention weights, when `returnWeights` (`needWeights` for multi-head attention) is true. */
  weights?: Tensor;
}

/** A result whose weights were asked for (`returnWeights: true`, `needWeights: true`): `weights` is there. */
export type WithWeights<R extends { weights?: Tensor }> = R & {
  /** The attention weights, which were asked for. */
  weights: Tensor;
};

/**
 * What an implementation of an interface provides: each method with its last, general signature, so
 * one function implements all of its overloads (the overloads only narrow the result's type).
 */
export type Implementation<T> = { [K in keyof T]: T[K] extends (...args: infer A) => infer R ? (...args: A) => R : T[K] };

/** Facts about an engine. */
export interface EngineInfo {
  /** Which instruction set the kernels use: `'none'` for the reference engine. */
  simd: 'none' | 'simd' | 'relaxed';
  /** How many threads run the kernels. */
  threads: number;
  /** Bytes of wasm memory the engine holds now (0 for the reference engine). */
  memoryBytes: number;
}

/** Every op of qkv. The reference engine and the WebAssembly engine implement the same interface. */
export interface Engine {
  /** `'reference'` (pure TypeScript) or `'wasm'`. */
  readonly name: 'reference' | 'wasm';
  /** Which build runs and how much memory it holds. */
  readonly info: EngineInfo;
  /** Releases the engine's memory; later calls throw. Calling it twice is harmless. */
  dispose(): void;
  /** dispose(), for `using engine = await createEngine()`. */
  [Symbol.dispose](): void;

  /**
   * Matrix product `[..., M, K] x [..., K, N] -> [..., M, N]` (or `b` as `[..., N, K]` with
   * `transposeB`); leading dimensions broadcast. As in numpy, a 1-D `a` is a row and a 1-D `b` a column,
   * and the axis they add is dropped from the output.
   */
  matmul(a: Tensor, b: Tensor, options?: MatmulOptions): Tensor;
  /** Softmax along the last axis, max-subtracted. A row of all `-Infinity` gives all zeros. */
  softmax(x: Tensor, options?: OutOptions): Tensor;
  /**
   * Softmax of `x [B, Lq, Lk]` along the last axis where positions >= the valid length get weight 0
   * (d2l's `masked_softmax`). `validLens` has length B (one per batch) or B*Lq (one per query row),
   * as an array or a Tensor; a row whose length is 0 is all zeros. Without `validLens` it is `softmax`.
   */
  maskedSoftmax(x: Tensor, validLens?: ArrayLike<number> | Tensor, options?: OutOptions): Tensor;
  /** With `returnWeights: true` the result has `weights` (typed as present); otherwise as the signature below. */
  kernelRegression(queries: Tensor, keys: Tensor, values: Tensor, options: KernelRegressionOptions & { returnWeights: true }): WithWeights<OutputWithWeights>;
  /**
   * Nadaraya–Watson attention pooling with a Gaussian kernel:
   * `weights[i, j] = softmax_j(-||(queries[i] - keys[j]) * w||^2 / 2)`, `output[i] = sum_j weights[i, j] * values[j]`.
   * queries `[n]` or `[n, d]`; keys `[m]` or `[m, d]`; values `[m]` or `[m, dv]`; output `[n]` or `[n, dv]`.
   */
  kernelRegression(queries: Tensor, keys: Tensor, values: Tensor, options?: KernelRegressionOptions): OutputWithWeights;
  /**
   * Kernel regression and its squared-error loss against `targets`, with the derivative of the loss
   * with respect to the kernel width `w`: what fitting `w` by gradient descent needs (d2l's parametric
   * Nadaraya–Watson). With `leaveOneOut`, query i is predicted from every key but key i. For query i
   * (weights `a_ij` over the keys it may use, distances `D_ij = ||queries[i] - keys[j]||²`):
   * `output[i] = Σ_j a_ij values[j]`, `∂output[i]/∂w = -w Σ_j a_ij (D_ij - D̄_i)(values[j] - output[i])`
   * with `D̄_i = Σ_j a_ij D_ij`; `loss = r Σ (output - targets)²`, `dLossDw = 2r Σ (output - targets) ∂output/∂w`,
   * r = 1/(n·dv) (`'mean'`) or 1 (`'sum'`). A query with no key left predicts 0. NaN or Infinity in
   * the targets makes `loss` and `dLossDw` NaN (or infinite) and leaves `output` as it is.
   * queries `[n]` or `[n, d]`; keys `[m]` or `[m, d]`; values `[m]` or `[m, dv]`; targets of the output's shape.
   */
  kernelRegressionLoss(queries: Tensor, keys: Tensor, values: Tensor, targets: Tensor, options?: KernelRegressionLossOptions): KernelRegressionLossResult;
  /** With `returnWeights: true` the result has `weights` (typed as present); otherwise as the signature below. */
  additiveAttention(query: Tensor, key: Tensor, value: Tensor, params: AdditiveParams, options: AdditiveOptions & { returnWeights: true }): WithWeights<OutputWithWeights>;
  /**
   * Additive (Bahdanau) attention: `scores = wv · tanh(Wq q + Wk k)`, masked softmax over keys,
   * weighted sum of values. query `[B, Lq, Dq]`, key `[B, Lk, Dk]`, value `[B, Lk, Dv]` -> `[B, Lq, Dv]`.
   */
  additiveAttention(query: Tensor, key: Tensor, value: Tensor, params: AdditiveParams, options?: AdditiveOptions): OutputWithWeights;
  /** With `returnWeights: true` the result has `weights` (typed as present); otherwise as the signature below. */
  scaledDotProductAttention(query: Tensor, key: Tensor, value: Tensor, options: AttentionOptions & { returnWeights: true }): WithWeights<AttentionResult>;
  /**
   * `softmax(scale · Q Kᵀ + mask) V` with the options of {@link AttentionOptions}.
   * query `[B, Hq, Lq, E]`, key `[B, Hkv, Lk, E]`, value `[B, Hkv, Lk, Ev]` (3-D inputs `[B, L, E]` mean H = 1).
   * Grouped-query attention when Hq is a multiple of Hkv. A query row with no allowed key gives zeros.
   */
  scaledDotProductAttention(query: Tensor, key: Tensor, value: Tensor, options?: AttentionOptions): AttentionResult;
  /** With `needWeights: true` the result has `weights` (typed as present); otherwise as the signature below. */
  multiHeadAttention(query: Tensor, key: Tensor, value: Tensor, params: MultiHeadParams, options: MultiHeadOptions & { needWeights: true }): WithWeights<OutputWithWeights>;
  /**
   * PyTorch `nn.MultiheadAttention` forward (batch-first): query `[B, Lq, E]`, key `[B, Lk, kdim]`,
   * value `[B, Lk, vdim]` -> output `[B, Lq, E]`.
   */
  multiHeadAttention(query: Tensor, key: Tensor, value: Tensor, params: MultiHeadParams, options?: MultiHeadOptions): OutputWithWeights;
  /** With `needWeights: true` the result has `weights` (typed as present); otherwise as the signature below. */
  selfAttention(x: Tensor, params: MultiHeadParams, options: MultiHeadOptions & { needWeights: true }): WithWeights<OutputWithWeights>;
  /** `multiHeadAttention(x, x, x, params, options)`. */
  selfAttention(x: Tensor, params: MultiHeadParams, options?: MultiHeadOptions): OutputWithWeights;
  /** Sinusoidal positional encoding `[maxLen, dim]`: P[i, 2j] = sin(i / 10000^(2j/dim)), P[i, 2j+1] = cos(…). */
  positionalEncoding(maxLen: number, dim: number): Tensor;

  /** A multi-head attention layer with its weights copied into the engine once (for repeated calls). */
  createMultiHeadAttention(params: MultiHeadParams): MultiHeadAttentionLayer;
  /** A preallocated KV cache for decoding with scaledDotProductAttention or a layer's forward. */
  createKVCache(options: KVCacheOptions): KVCache;
  /**
   * A zero-filled tensor for zero-copy I/O: in the wasm engine its data lives in engine memory, so an
   * op reads it in place as an input and writes into it as `options.out` (the reference engine gives
   * a plain tensor). Read `tensor.data` afresh after any call: a view kept from before a call that
   * grew the engine's memory is detached (length 0), and ops refuse it, since its size no longer
   * fits its shape. `dispose()` returns the memory.
   */
  tensor(shape: readonly number[]): EngineTensor;

  /** Rotary position embeddings of x [B, H, L, D] (positions [L] or [B, L]) or token-major [T, H, D] (positions [T]). */
  rotaryEmbedding(x: Tensor, options?: RotaryEmbeddingOptions): Tensor;
  /** A pool of fixed-size blocks of keys and values, allocated once, that many sequences share. */
  createKVPool(options: KVPoolOptions): KVPool;
  /**
   * Attention of many sequences' new tokens at once: token-major query [T, Hq, D], key [T, Hkv, D] and
   * value [T, Hkv, Dv] (T = sum of queryLens); each sequence's new keys and values are appended to it,
   * then each query attends over its own sequence. Output [T, Hq, Dv].
   */
  batchAttention(query: Tensor, key: Tensor, value: Tensor, options: BatchAttentionOptions): { output: Tensor };
  /** The attention block of Llama, Mistral, Qwen and Gemma over a KV pool, weights copied in once. */
  createGroupedQueryAttention(params: GroupedQueryParams): GroupedQueryAttentionLayer;

  /**
   * RMSNorm along the last axis: `x / sqrt(mean(x²) + eps) · w`, or `· (1 + w)` with `unitOffset`
   * (Gemma). x `[..., D]`, weight `[D]`.
   */
  rmsNorm(x: Tensor, weight: Tensor, options?: RmsNormOptions): Tensor;
  /**
   * A linear layer `y = x Wᵀ + b` whose weight `[out, in]` is copied into the engine once, stored as
   * `dtype`; or, from a {@link QuantizedWeight}, stored as those int8/int4 integers and scales exactly.
   */
  createLinear(weight: Tensor | QuantizedWeight, options?: LinearOptions): LinearLayer;
  /**
   * An int8/int4 layer of weight shape `[out, in]` built from float rows appended a few at a time
   * ({@link LinearBuilder}): the layer createLinear makes of the whole weight, without ever holding it.
   */
  createLinearBuilder(shape: readonly number[], options: LinearBuilderOptions): LinearBuilder;
  /** `a + b`, elementwise, same shapes (a residual add: `out` may be `a` itself). */
  add(a: Tensor, b: Tensor, options?: OutOptions): Tensor;
  /**
   * The gated MLP's middle: x `[..., 2I]` (the gate's I features, then the up projection's I)
   * -> `[..., I]`, `act(gate) · up`.
   */
  gatedActivation(x: Tensor, options?: GatedActivationOptions): Tensor;
  /** `cap · tanh(x / cap)` elementwise (Gemma 2's final logit softcap); cap > 0. */
  softcap(x: Tensor, cap: number, options?: OutOptions): Tensor;
}

/** A tensor whose data an engine holds (engine.tensor). */
export interface EngineTensor extends Tensor {
  /** Returns its memory to the engine; later use of `data` throws. Twice is harmless. */
  dispose(): void;
  /** dispose(), for `using`. */
  [Symbol.dispose](): void;
}
