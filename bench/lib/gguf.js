// A GGUF writer for the random checkpoints of randomCheckpoint.js, in JavaScript (the bench needs no
// Python): the same float32 weights as llama.cpp's convert_hf_to_gguf.py and llama-quantize would lay
// them out, for llama.cpp's wasm build (wllama) to run on the weights qkv runs.
//
//   "GGUF"  version 3  tensor count: u64  metadata count: u64
//   metadata: key (u64 length + UTF-8), value type: u32, value (arrays: element type u32, count u64, items)
//   tensor infos: name, n_dims: u32, dims: u64 × n_dims (innermost first), type: u32, offset: u64
//   padding to 32, then each tensor's data at its offset (multiples of 32)
//
// What the converter does that this does too:
//   - tensor names: transformers' -> llama.cpp's (embed_tokens -> token_embd, q_proj -> attn_q, ...);
//     tied embeddings write no `output` (llama.cpp reuses token_embd);
//   - `llama`: the rows of q_proj and k_proj permuted (LlamaModel.permute: within each head, the halves
//     of every rotary pair interleaved, for GGML's normal rope); qwen2 (NEOX rope) is written as it is;
//   - 1-D tensors (norms, biases) in F32; 2-D tensors in the file's type: F32, or Q8_0 / Q4_0 blocks
//     quantized as ggml's quantize_row_q8_0_ref / quantize_row_q4_0_ref do (binary16 scale per 32).
//     Q4_0 is written "pure" (llama-quantize --pure): every 2-D tensor Q4_0, the tied embedding and
//     output layer included, where llama-quantize by default keeps the output layer at Q6_K; qkv's
//     int4 quantizes every layer too, so both run the same 4-bit weights;
//   - metadata: general.*, {arch}.context_length, embedding_length, block_count, feed_forward_length,
//     attention.head_count(_kv), attention.layer_norm_rms_epsilon, rope.freq_base,
//     rope.dimension_count, and a tokenizer llama.cpp accepts: model `gpt2` (byte-level BPE, as both
//     Qwen2.5 and SmolLM2 have), the real models' pre-tokenizer names, no merges, ids 0-127 GPT-2's
//     byte-level characters of the ASCII bytes (byte b is token b), every other id the text `<id>`
//     (a lone byte above 127 is not UTF-8, and llama.cpp's server fails on a piece that is not),
//     bos/eos as control tokens. wllama's server takes a prompt only as text: with no merges, a
//     text of printable ASCII characters tokenizes to one token per byte, its byte value, so the
//     bench's prompt ids (33-126, bench/lib/ggufTokens.js) reach llama.cpp as exactly those ids.
import { closeSync, openSync, writeSync } from 'node:fs';
import { byteCharacters } from './ggufTokens.js';
import { readRandomCheckpoint, tensorList } from './randomCheckpoint.js';

/** GGML tensor types (ggml.h's enum ggml_type) and general.file_type (llama.h's enum llama_ftype). */
const TYPES = {
  F32: { id: 0, block: 1, bytes: 4, fileType: 0 },
  Q4_0: { id: 2, block: 32, bytes: 18, fileType: 2 },
  Q8_0: { id: 8, block: 32, bytes: 34, fileType: 7 },
};
export const GGUF_TYPES = Object.keys(TYPES);

/** The llama.cpp architecture of a Hugging Face class, and its pre-tokenizer (tokenizer.ggml.pre). */
const ARCHS = {
  Qwen2ForCausalLM: { arch: 'qwen2', pre: 'qwen2', permute: false },
  LlamaForCausalLM: { arch: 'llama', pre: 'smollm', permute: true },
};

const ALIGNMENT = 32;

/** A transformers tensor name -> llama.cpp's (gguf-py's tensor_mapping.py). */
function ggufName(name) {
  const top = { 'model.embed_tokens.weight': 'token_embd.weight', 'model.norm.weight': 'output_norm.weight', 'lm_head.weight': 'output.weight' };
  if (top[name]) return top[name];
  const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(name);
  const parts = {
    input_layernorm: 'attn_norm', post_attention_layernorm: 'ffn_norm',
    'self_attn.q_proj': 'attn_q', 'self_attn.k_proj': 'attn_k', 'self_attn.v_proj': 'attn_v', 'self_attn.o_proj': 'attn_output',
    'self_attn.q_norm': 'attn_q_norm', 'self_attn.k_norm': 'attn_k_norm',
    'mlp.gate_proj': 'ffn_gate', 'mlp.up_proj': 'ffn_up', 'mlp.down_proj': 'ffn_down',
  };
  if (m === null || parts[m[2]] === undefined) throw new Error(`no GGUF name for tensor ${name}`);
  return `blk.${m[1]}.${parts[m[2]]}.${m[3]}`;
}

