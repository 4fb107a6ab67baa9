// Validation and shape resolution for the ops other than scaledDotProductAttention (see
// scaledDotProductAttentionPlan.ts), shared by both engines so that they reject the same inputs the same way.
import { broadcastOffset, broadcastShapes, broadcastStrides } from './broadcast.js';
import { checkShape, formatShape, sizeOf } from './tensor.js';
import type { AdditiveOptions, AdditiveParams, KernelRegressionOptions, MatmulOptions } from './types.js';
import {type Checked, 
  checkBoolean, checkFloat32, checkIntact, checkOptions, checkOut, checkTensor, checkValidLens, describeValue, expectShape, type Out,
} from './validate.js';

export interface MatmulPlan {
  a: Checked; b: Checked;
  M: number; N: number; K: number;
  transposeB: boolean;
  /** Broadcast leading dimensions of the output. */
  batchShape: number[];
  /** Number of matrices in the output: product(batchShape). */
  batch: number;
  /** Offset in elements of the A / B matrix used for output matrix `index`. */
  aOffset(index: number): number;
  bOffset(index: number): number;
  outputShape: readonly number[];
  /** product(outputShape) === 0: nothing to compute. */
  empty: boolean;
  out: Out | undefined;
}

/**
 * numpy/PyTorch matmul shapes: a 1-D `a` [K] is a row [1, K] and a 1-D `b` [K] a column (with
 * transposeB, a row of [1, K]); the size-1 axis they add is dropped from the output.
 */
export function planMatmul(a: unknown, b: unknown, options?: MatmulOptions): MatmulPlan {
  const A = checkTensor('matmul: a', a);
  const Bt = checkTensor('matmul: b', b);
  const o = checkOptions<MatmulOptions>('matmul', options, ['transposeB', 'out']);
  const transposeB = checkBoolean('matmul: options.transposeB', o.transposeB) ?? false;
  if (A.shape.length < 1) throw new RangeError('matmul: a must be at least 1-D [..., M, K], got shape []');
  if (Bt.shape.length < 1) throw new RangeError(`matmul: b must be at least 1-D [..., ${transposeB ? 'N, K' : 'K, N'}], got shape []`);
  const aVector = A.shape.length === 1, bVector = Bt.shape.length === 1;
  const aShape = aVector ? [1, A.shape[0]] : A.shape;
  const bShape = bVector ? (transposeB ? [1, Bt.shape[0]] : [Bt.shape[0], 1]) : Bt.shape;
  const M = aShape[aShape.length - 2], K = aShape[aShape.length - 1];
  const r0 = bShape[bShape.length - 2], r1 = bShape[bShape.length - 1];
  const [Kb, N] = transposeB ? [r1, r0] : [r0, r1];
  if (Kb !== K) {
    throw new RangeError(`matmul: inner sizes differ: a ${formatShape(A.shape)} has K = ${K}, b ${formatShape(Bt.shape)} has K = ${Kb}${transposeB ? ' (transposeB)' : ''}`);
  }
  const aLead = aShape.slice(0, -2), bLead = bShape.slice(0, -2);
  const batchShape = broadcastShapes('matmul: a', aLead, 'b', bLead);
  const aStrides = broadcastStrides('matmul: a', aLead, batchShape);
  const bStrides = broadcastStrides('matmul: b', bLead, batchShape);
  const offset = (strides: number[], size: number) => (index: number) => broadcastOffset(index, batchShape, strides) * size;
  const outputShape = checkShape('matmul: the result', [...batchShape, ...(aVector ? [] : [M]), ...(bVector ? [] : [N])]);
  const out = checkOut('matmul', o.out, outputShape);
  checkIntact('matmul', A, Bt, out?.checked);
  return {
    a: A, b: Bt, M, N, K, transposeB, batchShape, batch: sizeOf(batchShape),
    aOffset: offset(aStrides, M * K), bOffset: offset(bStrides, K * N),
    outputShape, empty: sizeOf(outputShape) === 0, out,
  };
}

export interface RowsPlan {
  x: Checked;
  rows: number; n: number;
  out: Out | undefined;
}

