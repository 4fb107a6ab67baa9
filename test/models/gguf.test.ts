// The GGUF reader: the fixtures of test/fixtures/gguf (tiny decoders written as llama.cpp's converter
// writes them, by scripts/fixtures/make-gguf.py, with transformers' logits of the weights it reads back)
// loaded on the reference engine from a path and from { files } (Q8_0/Q4_0 dequantized to float32,
// as transformers reads them; as stored: ggufQuantized.test.ts); the config synthesized from the
// metadata; the undoing of llama's q/k permutation and Gemma's 1 + w norms; Q8_0/Q4_0 blocks; and
// malformed files, each an Error naming the file and the tensor.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadDecoder, reference, type Tensor } from '../../src/index.js';
import { openCheckpoint } from '../../src/models/checkpoint.js';
import { inverseFrequencies } from '../../src/models/config.js';
import { dequantizeQ4_0, dequantizeQ8_0, llama3FromFactors, unpermuteRows } from '../../src/models/gguf.js';
import { serveFolder } from './safetensorsFixtures.js';

const FIXTURES = new URL('../fixtures/gguf/', import.meta.url);
const DECODERS = new URL('../fixtures/decoders/', import.meta.url);
const NAMES = ['llama3-f32', 'llama3-q8_0', 'llama3-q4_0', 'qwen2-f16', 'gemma2-f32', 'gemma2-q8_0', 'phi3-q8_0', 'llama3w-f32', 'llama3w-q8_0', 'llama3w-q4_0', 'qwen2w-f32', 'qwen2w-q8_0', 'qwen2w-q4_0'];
/**
 * transformers computes with the weights dequantized: so does the decoder loaded with weights
 * 'float32' (as stored, Q8_0 and Q4_0 are int8/int4 layers with Q8_0 activations: ggufQuantized.test.ts).
 */
const weightsOf = (name: string) => (/q[48]_0$/.test(name) ? 'float32' : undefined);

interface Expected { source: string; type: string; prompt: number[]; logits: number[][] }
const expected = (name: string): Expected => JSON.parse(readFileSync(new URL(`${name}.json`, FIXTURES), 'utf8'));
const path = (name: string) => new URL(`${name}.gguf`, FIXTURES).pathname;
const bytes = (name: string) => new Uint8Array(readFileSync(new URL(`${name}.gguf`, FIXTURES)));

/** Within 1e-3 of the row's largest |logit|. */
function expectLogits(actual: Tensor, rows: number[][], label: string): void {
  expect(actual.shape, `${label} shape`).toEqual([rows.length, rows[0].length]);
  rows.forEach((row, r) => {
    const scale = Math.max(...row.map(Math.abs));
    row.forEach((x, v) => {
      const d = Math.abs(actual.data[r * row.length + v] - x);
      if (d > 1e-3 * scale) throw new Error(`${label}: position ${r}, token ${v}: got ${actual.data[r * row.length + v]}, transformers ${x}`);
    });
  });
}

describe('GGUF decoders against transformers (reference engine)', () => {
  it.each(NAMES)('%s: teacher-forced logits, from a path and from { files }', async (name) => {
    const e = expected(name);
    for (const source of [path(name), { files: { [`${name}.gguf`]: bytes(name) } }]) {
      const decoder = await loadDecoder(source, { engine: reference, weights: weightsOf(name), maxTokens: 64 });
      try {
        const logits = decoder.forward(e.prompt, { sequences: [decoder.sequence()], queryLens: [e.prompt.length], logits: 'all' });
        expectLogits(logits, e.logits, name);
      } finally {
        decoder.dispose();
      }
    }
  });
});

describe('GGUF over HTTP', () => {
  it.each([true, false])('with Range %s: the same logits', async (range) => {
    const served = await serveFolder(new URL('.', FIXTURES).pathname, { range });
    try {
      const e = expected('llama3-q8_0');
      const decoder = await loadDecoder(new URL(`${served.url}/llama3-q8_0.gguf`), { engine: reference, weights: 'float32', maxTokens: 64 });
      try {
        expectLogits(decoder.forward(e.prompt, { sequences: [decoder.sequence()], queryLens: [e.prompt.length], logits: 'all' }), e.logits, 'llama3-q8_0 over HTTP');
      } finally {
        decoder.dispose();
      }
    } finally {
      await served.close();
    }
  });
});

