// The wasm boundary in one place: the kernels' exports as one typed interface (assembly/index.ts
// re-exports them from assembly/kernels), and what is derived from it: the argument count of every
// kernel, checked against the interface by the compiler and against the .wasm by test/abi.test.ts,
// the kernels' order in a worker's job slot (src/wasm/parallel.ts), and the typed arguments of a
// threaded call.

/** The kernel exports of build/qkv.wasm and build/qkv-relaxed.wasm (assembly/index.ts). Pointers are byte offsets into `memory`. */
export interface Kernels {
  memory: WebAssembly.Memory;
  /** 1 in the relaxed-SIMD build, 0 in the plain SIMD build (assembly/build.ts). */
  RELAXED_SIMD: WebAssembly.Global;
  heap_base(): number;
  gemm_f32(c: number, a: number, b: number, m: number, n: number, k: number, transposeB: boolean | number, bias: number, scratch: number): void;
  gemm_scratch_f32(n: number, k: number): number;
  gemm_pack_f32(bp: number, b: number, n: number, k: number, transposeB: boolean | number): void;
  gemm_packed_f32(c: number, a: number, bp: number, bias: number, m: number, n: number, k: number, ldc: number, panels: number, jp0: number, scratch: number): void;
  gemm_packed_scratch_f32(): number;
  gemm_packed_size_f32(n: number, k: number): number;
  gemv_f32(c: number, a: number, b: number, bias: number, m: number, n: number, k: number, ldc: number, lda: number, ldb: number, transposeB: boolean | number, accumulate: boolean | number): void;
  softmax_rows_f32(out: number, x: number, rows: number, n: number, lens: number, rowsPerLen: number): void;
  attention_f32(
    out: number, weights: number, scratch: number, q: number, k: number, v: number, mask: number, lens: number,
    b: number, hq: number, hkv: number, lq: number, lk: number, e: number, ev: number,
    scale: number, softcap: number, maskKind: number, msb: number, msh: number, msq: number, msk: number,
    causal: number, lpast: number, left: number, right: number, layout: number, rowStart: number, rowEnd: number,
  ): void;
  flash_attention_f32(
    out: number, scratch: number, q: number, k: number, v: number, mask: number, lens: number,
    b: number, hq: number, hkv: number, lq: number, lk: number, e: number, ev: number,
    scale: number, softcap: number, maskKind: number, msb: number, msh: number, msq: number, msk: number,
    causal: number, lpast: number, left: number, right: number, layout: number, alibi: number, sinks: number, unitStart: number, unitEnd: number,
  ): void;
  flash_scratch_f32(lk: number, e: number, ev: number, format: number): number;
  kernel_regression_f32(out: number, weights: number, scratch: number, q: number, k: number, v: number, n: number, m: number, d: number, dv: number, w: number): void;
  kernel_regression_grad_f32(out: number, stats: number, scratch: number, q: number, k: number, v: number, y: number, n: number, m: number, d: number, dv: number, w: number, masked: number): void;
  additive_scores_f32(out: number, qp: number, kp: number, wv: number, b: number, lq: number, lk: number, h: number, rowStart: number, rowEnd: number): void;
  exp_f32(out: number, x: number, n: number): void;
  exp_softmax_f32(out: number, x: number, n: number): void;
  exp2_nonpositive_f32(out: number, x: number, n: number): void;
  exp2_softmax_f32(out: number, x: number, n: number): void;
  exp2_shifted_f32(out: number, x: number, n: number, m: number): void;
  tanh_f32(out: number, x: number, n: number): void;
  weighted_rows_f32(out: number, w: number, v: number, b: number, lq: number, lk: number, dv: number, rowStart: number, rowEnd: number): void;
  rotary_f32(out: number, x: number, n: number, d: number, rot: number, interleaved: number, cos: number, sin: number, tableRow: number, xStride: number, outStride: number): void;
  paged_attention_f32: PagedAttentionKernel;
  paged_attention_f16: PagedAttentionKernel;
  paged_attention_i8: PagedAttentionKernel;
  kv_store_f32: KVStoreKernel; kv_store_f16: KVStoreKernel; kv_store_i8: KVStoreKernel;
  kv_load_f32: KVLoadKernel; kv_load_f16: KVLoadKernel; kv_load_i8: KVLoadKernel;
  paged_scratch_f32(maxLength: number, e: number, ev: number, group: number): number;
  rms_norm_rows_f32(x: number, n: number, d: number, w: number, eps: number): void;
  rms_norm_f32(out: number, x: number, w: number, rows: number, d: number, eps: number, unitOffset: number): void;
  add_f32(out: number, a: number, b: number, n: number): void;
  gated_silu_f32(out: number, x: number, rows: number, i: number): void;
  gated_gelu_tanh_f32(out: number, x: number, rows: number, i: number): void;
  softcap_f32(out: number, x: number, n: number, cap: number): void;
  /** assembly/kernels/linearF16.ts: a linear layer's binary16 weight in gemm_pack_f32's panels, the product, and rows of packed weights. */
  linear_pack_f16(bp: number, w: number, n: number, k: number): number;
  linear_f16(c: number, a: number, bp: number, bias: number, m: number, n: number, k: number, ldc: number, panels: number, jp0: number, special: number, scratch: number): void;
  linear_f16_scratch(k: number): number;
  linear_rows_f32(dst: number, bp: number, ids: number, count: number, n: number, k: number, scale: number): void;
  linear_rows_f16(dst: number, bp: number, ids: number, count: number, n: number, k: number, scale: number): void;
  /** assembly/kernels/linearQuant.ts: int8/int4 weights in groups (4 output rows interleaved), Q8_0 activations, the products and rows. */
  linear_quant_size(n: number, k: number, g: number, bits: number): number;
  linear_quant_x_size(m: number, k: number, g: number, bits: number): number;
  linear_quant_pack(dst: number, w: number, n: number, k: number, g: number, bits: number): void;
  linear_quant_x(xq: number, x: number, m: number, k: number, g: number, bits: number): void;
  linear_i8(y: number, xq: number, bp: number, bias: number, m: number, n: number, k: number, g: number, o0: number, o1: number): void;
  linear_i4(y: number, xq: number, bp: number, bias: number, m: number, n: number, k: number, g: number, o0: number, o1: number): void;
  linear_quant_rows(dst: number, bp: number, ids: number, count: number, n: number, k: number, g: number, bits: number, scale: number): void;
  linear_quant_pack_q(dst: number, q: number, s: number, n: number, k: number, g: number, bits: number): void;
  CAUSAL_NONE: WebAssembly.Global; CAUSAL_TOP_LEFT: WebAssembly.Global; CAUSAL_BOTTOM_RIGHT: WebAssembly.Global;
  MASK_NONE: WebAssembly.Global; MASK_BOOLEAN: WebAssembly.Global; MASK_ADDITIVE: WebAssembly.Global;
  /** Byte offsets into the attention kernels' layout block (assembly/layout.ts; LAYOUT_OFFSETS below). */
  LAYOUT_Q: WebAssembly.Global; LAYOUT_K: WebAssembly.Global; LAYOUT_V: WebAssembly.Global; LAYOUT_OUT: WebAssembly.Global;
  STRIDE_BATCH: WebAssembly.Global; STRIDE_HEAD: WebAssembly.Global; STRIDE_ROW: WebAssembly.Global;
  LAYOUT_KV_TABLE: WebAssembly.Global; LAYOUT_KV_TABLE_ENTRIES: WebAssembly.Global; LAYOUT_KV_BLOCK_ROWS: WebAssembly.Global;
  LAYOUT_KV_FORMAT: WebAssembly.Global; LAYOUT_KV_K_SCALES: WebAssembly.Global; LAYOUT_KV_V_SCALES: WebAssembly.Global; LAYOUT_BYTES: WebAssembly.Global;
  KV_F32: WebAssembly.Global; KV_F16: WebAssembly.Global; KV_I8: WebAssembly.Global;
  /** Byte offsets into the paged attention kernel's row block (assembly/layout.ts). */
  PAGED_ROW_TOKEN: WebAssembly.Global; PAGED_ROW_TABLE_AT: WebAssembly.Global; PAGED_ROW_KV_LENGTH: WebAssembly.Global;
  PAGED_ROW_POSITION: WebAssembly.Global; PAGED_ROW_BYTES: WebAssembly.Global;
}

