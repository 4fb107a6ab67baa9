// Random-weight Hugging Face checkpoints made in JavaScript (no Python): config.json and one
// model.safetensors, written tensor by tensor, for the decoder's benchmark and tests. Shapes follow
// transformers' naming for Llama-style decoders (LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM).
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** Real models' shapes (their config.json's sizes), for benchmarks. */
export const SHAPES = {
  'SmolLM2-135M': {
    architectures: ['LlamaForCausalLM'], hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30,
    num_attention_heads: 9, num_key_value_heads: 3, vocab_size: 49152, max_position_embeddings: 8192,
    rms_norm_eps: 1e-5, rope_theta: 100000, tie_word_embeddings: true, hidden_act: 'silu', bos_token_id: 1, eos_token_id: 2,
  },
  'Qwen2.5-0.5B': {
    architectures: ['Qwen2ForCausalLM'], hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24,
    num_attention_heads: 14, num_key_value_heads: 2, vocab_size: 151936, max_position_embeddings: 32768,
    rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: true, hidden_act: 'silu', use_sliding_window: false,
    sliding_window: 32768, max_window_layers: 21, bos_token_id: 151643, eos_token_id: 151645,
  },
  // float32 does not fit a wasm32 memory at this shape (6.2 GB): int8 and int4 only, run by name
  'Qwen2.5-1.5B': {
    architectures: ['Qwen2ForCausalLM'], hidden_size: 1536, intermediate_size: 8960, num_hidden_layers: 28,
    num_attention_heads: 12, num_key_value_heads: 2, vocab_size: 151936, max_position_embeddings: 32768,
    rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: true, hidden_act: 'silu', use_sliding_window: false,
    sliding_window: 32768, max_window_layers: 21, bos_token_id: 151643, eos_token_id: 151645,
  },
  // Tiny models of the same two architectures, to check a harness in seconds (not real shapes). Every
  // input width is a multiple of 32, as GGUF's Q8_0 and Q4_0 blocks and MatMulNBits' block of 32 need.
  'tiny-qwen2': {
    architectures: ['Qwen2ForCausalLM'], hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 512, max_position_embeddings: 1024,
    rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: true, hidden_act: 'silu', use_sliding_window: false,
    bos_token_id: 1, eos_token_id: 2,
  },
  'tiny-llama': {
    architectures: ['LlamaForCausalLM'], hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 512, max_position_embeddings: 1024,
    rms_norm_eps: 1e-5, rope_theta: 100000, tie_word_embeddings: true, hidden_act: 'silu', bos_token_id: 1, eos_token_id: 2,
  },
};

/** Names and shapes of a Llama-style checkpoint's tensors, in the order they are written. */
export function tensorList(config) {
  const E = config.hidden_size, I = config.intermediate_size, V = config.vocab_size;
  const Hq = config.num_attention_heads, Hkv = config.num_key_value_heads ?? Hq, D = config.head_dim ?? E / Hq;
  const arch = config.architectures[0];
  const list = [['model.embed_tokens.weight', [V, E]]];
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const p = `model.layers.${i}.`;
    list.push([`${p}input_layernorm.weight`, [E]], [`${p}post_attention_layernorm.weight`, [E]]);
    list.push([`${p}self_attn.q_proj.weight`, [Hq * D, E]], [`${p}self_attn.k_proj.weight`, [Hkv * D, E]], [`${p}self_attn.v_proj.weight`, [Hkv * D, E]]);
    if (arch === 'Qwen2ForCausalLM') list.push([`${p}self_attn.q_proj.bias`, [Hq * D]], [`${p}self_attn.k_proj.bias`, [Hkv * D]], [`${p}self_attn.v_proj.bias`, [Hkv * D]]);
    if (arch === 'Qwen3ForCausalLM') list.push([`${p}self_attn.q_norm.weight`, [D]], [`${p}self_attn.k_norm.weight`, [D]]);
    list.push([`${p}self_attn.o_proj.weight`, [E, Hq * D]]);
    list.push([`${p}mlp.gate_proj.weight`, [I, E]], [`${p}mlp.up_proj.weight`, [I, E]], [`${p}mlp.down_proj.weight`, [E, I]]);
  }
  list.push(['model.norm.weight', [E]]);
  if (!config.tie_word_embeddings) list.push(['lm_head.weight', [V, E]]);
  return list;
}

const BYTES = { F32: 4, F16: 2, BF16: 2 };

