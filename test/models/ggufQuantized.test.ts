// GGUF's Q8_0 and Q4_0 tensors loaded as they are stored: int8/int4 linear layers whose q and scales
// are the file's blocks, with no requantizing (docs/MODELS.md). The fixtures of
// test/fixtures/gguf (scripts/fixtures/make-gguf.py): llama3-q8_0/-q4_0 (llama's q/k rows permuted,
// down_proj in F16 beside the blocks, untied table), gemma2-q8_0 (1 + w norms in F32, tied table
// scaled by √hidden), phi3-q8_0 (fused qkv_proj and gate_up_proj, split by rows), and the "wide" llama3w and qwen2w (intermediate 32, so every linear layer is in
// blocks; qwen2w tied, with biases), each also in F32: the float weights the blocks were made from.
//
// What is checked, on the reference engine and on wasm:
//   - each layer's dtype is its tensor's (Q8_0 int8, Q4_0 int4, F16 float32), and its forward and lookup
//     are those of the groups decoded here from the file's raw blocks (wasm: the kernels' float32 steps,
//     bit for bit); the lookups equal read()'s dequantized values, so llama's permutation applies to
//     the groups as it does to the floats; norms stay float;
//   - a block no quantizer writes (its q halved, no -8 nibble) is still kept as it is;
//   - logits against the same file dequantized to float32 (weights: 'float32'), within AS_STORED;
//     greedy tokens equal up to a near tie of the float32 run;
//   - how closely the file as stored agrees with the F32 file quantized on load (weights: 'int8'/'int4');
//   - what `weights` does with blocks; malformed blocks: an Error naming the file and the tensor, with
//     nothing left in the engine.
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, type Decoder, type Engine, type LinearLayer, loadDecoder, reference, type Tensor, tensor } from '../../src/index.js';
import { type Checkpoint, openCheckpoint } from '../../src/models/checkpoint.js';
import type { DecoderParts } from '../../src/models/decoder.js';
import { expectIdentical, float32StepsOf, type Groups, productOf, quantizeRows } from '../ops/quantDefinition.js';
import { distCurrent } from '../ops/split.js';
import { expectClose, random } from '../support.js';

const FIXTURES = new URL('../fixtures/gguf/', import.meta.url);
const QUANTIZED = ['llama3-q8_0', 'llama3-q4_0', 'gemma2-q8_0', 'phi3-q8_0', 'llama3w-q8_0', 'llama3w-q4_0', 'qwen2w-q8_0', 'qwen2w-q4_0'];
const path = (name: string) => new URL(`${name}.gguf`, FIXTURES).pathname;
const bytes = (name: string) => new Uint8Array(readFileSync(new URL(`${name}.gguf`, FIXTURES)));
const prompt = (name: string): number[] => JSON.parse(readFileSync(new URL(`${name}.json`, FIXTURES), 'utf8')).prompt;

/**
 * Largest |Δlogit| between a Q8_0/Q4_0 file loaded as stored (int8/int4 layers, Q8_0 activations) and
 * the same file dequantized to float32, relative to the row's largest |logit|, over every fixture's
 * prompt positions: measured 7.5e-2 at most (llama3w-q8_0; 3.1e-2 llama3-q8_0, 4.5e-2 llama3-q4_0,
 * 2.9e-2 gemma2-q8_0, 4.6e-2 phi3-q8_0, 6.4e-2 llama3w-q4_0, 6.8e-2 qwen2w-q8_0 and -q4_0), the same
 * on both engines.
 * These tiny models' weights are drawn large (std 0.3) so that every feature moves the logits, which
 * also amplifies the activations' rounding to int8.
 */
const AS_STORED = 0.1;
/** A top-2 margin below this fraction of the row's largest |logit| is a near tie that rounding may flip. */
const NEAR_TIE = 0.02;

const made: Engine[] = [];
afterAll(() => made.forEach((e) => e.dispose()));
const wasm = await createEngine();
made.push(wasm);
const ENGINES: [string, Engine][] = [['reference', reference], ['wasm', wasm]];

const partsOf = (d: Decoder) => (d as unknown as { parts: DecoderParts }).parts;