describe('what the reader presents', () => {
  it('synthesizes a Hugging Face config from the metadata', async () => {
    const ckpt = await openCheckpoint(path('gemma2-f32'));
    try {
      expect(ckpt.format).toBe('gguf');
      const hf = JSON.parse(readFileSync(new URL('gemma2/config.json', DECODERS), 'utf8'));
      for (const key of ['hidden_size', 'num_hidden_layers', 'intermediate_size', 'num_attention_heads', 'num_key_value_heads', 'head_dim', 'max_position_embeddings', 'vocab_size', 'sliding_window', 'bos_token_id', 'tie_word_embeddings']) {
        expect(ckpt.config[key], key).toEqual(hf[key]);
      }
      expect(ckpt.config.architectures).toEqual(['Gemma2ForCausalLM']);
      expect(ckpt.config.rms_norm_eps as number).toBeCloseTo(1e-6, 12);
      expect(ckpt.config.attn_logit_softcapping).toBe(3);
      expect(ckpt.config.final_logit_softcapping).toBe(5);
      expect(ckpt.config.query_pre_attn_scalar as number).toBeCloseTo(12, 4);
      expect(ckpt.config.eos_token_id).toEqual([2]);
      expect(ckpt.config.layer_types).toEqual(['sliding_attention', 'full_attention']);
      expect(ckpt.tensors.has('lm_head.weight')).toBe(false);
      expect(ckpt.tensors.get('model.layers.1.pre_feedforward_layernorm.weight')?.shape).toEqual([32]);
      expect(ckpt.tensors.get('model.layers.0.self_attn.q_proj.weight')?.shape).toEqual([64, 32]);
    } finally {
      await ckpt.close();
    }
  });

  it('gives the safetensors checkpoint values back: permutation and 1 + w undone', async () => {
    for (const [gguf, folder] of [['llama3-f32', 'llama3'], ['gemma2-f32', 'gemma2']]) {
      const a = await openCheckpoint(path(gguf));
      const b = await openCheckpoint(new URL(`${folder}/`, DECODERS).pathname);
      try {
        for (const [name, t] of b.tensors) {
          if (name === 'lm_head.weight' && !a.tensors.has(name)) continue;
          expect(a.tensors.get(name)?.shape, name).toEqual(t.shape);
          const x = await a.read(name), y = await b.read(name);
          const tol = name.endsWith('norm.weight') && folder === 'gemma2' ? 2e-7 : 0; // (w + 1) - 1 in float32
          for (let i = 0; i < y.length; i++) if (Math.abs(x[i] - y[i]) > tol) throw new Error(`${gguf}: ${name}[${i}]: ${x[i]} != ${y[i]}`);
        }
        expect(a.config.rope_scaling).toMatchObject(gguf === 'llama3-f32' ? { rope_type: 'llama3', factor: 8 } : {});
      } finally {
        await a.close();
        await b.close();
      }
    }
  });

  it('rebuilds the llama3 rope from rope_freqs: the same inverse frequencies as config.json', async () => {
    const ckpt = await openCheckpoint(path('llama3-f32'));
    try {
      const hf = JSON.parse(readFileSync(new URL('llama3/config.json', DECODERS), 'utf8'));
      const rope = (scaling: Record<string, unknown>) => inverseFrequencies({ theta: 10000, type: 'llama3', params: scaling }, 8);
      const got = rope(ckpt.config.rope_scaling as Record<string, unknown>), want = rope(hf.rope_scaling);
      for (let i = 0; i < 4; i++) expect(got[i]).toBeCloseTo(want[i], 6);
    } finally {
      await ckpt.close();
    }
    // no frequency between the regimes, and several: still the converter's factors
    const factorsOf = (theta: number, dim: number, p: { factor: number; low: number; high: number; old: number }) =>
      Float32Array.from({ length: dim / 2 }, (_, i) => {
        const w = (2 * Math.PI) / theta ** ((-2 * i) / dim);
        if (w < p.old / p.high) return 1;
        if (w > p.old / p.low) return p.factor;
        const s = (p.old / w - p.low) / (p.high - p.low);
        return 1 / ((1 - s) / p.factor + s);
      });
    for (const p of [{ factor: 8, low: 1, high: 4, old: 8192 }, { factor: 32, low: 1, high: 4, old: 64 }, { factor: 4, low: 2, high: 3, old: 100 }]) {
      const factors = factorsOf(500000, 128, p);
      const scaling = llama3FromFactors(factors, 500000, 128, undefined, 'x.gguf')!;
      const inv = inverseFrequencies({ theta: 500000, type: 'llama3', params: scaling }, 128);
      factors.forEach((f, i) => expect(inv[i] * f * 500000 ** ((2 * i) / 128)).toBeCloseTo(1, 5));
    }
    expect(llama3FromFactors(new Float32Array([1, 1, 1]), 10000, 6, undefined, 'x.gguf')).toBeNull();
    expect(llama3FromFactors(new Float32Array([2, 2]), 10000, 4, undefined, 'x.gguf')).toEqual({ rope_type: 'linear', factor: 2 });
    expect(() => llama3FromFactors(new Float32Array([4, 1, 4]), 10000, 6, undefined, 'x.gguf')).toThrow(/x\.gguf: tensor "rope_freqs.weight"/);
  });

  it('Q8_0 and Q4_0: dequantized, and their blocks as stored (rows un-permuted)', async () => {
    // one block each: scale 0.5 (binary16 0x3800)
    const q8 = new Uint8Array(34);
    q8.set([0x00, 0x38]);
    for (let j = 0; j < 32; j++) q8[2 + j] = (j - 16) & 0xff;
    const out8 = new Float32Array(32);
    dequantizeQ8_0(q8, out8, 0);
    expect(Array.from(out8)).toEqual(Array.from({ length: 32 }, (_, j) => (j - 16) * 0.5));
    const q4 = new Uint8Array(18);
    q4.set([0x00, 0x38]);
    for (let j = 0; j < 16; j++) q4[2 + j] = j | ((15 - j) << 4);
    const out4 = new Float32Array(32);
    dequantizeQ4_0(q4, out4, 0);
    expect(Array.from(out4)).toEqual([...Array.from({ length: 16 }, (_, j) => (j - 8) * 0.5), ...Array.from({ length: 16 }, (_, j) => (7 - j) * 0.5)]);

    for (const type of ['Q8_0', 'Q4_0'] as const) {
      const ckpt = await openCheckpoint(path(`llama3-${type.toLowerCase()}`));
      try {
        const name = 'model.layers.0.self_attn.q_proj.weight';
        const t = ckpt.tensors.get(name)!;
        expect(t.dtype).toBe(type);
        const blocks = await ckpt.readBlocks!(name);
        expect(blocks.type).toBe(type);
        expect(blocks.data.length).toBe(t.byteLength);
        const fromBlocks = new Float32Array(32 * 32);
        (type === 'Q8_0' ? dequantizeQ8_0 : dequantizeQ4_0)(blocks.data, fromBlocks, 0);
        expect(Array.from(fromBlocks)).toEqual(Array.from(await ckpt.read(name)));
        await expect(ckpt.readBlocks!('model.norm.weight')).rejects.toThrow(TypeError);
        // readGroups: the same values as q and scales (into given arrays, or fresh ones)
        const groups = await ckpt.readGroups!(name);
        expect(groups.dtype).toBe(type === 'Q8_0' ? 'int8' : 'int4');
        expect(Array.from(groups.q, (q, i) => Math.fround(q * groups.scales[Math.floor(i / 32)]))).toEqual(Array.from(fromBlocks));
        const into = { q: new Int8Array(32 * 32), scales: new Float32Array(32) };
        expect((await ckpt.readGroups!(name, into)).q).toBe(into.q);
        expect(Array.from(into.q)).toEqual(Array.from(groups.q));
        await expect(ckpt.readGroups!(name, { q: new Int8Array(8), scales: new Float32Array(32) })).rejects.toThrow(/into holds 8 values and 32 scales, but tensor .* has 1024 and 32/);
        await expect(ckpt.readGroups!('model.norm.weight')).rejects.toThrow(/readGroups: tensor "model\.norm\.weight" is F32, not Q8_0 or Q4_0 blocks/);
        expect(ckpt.tensors.get('model.layers.0.mlp.down_proj.weight')?.dtype).toBe('F16'); // rows of 16: no whole block
      } finally {
        await ckpt.close();
      }
    }
  });

  it('unpermuteRows inverts llama.cpp permute', () => {
    // 2 heads of 4 rows: the converter stores head rows [0, 2, 1, 3] (pairs (0, 2) and (1, 3) interleaved)
    const stored = Float32Array.from([0, 2, 1, 3, 4, 6, 5, 7]);
    unpermuteRows(stored, 2, 1);
    expect(Array.from(stored)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });
});

// ---------------------------------------------------------------------------------------------------
// malformed files

/** A GGUF file: metadata (u32 and string values) and tensors (dims innermost first). */
function gguf(options: { version?: number; magic?: string; meta?: [string, number | string][]; tensors?: { name: string; dims: number[]; type: number; offset?: number; bytes?: number }[]; data?: number } = {}): Uint8Array {
  const parts: number[] = [];
  const u32 = (v: number) => parts.push(v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff);
  const u64 = (v: number) => { u32(v % 2 ** 32); u32(Math.floor(v / 2 ** 32)); };
  const str = (s: string) => { const b = new TextEncoder().encode(s); u64(b.length); parts.push(...b); };
  for (const c of options.magic ?? 'GGUF') parts.push(c.charCodeAt(0));
  const meta = options.meta ?? [['general.architecture', 'llama']];
  const tensors = options.tensors ?? [];
  u32(options.version ?? 3);
  u64(tensors.length);
  u64(meta.length);
  for (const [key, value] of meta) {
    str(key);
    if (typeof value === 'string') { u32(8); str(value); } else { u32(4); u32(value); }
  }
  let offset = 0;
  for (const t of tensors) {
    str(t.name);
    u32(t.dims.length);
    for (const d of t.dims) u64(d);
    u32(t.type);
    u64(t.offset ?? offset);
    offset += Math.ceil((t.bytes ?? 0) / 32) * 32;
  }
  while (parts.length % 32 !== 0) parts.push(0);
  const out = new Uint8Array(parts.length + (options.data ?? offset));
  out.set(parts);
  return out;
}

const open = (file: Uint8Array, name = 'bad.gguf') => openCheckpoint({ files: { [name]: file } });

describe('malformed GGUF files', () => {
  it('bad magic, version, truncation', async () => {
    await expect(open(gguf({ magic: 'GGUG' }))).rejects.toThrow(/bad\.gguf: not a GGUF file: it starts with "GGUG"/);
    await expect(open(gguf({ version: 1 }))).rejects.toThrow(/bad\.gguf: GGUF version 1 is not supported \(qkv reads versions 2 and 3\)/);
    await expect(open(new Uint8Array([0x47, 0x47, 0x55]))).rejects.toThrow(/bad\.gguf: the file is 3 bytes long/);
    const whole = bytes('llama3-f32');
    await expect(open(whole.slice(0, 200))).rejects.toThrow(/bad\.gguf: .*(ends at byte 200, inside metadata|cannot fit)/);
    // the header whole, the data cut short: the last tensor runs past the end
    await expect(open(whole.slice(0, whole.length - 100))).rejects.toThrow(/bad\.gguf: tensor "[a-z_.0-9]+": its data \[\d+, \d+\) runs past the end of the file/);
  });

  it('an unsupported tensor type names the tensor and lists what is supported', async () => {
    const file = gguf({ tensors: [{ name: 'blk.0.attn_q.weight', dims: [256, 4], type: 12, bytes: 576 }] });
    await expect(open(file)).rejects.toThrow(/bad\.gguf: tensor "blk\.0\.attn_q\.weight": type Q4_K \(12\) is not supported \(supported: F32, F16, Q4_0, Q8_0, BF16\)/);
    const rows = gguf({ tensors: [{ name: 'token_embd.weight', dims: [16, 2], type: 8, bytes: 68 }] });
    await expect(open(rows)).rejects.toThrow(/tensor "token_embd\.weight": Q8_0 stores rows in blocks of 32, but its rows have 16 elements/);
    const misaligned = gguf({ tensors: [{ name: 'output_norm.weight', dims: [4], type: 0, offset: 4, bytes: 16 }], data: 64 });
    await expect(open(misaligned)).rejects.toThrow(/tensor "output_norm\.weight": offset 4 is not a multiple of the alignment 32/);
  });

  it('an unknown architecture is config.ts TypeError; a missing tensor the loader Error', async () => {
    const file = gguf({ meta: [['general.architecture', 'mamba']] });
    await expect(loadDecoder({ files: { 'm.gguf': file } }, { engine: reference })).rejects.toThrow(TypeError);
    await expect(loadDecoder({ files: { 'm.gguf': file } }, { engine: reference })).rejects.toThrow(/mamba.*not supported; qkv runs LlamaForCausalLM/);
    const meta: [string, number | string][] = [['general.architecture', 'llama'], ['llama.embedding_length', 32], ['llama.block_count', 1], ['llama.feed_forward_length', 16], ['llama.attention.head_count', 4], ['llama.context_length', 64]];
    const empty = gguf({ meta, tensors: [{ name: 'token_embd.weight', dims: [32, 48], type: 0, bytes: 32 * 48 * 4 }] });
    await expect(loadDecoder({ files: { 'm.gguf': empty } }, { engine: reference })).rejects.toThrow(/the checkpoint has no tensor "model\.norm\.weight"/);
  });
});
