// The checks of createLinear and of a linear layer's forward and lookup, shared by both engines so
// that they refuse the same inputs with the same messages (docs/VALIDATION.md).

import type { LinearBuilderOptions, LinearDtype, LinearOptions, QuantizedWeight } from './modelTypes.js';
import { checkShape, formatShape, type Tensor } from './tensor.js';
import { type Checked, checkArray, checkIntact, checkNumber, checkOptions, checkOut, checkTensor, describeValue, expectShape, type Out } from './validate.js';

export const LINEAR_CREATE = 'createLinear';
export const LINEAR_FORWARD = 'LinearLayer.forward';
export const LINEAR_LOOKUP = 'LinearLayer.lookup';
export const LINEAR_BUILDER = 'createLinearBuilder';
export const LINEAR_APPEND = 'LinearBuilder.append';

const DTYPES: readonly LinearDtype[] = ['float32', 'float16', 'int8', 'int4'];

/** What createLinear keeps of its arguments: W [out, in], the bias [out] or null, a storage the engines implement. */
export interface LinearPlan {
  /** The float weight [out, in]; null when the weight came quantized. */
  readonly W: Checked | null;
  /** A {@link QuantizedWeight}'s integers and scales, checked (in range, finite); null for a float weight. */
  readonly quantized: QuantizedPlan | null;
  readonly bias: Checked | null;
  readonly dtype: LinearDtype;
  /** int8/int4: inputs per scale (default 32); 0 for the float storages. */
  readonly groupSize: number;
  readonly outFeatures: number;
  readonly inFeatures: number;
}

/** A quantized weight as createLinear keeps it. */
export interface QuantizedPlan {
  /** The q values, out·in of them, as the bytes of the caller's Int8Array (read them through an Int8Array view). */
  readonly q: Checked<Uint8Array>;
  /** out · (in / groupSize) finite float32 scales. */
  readonly scales: Checked;
}

const INT_RANGE = { int8: [-127, 127], int4: [-8, 7] } as const;

/** groupSize of int8/int4 storage: a multiple of 32 that divides in. */
function checkGroupSize(name: string, g: number, inFeatures: number, shape: readonly number[]): void {
  if (!Number.isInteger(g) || g < 32 || g % 32 !== 0 || inFeatures % g !== 0) {
    throw new RangeError(`${name} must be a multiple of 32 that divides in = ${inFeatures} (weight ${formatShape(shape)}), got ${g}`);
  }
}

/** createLinear's weight and options, read once and checked. */
export function planLinear(weight: unknown, options: unknown): LinearPlan {
  const op = LINEAR_CREATE;
  if (weight !== null && typeof weight === 'object' && !Array.isArray(weight) && 'q' in weight) return planQuantized(weight, options);
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
    checkGroupSize(`${op}: options.groupSize`, groupSize, inFeatures, W.shape);
  }
  const bias = checkBias(o.bias, outFeatures);
  checkIntact(op, W, bias);
  return { W, quantized: null, bias, dtype, groupSize, outFeatures, inFeatures };
}

function checkBias(given: unknown, outFeatures: number, op = LINEAR_CREATE): Checked | null {
  if (given === undefined) return null;
  const bias = checkTensor(`${op}: options.bias`, given, [1]);
  expectShape(`${op}: options.bias`, bias.shape, [outFeatures], `[out] with the weight's out = ${outFeatures}`);
  return bias;
}

/** What createLinearBuilder keeps of its arguments. */
export interface LinearBuilderPlan {
  readonly dtype: 'int8' | 'int4';
  readonly groupSize: number;
  readonly outFeatures: number;
  readonly inFeatures: number;
  readonly bias: Checked | null;
}

/** createLinearBuilder's shape and options, read once and checked. */
export function planLinearBuilder(shape: unknown, options: unknown): LinearBuilderPlan {
  const op = LINEAR_BUILDER;
  const frozen = checkShape(`${op}: shape`, shape);
  if (frozen.length !== 2 || frozen[0] < 1 || frozen[1] < 1) {
    throw new RangeError(`${op}: shape must be [out, in] with out >= 1 and in >= 1, got ${formatShape(frozen)}`);
  }
  const [outFeatures, inFeatures] = frozen;
  const o = checkOptions<LinearBuilderOptions>(op, options, ['bias', 'dtype', 'groupSize']);
  const dtype: unknown = o.dtype;
  if (typeof dtype !== 'string') throw new TypeError(`${op}: options.dtype must be 'int8' or 'int4', got ${describeValue(dtype)}`);
  if (dtype !== 'int8' && dtype !== 'int4') throw new RangeError(`${op}: options.dtype must be 'int8' or 'int4' (createLinear takes float storages whole), got '${dtype}'`);
  const groupSize = checkNumber(`${op}: options.groupSize`, o.groupSize) ?? 32;
  checkGroupSize(`${op}: options.groupSize`, groupSize, inFeatures, frozen);
  const bias = checkBias(o.bias, outFeatures, op);
  checkIntact(op, bias);
  return { dtype, groupSize, outFeatures, inFeatures, bias };
}

