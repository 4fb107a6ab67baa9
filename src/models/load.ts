// loadDecoder: config.json -> a plan; every tensor the plan needs is checked (present, of its shape)
// before anything is allocated; then tensors are read one at a time straight into an engine tensor,
// turned into the layer that keeps them (a linear layer stores its own format; a norm weight stays
// as it is) and the staging tensor is let go, so loading holds the weights plus one tensor.
// A GGUF's Q8_0 and Q4_0 tensors are read instead as the int8/int4 groups of 32 they are (readGroups)
// and given to createLinear as they are, without requantizing, unless `weights` asks for another
// storage (storageOf says which).
// A float tensor that becomes an int8/int4 layer is read a piece of rows at a time where the format
// allows it (safetensors' readRows) and handed to the engine's createLinearBuilder, which quantizes
// and packs each piece as it comes (quantize), so that loading holds the packed weights plus a piece,
// never a float32 copy or the integers of a whole tensor.
// Anything that fails (a read, an abort, the engine's memory) disposes what was built.

import type { LinearDtype, LinearLayer, QuantizedWeight } from '../core/modelTypes.js';
import type { Tensor } from '../core/tensor.js';
import type { Engine, EngineTensor } from '../core/types.js';
import { checkPositiveCount, describeValue } from '../core/validate.js';
import { type Checkpoint, type CheckpointSource, openCheckpoint } from './checkpoint.js';
import { type DecoderPlan, planDecoder } from './config.js';
import { type DecoderLayer, type DecoderParts, ModelDecoder } from './decoder.js';
import type { Decoder, DecoderOptions } from './types.js';

const OP = 'loadDecoder';
const LINEAR_DTYPES: readonly LinearDtype[] = ['float32', 'float16', 'int8', 'int4'];
const KV_DTYPES = ['float32', 'float16', 'int8'] as const;

interface LoadOptions {
  engine: Engine;
  /** Every linear layer's storage; undefined: each as its tensors are stored (see storageOf). */
  weights: LinearDtype | undefined;
  groupSize: number | undefined;
  kvDtype: (typeof KV_DTYPES)[number];
  blockSize: number;
  maxTokens: number;
}

function checkOptions(options: DecoderOptions): LoadOptions {
  if (options === null || typeof options !== 'object') throw new TypeError(`${OP}: options must be an object { engine, weights?, kv?, maxTokens?, … }`);
  const { engine, weights, groupSize, kv = {}, maxTokens = 8192 } = options;
  if (engine === null || typeof engine !== 'object' || typeof (engine as Engine).createLinear !== 'function') {
    throw new TypeError(`${OP}: options.engine must be an engine (reference or createEngine()), got ${describeValue(engine)}`);
  }
  if (weights !== undefined && !LINEAR_DTYPES.includes(weights)) throw new RangeError(`${OP}: options.weights must be one of ${LINEAR_DTYPES.join(', ')}, got ${String(weights)}`);
  if (kv === null || typeof kv !== 'object') throw new TypeError(`${OP}: options.kv must be an object { dtype?, blockSize? }`);
  const { dtype: kvDtype = 'float32', blockSize = 16 } = kv;
  if (!KV_DTYPES.includes(kvDtype)) throw new RangeError(`${OP}: options.kv.dtype must be one of ${KV_DTYPES.join(', ')}, got ${String(kvDtype)}`);
  checkPositiveCount(`${OP}: options.kv.blockSize`, blockSize);
  checkPositiveCount(`${OP}: options.maxTokens`, maxTokens);
  return { engine, weights, groupSize, kvDtype, blockSize, maxTokens };
}

/** Reads the named tensors of `ckpt` into engine memory, checked and staged. */
class Stager {
  constructor(private readonly ckpt: Checkpoint, private readonly engine: Engine, private readonly signal: AbortSignal | undefined) {}

