/**
 * Attention ops, each on a readable TypeScript reference engine ({@link reference}) and a WebAssembly
 * SIMD engine ({@link createEngine}) tested against it, with the same signatures and results.
 * @module qkv
 */
// The public surface of qkv: an explicit list, nothing from assembly/ or the kernel wrappers.
export { tensor, mask } from './core/tensor.js';
export { reference } from './reference/index.js';
export { createEngine } from './wasm/engine.js';
export { attentionHeatmap } from './heatmap.js';
export { loadDecoder } from './models/load.js';
export { sample } from './models/sample.js';
export { createBatcher } from './serving/batcher.js';
export type { Tensor, Mask } from './core/tensor.js';
export type {
  Engine, EngineInfo, MatmulOptions, KernelRegressionOptions, KernelRegressionLossOptions, KernelRegressionLossResult, AdditiveParams, AdditiveOptions,
  AttentionOptions, AttentionResult, MultiHeadParams, MultiHeadOptions, OutputWithWeights, WithWeights, CausalMode,
  KVCache, KVCacheOptions, MultiHeadAttentionLayer, EngineTensor, OutOptions,
} from './core/types.js';
export type {
  RotaryOptions, RotaryEmbeddingOptions, KVPool, KVPoolOptions, KVSequence, BatchAttentionOptions,
  GroupedQueryParams, GroupedQueryAttentionLayer,
} from './core/servingTypes.js';
export type { RmsNormOptions, LinearDtype, LinearOptions, LinearLayer, GatedActivation, GatedActivationOptions } from './core/modelTypes.js';
export type {
  Decoder, DecoderConfig, DecoderOptions, DecoderSequence, ForwardOptions, GenerateOptions, SamplingOptions,
} from './models/types.js';
export type { CheckpointSource } from './models/checkpoint.js';
export type { Batcher, BatcherOptions, BatcherStats, StepInfo } from './serving/batcher.js';
export type { EngineOptions } from './wasm/engine.js';
export type { HeatmapOptions, Colormap } from './heatmap.js';
