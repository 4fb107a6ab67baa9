// The checks of createLinear and of a linear layer's forward and lookup, shared by both engines so
// that they refuse the same inputs with the same messages (docs/VALIDATION.md).

import type { LinearDtype, LinearOptions } from './modelTypes.js';
import { formatShape, type Tensor } from './tensor.js';
import { type Checked, checkIntact, checkNumber, checkOptions, checkOut, checkTensor, describeValue, expectShape, type Out } from './validate.js';

export const LINEAR_CREATE = 'createLinear';
export const LINEAR_FORWARD = 'LinearLayer.forward';
export const LINEAR_LOOKUP = 'LinearLayer.lookup';

const DTYPES: readonly LinearDtype[] = ['float32', 'float16', 'int8', 'int4'];

/** What createLinear keeps of its arguments: W [out, in], the bias [out] or null, a storage the engines implement. */
export interface LinearPlan {
  readonly W: Checked;
  readonly bias: Checked | null;
  readonly dtype: LinearDtype;
  /** int8/int4: inputs per scale (default 32); 0 for the float storages. */
  readonly groupSize: number;
  readonly outFeatures: number;
  readonly inFeatures: number;
}

/** createLinear's weight and options, read once and checked. */
export function planLinear(weight: unknown, options: unknown): LinearPlan {
  const op = LINEAR_CREATE;
  const W = checkTensor(`${op}: weight`, weight, [2]);
  const [outFeatures, inFeatures] = W.shape;
  if (outFeatures < 1 || inFeatures < 1) {
    throw new RangeError(`${op}: weight must be [out, in] with out >= 1 and in >= 1, got shape ${formatShape(W.shape)}`);
  }
  const o = checkOptions<LinearOptions>(op, options, ['bias', 'dtype', 'groupSize']);
  const dtype = o.dtype ?? 'float32';
  const names = "'float32', 'float16', 'int8' or 'int4'";
  if (typeof dtype !== 'string') throw new TypeError(`${op}: options.dtype must be ${names}, got ${describeValue(dtype)}`);
  if (!DTYPES.includes(dtype)) throw new RangeError(`${op}: options.dtype must be ${names}, got '${dtype}'`);
  const given = checkNumber(`${op}: options.groupSize`, o.groupSize);
  let groupSize = 0;
  if (dtype === 'int8' || dtype === 'int4') {
    groupSize = given ?? 32;
    if (!Number.isInteger(groupSize) || groupSize < 32 || groupSize % 32 !== 0 || inFeatures % groupSize !== 0) {
      throw new RangeError(`${op}: options.groupSize must be a multiple of 32 that divides in = ${inFeatures} (weight ${formatShape(W.shape)}), got ${groupSize}`);
    }
  }
  let bias: Checked | null = null;
  if (o.bias !== undefined) {
    bias = checkTensor(`${op}: options.bias`, o.bias, [1]);
    expectShape(`${op}: options.bias`, bias.shape, [outFeatures], `[out] with the weight's out = ${outFeatures}`);
  }
  checkIntact(op, W, bias);
  return { W, bias, dtype, groupSize, outFeatures, inFeatures };
}

export interface LinearForward {
  readonly x: Checked;
  readonly T: number;
  readonly out: Out | undefined;
}

/** A forward's x [T, in] and options { out }, read once and checked. */
export function planLinearForward(inFeatures: number, outFeatures: number, x: unknown, options: unknown): LinearForward {
  const op = LINEAR_FORWARD;
  const X = checkTensor(`${op}: x`, x, [2]);
  expectShape(`${op}: x`, X.shape, [-1, inFeatures], `[T, in] with the layer's in = ${inFeatures}`);
  const o = checkOptions<{ out?: Tensor }>(op, options, ['out']);
  const T = X.shape[0];
  const out = checkOut(op, o.out, [T, outFeatures]);
  checkIntact(op, X, out?.checked);
  return { x: X, T, out };
}

export interface LinearLookup {
  /** The row indices, each in [0, out). */
  readonly ids: Int32Array;
  /** What the rows are multiplied by, as float32 (both engines compute `float32(w) · float32(scale)` rounded to float32). */
  readonly scale: number;
  readonly out: Out | undefined;
}

/** A lookup's ids and options { scale, out }, read once and checked. */
export function planLinearLookup(inFeatures: number, outFeatures: number, ids: unknown, options: unknown): LinearLookup {
  const op = LINEAR_LOOKUP;
  const length: unknown = ids !== null && typeof ids === 'object' ? (ids as ArrayLike<unknown>).length : undefined;
  if (typeof length !== 'number' || !Number.isInteger(length) || length < 0) {
    throw new TypeError(`${op}: ids must be an array-like of integers (an array, an Int32Array), got ${describeValue(ids)}`);
  }
  const list = ids as ArrayLike<unknown>;
  const read = new Int32Array(length);
  for (let i = 0; i < length; i++) {
    const v = list[i];
    if (typeof v !== 'number') throw new TypeError(`${op}: ids[${i}] must be a number, got ${describeValue(v)}`);
    if (!Number.isInteger(v) || v < 0 || v >= outFeatures) {
      throw new RangeError(`${op}: ids[${i}] = ${v} is not a row of the weight: expected an integer in [0, ${outFeatures})`);
    }
    read[i] = v;
  }
  const o = checkOptions<{ scale?: number; out?: Tensor }>(op, options, ['scale', 'out']);
  const scale = Math.fround(checkNumber(`${op}: options.scale`, o.scale) ?? 1);
  if (!Number.isFinite(scale)) throw new RangeError(`${op}: options.scale must be finite as a float32, got ${o.scale}`);
  const out = checkOut(op, o.out, [length, inFeatures]);
  checkIntact(op, out?.checked);
  return { ids: read, scale, out };
}
