// A decoder built from an engine's public ops: the embedding table and the LM head are linear layers
// (lookup reads the table's rows); each layer is an RMSNorm, the attention block (one linear layer
// for q, k and v, whose output rows are copied apart; the per-head q/k RMSNorm; batchAttention over
// the layer's own KV pool with rotary, window and softcap; the o linear layer), a residual add, an
// RMSNorm, the gated MLP (one linear layer for gate and up, the gated activation, the down
// projection) and a residual add; then the final norm, the LM head and the final softcap. Every
// linear layer stores its weight in the decoder's format. The same code runs on the reference engine
// (the readable definition) and on the wasm engine, where every tensor between the steps is an
// engine tensor: nothing goes through JavaScript between the layers.

import { disposeSymbol } from '../core/dispose.js';
import type { LinearLayer } from '../core/modelTypes.js';
import type { KVPool } from '../core/servingTypes.js';
import { formatShape, type Tensor } from '../core/tensor.js';
import type { Engine, EngineTensor } from '../core/types.js';
import { checkOut, type Out } from '../core/validate.js';
import type { DecoderPlan } from './config.js';
import { generate } from './generate.js';
import { ModelSequence } from './sequence.js';
import type { Decoder, DecoderConfig, DecoderSequence, ForwardOptions, GenerateOptions } from './types.js';

/** One decoder layer's parts. Norm weights are engine tensors, read in place by rmsNorm. */
export interface DecoderLayer {
  readonly inputNorm: EngineTensor;
  /** Gemma's post_attention_layernorm (on the attention's output), else null. */
  readonly attentionOutNorm: EngineTensor | null;
  readonly mlpNorm: EngineTensor;
  /** Gemma's post_feedforward_layernorm, else null. */
  readonly mlpOutNorm: EngineTensor | null;
  /** [(Hq + 2·Hkv)·D, E]: q's rows, then k's, then v's, so that one call (one quantization of its input) makes all three. */
  readonly qkv: LinearLayer;
  readonly o: LinearLayer;
  /** [D]: RMSNorm of every head's query and key before rotary (Qwen3, Gemma 3), else null. */
  readonly qNorm: EngineTensor | null; readonly kNorm: EngineTensor | null;
  /** [2I, E]: the gate's rows, then the up projection's. */
  readonly gateUp: LinearLayer;
  readonly down: LinearLayer;
  readonly pool: KVPool;
}

/** The weights of a decoder, as the loader built them. */
export interface DecoderParts {
  /** [vocab, E]: read by lookup; the LM head too when the embeddings are tied. */
  readonly embedding: LinearLayer;
  readonly layers: readonly DecoderLayer[];
  readonly finalNorm: EngineTensor;
  /** [vocab, E]; the embedding itself when tied. */
  readonly lmHead: LinearLayer;
  /** Engine memory of the pools. */
  readonly poolBytes: number;
}

/** Rows held by the scratch tensors of a forward; grown to the largest T seen. */
interface Scratch {
  rows: number;
  hidden: EngineTensor; normed: EngineTensor; branch: EngineTensor; gateUp: EngineTensor; act: EngineTensor;
  qkv: EngineTensor; q: EngineTensor; k: EngineTensor; v: EngineTensor; heads: EngineTensor;
}

/** A forward's arguments, checked. */
interface ForwardPlan {
  readonly T: number;
  readonly tokens: Int32Array;
  readonly sequences: readonly ModelSequence[];
  readonly queryLens: readonly number[];
  readonly last: boolean;
  readonly out: Out | undefined;
}

const layerNorms = (l: DecoderLayer) => [l.inputNorm, l.attentionOutNorm, l.mlpNorm, l.mlpOutNorm, l.qNorm, l.kNorm];
const layerLinears = (l: DecoderLayer) => [l.qkv, l.o, l.gateUp, l.down];

