// The GGUF reader (llama.cpp's single-file format, https://github.com/ggml-org/ggml/blob/master/docs/gguf.md).
// A file is laid out as
//
//   "GGUF"  version: u32 (2 or 3)  tensor count: u64  metadata count: u64
//   metadata:  key: string, value type: u32, value            (string = u64 length + UTF-8 bytes;
//              types u8 i8 u16 i16 u32 i32 f32 bool string array u64 i64 f64; array = element type: u32,
//              count: u64, elements)
//   tensor infos:  name: string, n_dims: u32, dims: u64 × n_dims (innermost first), type: u32, offset: u64
//   padding to `general.alignment` (default 32)
//   data: each tensor at data start + its offset (a multiple of the alignment)
//
// Opening reads the header (metadata and tensor infos, nothing else; a tokenizer's vocabulary can make it
// megabytes, so it is read in growing pieces) and checks everything a later read relies on. The rest of
// qkv speaks Hugging Face, so the checkpoint this returns looks like a safetensors one:
//   - `config` is a config.json synthesized from the metadata (`{arch}.embedding_length` -> hidden_size, …,
//     see ARCHITECTURE_NAMES and ggufConfig below);
//   - `tensors` are named as transformers names them (blk.N.attn_q.weight -> model.layers.N.self_attn.q_proj.weight,
//     see tensorName), their shapes in Hugging Face's order ([out, in]: GGUF lists dims innermost first);
//   - `read` gives float32 from F32, F16, BF16, Q8_0 and Q4_0 (dequantized), with what llama.cpp's
//     converter (convert_hf_to_gguf.py) did to the values undone: for `llama` it permuted the rows of the
//     q and k projections (LlamaModel.permute: each head's rotary pairs interleaved, for GGML's normal
//     rope; NEOX-rope architectures, qwen2, qwen3, gemma2, gemma3 and phi3, are written as they are), and
//     for Gemma 2 and 3 it stored every RMSNorm weight as 1 + w (qkv's loader adds the 1 itself);
//   - `readGroups` gives a Q8_0 or Q4_0 tensor as it is stored, as createLinear's int8/int4 groups of
//     32 (q and the scales widened from binary16; llama's permutation undone on both), which the loader
//     keeps without requantizing; `readBlocks` gives its raw blocks.
import { type Checkpoint, type CheckpointFile, type CheckpointFolder, type CheckpointGroups, type CheckpointTensor, type OpenCheckpointOptions, type ReadTarget, targetView, viewOf } from './checkpointTypes.js';
import { convert } from './safetensors.js';

/** GGML tensor types read, by their number in the file: bytes per block of `block` elements. */
const GGML_TYPES = {
  0: { name: 'F32', block: 1, bytes: 4 },
  1: { name: 'F16', block: 1, bytes: 2 },
  2: { name: 'Q4_0', block: 32, bytes: 18 }, // f16 scale + 16 bytes of nibbles
  8: { name: 'Q8_0', block: 32, bytes: 34 }, // f16 scale + 32 int8
  30: { name: 'BF16', block: 1, bytes: 2 },
} as const;
type GgmlType = (typeof GGML_TYPES)[keyof typeof GGML_TYPES];
type GgufDtype = GgmlType['name'];
const SUPPORTED_TYPES = Object.values(GGML_TYPES).map((t) => t.name).join(', ');

/** The names of the other GGML types, for messages (ggml.h's enum ggml_type). */
const OTHER_TYPES: Record<number, string> = {
  3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 9: 'Q8_1', 10: 'Q2_K', 11: 'Q3_K', 12: 'Q4_K', 13: 'Q5_K', 14: 'Q6_K', 15: 'Q8_K',
  16: 'IQ2_XXS', 17: 'IQ2_XS', 18: 'IQ3_XXS', 19: 'IQ1_S', 20: 'IQ4_NL', 21: 'IQ3_S', 22: 'IQ2_S', 23: 'IQ4_XS',
  24: 'I8', 25: 'I16', 26: 'I32', 27: 'I64', 28: 'F64', 29: 'IQ1_M', 34: 'TQ1_0', 35: 'TQ2_0', 39: 'MXFP4',
};

/** `general.architecture` -> the Hugging Face class qkv runs it as (llama with a sliding window: Mistral). */
export const ARCHITECTURE_NAMES: Readonly<Record<string, string>> = {
  llama: 'LlamaForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
  gemma2: 'Gemma2ForCausalLM',
  gemma3: 'Gemma3ForCausalLM',
  phi3: 'Phi3ForCausalLM',
};

const MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const DEFAULT_ALIGNMENT = 32;
const MAX_DIMS = 4; // GGML_MAX_DIMS

/** A metadata value: numbers (u64/i64 beyond 2^53 stay bigints), booleans, strings, arrays of them. */
export type GgufValue = number | bigint | boolean | string | GgufValue[];

/** One tensor as the GGUF header gives it, with what reading it must undo. */
interface GgufTensor extends CheckpointTensor<GgufDtype> {
  /** Its name in the file. */
  readonly ggufName: string;
  readonly type: GgmlType;
  /** Undo llama.cpp's q/k row permutation over this many heads (0: none). */
  readonly unpermuteHeads: number;
  /** Subtract this from every value (Gemma's norms stored as 1 + w). */
  readonly minus: number;
}

/**
 * Opens the GGUF file `name` of `folder`: reads and validates its header, synthesizes a config.json
 * from the metadata and names the tensors as transformers does. A malformed file is an Error naming the
 * file and, where it applies, the tensor. The folder's other files are the checkpoint's text() (a
 * tokenizer.json beside the .gguf).
 */
