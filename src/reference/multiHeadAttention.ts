// Multi-head attention with the parameters of PyTorch nn.MultiheadAttention (batch-first), written
// once over an engine's matmul and scaledDotProductAttention, so both engines run this composition:
//
//   q = query Wqᵀ + bq    [B, Lq, E]        k = key Wkᵀ + bk   [B, Lk, E]       v = value Wvᵀ + bv
//   (add_bias_kv: append biasK / biasV as one more key position; add_zero_attn: append a zero one)
//   split heads: [B, L, E] -> [B, H, L, E/H]
//   o_h = softmax(q_h k_hᵀ / sqrt(E/H) + mask) v_h                         [B, H, Lq, E/H]
//   output = concat_h(o_h) Woᵀ + bo                                        [B, Lq, E]
import { broadcastStrides } from '../core/broadcast.js';
import { parseCausal, CAUSAL_BOTTOM_RIGHT, CAUSAL_NONE } from '../core/attentionPlan.js';
import { formatShape, fromData, type Tensor } from '../core/tensor.js';
import type { AttentionOptions, AttentionResult, MatmulOptions, MultiHeadOptions, MultiHeadParams, OutputWithWeights } from '../core/types.js';
import { checkBoolean, checkMask, checkOptions, checkTensor, describeValue, expectShape } from '../core/validate.js';

/** The two ops multi-head attention is built from. */
export interface MultiHeadOps {
  matmul(a: Tensor, b: Tensor, options?: MatmulOptions): Tensor;
  scaledDotProductAttention(query: Tensor, key: Tensor, value: Tensor, options?: AttentionOptions): AttentionResult;
}

const op = 'multiHeadAttention';

interface Projections {
  Wq: Tensor; Wk: Tensor; Wv: Tensor;
  bq: Float32Array | null; bk: Float32Array | null; bv: Float32Array | null;
}

function resolveProjections(p: MultiHeadParams, E: number, kdim: number, vdim: number): Projections {
  let Wq: Tensor, Wk: Tensor, Wv: Tensor;
  const separate = [p.qProjWeight, p.kProjWeight, p.vProjWeight].some((w) => w !== undefined);
  if (p.inProjWeight !== undefined && separate) {
    throw new TypeError(`${op}: params has inProjWeight and qProjWeight/kProjWeight/vProjWeight: give one or the other`);
  }
  if (p.inProjWeight !== undefined) {
    const W = checkTensor(`${op}: params.inProjWeight`, p.inProjWeight, [2]);
    expectShape(`${op}: params.inProjWeight`, W.shape, [3 * E, E], `[3E, E] with E = ${E}`);
    if (kdim !== E || vdim !== E) {
      throw new RangeError(`${op}: params.inProjWeight needs key and value of width E = ${E}, got kdim ${kdim}, vdim ${vdim}; give qProjWeight, kProjWeight, vProjWeight instead`);
    }
    const part = (c: number) => fromData(W.data.subarray(c * E * E, (c + 1) * E * E), [E, E]);
    [Wq, Wk, Wv] = [part(0), part(1), part(2)];
  } else {
    if (p.qProjWeight === undefined || p.kProjWeight === undefined || p.vProjWeight === undefined) {
      throw new TypeError(`${op}: params needs inProjWeight, or all of qProjWeight, kProjWeight, vProjWeight`);
    }
    Wq = checkTensor(`${op}: params.qProjWeight`, p.qProjWeight, [2]);
    Wk = checkTensor(`${op}: params.kProjWeight`, p.kProjWeight, [2]);
    Wv = checkTensor(`${op}: params.vProjWeight`, p.vProjWeight, [2]);
    expectShape(`${op}: params.qProjWeight`, Wq.shape, [E, E], '[E, E]');
    expectShape(`${op}: params.kProjWeight`, Wk.shape, [E, kdim], '[E, kdim]');
    expectShape(`${op}: params.vProjWeight`, Wv.shape, [E, vdim], '[E, vdim]');
  }
  let bq = null, bk = null, bv = null;
  if (p.inProjBias !== undefined) {
    const b = checkTensor(`${op}: params.inProjBias`, p.inProjBias, [1]);
    expectShape(`${op}: params.inProjBias`, b.shape, [3 * E], '[3E]');
    [bq, bk, bv] = [0, 1, 2].map((c) => b.data.subarray(c * E, (c + 1) * E));
  }
  return { Wq, Wk, Wv, bq, bk, bv };
}

/** x Wᵀ + b over the last axis. */
function linear(ops: MultiHeadOps, x: Tensor, W: Tensor, bias: Float32Array | null): Tensor {
  const y = ops.matmul(x, W, { transposeB: true });
  if (bias) {
    const n = bias.length;
    for (let i = 0; i < y.data.length; i++) y.data[i] += bias[i % n];
  }
  return y;
}

/** [B, L, E] with `extra` rows appended per batch: [B, L + extra.length, E]. */
function appendRows(x: Tensor, extra: Float32Array[]): Tensor {
  const [B, L, E] = x.shape;
  const L2 = L + extra.length;
  const out = new Float32Array(B * L2 * E);
  for (let b = 0; b < B; b++) {
    out.set(x.data.subarray(b * L * E, (b + 1) * L * E), b * L2 * E);
    extra.forEach((row, r) => out.set(row, (b * L2 + L + r) * E));
  }
  return fromData(out, [B, L2, E]);
}

