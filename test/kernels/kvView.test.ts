// Prompts over a KV pool: a batch row of 16 or more new tokens (a fresh prompt, or one that
// continues its sequence) runs on the attention kernels, which read the pool's blocks through the KV
// view's block table and element type (assembly/inline/kvView.ts), not on the paged kernel. Against
// the reference engine, for float32, binary16 and int8 pools, on 1 and 2 threads, on the fused
// kernel and (float32, forced) on the row kernel: blocks that hold
// whole 16-key panels and blocks that panels straddle, block tables out of order (sequences that
// grew in turns, forks sharing blocks), past lengths at the panel and block edges, causal or not,
// windows, softcap, grouped heads, head sizes off the SIMD steps, and stored values that are NaN or
// infinite where the window hides them.
import { describe, expect, it } from 'vitest';
import { type Engine, reference, type Tensor, tensor } from '../../src/index.js';
import { expectClose, fillPool, kernelProbe, poolAttention, random, randomPasts, wasmEngines } from '../support.js';

const [wasm1, wasm2] = await wasmEngines();

interface Case {
  Hq: number; Hkv: number; D: number; Dv: number; blockSize: number; past: number[]; news: number[];
  causal?: boolean; window?: { left?: number; right?: number }; softcap?: number;
  /** Append the pasts in turns of this many positions (so that the block tables interleave). */
  turns?: number;
  /** The last sequence is a fork of the first (their full blocks shared), past ignored for it. */
  fork?: boolean;
  /** Stored values of kv head 0 that are NaN or infinite at the first positions. */
  specials?: boolean;
  /** ALiBi slopes and sink logits per query head (scaled by these), as GPT-OSS and ALiBi models use. */
  alibi?: number; sinks?: number;
}

type Dtype = 'float32' | 'float16' | 'int8';

function run(engine: Engine, c: Case, dtype: Dtype, probe?: ReturnType<typeof kernelProbe>): Tensor {
  const blocks = c.past.reduce((n, L, s) => n + Math.ceil((L + c.news[s]) / c.blockSize) + 1, 0);
  const pool = engine.createKVPool({ kvHeads: c.Hkv, headDim: c.D, valueDim: c.Dv, blocks, blockSize: c.blockSize, dtype });
  const pasts = randomPasts(c.fork ? c.past.slice(0, -1) : c.past, c.Hkv, c.D, c.Dv);
  if (c.specials) pasts.forEach(({ values }, s) => { for (let i = 0; i < Math.min(3, c.past[s]); i++) values.data[i * c.Hkv * c.Dv + i] = [NaN, Infinity, -Infinity][i]; });
  const seqs = fillPool(pool, pasts, c.turns);
  if (c.fork) seqs.push(seqs[0].fork());
  const T = c.news.reduce((a, b) => a + b, 0);
  const { output } = engine.batchAttention(random([T, c.Hq, c.D], 1), random([T, c.Hkv, c.D], 2), random([T, c.Hkv, c.Dv], 3), {
    sequences: seqs, queryLens: c.news, causal: c.causal ?? true, window: c.window, softcap: c.softcap,
    alibiSlopes: c.alibi ? random([c.Hq], 4, c.alibi) : undefined, sinks: c.sinks ? random([c.Hq], 5, c.sinks) : undefined,
    ...probe?.options,
  });
  pool.dispose();
  return tensor(output.data.slice(), output.shape);
}

const cases: [string, Case][] = [
  ['a fresh prompt, blocks of 16 (one panel a block)', { Hq: 4, Hkv: 2, D: 64, Dv: 64, blockSize: 16, past: [0], news: [40] }],
  ['prompts continuing their sequences, pasts at the panel edges', { Hq: 4, Hkv: 2, D: 64, Dv: 64, blockSize: 16, past: [15, 16, 17], news: [16, 17, 33] }],
  ['blocks of 5 (panels straddle blocks), D 17, Dv 33', { Hq: 4, Hkv: 2, D: 17, Dv: 33, blockSize: 5, past: [23, 1], news: [19, 16] }],
  ['blocks of 1', { Hq: 2, Hkv: 1, D: 8, Dv: 8, blockSize: 1, past: [9], news: [18] }],
  ['blocks of 24 and 32, tables interleaved (sequences grown in turns)', { Hq: 6, Hkv: 2, D: 32, Dv: 16, blockSize: 24, past: [70, 50], news: [20, 16], turns: 7 }],
  ['blocks of 7 in turns, GQA 7:1, D 9, Dv 65', { Hq: 7, Hkv: 1, D: 9, Dv: 65, blockSize: 7, past: [40, 12], news: [16, 21], turns: 3 }],
  ['a fork sharing its blocks, both continuing', { Hq: 4, Hkv: 2, D: 16, Dv: 16, blockSize: 4, past: [22, 0], news: [17, 18], fork: true }],
  ['not causal, with a window and softcap', { Hq: 4, Hkv: 2, D: 16, Dv: 16, blockSize: 6, past: [50], news: [20], causal: false, window: { left: 13, right: 2 }, softcap: 5 }],
  ['a sliding window hiding NaN and infinite stored values', { Hq: 2, Hkv: 1, D: 8, Dv: 8, blockSize: 4, past: [30], news: [16], window: { left: 8 }, specials: true }],
  ['NaN and infinite stored values in view (rows that see them)', { Hq: 2, Hkv: 1, D: 8, Dv: 8, blockSize: 4, past: [30], news: [16], specials: true }],
  ['sinks (GPT-OSS), with a window', { Hq: 4, Hkv: 2, D: 16, Dv: 16, blockSize: 8, past: [30, 0], news: [17, 20], window: { left: 11 }, sinks: 2 }],
  ['sinks far above every score (weights near 0)', { Hq: 2, Hkv: 1, D: 8, Dv: 8, blockSize: 4, past: [9], news: [16], sinks: 40 }],
  ['ALiBi slopes after softcap, not causal', { Hq: 4, Hkv: 2, D: 16, Dv: 16, blockSize: 5, past: [25], news: [18], causal: false, softcap: 3, alibi: 0.5 }],
  ['ALiBi and sinks, grouped heads 7:1', { Hq: 7, Hkv: 1, D: 9, Dv: 17, blockSize: 16, past: [40], news: [33], alibi: 0.2, sinks: 1 }],
  ['a prompt and decode rows in one batch', { Hq: 4, Hkv: 2, D: 16, Dv: 16, blockSize: 8, past: [5, 30, 0], news: [1, 24, 1], turns: 4 }],
];