export async function openGguf(folder: CheckpointFolder, name: string, options: OpenCheckpointOptions): Promise<Checkpoint> {
  const { signal } = options;
  signal?.throwIfAborted();
  const file = await folder.open(name, signal);
  if (file === null) throw new Error(`qkv: ${name}: no such file in ${folder.where}`);
  try {
    const header = await readGgufHeader(file, signal);
    const { config, tensors } = await interpret(file, header, signal);
    return new GgufCheckpoint(config, tensors, folder, file, options);
  } catch (error) {
    await file.close();
    throw error;
  }
}

/** A GGUF header as it is in the file: its version, metadata, tensor infos and where the data starts. */
export interface GgufHeader {
  readonly version: number;
  readonly metadata: ReadonlyMap<string, GgufValue>;
  readonly tensors: readonly { name: string; dims: number[]; type: number; offset: number }[];
  readonly alignment: number;
  /** Where the data section starts, from the file's start. */
  readonly dataStart: number;
}

// ---------------------------------------------------------------------------------------------------
// The header

const FIRST_READ = 1 << 16;
const MAX_READ = 16 << 20;

/** Reads a file's header at a moving position, from a buffer refilled in growing pieces. */
class Cursor {
  pos = 0;
  #buf: Uint8Array = new Uint8Array(0);
  #view: DataView = new DataView(this.#buf.buffer);
  #start = 0; // the file offset of #buf[0]
  #piece = FIRST_READ;
  #decoder = new TextDecoder('utf-8');
  constructor(
    readonly file: CheckpointFile,
    readonly signal: AbortSignal | undefined,
  ) {}

  /** What is being read, for a truncation message. */
  what = 'the header';

  /** True when the next n bytes are in the buffer. */
  has(n: number): boolean {
    return this.pos + n <= this.#start + this.#buf.length;
  }

  /** Makes the next n bytes available, or throws naming where the file ends. */
  async need(n: number): Promise<void> {
    if (this.has(n)) return;
    this.signal?.throwIfAborted();
    const size = this.file.size;
    if (size !== undefined && this.pos + n > size) throw this.#short(size);
    const length = Math.max(n, this.#piece);
    this.#piece = Math.min(this.#piece * 2, MAX_READ);
    const bytes = await this.file.read(this.pos, this.pos + length, this.signal);
    if (bytes.length < n) throw this.#short(this.pos + bytes.length);
    this.#buf = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#start = this.pos;
  }

  #short(end: number): Error {
    return new Error(`qkv: ${this.file.name}: the file ends at byte ${end}, inside ${this.what}; was it truncated?`);
  }

  // readers of what has(n) / need(n) made available
  u8(): number {
    return this.#view.getUint8(this.#take(1));
  }
  u32(): number {
    return this.#view.getUint32(this.#take(4), true);
  }
  u64(): number | bigint {
    const v = this.#view.getBigUint64(this.#take(8), true);
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  scalar(type: number): GgufValue {
    const at = this.#take(SCALAR_BYTES[type]);
    const v = this.#view;
    switch (type) {
      case 0: return v.getUint8(at);
      case 1: return v.getInt8(at);
      case 2: return v.getUint16(at, true);
      case 3: return v.getInt16(at, true);
      case 4: return v.getUint32(at, true);
      case 5: return v.getInt32(at, true);
      case 6: return v.getFloat32(at, true);
      case 7: return v.getUint8(at) !== 0;
      case 10: return small(v.getBigUint64(at, true));
      case 11: return small(v.getBigInt64(at, true));
      default: return v.getFloat64(at, true);
    }
  }
  text(n: number): string {
    const at = this.#take(n);
    return this.#decoder.decode(this.#buf.subarray(at, at + n));
  }
  #take(n: number): number {
    const at = this.pos - this.#start;
    this.pos += n;
    return at;
  }
}

/** Bytes of the scalar value types (8: string and 9: array have their own layout). */
const SCALAR_BYTES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
const STRING = 8, ARRAY = 9;

const small = (v: bigint): number | bigint => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);

/** A count (u64) that must fit what is left of the file, each item taking at least `min` bytes. */
async function count(c: Cursor, what: string, min: number): Promise<number> {
  await c.need(8);
  const n = c.u64();
  const size = c.file.size;
  const room = size === undefined ? Number.MAX_SAFE_INTEGER : Math.floor((size - c.pos) / min);
  if (typeof n !== 'number' || n > room) {
    throw new Error(`qkv: ${c.file.name}: ${what} ${n} cannot fit in the ${size === undefined ? '' : `${size - c.pos} `}bytes left of the file; is it a GGUF file?`);
  }
  return n;
}

async function readString(c: Cursor, what: string): Promise<string> {
  const n = await count(c, `${what}: string length`, 1);
  await c.need(n);
  return c.text(n);
}

async function readValue(c: Cursor, type: number, what: string): Promise<GgufValue> {
  if (type === STRING) return readString(c, what);
  if (type === ARRAY) {
    await c.need(4);
    const elementType = c.u32();
    checkValueType(c, elementType, `${what}: array element`);
    const n = await count(c, `${what}: array length`, SCALAR_BYTES[elementType] ?? 8);
    const out: GgufValue[] = new Array(n);
    const size = SCALAR_BYTES[elementType];
    for (let i = 0; i < n; i++) {
      if (size !== undefined) {
        if (!c.has(size)) await c.need(size);
        out[i] = c.scalar(elementType);
      } else if (elementType === STRING) {
        // strings one after another (a vocabulary): read in place while the buffer holds them
        if (!c.has(8)) await c.need(8);
        const length = c.u64();
        if (typeof length !== 'number' || (c.file.size !== undefined && c.pos + length > c.file.size)) {
          throw new Error(`qkv: ${c.file.name}: ${what}[${i}]: string length ${length} runs past the end of the file`);
        }
        if (!c.has(length)) await c.need(length);
        out[i] = c.text(length);
      } else {
        out[i] = await readValue(c, elementType, `${what}[${i}]`);
      }
    }
    return out;
  }
  await c.need(SCALAR_BYTES[type]);
  return c.scalar(type);
}

