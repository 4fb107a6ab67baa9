// Thin wrapper over assembly/kernels/rotary.ts: the angles are computed once per distinct position
// in float64 (src/core/rotaryEmbeddingPlan.ts), handed to the kernel as float32 tables; threads take shares of rows.
import { planRotaryEmbedding, type RotaryPlan, rotaryAngles } from '../core/rotaryEmbeddingPlan.js';
import type { RotaryEmbeddingOptions } from '../core/servingTypes.js';
import { formatCall, type Tensor } from '../core/tensor.js';
import type { WasmContext } from './context.js';

/**
 * Turns `rows` rows of D floats at `x` (row r at x + r·xStride floats) into `out` (outStride), row r at
 * the position `positions[rowPosition[r]]`. Pointers are byte addresses in the arena.
 */
export function rotaryAt(ctx: WasmContext, plan: RotaryPlan, out: number, x: number, rows: number, D: number,
  positions: ArrayLike<number>, rowPosition: Int32Array, xStride = D, outStride = D): void {
  if (rows === 0) return;
  rotaryWithTables(ctx, plan, rotaryTables(ctx, plan, positions), out, x, rows, D, rowPosition, xStride, outStride);
}

/**
 * The last angles computed without given tables: a model's layers turn the same positions one after
 * another in a step (each layer's batchAttention), so the next call with the same base, dim and
 * positions takes them from here instead of 2 · positions · dim / 2 cosines and sines again.
 */
let lastAngles: { base: number; dim: number; positions: Int32Array; cos: Float32Array; sin: Float32Array } | null = null;

function sameValues(a: Int32Array, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** cos θ and sin θ (rotaryAngles, src/core/rotaryEmbeddingPlan.ts) rounded to float32. */
function anglesF32(plan: RotaryPlan, positions: ArrayLike<number>): { cos: Float32Array; sin: Float32Array } {
  if (plan.cos) {
    const { cos, sin } = rotaryAngles(plan, positions);
    return { cos: new Float32Array(cos), sin: new Float32Array(sin) };
  }
  const last = lastAngles;
  if (last && last.base === plan.base && last.dim === plan.dim && sameValues(last.positions, positions)) return last;
  const { cos, sin } = rotaryAngles(plan, positions);
  lastAngles = { base: plan.base, dim: plan.dim, positions: Int32Array.from(positions), cos: new Float32Array(cos), sin: new Float32Array(sin) };
  return lastAngles;
}

/** The float32 cos and sin tables [positions, dim / 2] in the arena (byte addresses), for rotaryWithTables. */
export function rotaryTables({ arena }: WasmContext, plan: RotaryPlan, positions: ArrayLike<number>): { pc: number; ps: number } {
  const { cos, sin } = anglesF32(plan, positions);
  return { pc: arena.write(cos), ps: arena.write(sin) };
}

/** rotaryAt with tables already in the arena (rows that share positions, as a call's queries and keys do, share them). */
export function rotaryWithTables({ arena, parallel }: WasmContext, plan: RotaryPlan, { pc, ps }: { pc: number; ps: number }, out: number, x: number,
  rows: number, D: number, rowPosition: Int32Array, xStride = D, outStride = D): void {
  if (rows === 0) return;
  const pr = arena.write(rowPosition);
  parallel.run('rotary_f32', rows, 2 * plan.dim, (_, r0, r1) => [
    out + r0 * outStride * 4, x + r0 * xStride * 4, r1 - r0, D, plan.dim, plan.interleaved ? 1 : 0, pc, ps, pr + r0 * 4, xStride, outStride,
  ]);
}

export function rotaryEmbedding(ctx: WasmContext, x: Tensor, options?: RotaryEmbeddingOptions): Tensor {
  const p = planRotaryEmbedding(x, options);
  const { arena } = ctx;
  arena.checkOut(p.out);
  return arena.call(() => formatCall('rotaryEmbedding', { x: p.x.shape }), () => {
    const px = arena.input(p.x, 'x');
    // straight into an engine-tensor out, x itself included: the kernel reads each pair before it writes it
    const pout = arena.outputAt(p.out, p.x) || arena.allocF32(p.rows * p.D);
    rotaryAt(ctx, p.rotary, pout, px, p.rows, p.D, p.positions, p.rowPosition);
    return arena.result(pout, p.rows * p.D, p.x.shape, p.out);
  });
}
