// The pointwise ops of a decoder block, the readable definitions, in float64:
//   add(a, b)            a + b (the residual connections)
//   gatedActivation(x)   act(x[..., :I]) · x[..., I:], the gated MLP's middle (SwiGLU, GeGLU), with
//                        silu(g) = g · sigmoid(g) = g / (1 + e^-g)                         (torch silu)
//                        gelu_tanh(g) = 0.5 · g · (1 + tanh(√(2/π) · (g + 0.044715 · g³)))  (torch gelu, approximate='tanh')
//   softcap(x, cap)      cap · tanh(x / cap) (Gemma 2's final logit softcap)
// Non-finite values follow these formulas as PyTorch evaluates them: silu(-Infinity) and
// gelu_tanh(-Infinity) are NaN (-Infinity · 0), silu(+Infinity) = gelu_tanh(+Infinity) = +Infinity,
// softcap(±Infinity) = ±cap; NaN gives NaN.

import { planAdd, planGatedActivation, planSoftcap } from '../core/elementwisePlan.js';
import type { GatedActivation, GatedActivationOptions } from '../core/modelTypes.js';
import { fromData, type Tensor } from '../core/tensor.js';
import type { OutOptions } from '../core/types.js';
import { deliver } from '../core/validate.js';

export function add(a: Tensor, b: Tensor, options?: OutOptions): Tensor {
  const p = planAdd(a, b, options);
  const x = p.a.data, y = p.b.data;
  const out = new Float32Array(p.n);
  for (let t = 0; t < p.n; t++) out[t] = x[t] + y[t];
  return deliver(fromData(out, p.a.shape), p.out);
}

const silu = (g: number): number => g / (1 + Math.exp(-g));
// 0.5 · g · (1 + tanh(u)) = g / (1 + e^(-2u)), since 1 + tanh(u) = 2 / (1 + e^(-2u)): the same function
// without the cancellation of 1 + tanh(u) for negative g (PyTorch's form loses all digits below g = -7)
const geluTanh = (g: number): number => g / (1 + Math.exp(-2 * Math.sqrt(2 / Math.PI) * (g + 0.044715 * g * g * g)));
const ACTIVATION: Record<GatedActivation, (g: number) => number> = { silu, 'gelu-tanh': geluTanh };

export function gatedActivation(x: Tensor, options?: GatedActivationOptions): Tensor {
  const p = planGatedActivation(x, options);
  const act = ACTIVATION[p.activation], { i } = p, xs = p.x.data;
  const out = new Float32Array(p.rows * i);
  for (let r = 0; r < p.rows; r++) {
    for (let j = 0; j < i; j++) out[r * i + j] = act(xs[2 * r * i + j]) * xs[2 * r * i + i + j];
  }
  return deliver(fromData(out, p.outputShape), p.out);
}

export function softcap(x: Tensor, cap: number, options?: OutOptions): Tensor {
  const p = planSoftcap(x, cap, options);
  const xs = p.x.data;
  const out = new Float32Array(p.n);
  for (let t = 0; t < p.n; t++) out[t] = p.cap * Math.tanh(xs[t] / p.cap);
  return deliver(fromData(out, p.x.shape), p.out);
}
