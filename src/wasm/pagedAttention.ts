// The paged attention kernel's wrapper (assembly/kernels/pagedAttention.ts): its bytes, its rows'
// info and its one launch, for both of its callers. batchAttention (./batchAttention.ts) sends it a
// pool's decode rows; ./attentionRun.ts sends it decode rows of grouped-query attention over
// tensors or a KVCache.
//
// Over tensors: with one query row per head, the row kernel reads a kv head's keys and values once
// for every query head that shares it, and the fused kernel pairs rows along the query axis (a
// single row is computed twice); the paged kernel scores every head of a group against each run of
// keys while it is in cache, so K and V are read once per kv head. Head-major keys [B, Hkv, rows, E]
// (a tensor, past ++ new, or a KVCache's [B, Hkv, capacity, E]) are a pool whose blocks are whole kv
// heads: blockSize = headRows = rows, and batch row b's one table entry is block b · Hkv, so that key
// j of kv head g lies at (g + b · Hkv) · rows + j, where the layout puts it. Each batch row is one
// paged row: its query at token b (query and out [B, Hq, 1, D] are token-major [B, Hq, D]), its keys
// up to validLens[b] (or Lk), at the position the query has on the key axis; causal and window then
// give the same range as keyRange.ts.

import { CAUSAL_BOTTOM_RIGHT, CAUSAL_NONE, MASK_NONE } from '../core/scaledDotProductAttentionPlan.js';
import { KV_FORMATS, LAYOUT_OFFSETS } from './abi.js';
import type { AttentionCall } from './attentionCall.js';
import type { WasmContext } from './context.js';
import { aligned } from './memory.js';

const { PAGED_ROW_TOKEN, PAGED_ROW_TABLE_AT, PAGED_ROW_KV_LENGTH, PAGED_ROW_POSITION, PAGED_ROW_BYTES } = LAYOUT_OFFSETS;
/** Int32 words of one paged row's info. */
export const PAGED_ROW_WORDS = PAGED_ROW_BYTES / 4;

/** What a launch of the paged kernel reads: pointers (bytes) into wasm memory and the call's sizes and options. */
export interface PagedLaunch {
  out: number; q: number; k: number; v: number;
  /** int8's float32 row scales, binary16's per-row finite flags, or 0 for float32 blocks. */
  kRowExtra: number; vRowExtra: number;
  /** int32 block indices, and `rows` rows' info (writePagedRow). */
  tables: number; rowInfo: number; rows: number;
  Hq: number; Hkv: number; E: number; Ev: number;
  /** Positions per block, and rows of one kv head in the blocks (the pool's blocks · blockSize). */
  blockSize: number; headRows: number;
  scale: number; softcap: number; causal: boolean; windowLeft: number; windowRight: number;
  alibi: number; sinks: number;
  /** The longest sequence a row reads (sizes the scratch), and the average keys a unit reads (shares the work). */
  maxLength: number; averageLength: number;
  format: 'f32' | 'f16' | 'i8';
}

/** Bytes every thread's scratch takes for rows reading up to `maxLength` keys, groups of Hq / Hkv heads. */
export function pagedScratchBytes({ kernels, arena, parallel }: WasmContext, maxLength: number, E: number, Ev: number, group: number): number {
  return arena.perThreadBytes(kernels.paged_scratch_f32(maxLength, E, Ev, group), parallel.threads);
}

/** Bytes a paged call allocates: its table entries, its rows' info and every thread's scratch. */
export function pagedBytes(ctx: WasmContext, tableEntries: number, rows: number, maxLength: number, E: number, Ev: number, group: number): number {
  return aligned(4 * tableEntries) + aligned(PAGED_ROW_BYTES * rows) + pagedScratchBytes(ctx, maxLength, E, Ev, group);
}

/** Writes paged row r's info: its token (query and out row), where its table starts, its keys in view and its query's position. */
export function writePagedRow(info: Int32Array, r: number, token: number, tableAt: number, kvLength: number, position: number): void {
  const at = r * PAGED_ROW_WORDS;
  info[at + PAGED_ROW_TOKEN / 4] = token;
  info[at + PAGED_ROW_TABLE_AT / 4] = tableAt;
  info[at + PAGED_ROW_KV_LENGTH / 4] = kvLength;
  info[at + PAGED_ROW_POSITION / 4] = position;
}

/** A view of `rows` rows' info at `rowInfo` (valid until the memory grows). */
export function pagedRowInfo({ arena }: WasmContext, rowInfo: number, rows: number): Int32Array {
  return new Int32Array(arena.memory.buffer, rowInfo, rows * PAGED_ROW_WORDS);
}

