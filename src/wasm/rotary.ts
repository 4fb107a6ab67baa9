// Thin wrapper over assembly/kernels/rotary.ts: the angles are computed once per distinct position
// in float64 (src/core/rotary.ts), handed to the kernel as float32 tables; threads take shares of rows.
import { planRotaryEmbedding, rotaryAngles, type RotaryPlan } from '../core/rotary.js';
import { formatCall, type Tensor } from '../core/tensor.js';
import type { RotaryEmbeddingOptions } from '../core/servingTypes.js';
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

/** The float32 cos and sin tables [positions, dim / 2] in the arena (byte addresses), for rotaryWithTables. */
export function rotaryTables({ arena }: WasmContext, plan: RotaryPlan, positions: ArrayLike<number>): { pc: number; ps: number } {
  const { cos, sin } = rotaryAngles(plan, positions);
  return { pc: arena.write(Float32Array.from(cos)), ps: arena.write(Float32Array.from(sin)) };
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
