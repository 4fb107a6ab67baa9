// Fuzzing every op and serving object with sizes and option values at and beyond the edges (0, -0,
// ±2^31, 2^32, 1e±39, NaN, Infinity, wrong types): each call either throws a clean TypeError or
// RangeError, the same class as the reference engine, or returns what the reference returns; the
// engine is healthy afterwards (canary cache and engine tensor unchanged, a matmul right).
// Bounded: FUZZ_RUNS calls per engine (default 300), and a time limit.
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine, reference, type Tensor } from '../src/index.js';
import { expectClose, random } from './support.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const SEED = Number(process.env.FC_SEED ?? 20261201);

const engines: [string, Engine][] = [['wasm, 1 thread', await createEngine()], ['wasm, 2 threads', await createEngine({ threads: 2 })]];
afterAll(() => engines.forEach(([, e]) => e.dispose()));

const EDGE_NUMBERS = [0, -0, 1, 2, 0.5, 2 ** 31, 2 ** 31 - 1, 2 ** 32, -(2 ** 31), 1e39, 1e-39, 1e-46, NaN, Infinity, -Infinity, 2 ** 53];
const size = fc.oneof({ weight: 10, arbitrary: fc.integer({ min: 0, max: 5 }) }, { weight: 1, arbitrary: fc.constantFrom(-1, 1.5, 2 ** 31, 2 ** 32, 1e200, NaN, -0, 2 ** 53) });
const shape = (rank: number) => fc.array(size, { minLength: rank, maxLength: rank });
const value = fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 4, arbitrary: fc.constantFrom(...EDGE_NUMBERS) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>('x', null, true, [], {}) });
const seed = fc.integer({ min: 1, max: 1e6 });

/** A tensor of `dims` when they make a small valid shape; else a look-alike whose data cannot fit. */
function make(dims: number[], s: number): Tensor {
  const ok = dims.every((d) => Number.isSafeInteger(d) && d >= 0) && dims.reduce((a, b) => a * b, 1) <= 4096;
  return ok ? random(dims, s) : { data: new Float32Array(1), shape: dims };
}

type Case = { op: string; run: (e: Engine) => unknown };
const cases: fc.Arbitrary<Case> = fc.oneof(
  fc.record({ a: shape(2), b: shape(2), t: value, s: seed }).map(({ a, b, t, s }) => ({ op: 'matmul', run: (e: Engine) => e.matmul(make(a, s), make(b, s + 1), { transposeB: t as boolean }) })),
  fc.record({ x: shape(2), s: seed }).map(({ x, s }) => ({ op: 'softmax', run: (e: Engine) => e.softmax(make(x, s)) })),
  fc.record({ x: shape(3), lens: fc.array(value, { maxLength: 6 }), s: seed })
    .map(({ x, lens, s }) => ({ op: 'maskedSoftmax', run: (e: Engine) => e.maskedSoftmax(make(x, s), lens as number[]) })),
  fc.record({ n: size, m: size, d: size, w: value, rw: value, s: seed }).map(({ n, m, d, w, rw, s }) => ({
    op: 'kernelRegression', run: (e: Engine) => e.kernelRegression(make([n, d], s), make([m, d], s + 1), make([m], s + 2), { w: w as number, returnWeights: rw as boolean }),
  })),
  fc.record({ n: size, m: size, d: size, t: size, w: value, loo: value, red: fc.constantFrom<unknown>(undefined, 'mean', 'sum', 'none', 1), s: seed })
    .map(({ n, m, d, t, w, loo, red, s }) => ({
      op: 'kernelRegressionLoss',
      run: (e: Engine) => e.kernelRegressionLoss(make([n, d], s), make([m, d], s + 1), make([m], s + 2), make([t], s + 3),
        { w: w as number, leaveOneOut: loo as boolean, reduction: red as 'mean' }).output,
    })),
  fc.record({ q: shape(4), lk: size, scale: value, softcap: value, left: value, right: value, causal: fc.constantFrom<unknown>(undefined, true, 'bottom-right', 'x', 1), lens: value, rw: value, s: seed })
    .map(({ q, lk, scale, softcap, left, right, causal, lens, rw, s }) => ({
      op: 'scaledDotProductAttention',
      run: (e: Engine) => e.scaledDotProductAttention(make(q, s), make([q[0], q[1], lk, q[3]], s + 1), make([q[0], q[1], lk, 3], s + 2), {
        scale: scale as number, softcap: softcap as number, window: { left: left as number, right: right as number },
        causal: causal as boolean, validLens: lens === undefined ? undefined : [lens as number], returnWeights: rw as boolean,
      }),
    })),
  fc.record({ maxLen: value, dim: value }).map(({ maxLen, dim }) => ({ op: 'positionalEncoding', run: (e: Engine) => e.positionalEncoding(maxLen as number, dim as number) })),
  fc.record({ dims: fc.array(size, { maxLength: 4 }) }).map(({ dims }) => ({ op: 'engine.tensor', run: (e: Engine) => e.tensor(dims) })),
  fc.record({ batch: value, kvHeads: value, headDim: value, capacity: value })
    .map((o) => ({ op: 'createKVCache', run: (e: Engine) => e.createKVCache(o as never) })),
);

