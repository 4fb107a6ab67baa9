// loadDecoder's refusals: every malformed or mismatched checkpoint is an error naming the file and the
// tensor (or the config key), and a refused or aborted load leaves nothing allocated in the engine.
// The checkpoints are the fixtures' files with one thing changed, given as { files }.
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error: bench/ is plain JavaScript without declarations
import { writeGguf } from '../../bench/lib/gguf.js';
// @ts-expect-error: bench/ is plain JavaScript without declarations
import { SHAPES, writeRandomCheckpoint } from '../../bench/lib/randomCheckpoint.js';
import { createEngine, type Decoder, type Engine, loadDecoder, reference } from '../../src/index.js';

const FIXTURES = new URL('../fixtures/decoders/', import.meta.url);

/** A fixture's files by name, config.json parsed so a test can change it. */
function fixture(name: string): { config: Record<string, unknown>; files: Record<string, Uint8Array> } {
  const dir = new URL(`${name}/`, FIXTURES);
  const files: Record<string, Uint8Array> = {};
  for (const f of readdirSync(dir)) files[f] = new Uint8Array(readFileSync(new URL(f, dir)));
  return { config: JSON.parse(new TextDecoder().decode(files['config.json'])), files };
}

const withConfig = (name: string, change: (c: Record<string, unknown>) => void) => {
  const { config, files } = fixture(name);
  change(config);
  return { files: { ...files, 'config.json': new TextEncoder().encode(JSON.stringify(config)) } };
};

/** A safetensors file whose tensor `name` has its shape's first size changed (and its bytes cut to fit). */
function reshaped(bytes: Uint8Array, name: string, first: number): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  const data = bytes.subarray(8 + n);
  const entries = Object.entries(header).filter(([k]) => k !== '__metadata__') as [string, { dtype: string; shape: number[]; data_offsets: [number, number] }][];
  const size = (t: { dtype: string; shape: number[] }) => t.shape.reduce((a, b) => a * b, 1) * (t.dtype === 'F32' ? 4 : 2);
  const parts: Uint8Array[] = [];
  let offset = 0;
  const out: Record<string, unknown> = {};
  for (const [k, t] of entries.sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0])) {
    const shape = k === name ? [first, ...t.shape.slice(1)] : t.shape;
    const bytesOf = size({ dtype: t.dtype, shape });
    const src = data.subarray(t.data_offsets[0], t.data_offsets[0] + Math.min(bytesOf, size(t)));
    const chunk = new Uint8Array(bytesOf);
    chunk.set(src);
    parts.push(chunk);
    out[k] = { dtype: t.dtype, shape, data_offsets: [offset, offset + bytesOf] };
    offset += bytesOf;
  }
  const json = new TextEncoder().encode(JSON.stringify(out));
  const result = new Uint8Array(8 + json.length + offset);
  new DataView(result.buffer).setBigUint64(0, BigInt(json.length), true);
  result.set(json, 8);
  let at = 8 + json.length;
  for (const p of parts) { result.set(p, at); at += p.length; }
  return result;
}

const made: Engine[] = [];
afterAll(() => made.forEach((e) => e.dispose()));