export function planSoftmax(x: unknown, options?: unknown): RowsPlan {
  const X = checkTensor('softmax: x', x);
  if (X.shape.length === 0) throw new RangeError('softmax: x must be at least 1-D, got shape []');
  const o = checkOptions<{ out?: unknown }>('softmax', options, ['out']);
  const out = checkOut('softmax', o.out, X.shape);
  checkIntact('softmax', X, out?.checked);
  const n = X.shape[X.shape.length - 1];
  return { x: X, rows: n === 0 ? 0 : X.data.length / n, n, out };
}

export interface MaskedSoftmaxPlan extends RowsPlan {
  /** One length per row of the flattened [B*Lq, Lk] view. */
  rowLens: Int32Array;
}

/** Expands validLens of length B (per batch) or B*Lq (per row) to one length per row. */
export function expandLens(lens: Int32Array, B: number, Lq: number): Int32Array {
  if (lens.length === B * Lq) return lens;
  const out = new Int32Array(B * Lq);
  for (let b = 0; b < B; b++) out.fill(lens[b], b * Lq, (b + 1) * Lq);
  return out;
}

export function planMaskedSoftmax(x: unknown, validLens: unknown, options?: unknown): MaskedSoftmaxPlan {
  const op = 'maskedSoftmax';
  const X = checkTensor(`${op}: x`, x, [3]);
  const [B, Lq, Lk] = X.shape;
  const lens = validLens === undefined || validLens === null ? null : checkValidLens(`${op}: validLens`, validLens, [B, B * Lq], Lk);
  const o = checkOptions<{ out?: unknown }>(op, options, ['out']);
  const out = checkOut(op, o.out, X.shape);
  checkIntact(op, X, out?.checked);
  // an empty x has no row to compute, however many empty rows its shape counts
  const rows = X.data.length === 0 ? 0 : B * Lq;
  const rowLens = rows === 0 ? new Int32Array(0) : lens ? expandLens(lens, B, Lq) : new Int32Array(rows).fill(Lk);
  return { x: X, rows, n: Lk, rowLens, out };
}

/** The tensors of a kernel regression, checked, and their sizes (shared with kernelRegressionLoss). */
export interface KernelRegressionInputs {
  queries: Checked; keys: Checked; values: Checked;
  n: number; m: number; d: number; dv: number;
  /** `[n]` for values `[m]`, else `[n, dv]`. */
  outputShape: readonly number[];
}

/** Reads queries, keys and values once each and checks that they fit together. */
export function checkKernelRegressionInputs(op: string, queries: unknown, keys: unknown, values: unknown): KernelRegressionInputs {
  const q = checkTensor(`${op}: queries`, queries, [1, 2]);
  const k = checkTensor(`${op}: keys`, keys, [1, 2]);
  const v = checkTensor(`${op}: values`, values, [1, 2]);
  // [n] is read as [n, 1]: one feature
  const n = q.shape[0], d = q.shape.length === 2 ? q.shape[1] : 1;
  const m = k.shape[0], dk = k.shape.length === 2 ? k.shape[1] : 1;
  if (dk !== d) throw new RangeError(`${op}: keys ${formatShape(k.shape)} must have the feature size of queries ${formatShape(q.shape)} (${d}), got ${dk}`);
  expectShape(`${op}: values`, [v.shape[0]], [m], `one value per key; keys are ${formatShape(k.shape)}`);
  const dv = v.shape.length === 2 ? v.shape[1] : 1;
  return { queries: q, keys: k, values: v, n, m, d, dv, outputShape: v.shape.length === 2 ? [n, dv] : [n] };
}

/**
 * `options.w` of the kernel regressions. The kernel depends on w² only, so a negative w is almost
 * surely a sign error upstream; the kernels compute with -w²/2 in float32, so w² must neither
 * overflow nor vanish.
 */
export function checkKernelWidth(op: string, w: unknown): number {
  return checkFloat32(`${op}: options.w`, w, 0, 63, 63) ?? 1;
}

export interface KernelRegressionPlan extends KernelRegressionInputs {
  w: number;
  returnWeights: boolean;
  weightsShape: readonly number[];
  out: Out | undefined;
}