/** mulberry32: a seeded generator of uniform numbers in [0, 1). */
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
/** float32 -> bfloat16 bits, rounded to nearest even. */
function toBF16(x) {
  f32[0] = x;
  const b = u32[0];
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}
/** float32 -> binary16 bits, rounded to nearest even (finite, normal-range values only, as here). */
function toF16(x) {
  f32[0] = x;
  const b = u32[0], sign = (b >>> 16) & 0x8000;
  const e = ((b >>> 23) & 0xff) - 127 + 15;
  if (e <= 0) return sign;
  let m = b & 0x7fffff;
  let h = (e << 10) | (m >>> 13);
  m &= 0x1fff;
  if (m > 0x1000 || (m === 0x1000 && (h & 1))) h++;
  return sign | h;
}

/**
 * Writes config.json and model.safetensors for `config` into `dir`, random values: weights uniform in
 * ±1/√in (so activations keep their scale through the layers), norms around 1, biases small.
 * Returns the bytes of tensor data written.
 */
export function writeRandomCheckpoint(dir, config, { dtype = 'F32', seed = 1 } = {}) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, torch_dtype: { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[dtype] }, null, 2));
  const list = tensorList(config);
  const header = {};
  let offset = 0;
  for (const [name, shape] of list) {
    const bytes = shape.reduce((a, b) => a * b, 1) * BYTES[dtype];
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const fd = openSync(join(dir, 'model.safetensors'), 'w');
  try {
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(json.length));
    writeSync(fd, prefix);
    writeSync(fd, Buffer.from(json, 'latin1'));
    const rand = seededRandom(seed);
    const chunk = 1 << 20;
    for (const [name, shape] of list) {
      const n = shape.reduce((a, b) => a * b, 1);
      const value = name.endsWith('norm.weight') ? () => 1 + (rand() - 0.5) * 0.2
        : name.endsWith('.bias') ? () => (rand() - 0.5) * 0.1
        : ((s) => () => (2 * rand() - 1) * s)(1 / Math.sqrt(shape[shape.length - 1]));
      for (let at = 0; at < n; at += chunk) {
        const m = Math.min(chunk, n - at);
        let buf;
        if (dtype === 'F32') {
          const a = new Float32Array(m);
          for (let i = 0; i < m; i++) a[i] = value();
          buf = new Uint8Array(a.buffer);
        } else {
          const a = new Uint16Array(m);
          const convert = dtype === 'BF16' ? toBF16 : toF16;
          for (let i = 0; i < m; i++) a[i] = convert(value());
          buf = new Uint8Array(a.buffer);
        }
        writeSync(fd, buf);
      }
    }
  } finally {
    closeSync(fd);
  }
  return offset;
}

/**
 * writeRandomCheckpoint into `dir` unless a complete one is there: written into a folder of its own
 * and renamed into place when complete, so that an interrupted write leaves nothing a later run would
 * take for whole. Returns whether it wrote.
 */
export function writeRandomCheckpointOnce(dir, config, options) {
  if (existsSync(join(dir, 'model.safetensors'))) return false;
  const partial = `${dir}.partial-${process.pid}`;
  writeRandomCheckpoint(partial, config, options);
  rmSync(dir, { recursive: true, force: true });
  renameSync(partial, dir);
  return true;
}

/**
 * Opens a float32 checkpoint that writeRandomCheckpoint wrote (config.json and one model.safetensors):
 * `config`, `tensors` (name -> shape) and `read(name)`, one tensor's values as a new Float32Array. The
 * GGUF and ONNX writers read the weights from here, so every format holds the same values.
 */
export function readRandomCheckpoint(dir) {
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const fd = openSync(join(dir, 'model.safetensors'), 'r');
  const prefix = Buffer.alloc(8);
  readSync(fd, prefix, 0, 8, 0);
  const length = Number(prefix.readBigUInt64LE(0));
  const json = Buffer.alloc(length);
  readSync(fd, json, 0, length, 8);
  const header = JSON.parse(json.toString('latin1'));
  const tensors = new Map();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (t.dtype !== 'F32') throw new Error(`${dir}: tensor ${name} is ${t.dtype}; the writers read float32 checkpoints`);
    tensors.set(name, { shape: t.shape, begin: 8 + length + t.data_offsets[0], bytes: t.data_offsets[1] - t.data_offsets[0] });
  }
  return {
    config,
    tensors: new Map([...tensors].map(([name, t]) => [name, t.shape])),
    read(name) {
      const t = tensors.get(name);
      if (t === undefined) throw new Error(`${dir}: no tensor ${name}`);
      const out = new Float32Array(t.bytes / 4);
      const bytes = new Uint8Array(out.buffer);
      for (let done = 0; done < t.bytes;) {
        const n = readSync(fd, bytes, done, Math.min(t.bytes - done, 1 << 30), t.begin + done);
        if (n === 0) throw new Error(`${dir}: model.safetensors ends inside tensor ${name}`);
        done += n;
      }
      return out;
    },
    close: () => closeSync(fd),
  };
}
