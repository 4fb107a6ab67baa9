// additiveAttention (Bahdanau: scores wv · tanh(Wq q + Wk k)) on both engines: d2l's example, scores
// by hand, and the wasm engine against the reference with per-row valid lengths.
import { describe, expect, it } from 'vitest';
import { type Engine, tensor } from '../../src/index.js';
import { engines, expectClose, random, rows } from '../support.js';

const all = await engines();

describe.each(all.map((e) => [e.name, e] as const))('additiveAttention on %s', (_, engine: Engine) => {
  it("reproduces d2l's example: equal keys give the mean of the valid values", () => {
    // d2l 11.3: queries N(0,1) [2, 1, 20], keys ones [2, 10, 2], values arange(40) [2, 10, 4], valid_lens [2, 6]
    const query = random([2, 1, 20], 1), key = tensor(new Array(40).fill(1), [2, 10, 2]);
    const value = tensor([...Array.from({ length: 40 }, (_, i) => i), ...Array.from({ length: 40 }, (_, i) => i)], [2, 10, 4]);
    const params = { Wq: random([8, 20], 2, 0.3), Wk: random([8, 2], 3, 0.3), wv: random([1, 8], 4, 0.3) };
    const r = engine.additiveAttention(query, key, value, params, { validLens: [2, 6], returnWeights: true });
    expectClose(r.output, tensor([2, 3, 4, 5, 10, 11, 12, 13], [2, 1, 4]));
    expect(rows(r.weights!).map((row) => row.filter((w) => w > 0).length)).toEqual([2, 6]);
  });

  it('computes wv · tanh(Wq q + Wk k) scores by hand', () => {
    // h = 1: score_j = tanh(q + k_j), one query 0.5 against keys 0 and 1
    const r = engine.additiveAttention(tensor([0.5], [1, 1, 1]), tensor([0, 1], [1, 2, 1]), tensor([1, 3], [1, 2, 1]),
      { Wq: tensor([1], [1, 1]), Wk: tensor([1], [1, 1]), wv: tensor([2], [1, 1]) }, { returnWeights: true });
    const s0 = 2 * Math.tanh(0.5), s1 = 2 * Math.tanh(1.5), w0 = 1 / (1 + Math.exp(s1 - s0));
    expectClose(r.weights, tensor([w0, 1 - w0], [1, 1, 2]));
    expectClose(r.output, tensor([w0 + 3 * (1 - w0)], [1, 1, 1]));
  });

  it.each([[1, 1, 1, 1], [3, 5, 4, 7], [4, 17, 16, 9], [2, 65, 33, 3]])('Lq=%i Lk=%i h=%i Dv=%i with per-row lengths', (Lq, Lk, h, Dv) => {
    const query = random([2, Lq, 6], Lq), key = random([2, Lk, 5], Lk), value = random([2, Lk, Dv], Dv);
    const params = { Wq: random([h, 6], h), Wk: random([h, 5], h + 1), wv: random([1, h], h + 2) };
    const lens = Array.from({ length: 2 * Lq }, (_, i) => (i * 7) % (Lk + 1));
    const [ref, wasm] = all;
    const want = ref.additiveAttention(query, key, value, params, { validLens: lens, returnWeights: true });
    const got = engine.additiveAttention(query, key, value, params, { validLens: lens, returnWeights: true });
    expectClose(got.output, want.output, 'output');
    expectClose(got.weights, want.weights, 'weights');
    if (engine !== wasm) return;
    // rows of length 0 are all zero
    lens.forEach((len, r) => { if (len === 0) expect(rows(got.output)[r].every((x) => x === 0)).toBe(true); });
  });
});