function checkValueType(c: Cursor, type: number, what: string): void {
  if (type !== STRING && type !== ARRAY && SCALAR_BYTES[type] === undefined) {
    throw new Error(`qkv: ${c.file.name}: ${what}: value type ${type} is not a GGUF value type (0 to 12)`);
  }
}

/** Reads and validates a GGUF file's header (magic, version 2 or 3, metadata, tensor infos). */
export async function readGgufHeader(file: CheckpointFile, signal?: AbortSignal): Promise<GgufHeader> {
  const c = new Cursor(file, signal);
  const fail = (message: string) => new Error(`qkv: ${file.name}: ${message}`);
  signal?.throwIfAborted();
  const first = await file.read(0, 8, signal);
  if (first.length < 8) throw fail(`the file is ${first.length} bytes long, too short for a GGUF header (magic "GGUF" and a version)`);
  const head = new DataView(first.buffer, first.byteOffset, 8);
  if (head.getUint32(0, true) !== MAGIC) {
    const shown = Array.from(first.subarray(0, 4), (b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
    throw fail(`not a GGUF file: it starts with "${shown}", not "GGUF"`);
  }
  const version = head.getUint32(4, true);
  if (version !== 2 && version !== 3) {
    if (head.getUint32(4, false) === 2 || head.getUint32(4, false) === 3) throw fail('a big-endian GGUF file; qkv reads little-endian GGUF only');
    throw fail(`GGUF version ${version} is not supported (qkv reads versions 2 and 3)`);
  }
  c.pos = 8;
  c.what = 'the header (tensor and metadata counts)';
  const tensorCount = await count(c, 'tensor count', 24);
  const kvCount = await count(c, 'metadata count', 13);
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < kvCount; i++) {
    c.what = `metadata entry ${i} of ${kvCount}`;
    const key = await readString(c, `metadata entry ${i}: key`);
    c.what = `metadata "${key}"`;
    await c.need(4);
    const type = c.u32();
    checkValueType(c, type, `metadata "${key}"`);
    const value = await readValue(c, type, `metadata "${key}"`);
    if (metadata.has(key)) throw fail(`metadata "${key}" appears twice`);
    metadata.set(key, value);
  }
  const alignmentValue = metadata.get('general.alignment') ?? DEFAULT_ALIGNMENT;
  if (typeof alignmentValue !== 'number' || !Number.isInteger(alignmentValue) || alignmentValue < 1 || (alignmentValue & (alignmentValue - 1)) !== 0) {
    throw fail(`general.alignment ${JSON.stringify(String(alignmentValue))} is not a power of two`);
  }
  const alignment = alignmentValue;
  const tensors: GgufHeader['tensors'][number][] = [];
  const seen = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    c.what = `tensor info ${i} of ${tensorCount}`;
    const name = await readString(c, `tensor info ${i}: name`);
    c.what = `the info of tensor "${name}"`;
    const bad = (message: string) => fail(`tensor "${name}": ${message}`);
    if (seen.has(name)) throw bad('appears twice');
    seen.add(name);
    await c.need(4);
    const nDims = c.u32();
    if (nDims < 1 || nDims > MAX_DIMS) throw bad(`${nDims} dimensions (GGUF tensors have 1 to ${MAX_DIMS})`);
    await c.need(8 * nDims + 12);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const n = c.u64();
      if (typeof n !== 'number') throw bad(`dimension ${n} is absurd`);
      dims.push(n);
    }
    const type = c.u32();
    const offset = c.u64();
    if (typeof offset !== 'number') throw bad(`offset ${offset} is absurd`);
    tensors.push({ name, dims, type, offset });
  }
  const dataStart = Math.ceil(c.pos / alignment) * alignment;
  return { version, metadata, tensors, alignment, dataStart };
}

// ---------------------------------------------------------------------------------------------------
// GGUF -> Hugging Face: tensor names, config, what to undo

/** A GGUF tensor's Hugging Face name (llama.cpp's gguf-py tensor_mapping.py, read backwards); null: none. */
function tensorName(gguf: string, arch: string): string | null {
  const top: Record<string, string> = { token_embd: 'model.embed_tokens', output_norm: 'model.norm', output: 'lm_head' };
  const m = /^(?:blk\.(\d+)\.)?([a-z_0-9]+)\.(weight|bias)$/.exec(gguf);
  if (m === null) return null;
  const [, layer, part, kind] = m;
  if (layer === undefined) return part in top ? `${top[part]}.${kind}` : null;
  const gemma = arch === 'gemma2' || arch === 'gemma3';
  const parts: Record<string, string> = {
    attn_norm: 'input_layernorm',
    attn_q: 'self_attn.q_proj', attn_k: 'self_attn.k_proj', attn_v: 'self_attn.v_proj', attn_output: 'self_attn.o_proj',
    attn_qkv: 'self_attn.qkv_proj', // Phi-3's fused projection
    attn_q_norm: 'self_attn.q_norm', attn_k_norm: 'self_attn.k_norm',
    // Gemma 2 and 3: ffn_norm is the MLP's input norm beside post-attention and post-MLP norms; elsewhere
    // ffn_norm is transformers' post_attention_layernorm (which feeds the MLP)
    ffn_norm: gemma ? 'pre_feedforward_layernorm' : 'post_attention_layernorm',
    post_attention_norm: 'post_attention_layernorm', post_ffw_norm: 'post_feedforward_layernorm',
    ffn_gate: 'mlp.gate_proj', ffn_up: arch === 'phi3' ? 'mlp.gate_up_proj' : 'mlp.up_proj', ffn_down: 'mlp.down_proj',
  };
  return part in parts ? `model.layers.${layer}.${parts[part]}.${kind}` : null;
}

type Meta = ReadonlyMap<string, GgufValue>;