/** Rows of T rows of `widths` columns each, side by side in `from`, copied apart into `to` (each its rows one after another). */
function splitColumns(from: Float32Array, T: number, to: readonly Float32Array[], widths: readonly number[]): void {
  const W = widths.reduce((a, b) => a + b, 0);
  for (let t = 0; t < T; t++) {
    for (let i = 0, at = t * W; i < to.length; at += widths[i], i++) to[i].set(from.subarray(at, at + widths[i]), t * widths[i]);
  }
}

/** The first `rows` rows of an engine tensor of `cols` columns, as a tensor (made afresh: memory growth detaches views). */
const view = (t: EngineTensor, rows: number, cols: number): Tensor => ({ data: t.data.subarray(0, rows * cols), shape: [rows, cols] });

export class ModelDecoder implements Decoder {
  private parts: DecoderParts | null;
  private scratch: Scratch | null = null;
  readonly config: DecoderConfig;

  /** dispose(), for `using`: set per instance, since a computed method name would keep this class in bundles that never use it. */
  declare readonly [Symbol.dispose]: () => void;

  constructor(readonly engine: Engine, readonly plan: DecoderPlan, parts: DecoderParts) {
    this.parts = parts;
    (this as { [disposeSymbol]: () => void })[disposeSymbol] = () => this.dispose();
    this.config = plan.config;
  }

  private get alive(): DecoderParts {
    if (this.parts === null) throw new Error('qkv: this decoder has been disposed');
    return this.parts;
  }

  get bytes(): number {
    const p = this.alive;
    const norms = (l: DecoderLayer) => layerNorms(l).reduce((n, t) => n + (t ? t.data.length * 4 : 0), 0);
    const linears = p.layers.reduce((n, l) => n + layerLinears(l).reduce((m, x) => m + x.bytes, 0) + norms(l), 0);
    return p.embedding.bytes + (p.lmHead === p.embedding ? 0 : p.lmHead.bytes) + linears + p.finalNorm.data.length * 4 + p.poolBytes;
  }

  get freeBlocks(): number {
    return this.alive.layers[0].pool.freeBlocks;
  }

  get blockSize(): number {
    return this.alive.layers[0].pool.blockSize;
  }

  sequence(): DecoderSequence {
    return new ModelSequence(this, this.alive.layers.map((l) => l.pool.sequence()));
  }

  /** The scratch tensors for T rows, grown when T is more than they hold. */
  private scratchFor(T: number): Scratch {
    if (this.scratch && this.scratch.rows >= T) return this.scratch;
    this.freeScratch();
    const { hiddenSize: E, intermediateSize: I, numHeads: Hq, numKvHeads: Hkv, headDim: D } = this.config;
    const rows = Math.max(T, 16), made: EngineTensor[] = [];
    const make = (cols: number) => {
      const t = this.engine.tensor([rows, cols]);
      made.push(t);
      return t;
    };
    try {
      this.scratch = {
        rows, hidden: make(E), normed: make(E), branch: make(E), gateUp: make(2 * I), act: make(I),
        qkv: make((Hq + 2 * Hkv) * D), q: make(Hq * D), k: make(Hkv * D), v: make(Hkv * D), heads: make(Hq * D),
      };
    } catch (error) {
      for (const t of made) t.dispose();
      throw error;
    }
    return this.scratch;
  }

  private freeScratch(): void {
    if (!this.scratch) return;
    const s = this.scratch;
    for (const t of [s.hidden, s.normed, s.branch, s.gateUp, s.act, s.qkv, s.q, s.k, s.v, s.heads]) t.dispose();
    this.scratch = null;
  }