describe.each([['reference'], ['wasm']])('loadDecoder refusals on %s', (which) => {
  const engine = async (): Promise<Engine> => {
    if (which === 'reference') return reference;
    const e = await createEngine();
    made.push(e);
    return e;
  };

  it('an unsupported architecture is a TypeError that lists what is supported', async () => {
    const e = await engine();
    const source = withConfig('qwen3', (c) => { c.architectures = ['GPT2LMHeadModel']; });
    await expect(loadDecoder(source, { engine: e })).rejects.toThrow(/GPT2LMHeadModel is not supported; qkv runs LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, Phi3ForCausalLM/);
    await expect(loadDecoder(withConfig('qwen3', (c) => { delete c.architectures; }), { engine: e })).rejects.toThrow(TypeError);
  });

  it('config errors name the key', async () => {
    const e = await engine();
    await expect(loadDecoder(withConfig('qwen3', (c) => { c.hidden_size = -3; }), { engine: e })).rejects.toThrow(/config\.json: hidden_size must be a positive integer/);
    await expect(loadDecoder(withConfig('qwen3', (c) => { c.num_key_value_heads = 3; }), { engine: e })).rejects.toThrow(/multiple of num_key_value_heads/);
    await expect(loadDecoder(withConfig('llama3', (c) => { (c.rope_scaling as Record<string, unknown>).rope_type = 'yarn'; }), { engine: e })).rejects.toThrow(/rope type 'yarn' is not supported/);
    await expect(loadDecoder(withConfig('qwen3', (c) => { c.hidden_act = 'relu'; }), { engine: e })).rejects.toThrow(/hidden_act is 'relu'/);
    await expect(loadDecoder(withConfig('gemma3', (c) => { c.layer_types = ['sliding_attention']; }), { engine: e })).rejects.toThrow(/layer_types has 1 entries for 3 layers/);
  });

  it('a missing tensor, or one of the wrong shape, is an Error naming the file and the tensor; nothing stays allocated', async () => {
    const e = await engine();
    const before = e.tensor([4]);
    const { files } = fixture('qwen3');
    const name = 'model.layers.1.mlp.down_proj.weight';
    const wrong = { files: { ...files, 'model.safetensors': reshaped(files['model.safetensors'], name, 7) } };
    await expect(loadDecoder(wrong, { engine: e })).rejects.toThrow(/model\.safetensors: tensor "model\.layers\.1\.mlp\.down_proj\.weight" has shape \[7, 16\], the config needs \[32, 16\]/);
    // the same file, with the config asking for one more layer than it holds
    await expect(loadDecoder(withConfig('qwen3', (c) => { c.num_hidden_layers = 3; c.layer_types = ['full_attention', 'full_attention', 'full_attention']; }), { engine: e }))
      .rejects.toThrow(/no tensor "model\.layers\.2\.input_layernorm\.weight"/);
    // a file cut short: the read of a late tensor fails, after the first layers were built, and they are given back
    const cut = { files: { ...files, 'model.safetensors': files['model.safetensors'].subarray(0, files['model.safetensors'].length - 100) } };
    await expect(loadDecoder(cut, { engine: e })).rejects.toThrow(/model\.safetensors/);
    const after = e.tensor([4]);
    if (e.name === 'wasm') expect(after.data.byteOffset).toBe(before.data.byteOffset + 16);
    before.dispose();
    after.dispose();
  });

  it('an abort stops the load and gives everything back; onProgress counts up to the total', async () => {
    const e = await engine();
    const before = e.tensor([4]);
    const { files } = fixture('gemma2');
    const controller = new AbortController();
    let calls = 0;
    await expect(loadDecoder({ files }, {
      engine: e, signal: controller.signal,
      onProgress: () => { if (++calls === 5) controller.abort(new Error('enough')); },
    })).rejects.toThrow(/enough/);
    const after = e.tensor([4]);
    if (e.name === 'wasm') expect(after.data.byteOffset).toBe(before.data.byteOffset + 16);
    [before, after].forEach((t) => t.dispose());
    const seen: number[] = [];
    let total = 0;
    const d = await loadDecoder({ files }, { engine: e, onProgress: (p) => { seen.push(p.loadedBytes); total = p.totalBytes; } });
    expect(seen.at(-1)).toBe(total);
    expect(seen.every((x, i) => i === 0 || x >= seen[i - 1])).toBe(true);
    d.dispose();
    expect(() => d.sequence()).toThrow(/disposed/);
  });

  it('bad options are refused before anything is read', async () => {
    const e = await engine();
    const { files } = fixture('qwen3');
    await expect(loadDecoder({ files }, { engine: {} as Engine })).rejects.toThrow(TypeError);
    await expect(loadDecoder({ files }, { engine: e, weights: 'float8' as 'float32' })).rejects.toThrow(/options\.weights must be one of/);
    await expect(loadDecoder({ files }, { engine: e, maxTokens: 0 })).rejects.toThrow(/maxTokens must be a positive integer/);
    await expect(loadDecoder({ files }, { engine: e, kv: { blockSize: 2.5 } })).rejects.toThrow(/kv\.blockSize/);
    await expect(loadDecoder({ files }, { engine: e, kv: { dtype: 'int4' as 'int8' } })).rejects.toThrow(/kv\.dtype/);
  });

  it('Gemma 3 ignores attn_logit_softcapping, as transformers 5 does', async () => {
    const e = await engine();
    const prompt = [3, 9, 20, 7];
    const logits = async (source: Parameters<typeof loadDecoder>[0]) => {
      const d = await loadDecoder(source, { engine: e, maxTokens: 16 });
      const out = d.forward(prompt, { sequences: [d.sequence()], queryLens: [prompt.length], logits: 'all' });
      d.dispose();
      return Array.from(out.data);
    };
    expect(await logits(withConfig('gemma3', (c) => { c.attn_logit_softcapping = 0.5; }))).toEqual(await logits({ files: fixture('gemma3').files }));
  });
});