async function interpret(file: CheckpointFile, header: GgufHeader, signal: AbortSignal | undefined): Promise<{ config: Record<string, unknown>; tensors: Map<string, GgufTensor> }> {
  const fail = (message: string) => new Error(`qkv: ${file.name}: ${message}`);
  const meta = header.metadata;
  const arch = meta.get('general.architecture');
  if (typeof arch !== 'string') throw fail('has no general.architecture (a string naming the model, e.g. "llama")');
  const k = (key: string) => meta.get(`${arch}.${key}`);
  const headCount = perLayer(meta, `${arch}.attention.head_count`, file.name);
  const kvHeadCount = perLayer(meta, `${arch}.attention.head_count_kv`, file.name) ?? headCount;

  const tensors = new Map<string, GgufTensor>();
  const byOffset: { name: string; offset: number; end: number }[] = [];
  const raw = new Map<string, GgufHeader['tensors'][number]>(); // tensors kept under no HF name (rope_freqs, …)
  for (const t of header.tensors) {
    const bad = (message: string) => fail(`tensor "${t.name}": ${message}`);
    const type = (GGML_TYPES as Record<number, GgmlType>)[t.type];
    if (type === undefined) {
      const typeName = OTHER_TYPES[t.type] === undefined ? `type ${t.type}` : `type ${OTHER_TYPES[t.type]} (${t.type})`;
      throw bad(`${typeName} is not supported (supported: ${SUPPORTED_TYPES}); requantize the model to Q8_0 or Q4_0 (llama-quantize) or convert it again`);
    }
    const elements = t.dims.reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(elements)) throw bad(`dims [${t.dims.join(', ')}] are absurd`);
    if (t.dims[0] % type.block !== 0) throw bad(`${type.name} stores rows in blocks of ${type.block}, but its rows have ${t.dims[0]} elements`);
    if (t.offset % header.alignment !== 0) throw bad(`offset ${t.offset} is not a multiple of the alignment ${header.alignment}`);
    const byteLength = (elements / type.block) * type.bytes;
    const offset = header.dataStart + t.offset;
    if (file.size !== undefined && offset + byteLength > file.size) {
      throw bad(`its data [${offset}, ${offset + byteLength}) runs past the end of the file (${file.size} bytes); was it truncated?`);
    }
    byOffset.push({ name: t.name, offset, end: offset + byteLength });
    const hf = tensorName(t.name, arch);
    if (hf === null) raw.set(t.name, t);
    const name = hf ?? t.name;
    const attn = /^model\.layers\.\d+\.self_attn\.([qk])_proj\./.exec(name);
    const unpermuteHeads = arch === 'llama' && attn !== null ? (attn[1] === 'q' ? headCount : kvHeadCount) ?? 0 : 0;
    const minus = (arch === 'gemma2' || arch === 'gemma3') && name.endsWith('norm.weight') ? 1 : 0;
    const shape = Object.freeze([...t.dims].reverse());
    if (unpermuteHeads > 0 && shape[0] % (2 * unpermuteHeads) !== 0) throw bad(`its ${shape[0]} rows do not split into ${unpermuteHeads} heads of rotary pairs`);
    tensors.set(name, { name, dtype: type.name, shape, file: file.name, offset, byteLength, ggufName: t.name, type, unpermuteHeads, minus });
  }
  byOffset.sort((a, b) => a.offset - b.offset || a.end - b.end);
  for (let i = 1; i < byOffset.length; i++) {
    const a = byOffset[i - 1], b = byOffset[i];
    if (b.offset < a.end) throw fail(`tensor "${b.name}": its data [${b.offset}, ${b.end}) overlaps that of tensor "${a.name}" [${a.offset}, ${a.end})`);
  }

  const config: Record<string, unknown> = { model_type: arch, gguf_architecture: arch };
  const className = ARCHITECTURE_NAMES[arch];
  // an architecture qkv does not run keeps its GGUF name: config.ts's TypeError then lists what it runs
  config.architectures = [className ?? `${arch} (GGUF general.architecture)`];
  if (className === undefined) return { config, tensors };
  const set = (hfKey: string, value: GgufValue | undefined) => {
    if (value !== undefined) config[hfKey] = typeof value === 'bigint' ? Number(value) : value;
  };
  set('hidden_size', k('embedding_length'));
  set('num_hidden_layers', k('block_count'));
  set('intermediate_size', k('feed_forward_length'));
  set('num_attention_heads', headCount);
  set('num_key_value_heads', kvHeadCount);
  set('rms_norm_eps', k('attention.layer_norm_rms_epsilon'));
  set('rope_theta', k('rope.freq_base'));
  set('max_position_embeddings', k('context_length'));
  set('head_dim', k('attention.key_length'));
  const hidden = num(k('embedding_length')), heads = headCount ?? NaN;
  const headDim = num(k('attention.key_length')) ?? (hidden !== undefined ? hidden / heads : NaN);
  // rope.dimension_count: the rotated features of each head (Phi-3's partial rotary)
  const ropeDim = num(k('rope.dimension_count'));
  if (ropeDim !== undefined && Number.isFinite(headDim) && ropeDim !== headDim) config.partial_rotary_factor = ropeDim / headDim;
  const embed = tensors.get('model.embed_tokens.weight');
  const tokens = meta.get('tokenizer.ggml.tokens');
  config.vocab_size = embed?.shape[0] ?? (Array.isArray(tokens) ? tokens.length : undefined);
  config.tie_word_embeddings = !tensors.has('lm_head.weight');
  set('bos_token_id', meta.get('tokenizer.ggml.bos_token_id'));
  // the end-of-generation tokens llama.cpp stops at: eos, and eot (a chat turn's end) when there is one
  const stops = ['tokenizer.ggml.eos_token_id', 'tokenizer.ggml.eot_token_id'].map((key) => num(meta.get(key))).filter((x) => x !== undefined);
  if (stops.length > 0) config.eos_token_id = [...new Set(stops)];

  const window = num(k('attention.sliding_window'));
  const layers = num(k('block_count')) ?? 0;
  config.rope_scaling = ropeScaling(meta, arch);
  const ropeFreqs = raw.get('rope_freqs.weight');
  if (ropeFreqs !== undefined) {
    // llama.cpp's rope factors (Llama 3's rope, baked by the converter): each frequency is divided by one
    const factors = await readRaw(file, tensors.get('rope_freqs.weight')!, signal);
    config.rope_scaling = llama3FromFactors(factors, num(k('rope.freq_base')) ?? 10000, 2 * factors.length, num(k('rope.scaling.original_context_length')), file.name);
  }
  if (raw.has('rope_factors_long.weight')) config.rope_scaling = { rope_type: 'longrope' }; // Phi-3 128k: config.ts refuses it by name

  switch (arch) {
    case 'llama':
      // llama.cpp writes Mistral as llama: a sliding window is all that tells them apart
      if (window !== undefined && window > 0) {
        config.architectures = ['MistralForCausalLM'];
        config.sliding_window = window;
      }
      break;
    case 'qwen2':
    case 'qwen3':
      config.use_sliding_window = false; // llama.cpp runs Qwen 2 and 3 with full attention
      break;
    case 'phi3':
      if (window !== undefined && window > 0) config.sliding_window = window;
      break;
    case 'gemma2':
    case 'gemma3': {
      set('attn_logit_softcapping', arch === 'gemma2' ? k('attn_logit_softcapping') : undefined);
      set('final_logit_softcapping', k('final_logit_softcapping'));
      // GGUF has no query_pre_attn_scalar: llama.cpp scales by 1/√head_dim, by 1/√(hidden/heads) for the
      // 27B models (46 layers for Gemma 2, 62 for Gemma 3); an `{arch}.attention.scale` overrides both
      const scale = num(k('attention.scale'));
      const big = layers === (arch === 'gemma2' ? 46 : 62);
      config.query_pre_attn_scalar = scale !== undefined ? scale ** -2 : big && hidden !== undefined ? hidden / heads : headDim;
      // which layers slide: Gemma 2 alternates (even layers), Gemma 3 has all but every 6th, or the
      // metadata's sliding_window_pattern (a period, or a flag per layer); none without a window
      const pattern = k('attention.sliding_window_pattern');
      const slides = (i: number) =>
        window === undefined || window <= 0 ? false
        : Array.isArray(pattern) ? pattern[i] === true
        : arch === 'gemma2' ? i % 2 === 0
        : (i + 1) % (num(pattern) ?? 6) !== 0;
      config.layer_types = Array.from({ length: layers }, (_, i) => (slides(i) ? 'sliding_attention' : 'full_attention'));
      if (window !== undefined && window > 0) config.sliding_window = window;
      if (arch === 'gemma3') config.rope_local_base_freq = num(k('rope.freq_base_swa')) ?? 10000; // llama.cpp's default for Gemma 3's local layers
      break;
    }
  }
  return { config, tensors };
}