/** LinearBuilder.append's rows [n, in], n at most the `missing` rows, read once and checked. */
export function planLinearAppend(inFeatures: number, missing: number, rows: unknown): Checked {
  const op = LINEAR_APPEND;
  const R = checkTensor(`${op}: rows`, rows, [2]);
  expectShape(`${op}: rows`, R.shape, [-1, inFeatures], `[n, in] with the weight's in = ${inFeatures}`);
  if (R.shape[0] > missing) throw new RangeError(`${op}: ${R.shape[0]} rows given, but only ${missing} of the weight's rows are still missing`);
  checkIntact(op, R);
  return R;
}

/**
 * createLinear from a {@link QuantizedWeight} { dtype, shape, groupSize, q, scales }: each field
 * read once, then every q checked against the dtype's range and every scale for finiteness.
 */
function planQuantized(weight: object, options: unknown): LinearPlan {
  const op = LINEAR_CREATE, name = `${op}: weight`;
  if ('data' in weight) throw new TypeError(`${name} must be a Tensor { data, shape } or a quantized weight { dtype, shape, groupSize, q, scales }, not both`);
  const w = weight as Partial<Record<keyof QuantizedWeight, unknown>>;
  const { dtype, shape: shapeField, groupSize: groupField, q: qField, scales: scalesField } = w;
  if (typeof dtype !== 'string') throw new TypeError(`${name}.dtype must be 'int8' or 'int4', got ${describeValue(dtype)}`);
  if (dtype !== 'int8' && dtype !== 'int4') throw new RangeError(`${name}.dtype must be 'int8' or 'int4' (a quantized weight), got '${dtype}'`);
  const shape = checkShape(name, shapeField);
  if (shape.length !== 2 || shape[0] < 1 || shape[1] < 1) {
    throw new RangeError(`${name}: shape must be [out, in] with out >= 1 and in >= 1, got ${formatShape(shape)}`);
  }
  const [outFeatures, inFeatures] = shape;
  const groupSize = checkNumber(`${name}.groupSize`, groupField) ?? 32;
  checkGroupSize(`${name}.groupSize`, groupSize, inFeatures, shape);
  const o = checkOptions<LinearOptions>(op, options, ['bias', 'dtype', 'groupSize']);
  if (o.dtype !== undefined && o.dtype !== dtype) {
    if (typeof o.dtype !== 'string') throw new TypeError(`${op}: options.dtype must be a string, got ${describeValue(o.dtype)}`);
    throw new RangeError(`${op}: options.dtype '${o.dtype}' differs from the quantized weight's '${dtype}': a quantized weight is stored as it is (dequantize it to store it otherwise)`);
  }
  const optionGroup = checkNumber(`${op}: options.groupSize`, o.groupSize);
  if (optionGroup !== undefined && optionGroup !== groupSize) {
    throw new RangeError(`${op}: options.groupSize ${optionGroup} differs from the quantized weight's groupSize ${groupSize}`);
  }
  const q = checkArray(`${name}.q`, qField, 'Int8Array');
  const scales = checkArray(`${name}.scales`, scalesField, 'Float32Array');
  const G = inFeatures / groupSize;
  if (q.data.length !== outFeatures * inFeatures) {
    throw new RangeError(`${name}.q must hold out · in = ${outFeatures * inFeatures} values (one per weight of ${formatShape(shape)}), got ${q.data.length}`);
  }
  if (scales.data.length !== outFeatures * G) {
    throw new RangeError(`${name}.scales must hold out · in / groupSize = ${outFeatures * G} values (one per group of ${groupSize} of ${formatShape(shape)}), got ${scales.data.length}`);
  }
  const bias = checkBias(o.bias, outFeatures);
  checkIntact(op, q, scales, bias);
  const [lo, hi] = INT_RANGE[dtype];
  const values = new Int8Array(q.data.buffer, q.data.byteOffset, q.data.length);
  // int8's one value outside its range is -128, which indexOf finds natively (a whole checkpoint's q come through here)
  let bad = -1;
  if (dtype === 'int8') bad = values.indexOf(-128);
  else for (let i = 0; i < values.length && bad < 0; i++) if (values[i] < lo || values[i] > hi) bad = i;
  if (bad >= 0) {
    throw new RangeError(`${name}.q[${bad}] (row ${Math.floor(bad / inFeatures)}, input ${bad % inFeatures}) = ${values[bad]} is outside ${dtype}'s [${lo}, ${hi}]`);
  }
  const s = scales.data;
  for (let i = 0; i < s.length; i++) {
    if (!Number.isFinite(s[i])) throw new RangeError(`${name}.scales[${i}] (row ${Math.floor(i / G)}, group ${i % G}) is ${s[i]}: scales must be finite`);
  }
  return { W: null, quantized: { q, scales }, bias, dtype, groupSize, outFeatures, inFeatures };
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