  forward(tokens: ArrayLike<number>, options: ForwardOptions): Tensor {
    const parts = this.alive;
    const f = this.planForward(tokens, options);
    const { T, sequences, queryLens } = f;
    const { engine, plan } = this;
    const { hiddenSize: E, intermediateSize: I, vocabSize: V, rmsNormEps: eps } = this.config;
    const unitOffset = plan.arch.unitOffsetNorms;
    const s = this.scratchFor(T);
    parts.embedding.lookup(f.tokens, { scale: plan.embeddingScale, out: view(s.hidden, T, E) });
    parts.layers.forEach((layer, i) => {
      engine.rmsNorm(view(s.hidden, T, E), layer.inputNorm, { eps, unitOffset, out: view(s.normed, T, E) });
      this.attention(layer, i, s, f);
      if (layer.attentionOutNorm) engine.rmsNorm(view(s.branch, T, E), layer.attentionOutNorm, { eps, unitOffset, out: view(s.branch, T, E) });
      engine.add(view(s.hidden, T, E), view(s.branch, T, E), { out: view(s.hidden, T, E) });
      engine.rmsNorm(view(s.hidden, T, E), layer.mlpNorm, { eps, unitOffset, out: view(s.normed, T, E) });
      layer.gateUp.forward(view(s.normed, T, E), { out: view(s.gateUp, T, 2 * I) });
      engine.gatedActivation(view(s.gateUp, T, 2 * I), { activation: plan.activation, out: view(s.act, T, I) });
      layer.down.forward(view(s.act, T, I), { out: view(s.branch, T, E) });
      if (layer.mlpOutNorm) engine.rmsNorm(view(s.branch, T, E), layer.mlpOutNorm, { eps, unitOffset, out: view(s.branch, T, E) });
      engine.add(view(s.hidden, T, E), view(s.branch, T, E), { out: view(s.hidden, T, E) });
    });
    for (let q = 0, at = 0; q < sequences.length; at += queryLens[q], q++) sequences[q].fed(f.tokens, at, at + queryLens[q]);
    // the LM head reads only the rows whose logits are asked for
    let rows = T;
    if (f.last) {
      rows = sequences.length;
      const h = s.hidden.data;
      for (let q = 0, end = 0; q < sequences.length; q++) {
        end += queryLens[q];
        h.copyWithin(q * E, (end - 1) * E, end * E);
      }
    }
    engine.rmsNorm(view(s.hidden, rows, E), parts.finalNorm, { eps, unitOffset, out: view(s.normed, rows, E) });
    const logits = parts.lmHead.forward(view(s.normed, rows, E), { out: f.out?.tensor });
    if (plan.finalSoftcap !== undefined) engine.softcap(logits, plan.finalSoftcap, { out: logits });
    if (logits.shape[1] !== V) throw new Error(`qkv: the LM head gave ${formatShape(logits.shape)} logits for a vocabulary of ${V}`);
    return logits;
  }

  /** The attention block of layer i: normed rows -> s.branch. */
  private attention(layer: DecoderLayer, i: number, s: Scratch, f: ForwardPlan): void {
    const { engine, plan } = this;
    const { hiddenSize: E, numHeads: Hq, numKvHeads: Hkv, headDim: D, rmsNormEps: eps } = this.config;
    const { T } = f, unitOffset = plan.arch.unitOffsetNorms;
    const W = (Hq + 2 * Hkv) * D;
    layer.qkv.forward(view(s.normed, T, E), { out: view(s.qkv, T, W) });
    splitColumns(s.qkv.data, T, [s.q.data, s.k.data, s.v.data], [Hq * D, Hkv * D, Hkv * D]);
    if (layer.qNorm) engine.rmsNorm(view(s.q, T * Hq, D), layer.qNorm, { eps, unitOffset, out: view(s.q, T * Hq, D) });
    if (layer.kNorm) engine.rmsNorm(view(s.k, T * Hkv, D), layer.kNorm, { eps, unitOffset, out: view(s.k, T * Hkv, D) });
    const heads = (t: EngineTensor, H: number): Tensor => ({ data: t.data.subarray(0, T * H * D), shape: [T, H, D] });
    const l = plan.layers[i];
    engine.batchAttention(heads(s.q, Hq), heads(s.k, Hkv), heads(s.v, Hkv), {
      sequences: f.sequences.map((q) => q.kv[i]), queryLens: f.queryLens,
      rotary: l.rotary, scale: plan.attentionScale, softcap: plan.attentionSoftcap,
      window: l.window === null ? undefined : { left: l.window - 1 },
      out: heads(s.heads, Hq),
    });
    layer.o.forward(view(s.heads, T, Hq * D), { out: view(s.branch, T, E) });
  }