  /** Throws unless the checkpoint holds `name` of `shape`. */
  expect(name: string, shape: readonly number[]): void {
    const t = this.ckpt.tensors.get(name);
    if (!t) throw new Error(`${OP}: the checkpoint has no tensor "${name}"`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`${OP}: ${t.file}: tensor "${name}" has shape [${t.shape.join(', ')}], the config needs [${shape.join(', ')}]`);
    }
  }

  has(name: string): boolean {
    return this.ckpt.tensors.has(name);
  }

  /** The tensors `names` (each of `rows[i]` rows of `cols`), one after another in one engine tensor. */
  async read(names: readonly string[], rows: readonly number[], cols: number | null): Promise<EngineTensor> {
    const total = rows.reduce((a, b) => a + b, 0);
    const t = this.engine.tensor(cols === null ? [total] : [total, cols]);
    try {
      let at = 0;
      for (let i = 0; i < names.length; i++) {
        this.signal?.throwIfAborted();
        const n = rows[i] * (cols ?? 1);
        // the tensor's view is taken again after every await: another load or op on this engine
        // may grow its memory meanwhile, which moves the view
        const from = at;
        await this.ckpt.read(names[i], { get data() { return t.data.subarray(from, from + n); } });
        at += n;
      }
      this.signal?.throwIfAborted();
      return t;
    } catch (error) {
      t.dispose();
      throw error;
    }
  }

  /**
   * The float tensors `names` (each of `rows[i]` rows of `cols`), one after another, as one int8/int4
   * layer built by the engine's createLinearBuilder from the rows as they are read: QUANTIZE_FLOATS
   * values at a time when the checkpoint reads rows (readRows), else a tensor at a time. So neither
   * the float weight nor its integers are held whole. A NaN or an infinity (which a group's scale
   * cannot hold) fails the load, naming the tensor, row and inputs. The builder is disposed if
   * anything fails.
   */
  async quantize(names: readonly string[], rows: readonly number[], cols: number, dtype: 'int8' | 'int4', g: number, bias?: Tensor): Promise<LinearLayer> {
    const total = rows.reduce((a, b) => a + b, 0);
    const builder = this.engine.createLinearBuilder([total, cols], { dtype, groupSize: g, bias });
    try {
      const byRows = this.ckpt.readRows?.bind(this.ckpt);
      const step = byRows ? Math.max(1, Math.floor(QUANTIZE_FLOATS / cols)) : Number.POSITIVE_INFINITY;
      let piece: Float32Array | null = null;
      for (let i = 0; i < names.length; i++) {
        for (let r0 = 0; r0 < rows[i]; r0 += step) {
          this.signal?.throwIfAborted();
          const r1 = Math.min(rows[i], r0 + step);
          const values = byRows
            ? await byRows(names[i], r0, r1, (piece ??= new Float32Array(step * cols)).subarray(0, (r1 - r0) * cols))
            : await this.ckpt.read(names[i]);
          const bad = firstNonFinite(values);
          if (bad >= 0) {
            const t = this.ckpt.tensors.get(names[i])!, group = Math.floor((bad % cols) / g) * g;
            throw new Error(`${OP}: ${t.file}: tensor "${names[i]}" row ${r0 + Math.floor(bad / cols)}, inputs ${group}..${group + g - 1}: a NaN or an infinity, which ${dtype} cannot store (load it as float32 or float16)`);
          }
          builder.append({ data: values, shape: [r1 - r0, cols] });
        }
      }
      this.signal?.throwIfAborted();
      return builder.finish();
    } finally {
      builder.dispose();
    }
  }

  /**
   * The int8/int4 groups of 32 that tensors `names` are all stored as (GGUF's Q8_0, Q4_0), when the
   * reader gives them as they are (readGroups); else null.
   */
  storedGroups(names: readonly string[]): 'int8' | 'int4' | null {
    if (this.ckpt.readGroups === undefined) return null;
    const types = new Set(names.map((n) => this.ckpt.tensors.get(n)?.dtype));
    if (types.size !== 1) return null;
    const [type] = types;
    return type === 'Q8_0' ? 'int8' : type === 'Q4_0' ? 'int4' : null;
  }

  /** The tensors `names` (each of `rows[i]` rows of `cols`), one after another, as one weight of their stored groups. */
  async readGroups(names: readonly string[], rows: readonly number[], cols: number, dtype: 'int8' | 'int4'): Promise<QuantizedWeight> {
    const total = rows.reduce((a, b) => a + b, 0);
    const q = new Int8Array(total * cols), scales = new Float32Array((total * cols) / GGUF_GROUP);
    let at = 0;
    for (let i = 0; i < names.length; i++) {
      this.signal?.throwIfAborted();
      const n = rows[i] * cols;
      await this.ckpt.readGroups!(names[i], { q: q.subarray(at, at + n), scales: scales.subarray(at / GGUF_GROUP, (at + n) / GGUF_GROUP) });
      at += n;
    }
    this.signal?.throwIfAborted();
    return { dtype, shape: [total, cols], groupSize: GGUF_GROUP, q, scales };
  }
}