describe('loads at once on one engine', () => {
  it('give each decoder the weights it gets alone, while the others grow the engine memory under its reads', async () => {
    const gguf = (name: string) => new URL(`../fixtures/gguf/${name}.gguf`, import.meta.url).pathname;
    const sources = [new URL('llama3/', FIXTURES).pathname, gguf('llama3-q8_0'), new URL('gemma2/', FIXTURES).pathname, gguf('gemma2-f32'), new URL('qwen3/', FIXTURES).pathname];
    const logits = (decoders: Awaited<ReturnType<typeof loadDecoder>>[]) => decoders.map((d) => {
      const seq = d.sequence();
      const out = Array.from(d.forward([1, 5, 9, 3], { sequences: [seq], queryLens: [4], logits: 'all' }).data);
      seq.free();
      return out;
    });
    const alone = await createEngine();
    const one = [];
    for (const s of sources) one.push(await loadDecoder(s, { engine: alone, maxTokens: 64 }));
    const together = await createEngine();
    const all = await Promise.all(sources.map((s) => loadDecoder(s, { engine: together, maxTokens: 64 })));
    expect(logits(all)).toEqual(logits(one));
    [...one, ...all].forEach((d) => d.dispose());
    alone.dispose();
    together.dispose();
  });
});

describe('int8 and int4 layers quantized while loading', () => {
  // tiny-llama's shape (every width a multiple of 32) with a vocabulary of 20,000, so that its tied table
  // (1.28 M floats) is read in two pieces of rows (readRows, 2^20 floats at most) and quantized piece by
  // piece; random weights, written as safetensors and as an F32 GGUF (which reads each tensor whole)
  let dir: string;
  const engines: Engine[] = [];
  const tokens = [3, 14, 15, 92, 19999];
  const checkpoint = async (): Promise<string> => {
    if (dir) return dir;
    dir = await mkdtemp(join(tmpdir(), 'qkv-quantized-load-'));
    writeRandomCheckpoint(join(dir, 'st'), { ...SHAPES['tiny-llama'], vocab_size: 20000 }, { seed: 5 });
    writeGguf(join(dir, 'model.gguf'), join(dir, 'st'));
    return dir;
  };
  afterAll(async () => {
    engines.forEach((e) => e.dispose());
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  const logitsOf = (d: Decoder) => d.forward(tokens, { sequences: [d.sequence()], queryLens: [tokens.length], logits: 'all' }).data;

  it.each(['int8', 'int4'] as const)('%s: read by pieces of rows, the same bits as read whole; both engines agree', async (weights) => {
    const root = await checkpoint();
    const wasm = await createEngine();
    engines.push(wasm);
    const pieces = await loadDecoder(join(root, 'st'), { engine: wasm, weights, maxTokens: 64 });
    const whole = await loadDecoder({ files: { 'model.gguf': readFileSync(join(root, 'model.gguf')) } }, { engine: wasm, weights, maxTokens: 64 });
    const ref = await loadDecoder(join(root, 'st'), { engine: reference, weights, maxTokens: 64 });
    const [lp, lw, lr] = [pieces, whole, ref].map(logitsOf);
    expect(Buffer.from(lp.buffer, lp.byteOffset, lp.byteLength).equals(Buffer.from(lw.buffer, lw.byteOffset, lw.byteLength))).toBe(true);
    let big = 0;
    for (const v of lr) big = Math.max(big, Math.abs(v));
    for (let i = 0; i < lp.length; i++) expect(Math.abs(lp[i] - lr[i]), `logit ${i}`).toBeLessThanOrEqual(1e-4 * big + 1e-5);
    const greedy = async (d: Decoder) => {
      const out: number[] = [];
      for await (const t of d.generate(tokens, { maxNewTokens: 6 })) out.push(t);
      return out;
    };
    const [gp, gr] = [await greedy(pieces), await greedy(ref)];
    expect(gp).toHaveLength(6);
    expect(gp).toEqual(gr);
    [pieces, whole, ref].forEach((d) => d.dispose());
  });

  it('a NaN in a float weight fails the load naming the tensor, row and inputs, and gives everything back', async () => {
    const st = join(await checkpoint(), 'st');
    const file = new Uint8Array(readFileSync(join(st, 'model.safetensors')));
    const view = new DataView(file.buffer);
    const headerLength = Number(view.getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + headerLength)));
    const name = 'model.layers.0.mlp.up_proj.weight', [, K] = header[name].shape;
    view.setFloat32(8 + headerLength + header[name].data_offsets[0] + (3 * K + 40) * 4, Number.NaN, true);
    const files: Record<string, Uint8Array> = { 'config.json': readFileSync(join(st, 'config.json')), 'model.safetensors': file };
    const wasm = await createEngine();
    engines.push(wasm);
    const before = wasm.tensor([4]);
    await expect(loadDecoder({ files }, { engine: wasm, weights: 'int4' })).rejects.toThrow(
      /loadDecoder: model\.safetensors: tensor "model\.layers\.0\.mlp\.up_proj\.weight" row 3, inputs 32\.\.63: a NaN or an infinity, which int4 cannot store/,
    );
    const after = wasm.tensor([4]);
    expect(after.data.byteOffset).toBe(before.data.byteOffset + 16);
    [before, after].forEach((t) => t.dispose());
    // float32 keeps it
    (await loadDecoder({ files }, { engine: wasm, weights: 'float32', maxTokens: 16 })).dispose();
  });
});
