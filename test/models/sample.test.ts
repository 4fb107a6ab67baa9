// sample / sampleRow against Hugging Face's order written plainly (every token sorted, as transformers'
// logits processors do: repetition penalty, temperature, top-k, top-p, min-p, then a draw from the
// softmax of what is left, in index order as torch.multinomial draws). The library sorts only as far
// as top-p and min-p read, and not at all without them; the tokens must be the same
// for the same seed: random rows of several shapes (peaked, flat, ties, -Infinity, huge values) and
// random options, and a vocabulary of Qwen2.5's size.
import { describe, expect, it } from 'vitest';
import { sample } from '../../src/index.js';
import { seededRandom } from '../../src/models/sample.js';

interface Options {
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repetitionPenalty?: number;
  seed: number;
}

/** The definition: one token from a row, every token sorted. */
function definition(row: Float32Array, o: Options, history: number[]): number {
  const V = row.length, random = seededRandom(o.seed);
  const scores = Float64Array.from(row);
  const penalty = o.repetitionPenalty ?? 1;
  if (penalty !== 1) {
    for (const t of new Set(history)) scores[t] = scores[t] < 0 ? scores[t] * penalty : scores[t] / penalty;
  }
  const temperature = o.temperature ?? 0;
  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < V; i++) if (scores[i] > scores[best]) best = i;
    return best;
  }
  for (let i = 0; i < V; i++) scores[i] /= temperature;
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
  const softmax = (kept: number): number[] => {
    const e = order.slice(0, kept).map((i) => Math.exp(scores[i] - scores[order[0]]));
    const sum = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / sum);
  };
  let kept = V;
  if (o.topK && o.topK < V) {
    const kth = scores[order[o.topK - 1]];
    while (kept > 1 && scores[order[kept - 1]] < kth) kept--;
  }
  if ((o.topP ?? 1) < 1) {
    const p = softmax(kept);
    let sum = 0, n = 0;
    while (n < kept) {
      sum += p[n++];
      if (sum >= o.topP!) break;
    }
    kept = Math.max(1, n);
  }
  if (o.minP) {
    const p = softmax(kept);
    while (kept > 1 && p[kept - 1] < o.minP * p[0]) kept--;
  }
  // the draw over the kept tokens in index order: a uniform number times their weights' sum, less each weight in turn
  const keptIds = order.slice(0, kept).sort((a, b) => a - b);
  const weight = (i: number) => Math.exp(scores[i] - scores[order[0]]);
  const z = keptIds.reduce((sum, i) => sum + weight(i), 0);
  let u = random() * z, drawable = -1;
  for (const i of keptIds) {
    if (weight(i) > 0) drawable = i;
    u -= weight(i);
    if (u < 0) return i;
  }
  return drawable >= 0 ? drawable : order[kept - 1];
}

/** A row of V logits of the given kind. */
function row(kind: number, V: number, r: () => number): Float32Array {
  const gauss = () => Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
  const out = new Float32Array(V);
  for (let i = 0; i < V; i++) {
    out[i] = kind === 0 ? 3 * gauss() // peaked, as a model's
      : kind === 1 ? (r() - 0.5) * 4 // flat
      : kind === 2 ? Math.round(r() * 4) // many ties
      : kind === 3 ? (r() < 0.3 ? Number.NEGATIVE_INFINITY : 2 * gauss()) // masked tokens
      : gauss() * 1e30; // huge
  }
  return out;
}

describe('sample', () => {
  it('draws the tokens of Hugging Face\'s order written plainly, for the same seed', () => {
    const r = seededRandom(12345);
    let differ = 0, cases = 0;
    for (let c = 0; c < 400; c++) {
      const V = [1, 2, 7, 64, 1000, 5000][c % 6], kind = c % 5;
      const logits = row(kind, V, r);
      const pick = (xs: number[]) => xs[Math.floor(r() * xs.length)];
      const o: Options = {
        temperature: pick([0, 0.3, 0.7, 1, 1.5]),
        topK: pick([0, 0, 1, 5, 40, V]),
        topP: pick([1, 1, 0.5, 0.9, 0.99]),
        minP: pick([0, 0, 0.01, 0.05, 0.3]),
        repetitionPenalty: pick([1, 1, 1.1, 1.3]),
        seed: c,
      };
      const history = Array.from({ length: Math.floor(r() * 8) }, () => Math.floor(r() * V));
      const got = sample({ data: logits, shape: [1, V] }, { ...o, history: [history] })[0];
      const want = definition(logits, o, history);
      cases++;
      if (got !== want) differ++;
      expect(got, `case ${c}: V ${V}, kind ${kind}, ${JSON.stringify(o)}`).toBe(want);
    }
    expect([cases, differ]).toEqual([400, 0]);
  });

  it('a vocabulary of 151,936 (Qwen2.5\'s): the same tokens, every option', () => {
    const r = seededRandom(99);
    for (const [kind, o] of [
      [0, { temperature: 1, seed: 1 }], [0, { temperature: 0.7, topP: 0.9, seed: 2 }], [0, { temperature: 0.7, topK: 40, seed: 3 }],
      [0, { temperature: 1, minP: 0.05, seed: 4 }], [1, { temperature: 1, minP: 0.05, seed: 5 }], [2, { temperature: 0.8, topK: 50, topP: 0.95, seed: 6 }],
      [3, { temperature: 1, repetitionPenalty: 1.2, seed: 7 }],
    ] as [number, Options][]) {
      const logits = row(kind, 151936, r);
      const history = [5, 77, 151935];
      expect(sample({ data: logits, shape: [1, 151936] }, { ...o, history: [history] })[0], JSON.stringify(o)).toBe(definition(logits, o, history));
    }
  });
});
