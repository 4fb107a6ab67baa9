// Multi-head attention inside wasm memory: the steps of src/reference/multiHeadAttention.ts with no
// round trip through JavaScript between them and no head split or merge. The projections land in
// [B, L, E] buffers, which the attention kernels read in place as [B, L, H, D] through their layout
// strides, and they write the heads' outputs straight into the [B, Lq, E] input of the output projection.
import { CAUSAL_NONE, MASK_ADDITIVE, MASK_BOOLEAN, MASK_NONE, parseCausal } from '../core/attentionPlan.js';
import { averageHeads, planMultiHead } from '../core/multiHeadPlan.js';
import { fromData, type Tensor } from '../core/tensor.js';
import type { MultiHeadOptions, MultiHeadParams, OutputWithWeights } from '../core/types.js';
import { layoutArray, runAttention } from './attention.js';
import type { WasmContext } from './context.js';
import { gemm } from './matmul.js';

export function multiHeadAttention(ctx: WasmContext, query: Tensor, key: Tensor, value: Tensor, params: MultiHeadParams, options?: MultiHeadOptions): OutputWithWeights {
  const p = planMultiHead(query, key, value, params, options);
  const { B, Lq, Lk, E, H, kdim, vdim, proj, extraK, extraV } = p;
  const D = E / H, extra = extraK.length, L2 = Lk + extra;
  const { arena } = ctx;
  return arena.scoped(() => {
    const bias = (b: Float32Array | null) => (b ? arena.write(b) : 0);
    // inputs: self-attention passes one tensor three times, copied once
    const pq = arena.write(p.q.data);
    const pk = p.k.data === p.q.data ? pq : arena.write(p.k.data);
    const pv = p.v.data === p.q.data ? pq : p.v.data === p.k.data ? pk : arena.write(p.v.data);
    const qp = arena.allocF32(B * Lq * E), kp = arena.allocF32(B * L2 * E), vp = arena.allocF32(B * L2 * E);
    gemm(ctx, qp, pq, arena.write(proj.Wq.data), B * Lq, E, E, true, bias(proj.bq));
    const wk = arena.write(proj.Wk.data), wv = arena.write(proj.Wv.data), bk = bias(proj.bk), bv = bias(proj.bv);
    if (extra === 0) {
      gemm(ctx, kp, pk, wk, B * Lk, E, kdim, true, bk);
      gemm(ctx, vp, pv, wv, B * Lk, E, vdim, true, bv);
    } else {
      // the appended positions follow each batch's keys
      for (let b = 0; b < B; b++) {
        gemm(ctx, kp + b * L2 * E * 4, pk + b * Lk * kdim * 4, wk, Lk, E, kdim, true, bk);
        gemm(ctx, vp + b * L2 * E * 4, pv + b * Lk * vdim * 4, wv, Lk, E, vdim, true, bv);
        for (let r = 0; r < extra; r++) {
          arena.f32(kp + ((b * L2 + Lk + r) * E) * 4, E).set(extraK[r]);
          arena.f32(vp + ((b * L2 + Lk + r) * E) * 4, E).set(extraV[r]);
        }
      }
    }
    const mask = p.masking.mask;
    const Hm = mask ? mask.shape[1] : 1;
    const heads = arena.allocF32(B * Lq * E);
    const pw = p.needWeights ? arena.allocF32(B * H * Lq * L2) : 0;
    runAttention(ctx, {
      out: heads, weights: pw, q: qp, k: kp, v: vp,
      mask: mask ? arena.write(mask.data) : 0, lens: 0,
      B, Hq: H, Hkv: H, Lq, Lk: L2, E: D, Ev: D, scale: 1 / Math.sqrt(D), softcap: 0,
      maskKind: mask ? (mask.data instanceof Uint8Array ? MASK_BOOLEAN : MASK_ADDITIVE) : MASK_NONE,
      // the combined mask is [B, Hm, Lq, L2], contiguous
      maskStrides: [Hm * Lq * L2, Hm > 1 ? Lq * L2 : 0, L2, 1],
      causal: p.masking.causal === undefined ? CAUSAL_NONE : parseCausal('causal', p.masking.causal),
      Lpast: 0, windowLeft: -1, windowRight: -1,
      // [B, L, H, D] views of the [B, L, E] projections
      layout: arena.write(layoutArray({ q: [Lq * E, D, E], k: [L2 * E, D, E], v: [L2 * E, D, E], out: [Lq * E, D, E] })),
    });
    const out = arena.allocF32(B * Lq * E);
    gemm(ctx, out, heads, arena.write(p.Wo.data), B * Lq, E, E, true, bias(p.bo));
    const result: OutputWithWeights = { output: fromData(arena.read(out, B * Lq * E), [B, Lq, E]) };
    if (pw) {
      const w = arena.read(pw, B * H * Lq * L2);
      result.weights = p.averageWeights ? averageHeads(w, B, H, Lq, L2) : fromData(w, [B, H, Lq, L2]);
    }
    return result;
  });
}