// ---- values ---------------------------------------------------------------------------------

const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);

/** float32 -> binary16 bits, rounded to nearest even, subnormals and overflow included (GGML_FP32_TO_FP16). */
export function toHalf(x) {
  f32[0] = x;
  const b = u32[0], sign = (b >>> 16) & 0x8000, exp = (b >>> 23) & 0xff, mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = mant | 0x800000, shift = 14 - e;
    let h = m >>> shift;
    const rest = m & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rest > half || (rest === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++;
  return sign | h;
}

/** C's roundf: halves away from zero. */
const roundAway = (x) => (x < 0 ? -Math.round(-x) : Math.round(x));

/** quantize_row_q8_0_ref: per 32, d = max|x| / 127 (stored as binary16), q = roundf(x / d). */
export function quantizeQ8_0(x, out = new Uint8Array((x.length / 32) * 34)) {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let b = 0, o = 0; b < x.length; b += 32, o += 34) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b + j]));
    const d = Math.fround(amax / 127), id = d ? Math.fround(1 / d) : 0;
    view.setUint16(o, toHalf(d), true);
    for (let j = 0; j < 32; j++) view.setInt8(o + 2 + j, roundAway(Math.fround(x[b + j] * id)));
  }
  return out;
}

/**
 * quantize_row_q4_0_ref: per 32, m = the value of largest magnitude, d = m / -8 (binary16), nibble =
 * min(15, trunc(x / d + 8.5)); byte j holds value j (low nibble) and value j + 16 (high).
 */
export function quantizeQ4_0(x, out = new Uint8Array((x.length / 32) * 18)) {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let b = 0, o = 0; b < x.length; b += 32, o += 18) {
    let amax = 0, max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[b + j];
      if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; }
    }
    const d = Math.fround(max / -8), id = d ? Math.fround(1 / d) : 0;
    view.setUint16(o, toHalf(d), true);
    for (let j = 0; j < 16; j++) {
      const lo = Math.min(15, Math.trunc(Math.fround(Math.fround(x[b + j] * id) + 8.5)));
      const hi = Math.min(15, Math.trunc(Math.fround(Math.fround(x[b + 16 + j] * id) + 8.5)));
      out[o + 2 + j] = lo | (hi << 4);
    }
  }
  return out;
}

/** LlamaModel.permute of convert_hf_to_gguf.py: row j·D/2 + i of each head of D rows -> row 2i + j. */
export function permuteRows(data, heads, width) {
  const out = new Float32Array(data.length);
  const D = data.length / width / heads, half = D / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const from = (h * D + j * half + i) * width, to = (h * D + 2 * i + j) * width;
        out.set(data.subarray(from, from + width), to);
      }
    }
  }
  return out;
}

// ---- the file -------------------------------------------------------------------------------

const VALUE = { u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9 };

/** Little-endian bytes, appended piece by piece. */
class Bytes {
  parts = [];
  length = 0;
  push(b) { this.parts.push(b); this.length += b.length; }
  u32(v) { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.push(b); }
  i32(v) { const b = Buffer.alloc(4); b.writeInt32LE(v); this.push(b); }
  u64(v) { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.push(b); }
  f32(v) { const b = Buffer.alloc(4); b.writeFloatLE(v); this.push(b); }
  string(s) { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.push(b); }
  concat() { return Buffer.concat(this.parts, this.length); }
}

/** One metadata entry: [key, type, value]; arrays as ['array', elementType, values]. */
function writeValue(out, type, value) {
  if (type === 'array') {
    const [elementType, values] = value;
    out.u32(VALUE[elementType]);
    out.u64(values.length);
    for (const v of values) writeValue(out, elementType, v);
  } else if (type === 'string') out.string(value);
  else if (type === 'bool') out.push(Buffer.from([value ? 1 : 0]));
  else out[type](value);
}

