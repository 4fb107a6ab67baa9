// The reference engine: every op in plain TypeScript with float64 accumulation. It is the
// definition the WebAssembly engine is tested against.

import { disposeSymbol } from '../core/dispose.js';
import { positionalEncoding } from '../core/positionalEncoding.js';
import { checkShape, sizeOf } from '../core/tensor.js';
import type { Engine, EngineTensor, Implementation } from '../core/types.js';
import { additiveAttention } from './additiveAttention.js';
import { batchAttention } from './batchAttention.js';
import { add, gatedActivation, softcap } from './elementwise.js';
import { groupedQueryLayer } from './groupedQueryAttention.js';
import { kernelRegression } from './kernelRegression.js';
import { kernelRegressionLoss } from './kernelRegressionLoss.js';
import { ReferenceKVCache } from './kvCache.js';
import { createKVPool } from './kvPool.js';
import { createLinear, createLinearBuilder } from './linear.js';
import { matmul } from './matmul.js';
import { layerWith, multiHeadAttentionWith } from './multiHeadAttention.js';
import { rmsNorm } from './rmsNorm.js';
import { rotaryEmbedding } from './rotaryEmbedding.js';
import { scaledDotProductAttention } from './scaledDotProductAttention.js';
import { maskedSoftmax, softmax } from './softmax.js';

const ops = { matmul, scaledDotProductAttention };

const engine: Implementation<Engine> = {
  name: 'reference' as const,
  info: Object.freeze({ simd: 'none' as const, threads: 1, memoryBytes: 0 }),
  dispose() {},
  [disposeSymbol]() {},
  matmul,
  softmax,
  maskedSoftmax,
  kernelRegression,
  kernelRegressionLoss,
  additiveAttention,
  scaledDotProductAttention,
  multiHeadAttention: (query, key, value, params, options) => multiHeadAttentionWith(ops, query, key, value, params, options),
  selfAttention: (x, params, options) => multiHeadAttentionWith(ops, x, x, x, params, options, 'selfAttention'),
  positionalEncoding,
  createMultiHeadAttention: (params) => layerWith(ops, params),
  createKVCache: (options) => new ReferenceKVCache(options),
  tensor: (shape) => plainEngineTensor(shape),
  rotaryEmbedding,
  createKVPool,
  batchAttention,
  createGroupedQueryAttention: (params) => groupedQueryLayer({ matmul, batchAttention, rmsNorm }, params),
  rmsNorm,
  createLinear,
  createLinearBuilder,
  add,
  gatedActivation,
  softcap,
};

/** The reference engine's engine tensor: a plain zero-filled tensor, whose data dispose() takes away. */
function plainEngineTensor(shape: readonly number[]): EngineTensor {
  const frozen = checkShape('engine.tensor', shape);
  let data: Float32Array | null = new Float32Array(sizeOf(frozen));
  return {
    shape: frozen,
    get data(): Float32Array {
      if (data === null) throw new Error('qkv: this engine tensor has been disposed');
      return data;
    },
    dispose() { data = null; },
    [disposeSymbol]() { data = null; },
  };
}

/** The pure TypeScript engine: synchronous, no wasm, float64 accumulation; the readable definition of every op. */
export const reference = Object.freeze(engine) as Engine;
