// Validation of the grouped-query attention layer (Llama, Mistral, Qwen, Gemma; Hugging Face layout,
// y = x Wᵀ + b), shared by both engines: the params once when the layer is made, a forward's input
// and options at each call.

import { type BatchPlan, planBatch } from './batchAttentionPlan.js';
import type { PagedPool } from './kvPool.js';
import { planRotary } from './rotaryEmbeddingPlan.js';
import { checkScoreOptions, checkWindow } from './scaledDotProductAttentionPlan.js';
import type { BatchAttentionOptions, GroupedQueryParams } from './servingTypes.js';
import { formatShape } from './tensor.js';
import {type Checked, 
  checkIntact, checkNumber, checkOptions, checkOut, checkPositiveCount, checkTensor, describeValue, expectShape, type Out,
} from './validate.js';

const OP = 'createGroupedQueryAttention';
export const GQA_FORWARD = 'GroupedQueryAttentionLayer.forward';

/** The params as read once and checked; weights are the caller's until an engine copies them. */
export interface GroupedQueryPlan {
  Hq: number; Hkv: number; D: number; E: number;
  Wq: Checked; Wk: Checked; Wv: Checked; Wo: Checked;
  bq: Checked | null; bk: Checked | null; bv: Checked | null; bo: Checked | null;
  qNorm: Checked | null; kNorm: Checked | null; normEps: number;
  /** What every forward passes to batchAttention besides sequences and queryLens. */
  attention: Pick<BatchAttentionOptions, 'rotary' | 'scale' | 'softcap' | 'window' | 'sinks' | 'alibiSlopes'>;
}

export function planGroupedQuery(params: unknown): GroupedQueryPlan {
  if (params === null || typeof params !== 'object' || Array.isArray(params)) {
    throw new TypeError(`${OP}: params must be an object (GroupedQueryParams), got ${describeValue(params)}`);
  }
  const p = checkOptions<GroupedQueryParams>(`${OP}: params`, params, [
    'numHeads', 'numKvHeads', 'headDim', 'qProjWeight', 'kProjWeight', 'vProjWeight', 'oProjWeight', 'qProjBias', 'kProjBias',
    'vProjBias', 'oProjBias', 'qNormWeight', 'kNormWeight', 'normEps', 'rotary', 'scale', 'softcap', 'window', 'sinks', 'alibiSlopes',
  ]);
  const count = (name: 'numHeads' | 'numKvHeads' | 'headDim') => {
    const v = checkPositiveCount(`${OP}: params.${name}`, p[name]);
    if (v === undefined) throw new TypeError(`${OP}: params.${name} is required`);
    return v;
  };
  const Hq = count('numHeads'), Hkv = count('numKvHeads'), D = count('headDim');
  if (Hq % Hkv !== 0) throw new RangeError(`${OP}: params.numHeads (${Hq}) must be a multiple of params.numKvHeads (${Hkv})`);
  const weight = (name: 'qProjWeight' | 'kProjWeight' | 'vProjWeight' | 'oProjWeight') => {
    if (p[name] === undefined) throw new TypeError(`${OP}: params.${name} is required`);
    return checkTensor(`${OP}: params.${name}`, p[name], [2]);
  };
  const Wq = weight('qProjWeight');
  const E = Wq.shape[1];
  expectShape(`${OP}: params.qProjWeight`, Wq.shape, [Hq * D, E], `[numHeads · headDim, E] = [${Hq * D}, E]`);
  const Wk = weight('kProjWeight'), Wv = weight('vProjWeight'), Wo = weight('oProjWeight');
  expectShape(`${OP}: params.kProjWeight`, Wk.shape, [Hkv * D, E], `[numKvHeads · headDim, E] with E = ${E} from qProjWeight`);
  expectShape(`${OP}: params.vProjWeight`, Wv.shape, [Hkv * D, E], `[numKvHeads · headDim, E] with E = ${E} from qProjWeight`);
  expectShape(`${OP}: params.oProjWeight`, Wo.shape, [E, Hq * D], `[E, numHeads · headDim]`);
  const vector = (name: 'qProjBias' | 'kProjBias' | 'vProjBias' | 'oProjBias' | 'qNormWeight' | 'kNormWeight', n: number) => {
    if (p[name] === undefined) return null;
    const t = checkTensor(`${OP}: params.${name}`, p[name], [1]);
    expectShape(`${OP}: params.${name}`, t.shape, [n]);
    return t;
  };
  const bq = vector('qProjBias', Hq * D), bk = vector('kProjBias', Hkv * D), bv = vector('vProjBias', Hkv * D), bo = vector('oProjBias', E);
  const qNorm = vector('qNormWeight', D), kNorm = vector('kNormWeight', D);
  const normEps = checkNumber(`${OP}: params.normEps`, p.normEps, 0) ?? 1e-6;
  // the attention options are checked now, as a batch of no sequences would check them
  if (p.rotary !== undefined) planRotary(`${OP}: params.rotary`, p.rotary, D);
  checkScoreOptions(`${OP}: params`, p.scale, p.softcap, D);
  for (const name of ['sinks', 'alibiSlopes'] as const) {
    if (p[name] !== undefined) expectShape(`${OP}: params.${name}`, checkTensor(`${OP}: params.${name}`, p[name], [1]).shape, [Hq], 'one per query head');
  }
  checkWindow(`${OP}: params`, p.window, Infinity);
  checkIntact(OP, Wq, Wk, Wv, Wo, bq, bk, bv, bo, qNorm, kNorm);
  const window = p.window === undefined ? undefined : { left: p.window.left, right: p.window.right };
  return {
    Hq, Hkv, D, E, Wq, Wk, Wv, Wo, bq, bk, bv, bo, qNorm, kNorm, normEps,
    attention: { rotary: p.rotary, scale: p.scale, softcap: p.softcap, window, sinks: p.sinks, alibiSlopes: p.alibiSlopes },
  };
}