/** The metadata of `config` written as llama.cpp's converter writes it, for GGUF type `type`. */
function metadata(config, type) {
  const { arch, pre } = ARCHS[config.architectures[0]];
  const E = config.hidden_size, Hq = config.num_attention_heads, D = config.head_dim ?? E / Hq;
  const V = config.vocab_size, bos = config.bos_token_id, eos = [config.eos_token_id].flat()[0];
  const bytes = byteCharacters();
  const tokens = Array.from({ length: V }, (_, i) => (i < 128 ? bytes[i] : `<${i}>`));
  const types = new Array(V).fill(1); // LLAMA_TOKEN_TYPE_NORMAL
  for (const [id, text] of [[bos, '<|bos|>'], [eos, '<|eos|>']]) {
    tokens[id] = text;
    types[id] = 3; // LLAMA_TOKEN_TYPE_CONTROL
  }
  return [
    ['general.architecture', 'string', arch],
    ['general.name', 'string', `qkv random ${config.architectures[0]}`],
    ['general.file_type', 'u32', TYPES[type].fileType],
    ['general.quantization_version', 'u32', 2],
    ['general.alignment', 'u32', ALIGNMENT],
    [`${arch}.context_length`, 'u32', config.max_position_embeddings],
    [`${arch}.embedding_length`, 'u32', E],
    [`${arch}.block_count`, 'u32', config.num_hidden_layers],
    [`${arch}.feed_forward_length`, 'u32', config.intermediate_size],
    [`${arch}.attention.head_count`, 'u32', Hq],
    [`${arch}.attention.head_count_kv`, 'u32', config.num_key_value_heads ?? Hq],
    [`${arch}.attention.layer_norm_rms_epsilon`, 'f32', config.rms_norm_eps],
    [`${arch}.rope.freq_base`, 'f32', config.rope_theta],
    [`${arch}.rope.dimension_count`, 'u32', D],
    ['tokenizer.ggml.model', 'string', 'gpt2'],
    ['tokenizer.ggml.pre', 'string', pre],
    ['tokenizer.ggml.tokens', 'array', ['string', tokens]],
    ['tokenizer.ggml.token_type', 'array', ['i32', types]],
    ['tokenizer.ggml.merges', 'array', ['string', []]],
    ['tokenizer.ggml.bos_token_id', 'u32', bos],
    ['tokenizer.ggml.eos_token_id', 'u32', eos],
    ['tokenizer.ggml.add_bos_token', 'bool', false],
  ];
}

/**
 * Writes `path`, a GGUF file of the float32 checkpoint in `dir` (writeRandomCheckpoint's), its 2-D
 * tensors as `type` ('F32', 'Q8_0' or 'Q4_0'). Returns the file's bytes and its tensor data's bytes.
 */
export function writeGguf(path, dir, { type = 'F32' } = {}) {
  if (!TYPES[type]) throw new Error(`GGUF type ${type}: use ${GGUF_TYPES.join(', ')}`);
  const ckpt = readRandomCheckpoint(dir);
  try {
    const { config } = ckpt;
    const how = ARCHS[config.architectures[0]];
    if (how === undefined) throw new Error(`${config.architectures[0]}: the GGUF writer knows ${Object.keys(ARCHS).join(', ')}`);
    const meta = metadata(config, type);
    const tensors = tensorList(config).map(([name, shape]) => {
      const t = shape.length === 2 && shape[1] % 32 === 0 ? TYPES[type] : TYPES.F32;
      const elements = shape.reduce((a, b) => a * b, 1);
      return { name, shape, gguf: ggufName(name), type: t, bytes: (elements / t.block) * t.bytes };
    });
    let offset = 0;
    for (const t of tensors) {
      t.offset = offset;
      offset = Math.ceil((offset + t.bytes) / ALIGNMENT) * ALIGNMENT;
    }
    const head = new Bytes();
    head.push(Buffer.from('GGUF', 'latin1'));
    head.u32(3);
    head.u64(tensors.length);
    head.u64(meta.length);
    for (const [key, kind, value] of meta) {
      head.string(key);
      head.u32(VALUE[kind]);
      writeValue(head, kind, value);
    }
    for (const t of tensors) {
      head.string(t.gguf);
      head.u32(t.shape.length);
      for (const d of [...t.shape].reverse()) head.u64(d);
      head.u32(t.type.id);
      head.u64(t.offset);
    }
    head.push(Buffer.alloc((ALIGNMENT - (head.length % ALIGNMENT)) % ALIGNMENT));
    const fd = openSync(path, 'w');
    try {
      writeSync(fd, head.concat());
      let at = 0;
      const Hq = config.num_attention_heads, Hkv = config.num_key_value_heads ?? Hq;
      for (const t of tensors) {
        if (t.offset > at) writeSync(fd, Buffer.alloc(t.offset - at));
        let values = ckpt.read(t.name);
        const qk = /self_attn\.([qk])_proj\.weight$/.exec(t.name);
        if (how.permute && qk) values = permuteRows(values, qk[1] === 'q' ? Hq : Hkv, t.shape[1]);
        const data = t.type === TYPES.Q8_0 ? quantizeQ8_0(values) : t.type === TYPES.Q4_0 ? quantizeQ4_0(values) : new Uint8Array(values.buffer);
        for (let done = 0; done < data.length; done += 1 << 30) writeSync(fd, data.subarray(done, Math.min(data.length, done + (1 << 30))));
        at = t.offset + t.bytes;
      }
      if (offset > at) writeSync(fd, Buffer.alloc(offset - at));
    } finally {
      closeSync(fd);
    }
    return { fileBytes: head.length + offset, dataBytes: tensors.reduce((n, t) => n + t.bytes, 0) };
  } finally {
    ckpt.close();
  }
}
