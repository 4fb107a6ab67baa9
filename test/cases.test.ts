// The case table (bench/lib/cases.js), which the benchmark times and the peers are checked on, checked
// here on qkv's wasm engine against the reference at each op's declared tolerance, on 1 and 2
// threads: one table of shapes, options and tolerances for tests and benches.
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error: bench/ is plain JavaScript without declarations
import { checkCases, compareToReference, TOLERANCE } from '../bench/lib/cases.js';
import { createEngine, type Engine, reference, type Tensor } from '../src/index.js';

interface Case { op: string; shape: string; tolerance: number; inputs(): unknown; qkv(engine: Engine, inputs: unknown): Tensor; release?(engine: Engine, inputs: unknown): void }
const cases = (checkCases() as Case[]).map((c) => [`${c.op} ${c.shape}`, c] as const);
const engines = [await createEngine(), await createEngine({ threads: 2 })];
afterAll(() => engines.forEach((e) => e.dispose()));

describe('the case table', () => {
  it('declares a tolerance for every op it has', () => {
    for (const [, c] of cases) expect(c.tolerance, c.op).toBe((TOLERANCE as Record<string, number>)[c.op]);
    expect(cases.every(([, c]) => c.tolerance > 0)).toBe(true);
  });
});

describe.each(engines.map((e) => [e.info.threads, e] as const))('the case table on the wasm engine, %i thread(s)', (_, engine) => {
  it.each(cases)('%s agrees with the reference within its tolerance', (label, c) => {
    const inputs = c.inputs();
    const want = c.qkv(reference, inputs), got = c.qkv(engine, inputs);
    // a serving case's pool and layer, made by its first call on each engine
    c.release?.(reference, inputs);
    c.release?.(engine, inputs);
    expect([...got.shape], label).toEqual([...want.shape]);
    const { maxAbsDiff, maxRef, worst } = compareToReference(got.data, want.data);
    expect(maxAbsDiff, `${label}: at ${worst} ${got.data[worst]} vs ${want.data[worst]}, max |ref| ${maxRef}`)
      .toBeLessThanOrEqual(c.tolerance * Math.max(1, maxRef));
  });
});
