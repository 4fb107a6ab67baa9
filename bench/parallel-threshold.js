// Where a second thread starts to pay: `node bench/parallel-threshold.js [--runs N]` (after `npm run
// build`; one benchmark at a time). Times matmul (n x n x n) and attention (B=1, H=2, L x L, d=64) on
// createEngine() and createEngine({ threads: 2 }) over growing sizes, the two calls interleaved, with
// inputs and output in engine memory (engine tensors) so that the kernels are most of the time.
//
// The engine splits a kernel call only from MIN_PARALLEL_WORK multiply-adds (src/wasm/parallel.ts):
// below that both columns run one thread, and the first sizes above it show whether the split pays
// there. To look below the threshold, lower MIN_PARALLEL_WORK, `npm run build`, and run this again.
import { createEngine } from 'qkv';
import { value } from './lib/args.js';
import { random } from './lib/cases.js';

const RUNS = Number(value('--runs') ?? 41);
const engines = [await createEngine(), await createEngine({ threads: 2 })];
let sink = 0;

/** An engine tensor on `e` holding a copy of `t`. */
function resident(e, t) {
  const r = e.tensor(t.shape);
  r.data.set(t.data);
  return r;
}

/** Median ms of each call, the calls made in turn RUNS times after warm-up rounds. */
function interleaved(calls) {
  const ts = calls.map(() => []);
  for (let round = 0; round < RUNS + 5; round++) {
    calls.forEach((call, i) => {
      const t0 = performance.now();
      sink += call()[0] ?? 0;
      if (round >= 5) ts[i].push(performance.now() - t0);
    });
  }
  return ts.map((t) => t.sort((a, b) => a - b)[t.length >> 1]);
}

function report(label, work, make) {
  const held = engines.map((e) => make(e));
  const [t1, t2] = interleaved(held.map((h) => h.call));
  held.forEach((h) => h.dispose());
  console.log(`${label.padEnd(16)} ${String(work).padStart(11)}   ${t1.toFixed(4).padStart(11)}   ${t2.toFixed(4).padStart(12)}   ${(t1 / t2).toFixed(2)}x`);
}

console.log('call             multiply-adds   1 thread ms   2 threads ms   speedup');
for (const n of [16, 32, 64, 128, 256, 384, 512, 768]) {
  const a = random([n, n], 1), b = random([n, n], 2);
  report(`matmul n=${n}`, n ** 3, (e) => {
    const A = resident(e, a), B = resident(e, b), out = e.tensor([n, n]);
    return { call: () => e.matmul(A, B, { out }).data, dispose: () => [A, B, out].forEach((t) => t.dispose()) };
  });
}
const H = 2, d = 64;
for (const L of [32, 64, 128, 256, 512, 1024, 2048]) {
  const q = random([1, H, L, d], 4), k = random([1, H, L, d], 5), v = random([1, H, L, d], 6);
  report(`attention L=${L}`, 2 * H * L * L * d, (e) => {
    const Q = resident(e, q), K = resident(e, k), V = resident(e, v), out = e.tensor([1, H, L, d]);
    return { call: () => e.scaledDotProductAttention(Q, K, V, { out }).output.data, dispose: () => [Q, K, V, out].forEach((t) => t.dispose()) };
  });
}
engines.forEach((e) => e.dispose());
if (Number.isNaN(sink)) console.log('(a result was NaN)');
