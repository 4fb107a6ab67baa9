// Validation and resolution of multi-head attention's inputs and PyTorch nn.MultiheadAttention
// parameters, shared by the reference composition (src/reference/multiHeadAttention.ts) and the
// wasm engine's in-memory path (src/wasm/multiHeadAttention.ts).

import { broadcastStrides } from './broadcast.js';
import { checkCacheType, checkRoom } from './kvCache.js';
import { CAUSAL_BOTTOM_RIGHT, CAUSAL_NONE, parseCausal } from './scaledDotProductAttentionPlan.js';
import { checkShape, formatShape, fromData, type Tensor } from './tensor.js';
import type { AttentionOptions, KVCache, MultiHeadOptions, MultiHeadParams, OutputWithWeights } from './types.js';
import {type Checked, 
  checkBoolean, checkIntact, checkMask, checkOptions, checkOut, checkTensor, describeValue, emptyResult, expectShape, type Out,
} from './validate.js';

/** The calls that validate through planMultiHead: every message starts with one of these names. */
export type MultiHeadOp = 'multiHeadAttention' | 'selfAttention' | 'createMultiHeadAttention' | typeof LAYER_FORWARD;
export const LAYER_FORWARD = 'MultiHeadAttentionLayer.forward';

export interface Projections {
  Wq: Checked; Wk: Checked; Wv: Checked;
  bq: Checked | null; bk: Checked | null; bv: Checked | null;
}

const TENSOR_PARAMS = ['inProjWeight', 'qProjWeight', 'kProjWeight', 'vProjWeight', 'inProjBias', 'outProjWeight', 'outProjBias', 'biasK', 'biasV'] as const;
const PARAM_RANKS = { inProjWeight: 2, qProjWeight: 2, kProjWeight: 2, vProjWeight: 2, inProjBias: 1, outProjWeight: 2, outProjBias: 1, biasK: 3, biasV: 3 } as const;

/** MultiHeadParams as read once: every tensor checked (see Checked), numHeads and addZeroAttn as given. */
export type ReadParams = { numHeads?: unknown; addZeroAttn?: unknown } & { [K in (typeof TENSOR_PARAMS)[number]]?: Checked };

/** Reads params once, each tensor checked for its type and rank. */
export function readParams(op: MultiHeadOp, params: unknown): ReadParams {
  if (params === null || typeof params !== 'object') throw new TypeError(`${op}: params must be an object (MultiHeadParams), got ${describeValue(params)}`);
  const raw = checkOptions<MultiHeadParams>(`${op}: params`, params, ['numHeads', 'addZeroAttn', ...TENSOR_PARAMS]);
  const read: ReadParams = { numHeads: raw.numHeads, addZeroAttn: raw.addZeroAttn };
  for (const name of TENSOR_PARAMS) {
    if (raw[name] !== undefined) read[name] = checkTensor(`${op}: params.${name}`, raw[name], [PARAM_RANKS[name]]);
  }
  return read;
}

function resolveProjections(op: MultiHeadOp, p: ReadParams, E: number, kdim: number, vdim: number): Projections {
  let Wq: Checked, Wk: Checked, Wv: Checked;
  const separate = [p.qProjWeight, p.kProjWeight, p.vProjWeight].some((w) => w !== undefined);
  if (p.inProjWeight !== undefined && separate) {
    throw new TypeError(`${op}: params has inProjWeight and qProjWeight/kProjWeight/vProjWeight: give one or the other`);
  }
  if (p.inProjWeight !== undefined) {
    const W = p.inProjWeight;
    expectShape(`${op}: params.inProjWeight`, W.shape, [3 * E, E], `[3E, E] with E = ${E}`);
    if (kdim !== E || vdim !== E) {
      throw new RangeError(`${op}: params.inProjWeight needs key and value of width E = ${E}, got kdim ${kdim}, vdim ${vdim}; give qProjWeight, kProjWeight, vProjWeight instead`);
    }
    const part = (c: number): Checked => ({ data: W.data.subarray(c * E * E, (c + 1) * E * E), shape: [E, E], byteOffset: W.byteOffset + c * E * E * 4 });
    [Wq, Wk, Wv] = [part(0), part(1), part(2)];
  } else {
    if (p.qProjWeight === undefined || p.kProjWeight === undefined || p.vProjWeight === undefined) {
      throw new TypeError(`${op}: params needs inProjWeight, or all of qProjWeight, kProjWeight, vProjWeight`);
    }
    [Wq, Wk, Wv] = [p.qProjWeight, p.kProjWeight, p.vProjWeight];
    expectShape(`${op}: params.qProjWeight`, Wq.shape, [E, E], '[E, E]');
    expectShape(`${op}: params.kProjWeight`, Wk.shape, [E, kdim], '[E, kdim]');
    expectShape(`${op}: params.vProjWeight`, Wv.shape, [E, vdim], '[E, vdim]');
  }
  let bq: Checked | null = null, bk: Checked | null = null, bv: Checked | null = null;
  if (p.inProjBias !== undefined) {
    const b = p.inProjBias;
    expectShape(`${op}: params.inProjBias`, b.shape, [3 * E], '[3E]');
    [bq, bk, bv] = [0, 1, 2].map((c): Checked => ({ data: b.data.subarray(c * E, (c + 1) * E), shape: [E], byteOffset: b.byteOffset + c * E * 4 }));
  }
  return { Wq, Wk, Wv, bq, bk, bv };
}

