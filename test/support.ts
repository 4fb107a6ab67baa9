// Shared test support: tolerances (declared once), the comparison, seeded random data, the engines, and
// the KV pool set-up (fillPool, poolAttention) with the pool's invariants.
import { afterAll, expect } from 'vitest';
import type { PagedPool, PagedSequence } from '../src/core/kvPool.js';
import { formatShape } from '../src/core/tensor.js';
import {
  type AttentionOptions, type BatchAttentionOptions, createEngine, type Engine, type KVPool, type KVPoolOptions, type KVSequence, type MultiHeadParams, reference,
  type Tensor, tensor,
} from '../src/index.js';
import { seededRandom } from '../src/models/sample.js';
import { ATTENTION_PROBE, type AttentionKernel, type AttentionProbe } from '../src/wasm/attentionCall.js';

/** The README's tolerance ("Attention ops"): |a - b| <= ABS_TOL + REL_TOL · |b| against a float64 evaluation of the same definition. */
export const ABS_TOL = 1e-4;
export const REL_TOL = 1e-4;

/** The SIMD-tail sizes: below, at and around multiples of 4, 8 and 16, and several loop iterations. */
export const TAIL_SIZES = [1, 3, 4, 5, 15, 16, 17, 63, 64, 65, 127, 129];

/** Both engines: the reference and one wasm engine shared by a test file. */
let wasm: Promise<Engine> | null = null;
export async function engines(): Promise<Engine[]> {
  wasm ??= createEngine();
  return [reference, await wasm];
}
export const wasmEngine = async (): Promise<Engine> => (await engines())[1];

/** Wasm engines on 1 and 2 threads, a test file's own, disposed after its tests. */
export async function wasmEngines(): Promise<[Engine, Engine]> {
  const one = await createEngine(), two = await createEngine({ threads: 2 });
  afterAll(() => { one.dispose(); two.dispose(); });
  return [one, two];
}

/**
 * Asserts same shape, then every element within tolerance; NaN equals NaN, infinities must match.
 * On failure the message names the shape, the worst index and both values.
 */
export function expectClose(actual: Tensor | undefined, expected: Tensor | { data: ArrayLike<number>; shape: readonly number[] } | undefined, label = ''): void {
  if (!actual || !expected) throw new Error(`${label}: missing tensor (actual ${!!actual}, expected ${!!expected})`);
  expect([...actual.shape], `${label} shape`).toEqual([...expected.shape]);
  let worst = -1, worstExcess = 0;
  for (let i = 0; i < expected.data.length; i++) {
    const a = actual.data[i], b = expected.data[i];
    if (Number.isNaN(a) && Number.isNaN(b)) continue;
    if (a === b) continue; // also equal infinities
    const excess = Number.isNaN(a) || Number.isNaN(b) || !Number.isFinite(a) || !Number.isFinite(b)
      ? Infinity
      : Math.abs(a - b) - (ABS_TOL + REL_TOL * Math.abs(b));
    if (excess > worstExcess) { worstExcess = excess; worst = i; }
  }
  if (worst >= 0) {
    throw new Error(`${label}: shape ${formatShape(expected.shape)}, worst at flat index ${worst}: got ${actual.data[worst]}, expected ${expected.data[worst]} (tolerance ${ABS_TOL} + ${REL_TOL}·|expected|)`);
  }
}

/** mulberry32: a small seeded PRNG, so that failures reproduce (the one seeded sampling uses). */
export const rng = seededRandom;

/** A tensor of uniform values in [-scale, scale). */
export function random(shape: number[], seed: number, scale = 1): Tensor {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(Array.from({ length: n }, () => (2 * r() - 1) * scale), shape);
}

/** Rows of a 2-D view as nested arrays (for readable golden comparisons). */
export function rows(t: Tensor, cols = t.shape[t.shape.length - 1]): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < t.data.length; i += cols) out.push(Array.from(t.data.subarray(i, i + cols)));
  return out;
}

/** Random multi-head params in PyTorch's layout (inProjWeight [3E, E], biases), scaled to keep scores moderate. */
export function multiHeadParams(E: number, H: number, seed: number, extra: Partial<MultiHeadParams> = {}): MultiHeadParams {
  const s = 1 / Math.sqrt(E);
  return {
    numHeads: H, inProjWeight: random([3 * E, E], seed, s), inProjBias: random([3 * E], seed + 1, 0.1),
    outProjWeight: random([E, E], seed + 2, s), outProjBias: random([E], seed + 3, 0.1), ...extra,
  };
}

/**
 * A probe of the wasm engine's attention kernels (src/wasm/attentionCall.ts): spread `options` into
 * an attention op's options to run it on `force` (where that kernel can run the call); `ran` lists
 * the kernel of each launch, `last()` the latest (null before any).
 */
export function kernelProbe(force?: AttentionKernel): { options: object; ran: AttentionKernel[]; last: () => AttentionKernel | null } {
  const probe: AttentionProbe = { force, ran: [] };
  return { options: { [ATTENTION_PROBE]: probe }, ran: probe.ran, last: () => probe.ran.at(-1) ?? null };
}

