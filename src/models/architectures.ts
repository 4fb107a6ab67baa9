// What differs between the decoder architectures qkv runs, as data: one record per Hugging Face
// `architectures[0]`, each field citing the transformers code it mirrors. The forward pass
// (./decoder.ts) reads these records; it has no branch per architecture.
//
// Every architecture below is the same pre-norm decoder:
//
//   h = embed(tokens) (· √hidden)
//   per layer:  a = attention(norm_in(h));    a = norm_attn_out(a)?;  h += a
//               m = mlp(norm_mlp_in(h));      m = norm_mlp_out(m)?;   h += m
//   logits = lm_head(norm(h)) (softcapped)
//
// with mlp(x) = down(act(gate(x)) · up(x)).

/** How one architecture departs from Llama. */
export interface Architecture {
  /**
   * RMSNorm multiplies by 1 + w, in float32 (Gemma2RMSNorm, Gemma3RMSNorm: `output * (1.0 + self.weight.float())`),
   * q/k norms included.
   */
  readonly unitOffsetNorms: boolean;
  /** Embeddings times √hidden_size (Gemma2Model / Gemma3TextScaledWordEmbedding: `normalizer = hidden_size**0.5`). */
  readonly scaleEmbeddings: boolean;
  /** The config key naming the MLP's activation (`hidden_act`, Gemma's `hidden_activation`). */
  readonly activationKey: 'hidden_act' | 'hidden_activation';
  /**
   * Gemma 2 and 3: `post_attention_layernorm` normalizes the attention's output and
   * `post_feedforward_layernorm` the MLP's, each before its residual add; `pre_feedforward_layernorm`
   * feeds the MLP. Elsewhere `post_attention_layernorm` is the MLP's input norm.
   */
  readonly postNorms: boolean;
  /** `self_attn.q_norm` and `self_attn.k_norm`: RMSNorm of every head's query and key before rotary (Qwen3, Gemma 3). */
  readonly qkNorm: boolean;
  /** q/k/v biases: always (Qwen2Attention), or when config.attention_bias is true (Llama, Qwen3, Gemma…). */
  readonly qkvBias: 'always' | 'attention_bias';
  /** Phi-3's `self_attn.qkv_proj` (q, then k, then v rows) and `mlp.gate_up_proj` (gate rows, then up rows). */
  readonly fusedProjections: boolean;
  /** Attention scale `query_pre_attn_scalar ** -0.5` instead of `head_dim ** -0.5` (Gemma 2 and 3). */
  readonly queryPreAttnScalar: boolean;
  /** `attn_logit_softcapping` bends the attention scores (Gemma 2; Gemma3Attention never passes it on). */
  readonly attentionSoftcap: boolean;
  /** `final_logit_softcapping` bends the logits (Gemma2ForCausalLM and Gemma3ForCausalLM). */
  readonly finalSoftcap: boolean;
  /**
   * Which layers slide when config.json has no `layer_types` (transformers 4's configs):
   * 'config' every layer when `sliding_window` is set (Mistral, Phi-3); 'qwen' layers from
   * `max_window_layers` on, only with `use_sliding_window`; 'alternate' even layers (Gemma 2:
   * `not bool(layer_idx % 2)`); 'pattern' all but every `sliding_window_pattern`-th (Gemma 3:
   * `bool((layer_idx + 1) % pattern)`); 'none'.
   */
  readonly sliding: 'config' | 'qwen' | 'alternate' | 'pattern' | 'none';
  /** Sliding layers turn by `rope_local_base_freq` with no scaling (Gemma 3's rotary_emb_local). */
  readonly localRope: boolean;
  /** `tie_word_embeddings` when config.json leaves it out (save_pretrained omits a class default). */
  readonly tiedByDefault: boolean;
}

/**
 * The architectures qkv runs, by config.json's `architectures[0]`. A function, made once when first
 * asked for, rather than a module-level table: an app that only uses attention then bundles none of it
 * (a bundler must keep a top-level object built with spreads, which could run getters).
 */
export function architectures(): Readonly<Record<string, Architecture>> {
  if (table) return table;
  const llama: Architecture = {
    unitOffsetNorms: false, scaleEmbeddings: false, activationKey: 'hidden_act', postNorms: false, qkNorm: false,
    qkvBias: 'attention_bias', fusedProjections: false, queryPreAttnScalar: false, attentionSoftcap: false, finalSoftcap: false,
    sliding: 'none', localRope: false, tiedByDefault: false,
  };
  const gemma2: Architecture = {
    ...llama, unitOffsetNorms: true, scaleEmbeddings: true, activationKey: 'hidden_activation', postNorms: true,
    queryPreAttnScalar: true, attentionSoftcap: true, finalSoftcap: true, sliding: 'alternate', tiedByDefault: true,
  };
  table = Object.freeze({
    LlamaForCausalLM: llama,
    // sliding_window on every layer (MistralConfig.sliding_window, default 4096; null turns it off)
    MistralForCausalLM: { ...llama, sliding: 'config' },
    // Qwen2Attention: q_proj, k_proj, v_proj with bias=True; sliding only with use_sliding_window
    Qwen2ForCausalLM: { ...llama, qkvBias: 'always', sliding: 'qwen' },
    Qwen3ForCausalLM: { ...llama, qkNorm: true, sliding: 'qwen' },
    Gemma2ForCausalLM: gemma2,
    Gemma3ForCausalLM: { ...gemma2, qkNorm: true, attentionSoftcap: false, sliding: 'pattern', localRope: true },
    Phi3ForCausalLM: { ...llama, fusedProjections: true, sliding: 'config' },
  });
  return table;
}
let table: Readonly<Record<string, Architecture>> | null = null;

/** `architectures[0]` of a config, checked against the table: a TypeError names what is supported. */
export function architectureOf(config: Record<string, unknown>): { name: string; arch: Architecture } {
  const list = config.architectures;
  const name = Array.isArray(list) && typeof list[0] === 'string' ? list[0] : undefined;
  const known = architectures();
  const supported = Object.keys(known).join(', ');
  if (name === undefined) {
    throw new TypeError(`loadDecoder: config.json has no architectures[0] naming the model class; qkv runs ${supported}`);
  }
  const arch = Object.hasOwn(known, name) ? known[name] : undefined;
  if (!arch) throw new TypeError(`loadDecoder: architecture ${name} is not supported; qkv runs ${supported}`);
  return { name, arch };
}