/**
 * The user's mask, the key padding mask and causality as scaledDotProductAttention options over
 * [B, Hm, Lq, Lk + extra]; the appended bias/zero positions are always visible (PyTorch pads
 * attn_mask and key_padding_mask with zeros for them).
 *
 * A forbidden key must be skipped rather than given -Infinity, or a NaN or Infinity in that key
 * would still reach the row (NaN + -Infinity is NaN). So causality goes to scaledDotProductAttention's
 * own `causal` when no position is appended (the same rule, and the kernels skip those keys), and the
 * combined mask is boolean unless the user's mask or the key padding mask is additive.
 */
export function combineMasks(op: MultiHeadOp, o: MultiHeadOptions, B: number, H: number, Lq: number, Lk: number, extra: number, build = true): Pick<AttentionOptions, 'mask' | 'causal'> {
  const causal = parseCausal(`${op}: options.causal`, o.causal);
  const user = o.mask === undefined ? null : checkMask(`${op}: options.mask`, o.mask);
  const kpm = o.keyPaddingMask === undefined ? null : checkMask(`${op}: options.keyPaddingMask`, o.keyPaddingMask);
  if (kpm) expectShape(`${op}: options.keyPaddingMask`, kpm.shape, [B, Lk], '[B, Lk]');
  const foldCausal = causal !== CAUSAL_NONE && extra > 0;
  const passCausal = causal === CAUSAL_NONE || foldCausal ? undefined : causal === CAUSAL_BOTTOM_RIGHT ? 'bottom-right' : 'top-left';
  if (!user && !kpm && !foldCausal) return { causal: passCausal };
  // PyTorch's 3-D attn_mask is [B·H, Lq, Lk]: split its first axis (its other two may still broadcast).
  // Read as is, it would broadcast the same only when B = 1, and not at all when H = 1 or B = 0.
  const userShape = user && user.shape.length === 3 && user.shape[0] === B * H && B * H !== 1
    ? [B, H, user.shape[1], user.shape[2]] : user?.shape;
  const us = user ? broadcastStrides(`${op}: options.mask`, userShape!, [B, H, Lq, Lk]) : [0, 0, 0, 0];
  // checked, but not built for a call that computes nothing
  if (!build) return { causal: passCausal };
  const Hm = us[1] !== 0 ? H : 1;
  const L2 = Lk + extra;
  const additive = user?.data instanceof Float32Array || kpm?.data instanceof Float32Array;
  // boolean: 1 = may attend, so the appended positions start visible; additive: 0 = visible
  const out = additive ? new Float32Array(B * Hm * Lq * L2) : new Uint8Array(B * Hm * Lq * L2).fill(1);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < Hm; h++)
      for (let i = 0; i < Lq; i++)
        for (let j = 0; j < Lk; j++) {
          let allowed = true, add = 0;
          if (user) {
            const u = user.data[b * us[0] + h * us[1] + i * us[2] + j * us[3]];
            if (user.data instanceof Uint8Array) allowed &&= u !== 0; else add += u;
          }
          if (kpm) {
            const pad = kpm.data[b * Lk + j];
            if (kpm.data instanceof Uint8Array) allowed &&= pad === 0; else add += pad;
          }
          if (foldCausal && j > i + (causal === CAUSAL_BOTTOM_RIGHT ? Lk - Lq : 0)) allowed = false;
          out[((b * Hm + h) * Lq + i) * L2 + j] = additive ? (allowed ? add : -Infinity) : (allowed ? 1 : 0);
        }
  return { mask: { data: out, shape: [B, Hm, Lq, L2] }, causal: passCausal };
}