/** What a call gave: its result, or the class of its error (anything but TypeError/RangeError fails). */
function outcome(c: Case, e: Engine): { error: string } | { value: unknown } {
  try {
    return { value: c.run(e) };
  } catch (error) {
    const kind = error instanceof TypeError ? 'TypeError' : error instanceof RangeError ? 'RangeError' : `unexpected ${String(error)}`;
    return { error: kind };
  }
}

/** Tensors of a result (output, weights, or the tensor itself), to compare. */
function tensorsOf(v: unknown): Tensor[] {
  if (v === null || typeof v !== 'object') return [];
  if ('data' in v && 'shape' in v) return [v as Tensor];
  const r = v as { output?: Tensor; weights?: Tensor };
  return [r.output, r.weights].filter((t): t is Tensor => t !== undefined);
}

function release(v: unknown): void {
  const d = (v as { dispose?: () => void } | null)?.dispose;
  if (typeof d === 'function') d.call(v);
}

describe.each(engines)('fuzzing %s against the reference', (_, engine) => {
  it('every call throws a TypeError/RangeError like the reference, or returns its result; the engine stays healthy', () => {
    const cache = engine.createKVCache({ batch: 1, kvHeads: 1, headDim: 4, capacity: 4 });
    cache.append(random([1, 1, 2, 4], 1), random([1, 1, 2, 4], 2));
    const before = cache.read();
    const canary = engine.tensor([8]);
    canary.data.set(random([8], 3).data);
    fc.assert(fc.property(cases, (c) => {
      const want = outcome(c, reference);
      const got = outcome(c, engine);
      try {
        if ('error' in want) {
          expect('error' in got ? got.error : 'a result', c.op).toBe(want.error);
        } else {
          expect('value' in got, `${c.op}: ${'error' in got ? got.error : ''}`).toBe(true);
          if ('value' in got) {
            const [w, g] = [tensorsOf(want.value), tensorsOf(got.value)];
            expect(g.length, c.op).toBe(w.length);
            w.forEach((t, i) => expectClose(g[i], t, c.op));
          }
        }
      } finally {
        if ('value' in want) release(want.value);
        if ('value' in got) release(got.value);
      }
    }), { numRuns: RUNS, seed: SEED, interruptAfterTimeLimit: 60_000 });
    expectClose(cache.read().keys, before.keys, 'canary cache');
    expectClose(canary, random([8], 3), 'canary tensor');
    const a = random([9, 7], 4), b = random([7, 5], 5);
    expectClose(engine.matmul(a, b), reference.matmul(a, b), 'a matmul after fuzzing');
    cache.dispose();
    canary.dispose();
  }, 120_000);
});
