// Thin wrapper over assembly/kernels/kernelRegressionGrad.ts; threads take shares of the queries,
// and the per-row sums they write are added up here in row order, the same for every thread count.
import { lossResult, planKernelRegressionLoss } from '../core/kernelRegressionLoss.js';
import { formatCall, fromData, type Tensor } from '../core/tensor.js';
import type { KernelRegressionLossOptions, KernelRegressionLossResult } from '../core/types.js';
import type { WasmContext } from './context.js';

export function kernelRegressionLoss(
  { arena, parallel }: WasmContext, queries: Tensor, keys: Tensor, values: Tensor, targets: Tensor, options?: KernelRegressionLossOptions,
): KernelRegressionLossResult {
  const p = planKernelRegressionLoss(queries, keys, values, targets, options);
  const { n, m, d, dv } = p;
  arena.checkOut(p.out);
  if (n * dv === 0) return lossResult(p, p.out ? p.out.tensor : fromData(new Float32Array(0), p.outputShape), 0, 0);
  const shapes = { queries: p.queries.shape, keys: p.keys.shape, values: p.values.shape, targets: p.targets.shape };
  return arena.call(() => formatCall('kernelRegressionLoss', shapes), () => {
    const pq = arena.input(p.queries, 'queries'), pk = arena.input(p.keys, 'keys'), pv = arena.input(p.values, 'values');
    const py = arena.input(p.targets, 'targets');
    const pout = arena.allocF32(n * dv);
    const pstats = arena.alloc(n * 16); // f64 [n, 2]
    const scratch = arena.perThread(2 * Math.ceil(m / 4) * 4 + dv, parallel.threads);
    parallel.run('kernel_regression_grad_f32', n, m * (d + 2 * dv + 12), (t, i0, i1) => [
      pout + i0 * dv * 4, pstats + i0 * 16, scratch(t), pq + i0 * d * 4, pk, pv, py + i0 * dv * 4, i1 - i0, m, d, dv, p.w,
      p.leaveOneOut ? i0 : -1,
    ]);
    const stats = new Float64Array(arena.memory.buffer, pstats, 2 * n);
    let squares = 0, products = 0;
    for (let i = 0; i < n; i++) {
      squares += stats[2 * i];
      products += stats[2 * i + 1];
    }
    return lossResult(p, arena.result(pout, n * dv, p.outputShape, p.out), squares, products);
  });
}
