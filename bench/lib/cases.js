// The case table, declared once: bench/run.js times it, lib/check-peers.js checks the peers on its small
// cases, and test/cases.test.ts checks qkv's wasm engine on them (1 and 2 threads) against the
// reference, each at the op's TOLERANCE below.
//
// A case names its op family, a shape label, its work (FLOPs or bytes moved per call), its
// parameters and its tolerance; inputs() builds its inputs once as qkv tensors, which every
// implementation uses (a peer converts them to its own tensors in its setup, outside the timed
// call); qkv(engine, inputs) is the call on a qkv engine and returns the output tensor. The serving
// cases (a KV pool's appends, batchAttention, the grouped-query layer) keep state per engine (a pool
// whose sequences hold their pasts, a layer), made by their first call on that engine; release(engine,
// inputs) frees it.
import { tensor } from 'qkv';

/**
 * Per op: max |got − reference| ≤ tolerance · max(1, max |reference|), for a float32 implementation
 * (qkv's wasm engine or a peer) against qkv's reference, which accumulates in float64. Relative to
 * the output's scale, not to each element: a near-one-hot softmax turns float32 rounding of large
 * scores into differences of that order in small outputs (the multi-head case differs by 7e-6 of
 * its scale). A wrong semantics (scale, mask, layout) differs by the order of the scale.
 */
export const TOLERANCE = {
  matmul: 1e-4, 'skinny matmul': 1e-4, softmax: 1e-4, 'masked softmax': 1e-4, attention: 1e-4,
  'attention with weights': 1e-4, 'grouped-query decode': 1e-4, 'multi-head attention': 1e-4, 'kernel regression': 1e-4, 'kernel regression loss': 1e-4,
  'kv pool append': 1e-4, 'batch attention decode': 1e-4, 'grouped-query layer': 1e-4,
};

/**
 * How far `got` is from `expected`: the largest |difference| (Infinity for a NaN on one side only),
 * where it is, and the largest |expected|, the scale the case's tolerance is relative to.
 */
export function compareToReference(got, expected) {
  let maxAbsDiff = 0, maxRef = 0, worst = 0;
  for (let i = 0; i < got.length; i++) {
    const diff = Number.isNaN(got[i]) && Number.isNaN(expected[i]) ? 0 : Math.abs(got[i] - expected[i]);
    if (!(diff <= maxAbsDiff)) { maxAbsDiff = Number.isNaN(diff) ? Infinity : diff; worst = i; }
    maxRef = Math.max(maxRef, Math.abs(expected[i]));
  }
  return { maxAbsDiff, maxRef, worst };
}

/** The case with its op's tolerance. */
const withTolerance = (c) => ({ ...c, tolerance: TOLERANCE[c.op] });

/** Deterministic uniform [-1, 1) data (mulberry32). */
export function random(shape, seed) {
  let a = seed >>> 0;
  const n = shape.reduce((x, y) => x * y, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    data[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return tensor(data, shape);
}

/**
 * Every nonzero value of uniform [-1, 1) data times this is a float32 subnormal (below 2^-126 ≈ 1.2e-38).
 * Subnormal cases pair with the normal case of the same shape (`normalShape`); run.js prints the ratio
 * of their times, which should stay under 2x (CPUs that handle subnormals in microcode take 10-100x).
 */
const SUBNORMAL_SCALE = 1e-39;
const subnormal = (t) => tensor(t.data.map((x) => x * SUBNORMAL_SCALE), t.shape);

/** With `subnormal`, a is subnormal: every product and every partial sum is one. */
export function matmulCase(M, K = M, N = M, { subnormal: sub = false } = {}) {
  const shape = M === K && K === N ? `${M}x${M}x${M}` : `${M}x${K}x${N}`;
  return {
    op: 'matmul', shape: sub ? `${shape}, a subnormal` : shape, normalShape: sub ? shape : undefined, flops: 2 * M * K * N,
    params: { M, K, N },
    inputs: () => ({ a: sub ? subnormal(random([M, K], 1)) : random([M, K], 1), b: random([K, N], 2) }),
    qkv: (e, { a, b }) => e.matmul(a, b),
  };
}

/**
 * A skinny product: a few rows (decode tokens) times a weight matrix B [K, N], or [N, K] with
 * transposeB (nn.Linear's layout). Memory-bound: the work column is GB/s of B read once.
 * `resident(engine, inputs)` sets up the call with B in engine memory (an engine tensor), as a
 * model's weights are; `qkv` is the stateless call, which copies B in every time.
 */
export function skinnyCase(M, K, N, { transposeB = false } = {}) {
  return {
    op: 'skinny matmul', shape: `[${M}, ${K}] x [${transposeB ? `${N}, ${K}]T` : `${K}, ${N}]`}`, bytes: 4 * K * N,
    params: { M, K, N, transposeB },
    inputs: () => ({ a: random([M, K], 13), b: random(transposeB ? [N, K] : [K, N], 14) }),
    qkv: (e, { a, b }) => e.matmul(a, b, { transposeB }),
    resident: (e, { a, b }) => {
      const B = e.tensor(b.shape);
      B.data.set(b.data);
      return { call: () => e.matmul(a, B, { transposeB }).data, dispose: () => B.dispose() };
    },
  };
}