const num = (v: GgufValue | undefined): number | undefined => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined);

/** A per-model count that GGUF may give per layer (an array): all layers must agree. */
function perLayer(meta: Meta, key: string, file: string): number | undefined {
  const v = meta.get(key);
  if (!Array.isArray(v)) return num(v);
  const values = new Set(v.map((x) => num(x)));
  if (values.size !== 1) throw new Error(`qkv: ${file}: ${key} differs between layers (${[...values].join(', ')}); qkv runs models whose layers agree`);
  return [...values][0];
}

/** `{arch}.rope.scaling.type` and its factor (or the older `{arch}.rope.scale_linear`) as transformers' rope_scaling. */
function ropeScaling(meta: Meta, arch: string): Record<string, unknown> | null {
  const type = meta.get(`${arch}.rope.scaling.type`);
  const factor = num(meta.get(`${arch}.rope.scaling.factor`));
  if (typeof type === 'string' && type !== 'none') {
    const scaling: Record<string, unknown> = { rope_type: type, factor };
    const original = num(meta.get(`${arch}.rope.scaling.original_context_length`));
    if (original !== undefined) scaling.original_max_position_embeddings = original;
    return scaling;
  }
  const linear = num(meta.get(`${arch}.rope.scale_linear`));
  if (linear !== undefined && linear !== 1) return { rope_type: 'linear', factor: linear };
  return null;
}

/**
 * transformers' llama3 rope parameters that give llama.cpp's rope factors: the converter computes, for
 * each rotary frequency of wavelength w, a divisor f = 1 (w < old/high), factor (w > old/low), or
 * 1 / ((1 - s)/factor + s) with s = (old/w - low)/(high - low) between. s is linear in 1/w, so the
 * frequencies between fix the line; only its values at these wavelengths matter, so any line through
 * them that keeps the unscaled and fully scaled frequencies on their sides gives the same rope.
 */
