// Feeding the same tokens in different ways gives the same logits: token by token or in one prefill,
// forks and truncations, a batch of sequences of different lengths or each alone; generate's unfed
// last token; blocks given back; refused forwards change nothing. Both engines, 1 and 2 threads.
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, type Decoder, type DecoderSequence, type Engine, loadDecoder, reference, type Tensor, tensor } from '../../src/index.js';

const FIXTURES = new URL('../fixtures/decoders/', import.meta.url);
const folder = (name: string) => new URL(`${name}/`, FIXTURES).pathname;

/** Feeding the same tokens another way may add in another order: float32 rounding, not 1e-3. */
const TOL = 2e-4;
function expectNear(a: Tensor, b: Tensor, label: string): void {
  expect(a.shape, `${label} shape`).toEqual(b.shape);
  const scale = Math.max(1, ...Array.from(b.data, Math.abs));
  let worst = 0;
  for (let i = 0; i < a.data.length; i++) worst = Math.max(worst, Math.abs(a.data[i] - b.data[i]));
  expect(worst, `${label}: largest difference`).toBeLessThan(TOL * scale);
}

const engines: [string, () => Promise<Engine>][] = [
  ['reference', async () => reference],
  ['wasm', () => createEngine()],
  ['wasm, 2 threads', () => createEngine({ threads: 2 })],
];
const made: Engine[] = [];
afterAll(() => made.forEach((e) => e.dispose()));

const prompt = [3, 17, 40, 5, 28, 12, 41, 9, 33, 30, 2, 19, 44, 7, 26, 20, 11, 14, 38, 10];
const rowOf = (t: Tensor, r: number) => tensor(t.data.slice(r * t.shape[1], (r + 1) * t.shape[1]), [1, t.shape[1]]);

async function collect(gen: AsyncGenerator<number, void, undefined>): Promise<number[]> {
  const out: number[] = [];
  for await (const t of gen) out.push(t);
  return out;
}