export function softmaxCase(rows, n) {
  return {
    op: 'softmax', shape: `[${rows}, ${n}]`, bytes: 2 * 4 * rows * n,
    params: { rows, n },
    inputs: () => ({ x: random([rows, n], 3) }),
    qkv: (e, { x }) => e.softmax(x),
  };
}

/** maskedSoftmax over [B, L, n] with one valid length per row, spread over [n/2, n] (every SIMD tail). */
export function maskedSoftmaxCase(B, L, n) {
  return {
    op: 'masked softmax', shape: `[${B}, ${L}, ${n}]`, bytes: 2 * 4 * B * L * n,
    params: { B, L, n },
    inputs: () => ({ x: random([B, L, n], 3), lens: Array.from({ length: B * L }, (_, r) => n - ((r * 37) % (n / 2 + 1))) }),
    qkv: (e, { x, lens }) => e.maskedSoftmax(x, lens),
  };
}

/**
 * Scaled dot-product attention on [B, H, L, d]; FLOPs 4·B·H·Lq·Lk·d, halved when causal (the work that must be done).
 * With `subnormal`, q and v are subnormal: so are the scores and every product and sum of weights · v.
 */
export function attentionCase(label, { B = 1, H = 8, Lq, Lk = Lq, d = 64, causal = false, subnormal: sub = false }) {
  const maybe = (t) => (sub ? subnormal(t) : t);
  return {
    op: 'attention', shape: `${label}${sub ? ', q and v subnormal' : ''} (B=${B} H=${H} d=${d})`, normalShape: sub ? `${label} (B=${B} H=${H} d=${d})` : undefined,
    flops: 4 * B * H * Lq * Lk * d * (causal ? 0.5 : 1),
    params: { B, H, Lq, Lk, d, causal },
    inputs: () => ({ q: maybe(random([B, H, Lq, d], 4)), k: random([B, H, Lk, d], 5), v: maybe(random([B, H, Lk, d], 6)) }),
    qkv: (e, { q, k, v }) => e.scaledDotProductAttention(q, k, v, { causal }).output,
  };
}

/**
 * One decode step of grouped-query attention (q [B, Hq, 1, d] over k, v [B, Hkv, Lk, d], Hq / Hkv
 * query heads a kv head): the paged kernel, which reads each kv head once for its whole group; qkv
 * only (the peers' attention ops take Hq = Hkv; bench/batch-serving.js races onnxruntime-web's
 * GroupQueryAttention). GB/s from the K and V bytes read.
 */
export function groupedDecodeCase(Lk, { B = 1, Hq = 32, Hkv = 8, d = 64 } = {}) {
  return {
    op: 'grouped-query decode', shape: `Lk=${Lk} (B=${B} Hq=${Hq} Hkv=${Hkv} d=${d})`, bytes: 2 * 4 * B * Hkv * Lk * d,
    params: { B, Hq, Hkv, Lk, d },
    inputs: () => ({ q: random([B, Hq, 1, d], 7), k: random([B, Hkv, Lk, d], 8), v: random([B, Hkv, Lk, d], 9) }),
    qkv: (e, { q, k, v }) => e.scaledDotProductAttention(q, k, v).output,
  };
}

