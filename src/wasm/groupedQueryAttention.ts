// The grouped-query attention block inside wasm memory: the steps of
// src/reference/groupedQueryAttention.ts with no round trip through JavaScript. The layer holds its
// weights in engine memory, packed into the GEMM's panels (./packed.ts: a decode step reads each
// weight once, front to back); a forward of T tokens (many sequences' new tokens) runs each projection
// as one GEMM over all T rows, the per-head RMSNorm, rotary and the paged attention on the arena, and
// the output projection.

import { disposeSymbol } from '../core/dispose.js';
import { copyGroupedQuery, GQA_FORWARD, type GroupedQueryPlan, planGroupedQuery, planGroupedQueryForward } from '../core/groupedQueryAttentionPlan.js';
import type { GroupedQueryAttentionLayer, GroupedQueryParams } from '../core/servingTypes.js';
import { formatCall } from '../core/tensor.js';
import type { Checked } from '../core/validate.js';
import { batchAttentionAt } from './batchAttention.js';
import type { WasmContext } from './context.js';
import { poolStorage } from './kvPool.js';
import { gemmPacked, gemmPackedBytes, holdPacked } from './packed.js';

export function createWasmGroupedQuery(context: () => WasmContext, params: GroupedQueryParams): GroupedQueryAttentionLayer {
  // the weights go from the read snapshot straight into engine memory; the layer keeps their shapes
  // only (and its own copies of the attention options' tensors)
  const planned = planGroupedQuery(params);
  const layer: GroupedQueryPlan = copyGroupedQuery(planned, false);
  const ctx = context();
  const { arena } = ctx;
  const held: number[] = [];
  const hold = (c: Checked | null, name: string, packed = false) => {
    if (c === null) return 0;
    const describe = () => formatCall('createGroupedQueryAttention', { [name]: c.shape });
    const ptr = packed ? holdPacked(ctx, c, name, describe) : arena.holdCopy(c, 'weights', describe);
    held.push(ptr);
    return ptr;
  };
  let w: Record<'wq' | 'wk' | 'wv' | 'wo' | 'bq' | 'bk' | 'bv' | 'bo' | 'qn' | 'kn', number> | null;
  try {
    w = {
      wq: hold(planned.Wq, 'qProjWeight', true), wk: hold(planned.Wk, 'kProjWeight', true),
      wv: hold(planned.Wv, 'vProjWeight', true), wo: hold(planned.Wo, 'oProjWeight', true),
      bq: hold(planned.bq, 'qProjBias'), bk: hold(planned.bk, 'kProjBias'), bv: hold(planned.bv, 'vProjBias'), bo: hold(planned.bo, 'oProjBias'),
      qn: hold(planned.qNorm, 'qNormWeight'), kn: hold(planned.kNorm, 'kNormWeight'),
    };
  } catch (error) {
    held.forEach((b) => arena.free(b));
    throw error;
  }
  const { Hq, Hkv, D, E } = layer;
  const dispose = (): void => {
    if (w === null) return;
    held.forEach((b) => arena.free(b));
    w = null;
  };
  return {
    forward(x, options) {
      if (w === null) throw new Error('qkv: this grouped-query attention layer has been disposed');
      const c = context(), weights = w;
      const f = planGroupedQueryForward(layer, x, options, (pool) => poolStorage(c.arena, pool) !== null);
      c.arena.checkOut(f.out);
      const { T } = f;
      return c.arena.call(() => formatCall(GQA_FORWARD, { x: f.x.shape }), () => {
        const px = c.arena.input(f.x, 'x');
        const qp = c.arena.allocF32(T * Hq * D), kp = c.arena.allocF32(T * Hkv * D), vp = c.arena.allocF32(T * Hkv * D);
        gemmPacked(c, qp, px, weights.wq, T, Hq * D, E, weights.bq);
        gemmPacked(c, kp, px, weights.wk, T, Hkv * D, E, weights.bk);
        gemmPacked(c, vp, px, weights.wv, T, Hkv * D, E, weights.bv);
        const norm = (p: number, rows: number, wn: number) => {
          if (wn) c.parallel.run('rms_norm_rows_f32', rows, 2 * D, (_, r0, r1) => [p + r0 * D * 4, r1 - r0, D, wn, layer.normEps]);
        };
        norm(qp, T * Hq, weights.qn);
        norm(kp, T * Hkv, weights.kn);
        // the output projection writes straight into an engine-tensor out apart from x: it is the last step
        const heads = c.arena.allocF32(T * Hq * D), out = c.arena.outputApart(f.out, f.x) || c.arena.allocF32(T * E);
        // room for the output projection's scratch is made before the pool changes: nothing fails after the appends
        batchAttentionAt(c, f.batch, qp, kp, vp, heads, gemmPackedBytes(c));
        gemmPacked(c, out, heads, weights.wo, T, E, Hq * D, weights.bo);
        return { output: c.arena.result(out, T * E, [T, E], f.out) };
      });
    },
    dispose,
    [disposeSymbol]: dispose,
  };
}