export interface MultiHeadPlan {
  /** The call whose messages this plan's errors carry. */
  op: MultiHeadOp;
  q: Checked; k: Checked; v: Checked;
  /** The params as read (see readParams). */
  params: ReadParams;
  B: number; Lq: number; Lk: number; E: number; H: number; kdim: number; vdim: number;
  proj: Projections;
  Wo: Checked; bo: Checked | null;
  /** Rows appended to the projected keys and values of every batch (biasK/biasV, then the zero row). */
  extraK: Float32Array[]; extraV: Float32Array[];
  /** Mask and causal options for scaledDotProductAttention over [B, H, Lq, Lk + extra]. */
  masking: Pick<AttentionOptions, 'mask' | 'causal'>;
  needWeights: boolean; averageWeights: boolean;
  /** options.out, of the output's shape [B, Lq, E]. */
  out: Out | undefined;
  /** options.cache as read (a prepared layer's forward checks it). */
  cache: KVCache | undefined;
  /** Which of options.mask and options.keyPaddingMask were given (a cache combines with neither). */
  givenMasks: string[];
  /**
   * Nothing to compute or append: the output is empty, no weights or only empty ones are asked for,
   * and no key joins a cache (see emptyMultiHead).
   */
  empty: boolean;
}

const MULTI_HEAD_OPTIONS = ['keyPaddingMask', 'mask', 'causal', 'needWeights', 'averageWeights', 'out', 'cache'] as const;

/**
 * Validates every argument of multiHeadAttention and resolves the parameters and masks. `op` starts
 * every message (selfAttention's one input is `x`).
 */
export function planMultiHead(op: MultiHeadOp, query: unknown, key: unknown, value: unknown, params: unknown, options?: unknown): MultiHeadPlan {
  const [qName, kName, vName] = op === 'selfAttention' ? ['x', 'x', 'x'] : ['query', 'key', 'value'];
  const q = checkTensor(`${op}: ${qName}`, query, [3]);
  // selfAttention passes one tensor three times: read it once
  const k = key === query ? q : checkTensor(`${op}: ${kName}`, key, [3]);
  const v = value === query ? q : value === key ? k : checkTensor(`${op}: ${vName}`, value, [3]);
  return planMultiHeadRead(op, q, k, v, readParams(op, params), options);
}