/** Attention that also returns its softmax weights [B, H, L, L] (the row kernel); qkv only. */
export function attentionWeightsCase(L, { B = 1, H = 8, d = 64 } = {}) {
  return {
    op: 'attention with weights', shape: `L=${L} (B=${B} H=${H} d=${d})`, flops: 4 * B * H * L * L * d,
    params: { B, H, L, d },
    inputs: () => ({ q: random([B, H, L, d], 4), k: random([B, H, L, d], 5), v: random([B, H, L, d], 6) }),
    qkv: (e, { q, k, v }) => e.scaledDotProductAttention(q, k, v, { returnWeights: true }).weights,
  };
}

/** Multi-head self-attention with PyTorch nn.MultiheadAttention parameters, no biases. */
export function multiHeadCase({ B, L, E, H }) {
  return {
    op: 'multi-head attention', shape: `B=${B} L=${L} E=${E} H=${H}`, flops: B * (4 * 2 * L * E * E + 4 * L * L * E),
    params: { B, L, E, H },
    inputs: () => ({ x: random([B, L, E], 7), inProjWeight: random([3 * E, E], 8), outProjWeight: random([E, E], 9) }),
    qkv: (e, { x, inProjWeight, outProjWeight }) => e.selfAttention(x, { numHeads: H, inProjWeight, outProjWeight }).output,
  };
}

export function kernelRegressionCase(n, m) {
  return {
    op: 'kernel regression', shape: `${n} queries x ${m} keys`, flops: 8 * n * m,
    params: { n, m },
    inputs: () => ({ q: random([n], 10), k: random([m], 11), v: random([m], 12) }),
    qkv: (e, { q, k, v }) => e.kernelRegression(q, k, v).output,
  };
}

/** The loss and its derivative in w: the forward pass plus a weighted distance, a centring and a centred sum per key. */
export function kernelRegressionLossCase(n, m, { leaveOneOut = false } = {}) {
  return {
    op: 'kernel regression loss', shape: leaveOneOut ? `${n} points, leave-one-out` : `${n} queries x ${m} keys`, flops: 15 * n * m,
    params: { n, m, leaveOneOut },
    inputs: () => {
      const k = random([m], 11);
      return { q: leaveOneOut ? k : random([n], 10), k, v: random([m], 12), y: random([n], 13) };
    },
    qkv: (e, { q, k, v, y }) => {
      const r = e.kernelRegressionLoss(q, k, v, y, { w: 2, leaveOneOut });
      return tensor([r.loss, r.dLossDw], [2]);
    },
  };
}

// Serving many sequences. A serving case's state lives on its engine: made by the first call there,
// kept with the inputs, so that the timed call runs the op alone. Each call leaves it as it found
// it (every sequence truncated back to its past), so that every call does the same work and the
// reference engine's state gives the reference's result.

/** The state of `inputs` on `engine`, made by `make()` on the first call there. */
function held(inputs, engine, make) {
  inputs.held ??= new Map();
  if (!inputs.held.has(engine)) inputs.held.set(engine, make());
  return inputs.held.get(engine);
}

/** Frees what a serving case holds on `engine` (the release of every serving case). */
function release(engine, inputs) {
  inputs.held?.get(engine)?.dispose();
  inputs.held?.delete(engine);
}

/** Past lengths of S sequences spread over [min, max], as a serving batch holds them. */
const spread = (S, min, max) => Array.from({ length: S }, (_, i) => (S === 1 ? max : Math.round(min + (i * (max - min)) / (S - 1))));

/** Random past keys and values [L, Hkv, D] of sequences of `pasts` lengths. */
const pastRows = (pasts, Hkv, D) => ({ pastK: pasts.map((L, s) => random([L, Hkv, D], 100 + s)), pastV: pasts.map((L, s) => random([L, Hkv, D], 200 + s)) });