export function llama3FromFactors(factors: Float32Array, theta: number, dim: number, original: number | undefined, file: string): Record<string, unknown> | null {
  const bad = () => new Error(`qkv: ${file}: tensor "rope_freqs.weight": its factors [${Array.from(factors).join(', ')}] are not Llama 3's rope scaling (1, then rising to one factor)`);
  const factor = Math.max(...factors);
  if (!(factor > 0) || !Number.isFinite(factor) || factors.some((f) => !(f > 0))) throw bad();
  if (factors.every((f) => f === factor)) return factor === 1 ? null : { rope_type: 'linear', factor };
  const tol = 1e-6;
  // u = 1/wavelength, falling with i; s = 1 unscaled, 0 fully scaled
  const points = Array.from(factors, (f, i) => ({ u: 1 / ((2 * Math.PI) / theta ** ((-2 * i) / dim)), s: (1 / f - 1 / factor) / (1 - 1 / factor) }));
  const kept = points.filter((p) => p.s >= 1 - tol), scaled = points.filter((p) => p.s <= tol), between = points.filter((p) => p.s > tol && p.s < 1 - tol);
  if (points.some((p) => p.s > 1 + tol)) throw bad();
  const keptU = Math.min(...kept.map((p) => p.u)), scaledU = Math.max(...scaled.map((p) => p.u)); // ±Infinity when none
  let a: number, b: number; // s = a·u - b
  if (between.length >= 2) {
    const p = between[0], q = between[between.length - 1];
    a = (p.s - q.s) / (p.u - q.u);
    b = a * p.u - p.s;
    if (!(a > 0) || between.some((x) => Math.abs(a * x.u - b - x.s) > 1e-4)) throw bad();
  } else if (between.length === 1) {
    const p = between[0];
    // steep enough to reach 1 before the next unscaled frequency and 0 after the next scaled one
    a = 2 * Math.max(p.s / p.u, Number.isFinite(keptU) ? (1 - p.s) / (keptU - p.u) : 0, Number.isFinite(scaledU) ? p.s / (p.u - scaledU) : 0);
    b = a * p.u - p.s;
  } else {
    // a step between the lowest unscaled and the highest scaled frequency
    const lo = scaledU + (keptU - scaledU) / 3, hi = scaledU + (2 * (keptU - scaledU)) / 3;
    a = 1 / (hi - lo);
    b = a * lo;
  }
  if (!(a > 0) || !(b > 0) || kept.some((p) => a * p.u - b < 1 - tol) || scaled.some((p) => a * p.u - b > tol)) throw bad();
  // a = old/(high - low), b = low/(high - low): one degree of freedom left, the scale; fix it by `original`
  const span = original !== undefined && original > 0 ? original / a : 1;
  return { rope_type: 'llama3', factor, low_freq_factor: b * span, high_freq_factor: (b + 1) * span, original_max_position_embeddings: a * span };
}

// ---------------------------------------------------------------------------------------------------
// Reading

/** One tensor in float32 as stored, nothing undone (rope factors, read at open). */
async function readRaw(file: CheckpointFile, t: GgufTensor, signal: AbortSignal | undefined): Promise<Float32Array> {
  const out = new Float32Array(t.byteLength / t.type.bytes * t.type.block);
  await readInto(file, t, out, signal);
  return out;
}

/**
 * Reads tensor `t` of `file` in pieces of at most file.chunkBytes rounded down to whole blocks, giving
 * each piece to `each` with the index of its first element. `check` runs before each piece.
 */
async function readPieces(file: CheckpointFile, t: GgufTensor, signal: AbortSignal | undefined, check: (() => void) | undefined, each: (piece: Uint8Array, at: number) => void): Promise<void> {
  const { bytes: unit, block } = t.type;
  const total = t.byteLength;
  const chunk = Number.isFinite(file.chunkBytes) ? Math.max(unit, file.chunkBytes - (file.chunkBytes % unit)) : total;
  const scratch = file.fillsInto === true ? new Uint8Array(Math.min(chunk, total)) : undefined;
  for (let done = 0; done < total; done += chunk) {
    check?.();
    signal?.throwIfAborted();
    const length = Math.min(chunk, total - done);
    const begin = t.offset + done;
    const bytes = await file.read(begin, begin + length, signal, scratch);
    if (bytes.length < length) {
      throw new Error(`qkv: ${file.name}: tensor "${t.ggufName}": the file ends at byte ${begin + bytes.length}, before the tensor's data does (byte ${t.offset + total}); was it truncated?`);
    }
    each(bytes.length === length ? bytes : bytes.subarray(0, length), (done / unit) * block);
  }
}

/**
 * Reads tensor `t` of `file` into `out` (float32, its element count long), dequantizing Q8_0 and
 * Q4_0 (a block whose scale is not finite is an Error: see badBlock). `check` runs before each piece.
 */
async function readInto(file: CheckpointFile, t: GgufTensor, target: ReadTarget, signal: AbortSignal | undefined, check?: () => void): Promise<void> {
  await readPieces(file, t, signal, check, (piece, at) => {
    // the target's view of the moment (an engine tensor's moves when the engine's memory grows)
    const out = viewOf(target);
    if (t.dtype !== 'Q8_0' && t.dtype !== 'Q4_0') return convert(t.dtype, piece, out, at);
    const bad = checkScales(piece, t.type.bytes);
    if (bad >= 0) throw badBlock(file, t, piece, at, bad);
    (t.dtype === 'Q8_0' ? dequantizeQ8_0 : dequantizeQ4_0)(piece, out, at);
  });
}

/** The index of the first block of `bytes` (blocks of `size` bytes, each starting with its binary16 scale) whose scale is not finite, or -1. */
function checkScales(bytes: Uint8Array, size: number): number {
  for (let o = 0, b = 0; o < bytes.length; o += size, b++) if ((bytes[o + 1] & 0x7c) === 0x7c) return b; // exponent all ones: Infinity or NaN
  return -1;
}

/**
 * The Error for block `bad` of a piece of tensor `t` (whose first element is `at`) that no quantizer
 * writes and createLinear's int8/int4 storage cannot hold: a scale that is not finite, or (Q8_0) a
 * value of -128, outside int8's [-127, 127].
 */
function badBlock(file: CheckpointFile, t: GgufTensor, piece: Uint8Array, at: number, bad: number): Error {
  const block = at / 32 + bad, perRow = t.shape[t.shape.length - 1] / 32, o = bad * t.type.bytes;
  const bits = piece[o] | (piece[o + 1] << 8);
  const d = halves()[bits];
  const why = Number.isFinite(d) ? "holds -128, outside int8's [-127, 127] (llama.cpp's Q8_0 quantizer never writes it)" : `has scale ${d} (binary16 0x${bits.toString(16).padStart(4, '0')}); a block's scale must be finite`;
  return new Error(`qkv: ${file.name}: tensor "${t.ggufName}": ${t.dtype} block ${block} (row ${Math.floor(block / perRow)}, values ${(block % perRow) * 32} to ${(block % perRow) * 32 + 31}) ${why}`);
}