/** Values per block of GGUF's Q8_0 and Q4_0: the groupSize of the layers that keep them. */
const GGUF_GROUP = 32;

/** Index of the first NaN or infinity of v, or -1 (one pass of adds when there is none). */
function firstNonFinite(v: Float32Array): number {
  // v · 0 is 0 but for NaN and ±Infinity; four sums, so that the adds need not wait on each other
  let a = 0, b = 0, c = 0, d = 0, i = 0;
  for (; i + 4 <= v.length; i += 4) {
    a += v[i] * 0;
    b += v[i + 1] * 0;
    c += v[i + 2] * 0;
    d += v[i + 3] * 0;
  }
  for (; i < v.length; i++) a += v[i] * 0;
  return a + b + c + d === 0 ? -1 : v.findIndex((x) => !Number.isFinite(x));
}

/** Float32 values Stager.quantize reads at once (4 MB). */
const QUANTIZE_FLOATS = 1 << 20;

/** Tensor names of layer i, as transformers saves them. */
const layerName = (i: number, part: string) => `model.layers.${i}.${part}`;

/** The tensors the plan needs, each with its shape, so that all are checked before anything is read. */
function expectAll(stage: Stager, plan: DecoderPlan): void {
  const { vocabSize: V, hiddenSize: E, numHeads: Hq, numKvHeads: Hkv, headDim: D, intermediateSize: I, numLayers } = plan.config;
  const { arch } = plan;
  stage.expect('model.embed_tokens.weight', [V, E]);
  stage.expect('model.norm.weight', [E]);
  if (!plan.config.tieWordEmbeddings) stage.expect('lm_head.weight', [V, E]);
  for (let i = 0; i < numLayers; i++) {
    const n = (part: string, shape: number[]) => stage.expect(layerName(i, part), shape);
    for (const norm of normNames(plan)) if (norm) n(`${norm}.weight`, [E]);
    if (arch.fusedProjections) {
      n('self_attn.qkv_proj.weight', [(Hq + 2 * Hkv) * D, E]);
      n('mlp.gate_up_proj.weight', [2 * I, E]);
    } else {
      n('self_attn.q_proj.weight', [Hq * D, E]);
      n('self_attn.k_proj.weight', [Hkv * D, E]);
      n('self_attn.v_proj.weight', [Hkv * D, E]);
      n('mlp.gate_proj.weight', [I, E]);
      n('mlp.up_proj.weight', [I, E]);
      if (plan.qkvBias) for (const [p, rows] of [['q', Hq], ['k', Hkv], ['v', Hkv]] as const) n(`self_attn.${p}_proj.bias`, [rows * D]);
      if (plan.mlpBias) for (const p of ['gate', 'up']) n(`mlp.${p}_proj.bias`, [I]);
    }
    n('self_attn.o_proj.weight', [E, Hq * D]);
    n('mlp.down_proj.weight', [E, I]);
    if (plan.mlpBias) n('mlp.down_proj.bias', [E]);
    if (arch.qkNorm) {
      n('self_attn.q_norm.weight', [D]);
      n('self_attn.k_norm.weight', [D]);
    }
  }
}

/** The layer norms' names: input, on the attention's output, the MLP's input, on the MLP's output. */
function normNames(plan: DecoderPlan): [string, string | null, string, string | null] {
  return plan.arch.postNorms
    ? ['input_layernorm', 'post_attention_layernorm', 'pre_feedforward_layernorm', 'post_feedforward_layernorm']
    : ['input_layernorm', null, 'post_attention_layernorm', null];
}

/** What a failed load must give back. */
type Disposable = { dispose(): void };

/** How one linear layer stores its weight: its dtype, and whether its tensors' groups are taken as stored. */
interface Storage {
  readonly dtype: LinearDtype;
  readonly asStored: boolean;
}

