// The wasm module's exports: this file only re-exports the kernel families.
export { heap_base } from './memory';
export { RELAXED_SIMD } from './build';
export { LAYOUT_Q, LAYOUT_K, LAYOUT_V, LAYOUT_OUT, STRIDE_BATCH, STRIDE_HEAD, STRIDE_ROW, LAYOUT_KV_TABLE, LAYOUT_KV_TABLE_ENTRIES, LAYOUT_KV_BLOCK_ROWS, LAYOUT_KV_FORMAT, LAYOUT_KV_K_SCALES, LAYOUT_KV_V_SCALES, LAYOUT_BYTES, KV_F32, KV_F16, KV_I8 } from './layout';
export { PAGED_ROW_TOKEN, PAGED_ROW_TABLE_AT, PAGED_ROW_KV_LENGTH, PAGED_ROW_POSITION, PAGED_ROW_BYTES } from './layout';
export { gemm_f32, gemm_scratch_f32, gemm_pack_f32, gemm_packed_f32, gemm_packed_scratch_f32, gemm_packed_size_f32 } from './kernels/matmul';
export { gemv_f32 } from './kernels/gemv';
export { softmax_rows_f32 } from './kernels/softmax';
export {
  attention_f32, CAUSAL_NONE, CAUSAL_TOP_LEFT, CAUSAL_BOTTOM_RIGHT, MASK_NONE, MASK_BOOLEAN, MASK_ADDITIVE,
} from './kernels/attention';
export { flash_attention_f32, flash_scratch_f32 } from './kernels/flashAttention';
export { kernel_regression_f32 } from './kernels/kernelRegression';
export { kernel_regression_grad_f32 } from './kernels/kernelRegressionGrad';
export { additive_scores_f32, weighted_rows_f32 } from './kernels/additive';
export { rotary_f32 } from './kernels/rotary';
export { rms_norm_rows_f32, rms_norm_f32 } from './kernels/norm';
export { add_f32, gated_silu_f32, gated_gelu_tanh_f32, softcap_f32 } from './kernels/activation';
export { paged_attention_f32, paged_attention_f16, paged_attention_i8, paged_scratch_f32 } from './kernels/pagedAttention';
export { kv_store_f32, kv_store_f16, kv_store_i8, kv_load_f32, kv_load_f16, kv_load_i8 } from './kernels/kvStore';
export { exp_f32, exp_softmax_f32, exp2_nonpositive_f32, exp2_softmax_f32, exp2_shifted_f32, tanh_f32 } from './kernels/elementwise';
export { linear_pack_f16, linear_f16, linear_f16_scratch, linear_rows_f32, linear_rows_f16 } from './kernels/linearF16';
export { linear_quant_size, linear_quant_x_size, linear_quant_pack, linear_quant_x, linear_i8, linear_i4, linear_quant_rows, linear_quant_pack_q } from './kernels/linearQuant';
