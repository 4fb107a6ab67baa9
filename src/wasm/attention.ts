// Thin wrapper over assembly/kernels/attention.ts: same signature as the reference scaledDotProductAttention.
import { planAttention } from '../core/attentionPlan.js';
import { fromData, type Tensor } from '../core/tensor.js';
import type { AttentionOptions, AttentionResult } from '../core/types.js';
import type { WasmContext } from './context.js';
import type { Arena } from './memory.js';

/** Writes past ++ new along the length axis ([BH, Lpast, D] and [BH, Lnew, D]) into wasm memory. */
function writeConcat(arena: Arena, past: Float32Array | null, next: Float32Array, BH: number, Lpast: number, Lnew: number, D: number): number {
  if (past === null) return arena.write(next);
  const L = Lpast + Lnew;
  const ptr = arena.allocF32(BH * L * D);
  const view = arena.f32(ptr, BH * L * D);
  for (let bh = 0; bh < BH; bh++) {
    view.set(past.subarray(bh * Lpast * D, (bh + 1) * Lpast * D), bh * L * D);
    view.set(next.subarray(bh * Lnew * D, (bh + 1) * Lnew * D), (bh * L + Lpast) * D);
  }
  return ptr;
}

/** Below this many query rows per kv head, the row kernel beats the packed flash kernel (measured: bench). */
const FLASH_MIN_ROWS_PER_KV_HEAD = 8;

export function scaledDotProductAttention({ kernels, arena, parallel }: WasmContext, query: Tensor, key: Tensor, value: Tensor, options?: AttentionOptions): AttentionResult {
  const p = planAttention(query, key, value, options);
  const { B, Hq, Hkv, Lq, Lk, E, Ev } = p;
  return arena.scoped(() => {
    const pq = arena.write(query.data);
    const pk = writeConcat(arena, p.pastKey?.data ?? null, key.data, B * Hkv, p.Lpast, p.Lnew, E);
    const pv = writeConcat(arena, p.pastValue?.data ?? null, value.data, B * Hkv, p.Lpast, p.Lnew, Ev);
    const pmask = p.mask ? arena.write(p.mask.data) : 0;
    const plens = p.validLens ? arena.write(p.validLens) : 0;
    const pout = arena.allocF32(B * Hq * Lq * Ev);
    const [msb, msh, msq, msk] = p.mask?.strides ?? [0, 0, 0, 0];
    const shapeAndOptions = [
      B, Hq, Math.max(Hkv, 1), Lq, Lk, E, Ev,
      p.scale, p.softcap, p.mask?.kind ?? 0, msb, msh, msq, msk,
      p.causal, p.Lpast, p.windowLeft, p.windowRight,
    ] as const;
    // threads take shares of the query rows (pairs of rows for the fused kernel)
    const rowWork = Lk * (E + Ev);
    let pw = 0;
    if (p.returnWeights || Lq / Math.max(Hkv, 1) * Hq < FLASH_MIN_ROWS_PER_KV_HEAD) {
      // with weights, one query row at a time writes each row of weights; decode-like calls have too
      // few query rows per kv head to repay packing K, so they stream K and V once
      if (p.returnWeights) pw = arena.allocF32(B * Hq * Lq * Lk);
      const scratch = pw ? () => 0 : arena.perThread(Lk, parallel.threads);
      parallel.run('attention_f32', B * Hq * Lq, rowWork, (t, r0, r1) => [pout, pw, scratch(t), pq, pk, pv, pmask, plens, ...shapeAndOptions, r0, r1]);
    } else {
      const scratch = arena.perThread(kernels.flash_scratch_f32(Lk, E, Ev), parallel.threads);
      const pairs = B * Hq * Math.ceil(Lq / 2);
      parallel.run('flash_attention_f32', pairs, 2 * rowWork, (t, u0, u1) => [pout, scratch(t), pq, pk, pv, pmask, plens, ...shapeAndOptions, u0, u1]);
    }
    const result: AttentionResult = { output: fromData(arena.read(pout, B * Hq * Lq * Ev), p.outputShape) };
    if (pw) result.weights = fromData(arena.read(pw, B * Hq * Lq * Lk), p.weightsShape);
    if (p.pastKey) {
      result.presentKey = fromData(arena.read(pk, B * Hkv * Lk * E), p.presentKeyShape);
      result.presentValue = fromData(arena.read(pv, B * Hkv * Lk * Ev), p.presentValueShape);
    }
    return result;
  });
}
