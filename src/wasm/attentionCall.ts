// One attention call's pointers and sizes in wasm memory: what the attention route (./attention.ts)
// and the paged decode route (./decodeAttention.ts) both read, apart from either so that neither
// imports the other for it.

/** Pointers and sizes of one attention call in wasm memory (see attention_f32 for each). */
export interface AttentionCall {
  out: number; weights: number; q: number; k: number; v: number; mask: number; lens: number;
  B: number; Hq: number; Hkv: number; Lq: number; Lk: number; E: number; Ev: number;
  scale: number; softcap: number; maskKind: number; maskStrides: number[];
  causal: number; Lpast: number; windowLeft: number; windowRight: number;
  /** Pointer to the block of layoutArray(): strides and the KV view. */
  layout: number;
  /** The KV view's element type (KV_FORMATS; float32 when absent), as written in the layout. */
  kvFormat?: number;
  /** f32 [Hq] ALiBi slopes and sink logits (batchAttention's options), or 0 / absent: the fused kernel only. */
  alibi?: number; sinks?: number;
}