  /** Checks a forward's arguments before anything runs: a refused forward changes nothing. */
  private planForward(tokens: ArrayLike<number>, options: ForwardOptions): ForwardPlan {
    const op = 'Decoder.forward';
    if (options === null || typeof options !== 'object') throw new TypeError(`${op}: options must be an object { sequences, queryLens, logits?, out? }`);
    const { sequences, queryLens, logits = 'last', out } = options;
    if (logits !== 'last' && logits !== 'all') throw new RangeError(`${op}: options.logits must be 'last' or 'all', got ${String(logits)}`);
    if (tokens === null || typeof tokens !== 'object' || typeof tokens.length !== 'number') throw new TypeError(`${op}: tokens must be an array of token ids`);
    const T = tokens.length, V = this.config.vocabSize;
    const ids = new Int32Array(T);
    for (let i = 0; i < T; i++) {
      const t = tokens[i];
      if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t >= V) throw new RangeError(`${op}: tokens[${i}] must be an integer in [0, ${V}), got ${String(t)}`);
      ids[i] = t;
    }
    if (!Array.isArray(sequences) || sequences.length === 0) throw new TypeError(`${op}: options.sequences must be a non-empty array of this decoder's sequences`);
    const seqs = sequences.map((q, i) => {
      if (!(q instanceof ModelSequence) || q.owner !== this) throw new TypeError(`${op}: options.sequences[${i}] is not a sequence of this decoder`);
      if (q.freed) throw new Error(`${op}: options.sequences[${i}] has been freed`);
      return q;
    });
    if (new Set(seqs).size !== seqs.length) throw new RangeError(`${op}: a sequence appears twice in options.sequences`);
    if (queryLens === null || typeof queryLens !== 'object' || queryLens.length !== seqs.length) {
      throw new RangeError(`${op}: options.queryLens must have one length per sequence (${seqs.length})`);
    }
    const lens = Array.from({ length: seqs.length }, (_, i) => queryLens[i]);
    let total = 0;
    lens.forEach((n, i) => {
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw new RangeError(`${op}: options.queryLens[${i}] must be a non-negative integer, got ${String(n)}`);
      if (logits === 'last' && n === 0) throw new RangeError(`${op}: options.queryLens[${i}] is 0, but logits 'last' needs a new token of every sequence`);
      const length = seqs[i].length + n;
      if (length > this.config.maxPositions) throw new RangeError(`${op}: sequence ${i} would hold ${length} positions, over the model's ${this.config.maxPositions}`);
      total += n;
    });
    if (total !== T) throw new RangeError(`${op}: options.queryLens add up to ${total}, but tokens has ${T}`);
    const rows = logits === 'last' ? seqs.length : T;
    return { T, tokens: ids, sequences: seqs, queryLens: lens, last: logits === 'last', out: checkOut(op, out, [rows, V]) };
  }

  generate(prompt: ArrayLike<number>, options: GenerateOptions = {}): AsyncGenerator<number, void, undefined> {
    this.alive;
    return generate(this, prompt, options);
  }

  dispose(): void {
    const p = this.parts;
    if (p === null) return;
    this.parts = null;
    this.freeScratch();
    for (const l of p.layers) {
      for (const t of layerNorms(l)) t?.dispose();
      for (const x of layerLinears(l)) x.dispose();
      l.pool.dispose();
    }
    p.finalNorm.dispose();
    p.embedding.dispose();
    if (p.lmHead !== p.embedding) p.lmHead.dispose();
  }

}