/** planMultiHead on inputs and params already read. */
export function planMultiHeadRead(op: MultiHeadOp, q: Checked, k: Checked, v: Checked, params: ReadParams, options?: unknown): MultiHeadPlan {
  const [qName, kName, vName] = op === 'selfAttention' ? ['x', 'x', 'x'] : ['query', 'key', 'value'];
  const o = checkOptions<MultiHeadOptions & { out?: unknown; cache?: KVCache }>(op, options, MULTI_HEAD_OPTIONS);
  const [B, Lq, E] = q.shape;
  const [, Lk, kdim] = k.shape;
  const vdim = v.shape[2];
  expectShape(`${op}: ${kName}`, k.shape, [B, -1, -1], `batch of ${qName} ${formatShape(q.shape)}`);
  expectShape(`${op}: ${vName}`, v.shape, [B, Lk, -1], `batch and length of ${kName} ${formatShape(k.shape)}`);
  const H = params.numHeads;
  if (typeof H !== 'number') throw new TypeError(`${op}: params.numHeads must be a number, got ${describeValue(H)}`);
  if (!Number.isInteger(H) || H < 1 || E % H !== 0) {
    throw new RangeError(`${op}: params.numHeads must be a positive integer that divides E = ${E}, got ${H}`);
  }
  // before anything is computed (the combined mask), or appended to a cache
  const out = checkOut(op, o.out, [B, Lq, E]);
  const proj = resolveProjections(op, params, E, kdim, vdim);
  const Wo = params.outProjWeight;
  if (Wo === undefined) throw new TypeError(`${op}: params.outProjWeight is required, got undefined`);
  expectShape(`${op}: params.outProjWeight`, Wo.shape, [E, E], '[E, E]');
  let bo: Checked | null = null;
  if (params.outProjBias !== undefined) {
    bo = params.outProjBias;
    expectShape(`${op}: params.outProjBias`, params.outProjBias.shape, [E], '[E]');
  }
  const extraK: Float32Array[] = [], extraV: Float32Array[] = [];
  if (params.biasK !== undefined || params.biasV !== undefined) {
    if (params.biasK === undefined || params.biasV === undefined) throw new TypeError(`${op}: params.biasK and params.biasV must be given together`);
    const bK = params.biasK, bV = params.biasV;
    expectShape(`${op}: params.biasK`, bK.shape, [1, 1, E], '[1, 1, E]');
    expectShape(`${op}: params.biasV`, bV.shape, [1, 1, E], '[1, 1, E]');
    extraK.push(bK.data); extraV.push(bV.data);
  }
  if (checkBoolean(`${op}: params.addZeroAttn`, params.addZeroAttn)) {
    extraK.push(new Float32Array(E)); extraV.push(new Float32Array(E));
  }
  const needWeights = checkBoolean(`${op}: options.needWeights`, o.needWeights) ?? false;
  const averageWeights = checkBoolean(`${op}: options.averageWeights`, o.averageWeights) ?? true;
  const weightsEmpty = B * Lq === 0 || (Lk + extraK.length === 0 && o.cache === undefined);
  const empty = B * Lq * E === 0 && (!needWeights || weightsEmpty) && (o.cache === undefined || B * Lk === 0);
  const masking = combineMasks(op, o, B, H, Lq, Lk, extraK.length, !empty);
  // only a prepared layer appends to a cache; ignored here, it would silently drop the past
  if (op !== LAYER_FORWARD && o.cache !== undefined) {
    throw new TypeError(`${op}: options.cache needs a prepared layer: engine.createMultiHeadAttention(params).forward(query, key, value, { cache })`);
  }
  // every size the call allocates (the projections; weights [B, H, Lq, Lk + extra]), before anything is
  checkShape(`${op}: the projected keys`, [B, Lk + extraK.length, E]);
  if (needWeights) checkShape(`${op}: the weights`, [B, H, Lq, Lk + extraK.length]);
  // a prepared layer's params are its own copies (read when it was made); the op's were read this call
  checkIntact(op, q, k, v, out?.checked, ...(op === LAYER_FORWARD ? [] : TENSOR_PARAMS.map((name) => params[name])));

  const givenMasks = (['mask', 'keyPaddingMask'] as const).filter((name) => o[name] !== undefined).map((name) => `options.${name}`);
  return { op, q, k, v, params, B, Lq, Lk, E, H, kdim, vdim, proj, Wo, bo, extraK, extraV, masking, needWeights, averageWeights, out, cache: o.cache, givenMasks, empty };
}

/** The result of a plan with nothing to compute (plan.empty), over a cache holding `past` positions. */
export function emptyMultiHead(p: MultiHeadPlan, past = 0): OutputWithWeights {
  const result: OutputWithWeights = { output: emptyResult([p.B, p.Lq, p.E], p.out) };
  const L = past + p.Lk + p.extraK.length;
  if (p.needWeights) result.weights = emptyResult(p.averageWeights ? [p.B, p.Lq, L] : [p.B, p.H, p.Lq, L]);
  return result;
}

/** Weights [B, H, Lq, L] averaged over heads: [B, Lq, L] (float64 sums). */
export function averageHeads(w: Float32Array, B: number, H: number, Lq: number, L: number): Tensor {
  const sum = new Float64Array(B * Lq * L);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let r = 0; r < Lq * L; r++) sum[b * Lq * L + r] += w[(b * H + h) * Lq * L + r];
  return fromData(Float32Array.from(sum, (x) => x / H), [B, Lq, L]);
}

/** The input widths of a prepared layer. */
export interface LayerWidths { E: number; kdim: number; vdim: number }

