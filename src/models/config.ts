// config.json -> the plan of a decoder: its sizes (DecoderConfig), and for every layer its sliding
// window and rotary embedding. Both config layouts are read: transformers 4's (`rope_theta`,
// `rope_scaling`, `rope_local_base_freq`, `sliding_window_pattern`, `partial_rotary_factor`) and
// transformers 5's (`rope_parameters`, per layer type for Gemma 3, and `layer_types`).

import type { GatedActivation } from '../core/modelTypes.js';
import type { RotaryOptions } from '../core/servingTypes.js';
import { tensor } from '../core/tensor.js';
import { type Architecture, architectureOf } from './architectures.js';
import type { DecoderConfig } from './types.js';

/** Everything the decoder needs to know about one layer beyond its weights. */
export interface LayerPlan {
  /** Keys a query sees, ending at itself, or null for full attention. */
  readonly window: number | null;
  readonly rotary: RotaryOptions;
}

export interface DecoderPlan {
  readonly config: DecoderConfig;
  readonly arch: Architecture;
  readonly activation: GatedActivation;
  /** Attention scale; undefined: 1/√headDim. */
  readonly attentionScale: number | undefined;
  readonly attentionSoftcap: number | undefined;
  readonly finalSoftcap: number | undefined;
  /** Multiplies the embeddings (1 but for Gemma). */
  readonly embeddingScale: number;
  readonly qkvBias: boolean;
  readonly mlpBias: boolean;
  readonly layers: readonly LayerPlan[];
}

type Json = Record<string, unknown>;

const where = (key: string) => `loadDecoder: config.json: ${key}`;