/**
 * How the linear layer of tensors `names` stores its weight. `weights` not given: as the tensors are
 * stored, GGUF's Q8_0 / Q4_0 as int8 / int4 groups of 32, float tensors (and a layer whose tensors
 * differ) as float32. `weights` given: as it says; tensors already in that format (Q8_0 for int8, Q4_0
 * for int4, with groupSize 32) are taken as stored, anything else is read as float32 (Q8_0 and Q4_0
 * dequantized) and converted.
 */
function storageOf(stage: Stager, names: readonly string[], o: LoadOptions): Storage {
  const stored = stage.storedGroups(names);
  if (o.weights === undefined) return { dtype: stored ?? 'float32', asStored: stored !== null };
  return { dtype: o.weights, asStored: stored === o.weights && (o.groupSize ?? GGUF_GROUP) === GGUF_GROUP };
}

async function buildParts(stage: Stager, plan: DecoderPlan, o: LoadOptions, built: Disposable[]): Promise<DecoderParts> {
  const { engine } = o;
  const { vocabSize: V, hiddenSize: E, numHeads: Hq, numKvHeads: Hkv, headDim: D, intermediateSize: I, numLayers } = plan.config;
  const keep = <T extends Disposable>(x: T): T => {
    built.push(x);
    return x;
  };
  const create = (weight: Tensor | QuantizedWeight, dtype: LinearDtype, bias?: Tensor): LinearLayer =>
    keep('q' in weight ? engine.createLinear(weight, { bias }) : engine.createLinear(weight, { dtype, bias, groupSize: o.groupSize }));
  /** Reads tensors into one staging tensor, makes what keeps them, lets the staging go. */
  const staged = async <T>(names: string[], rows: number[], cols: number | null, make: (t: EngineTensor) => T): Promise<T> => {
    const t = await stage.read(names, rows, cols);
    try {
      return make(t);
    } finally {
      t.dispose();
    }
  };
  /** The linear layer over tensors `names` stacked by rows ([Σ rows, cols]), stored as `how` says. */
  const linear = async (names: string[], rows: number[], cols: number, how: Storage, bias?: Tensor): Promise<LinearLayer> => {
    const g = o.groupSize ?? GGUF_GROUP;
    // (a groupSize createLinear refuses goes the staged way, to its message)
    if (how.asStored || ((how.dtype === 'int8' || how.dtype === 'int4') && g % 32 === 0 && cols % g === 0)) {
      const dtype = how.dtype as 'int8' | 'int4';
      if (!how.asStored) return keep(await stage.quantize(names, rows, cols, dtype, g, bias));
      return create(await stage.readGroups(names, rows, cols, dtype), how.dtype, bias);
    }
    return staged(names, rows, cols, (t) => create(t, how.dtype, bias));
  };
  const bias = async (names: string[], rows: number[]) => stage.read(names, rows, null);
  /** As `linear`, stored as storageOf says, with the bias of tensors `biases` (stacked as the weights) if given. */
  const one = async (names: string[], rows: number[], cols: number, biases?: string[]): Promise<LinearLayer> => {
    const b = biases ? await bias(biases, rows) : null;
    try {
      return await linear(names, rows, cols, storageOf(stage, names, o), b ?? undefined);
    } finally {
      b?.dispose();
    }
  };

  // A tied table is the LM head, stored as the linear layers are. An untied table is only looked up: it keeps the
  // checkpoint's values, in float32 (float16 when the weights are float16), or its Q8_0/Q4_0 groups
  // as stored, whose lookup gives exactly the dequantized values float32 would hold.
  const table = 'model.embed_tokens.weight';
  const tableGroups = stage.storedGroups([table]);
  const tableStorage: Storage = plan.config.tieWordEmbeddings ? storageOf(stage, [table], o)
    : tableGroups !== null ? { dtype: tableGroups, asStored: true }
    : { dtype: o.weights === 'float16' ? 'float16' : 'float32', asStored: false };
  const embedding = await linear([table], [V], E, tableStorage);
  const lmHead = plan.config.tieWordEmbeddings ? embedding : await one(['lm_head.weight'], [V], E);
  /** A norm's weight [size], kept as an engine tensor that rmsNorm reads in place. */
  const norm = async (name: string, size = E) => keep(await stage.read([name], [size], null));
  const layers: DecoderLayer[] = [];
  const blocks = Math.ceil(o.maxTokens / o.blockSize);
  let poolBytes = 0;
  const poolWidth = o.kvDtype === 'float32' ? 4 : o.kvDtype === 'float16' ? 2 : 1;
  for (let i = 0; i < numLayers; i++) {
    const n = (part: string) => layerName(i, part);
    const [inName, attnOutName, mlpInName, mlpOutName] = normNames(plan);
    const inputNorm = await norm(n(`${inName}.weight`));
    const attentionOutNorm = attnOutName ? await norm(n(`${attnOutName}.weight`)) : null;
    const mlpNorm = await norm(n(`${mlpInName}.weight`));
    const mlpOutNorm = mlpOutName ? await norm(n(`${mlpOutName}.weight`)) : null;
    // q, k and v as one layer (their rows stacked: one quantization of the input, one call), and gate with up
    const attn = (p: string) => n(`self_attn.${p}.weight`), mlp = (p: string) => n(`mlp.${p}.weight`);
    const qkv = plan.arch.fusedProjections
      ? await one([attn('qkv_proj')], [(Hq + 2 * Hkv) * D], E)
      : await one(['q_proj', 'k_proj', 'v_proj'].map(attn), [Hq * D, Hkv * D, Hkv * D], E, plan.qkvBias ? ['q', 'k', 'v'].map((p) => n(`self_attn.${p}_proj.bias`)) : undefined);
    const gateUp = plan.arch.fusedProjections
      ? await one([mlp('gate_up_proj')], [2 * I], E)
      : await one([mlp('gate_proj'), mlp('up_proj')], [I, I], E, plan.mlpBias ? [n('mlp.gate_proj.bias'), n('mlp.up_proj.bias')] : undefined);
    const o_ = await one([attn('o_proj')], [E], Hq * D);
    const down = await one([mlp('down_proj')], [E], I, plan.mlpBias ? [n('mlp.down_proj.bias')] : undefined);
    // Gemma 3's q/k norms multiply by 1 + w like its other norms: rmsNorm's unitOffset does that
    const qNorm = plan.arch.qkNorm ? await norm(n('self_attn.q_norm.weight'), D) : null;
    const kNorm = plan.arch.qkNorm ? await norm(n('self_attn.k_norm.weight'), D) : null;
    const pool = keep(engine.createKVPool({ kvHeads: Hkv, headDim: D, blocks, blockSize: o.blockSize, dtype: o.kvDtype }));
    poolBytes += blocks * o.blockSize * Hkv * (2 * D * poolWidth + (o.kvDtype === 'int8' ? 8 : 0));
    layers.push({ inputNorm, attentionOutNorm, mlpNorm, mlpOutNorm, qkv, o: o_, qNorm, kNorm, gateUp, down, pool });
  }
  const finalNorm = await norm('model.norm.weight');
  return { embedding, layers, finalNorm, lmHead, poolBytes };
}

/**
 * Loads a Hugging Face checkpoint (a folder path or URL with config.json and model.safetensors, or
 * model.safetensors.index.json and its shards; or the same files by name) into a decoder whose
 * every layer runs on `options.engine`.
 */
export async function loadDecoder(source: CheckpointSource, options: DecoderOptions): Promise<Decoder> {
  const o = checkOptions(options);
  const { signal, onProgress } = options;
  const ckpt = await openCheckpoint(source, { signal, onProgress });
  const built: Disposable[] = [];
  try {
    const generation = await ckpt.text('generation_config.json').then((t) => (t === null ? null : JSON.parse(t) as Record<string, unknown>)).catch(() => null);
    const plan = planDecoder(ckpt.config, o.maxTokens, generation);
    const stage = new Stager(ckpt, o.engine, signal);
    expectAll(stage, plan);
    const parts = await buildParts(stage, plan, o, built);
    return new ModelDecoder(o.engine, plan, parts);
  } catch (error) {
    for (const x of built.reverse()) {
      try {
        x.dispose();
      } catch {
        // the engine itself was disposed: nothing is left to give back
      }
    }
    throw error;
  } finally {
    await ckpt.close();
  }
}