let halfTable: Float32Array | null = null;

/** Every binary16 value as a float32 (the block scales). */
function halves(): Float32Array {
  if (halfTable !== null) return halfTable;
  const table = new Float32Array(65536);
  const bytes = new Uint8Array(2 * 65536);
  for (let h = 0; h < 65536; h++) {
    bytes[2 * h] = h & 0xff;
    bytes[2 * h + 1] = h >> 8;
  }
  convert('F16', bytes, table, 0);
  return (halfTable = table);
}

/** Q8_0: blocks of 32 values, each a binary16 scale d and 32 int8 q: value = q · d. */
export function dequantizeQ8_0(bytes: Uint8Array, out: Float32Array, at: number): void {
  const h = halves();
  for (let o = 0, i = at; o < bytes.length; o += 34, i += 32) {
    const d = h[bytes[o] | (bytes[o + 1] << 8)];
    for (let j = 0; j < 32; j++) out[i + j] = ((bytes[o + 2 + j] << 24) >> 24) * d;
  }
}

/**
 * Q4_0: blocks of 32 values, each a binary16 scale d and 16 bytes: byte j's low nibble is value j, its
 * high nibble value j + 16; value = (nibble - 8) · d.
 */
export function dequantizeQ4_0(bytes: Uint8Array, out: Float32Array, at: number): void {
  const h = halves();
  for (let o = 0, i = at; o < bytes.length; o += 18, i += 32) {
    const d = h[bytes[o] | (bytes[o + 1] << 8)];
    for (let j = 0; j < 16; j++) {
      const q = bytes[o + 2 + j];
      out[i + j] = ((q & 0x0f) - 8) * d;
      out[i + j + 16] = ((q >> 4) - 8) * d;
    }
  }
}

/**
 * Q8_0 or Q4_0 blocks as int8/int4 groups of 32, as stored: q (one integer per value: Q8_0's int8, Q4_0's
 * nibble - 8) from element `at` and each block's scale d, widened from binary16, from group `at / 32`.
 * Returns the index of the first block (counted from the piece's start) that createLinear's format cannot
 * hold, a non-finite scale or Q8_0's -128, or -1.
 */
export function blocksToGroups(type: 'Q8_0' | 'Q4_0', bytes: Uint8Array, q: Int8Array, scales: Float32Array, at: number): number {
  const h = halves(), size = type === 'Q8_0' ? 34 : 18;
  for (let o = 0, b = 0, i = at; o < bytes.length; o += size, b++, i += 32) {
    const d = h[bytes[o] | (bytes[o + 1] << 8)];
    if (!Number.isFinite(d)) return b;
    scales[i / 32] = d;
    if (type === 'Q8_0') {
      for (let j = 0; j < 32; j++) {
        const v = (bytes[o + 2 + j] << 24) >> 24;
        if (v === -128) return b;
        q[i + j] = v;
      }
    } else {
      for (let j = 0; j < 16; j++) {
        const v = bytes[o + 2 + j];
        q[i + j] = (v & 0x0f) - 8;
        q[i + j + 16] = (v >> 4) - 8;
      }
    }
  }
  return -1;
}

/**
 * Undoes llama.cpp's LlamaModel.permute on the rows of `data` (rows of `width` items): the converter
 * moved, within each of `heads` heads of D rows, row j·D/2 + i (half j of rotary pair i, Hugging Face's
 * rotate_half layout) to row 2i + j (GGML's interleaved pairs). Works on any array: float32 values, a
 * row's quantized blocks as bytes, or its q values and scales.
 */
export function unpermuteRows<T extends Float32Array | Uint8Array | Int8Array>(data: T, heads: number, width: number): void {
  const rows = data.length / width, D = rows / heads, half = D / 2;
  const head = data.slice(0, D * width) as T;
  for (let h = 0; h < heads; h++) {
    const base = h * D * width;
    head.set(data.subarray(base, base + D * width));
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const from = (2 * i + j) * width, to = base + (j * half + i) * width;
        data.set(head.subarray(from, from + width), to);
      }
    }
  }
}

/** Quantized blocks as the file stores them (Q8_0: 34 bytes per 32 values; Q4_0: 18). */
export interface CheckpointBlocks {
  readonly type: 'Q8_0' | 'Q4_0';
  /** Row after row (rows of the Hugging Face shape's last dimension), each its blocks in order. */
  readonly data: Uint8Array;
}

class GgufCheckpoint implements Checkpoint {
  readonly format = 'gguf';
  readonly totalBytes: number;
  #folder: CheckpointFolder;
  #file: CheckpointFile;
  #options: OpenCheckpointOptions;
  #closed = false;
  #read = new Set<string>();
  #loadedBytes = 0;

  constructor(
    readonly config: Record<string, unknown>,
    readonly tensors: ReadonlyMap<string, GgufTensor>,
    folder: CheckpointFolder,
    file: CheckpointFile,
    options: OpenCheckpointOptions,
  ) {
    this.#folder = folder;
    this.#file = file;
    this.#options = options;
    let total = 0;
    for (const t of tensors.values()) total += t.byteLength;
    this.totalBytes = total;
  }