/** A pool on `engine` (blocks of 16 unless said) whose sequences hold `pastK[s]`, `pastV[s]`, with room for `extra` more positions each. */
function filledPool(engine, { Hkv, D, dtype = 'float32', blockSize = 16 }, { pastK, pastV }, extra) {
  const blocks = pastK.reduce((n, k) => n + Math.ceil((k.shape[0] + extra) / blockSize) + 1, 0);
  const pool = engine.createKVPool({ kvHeads: Hkv, headDim: D, blocks, blockSize, dtype });
  const seqs = pastK.map((k, s) => {
    const seq = pool.sequence();
    if (k.shape[0] > 0) seq.append(k, pastV[s]);
    return seq;
  });
  const pasts = pastK.map((k) => k.shape[0]);
  return { pool, seqs, truncate: () => seqs.forEach((seq, s) => seq.truncate(pasts[s])), dispose: () => pool.dispose() };
}

/** Bytes a pool of `dtype` stores per position and kv head of D features (int8 adds its float32 scale). */
const storedBytes = (dtype, D) => (dtype === 'int8' ? D + 4 : dtype === 'float16' ? 2 * D : 4 * D);

/**
 * A KV pool's appends: n new positions (keys and values [n, Hkv, D]) into each of S sequences
 * holding `pasts`, converted to the pool's dtype. GB/s of the float32 rows given. A timed call
 * returns the sequences' lengths; with `verify` (the check cases) it reads the new rows back.
 */
export function poolAppendCase(label, { S, n, Hkv = 2, D = 64, pasts = spread(S, 256, 2048), dtype = 'float32', blockSize = 16, verify = false }) {
  return {
    op: 'kv pool append', shape: `${label}, ${dtype} (Hkv=${Hkv} D=${D})`, bytes: 2 * 4 * S * n * Hkv * D,
    params: { S, n, Hkv, D, pasts, dtype, blockSize },
    inputs: () => ({ ...pastRows(pasts, Hkv, D), k: pasts.map((_, s) => random([n, Hkv, D], 300 + s)), v: pasts.map((_, s) => random([n, Hkv, D], 400 + s)) }),
    qkv: (e, inputs) => {
      const h = held(inputs, e, () => filledPool(e, { Hkv, D, dtype, blockSize }, inputs, n));
      h.seqs.forEach((seq, s) => seq.append(inputs.k[s], inputs.v[s]));
      let out = tensor(h.seqs.map((seq) => seq.length), [S]);
      if (verify) {
        const rows = n * Hkv * D, stored = new Float32Array(2 * S * rows);
        h.seqs.forEach((seq, s) => {
          const { keys, values } = seq.read();
          stored.set(keys.data.subarray(keys.data.length - rows), 2 * s * rows);
          stored.set(values.data.subarray(values.data.length - rows), (2 * s + 1) * rows);
        });
        out = tensor(stored, [S, 2, n, Hkv, D]);
      }
      h.truncate();
      return out;
    },
    release,
  };
}

/**
 * One decode step of batchAttention: a new row for each of S sequences whose pasts (spread over
 * 256..2048 by default) sit in a KV pool of `dtype`, Hq / Hkv query heads a kv head, rotary on; the
 * paged kernel. Qwen2.5-0.5B's attention by default. GB/s of the pool's keys and values read.
 */
export function batchDecodeCase({ S = 16, Hq = 14, Hkv = 2, D = 64, pasts = spread(S, 256, 2048), dtype = 'float32', blockSize = 16 } = {}) {
  const positions = pasts.reduce((a, L) => a + L + 1, 0);
  return {
    op: 'batch attention decode', shape: `${S} seqs, ${dtype} (Hq=${Hq} Hkv=${Hkv} D=${D})`, bytes: 2 * positions * Hkv * storedBytes(dtype, D),
    params: { S, Hq, Hkv, D, pasts, dtype, blockSize },
    inputs: () => ({ ...pastRows(pasts, Hkv, D), q: random([S, Hq, D], 1), k: random([S, Hkv, D], 2), v: random([S, Hkv, D], 3) }),
    qkv: (e, inputs) => {
      const h = held(inputs, e, () => filledPool(e, { Hkv, D, dtype, blockSize }, inputs, 1));
      const { output } = e.batchAttention(inputs.q, inputs.k, inputs.v, { sequences: h.seqs, queryLens: h.seqs.map(() => 1), rotary: {} });
      h.truncate();
      return output;
    },
    release,
  };
}