/**
 * Validates params for a prepared layer (engine.createMultiHeadAttention) by planning a call on empty
 * inputs of the widths the params imply: E from outProjWeight, kdim and vdim from kProjWeight and
 * vProjWeight (else E). Returns those widths and the plan (whose params are read once).
 */
export function planLayerParams(params: unknown): LayerWidths & { plan: MultiHeadPlan } {
  const op = 'createMultiHeadAttention';
  const read = readParams(op, params);
  const Wo = read.outProjWeight;
  if (Wo === undefined) throw new TypeError(`${op}: params.outProjWeight is required, got undefined`);
  const E = Wo.shape[0];
  const kdim = read.kProjWeight?.shape[1] ?? E, vdim = read.vProjWeight?.shape[1] ?? E;
  const empty = (d: number): Checked => ({ data: new Float32Array(0), shape: [0, 0, d], byteOffset: 0 });
  const plan = planMultiHeadRead(op, empty(E), empty(kdim), empty(vdim), read);
  return { E, kdim, vdim, plan };
}

/**
 * A deep copy of params as read: a prepared layer keeps its weights even if the caller's change.
 * With `onlyData`, only those tensors' data is copied and the others keep their shapes over empty
 * data: what a layer needs whose weights live elsewhere (the wasm engine's held copies), since a
 * forward plan reads the weights' shapes and the data of biasK and biasV only.
 */
export function copyParams(params: ReadParams, onlyData?: readonly (typeof TENSOR_PARAMS)[number][]): ReadParams {
  const out: ReadParams = { numHeads: params.numHeads, addZeroAttn: params.addZeroAttn };
  for (const name of TENSOR_PARAMS) {
    const t = params[name];
    if (t === undefined) continue;
    const data = !onlyData || onlyData.includes(name) ? t.data.slice() : new Float32Array(0);
    out[name] = { data, shape: t.shape, byteOffset: 0 };
  }
  return out;
}

/**
 * Validates a prepared layer's forward: inputs of the layer's widths (else the params' checks would
 * blame the params), every option as in multiHeadAttention, and options.cache.
 */
export function planLayerForward(params: ReadParams, widths: LayerWidths, query: unknown, key: unknown, value: unknown, options: unknown, checkOwnCache: (cache: KVCache) => void): MultiHeadPlan {
  const op = LAYER_FORWARD;
  const inputs = [['query', query, widths.E, 'E'], ['key', key, widths.kdim, 'kdim'], ['value', value, widths.vdim, 'vdim']] as const;
  const [q, k, v] = inputs.map(([name, t, width, what]) => {
    const c = checkTensor(`${op}: ${name}`, t, [3]);
    expectShape(`${op}: ${name}`, c.shape, [-1, -1, width], `the layer's ${what} = ${width}`);
    return c;
  });
  const plan = planMultiHeadRead(op, q, k, v, params, options);
  if (plan.cache !== undefined) {
    checkOwnCache(checkCacheType(op, plan.cache));
    checkLayerCache(plan);
  }
  return plan;
}

/**
 * A layer appends its projected keys and values to options.cache, as heads [B, numHeads, L, E / numHeads]:
 * the cache must hold that layout and have room; masks over new keys only, and appended rows, have no place.
 */
function checkLayerCache(plan: MultiHeadPlan): void {
  const op = LAYER_FORWARD;
  const cache = checkCacheType(op, plan.cache);
  const unsupported = [...plan.givenMasks, plan.extraK.length > 0 && 'params.biasK/biasV or addZeroAttn'].filter(Boolean);
  if (unsupported.length) throw new TypeError(`${op}: options.cache does not combine with ${unsupported.join(', ')}`);
  const { B, H, Lk } = plan, D = plan.E / plan.H;
  if (cache.batch !== B || cache.kvHeads !== H || cache.headDim !== D || cache.valueDim !== D) {
    throw new RangeError(`${op}: options.cache holds keys [${cache.batch}, ${cache.kvHeads}, *, ${cache.headDim}] and values [${cache.batch}, ${cache.kvHeads}, *, ${cache.valueDim}]; this call appends [${B}, ${H}, ${Lk}, ${D}] to both (batch, numHeads, length, E / numHeads)`);
  }
  checkRoom(op, cache.length, cache.capacity, Lk);
}
