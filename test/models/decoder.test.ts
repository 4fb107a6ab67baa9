// Decoders against transformers: every fixture of test/fixtures/decoders (tiny random checkpoints of
// each architecture, made by scripts/fixtures/make-decoders.py with their logits computed by
// transformers in float64) loaded on both engines, 1 and 2 threads: teacher-forced logits of every
// position, greedy continuations, and the ways of feeding the same tokens that must agree.
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, type Decoder, type Engine, loadDecoder, reference, type Tensor } from '../../src/index.js';

const FIXTURES = new URL('../fixtures/decoders/', import.meta.url);
const names = readdirSync(FIXTURES, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();

interface Expected { prompt: number[]; logits: number[][]; greedy: number[]; notes: string }
const expected = (name: string): Expected => JSON.parse(readFileSync(new URL(`${name}/expected.json`, FIXTURES), 'utf8'));
const folder = (name: string) => new URL(`${name}/`, FIXTURES).pathname;

/** The tolerance: within 1e-3 of the row's largest |logit|. */
const LOGIT_TOL = 1e-3;

function expectLogits(actual: Tensor, rows: number[][], label: string): void {
  expect(actual.shape, `${label} shape`).toEqual([rows.length, rows[0].length]);
  rows.forEach((row, r) => {
    const scale = Math.max(...row.map(Math.abs));
    let worst = 0, at = 0;
    row.forEach((x, v) => {
      const d = Math.abs(actual.data[r * row.length + v] - x);
      if (d > worst) { worst = d; at = v; }
    });
    if (worst > LOGIT_TOL * scale) {
      throw new Error(`${label}: position ${r}, token ${at}: got ${actual.data[r * row.length + at]}, transformers ${row[at]} (|diff| ${worst.toExponential(2)} > ${LOGIT_TOL} · ${scale.toFixed(3)})`);
    }
  });
}

const engines: [string, () => Promise<Engine>][] = [
  ['reference', async () => reference],
  ['wasm', () => createEngine()],
  ['wasm, 2 threads', () => createEngine({ threads: 2 })],
];
const made: Engine[] = [];
afterAll(() => made.forEach((e) => e.dispose()));

async function greedy(decoder: Decoder, prompt: number[], n: number): Promise<number[]> {
  const out: number[] = [];
  for await (const t of decoder.generate(prompt, { maxNewTokens: n, stop: [] })) out.push(t);
  return out;
}

describe.each(engines)('decoders against transformers on %s', (_label, make) => {
  it.each(names)('%s: logits of every position, greedy tokens', async (name) => {
    const engine = await make();
    if (engine.name === 'wasm') made.push(engine);
    const e = expected(name);
    const decoder = await loadDecoder(folder(name), { engine, maxTokens: 64 });
    try {
      const seq = decoder.sequence();
      const logits = decoder.forward(e.prompt, { sequences: [seq], queryLens: [e.prompt.length], logits: 'all' });
      expectLogits(logits, e.logits, name);
      expect(Array.from(seq.tokens)).toEqual(e.prompt);
      seq.free();
      expect(await greedy(decoder, e.prompt, e.greedy.length), `${name} greedy`).toEqual(e.greedy);
    } finally {
      decoder.dispose();
    }
  });
});
