// Byte offsets into the layout block the attention kernels (attention_f32, flash_attention_f32) take:
// twelve i32 element strides, (batch, head, row) of q, k, v and out in that order, then the KV
// view's block table. The caller builds it (src/wasm/attentionLayout.ts, layoutArray); rows are
// contiguous inside.
//
//   byte  0     4     8    | 12    16    20   | 24    28    32   | 36    40    44    | 48     52       56   | 60      64        68
//         q.b   q.h   q.r  | k.b   k.h   k.r  | v.b   v.h   v.r  | out.b out.h out.r | table  entries  rows | format  k.scales  v.scales
//
// The KV view (inline/kvView.ts): without a table (0: tensors, a KVCache), key row j of (batch b,
// kv head g) is at k + (b·k.b + g·k.h + j·k.r) elements; with one, it is at row table[b·entries +
// j / rows]·rows + j % rows of the same head (a KV pool's blocks of `rows` positions). Values alike.
// Elements are of `format` (KV_F32, KV_F16: binary16, KV_I8: int8 times the row's float32 scale,
// at k.scales + row index · 4 bytes, the row index counted as the element offset / k.r).
//
// Exported by assembly/index.ts: src/wasm/abi.ts names the same offsets, and test/abi.test.ts reads
// these to compare.

/** Where each tensor's three strides start. */
export const LAYOUT_Q: i32 = 0;
export const LAYOUT_K: i32 = 12;
export const LAYOUT_V: i32 = 24;
export const LAYOUT_OUT: i32 = 36;
/** Within a tensor's three strides: batch, head, row. */
export const STRIDE_BATCH: i32 = 0;
export const STRIDE_HEAD: i32 = 4;
export const STRIDE_ROW: i32 = 8;
/** The KV view: the block table's address (0: none), its entries per batch row, positions per block. */
export const LAYOUT_KV_TABLE: i32 = 48;
export const LAYOUT_KV_TABLE_ENTRIES: i32 = 52;
export const LAYOUT_KV_BLOCK_ROWS: i32 = 56;
/** The KV view's element type (KV_F32 = 0 when the block is zero), and int8's row scales of k and v. */
export const LAYOUT_KV_FORMAT: i32 = 60;
export const LAYOUT_KV_K_SCALES: i32 = 64;
export const LAYOUT_KV_V_SCALES: i32 = 68;
/** Bytes of the whole block. */
export const LAYOUT_BYTES: i32 = 72;

/** The KV view's element types. */
export const KV_F32: i32 = 0;
export const KV_F16: i32 = 1;
export const KV_I8: i32 = 2;

// The paged attention kernel's row block (assembly/kernels/pagedAttention.ts): four i32 per row of the
// call, built by src/wasm/batchAttention.ts.
//
//   byte  0       4          8          12
//         token   tableAt    kvLength   position
//
// token: the row's index in q and out; tableAt: where its sequence's block indices start in the
// tables; kvLength: the positions the sequence holds; position: the row's own position.

export const PAGED_ROW_TOKEN: i32 = 0;
export const PAGED_ROW_TABLE_AT: i32 = 4;
export const PAGED_ROW_KV_LENGTH: i32 = 8;
export const PAGED_ROW_POSITION: i32 = 12;
/** Bytes of one row's block. */
export const PAGED_ROW_BYTES: i32 = 16;
