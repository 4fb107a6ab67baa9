// Serving figures for `npm run bench`: a prepared layer against the stateless op (encoder style),
// and decoding token by token into a KV cache (decoder style): per-step p50 and p99, and memory
// after the first and the last step.
import { createEngine } from 'qkv';
import { random } from './cases.js';

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

function time(f, runs, warmup) {
  for (let i = 0; i < warmup; i++) f();
  const ts = [];
  for (let i = 0; i < runs; i++) { const t0 = performance.now(); f(); ts.push(performance.now() - t0); }
  return ts.sort((a, b) => a - b);
}

/** Encoder style: self-attention E=512, H=8, L=128, batch 8, stateless vs a prepared layer. */
export async function encoder({ threads = 1 } = {}) {
  const engine = await createEngine({ threads });
  const B = 8, L = 128, E = 512, H = 8;
  const x = random([B, L, E], 7);
  const params = { numHeads: H, inProjWeight: random([3 * E, E], 8, 1 / Math.sqrt(E)), outProjWeight: random([E, E], 9, 1 / Math.sqrt(E)) };
  const layer = engine.createMultiHeadAttention(params);
  const stateless = time(() => engine.selfAttention(x, params), 9, 3);
  const prepared = time(() => layer.forward(x, x, x), 9, 3);
  layer.dispose();
  engine.dispose();
  const tokens = B * L;
  return { shape: `B=${B} L=${L} E=${E} H=${H}`, statelessMs: stateless[4], preparedMs: prepared[4], tokens };
}

/**
 * Decoder style: a cache prefilled to `start` positions, then `steps` single-token steps to `start +
 * steps`. `layer`: a prepared E=512, H=8 layer's forward; else attention alone with Hq query heads
 * over Hkv cached heads (d = 64).
 */
export async function decoder({ steps = 512, start = 1536, Hq = 8, Hkv = 8, layer = false, threads = 1 } = {}) {
  const engine = await createEngine({ threads });
  const d = 64, E = Hq * d, capacity = start + steps;
  const cache = engine.createKVCache({ batch: 1, kvHeads: Hkv, headDim: d, capacity });
  let step;
  let dispose = () => {};
  if (layer) {
    const mha = engine.createMultiHeadAttention({ numHeads: Hq, inProjWeight: random([3 * E, E], 1, 0.05), outProjWeight: random([E, E], 2, 0.05) });
    const prefill = random([1, start, E], 3);
    mha.forward(prefill, prefill, prefill, { cache });
    const token = random([1, 1, E], 4);
    step = () => mha.forward(token, token, token, { cache });
    dispose = () => mha.dispose();
  } else {
    cache.append(random([1, Hkv, start, d], 5), random([1, Hkv, start, d], 6));
    const q = random([1, Hq, 1, d], 7), k = random([1, Hkv, 1, d], 8), v = random([1, Hkv, 1, d], 9);
    step = () => engine.scaledDotProductAttention(q, k, v, { cache });
  }
  const ts = [];
  let afterFirst = 0, heapFirst = 0;
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    step();
    ts.push(performance.now() - t0);
    if (i === 0) { afterFirst = engine.info.memoryBytes; heapFirst = process.memoryUsage().heapUsed; }
  }
  const afterLast = engine.info.memoryBytes, heapLast = process.memoryUsage().heapUsed;
  dispose();
  cache.dispose();
  engine.dispose();
  ts.sort((a, b) => a - b);
  return {
    shape: `${layer ? `layer E=${E} H=${Hq}` : `attention Hq=${Hq} Hkv=${Hkv} d=${d}`}, cache ${start} -> ${capacity}`,
    p50: quantile(ts, 0.5), p99: quantile(ts, 0.99), wasmGrowth: afterLast - afterFirst, heapGrowthMB: (heapLast - heapFirst) / 2 ** 20,
  };
}

/**
 * A prepared multi-head layer's forward on one token (self-attention, no cache), E = 4096: the four
 * projections read 4·E² weights, which is the whole cost of the step; reported as GB/s of weights.
 */
export async function oneTokenLayer({ E = 4096, H = 32, threads = 1 } = {}) {
  const engine = await createEngine({ threads });
  const w = 1 / Math.sqrt(E);
  const layer = engine.createMultiHeadAttention({ numHeads: H, inProjWeight: random([3 * E, E], 1, w), outProjWeight: random([E, E], 2, w) });
  const x = random([1, 1, E], 3);
  const ts = time(() => layer.forward(x, x, x), 15, 3);
  layer.dispose();
  engine.dispose();
  const weightBytes = 4 * 4 * E * E;
  return { shape: `E=${E} H=${H}`, ms: ts[7], weightMiB: weightBytes / 2 ** 20, gbps: weightBytes / ts[7] / 1e6 };
}

/** Softmax [rows, n] from an engine tensor into one (options.out): no copy in, no fresh output array. */
export async function zeroCopySoftmax(rows = 8192, n = 1024) {
  const engine = await createEngine();
  const x = engine.tensor([rows, n]), out = engine.tensor([rows, n]);
  x.data.set(random([rows, n], 3).data);
  const ts = time(() => engine.softmax(x, { out }), 9, 3);
  engine.dispose();
  return { shape: `[${rows}, ${n}]`, ms: ts[4], gbps: (2 * 4 * rows * n) / ts[4] / 1e6 };
}