/** Launches the paged kernel (its scratch the last term of pagedBytes): threads take shares of (row, kv head) units. */
export function launchPaged(ctx: WasmContext, l: PagedLaunch): void {
  const { arena, kernels, parallel } = ctx, group = l.Hq / l.Hkv;
  const scratch = arena.perThread(kernels.paged_scratch_f32(l.maxLength, l.E, l.Ev, group), parallel.threads);
  parallel.run(`paged_attention_${l.format}`, l.rows * l.Hkv, Math.max(1, l.averageLength) * (l.E + l.Ev) * group, (t, u0, u1) => [
    l.out, scratch(t), l.q, l.k, l.v, l.kRowExtra, l.vRowExtra, l.tables, l.rowInfo, l.Hq, l.Hkv, l.E, l.Ev, l.blockSize, l.headRows,
    l.scale, l.softcap, l.causal ? 1 : 0, l.windowLeft, l.windowRight, l.alibi, l.sinks, l.maxLength, u0, u1,
  ]);
}

/**
 * The rows of one kv head when the paged kernel can run call `c` over tensors (head-major keys and
 * values, token-major query and out), else null: weights wanted, a mask, more than one query row,
 * one query head per kv head (the row kernel is as fast there), a pool's block table or a format
 * narrower than float32 (batchAttention's own route), or strides the paged kernel does not take.
 */
export function headMajorRows(c: AttentionCall): number | null {
  const { B, Hq, Hkv, Lq, Lk, E, Ev, layout } = c;
  if (c.weights !== 0 || c.maskKind !== MASK_NONE || Lq !== 1 || Hkv === 0 || Hq / Hkv < 2 || Lk === 0 || E === 0 || Ev === 0) return null;
  if (layout.kvTable || (layout.kvFormat?.code ?? KV_FORMATS.KV_F32) !== KV_FORMATS.KV_F32) return null;
  // query and out: [B, Hq, D] rows one after another
  const tokenMajor = ([batch, head]: number[], D: number) => head === D && (B === 1 || batch === Hq * D);
  if (!tokenMajor(layout.q, E) || !tokenMajor(layout.out, Ev)) return null;
  // keys and values: contiguous rows, every kv head the same number of rows apart, batch rows Hkv heads apart
  const headRows = layout.k[1] / E;
  const headMajor = ([batch, head, row]: number[], D: number) => row === D && head === headRows * D && (B === 1 || batch === Hkv * headRows * D);
  if (!Number.isInteger(headRows) || headRows < Lk || !headMajor(layout.k, E) || !headMajor(layout.v, Ev)) return null;
  return headRows;
}

/** Bytes runHeadMajor(c) allocates. */
export function headMajorBytes(ctx: WasmContext, c: AttentionCall): number {
  return pagedBytes(ctx, c.B, c.B, c.Lk, c.E, c.Ev, c.Hq / c.Hkv);
}

/** Runs call `c` (headMajorRows(c) = headRows) on the paged kernel, inside the caller's arena scope. */
export function runHeadMajor(ctx: WasmContext, c: AttentionCall, headRows: number): void {
  const { B, Hkv, Lk } = c;
  const tables = ctx.arena.allocWords(B), rowInfo = ctx.arena.allocWords(B * PAGED_ROW_WORDS);
  const table = new Int32Array(ctx.arena.memory.buffer, tables, B), info = pagedRowInfo(ctx, rowInfo, B);
  for (let b = 0; b < B; b++) {
    const validLen = c.validLens ? c.validLens[b] : Lk;
    table[b] = b * Hkv;
    // the query's position on the key axis (keyRange.ts's queryPosition for row 0 of 1)
    writePagedRow(info, b, b, b, validLen, c.causalKind === CAUSAL_BOTTOM_RIGHT ? validLen - 1 : c.Lpast);
  }
  launchPaged(ctx, {
    out: c.out, q: c.q, k: c.k, v: c.v, kRowExtra: 0, vRowExtra: 0, tables, rowInfo, rows: B,
    Hq: c.Hq, Hkv, E: c.E, Ev: c.Ev, blockSize: headRows, headRows, scale: c.scale, softcap: c.softcap,
    causal: c.causalKind !== CAUSAL_NONE, windowLeft: c.windowLeft, windowRight: c.windowRight, alibi: c.alibi ?? 0, sinks: c.sinks ?? 0,
    maxLength: Lk, averageLength: Lk, format: 'f32',
  });
}
