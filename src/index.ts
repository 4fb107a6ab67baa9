/**
 * Attention ops, each on a readable TypeScript reference engine ({@link reference}) and a WebAssembly
 * SIMD engine ({@link createEngine}) tested against it, with the same signatures and results.
 * @module qkv
 */
// The public surface of qkv: an explicit list, nothing from assembly/ or the kernel wrappers.

export type { GatedActivation, GatedActivationOptions, LinearBuilder, LinearBuilderOptions, LinearDtype, LinearLayer, LinearOptions, QuantizedWeight, RmsNormOptions } from './core/modelTypes.js';
export type {BatchAttentionOptions,GroupedQueryAttentionLayer,
  GroupedQueryParams, KVPool, KVPoolOptions, KVSequence, RotaryEmbeddingOptions, 
  RotaryOptions, 
} from './core/servingTypes.js';
export type { Mask, Tensor } from './core/tensor.js';
export { mask, tensor } from './core/tensor.js';
export type {AdditiveOptions,AdditiveParams, 
  AttentionOptions, AttentionResult, CausalMode,
  Engine, EngineInfo, EngineTensor, KernelRegressionLossOptions, KernelRegressionLossResult, KernelRegressionOptions, 
  KVCache, KVCacheOptions, MatmulOptions, MultiHeadAttentionLayer, MultiHeadOptions, MultiHeadParams, OutOptions,OutputWithWeights, WithWeights, 
} from './core/types.js';
export type { Colormap, HeatmapOptions } from './heatmap.js';
export { attentionHeatmap } from './heatmap.js';
export type { CheckpointSource } from './models/checkpoint.js';
export { loadDecoder } from './models/load.js';
export { sample } from './models/sample.js';
export type {
  Decoder, DecoderConfig, DecoderOptions, DecoderSequence, ForwardOptions, GenerateOptions, SamplingOptions,
} from './models/types.js';
export { reference } from './reference/index.js';
export type { Batcher, BatcherOptions, BatcherStats, StepInfo } from './serving/batcher.js';
export { createBatcher } from './serving/batcher.js';
export type { EngineOptions } from './wasm/engine.js';
export { createEngine } from './wasm/engine.js';
