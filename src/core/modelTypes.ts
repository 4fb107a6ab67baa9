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
  /**
   * Storage of the weight. Default `'float32'`; with a {@link QuantizedWeight}, the weight's own
   * dtype (given here, it must be the same).
   */
  dtype?: LinearDtype;
  /**
   * int8/int4: inputs per scale, a multiple of 32 that divides `in`. Default 32; with a
   * {@link QuantizedWeight}, the weight's own groupSize (given here, it must be the same).
   */
  groupSize?: number;
}

/**
 * A weight already quantized in createLinear's `'int8'` or `'int4'` storage, given to createLinear in
 * place of a float Tensor: the layer stores exactly these integers and scales, with no requantizing
 * (GGUF's Q8_0 and Q4_0 blocks are such weights, in groups of 32). Row `o`'s group `j` covers inputs
 * `[j·groupSize, (j + 1)·groupSize)` and stands for the values `q[o·in + i] · scales[o·G + j]`
 * (G = in / groupSize). The layer is the one createLinear stores when it quantizes float weights to
 * these same q and scales, so its forward (Q8_0 activations, exact integer sums) and lookup are too.
 *
 * Refused before anything is allocated: `q` not an Int8Array or `scales` not a Float32Array
 * (TypeError); `dtype` other than 'int8'/'int4', `shape` not `[out, in]` with both >= 1, a
 * `groupSize` that is not a multiple of 32 dividing `in`, `q` not `out·in` long, `scales` not
 * `out·G` long, a q outside `[-127, 127]` (int8: -128 is not in the format, as in GGML's Q8_0
 * quantizer) or `[-8, 7]` (int4), a scale that is NaN or infinite (RangeError, naming the index).
 * A group whose scale is 0 (or -0) holds q = 0, as a quantized all-zero group does: its values
 * read back as 0 whatever q says.
 */
export interface QuantizedWeight {
  /** `'int8'`: q in [-127, 127]; `'int4'`: q in [-8, 7]. */
  readonly dtype: 'int8' | 'int4';
  /** `[out, in]`, nn.Linear's layout. */
  readonly shape: readonly number[];
  /** Inputs per scale: a multiple of 32 that divides `in`. Default 32. */
  readonly groupSize?: number;
  /** One integer per weight, row-major `[out, in]`. */
  readonly q: Int8Array;
  /** One finite float32 scale per group, row-major `[out, in / groupSize]` (any sign). */
  readonly scales: Float32Array;
}

/** Options of {@link Engine.createLinearBuilder}. */
export interface LinearBuilderOptions {
  /** `'int8'` or `'int4'`: the storage createLinear would quantize the float weight to. */
  dtype: 'int8' | 'int4';
  /** Inputs per scale, a multiple of 32 that divides `in`. Default 32. */
  groupSize?: number;
  /** `[out]`: added to every output row. */
  bias?: Tensor;
}

/**
 * An int8/int4 linear layer made from its float weight given a few rows at a time, in order, as a
 * loader reads a checkpoint: the engine quantizes and stores each piece as it comes, so that neither
 * the whole float weight nor its integers are ever held at once (an LM head of 151,936 rows is 544
 * MB in float32). `finish()` gives the layer `createLinear(weight, { dtype, groupSize, bias })`
 * stores for the whole weight, bit for bit.
 *
 * Refused, changing nothing: rows that are not `[n, in]` or more than the rows still missing, a
 * `finish()` before every row is in (RangeError); use after `finish()` or `dispose()` (Error).
 */
export interface LinearBuilder {
  readonly outFeatures: number;
  readonly inFeatures: number;
  /** Rows given so far. */
  readonly rows: number;
  /** Appends the weight's next rows, `[n, in]` (n may be 0). A NaN or an infinity makes its group's outputs NaN, as in createLinear. */
  append(rows: Tensor): void;
  /** The layer, once all `out` rows are in; the builder is then spent (its memory is the layer's). */
  finish(): LinearLayer;
  /** Frees what an unfinished builder holds. Twice, or after finish(), is harmless. */
  dispose(): void;
  /** dispose(), for `using`. */
  [Symbol.dispose](): void;
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