/**
 * The grouped-query attention layer's forward (createGroupedQueryAttention, Hugging Face's layout with
 * q/k/v biases and rotary, as Qwen2): n new tokens for each of S sequences over a float32 pool. Decode
 * (n = 1, pasts spread over 256..2048) or a prompt (n tokens over an empty sequence). Qwen2.5-0.5B's
 * shapes by default. GFLOP/s from the four projections and the attention.
 */
export function groupedQueryLayerCase(label, { S = 16, n = 1, E = 896, Hq = 14, Hkv = 2, D = 64, pasts = spread(S, 256, 2048), blockSize = 16 } = {}) {
  const T = S * n, attention = pasts.reduce((a, L) => a + n * L + (n * (n + 1)) / 2, 0); // causal query-key pairs
  const s = 1 / Math.sqrt(E);
  const scaled = (shape, seed, by) => tensor(random(shape, seed).data.map((x) => x * by), shape);
  return {
    op: 'grouped-query layer', shape: `${label} (E=${E} Hq=${Hq} Hkv=${Hkv})`,
    flops: 2 * T * E * (2 * Hq * D + 2 * Hkv * D) + 4 * Hq * D * attention,
    params: { S, n, E, Hq, Hkv, D, pasts, blockSize },
    inputs: () => ({
      ...pastRows(pasts, Hkv, D), x: random([T, E], 4),
      params: {
        numHeads: Hq, numKvHeads: Hkv, headDim: D, rotary: {},
        qProjWeight: scaled([Hq * D, E], 5, s), kProjWeight: scaled([Hkv * D, E], 6, s), vProjWeight: scaled([Hkv * D, E], 7, s),
        oProjWeight: scaled([E, Hq * D], 8, 1 / Math.sqrt(Hq * D)),
        qProjBias: scaled([Hq * D], 9, 0.1), kProjBias: scaled([Hkv * D], 10, 0.1), vProjBias: scaled([Hkv * D], 11, 0.1),
      },
    }),
    qkv: (e, inputs) => {
      const h = held(inputs, e, () => {
        const state = filledPool(e, { Hkv, D, blockSize }, inputs, n), layer = e.createGroupedQueryAttention(inputs.params);
        return { ...state, layer, dispose: () => { layer.dispose(); state.dispose(); } };
      });
      const { output } = h.layer.forward(inputs.x, { sequences: h.seqs, queryLens: h.seqs.map(() => n) });
      h.truncate();
      return output;
    },
    release,
  };
}

/** What the work column counts, printed under each family's table. */
export const familyNotes = {
  softmax: 'GB/s: one float32 read and one write of the input. Where the time goes (node bench/softmax-breakdown.js): a stateless call is the copy in, the kernel, the copy out, and the first touch of the fresh output array, which for 32 MiB costs from 2 ms to over 100 ms depending on whether its pages are already backed: every peer pays it too',
  'masked softmax': 'GB/s: one float32 read and one write of the input; valid lengths spread over [n/2, n]',
  'attention with weights': 'GFLOP/s from 4*B*H*L^2*d FLOPs; the [B, H, L, L] weights are returned too',
  attention: 'GFLOP/s from 4*B*H*Lq*Lk*d FLOPs, halved when causal: the work that must be done',
  'grouped-query decode': 'GB/s of K and V, which a stateless call copies into the engine and then reads once (every query head of a group with its kv head); bench/ab.js also times them in engine memory. qkv only: the peers\' attention ops want as many kv heads as query heads',
  'skinny matmul': 'GB/s of B (the weights) read once per call; stateless calls copy B in as well, resident ones read it in place',
  'kernel regression loss': 'GFLOP/s from 15*n*m FLOPs: the forward pass (8 per query and key) and the derivative in w (7 more)',
  'multi-head attention': 'GFLOP/s from B*(8*L*E^2 + 4*L^2*E) FLOPs: four projections and the attention',
  'kv pool append': 'GB/s of the float32 keys and values given, stored in the pool\'s dtype; each call then truncates the sequences back to their pasts (bookkeeping only). qkv only, as the other serving families: no peer has a paged KV pool (bench/batch-serving.js races onnxruntime-web\'s GroupQueryAttention)',
  'batch attention decode': 'GB/s of the keys and values the step reads from the pool (int8: with a float32 scale per row and head); one new row for each sequence, whose pasts spread over 256..2048, rotary on',
  'grouped-query layer': 'GFLOP/s from 2*T*E*(2*Hq*D + 2*Hkv*D) FLOPs of projections and 4*Hq*D per causal query-key pair; decode: one new row for each sequence, whose pasts spread over 256..2048',
};

