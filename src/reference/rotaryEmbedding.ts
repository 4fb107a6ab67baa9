// Rotary position embeddings, the readable definition (see src/core/rotaryEmbeddingPlan.ts for the formula):
// each pair (a, b) of a row at position p becomes (a·cos θ − b·sin θ, b·cos θ + a·sin θ).
import { pairOf, planRotaryEmbedding, type RotaryPlan, rotaryAngles } from '../core/rotaryEmbeddingPlan.js';
import type { RotaryEmbeddingOptions } from '../core/servingTypes.js';
import { fromData, type Tensor } from '../core/tensor.js';
import { deliver } from '../core/validate.js';

/**
 * Turns `rows` rows of D features of `x` (row r at element r·D, its angles at row rowPosition[r] of
 * cos/sin) into `out`, in float64; features past plan.dim are copied.
 */
export function rotateRows(plan: RotaryPlan, x: Float32Array, out: Float32Array, rows: number, D: number,
  angles: { cos: Float64Array; sin: Float64Array }, rowPosition: ArrayLike<number>): void {
  const half = plan.dim / 2;
  for (let r = 0; r < rows; r++) {
    const at = r * D, t = rowPosition[r] * half;
    for (let c = plan.dim; c < D; c++) out[at + c] = x[at + c];
    for (let i = 0; i < half; i++) {
      const [ia, ib] = pairOf(plan, i);
      const a = x[at + ia], b = x[at + ib];
      const cos = angles.cos[t + i], sin = angles.sin[t + i];
      out[at + ia] = a * cos - b * sin;
      out[at + ib] = b * cos + a * sin;
    }
  }
}

export function rotaryEmbedding(x: Tensor, options?: RotaryEmbeddingOptions): Tensor {
  const p = planRotaryEmbedding(x, options);
  const out = new Float32Array(p.rows * p.D);
  rotateRows(p.rotary, p.x.data, out, p.rows, p.D, rotaryAngles(p.rotary, p.positions), p.rowPosition);
  return deliver(fromData(out, p.x.shape), p.out);
}