export function planKernelRegression(queries: unknown, keys: unknown, values: unknown, options?: KernelRegressionOptions): KernelRegressionPlan {
  const op = 'kernelRegression';
  const inputs = checkKernelRegressionInputs(op, queries, keys, values);
  const { n, m } = inputs;
  const o = checkOptions<KernelRegressionOptions>(op, options, ['w', 'returnWeights', 'out']);
  const w = checkKernelWidth(op, o.w);
  const returnWeights = checkBoolean(`${op}: options.returnWeights`, o.returnWeights) ?? false;
  const weightsShape = returnWeights ? checkShape(`${op}: the weights`, [n, m]) : [n, m];
  const out = checkOut(op, o.out, inputs.outputShape);
  checkIntact(op, inputs.queries, inputs.keys, inputs.values, out?.checked);
  return { ...inputs, w, returnWeights, weightsShape, out };
}

export interface AdditivePlan {
  B: number; Lq: number; Lk: number; Dq: number; Dk: number; Dv: number; h: number;
  /** One valid length per query row (B*Lq), or null. */
  rowLens: Int32Array | null;
  returnWeights: boolean;
  query: Checked; key: Checked; value: Checked;
  Wq: Checked; Wk: Checked; wv: Checked;
  out: Out | undefined;
  /** Nothing to compute: the output is empty and no weights, or only empty ones, are asked for. */
  empty: boolean;
}

export function planAdditive(query: unknown, key: unknown, value: unknown, params: unknown, options?: AdditiveOptions): AdditivePlan {
  const op = 'additiveAttention';
  const q = checkTensor(`${op}: query`, query, [3]);
  const k = checkTensor(`${op}: key`, key, [3]);
  const v = checkTensor(`${op}: value`, value, [3]);
  if (params === null || typeof params !== 'object') throw new TypeError(`${op}: params must be an object { Wq, Wk, wv }, got ${describeValue(params)}`);
  const P = checkOptions<AdditiveParams>(`${op}: params`, params, ['Wq', 'Wk', 'wv']);
  const Wq = checkTensor(`${op}: params.Wq`, P.Wq, [2]);
  const Wk = checkTensor(`${op}: params.Wk`, P.Wk, [2]);
  const wv = checkTensor(`${op}: params.wv`, P.wv, [2]);
  const o = checkOptions<AdditiveOptions>(op, options, ['validLens', 'returnWeights', 'out']);
  const [B, Lq, Dq] = q.shape;
  const [, Lk, Dk] = k.shape;
  const h = Wq.shape[0];
  expectShape(`${op}: key`, k.shape, [B, -1, -1], `batch of query ${formatShape(q.shape)}`);
  expectShape(`${op}: value`, v.shape, [B, Lk, -1], `batch and length of key ${formatShape(k.shape)}`);
  expectShape(`${op}: params.Wq`, Wq.shape, [h, Dq], 'nn.Linear layout [hidden, Dq]');
  expectShape(`${op}: params.Wk`, Wk.shape, [h, Dk], 'nn.Linear layout [hidden, Dk]');
  expectShape(`${op}: params.wv`, wv.shape, [1, h], 'nn.Linear layout [1, hidden]');
  const Dv = v.shape[2];
  const out = checkOut(op, o.out, [B, Lq, Dv]);
  const lens = o.validLens === undefined ? null : checkValidLens(`${op}: options.validLens`, o.validLens, [B, B * Lq], Lk);
  const returnWeights = checkBoolean(`${op}: options.returnWeights`, o.returnWeights) ?? false;
  // the scores [B, Lq, Lk] are computed whether or not they are returned
  checkShape(`${op}: the scores`, [B, Lq, Lk]);
  checkIntact(op, q, k, v, Wq, Wk, wv, out?.checked);
  const empty = B * Lq * Dv === 0 && (!returnWeights || B * Lq * Lk === 0);
  // one length per query row, only for a call that computes rows
  const rowLens = lens && !empty ? expandLens(lens, B, Lq) : null;
  return { B, Lq, Lk, Dq, Dk, Dv, h, rowLens, returnWeights, query: q, key: k, value: v, Wq, Wk, wv, out, empty };
}

export function checkPositionalEncoding(maxLen: unknown, dim: unknown): void {
  for (const [name, x] of [['maxLen', maxLen], ['dim', dim]] as const) {
    if (typeof x !== 'number') throw new TypeError(`positionalEncoding: ${name} must be a number, got ${describeValue(x)}`);
    if (!Number.isInteger(x) || x < 0) throw new RangeError(`positionalEncoding: ${name} must be a non-negative integer, got ${x}`);
  }
  checkShape('positionalEncoding: the result', [maxLen, dim]);
}