/** [B, L, H·D] <-> [B, H, L, D]. */
function splitHeads(x: Tensor, H: number): Tensor {
  const [B, L, E] = x.shape;
  const D = E / H;
  const out = new Float32Array(x.data.length);
  for (let b = 0; b < B; b++)
    for (let l = 0; l < L; l++)
      for (let h = 0; h < H; h++)
        out.set(x.data.subarray(((b * L + l) * H + h) * D, ((b * L + l) * H + h + 1) * D), ((b * H + h) * L + l) * D);
  return fromData(out, [B, H, L, D]);
}

function mergeHeads(x: Tensor): Tensor {
  const [B, H, L, D] = x.shape;
  const out = new Float32Array(x.data.length);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let l = 0; l < L; l++)
        out.set(x.data.subarray(((b * H + h) * L + l) * D, ((b * H + h) * L + l + 1) * D), ((b * L + l) * H + h) * D);
  return fromData(out, [B, L, H * D]);
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
function combineMasks(o: MultiHeadOptions, B: number, H: number, Lq: number, Lk: number, extra: number): Pick<AttentionOptions, 'mask' | 'causal'> {
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

export function multiHeadAttentionWith(ops: MultiHeadOps, query: Tensor, key: Tensor, value: Tensor, params: MultiHeadParams, options?: MultiHeadOptions): OutputWithWeights {
  const q = checkTensor(`${op}: query`, query, [3]);
  const k = checkTensor(`${op}: key`, key, [3]);
  const v = checkTensor(`${op}: value`, value, [3]);
  if (params === null || typeof params !== 'object') throw new TypeError(`${op}: params must be an object (MultiHeadParams), got ${describeValue(params)}`);
  const o = checkOptions<MultiHeadOptions>(op, options);
  const [B, Lq, E] = q.shape;
  const [, Lk, kdim] = k.shape;
  const vdim = v.shape[2];
  expectShape(`${op}: key`, k.shape, [B, -1, -1], `batch of query ${formatShape(q.shape)}`);
  expectShape(`${op}: value`, v.shape, [B, Lk, -1], `batch and length of key ${formatShape(k.shape)}`);
  const H = params.numHeads;
  if (typeof H !== 'number') throw new TypeError(`${op}: params.numHeads must be a number, got ${describeValue(H)}`);
  if (!Number.isInteger(H) || H < 1 || E % H !== 0) {
    throw new RangeError(`${op}: params.numHeads must be a positive integer that divides E = ${E}, got ${H}`);
  }
  const proj = resolveProjections(params, E, kdim, vdim);
  const Wo = checkTensor(`${op}: params.outProjWeight`, params.outProjWeight, [2]);
  expectShape(`${op}: params.outProjWeight`, Wo.shape, [E, E], '[E, E]');
  let bo: Float32Array | null = null;
  if (params.outProjBias !== undefined) {
    bo = checkTensor(`${op}: params.outProjBias`, params.outProjBias, [1]).data;
    expectShape(`${op}: params.outProjBias`, params.outProjBias.shape, [E], '[E]');
  }
  const extraK: Float32Array[] = [], extraV: Float32Array[] = [];
  if (params.biasK !== undefined || params.biasV !== undefined) {
    if (params.biasK === undefined || params.biasV === undefined) throw new TypeError(`${op}: params.biasK and params.biasV must be given together`);
    const bK = checkTensor(`${op}: params.biasK`, params.biasK, [3]);
    const bV = checkTensor(`${op}: params.biasV`, params.biasV, [3]);
    expectShape(`${op}: params.biasK`, bK.shape, [1, 1, E], '[1, 1, E]');
    expectShape(`${op}: params.biasV`, bV.shape, [1, 1, E], '[1, 1, E]');
    extraK.push(bK.data); extraV.push(bV.data);
  }
  if (checkBoolean(`${op}: params.addZeroAttn`, params.addZeroAttn)) {
    extraK.push(new Float32Array(E)); extraV.push(new Float32Array(E));
  }
  const needWeights = checkBoolean(`${op}: options.needWeights`, o.needWeights) ?? false;
  const averageWeights = checkBoolean(`${op}: options.averageWeights`, o.averageWeights) ?? true;
  const masking = combineMasks(o, B, H, Lq, Lk, extraK.length);

  const qp = linear(ops, q, proj.Wq, proj.bq);
  let kp = linear(ops, k, proj.Wk, proj.bk);
  let vp = linear(ops, v, proj.Wv, proj.bv);
  if (extraK.length > 0) { kp = appendRows(kp, extraK); vp = appendRows(vp, extraV); }
  const attn = ops.scaledDotProductAttention(splitHeads(qp, H), splitHeads(kp, H), splitHeads(vp, H), {
    ...masking, returnWeights: needWeights,
  });
  const output = linear(ops, mergeHeads(attn.output), Wo, bo);

  const result: OutputWithWeights = { output };
  if (needWeights && attn.weights) {
    if (!averageWeights) result.weights = attn.weights;
    else {
      const L2 = Lk + extraK.length;
      const sum = new Float64Array(B * Lq * L2);
      const w = attn.weights.data;
      for (let b = 0; b < B; b++)
        for (let h = 0; h < H; h++)
          for (let r = 0; r < Lq * L2; r++) sum[b * Lq * L2 + r] += w[(b * H + h) * Lq * L2 + r];
      result.weights = fromData(Float32Array.from(sum, (x) => x / H), [B, Lq, L2]);
    }
  }
  return result;
}
