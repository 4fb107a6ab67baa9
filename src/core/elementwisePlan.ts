// Validation and shapes of the pointwise ops a decoder is built from (add, gatedActivation, softcap),
// shared by both engines (src/reference/elementwise.ts, src/wasm/elementwise.ts) so that they reject
// the same inputs with the same messages. Every argument is read and checked (options.out among the
// first: its shape is the result's) before an engine computes or allocates anything.
import type { GatedActivation, GatedActivationOptions, } from './modelTypes.js';
import { formatShape, sizeOf } from './tensor.js';
import type { OutOptions } from './types.js';
import {type Checked, checkIntact, checkOptions, checkOut, checkTensor, describeValue, type Out,
} from './validate.js';

export interface AddPlan {
  a: Checked; b: Checked;
  n: number;
  out: Out | undefined;
}

export function planAdd(a: unknown, b: unknown, options?: unknown): AddPlan {
  const A = checkTensor('add: a', a);
  const B = checkTensor('add: b', b);
  const o = checkOptions<OutOptions>('add', options, ['out']);
  const out = checkOut('add', o.out, A.shape);
  const same = A.shape.length === B.shape.length && A.shape.every((s, i) => s === B.shape[i]);
  if (!same) throw new RangeError(`add: a and b must have the same shape, got a ${formatShape(A.shape)} and b ${formatShape(B.shape)}`);
  checkIntact('add', A, B, out?.checked);
  return { a: A, b: B, n: A.data.length, out };
}

const ACTIVATIONS: readonly GatedActivation[] = ['silu', 'gelu-tanh'];

export interface GatedActivationPlan {
  x: Checked;
  activation: GatedActivation;
  /** Rows of the flattened [rows, 2i] view (0 when x is empty); i = features of the result. */
  rows: number; i: number;
  outputShape: readonly number[];
  empty: boolean;
  out: Out | undefined;
}

export function planGatedActivation(x: unknown, options?: unknown): GatedActivationPlan {
  const X = checkTensor('gatedActivation: x', x);
  if (X.shape.length === 0) throw new RangeError('gatedActivation: x must be at least 1-D [..., 2I], got shape []');
  const o = checkOptions<GatedActivationOptions>('gatedActivation', options, ['activation', 'out']);
  const n = X.shape[X.shape.length - 1];
  if (n % 2 !== 0) {
    throw new RangeError(`gatedActivation: x: the last size must be even (2I: the gate's I features, then the up projection's I), got shape ${formatShape(X.shape)}`);
  }
  const outputShape = Object.freeze([...X.shape.slice(0, -1), n / 2]);
  const out = checkOut('gatedActivation', o.out, outputShape);
  const activation = o.activation ?? 'silu';
  const names = ACTIVATIONS.map((a) => `'${a}'`).join(' or ');
  if (typeof activation !== 'string') throw new TypeError(`gatedActivation: options.activation must be ${names}, got ${describeValue(activation)}`);
  if (!ACTIVATIONS.includes(activation)) throw new RangeError(`gatedActivation: options.activation must be ${names}, got '${activation}'`);
  checkIntact('gatedActivation', X, out?.checked);
  const empty = sizeOf(outputShape) === 0;
  return { x: X, activation, rows: empty ? 0 : X.data.length / n, i: n / 2, outputShape, empty, out };
}

export interface SoftcapPlan {
  x: Checked;
  cap: number;
  n: number;
  out: Out | undefined;
}

/** cap's magnitude range: where 1 / cap and cap stay normal float32 numbers (as for attention's softcap). */
const CAP_MIN = 2 ** -126, CAP_MAX = 2 ** 126;

export function planSoftcap(x: unknown, cap: unknown, options?: unknown): SoftcapPlan {
  const X = checkTensor('softcap: x', x);
  const o = checkOptions<OutOptions>('softcap', options, ['out']);
  const out = checkOut('softcap', o.out, X.shape);
  if (typeof cap !== 'number') throw new TypeError(`softcap: cap must be a number, got ${describeValue(cap)}`);
  if (!Number.isFinite(cap) || cap <= 0) throw new RangeError(`softcap: cap must be a finite number > 0, got ${cap}`);
  if (cap < CAP_MIN || cap > CAP_MAX) {
    throw new RangeError(`softcap: cap must be in [2^-126, 2^126] (${CAP_MIN.toPrecision(3)} to ${CAP_MAX.toPrecision(3)}) so that float32 kernels can compute with it, got ${cap}`);
  }
  checkIntact('softcap', X, out?.checked);
  return { x: X, cap, n: X.data.length, out };
}
