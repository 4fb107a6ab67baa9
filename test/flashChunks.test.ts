// The fused attention kernel's key chunks (assembly/kernels/flashAttention.ts): when a kv head's
// packed keys and values outgrow CHUNK_BYTES, the keys go in chunks and segments of up to 64 pairs
// of query rows go through each chunk, every pair's state kept in scratch. Head sizes of 512 make
// chunks of 128 keys, so that small calls cross several chunks: key lengths off the chunk, more
// pairs than a segment holds, segments that end inside a kv head and at its end, rows whose range
// misses some chunks (causal, windows, valid lengths), masks, softcap, sinks, and NaN and infinite
// values; against the reference on 1 and 2 threads (which split the segments elsewhere: same bits).
import { describe, expect, it } from 'vitest';
import { type AttentionOptions, reference } from '../src/index.js';
import { expectClose, fusedAttention, poolAttention, random, wasmEngines } from './support.js';

const [wasm1, wasm2] = await wasmEngines();

interface Case { B?: number; Hq: number; Hkv: number; Lq: number; Lk: number; E?: number; Ev?: number; options?: AttentionOptions; specials?: boolean }

const cases: [string, Case][] = [
  ['keys off the chunk (300 = 2 x 128 + 44), an odd query count', { Hq: 2, Hkv: 1, Lq: 37, Lk: 300 }],
  ['more pairs than a segment (140 rows x 2 heads per kv head)', { Hq: 2, Hkv: 1, Lq: 140, Lk: 260 }],
  ['two batches, grouped heads, causal bottom-right', { B: 2, Hq: 4, Hkv: 2, Lq: 40, Lk: 290, options: { causal: 'bottom-right' } }],
  ['causal top-left with a past (rows end in different chunks)', { Hq: 2, Hkv: 2, Lq: 50, Lk: 400, options: { causal: true } }],
  ['a window that misses whole chunks, value size apart', { Hq: 2, Hkv: 1, Lq: 30, Lk: 420, Ev: 100, options: { causal: 'bottom-right', window: { left: 70, right: 0 } } }],
  ['valid lengths per batch, one ending inside the first chunk', { B: 2, Hq: 2, Hkv: 1, Lq: 20, Lk: 300, options: { validLens: [100, 290] } }],
  ['an additive mask and softcap', { Hq: 2, Hkv: 1, Lq: 18, Lk: 270, options: { softcap: 4 } }],
  ['NaN and infinite values (some rows see them)', { Hq: 2, Hkv: 1, Lq: 24, Lk: 280, options: { causal: 'bottom-right', window: { left: 100 } }, specials: true }],
];

function inputs(c: Case, seed: number) {
  const B = c.B ?? 1, E = c.E ?? 512, Ev = c.Ev ?? E;
  const q = random([B, c.Hq, c.Lq, E], seed, 0.2), k = random([B, c.Hkv, c.Lk, E], seed + 1, 0.2), v = random([B, c.Hkv, c.Lk, Ev], seed + 2);
  if (c.specials) [[5, NaN], [150, Infinity], [260, -Infinity]].forEach(([j, x]) => { v.data[j * Ev + 3] = x; });
  const options: AttentionOptions = { ...c.options };
  if (c.options?.softcap) options.mask = random([c.Lq, c.Lk], seed + 3, 2); // float32: additive
  return { q, k, v, options };
}

describe('fused attention over chunks of keys', () => {
  it.each(cases)('%s: equals the reference on 1 and 2 threads, with the same bits', (name, c) => {
    const { q, k, v, options } = inputs(c, 10);
    const want = reference.scaledDotProductAttention(q, k, v, options).output;
    const one = fusedAttention(wasm1, q, k, v, options), two = fusedAttention(wasm2, q, k, v, options);
    expectClose(one, want, `${name}, 1 thread`);
    expect(Array.from(two.data), `${name}, 2 threads`).toEqual(Array.from(one.data));
  });

  it('a prompt over an int8 pool with a long past, sinks included, goes through chunks too', () => {
    const Hq = 4, Hkv = 2, D = 512, past = 230, n = 20;
    const sinks = random([Hq], 30);
    const outs = [wasm1, wasm2, reference].map((engine) => poolAttention(engine, { kvHeads: Hkv, headDim: D, blocks: 20, blockSize: 16, dtype: 'int8' },
      [{ keys: random([past, Hkv, D], 31, 0.2), values: random([past, Hkv, D], 32) }],
      random([n, Hq, D], 33, 0.2), random([n, Hkv, D], 34, 0.2), random([n, Hkv, D], 35), { queryLens: [n], sinks }));
    expectClose(outs[0], outs[2], '1 thread');
    expect(Array.from(outs[1].data)).toEqual(Array.from(outs[0].data));
  });
});