  #tensor(name: string): GgufTensor {
    this.#check();
    const t = this.tensors.get(name);
    if (t === undefined) throw new Error(`qkv: read: the checkpoint has no tensor "${name}"`);
    return t;
  }

  async read(name: string, into?: ReadTarget): Promise<Float32Array> {
    const t = this.#tensor(name);
    const elements = (t.byteLength / t.type.bytes) * t.type.block;
    const target = into ?? new Float32Array(elements);
    targetView(target, name, t.shape, elements);
    await readInto(this.#file, t, target, this.#options.signal, () => this.#check());
    const out = targetView(target, name, t.shape, elements);
    if (t.unpermuteHeads > 0) unpermuteRows(out, t.unpermuteHeads, t.shape.length > 1 ? t.shape[t.shape.length - 1] : 1);
    if (t.minus !== 0) for (let i = 0; i < out.length; i++) out[i] -= t.minus;
    this.#progress(t);
    return out;
  }

  /**
   * The Q8_0 or Q4_0 blocks of a tensor as stored (rows in Hugging Face's order: llama's q/k permutation
   * undone), for linear layers that keep them without requantizing. Any other dtype is a TypeError.
   */
  async readBlocks(name: string): Promise<CheckpointBlocks> {
    const t = this.#tensor(name);
    if (t.dtype !== 'Q8_0' && t.dtype !== 'Q4_0') throw new TypeError(`qkv: readBlocks: tensor "${name}" is ${t.dtype}, not Q8_0 or Q4_0 blocks; read() it`);
    if (t.minus !== 0) throw new TypeError(`qkv: readBlocks: tensor "${name}" holds 1 + w (Gemma's norm), which blocks cannot give back exactly; read() it`);
    const data = new Uint8Array(t.byteLength);
    const chunk = Number.isFinite(this.#file.chunkBytes) ? Math.max(t.type.bytes, this.#file.chunkBytes - (this.#file.chunkBytes % t.type.bytes)) : t.byteLength;
    for (let done = 0; done < t.byteLength; done += chunk) {
      this.#check();
      const length = Math.min(chunk, t.byteLength - done);
      const begin = t.offset + done;
      const bytes = await this.#file.read(begin, begin + length, this.#options.signal, this.#file.fillsInto === true ? data.subarray(done, done + length) : undefined);
      if (bytes.length < length) throw new Error(`qkv: ${this.#file.name}: tensor "${t.ggufName}": the file ends at byte ${begin + bytes.length}, before the tensor's data does (byte ${t.offset + t.byteLength}); was it truncated?`);
      if (bytes.buffer !== data.buffer || bytes.byteOffset !== data.byteOffset + done) data.set(bytes.subarray(0, length), done);
    }
    if (t.unpermuteHeads > 0) unpermuteRows(data, t.unpermuteHeads, (t.shape[t.shape.length - 1] / t.type.block) * t.type.bytes);
    this.#progress(t);
    return { type: t.dtype, data };
  }

  /**
   * A Q8_0 or Q4_0 tensor as createLinear's int8/int4 groups of 32, as stored (no requantizing): q, one
   * integer per value, and each block's binary16 scale widened to float32, rows in Hugging Face's order
   * (llama's q/k permutation undone on both), into `into` when given. A block whose scale is not finite,
   * or a Q8_0 block holding -128 (outside int8's [-127, 127]; llama.cpp's quantizer never writes it), is
   * an Error naming the file, the tensor and the block. Any other dtype is a TypeError.
   */
  async readGroups(name: string, into?: { q: Int8Array; scales: Float32Array }): Promise<CheckpointGroups> {
    const t = this.#tensor(name);
    if (t.dtype !== 'Q8_0' && t.dtype !== 'Q4_0') throw new TypeError(`qkv: readGroups: tensor "${name}" is ${t.dtype}, not Q8_0 or Q4_0 blocks; read() it`);
    if (t.minus !== 0) throw new TypeError(`qkv: readGroups: tensor "${name}" holds 1 + w (Gemma's norm), which groups cannot give back exactly; read() it`);
    const elements = (t.byteLength / t.type.bytes) * 32;
    if (into !== undefined) {
      if (!(into.q instanceof Int8Array) || !(into.scales instanceof Float32Array)) throw new TypeError(`qkv: readGroups: into must be { q: Int8Array, scales: Float32Array } (tensor "${name}")`);
      if (into.q.length !== elements || into.scales.length !== elements / 32) {
        throw new RangeError(`qkv: readGroups: into holds ${into.q.length} values and ${into.scales.length} scales, but tensor "${name}" of shape [${t.shape.join(', ')}] has ${elements} and ${elements / 32}`);
      }
    }
    const q = into?.q ?? new Int8Array(elements), scales = into?.scales ?? new Float32Array(elements / 32);
    const type = t.dtype, perRow = t.shape[t.shape.length - 1] / 32;
    await readPieces(this.#file, t, this.#options.signal, () => this.#check(), (piece, at) => {
      const bad = blocksToGroups(type, piece, q, scales, at);
      if (bad >= 0) throw badBlock(this.#file, t, piece, at, bad);
    });
    if (t.unpermuteHeads > 0) {
      unpermuteRows(q, t.unpermuteHeads, perRow * 32);
      unpermuteRows(scales, t.unpermuteHeads, perRow);
    }
    this.#progress(t);
    return { dtype: type === 'Q8_0' ? 'int8' : 'int4', q, scales };
  }

  #progress(t: GgufTensor): void {
    if (!this.#read.has(t.name)) {
      this.#read.add(t.name);
      this.#loadedBytes += t.byteLength;
    }
    this.#options.onProgress?.({ loadedBytes: this.#loadedBytes, totalBytes: this.totalBytes });
  }

  async text(file: string): Promise<string | null> {
    this.#check();
    if (typeof file !== 'string' || file === '' || /^([/\\]|[a-z]:)/i.test(file) || file.split(/[/\\]/).includes('..')) {
      throw new TypeError(`qkv: text: file must name a file beside the .gguf, got ${JSON.stringify(file)}`);
    }
    return this.#folder.text(file, this.#options.signal);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#file.close();
  }

  #check(): void {
    if (this.#closed) throw new Error('qkv: the checkpoint is closed');
    this.#options.signal?.throwIfAborted();
  }
}