/** assembly/kernels/pagedAttention.ts, one export per storage format. */
type PagedAttentionKernel = (
  out: number, scratch: number, q: number, kPool: number, vPool: number, kScales: number, vScales: number, tables: number, rowInfo: number,
  hq: number, hkv: number, e: number, ev: number, bs: number, headRows: number, scale: number, softcap: number, causal: number, left: number, right: number,
  alibi: number, sinks: number, maxLength: number, unitStart: number, unitEnd: number,
) => void;
/** assembly/kernels/kvStore.ts: rows into a pool's format, and back. */
type KVStoreKernel = (pool: number, scales: number, src: number, n: number, h: number, d: number, slots: number, headRows: number) => void;
type KVLoadKernel = (dst: number, pool: number, scales: number, n: number, h: number, d: number, slots: number, headRows: number) => void;

/** The exports of Kernels that are functions (the kernels), as opposed to `memory` and the constants. */
export type KernelName = { [K in keyof Kernels]: Kernels[K] extends (...args: never[]) => unknown ? K : never }[keyof Kernels];

/** One number per parameter of T (a boolean flag travels as 0 or 1). */
type Numbers<T extends readonly unknown[]> = { [I in keyof T]: number };

/** The arguments of kernel K as a tuple of numbers: a call with one too many or too few does not compile. */
export type KernelArgs<K extends KernelName> = Numbers<Parameters<Kernels[K]>>;

/**
 * Every kernel export and its argument count. The compiler holds each count to the interface above
 * (and the list to its functions, none missing, none extra); test/abi.test.ts holds both to the .wasm.
 * The order is the kernels' index in a worker's job slot.
 */
