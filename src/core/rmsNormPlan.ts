// Validation and shape of rmsNorm, shared by both engines so that they reject the same inputs with
// the same messages. Every argument is read and checked (options.out among the first: its shape is the
// result's) before an engine computes or allocates anything.
import type { RmsNormOptions } from './modelTypes.js';
import { formatShape } from './tensor.js';
import {type Checked, 
  checkBoolean, checkIntact, checkNumber, checkOptions, checkOut, checkTensor, expectShape, type Out,
} from './validate.js';

export interface RmsNormPlan {
  x: Checked; weight: Checked;
  /** Rows of the flattened [rows, d] view (0 when d is 0). */
  rows: number; d: number;
  eps: number; unitOffset: boolean;
  /** Nothing to compute: x has no element. */
  empty: boolean;
  out: Out | undefined;
}

export function planRmsNorm(x: unknown, weight: unknown, options?: unknown): RmsNormPlan {
  const X = checkTensor('rmsNorm: x', x);
  if (X.shape.length === 0) throw new RangeError('rmsNorm: x must be at least 1-D [..., D], got shape []');
  const o = checkOptions<RmsNormOptions>('rmsNorm', options, ['eps', 'unitOffset', 'out']);
  const out = checkOut('rmsNorm', o.out, X.shape);
  const W = checkTensor('rmsNorm: weight', weight);
  const d = X.shape[X.shape.length - 1];
  expectShape('rmsNorm: weight', W.shape, [d], `D, the last size of x ${formatShape(X.shape)}`);
  const eps = checkNumber('rmsNorm: options.eps', o.eps, 0) ?? 1e-6;
  const unitOffset = checkBoolean('rmsNorm: options.unitOffset', o.unitOffset) ?? false;
  checkIntact('rmsNorm', X, W, out?.checked);
  const empty = X.data.length === 0;
  return { x: X, weight: W, rows: empty ? 0 : X.data.length / d, d, eps, unitOffset, empty, out };
}
