// Footprint figures for `npm run bench`: cold start in a fresh process, and the wasm memory an
// attention call grows beyond its inputs and outputs (the fused kernel keeps O(tile) scratch).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createEngine, tensor } from 'qkv';

/**
 * Milliseconds from before `import('qkv')` to the first small attention result, in a fresh Node
 * process each time (so nothing is cached in memory); the median of `runs`.
 */
export function coldStartMs(runs = 5) {
  const script = `
    const t0 = performance.now();
    const { createEngine, tensor } = await import('qkv');
    const engine = await createEngine();
    const x = tensor(new Float32Array(2 * 4 * 8 * 16).fill(0.5), [2, 4, 8, 16]);
    const { output } = engine.scaledDotProductAttention(x, x, x, { causal: true });
    if (!(output.data[0] > 0)) throw new Error('bad result');
    console.log(JSON.stringify({ ms: performance.now() - t0, rssMB: process.memoryUsage().rss / 2 ** 20 }));
  `;
  const cwd = fileURLToPath(new URL('../..', import.meta.url));
  const samples = [];
  for (let i = 0; i < runs; i++) {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cold start run failed: ${r.stderr}`);
    samples.push(JSON.parse(r.stdout));
  }
  samples.sort((a, b) => a.ms - b.ms);
  return samples[Math.floor(runs / 2)];
}

/**
 * Runs attention B=1, H=8, d=64 at length L on a fresh engine and returns the wasm memory growth
 * beyond the inputs and the output it has to hold, and the time of the call.
 */
export async function attentionMemory(L, { causal = false } = {}) {
  const engine = await createEngine();
  const shape = [1, 8, L, 64];
  const n = 8 * L * 64;
  const x = tensor(new Float32Array(n).map((_, i) => Math.sin(i)), shape);
  const before = engine.info.memoryBytes;
  const t0 = performance.now();
  engine.scaledDotProductAttention(x, x, x, { causal });
  const ms = performance.now() - t0;
  const growth = engine.info.memoryBytes - before;
  engine.dispose();
  const ioBytes = 4 * n * 4; // q, k, v in; output
  return { ms, growthMiB: growth / 2 ** 20, beyondIoMiB: (growth - ioBytes) / 2 ** 20, ioMiB: ioBytes / 2 ** 20 };
}
