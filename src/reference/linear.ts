// A linear layer y = x Wᵀ + b (nn.Linear's layout, W [out, in]) holding its own copy of the weight
// in its storage format, the readable definition:
//
//   'float32'  W as given
//   'float16'  every weight rounded to IEEE binary16, nearest even (./kvFormats.ts: the same bits as
//              the wasm kernels' conversion), then read back as its exact value
//
//   forward:  y[t, o] = b[o] + Σ_i x[t, i] · W[o, i]        float64 sums of the stored values
//   lookup:   rows ids of the stored W, times scale: out[r, i] = float32(W[ids[r], i] · float32(scale))
//             (the product of two float32 values, rounded once: what float32 arithmetic gives)
//
// The wasm engine (src/wasm/linear.ts) stores the same values and computes in float32.
import { planLinear, planLinearForward, planLinearLookup } from '../core/linearPlan.js';
import { disposeSymbol } from '../core/dispose.js';
import type { LinearLayer, LinearOptions } from '../core/modelTypes.js';
import { fromData, type Tensor } from '../core/tensor.js';
import { deliver } from '../core/validate.js';
import { fromFloat16Bits, toFloat16Bits } from './kvFormats.js';

export function createLinear(weight: Tensor, options?: LinearOptions): LinearLayer {
  const plan = planLinear(weight, options);
  const { inFeatures, outFeatures, dtype } = plan;
  // the stored weight: a copy, rounded to binary16 for 'float16'
  let W: Float32Array | null = Float32Array.from(plan.W.data);
  if (dtype === 'float16') for (let i = 0; i < W.length; i++) W[i] = fromFloat16Bits(toFloat16Bits(W[i]));
  const bias = plan.bias ? Float32Array.from(plan.bias.data) : null;
  const stored = (): Float32Array => {
    if (W === null) throw new Error('qkv: this linear layer has been disposed');
    return W;
  };
  return {
    inFeatures,
    outFeatures,
    dtype,
    bytes: outFeatures * inFeatures * (dtype === 'float16' ? 2 : 4) + (bias ? outFeatures * 4 : 0),
    forward(x, options) {
      const w = stored();
      const { x: X, T, out } = planLinearForward(inFeatures, outFeatures, x, options);
      const y = new Float32Array(T * outFeatures);
      for (let t = 0; t < T; t++) {
        for (let o = 0; o < outFeatures; o++) {
          let sum = bias ? bias[o] : 0;
          for (let i = 0; i < inFeatures; i++) sum += X.data[t * inFeatures + i] * w[o * inFeatures + i];
          y[t * outFeatures + o] = sum;
        }
      }
      return deliver(fromData(y, [T, outFeatures]), out);
    },
    lookup(ids, options) {
      const w = stored();
      const l = planLinearLookup(inFeatures, outFeatures, ids, options);
      const n = l.ids.length;
      const y = new Float32Array(n * inFeatures);
      for (let r = 0; r < n; r++) {
        const row = l.ids[r] * inFeatures;
        for (let i = 0; i < inFeatures; i++) y[r * inFeatures + i] = w[row + i] * l.scale;
      }
      return deliver(fromData(y, [n, inFeatures]), l.out);
    },
    dispose() {
      W = null;
    },
    [disposeSymbol]() {
      W = null;
    },
  };
}
