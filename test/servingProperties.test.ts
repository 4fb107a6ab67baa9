// batchAttention against the reference engine over random serving histories (fast-check): pools of
// every dtype and block size, sequences grown in turns (tables out of order), forks, truncations and
// frees between calls, then one call whose batch mixes decode rows, short runs and prompts of 16+
// tokens (which go to the fused kernel over the pool's blocks, the rest to the paged kernel), with
// random causal, window, softcap, rotary, ALiBi and sinks. On 1 and 2 threads; the two must give the
// same bits, and every sequence must hold what the reference's holds afterwards.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type BatchAttentionOptions, type Engine, type KVSequence, reference, type Tensor, tensor } from '../src/index.js';
import { expectClose, random, wasmEngines } from './support.js';

const RUNS = Number(process.env.SERVING_RUNS ?? 40);
const SEED = Number(process.env.FC_SEED ?? 20261201);

const [wasm1, wasm2] = await wasmEngines();

interface History {
  dtype: 'float32' | 'float16' | 'int8'; blockSize: number; group: number; Hkv: number; D: number; Dv: number;
  /** Per step: which sequence grows by how many positions (a fork of sequence 0 when `fork`). */
  steps: { seq: number; n: number }[];
  fork: boolean; truncateTo: number | null;
  queryLens: number[];
  options: { causal: boolean; window: { left?: number; right?: number } | undefined; softcap: number | undefined; rotary: boolean; alibi: boolean; sinks: boolean };
}

const history: fc.Arbitrary<History> = fc.record({
  dtype: fc.constantFrom('float32', 'float16', 'int8'),
  blockSize: fc.constantFrom(1, 3, 4, 7, 16, 32),
  group: fc.constantFrom(1, 2, 3, 7),
  Hkv: fc.integer({ min: 1, max: 2 }),
  D: fc.constantFrom(1, 4, 8, 13, 16, 33),
  Dv: fc.constantFrom(1, 5, 8, 16, 20),
  steps: fc.array(fc.record({ seq: fc.integer({ min: 0, max: 2 }), n: fc.integer({ min: 1, max: 40 }) }), { maxLength: 6 }),
  fork: fc.boolean(),
  truncateTo: fc.option(fc.integer({ min: 0, max: 30 })),
  queryLens: fc.array(fc.constantFrom(0, 1, 1, 2, 5, 16, 17, 24), { minLength: 3, maxLength: 3 }),
  options: fc.record({
    causal: fc.boolean(),
    window: fc.option(fc.record({ left: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }), right: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }) }), { nil: undefined }),
    softcap: fc.option(fc.constantFrom(2, 30), { nil: undefined }),
    rotary: fc.boolean(), alibi: fc.boolean(), sinks: fc.boolean(),
  }),
});

/** Replays h on `engine`: the pool, the history, then the call; returns the output and what every sequence holds. */
function replay(engine: Engine, h: History): { output: Tensor; held: Tensor[] } {
  const Hq = h.Hkv * h.group;
  const pool = engine.createKVPool({ kvHeads: h.Hkv, headDim: h.D, valueDim: h.Dv, blocks: 512, blockSize: h.blockSize, dtype: h.dtype });
  const seqs: KVSequence[] = [pool.sequence(), pool.sequence(), pool.sequence()];
  h.steps.forEach(({ seq, n }, i) => seqs[seq].append(random([n, h.Hkv, h.D], 100 + i, 0.5), random([n, h.Hkv, h.Dv], 200 + i)));
  if (h.fork) { seqs[2].free(); seqs[2] = seqs[0].fork(); }
  if (h.truncateTo !== null && h.truncateTo <= seqs[1].length) seqs[1].truncate(h.truncateTo);
  const T = h.queryLens.reduce((a, b) => a + b, 0);
  const o = h.options;
  const options: BatchAttentionOptions = {
    sequences: seqs, queryLens: h.queryLens, causal: o.causal, window: o.window, softcap: o.softcap,
    rotary: o.rotary && h.D % 2 === 0 ? {} : undefined,
    alibiSlopes: o.alibi ? tensor(Float32Array.from(random([Hq], 7, 0.3).data, Math.abs), [Hq]) : undefined,
    sinks: o.sinks ? random([Hq], 8) : undefined,
  };
  const { output } = engine.batchAttention(random([T, Hq, h.D], 1, 0.5), random([T, h.Hkv, h.D], 2, 0.5), random([T, h.Hkv, h.Dv], 3), options);
  const held = seqs.map((s) => s.read().keys);
  const result = { output: tensor(output.data.slice(), output.shape), held: held.map((t) => tensor(t.data.slice(), t.shape)) };
  pool.dispose();
  return result;
}

/**
 * The keys a sequence holds, as the reference holds them: float32 within tolerance; a binary16 or
 * int8 value may sit one step of its format apart, where rotary (float32 here, float64 there) left
 * the two engines' rows on either side of a rounding boundary.
 */
function expectHeld(got: Tensor, want: Tensor, h: History, label: string): void {
  if (h.dtype === 'float32' || !h.options.rotary || h.D % 2 !== 0) { expectClose(got, want, label); return; }
  expect([...got.shape], label).toEqual([...want.shape]);
  for (let r = 0; r < want.data.length / h.D; r++) {
    const row = want.data.subarray(r * h.D, (r + 1) * h.D);
    const step = h.dtype === 'int8' ? Math.max(...Array.from(row, Math.abs)) / 127 : 0;
    for (let c = 0; c < h.D; c++) {
      const a = got.data[r * h.D + c], b = row[c];
      const tolerance = (h.dtype === 'float16' ? 2 ** -10 * Math.abs(b) : 1.01 * step) + 1e-6;
      expect(Math.abs(a - b) <= tolerance, `${label}: row ${r}, element ${c}: ${a} vs ${b}`).toBe(true);
    }
  }
}

describe('batchAttention over random serving histories', () => {
  it(`equals the reference, with the same bits on 2 threads as on 1 (${RUNS} histories)`, () => {
    fc.assert(fc.property(history, (h) => {
      const want = replay(reference, h), one = replay(wasm1, h), two = replay(wasm2, h);
      expectClose(one.output, want.output, 'output, 1 thread');
      expect(Array.from(two.output.data)).toEqual(Array.from(one.output.data));
      one.held.forEach((t, i) => expectHeld(t, want.held[i], h, `sequence ${i} afterwards`));
    }), { numRuns: RUNS, seed: SEED });
  });
});
