// Byte offsets into the layout block the attention kernels (attention_f32, flash_attention_f32) take:
// twelve i32 element strides, (batch, head, row) of q, k, v and out in that order. The caller
// builds it (src/wasm/attention.ts, layoutArray); rows are contiguous inside.
//
//   byte  0     4     8    | 12    16    20   | 24    28    32   | 36    40    44
//         q.b   q.h   q.r  | k.b   k.h   k.r  | v.b   v.h   v.r  | out.b out.h out.r
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
/** Bytes of the whole block. */
export const LAYOUT_BYTES: i32 = 48;
