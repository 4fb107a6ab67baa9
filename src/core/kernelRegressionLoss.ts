// Validation of kernelRegressionLoss, and the last step both engines share: the per-row sums of
// squared errors and of error × derivative become the loss and ∂loss/∂w.
import { checkKernelRegressionInputs, checkKernelWidth, type KernelRegressionInputs } from './plans.js';
import type { Tensor } from './tensor.js';
import { formatShape } from './tensor.js';
import type { KernelRegressionLossOptions, KernelRegressionLossResult } from './types.js';
import { type Checked, checkBoolean, checkIntact, checkOptions, checkOut, checkTensor, describeValue, expectShape, type Out } from './validate.js';

export interface KernelRegressionLossPlan extends KernelRegressionInputs {
  targets: Checked;
  w: number;
  leaveOneOut: boolean;
  reduction: 'mean' | 'sum';
  out: Out | undefined;
}

export function planKernelRegressionLoss(
  queries: unknown, keys: unknown, values: unknown, targets: unknown, options?: KernelRegressionLossOptions,
): KernelRegressionLossPlan {
  const op = 'kernelRegressionLoss';
  const inputs = checkKernelRegressionInputs(op, queries, keys, values);
  const y = checkTensor(`${op}: targets`, targets);
  expectShape(`${op}: targets`, y.shape, inputs.outputShape, `the shape of the output; values are ${formatShape(inputs.values.shape)}`);
  const o = checkOptions<KernelRegressionLossOptions>(op, options, ['w', 'leaveOneOut', 'reduction', 'out']);
  const w = checkKernelWidth(op, o.w);
  const leaveOneOut = checkBoolean(`${op}: options.leaveOneOut`, o.leaveOneOut) ?? false;
  if (leaveOneOut && inputs.n !== inputs.m) {
    throw new RangeError(`${op}: options.leaveOneOut leaves key i out of query i, so it needs as many queries as keys: queries ${formatShape(inputs.queries.shape)}, keys ${formatShape(inputs.keys.shape)}`);
  }
  const reduction: unknown = o.reduction ?? 'mean';
  if (typeof reduction !== 'string') throw new TypeError(`${op}: options.reduction must be 'mean' or 'sum', got ${describeValue(reduction)}`);
  if (reduction !== 'mean' && reduction !== 'sum') throw new RangeError(`${op}: options.reduction must be 'mean' or 'sum', got '${reduction}'`);
  const out = checkOut(op, o.out, inputs.outputShape);
  checkIntact(op, inputs.queries, inputs.keys, inputs.values, y, out?.checked);
  return { ...inputs, targets: y, w, leaveOneOut, reduction: reduction as 'mean' | 'sum', out };
}

/**
 * The result from the predictions and two sums over every output element, `squares` = Σ e² and
 * `products` = Σ e · c with e = output - target and ∂output/∂w = -w · c. As PyTorch's mean over no
 * element, the mean loss of an empty output is NaN and its derivative 0.
 */
export function lossResult(p: KernelRegressionLossPlan, output: Tensor, squares: number, products: number): KernelRegressionLossResult {
  const count = p.n * p.dv;
  if (count === 0) return { output, loss: p.reduction === 'mean' ? NaN : 0, dLossDw: 0 };
  const r = p.reduction === 'mean' ? 1 / count : 1;
  return { output, loss: r * squares, dLossDw: -2 * r * p.w * products + 0 }; // + 0: a zero slope is 0, not -0
}