export const KERNEL_ARITY = {
  heap_base: 0,
  gemm_f32: 9, gemm_scratch_f32: 2, gemm_pack_f32: 5, gemm_packed_f32: 11, gemm_packed_scratch_f32: 0, gemm_packed_size_f32: 2,
  gemv_f32: 12,
  softmax_rows_f32: 6,
  attention_f32: 29,
  flash_attention_f32: 30, flash_scratch_f32: 4,
  kernel_regression_f32: 11, kernel_regression_grad_f32: 13,
  additive_scores_f32: 10, weighted_rows_f32: 9,
  rotary_f32: 11,
  rms_norm_rows_f32: 5,

  paged_attention_f32: 25, paged_attention_f16: 25, paged_attention_i8: 25, paged_scratch_f32: 4,
  kv_store_f32: 8, kv_store_f16: 8, kv_store_i8: 8, kv_load_f32: 8, kv_load_f16: 8, kv_load_i8: 8,
  exp_f32: 3, exp_softmax_f32: 3, exp2_nonpositive_f32: 3, exp2_softmax_f32: 3, exp2_shifted_f32: 4, tanh_f32: 3,
  rms_norm_f32: 7, add_f32: 4, gated_silu_f32: 4, gated_gelu_tanh_f32: 4, softcap_f32: 4,
  linear_pack_f16: 4, linear_f16: 12, linear_f16_scratch: 1, linear_rows_f32: 7, linear_rows_f16: 7,
  linear_quant_size: 4, linear_quant_x_size: 4, linear_quant_pack: 6, linear_quant_x: 6, linear_i8: 10, linear_i4: 10, linear_quant_rows: 9, linear_quant_pack_q: 7,
} as const satisfies { [K in KernelName]: Parameters<Kernels[K]>['length'] };

/** The kernels by index, in KERNEL_ARITY's order (a worker's job slot holds the index, not the name). */
export const KERNEL_NAMES = Object.keys(KERNEL_ARITY) as KernelName[];

/** The exports of Kernels that are constants (WebAssembly.Global), checked against this side's values when an engine loads. */
export const KERNEL_GLOBALS = [
  'RELAXED_SIMD', 'CAUSAL_NONE', 'CAUSAL_TOP_LEFT', 'CAUSAL_BOTTOM_RIGHT', 'MASK_NONE', 'MASK_BOOLEAN', 'MASK_ADDITIVE',
  'LAYOUT_Q', 'LAYOUT_K', 'LAYOUT_V', 'LAYOUT_OUT', 'STRIDE_BATCH', 'STRIDE_HEAD', 'STRIDE_ROW',
  'LAYOUT_KV_TABLE', 'LAYOUT_KV_TABLE_ENTRIES', 'LAYOUT_KV_BLOCK_ROWS', 'LAYOUT_KV_FORMAT', 'LAYOUT_KV_K_SCALES', 'LAYOUT_KV_V_SCALES', 'LAYOUT_BYTES',
  'KV_F32', 'KV_F16', 'KV_I8',
  'PAGED_ROW_TOKEN', 'PAGED_ROW_TABLE_AT', 'PAGED_ROW_KV_LENGTH', 'PAGED_ROW_POSITION', 'PAGED_ROW_BYTES',
] as const satisfies readonly { [K in keyof Kernels]: Kernels[K] extends WebAssembly.Global ? K : never }[keyof Kernels][];

/**
 * Byte offsets into the layout block of attention_f32 and flash_attention_f32 (twelve i32 element
 * strides, (batch, head, row) of q, k, v and out, then the KV view's block table: its address,
 * entries per batch row and positions per block; its element type and int8's row scales), and into the paged attention kernel's row block
 * (token, tableAt, kvLength, position). The same names and values as assembly/layout.ts, which
 * exports them; createEngine refuses a .wasm whose values differ, and test/abi.test.ts compares.
 */
export const LAYOUT_OFFSETS = {
  LAYOUT_Q: 0, LAYOUT_K: 12, LAYOUT_V: 24, LAYOUT_OUT: 36,
  STRIDE_BATCH: 0, STRIDE_HEAD: 4, STRIDE_ROW: 8,
  LAYOUT_KV_TABLE: 48, LAYOUT_KV_TABLE_ENTRIES: 52, LAYOUT_KV_BLOCK_ROWS: 56,
  LAYOUT_KV_FORMAT: 60, LAYOUT_KV_K_SCALES: 64, LAYOUT_KV_V_SCALES: 68,
  LAYOUT_BYTES: 72,
  PAGED_ROW_TOKEN: 0, PAGED_ROW_TABLE_AT: 4, PAGED_ROW_KV_LENGTH: 8, PAGED_ROW_POSITION: 12, PAGED_ROW_BYTES: 16,
} as const;

/** The KV view's element types (assembly/layout.ts), by the pool format names of src/wasm/kvPool.ts. */
export const KV_FORMATS = { KV_F32: 0, KV_F16: 1, KV_I8: 2 } as const;
export const KV_FORMAT_CODE = { f32: KV_FORMATS.KV_F32, f16: KV_FORMATS.KV_F16, i8: KV_FORMATS.KV_I8 } as const;