function count(c: Json, key: string, fallback?: number): number {
  const v = c[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new RangeError(`${where(key)} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

function positive(c: Json, key: string, fallback: number): number {
  const v = c[key] ?? fallback;
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) throw new RangeError(`${where(key)} must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}

/** A softcap: a positive number, or off (null, absent, 0). */
function softcapOf(c: Json, key: string): number | undefined {
  const v = c[key];
  if (v === null || v === undefined || v === 0) return undefined;
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) throw new RangeError(`${where(key)} must be a positive number or null, got ${JSON.stringify(v)}`);
  return v;
}

function tokenIds(...values: unknown[]): number[] {
  const ids = new Set<number>();
  for (const v of values) {
    for (const id of Array.isArray(v) ? v : [v]) if (typeof id === 'number' && Number.isInteger(id) && id >= 0) ids.add(id);
  }
  return [...ids];
}

const ACTIVATIONS: Record<string, GatedActivation> = {
  silu: 'silu', swish: 'silu',
  // PyTorch's tanh approximation of GELU under its Hugging Face names
  gelu_pytorch_tanh: 'gelu-tanh', gelu_new: 'gelu-tanh', gelu_fast: 'gelu-tanh',
};

/** How one kind of layer turns its queries and keys: transformers' rope_type and its parameters. */
interface Rope {
  readonly theta: number;
  readonly type: string;
  readonly params: Json;
}

/**
 * The rope of full-attention or sliding layers. transformers 5 keeps it in `rope_parameters`
 * (per layer type for Gemma 3); transformers 4 in `rope_theta` and `rope_scaling` (and Gemma 3's
 * local layers in `rope_local_base_freq`, unscaled).
 */
function ropeOf(c: Json, kind: 'full_attention' | 'sliding_attention', arch: Architecture): Rope {
  const params = c.rope_parameters as Json | null | undefined;
  if (params && typeof params === 'object') {
    const perType = 'full_attention' in params || 'sliding_attention' in params;
    const p = (perType ? params[kind] ?? params.full_attention : params) as Json;
    const type = String(p.rope_type ?? p.type ?? 'default');
    return { theta: positive(p, 'rope_theta', 10000), type, params: p };
  }
  if (kind === 'sliding_attention' && arch.localRope) {
    return { theta: positive(c, 'rope_local_base_freq', 10000), type: 'default', params: {} };
  }
  const scaling = (c.rope_scaling ?? null) as Json | null;
  const type = scaling ? String(scaling.rope_type ?? scaling.type ?? 'default') : 'default';
  return { theta: positive(c, 'rope_theta', 10000), type, params: scaling ?? {} };
}

/**
 * Inverse frequencies of `dim` rotated features, as transformers' ROPE_INIT_FUNCTIONS compute them
 * (modeling_rope_utils.py): default, 'linear' (divided by factor) and 'llama3' (long wavelengths
 * divided by factor, short kept, a smooth blend between).
 */
export function inverseFrequencies(rope: Rope, dim: number): Float64Array {
  const inv = Float64Array.from({ length: dim / 2 }, (_, i) => 1 / rope.theta ** ((2 * i) / dim));
  const p = rope.params;
  switch (rope.type) {
    case 'default':
      return inv;
    case 'linear': {
      const factor = positive(p, 'factor', NaN);
      return inv.map((f) => f / factor);
    }
    case 'llama3': {
      const factor = positive(p, 'factor', NaN), low = positive(p, 'low_freq_factor', NaN), high = positive(p, 'high_freq_factor', NaN);
      const old = positive(p, 'original_max_position_embeddings', NaN);
      const lowWavelen = old / low, highWavelen = old / high;
      return inv.map((f) => {
        const wavelen = (2 * Math.PI) / f;
        if (wavelen < highWavelen) return f;
        if (wavelen > lowWavelen) return f / factor;
        const smooth = (old / wavelen - low) / (high - low);
        return (1 - smooth) * (f / factor) + smooth * f;
      });
    }
    default:
      throw new TypeError(`loadDecoder: config.json: rope type '${rope.type}' is not supported; qkv runs default, linear and llama3`);
  }
}

/** RotaryOptions for a rope: the kernel's own angles for the default rope, else cos/sin tables of `positions` rows. */
function rotaryOf(rope: Rope, dim: number, positions: number): RotaryOptions {
  if (rope.type === 'default') return { base: rope.theta, dim };
  const inv = inverseFrequencies(rope, dim), half = dim / 2;
  const cos = new Float32Array(positions * half), sin = new Float32Array(positions * half);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * inv[i];
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { dim, cos: tensor(cos, [positions, half]), sin: tensor(sin, [positions, half]) };
}

/** Which layers slide: config.json's layer_types, else the architecture's rule over its transformers 4 keys. */
function slidingLayers(c: Json, arch: Architecture, layers: number): boolean[] {
  const types = c.layer_types;
  if (Array.isArray(types)) {
    if (types.length !== layers) throw new RangeError(`${where('layer_types')} has ${types.length} entries for ${layers} layers`);
    return types.map((t, i) => {
      if (t !== 'sliding_attention' && t !== 'full_attention') throw new TypeError(`${where(`layer_types[${i}]`)} is ${JSON.stringify(t)}; qkv runs 'sliding_attention' and 'full_attention'`);
      return t === 'sliding_attention';
    });
  }
  const slides = c.sliding_window !== null && c.sliding_window !== undefined;
  return Array.from({ length: layers }, (_, i) => {
    switch (arch.sliding) {
      case 'config': return slides;
      case 'qwen': return slides && c.use_sliding_window === true && i >= (typeof c.max_window_layers === 'number' ? c.max_window_layers : 0);
      case 'alternate': return i % 2 === 0;
      case 'pattern': return (i + 1) % count(c, 'sliding_window_pattern', 6) !== 0;
      default: return false;
    }
  });
}

/**
 * Reads config.json (and generation_config.json's stop tokens). `maxTokens` bounds the rotary tables:
 * no sequence holds more positions than the pools.
 */
export function planDecoder(c: Json, maxTokens: number, generation: Json | null = null): DecoderPlan {
  if (c === null || typeof c !== 'object' || Array.isArray(c)) throw new TypeError('loadDecoder: config.json must hold a JSON object');
  const { name, arch } = architectureOf(c);
  const hiddenSize = count(c, 'hidden_size'), numHeads = count(c, 'num_attention_heads');
  const numKvHeads = count(c, 'num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) throw new RangeError(`${where('num_attention_heads')} (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`);
  const headDim = c.head_dim === null || c.head_dim === undefined ? hiddenSize / numHeads : count(c, 'head_dim');
  if (!Number.isInteger(headDim)) throw new RangeError(`${where('hidden_size')} (${hiddenSize}) is not a multiple of num_attention_heads (${numHeads}) and head_dim is not given`);
  const numLayers = count(c, 'num_hidden_layers');
  const maxPositions = count(c, 'max_position_embeddings', 8192);
  const activationName = String(c[arch.activationKey] ?? c.hidden_act ?? (arch.activationKey === 'hidden_activation' ? 'gelu_pytorch_tanh' : 'silu'));
  const activation = ACTIVATIONS[activationName];
  if (!activation) throw new TypeError(`${where(arch.activationKey)} is '${activationName}'; qkv runs ${Object.keys(ACTIVATIONS).join(', ')}`);

  const ropeParams = (c.rope_parameters ?? {}) as Json;
  const partial = c.partial_rotary_factor ?? ropeParams.partial_rotary_factor ?? 1;
  if (typeof partial !== 'number' || !(partial > 0 && partial <= 1)) throw new RangeError(`${where('partial_rotary_factor')} must be in (0, 1], got ${JSON.stringify(partial)}`);
  const rotaryDim = Math.floor(headDim * partial);
  if (rotaryDim % 2 !== 0) throw new RangeError(`${where('partial_rotary_factor')}: ${rotaryDim} rotated features of ${headDim} is not even`);
  const positions = Math.min(maxPositions, maxTokens);
  const full = rotaryOf(ropeOf(c, 'full_attention', arch), rotaryDim, positions);
  const local = arch.localRope ? rotaryOf(ropeOf(c, 'sliding_attention', arch), rotaryDim, positions) : full;

  const sliding = slidingLayers(c, arch, numLayers);
  const window = sliding.some(Boolean) ? count(c, 'sliding_window') : null;
  const layers = sliding.map((s) => ({ window: s ? window : null, rotary: s ? local : full }));
  const rmsNormEps = positive(c, 'rms_norm_eps', 1e-6);
  const tie = c.tie_word_embeddings ?? arch.tiedByDefault;
  const config: DecoderConfig = Object.freeze({
    architecture: name,
    vocabSize: count(c, 'vocab_size'),
    hiddenSize, numLayers, numHeads, numKvHeads, headDim,
    intermediateSize: count(c, 'intermediate_size'),
    maxPositions,
    eosTokenIds: Object.freeze(tokenIds(c.eos_token_id, generation?.eos_token_id)),
    bosTokenId: typeof c.bos_token_id === 'number' ? c.bos_token_id : null,
    tieWordEmbeddings: tie === true,
    rmsNormEps,
    slidingWindows: Object.freeze(layers.map((l) => l.window)),
  });
  return {
    config, arch, activation,
    attentionScale: arch.queryPreAttnScalar ? positive(c, 'query_pre_attn_scalar', headDim) ** -0.5 : undefined,
    attentionSoftcap: arch.attentionSoftcap ? softcapOf(c, 'attn_logit_softcapping') : undefined,
    finalSoftcap: arch.finalSoftcap ? softcapOf(c, 'final_logit_softcapping') : undefined,
    embeddingScale: arch.scaleEmbeddings ? Math.sqrt(hiddenSize) : 1,
    qkvBias: arch.qkvBias === 'always' || c.attention_bias === true,
    mlpBias: c.mlp_bias === true,
    layers,
  };
}