describe.each(['float32', 'float16', 'int8'] as const)('prompts over a %s pool, through the KV view', (dtype) => {
  it.each(cases)('%s: the fused kernel on 1 and 2 threads (and the row kernel where it applies) equal the reference', (name, c) => {
    const want = run(reference, c, dtype);
    const kernels = (ran: string[]) => [...new Set(ran)].sort();
    // sequences of fewer than 16 new rows are decode rows, for the paged kernel
    const unforced = c.news.some((n) => n < 16) ? ['fused', 'paged'] : ['fused'];
    // only the fused and paged kernels widen narrow views and take ALiBi and sinks: asked for the row
    // kernel, those calls still get them; the others all run on it, decode rows too
    const asked = kernelProbe('row'), free = kernelProbe();
    expectClose(run(wasm1, c, dtype, asked), want, `${name}, row kernel asked for`);
    expect(kernels(asked.ran)).toEqual(dtype === 'float32' && !c.alibi && !c.sinks ? ['row'] : unforced);
    expectClose(run(wasm1, c, dtype, free), want, `${name}, 1 thread`);
    expect(kernels(free.ran)).toEqual(unforced);
    expectClose(run(wasm2, c, dtype), want, `${name}, 2 threads`);
  });

  it('2 threads give the same bits as 1 (prompts long enough to be split)', () => {
    const c: Case = { Hq: 8, Hkv: 2, D: 64, Dv: 64, blockSize: 16, past: [300, 77], news: [64, 40], turns: 16 };
    const one = run(wasm1, c, dtype), two = run(wasm2, c, dtype);
    expect(Array.from(two.data)).toEqual(Array.from(one.data));
    expectClose(one, run(reference, c, dtype));
  });
});

describe('sinks that are not finite, on the fused kernel and the paged one', () => {
  it('give what the reference gives: NaN rows for NaN and +Infinity, no sink for -Infinity', () => {
    const Hq = 4, Hkv = 1, D = 8, sinks = tensor(Float32Array.from([NaN, Infinity, -Infinity, 0.5]), [Hq]);
    for (const n of [16, 2]) { // 16 new rows: the fused kernel; 2: the paged one
      const outs = [wasm1, reference].map((engine) => poolAttention(engine, { kvHeads: Hkv, headDim: D, blocks: 12, blockSize: 4 }, [{ keys: random([9, Hkv, D], 20), values: random([9, Hkv, D], 21) }],
        random([n, Hq, D], 22), random([n, Hkv, D], 23), random([n, Hkv, D], 24), { queryLens: [n], sinks }));
      expectClose(outs[0], outs[1], `${n} rows`);
      for (let t = 0; t < n; t++) for (let h = 0; h < Hq; h++) {
        const x = outs[0].data[(t * Hq + h) * D];
        expect(h < 2 ? Number.isNaN(x) : Number.isFinite(x), `${n} rows: row ${t} head ${h}: ${x}`).toBe(true);
      }
    }
  });
});

describe('a prompt whose fused call would take over 64 MiB of scratch', () => {
  it('goes to the paged kernel (int8, D 4096: 32 KiB a position), and agrees either way', () => {
    for (const [past, kernel] of [[1950, 'fused'], [2100, 'paged']] as const) {
      const c: Case = { Hq: 1, Hkv: 1, D: 4096, Dv: 4096, blockSize: 64, past: [past], news: [16] };
      const probe = kernelProbe();
      const got = run(wasm1, c, 'int8', probe);
      expect(probe.ran, `past ${past}`).toEqual([kernel]);
      expectClose(got, run(reference, c, 'int8'), `past ${past}`);
    }
  });
});

describe('a prompt over a float32 pool', () => {
  it('gives every row the output it gets from decoding the same tokens one at a time', () => {
    // the fused kernel over the pool against the paged kernel over the same positions
    const Hq = 4, Hkv = 2, D = 16, n = 20, past = 13;
    const pool = wasm1.createKVPool({ kvHeads: Hkv, headDim: D, blocks: 24, blockSize: 3 });
    const a = pool.sequence(), b = pool.sequence();
    const pk = random([past, Hkv, D], 7), pv = random([past, Hkv, D], 8);
    a.append(pk, pv); b.append(pk, pv);
    const q = random([n, Hq, D], 9), k = random([n, Hkv, D], 10), v = random([n, Hkv, D], 11);
    const once = wasm1.batchAttention(q, k, v, { sequences: [a], queryLens: [n] }).output;
    const slice = (t: Tensor, i: number) => tensor(t.data.slice((i * t.data.length) / n, ((i + 1) * t.data.length) / n), [1, ...t.shape.slice(1)]);
    for (let i = 0; i < n; i++) {
      const step = wasm1.batchAttention(slice(q, i), slice(k, i), slice(v, i), { sequences: [b], queryLens: [1] }).output;
      expectClose(step, slice(once, i), `row ${i}`);
    }
    pool.dispose();
  });
});
