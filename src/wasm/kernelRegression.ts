// Thin wrapper over assembly/kernels/kernelRegression.ts; threads take shares of the queries.
import { planKernelRegression } from '../core/plans.js';
import { formatCall, fromData, type Tensor } from '../core/tensor.js';
import type { KernelRegressionOptions, OutputWithWeights } from '../core/types.js';
import type { WasmContext } from './context.js';

export function kernelRegression({ arena, parallel }: WasmContext, queries: Tensor, keys: Tensor, values: Tensor, options?: KernelRegressionOptions): OutputWithWeights {
  const p = planKernelRegression(queries, keys, values, options);
  const { n, m, d, dv } = p;
  arena.checkOut(p.out);
  if (n * dv === 0 && (!p.returnWeights || n * m === 0)) {
    // nothing to compute, however many empty rows there are
    const result: OutputWithWeights = { output: p.out ? p.out.tensor : fromData(new Float32Array(0), p.outputShape) };
    if (p.returnWeights) result.weights = fromData(new Float32Array(0), p.weightsShape);
    return result;
  }
  return arena.call(() => formatCall('kernelRegression', { queries: p.queries.shape, keys: p.keys.shape, values: p.values.shape }), () => {
    const pq = arena.input(p.queries, 'queries'), pk = arena.input(p.keys, 'keys'), pv = arena.input(p.values, 'values');
    const pout = arena.outputApart(p.out, p.queries, p.keys, p.values) || arena.allocF32(n * dv);
    const pw = p.returnWeights ? arena.allocF32(n * m) : 0;
    const scratch = arena.perThread(m, parallel.threads);
    parallel.run('kernel_regression_f32', n, m * (d + dv + 8), (t, i0, i1) => [
      pout + i0 * dv * 4, pw ? pw + i0 * m * 4 : 0, pw ? 0 : scratch(t), pq + i0 * d * 4, pk, pv, i1 - i0, m, d, dv, p.w,
    ]);
    const result: OutputWithWeights = { output: arena.result(pout, n * dv, p.outputShape, p.out) };
    if (pw) result.weights = fromData(arena.read(pw, n * m), p.weightsShape);
    return result;
  });
}