/** `engine`'s (wasm) attention output on the fused kernel, whatever the rows per kv head (checked), as a copy. */
export function fusedAttention(engine: Engine, q: Tensor, k: Tensor, v: Tensor, o?: AttentionOptions): Tensor {
  const probe = kernelProbe('fused');
  const { output } = engine.scaledDotProductAttention(q, k, v, { ...o, ...probe.options });
  expect(probe.ran).toEqual(['fused']);
  return tensor(output.data.slice(), output.shape);
}

/** Float64 RoPE of one row (the formula in src/reference/rotaryEmbedding.ts), for checking both engines. */
export function ropeRow(x: ArrayLike<number>, p: number, dim: number, base: number, interleaved: boolean, tables?: { cos: Tensor; sin: Tensor }): number[] {
  const out = Array.from(x);
  for (let i = 0; i < dim / 2; i++) {
    const [ia, ib] = interleaved ? [2 * i, 2 * i + 1] : [i, i + dim / 2];
    const theta = p * base ** (-2 * i / dim);
    const c = tables ? tables.cos.data[p * (dim / 2) + i] : Math.cos(theta), s = tables ? tables.sin.data[p * (dim / 2) + i] : Math.sin(theta);
    out[ia] = x[ia] * c - x[ib] * s;
    out[ib] = x[ib] * c + x[ia] * s;
  }
  return out;
}

// KV pools: one set-up for every test that runs batchAttention over a pool.

/** What a sequence holds before a call: keys [L, kvHeads, headDim] and values [L, kvHeads, valueDim]. */
export interface Past { keys: Tensor; values: Tensor }

/** Random pasts of `lengths` positions: sequence s's keys from seed `seed + s`, its values from `seed + 100 + s`. */
export function randomPasts(lengths: readonly number[], kvHeads: number, headDim: number, valueDim: number, seed = 100): Past[] {
  return lengths.map((L, s) => ({ keys: random([L, kvHeads, headDim], seed + s), values: random([L, kvHeads, valueDim], seed + 100 + s) }));
}

/**
 * New sequences of `pool`, one per past, holding it: appended at once, or in turns of `turns`
 * positions (each sequence in order, then again), so that the sequences' block tables interleave.
 */
export function fillPool(pool: KVPool, pasts: readonly Past[], turns?: number): KVSequence[] {
  const seqs = pasts.map(() => pool.sequence());
  const longest = Math.max(0, ...pasts.map((p) => p.keys.shape[0]));
  const step = turns ?? Math.max(1, longest);
  const rowsOf = (t: Tensor, at: number, n: number) => {
    const [, H, D] = t.shape;
    return tensor(t.data.slice(at * H * D, (at + n) * H * D), [n, H, D]);
  };
  for (let at = 0; at < longest; at += step) {
    seqs.forEach((seq, s) => {
      const n = Math.min(step, pasts[s].keys.shape[0] - at);
      if (n > 0) seq.append(rowsOf(pasts[s].keys, at, n), rowsOf(pasts[s].values, at, n));
    });
  }
  return seqs;
}

/** The blocks `pasts` and then `queryLens` new positions take in pools of `blockSize` (at least 1: a pool of 0 blocks is refused). */
export function blocksFor(pasts: readonly Past[], queryLens: ArrayLike<number>, blockSize: number): number {
  return Math.max(1, pasts.reduce((n, p, s) => n + Math.ceil((p.keys.shape[0] + queryLens[s]) / blockSize), 0));
}

/**
 * One batchAttention call on `engine` over a fresh KV pool (`blocks` by default what the call takes)
 * whose sequences hold `pasts` (fillPool); the pool is disposed afterwards and the output returned as a copy.
 */
export function poolAttention(
  engine: Engine, pool: Omit<KVPoolOptions, 'blocks'> & { blocks?: number }, pasts: readonly Past[],
  q: Tensor, k: Tensor, v: Tensor, options: Omit<BatchAttentionOptions, 'sequences'>,
): Tensor {
  const blocks = pool.blocks ?? blocksFor(pasts, options.queryLens, pool.blockSize ?? 16);
  const kv = engine.createKVPool({ ...pool, blocks });
  try {
    const { output } = engine.batchAttention(q, k, v, { ...options, sequences: fillPool(kv, pasts) });
    return tensor(output.data.slice(), output.shape);
  } finally {
    kv.dispose();
  }
}

/** The invariants of src/core/kvPool.ts over the pool's internals, with `live` its live sequences. */
export function expectPoolInvariants(pool: KVPool, live: readonly KVSequence[]): void {
  const p = pool as PagedPool;
  const held = new Map<number, number>();
  for (const s of live as PagedSequence[]) {
    expect(s.table.length, 'blocks of a sequence').toBe(Math.ceil(s.length / p.blockSize));
    for (const b of s.table) held.set(b, (held.get(b) ?? 0) + 1);
  }
  for (let b = 0; b < p.blocks; b++) expect(p.refs[b], `refs[${b}]`).toBe(held.get(b) ?? 0);
  expect(p.freeBlocks).toBe(p.blocks - held.size);
}
