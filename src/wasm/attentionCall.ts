// One attention call as a caller describes it (pointers and sizes in wasm memory, the layout as an
// object, valid lengths in JavaScript), and the test probe that can force its kernel: what
// ./attentionRun.ts plans and runs, apart from it so that the callers' types import nothing else.

import type { AttentionLayout } from './attentionLayout.js';

/** The attention kernels: fused (flash_attention_f32), row (attention_f32) and paged (paged_attention_*). */
export type AttentionKernel = 'fused' | 'row' | 'paged';

/**
 * For tests (src/index.ts does not export it): passed in an op's options under ATTENTION_PROBE,
 * `force` runs every attention call of the op on that kernel where the kernel can run it ('paged'
 * throws for a call it cannot run; weights always take the row kernel, narrow KV formats, ALiBi and
 * sinks the fused or paged one), and `ran` receives the kernel of each launch, in order.
 */
export interface AttentionProbe { readonly force?: AttentionKernel; readonly ran: AttentionKernel[] }

/** The options key of an AttentionProbe (scaledDotProductAttention, multiHeadAttention and its layers, batchAttention). */
export const ATTENTION_PROBE: unique symbol = Symbol('qkv: attention probe (tests)');

/** The probe an op's options carry, if any (read once, by the op's wrapper). */
export function probeOf(options: unknown): AttentionProbe | undefined {
  return typeof options === 'object' && options !== null ? (options as { [ATTENTION_PROBE]?: AttentionProbe })[ATTENTION_PROBE] : undefined;
}

/** Pointers and sizes of one attention call in wasm memory (see attention_f32 for each). */
export interface AttentionCall {
  out: number; weights: number; q: number; k: number; v: number; mask: number;
  B: number; Hq: number; Hkv: number; Lq: number; Lk: number; E: number; Ev: number;
  scale: number; softcap: number; maskKind: number; maskStrides: number[];
  /** A CAUSAL_ code (src/core/scaledDotProductAttentionPlan.ts). */
  causalKind: number; Lpast: number; windowLeft: number; windowRight: number;
  /** Each batch row's keys in view (int32 [B]), or null for Lk. */
  validLens: Int32Array | null;
  /** Strides of q, k, v and out, and the KV view (a pool's block table and storage format). */
  layout: AttentionLayout;
  /** f32 [Hq] ALiBi slopes and sink logits (batchAttention's options), or 0 / absent. */
  alibi?: number; sinks?: number;
  probe?: AttentionProbe;
}