/** The benchmark set; `full` adds the smaller and larger shapes. */
export function benchCases({ full = false } = {}) {
  return [
    ...(full ? [64, 128, 256, 512, 1024] : [128, 256, 512, 1024]).map((n) => matmulCase(n)),
    matmulCase(256, 256, 256, { subnormal: true }),
    ...[1, 2, 4, 8].flatMap((M) => [skinnyCase(M, 4096, 4096), skinnyCase(M, 4096, 4096, { transposeB: true })]),
    ...[1, 4, 16].map((M) => skinnyCase(M, 896, 896, { transposeB: true })),
    ...(full ? [[1024, 1024], [8192, 1024], [65536, 128]] : [[8192, 1024], [65536, 128]]).map(([rows, n]) => softmaxCase(rows, n)),
    maskedSoftmaxCase(8, 1024, 1024),
    ...[128, 512, 1024, 2048].map((L) => attentionCase(`L=${L}`, { Lq: L })),
    attentionCase('L=512', { Lq: 512, subnormal: true }),
    attentionCase('causal L=1024', { Lq: 1024, causal: true }),
    attentionCase('decode Lq=1 Lk=2048', { Lq: 1, Lk: 2048 }),
    groupedDecodeCase(4096),
    attentionWeightsCase(512),
    multiHeadCase({ B: 8, L: 128, E: 512, H: 8 }),
    kernelRegressionCase(1000, 10000),
    kernelRegressionLossCase(1000, 10000),
    kernelRegressionLossCase(4000, 4000, { leaveOneOut: true }),
    poolAppendCase('16 seqs x 1', { S: 16, n: 1 }),
    ...['float32', 'float16', 'int8'].map((dtype) => poolAppendCase('1 seq x 512', { S: 1, n: 512, pasts: [0], dtype })),
    ...['float32', 'float16', 'int8'].map((dtype) => batchDecodeCase({ dtype })),
    groupedQueryLayerCase('decode, 16 seqs'),
    groupedQueryLayerCase('prompt of 256', { S: 1, n: 256, pasts: [0] }),
  ].map(withTolerance);
}

/** Small shapes with odd sizes, to check that a peer computes what qkv's reference computes. */
export function checkCases() {
  return [
    matmulCase(37, 53, 29),
    skinnyCase(3, 37, 29),
    skinnyCase(2, 29, 37, { transposeB: true }),
    softmaxCase(7, 100),
    attentionCase('L=19', { B: 2, Lq: 19 }),
    attentionCase('Lq=11 Lk=23', { Lq: 11, Lk: 23 }),
    attentionCase('causal L=21', { Lq: 21, causal: true }),
    attentionCase('decode Lq=1 Lk=45', { Lq: 1, Lk: 45 }),
    multiHeadCase({ B: 2, L: 9, E: 512, H: 8 }),
    poolAppendCase('3 seqs x 5', { S: 3, n: 5, Hkv: 2, D: 12, pasts: [0, 7, 16], dtype: 'int8', blockSize: 4, verify: true }),
    poolAppendCase('3 seqs x 5', { S: 3, n: 5, Hkv: 2, D: 12, pasts: [0, 7, 16], dtype: 'float16', blockSize: 4, verify: true }),
    batchDecodeCase({ S: 3, Hq: 4, Hkv: 2, D: 16, pasts: [5, 17, 40], blockSize: 4 }),
    batchDecodeCase({ S: 3, Hq: 6, Hkv: 2, D: 20, pasts: [5, 17, 40], dtype: 'int8', blockSize: 4 }),
    groupedQueryLayerCase('decode, 3 seqs', { S: 3, E: 24, Hq: 6, Hkv: 2, D: 8, pasts: [0, 9, 20], blockSize: 4 }),
    groupedQueryLayerCase('prompt, 2 x 17', { S: 2, n: 17, E: 24, Hq: 6, Hkv: 2, D: 8, pasts: [0, 3], blockSize: 4 }),
  ].map(withTolerance);
}
