// Which build this module is. The loader reads the marker to report engine.info.simd for a module
// it was handed (createEngine({ wasm })), without decoding the code section.

/** 1 in the relaxed-SIMD build (build/qkv-relaxed.wasm, asc --enable relaxed-simd), 0 in the plain SIMD build. */
export const RELAXED_SIMD: i32 = ASC_FEATURE_RELAXED_SIMD ? 1 : 0;