/** binary16 bits as a number. */
function half(h: number): number {
  const sign = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
  if (e === 31) return m ? NaN : sign * Infinity;
  return e === 0 ? sign * m * 2 ** -24 : sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** Q8_0 / Q4_0 blocks (as readBlocks gives them) decoded here: one q per value, one scale per 32. */
function decode(type: 'Q8_0' | 'Q4_0', data: Uint8Array): Groups {
  const q: number[] = [], s: number[] = [];
  const size = type === 'Q8_0' ? 34 : 18;
  for (let o = 0; o < data.length; o += size) {
    s.push(half(data[o] | (data[o + 1] << 8)));
    if (type === 'Q8_0') for (let j = 0; j < 32; j++) q.push((data[o + 2 + j] << 24) >> 24);
    else {
      const block = data.subarray(o + 2, o + 18);
      q.push(...Array.from(block, (b) => (b & 15) - 8), ...Array.from(block, (b) => (b >> 4) - 8));
    }
  }
  return { q, s };
}

/** A linear layer of a decoder with the tensors it was made from (stacked by rows) and their biases. */
interface Made { label: string; layer: LinearLayer; names: string[]; biases: string[] }

/** Every linear layer of a decoder with what it was made from. */
function linearsOf(d: Decoder, ckpt: Checkpoint): Made[] {
  const p = partsOf(d), out: Made[] = [];
  const add = (label: string, layer: LinearLayer, names: string[]) => {
    const biases = names.map((n) => n.replace(/weight$/, 'bias'));
    out.push({ label, layer, names, biases: biases.every((b) => ckpt.tensors.has(b)) ? biases : [] });
  };
  p.layers.forEach((l, i) => {
    const n = (part: string) => `model.layers.${i}.${part}.weight`;
    if (ckpt.tensors.has(n('self_attn.qkv_proj'))) {
      // Phi-3: one tensor for q, k, v (rows q, then k, then v) and one for gate and up
      add(`layer ${i} q/k/v`, l.qkv, [n('self_attn.qkv_proj')]);
      add(`layer ${i} gate/up`, l.gateUp, [n('mlp.gate_up_proj')]);
    } else {
      add(`layer ${i} q/k/v`, l.qkv, [n('self_attn.q_proj'), n('self_attn.k_proj'), n('self_attn.v_proj')]);
      add(`layer ${i} gate/up`, l.gateUp, [n('mlp.gate_proj'), n('mlp.up_proj')]);
    }
    add(`layer ${i} o`, l.o, [n('self_attn.o_proj')]);
    add(`layer ${i} down`, l.down, [n('mlp.down_proj')]);
  });
  add('embedding', p.embedding, ['model.embed_tokens.weight']);
  if (p.lmHead !== p.embedding) add('lm head', p.lmHead, ['lm_head.weight']);
  return out;
}

/** The tensors `names` as read() gives them (dequantized, permutation undone), one after another. */
async function readAll(ckpt: Checkpoint, names: string[]): Promise<Float32Array> {
  const parts = await Promise.all(names.map((n) => ckpt.read(n)));
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  parts.reduce((at, p) => { out.set(p, at); return at + p.length; }, 0);
  return out;
}

/** Teacher-forced logits of the fixture's prompt: [T, vocab]. */
function logitsOf(d: Decoder, tokens: number[]): Tensor {
  const s = d.sequence();
  const out = d.forward(tokens, { sequences: [s], queryLens: [tokens.length], logits: 'all' });
  s.free();
  return out;
}

/** Max |a - b| relative to each row's largest |b|, and the rows whose argmax agree. */
function agreement(a: Tensor, b: Tensor): { worst: number; top1: number; rows: number } {
  const [T, V] = b.shape;
  let worst = 0, top1 = 0;
  for (let t = 0; t < T; t++) {
    const ra = Array.from(a.data.subarray(t * V, (t + 1) * V)), rb = Array.from(b.data.subarray(t * V, (t + 1) * V));
    const m = Math.max(...rb.map(Math.abs));
    ra.forEach((x, v) => { worst = Math.max(worst, Math.abs(x - rb[v]) / m); });
    if (ra.indexOf(Math.max(...ra)) === rb.indexOf(Math.max(...rb))) top1++;
  }
  return { worst, top1, rows: T };
}

/** The top-2 margin of a row relative to its largest |logit|. */
function margin(row: ArrayLike<number>): number {
  const sorted = Array.from(row).sort((x, y) => y - x);
  return (sorted[0] - sorted[1]) / Math.max(...Array.from(row, Math.abs));
}

async function greedy(d: Decoder, tokens: number[], n = 8): Promise<number[]> {
  const out: number[] = [];
  for await (const t of d.generate(tokens, { maxNewTokens: n, stop: [] })) out.push(t);
  return out;
}

describe.each(ENGINES)('Q8_0 and Q4_0 loaded as stored on %s', (_, engine) => {
  it.each(QUANTIZED)('%s: every linear layer holds the file\'s groups (forward and lookup), norms stay float', async (name) => {
    const ckpt = await openCheckpoint(path(name));
    const d = await loadDecoder(path(name), { engine, maxTokens: 32 });
    try {
      let seed = 1, quantized = 0;
      for (const { label, layer, names, biases } of linearsOf(d, ckpt)) {
        const types = new Set(names.map((n) => ckpt.tensors.get(n)!.dtype));
        const [type] = types;
        const N = layer.outFeatures, K = layer.inFeatures;
        const values = await readAll(ckpt, names);
        const all = Array.from({ length: N }, (_, i) => i);
        // lookup: the stored values are the file's, dequantized (llama's rows un-permuted as read() does)
        expectIdentical(layer.lookup(all), values, `${name} ${label} lookup`);
        if (type !== 'Q8_0' && type !== 'Q4_0') {
          expect(layer.dtype, `${name} ${label}`).toBe('float32');
          continue;
        }
        quantized++;
        expect(layer.dtype, `${name} ${label}`).toBe(type === 'Q8_0' ? 'int8' : 'int4');
        const stacked: Groups = { q: [], s: [] };
        for (const n of names) {
          const g = decode(type, (await ckpt.readBlocks!(n)).data);
          stacked.q.push(...g.q);
          stacked.s.push(...g.s);
        }
        const bias = biases.length > 0 ? tensor(await readAll(ckpt, biases), [N]) : undefined;
        for (const T of [1, 5]) {
          const x = random([T, K], seed++, 2);
          const y = layer.forward(x);
          if (engine.name === 'wasm') expectIdentical(y, float32StepsOf(x, stacked, N, bias, 32), `${name} ${label} T=${T}`);
          else expectClose(y, productOf(x, stacked, N, bias, 32), `${name} ${label} T=${T}`);
        }
      }
      expect(quantized).toBeGreaterThan(0);
      const p = partsOf(d);
      expectIdentical(p.finalNorm.data, await ckpt.read('model.norm.weight'), `${name} final norm`);
      expectIdentical(p.layers[1].inputNorm.data, await ckpt.read('model.layers.1.input_layernorm.weight'), `${name} norm`);
    } finally {
      d.dispose();
      await ckpt.close();
    }
  });

  it.each(QUANTIZED)('%s: logits within AS_STORED of the file dequantized to float32; greedy tokens equal up to a near tie', async (name) => {
    const tokens = prompt(name);
    const [stored, dequantized] = await Promise.all([loadDecoder(path(name), { engine, maxTokens: 64 }), loadDecoder(path(name), { engine, weights: 'float32', maxTokens: 64 })]);
    try {
      const a = logitsOf(stored, tokens), b = logitsOf(dequantized, tokens);
      const { worst } = agreement(a, b);
      expect(worst, `${name}: max |Δlogit| / row max`).toBeLessThanOrEqual(AS_STORED);
      const [ga, gb] = [await greedy(stored, tokens), await greedy(dequantized, tokens)];
      const first = ga.findIndex((t, i) => t !== gb[i]);
      if (first >= 0) {
        const context = [...tokens, ...gb.slice(0, first)];
        const row = logitsOf(dequantized, context).data.subarray((context.length - 1) * b.shape[1]);
        expect(margin(row), `${name}: greedy ${ga} vs ${gb}: step ${first} is not a near tie`).toBeLessThan(NEAR_TIE);
      }
    } finally {
      stored.dispose();
      dequantized.dispose();
    }
  });
});

describe('what a block is kept as', () => {
  /** A copy of fixture `name` with the blocks of tensor `hf` changed by `change(blockBytes, index)`. */
  async function patched(name: string, hf: string, change: (block: Uint8Array, index: number) => void): Promise<Uint8Array> {
    const file = bytes(name), ckpt = await openCheckpoint(path(name));
    const t = ckpt.tensors.get(hf)!;
    await ckpt.close();
    const size = t.dtype === 'Q8_0' ? 34 : 18;
    for (let o = 0, i = 0; o < t.byteLength; o += size, i++) change(file.subarray(t.offset + o, t.offset + o + size), i);
    return file;
  }

  it.each(ENGINES)('blocks no quantizer writes (Q8_0 q halved, Q4_0 without a -8) are kept as they are, not requantized (%s)', async (_, engine) => {
    for (const [name, hf] of [['llama3w-q8_0', 'model.layers.0.self_attn.o_proj.weight'], ['llama3w-q4_0', 'model.layers.1.self_attn.o_proj.weight']]) {
      const file = await patched(name, hf, (block) => {
        if (name.endsWith('q8_0')) for (let j = 2; j < 34; j++) block[j] = ((block[j] << 24) >> 24 >> 1) & 0xff;
        else for (let j = 2; j < 18; j++) block[j] = Math.max(block[j] & 0x0f, 1) | (Math.max(block[j] >> 4, 1) << 4); // nibble 0 (q = -8) -> 1
      });
      const source = { files: { [`${name}.gguf`]: file } };
      const ckpt = await openCheckpoint(source);
      const d = await loadDecoder(source, { engine, maxTokens: 16 });
      try {
        const layer = linearsOf(d, ckpt).find((l) => l.names[0] === hf)!.layer;
        const groups = decode(ckpt.tensors.get(hf)!.dtype as 'Q8_0' | 'Q4_0', (await ckpt.readBlocks!(hf)).data);
        const N = layer.outFeatures, K = layer.inFeatures, bits = name.endsWith('q8_0') ? 8 : 4;
        // requantizing these values would change them: int8's scale is max|w| / 127, int4's m / -8
        const requantized = quantizeRows(await ckpt.read(hf), N, K, 32, bits);
        expect(requantized.s.some((s, i) => s !== groups.s[i]), `${name}: requantizing would change the scales`).toBe(true);
        const x = random([3, K], 7, 2);
        if (engine.name === 'wasm') expectIdentical(layer.forward(x), float32StepsOf(x, groups, N, undefined, 32), `${name} ${hf}`);
        else expectClose(layer.forward(x), productOf(x, groups, N, undefined, 32), `${name} ${hf}`);
        expectIdentical(layer.lookup(Array.from({ length: N }, (_, i) => i)), await ckpt.read(hf), `${name} ${hf} lookup`);
      } finally {
        d.dispose();
        await ckpt.close();
      }
    }
  });

  it('weights: not given keeps blocks, float tensors float32; int8 on Q8_0 (int4 on Q4_0) keeps them too; anything else dequantizes first', async () => {
    const storage = (d: Decoder) => {
      const p = partsOf(d);
      return { q: p.layers[0].qkv.dtype, down: p.layers[0].down.dtype, embedding: p.embedding.dtype, lmHead: p.lmHead.dtype };
    };
    const tokens = prompt('llama3w-q8_0');
    for (const [name, same, tied] of [['llama3w-q8_0', 'int8', false], ['llama3w-q4_0', 'int4', false], ['qwen2w-q8_0', 'int8', true]] as const) {
      const stored = await loadDecoder(path(name), { engine: wasm, maxTokens: 32 });
      const kept = await loadDecoder(path(name), { engine: wasm, weights: same, groupSize: 32, maxTokens: 32 });
      expect(storage(stored)).toEqual({ q: same, down: same, embedding: same, lmHead: same });
      expectIdentical(logitsOf(kept, tokens), logitsOf(stored, tokens), `${name}: weights '${same}' keeps the blocks`);
      for (const weights of ['float32', 'float16', same === 'int8' ? 'int4' : 'int8'] as const) {
        const d = await loadDecoder(path(name), { engine: wasm, weights, maxTokens: 32 });
        // an untied table keeps its blocks whatever `weights` says (a lookup reads exactly the dequantized values); a tied one is the LM head
        expect(storage(d), `${name} weights ${weights}`).toEqual({ q: weights, down: weights, embedding: tied ? weights : same, lmHead: weights });
        if (weights !== 'float16') {
          // converted from the dequantized values, as createLinear converts float weights
          const ckpt = await openCheckpoint(path(name));
          const hf = 'model.layers.0.self_attn.q_proj.weight', values = await ckpt.read(hf);
          // the q/k/v layer's first N columns are q's
          const layer = partsOf(d).layers[0].qkv, K = layer.inFeatures, N = values.length / K, W = layer.outFeatures;
          const bias = tied ? tensor(await ckpt.read('model.layers.0.self_attn.q_proj.bias'), [N]) : undefined; // qwen2's q/k/v biases
          const want = wasm.createLinear(tensor(values, [N, K]), { dtype: weights, bias });
          const x = random([3, K], 1), got = layer.forward(x).data;
          const qColumns = Float32Array.from({ length: 3 * N }, (_, i) => got[Math.floor(i / N) * W + (i % N)]);
          expectIdentical(tensor(qColumns, [3, N]), want.forward(x), `${name} weights ${weights}: q_proj from the dequantized values`);
          want.dispose();
          await ckpt.close();
        }
        d.dispose();
      }
      [stored, kept].forEach((d) => d.dispose());
    }
    // a file whose down_proj is F16 (rows of 16: no whole block): float32 when weights is not given
    const mixed = await loadDecoder(path('llama3-q8_0'), { engine: wasm, maxTokens: 16 });
    expect(storage(mixed)).toEqual({ q: 'int8', down: 'float32', embedding: 'int8', lmHead: 'int8' });
    mixed.dispose();
  });

  it.skipIf(!distCurrent)('as stored, 2 threads give one thread\'s logits, bit for bit', async () => {
    const two = await createEngine({ threads: 2 });
    made.push(two);
    for (const name of ['llama3w-q4_0', 'qwen2w-q8_0']) {
      const [a, b] = await Promise.all([wasm, two].map((engine) => loadDecoder(path(name), { engine, maxTokens: 32 })));
      expectIdentical(logitsOf(b, prompt(name)), logitsOf(a, prompt(name)), name);
      a.dispose();
      b.dispose();
    }
  });
});

describe('Q8_0/Q4_0 as stored against the same float weights quantized on load', () => {
  // The wide fixtures' F32 files hold the float weights their Q8_0 and Q4_0 files were made from.
  // Stored weights: every q the same, the scales apart by the file's binary16 rounding alone (at most
  // 2^-11 relative: measured 4.5e-4 to 4.7e-4 of a group's largest |value|, over the 13,824 values of
  // each file's linear layers). Logits (measured, both engines alike):
  //   llama3w Q8_0 6.5e-2, top-1 14/14    qwen2w Q8_0 4.5e-2, 14/14    qwen2w Q4_0 5.1e-2, 14/14
  //   llama3w Q4_0 0.49, top-1 12/14: its untied embedding table is Q4_0 too, which the file keeps as
  //   stored, while a float checkpoint's untied table keeps its float32 values.
  const CASES = [['llama3w', 'q8_0', 'int8', 0.1, 14], ['qwen2w', 'q8_0', 'int8', 0.1, 14], ['qwen2w', 'q4_0', 'int4', 0.1, 14], ['llama3w', 'q4_0', 'int4', 0.6, 12]] as const;
  it.each(ENGINES)('stored weights and logits (%s)', async (_, engine) => {
    for (const [model, type, dtype, tol, top1] of CASES) {
      const stored = await loadDecoder(path(`${model}-${type}`), { engine, maxTokens: 32 });
      const onLoad = await loadDecoder(path(`${model}-f32`), { engine, weights: dtype, maxTokens: 32 });
      try {
        const pa = partsOf(stored), pb = partsOf(onLoad);
        const pairs: [LinearLayer, LinearLayer][] = [[pa.lmHead, pb.lmHead]];
        pa.layers.forEach((l, i) => (['qkv', 'o', 'gateUp', 'down'] as const).forEach((k) => pairs.push([l[k], pb.layers[i][k]])));
        for (const [a, b] of pairs) {
          const K = a.inFeatures, ids = Array.from({ length: a.outFeatures }, (_, i) => i);
          const x = a.lookup(ids).data, y = b.lookup(ids).data;
          for (let g = 0; g < x.length; g += 32) {
            const big = Math.max(...Array.from(y.subarray(g, g + 32), Math.abs));
            for (let i = g; i < g + 32; i++) {
              if (Math.abs(x[i] - y[i]) > 2 ** -11 * big) throw new Error(`${model} ${type}: value ${i} of a [${a.outFeatures}, ${K}] layer: ${x[i]} stored, ${y[i]} quantized on load`);
            }
          }
        }
        const agree = agreement(logitsOf(stored, prompt(`${model}-${type}`)), logitsOf(onLoad, prompt(`${model}-${type}`)));
        expect(agree.worst, `${model} ${type}`).toBeLessThanOrEqual(tol);
        expect(agree.top1, `${model} ${type}`).toBeGreaterThanOrEqual(top1);
      } finally {
        stored.dispose();
        onLoad.dispose();
      }
    }
  });
});

describe.each(ENGINES)('malformed blocks on %s', (_, engine) => {
  it('a NaN or infinite scale, a Q8_0 -128, a truncated file: an Error naming the file and the tensor; nothing left in the engine', async () => {
    const hf = 'model.layers.1.mlp.up_proj.weight';
    const cases: [string, (block: Uint8Array, i: number) => void, RegExp][] = [
      ['llama3w-q8_0', (b, i) => { if (i === 5) b.set([0x00, 0x7e]); }, /bad\.gguf: tensor "blk\.1\.ffn_up\.weight": Q8_0 block 5 \(row 5, values 0 to 31\) has scale NaN \(binary16 0x7e00\); a block's scale must be finite/],
      ['llama3w-q4_0', (b, i) => { if (i === 3) b.set([0x00, 0xfc]); }, /bad\.gguf: tensor "blk\.1\.ffn_up\.weight": Q4_0 block 3 \(row 3, values 0 to 31\) has scale -Infinity/],
      ['llama3w-q8_0', (b, i) => { if (i === 2) b[9] = 0x80; }, /bad\.gguf: tensor "blk\.1\.ffn_up\.weight": Q8_0 block 2 \(row 2, values 0 to 31\) holds -128, outside int8's \[-127, 127\]/],
    ];
    const before = engine.tensor([4]);
    for (const [name, change, message] of cases) {
      const file = bytes(name), ckpt = await openCheckpoint(path(name));
      const t = ckpt.tensors.get(hf)!;
      await ckpt.close();
      const size = t.dtype === 'Q8_0' ? 34 : 18;
      for (let o = 0, i = 0; o < t.byteLength; o += size, i++) change(file.subarray(t.offset + o, t.offset + o + size), i);
      await expect(loadDecoder({ files: { 'bad.gguf': file } }, { engine, maxTokens: 16 })).rejects.toThrow(message);
      // dequantized, a non-finite scale is refused as well; -128 is a value float32 holds
      if (!/-128/.test(String(message))) await expect(loadDecoder({ files: { 'bad.gguf': file } }, { engine, weights: 'float32', maxTokens: 16 })).rejects.toThrow(message);
    }
    // truncated: the header's last tensor runs past the end of the file
    const whole = bytes('qwen2w-q4_0');
    await expect(loadDecoder({ files: { 'bad.gguf': whole.subarray(0, whole.length - 40) } }, { engine })).rejects.toThrow(/bad\.gguf: tensor "[a-z_.0-9]+": its data \[\d+, \d+\) runs past the end of the file/);
    const after = engine.tensor([4]);
    if (engine.name === 'wasm') expect(after.data.byteOffset).toBe(before.data.byteOffset + 16);
    before.dispose();
    after.dispose();
  });
});
