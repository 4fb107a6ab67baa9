// Decode rows of grouped-query attention over tensors or a KVCache, on the paged kernel
// (assembly/kernels/pagedAttention.ts). With one query row per head, the row kernel reads a kv
// head's keys and values once for every query head that shares it, and the fused kernel pairs rows
// along the query axis (a single row is computed twice); the paged kernel scores every head of a
// group against each run of keys while it is in cache, so K and V are read once per kv head.
//
// Head-major keys [B, Hkv, rows, E] (a tensor, past ++ new, or a KVCache's [B, Hkv, capacity, E])
// are a pool whose blocks are whole kv heads: blockSize = headRows = rows, and batch row b's one
// table entry is block b · Hkv, so that key j of kv head g lies at (g + b · Hkv) · rows + j, where
// the layout puts it. Each batch row is one paged row: its query at token b (query and out
// [B, Hq, 1, D] are token-major [B, Hq, D]), its keys up to validLens[b] (or Lk), at the position
// the query has on the key axis; causal and window then give the same range as keyRange.ts.
import { CAUSAL_BOTTOM_RIGHT, CAUSAL_NONE, MASK_NONE } from '../core/attentionPlan.js';
import { KV_FORMATS, LAYOUT_OFFSETS } from './abi.js';
import type { AttentionCall } from './attentionCall.js';
import type { WasmContext } from './context.js';

/** Where a decode call's keys and values lie, as the paged kernel reads them. */
export interface DecodeView {
  /** Rows of one kv head (the blocks' size and the pool's rows per head). */
  headRows: number;
}

/**
 * The paged view of call `c`, or null when the paged kernel cannot run it: weights wanted, a mask,
 * more than one query row, one query head per kv head (the row kernel is as fast there), a KV view
 * that is a pool's block table or narrower than float32, or strides the paged kernel does not take.
 */
export function decodeView({ arena }: WasmContext, c: AttentionCall): DecodeView | null {
  const { B, Hq, Hkv, Lq, Lk, E, Ev } = c;
  if (c.weights !== 0 || c.maskKind !== MASK_NONE || Lq !== 1 || Hkv === 0 || Hq / Hkv < 2 || Lk === 0 || E === 0 || Ev === 0) return null;
  if ((c.kvFormat ?? KV_FORMATS.KV_F32) !== KV_FORMATS.KV_F32) return null;
  const { LAYOUT_Q, LAYOUT_K, LAYOUT_V, LAYOUT_OUT, STRIDE_BATCH, STRIDE_HEAD, STRIDE_ROW, LAYOUT_KV_TABLE } = LAYOUT_OFFSETS;
  const layout = new Int32Array(arena.memory.buffer, c.layout, LAYOUT_OFFSETS.LAYOUT_BYTES / 4);
  const stride = (tensor: number, axis: number) => layout[(tensor + axis) / 4];
  if (layout[LAYOUT_KV_TABLE / 4] !== 0) return null;
  // query and out: [B, Hq, D] rows one after another
  const tokenMajor = (tensor: number, D: number) => stride(tensor, STRIDE_HEAD) === D && (B === 1 || stride(tensor, STRIDE_BATCH) === Hq * D);
  if (!tokenMajor(LAYOUT_Q, E) || !tokenMajor(LAYOUT_OUT, Ev)) return null;
  // keys and values: contiguous rows, every kv head the same number of rows apart, batch rows Hkv heads apart
  const headRows = stride(LAYOUT_K, STRIDE_HEAD) / E;
  const headMajor = (tensor: number, D: number) => stride(tensor, STRIDE_ROW) === D && stride(tensor, STRIDE_HEAD) === headRows * D &&
    (B === 1 || stride(tensor, STRIDE_BATCH) === Hkv * headRows * D);
  if (!Number.isInteger(headRows) || headRows < Lk || !headMajor(LAYOUT_K, E) || !headMajor(LAYOUT_V, Ev)) return null;
  return { headRows };
}

/** Floats of scratch per thread the paged kernel takes for call `c`. */
function decodeScratchFloats({ kernels }: WasmContext, c: AttentionCall): number {
  return kernels.paged_scratch_f32(c.Lk, c.E, c.Ev, c.Hq / c.Hkv);
}

/** Bytes runDecode(c) allocates in the arena: the table, the rows' info and every thread's scratch (16-byte aligned each). */
export function decodeBytes(ctx: WasmContext, c: AttentionCall): number {
  const { PAGED_ROW_BYTES } = LAYOUT_OFFSETS, aligned = (bytes: number) => Math.ceil(bytes / 16) * 16;
  return aligned(4 * c.B) + aligned(PAGED_ROW_BYTES * c.B) + ctx.arena.perThreadBytes(decodeScratchFloats(ctx, c), ctx.parallel.threads);
}

/** Runs call `c` (one decodeView accepts) on the paged kernel, inside the caller's arena scope. */
export function runDecode(ctx: WasmContext, c: AttentionCall): void {
  const view = decodeView(ctx, c);
  if (!view) throw new Error('qkv: runDecode on a call the paged kernel cannot run');
  const { arena, parallel } = ctx;
  const { B, Hq, Hkv, Lk, E, Ev } = c;
  const { PAGED_ROW_TOKEN, PAGED_ROW_TABLE_AT, PAGED_ROW_KV_LENGTH, PAGED_ROW_POSITION, PAGED_ROW_BYTES } = LAYOUT_OFFSETS;
  const lens = c.lens ? new Int32Array(arena.memory.buffer, c.lens, B).slice() : null;
  const tables = new Int32Array(B), info = new Int32Array(B * (PAGED_ROW_BYTES / 4));
  for (let b = 0; b < B; b++) {
    const validLen = lens ? lens[b] : Lk, at = b * (PAGED_ROW_BYTES / 4);
    tables[b] = b * Hkv;
    info[at + PAGED_ROW_TOKEN / 4] = b;
    info[at + PAGED_ROW_TABLE_AT / 4] = b;
    info[at + PAGED_ROW_KV_LENGTH / 4] = validLen;
    // the query's position on the key axis (keyRange.ts's queryPosition for row 0 of 1)
    info[at + PAGED_ROW_POSITION / 4] = c.causal === CAUSAL_BOTTOM_RIGHT ? validLen - 1 : c.Lpast;
  }
  const ptables = arena.write(tables), pinfo = arena.write(info);
  const scratch = arena.perThread(decodeScratchFloats(ctx, c), parallel.threads);
  const { headRows } = view;
  parallel.run('paged_attention_f32', B * Hkv, Lk * (E + Ev) * (Hq / Hkv), (t, u0, u1) => [
    c.out, scratch(t), c.q, c.k, c.v, 0, 0, ptables, pinfo, Hq, Hkv, E, Ev, headRows, headRows, c.scale, c.softcap,
    c.causal === CAUSAL_NONE ? 0 : 1, c.windowLeft, c.windowRight, c.alibi ?? 0, c.sinks ?? 0, Lk, u0, u1,
  ]);
}
