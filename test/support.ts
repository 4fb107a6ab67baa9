// Shared test support: tolerances (declared once), the comparison, seeded random data, the engines.
import { expect } from 'vitest';
import { formatShape } from '../src/core/tensor.js';
import { type AttentionOptions, createEngine, type Engine, reference, type Tensor, tensor } from '../src/index.js';
import { seededRandom } from '../src/models/sample.js';
import { ATTENTION_PROBE, type AttentionKernel, type AttentionProbe } from '../src/wasm/attentionCall.js';

/** The README's tolerance (API section): |a - b| <= ABS_TOL + REL_TOL · |b| against a float64 evaluation of the same definition. */
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
