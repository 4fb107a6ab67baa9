// The types of the ops a decoder is built from (the README's "Run a model"): RMSNorm, linear layers with
// their stored weights, the gated MLP's activation, residual adds and the final logit softcap.
import type { Tensor } from './tensor.js';

/** Options of {@link Engine.rmsNorm}. */
export interface RmsNormOptions {
  /** Added to the mean of squares. Default 1e-6. */
  eps?: number;
  /** Multiply by `1 + w` instead of `w` (Gemma's norms). Default `false`. */
  unitOffset?: boolean;
  /** Write the result here (shaped like x; an engine tensor is written in place, x itself may be given). */
  out?: Tensor;
}

/** How a linear layer stores its weight. */
export type LinearDtype = 'float32' | 'float16' | 'int8' | 'int4';

/** Options of {@link Engine.createLinear}. */
export interface LinearOptions {
  /** `[out]`: added to every output row. */
  bias?: Tensor;
  /** Storage of the weight. Default `'float32'`. */
  dtype?: LinearDtype;
  /** int8/int4: inputs per scale, a multiple of 32 that divides `in`. Default 32. */
  groupSize?: number;
}

/** A linear layer whose weight `[out, in]` (nn.Linear's layout: y = x Wᵀ + b) the engine holds. */
export interface LinearLayer {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly dtype: LinearDtype;
  /** Engine memory the stored weight takes, scales and bias included. */
  readonly bytes: number;
  /** x `[T, in]` -> `[T, out]`. */
  forward(x: Tensor, options?: { out?: Tensor }): Tensor;
  /**
   * Rows of the stored weight, as stored (dequantized to float32) and times `scale` (default 1):
   * `ids` `[n]` -> `[n, in]`. An embedding table is a linear layer read this way, so that a tied
   * LM head and the lookup share one stored matrix. An id outside [0, out) is a RangeError.
   */
  lookup(ids: ArrayLike<number>, options?: { scale?: number; out?: Tensor }): Tensor;
  /** Releases the weight; later use throws. Twice is harmless. */
  dispose(): void;
  /** dispose(), for `using`. */
  [Symbol.dispose](): void;
}

/** The activations of gated MLPs. */
export type GatedActivation = 'silu' | 'gelu-tanh';

/** Options of {@link Engine.gatedActivation}. */
export interface GatedActivationOptions {
  /**
   * `'silu'` (default): x · sigmoid(x), Llama, Mistral, Qwen and Phi-3's `silu`; `'gelu-tanh'`:
   * 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))), Gemma's `gelu_pytorch_tanh`.
   */
  activation?: GatedActivation;
  /** Write the result here (an engine tensor is written in place). */
  out?: Tensor;
}
