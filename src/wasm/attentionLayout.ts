// The attention kernels' layout block (assembly/layout.ts): how the kernels find q, k, v and out
// (element strides per batch, head and row) and, for a KV pool, its block table and storage format.
// Written into wasm memory by runAttention (./attentionRun.ts) from the object a caller builds here.

import { LAYOUT_OFFSETS } from './abi.js';

/**
 * Element strides (batch, head, row) of q, k, v and out for the attention kernels' layout argument.
 * Contiguous [B, H, L, D] tensors by default; a [B, L, H·D] projection is read in place with
 * `{ q: [L·H·D, D, H·D] }` and the like. With `kvTable`, k and v are a KV pool's blocks: key row j
 * of batch row b is row table[b·entries + j / blockRows]·blockRows + j % blockRows of its kv head
 * (assembly/inline/kvView.ts).
 */
export interface AttentionLayout { q: number[]; k: number[]; v: number[]; out: number[]; kvTable?: KVTable; kvFormat?: KVFormat }

/** A block table in wasm memory: i32 block indices at `at`, `entries` per batch row, `blockRows` positions per block. */
export interface KVTable { at: number; entries: number; blockRows: number }

/**
 * Keys and values stored narrower than float32 (a pool's binary16 or int8 blocks): `code` from
 * KV_FORMATS, and int8's float32 row scales (indexed as the rows are; 0 for binary16).
 */
export interface KVFormat { code: number; kScales: number; vScales: number }

/** The strides of contiguous q [B, Hq, Lq, E], k [B, Hkv, Lk, E], v [B, Hkv, Lk, Ev] and out [B, Hq, Lq, Ev]. */
export function contiguousLayout(Hq: number, Hkv: number, Lq: number, Lk: number, E: number, Ev: number): AttentionLayout {
  return {
    q: [Hq * Lq * E, Lq * E, E], k: [Hkv * Lk * E, Lk * E, E],
    v: [Hkv * Lk * Ev, Lk * Ev, Ev], out: [Hq * Lq * Ev, Lq * Ev, Ev],
  };
}

/** The layout block (assembly/layout.ts): each tensor's (batch, head, row) strides at its offset. */
export function layoutArray(l: AttentionLayout): Int32Array {
  const { LAYOUT_Q, LAYOUT_K, LAYOUT_V, LAYOUT_OUT, STRIDE_BATCH, STRIDE_HEAD, STRIDE_ROW, LAYOUT_BYTES } = LAYOUT_OFFSETS;
  const block = new Int32Array(LAYOUT_BYTES / 4);
  for (const [at, [batch, head, row]] of [[LAYOUT_Q, l.q], [LAYOUT_K, l.k], [LAYOUT_V, l.v], [LAYOUT_OUT, l.out]] as const) {
    block[(at + STRIDE_BATCH) / 4] = batch;
    block[(at + STRIDE_HEAD) / 4] = head;
    block[(at + STRIDE_ROW) / 4] = row;
  }
  if (l.kvTable) {
    block[LAYOUT_OFFSETS.LAYOUT_KV_TABLE / 4] = l.kvTable.at;
    block[LAYOUT_OFFSETS.LAYOUT_KV_TABLE_ENTRIES / 4] = l.kvTable.entries;
    block[LAYOUT_OFFSETS.LAYOUT_KV_BLOCK_ROWS / 4] = l.kvTable.blockRows;
  }
  if (l.kvFormat) {
    block[LAYOUT_OFFSETS.LAYOUT_KV_FORMAT / 4] = l.kvFormat.code;
    block[LAYOUT_OFFSETS.LAYOUT_KV_K_SCALES / 4] = l.kvFormat.kScales;
    block[LAYOUT_OFFSETS.LAYOUT_KV_V_SCALES / 4] = l.kvFormat.vScales;
  }
  return block;
}