/**
 * A layer's params with every tensor copied: the layer keeps them even if the caller's change. With
 * `weights` false the projections and norms keep their shapes over empty data: what a layer needs
 * that holds them elsewhere (the wasm engine's memory), since a forward reads only their shapes.
 */
export function copyGroupedQuery(plan: GroupedQueryPlan, weights = true): GroupedQueryPlan {
  const copy = <T extends Checked | null>(t: T): T => (t === null ? t : { data: t.data.slice(), shape: t.shape, byteOffset: 0 }) as T;
  const shapeOf = <T extends Checked | null>(t: T): T => (t === null || weights ? copy(t) : { data: new Float32Array(0), shape: t.shape, byteOffset: 0 }) as T;
  const tensor = (t: unknown) => (t === undefined ? undefined : copy(checkTensor(OP, t)));
  const rotary = plan.attention.rotary;
  return {
    ...plan,
    Wq: shapeOf(plan.Wq), Wk: shapeOf(plan.Wk), Wv: shapeOf(plan.Wv), Wo: shapeOf(plan.Wo),
    bq: shapeOf(plan.bq), bk: shapeOf(plan.bk), bv: shapeOf(plan.bv), bo: shapeOf(plan.bo), qNorm: shapeOf(plan.qNorm), kNorm: shapeOf(plan.kNorm),
    attention: {
      ...plan.attention,
      rotary: rotary === undefined ? undefined : { ...rotary, cos: tensor(rotary.cos), sin: tensor(rotary.sin) },
      sinks: tensor(plan.attention.sinks), alibiSlopes: tensor(plan.attention.alibiSlopes),
    },
  };
}

export interface GroupedQueryForward {
  x: Checked;
  T: number;
  batch: BatchPlan;
  out: Out | undefined;
}

/** A forward's x [T, E] and options { sequences, queryLens, out }, read once and checked. */
export function planGroupedQueryForward(layer: GroupedQueryPlan, x: unknown, options: unknown, ownPool: (pool: PagedPool) => boolean): GroupedQueryForward {
  const op = GQA_FORWARD;
  const X = checkTensor(`${op}: x`, x, [2]);
  expectShape(`${op}: x`, X.shape, [-1, layer.E], `[T, E] with the layer's E = ${layer.E}`);
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${op}: options must be an object { sequences, queryLens, out? }, got ${describeValue(options)}`);
  }
  const o = checkOptions<{ sequences: unknown; queryLens: unknown; out?: unknown }>(op, options, ['sequences', 'queryLens', 'out']);
  const T = X.shape[0];
  const out = checkOut(op, o.out, [T, layer.E]); // before the plan spends any time on the rows
  const batch = planBatch(op, { T, Hq: layer.Hq, Hkv: layer.Hkv, D: layer.D, Dv: layer.D },
    { ...layer.attention, sequences: o.sequences as never, queryLens: o.queryLens as never }, ownPool, `x ${formatShape(X.shape)}`);
  checkIntact(op, X, out?.checked);
  return { x: X, T, batch, out };
}