// gemma2: sliding windows on alternate layers, softcaps, post-norms; qwen3: q/k norms; phi3: fused projections
describe.each(engines)('decoder sequences on %s', (_label, make) => {
  const decoders = new Map<string, Decoder>();
  const load = async (name: string): Promise<Decoder> => {
    if (!decoders.has(name)) {
      const engine = await make();
      if (engine.name === 'wasm') made.push(engine);
      decoders.set(name, await loadDecoder(folder(name), { engine, maxTokens: 64, kv: { blockSize: 4 } }));
    }
    return decoders.get(name)!;
  };
  const fresh = (d: Decoder, tokens: number[]): { seq: DecoderSequence; logits: Tensor } => {
    const seq = d.sequence();
    return { seq, logits: d.forward(tokens, { sequences: [seq], queryLens: [tokens.length], logits: 'all' }) };
  };

  /** The logits of every position of `tokens` fed to a new sequence, which is then freed. */
  const scratch = (d: Decoder, tokens: number[]): Tensor => {
    const { seq, logits } = fresh(d, tokens);
    seq.free();
    return logits;
  };

  it.each(['gemma2', 'qwen3', 'phi3'])('%s: token by token equals one prefill; last equals all', async (name) => {
    const d = await load(name);
    const whole = fresh(d, prompt);
    const seq = d.sequence();
    prompt.forEach((t, i) => {
      const l = d.forward([t], { sequences: [seq], queryLens: [1] });
      expectNear(l, rowOf(whole.logits, i), `${name} token ${i}`);
    });
    const last = d.forward([1, 2, 3], { sequences: [whole.seq], queryLens: [3], logits: 'last' });
    const all = d.forward([1, 2, 3], { sequences: [seq], queryLens: [3], logits: 'all' });
    expectNear(last, rowOf(all, 2), `${name} last`);
    expect(Array.from(seq.tokens)).toEqual([...prompt, 1, 2, 3]);
    whole.seq.free();
    seq.free();
  });

  it.each(['gemma2', 'qwen3'])('%s: a batch of sequences of different lengths equals each alone', async (name) => {
    const d = await load(name);
    const a = prompt.slice(0, 7), b = prompt.slice(3, 16), c = [5];
    const alone = [a, b, c].map((t) => fresh(d, t));
    const seqs = [d.sequence(), d.sequence(), d.sequence()];
    const batch = d.forward([...a, ...b, ...c], { sequences: seqs, queryLens: [a.length, b.length, c.length], logits: 'all' });
    let at = 0;
    [a, b, c].forEach((t, s) => {
      t.forEach((_, i) => expectNear(rowOf(batch, at + i), rowOf(alone[s].logits, i), `${name} sequence ${s} row ${i}`));
      at += t.length;
    });
    // then a decode step of all three at once, against each alone
    const step = d.forward([8, 9, 10], { sequences: seqs, queryLens: [1, 1, 1] });
    alone.forEach(({ seq }, s) => expectNear(rowOf(step, s), d.forward([8 + s], { sequences: [seq], queryLens: [1] }), `${name} step ${s}`));
    [...seqs, ...alone.map((x) => x.seq)].forEach((s) => s.free());
  });

  it('fork and truncate equal feeding from scratch, and give their blocks back', async () => {
    const d = await load('gemma2');
    const free = d.freeBlocks;
    const base = fresh(d, prompt.slice(0, 10));
    const fork = base.seq.fork();
    expect(fork.length).toBe(10);
    const x = d.forward([4, 5], { sequences: [base.seq], queryLens: [2] });
    const y = d.forward([6, 7], { sequences: [fork], queryLens: [2] });
    expectNear(x, rowOf(scratch(d, [...prompt.slice(0, 10), 4, 5]), 11), 'base');
    expectNear(y, rowOf(scratch(d, [...prompt.slice(0, 10), 6, 7]), 11), 'fork');
    base.seq.truncate(6);
    expect(Array.from(base.seq.tokens)).toEqual(prompt.slice(0, 6));
    const z = d.forward([1], { sequences: [base.seq], queryLens: [1] });
    expectNear(z, rowOf(scratch(d, [...prompt.slice(0, 6), 1]), 6), 'truncated');
    expect(() => base.seq.truncate(8)).toThrow(RangeError);
    base.seq.free();
    fork.free();
    expect(() => fork.length).toThrow(/freed/);
    expect(d.freeBlocks).toBe(free);
  });

  it('generate: continuing a sequence equals one longer generation; the last token stays unfed', async () => {
    const d = await load('qwen3');
    const free = d.freeBlocks;
    const all = await collect(d.generate(prompt.slice(0, 8), { maxNewTokens: 6, stop: [] }));
    expect(d.freeBlocks).toBe(free); // its own sequence went back
    const seq = d.sequence();
    const first = await collect(d.generate(prompt.slice(0, 8), { maxNewTokens: 3, stop: [], sequence: seq }));
    expect(seq.length).toBe(8 + 2); // the third token is kept unfed
    const rest = await collect(d.generate([], { maxNewTokens: 3, stop: [], sequence: seq }));
    expect([...first, ...rest]).toEqual(all);
    // a stop token ends the stream: neither yielded nor fed
    const k = all.findIndex((t, i) => i > 0 && !all.slice(0, i).includes(t));
    expect(k, `a token the greedy run has not yielded before: ${all}`).toBeGreaterThan(0);
    const stopped = await collect(d.generate(prompt.slice(0, 8), { maxNewTokens: 6, stop: [all[k]] }));
    expect(stopped).toEqual(all.slice(0, k));
    // the consumer stopping early gives the blocks back at once
    const gen = d.generate(prompt.slice(0, 8), { maxNewTokens: 6, stop: [] });
    await gen.next();
    expect(d.freeBlocks).toBeLessThan(free - 0);
    await gen.return();
    expect(d.freeBlocks).toBe(free - Math.ceil(seq.length / d.blockSize));
    seq.free();
    expect(d.freeBlocks).toBe(free);
    // an aborted signal ends it quietly
    const controller = new AbortController();
    const got: number[] = [];
    for await (const t of d.generate(prompt.slice(0, 8), { maxNewTokens: 6, stop: [], signal: controller.signal })) {
      got.push(t);
      if (got.length === 2) controller.abort();
    }
    expect(got).toEqual(all.slice(0, 2));
    expect(d.freeBlocks).toBe(free);
    // seeded sampling repeats itself
    const s1 = await collect(d.generate(prompt.slice(0, 8), { maxNewTokens: 6, stop: [], temperature: 1, seed: 7 }));
    const s2 = await collect(d.generate(prompt.slice(0, 8), { maxNewTokens: 6, stop: [], temperature: 1, seed: 7 }));
    expect(s1).toEqual(s2);
  });

  it('a refused forward changes nothing', async () => {
    const d = await load('qwen3');
    const seq = d.sequence(), other = d.sequence();
    d.forward(prompt.slice(0, 5), { sequences: [seq], queryLens: [5] });
    const before = d.freeBlocks;
    const V = d.config.vocabSize;
    expect(() => d.forward([V], { sequences: [seq], queryLens: [1] })).toThrow(RangeError);
    expect(() => d.forward([1.5], { sequences: [seq], queryLens: [1] })).toThrow(RangeError);
    expect(() => d.forward([1, 2], { sequences: [seq], queryLens: [1] })).toThrow(/add up to 1/);
    expect(() => d.forward([1], { sequences: [seq, seq], queryLens: [1, 0] })).toThrow(/twice/);
    expect(() => d.forward([1], { sequences: [seq, other], queryLens: [1, 0] })).toThrow(/queryLens\[1\] is 0/);
    expect(() => d.forward([1], { sequences: [seq], queryLens: [1], out: tensor([0], [1, 1]) })).toThrow(RangeError);
    expect(() => d.forward(Array(64).fill(1), { sequences: [seq], queryLens: [64] })).toThrow(/over the model's|positions/);
    const foreign = await load('gemma2');
    expect(() => d.forward([1], { sequences: [foreign.sequence()], queryLens: [1] })).toThrow(TypeError);
    expect(seq.length).toBe(5);
    expect(d.freeBlocks).toBe(before);
    // and it still works, into an out tensor of the engine's
    const out = d.forward([1], { sequences: [seq], queryLens: [1], logits: 'all' });
    expect(out.shape).toEqual([1, V]);
    seq.free();
    other.free();
  });
});
