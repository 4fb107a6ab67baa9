// Grouped-query decode rows on the paged kernel (src/wasm/decodeAttention.ts): one query row per
// head, several query heads per kv head, over tensors, past ++ new and a KVCache, against the
// reference. The shapes walk the loops' edges: the paged kernel's runs of 256 keys, the score pairs
// of two heads (odd groups leave one), SIMD tails of E and Ev; every option the route takes, and
// the calls it must leave to the other kernels.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type AttentionOptions, createEngine, type Engine, mask, reference, type Tensor } from '../../src/index.js';
import { lastAttentionKernel, withAttentionKernel } from '../../src/wasm/attention.js';
import { expectClose, fillPool, random, rng, wasmEngine } from '../support.js';

const wasm = await wasmEngine();
const wasm2 = await createEngine({ threads: 2 });

/** The call on `engine`, which must have run on the paged kernel. */
function paged(engine: Engine, q: Tensor, k: Tensor, v: Tensor, o?: AttentionOptions): Tensor {
  const { output } = engine.scaledDotProductAttention(q, k, v, o);
  expect(lastAttentionKernel(), 'kernel').toBe('paged');
  return output;
}

/** The call on both wasm engines (the same bits) and the reference (within tolerance). */
function check(q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions | undefined, label: string): void {
  const want = reference.scaledDotProductAttention(q, k, v, o).output;
  const got = paged(wasm, q, k, v, o);
  expectClose(got, want, label);
  expect(Array.from(paged(wasm2, q, k, v, o).data), `${label}: 2 threads`).toEqual(Array.from(got.data));
}

const GROUPS = [2, 3, 4, 7, 8, 16];
const LENGTHS = [1, 2, 5, 63, 64, 65, 129, 255, 256, 257, 513];
const FEATURES: [number, number][] = [[8, 8], [3, 5], [17, 65], [64, 64], [1, 16]];

describe('grouped-query decode on the paged kernel', () => {
  it.each(GROUPS)('%i query heads a kv head, every key length and feature size, 1 and 3 batch rows', (group) => {
    let seed = group * 1000;
    for (const [i, Lk] of LENGTHS.entries()) {
      const [E, Ev] = FEATURES[i % FEATURES.length];
      for (const [B, Hkv] of [[1, 1], [3, 2]]) {
        const q = random([B, Hkv * group, 1, E], seed++), k = random([B, Hkv, Lk, E], seed++), v = random([B, Hkv, Lk, Ev], seed++);
        check(q, k, v, undefined, `group ${group}, B ${B}, Hkv ${Hkv}, Lk ${Lk}, E ${E}, Ev ${Ev}`);
      }
    }
  });

  it('causal both ways, windows, softcap, scale and validLens give the reference results', () => {
    const B = 3, Hkv = 2, Hq = 6, Lk = 150, E = 16;
    const q = random([B, Hq, 1, E], 1, 3), k = random([B, Hkv, Lk, E], 2), v = random([B, Hkv, Lk, E], 3);
    const options: AttentionOptions[] = [
      { causal: true }, { causal: 'bottom-right' }, { causal: 'top-left', window: { left: 0 } },
      { causal: 'bottom-right', window: { left: 70 } }, { window: { left: 3, right: 5 } }, { window: { right: 0 } },
      { softcap: 2 }, { softcap: 0.5, causal: 'bottom-right', window: { left: 64 } }, { scale: 1 }, { scale: 40 },
      { validLens: [150, 0, 65] }, { validLens: [1, 64, 129], causal: 'bottom-right' }, { validLens: [0, 0, 0] },
      { validLens: [100, 2, 150], causal: 'bottom-right', window: { left: 10, right: 3 }, softcap: 3 },
    ];
    for (const o of options) check(q, k, v, o, JSON.stringify(o));
  });

  it('a past given as pastKey/pastValue: its queries sit after it', () => {
    const q = random([2, 8, 1, 32], 4), k = random([2, 2, 1, 32], 5), v = random([2, 2, 1, 24], 6);
    const pastKey = random([2, 2, 90, 32], 7), pastValue = random([2, 2, 90, 24], 8);
    for (const o of [{}, { causal: true }, { causal: 'bottom-right' }, { window: { left: 20 } }, { window: { right: 2 } }] as AttentionOptions[]) {
      const opts = { ...o, pastKey, pastValue };
      const want = reference.scaledDotProductAttention(q, k, v, opts);
      const got = wasm.scaledDotProductAttention(q, k, v, opts);
      expect(lastAttentionKernel()).toBe('paged');
      expectClose(got.output, want.output, JSON.stringify(o));
      expectClose(got.presentKey, want.presentKey, 'presentKey');
    }
  });

  it('decoding over a KVCache token by token equals the reference, on 1 and 2 threads', () => {
    const B = 2, Hkv = 2, Hq = 14, E = 64, steps = 70;
    const prompt = random([B, Hkv, 60, E], 9);
    const caches = [reference, wasm, wasm2].map((e) => {
      const cache = e.createKVCache({ batch: B, kvHeads: Hkv, headDim: E, capacity: 200 });
      e.scaledDotProductAttention(random([B, Hq, 60, E], 10), prompt, prompt, { cache });
      return cache;
    });
    for (let step = 0; step < steps; step++) {
      const q = random([B, Hq, 1, E], 100 + step), k = random([B, Hkv, 1, E], 300 + step), v = random([B, Hkv, 1, E], 500 + step);
      const o: AttentionOptions = step % 3 === 0 ? { window: { left: 50 }, softcap: 4 } : {};
      const want = reference.scaledDotProductAttention(q, k, v, { ...o, cache: caches[0] }).output;
      const one = paged(wasm, q, k, v, { ...o, cache: caches[1] });
      const two = paged(wasm2, q, k, v, { ...o, cache: caches[2] });
      expectClose(one, want, `step ${step}`);
      expect(Array.from(two.data), `step ${step}: 2 threads`).toEqual(Array.from(one.data));
    }
    expect(caches.map((c) => c.length)).toEqual([130, 130, 130]);
  });

  it('a call big enough to split over 2 threads gives the same bits as on 1', () => {
    const q = random([1, 16, 1, 64], 11), k = random([1, 4, 4096, 64], 12), v = random([1, 4, 4096, 64], 13);
    check(q, k, v, undefined, 'Lk 4096, 16 heads over 4');
    check(q, k, v, { causal: 'bottom-right', window: { left: 1000 } }, 'windowed');
  });

  it('NaN and infinite scores and values: where the reference has them, and only there', () => {
    const B = 1, Hkv = 2, Hq = 4, Lk = 70, E = 8;
    const base = () => [random([B, Hq, 1, E], 14), random([B, Hkv, Lk, E], 15), random([B, Hkv, Lk, E], 16)] as const;
    // a NaN value inside the window, one outside it, an infinite key, an infinite and a huge query
    const [q1, k1, v1] = base();
    v1.data[(0 * Lk + 69) * E + 2] = NaN; // kv head 0, key 69
    v1.data[(1 * Lk + 3) * E + 1] = NaN; // kv head 1, key 3: outside a left window of 40
    check(q1, k1, v1, undefined, 'NaN values');
    check(q1, k1, v1, { causal: 'bottom-right', window: { left: 40 } }, 'NaN outside the window');
    const [q2, k2, v2] = base();
    k2.data[(1 * Lk + 10) * E] = Infinity;
    check(q2, k2, v2, undefined, 'an infinite key');
    v2.data[(0 * Lk + 5) * E] = -Infinity;
    check(q2, k2, v2, undefined, 'an infinite value');
    const [q3, k3, v3] = base();
    q3.data[3] = Infinity;
    for (let i = E; i < 2 * E; i++) q3.data[i] *= 1e4;
    check(q3, k3, v3, undefined, 'infinite and huge queries');
    for (let i = 0; i < q3.data.length; i++) q3.data[i] = 1e-30;
    check(q3, k3, v3, undefined, 'tiny queries');
  });

  it('leaves to the other kernels what it cannot run, and the test hook says so', () => {
    const q = random([1, 4, 1, 8], 17), k = random([1, 2, 30, 8], 18), v = random([1, 2, 30, 8], 19);
    const runs = (o: AttentionOptions | undefined, qq = q, kk = k, vv = v) => {
      expectClose(wasm.scaledDotProductAttention(qq, kk, vv, o).output, reference.scaledDotProductAttention(qq, kk, vv, o).output);
      return lastAttentionKernel();
    };
    expect(runs(undefined)).toBe('paged');
    expect(runs({ mask: mask(Array.from(random([1, 1, 1, 30], 20).data, (x) => x > 0), [1, 1, 1, 30]) })).toBe('row');
    expect(runs({ returnWeights: true })).toBe('row');
    const mha = random([1, 2, 1, 8], 21);
    expect(runs(undefined, mha)).toBe('row'); // one query head a kv head
    expect(runs(undefined, random([1, 4, 2, 8], 22))).toBe('row'); // two query rows
    expect(runs(undefined, random([1, 16, 2, 8], 23))).toBe('fused'); // 16 rows a kv head
    expect(() => withAttentionKernel('paged', () => wasm.scaledDotProductAttention(mha, k, v))).toThrow(/paged kernel cannot run/);
    expect(runs(undefined)).toBe('paged'); // the engine is still usable
  });
});

describe('a KV pool of blocks longer than a run of the paged kernel', () => {
  it.each([100, 256, 257, 300])('blocks of %i positions, decode and a prompt, against the reference', (blockSize) => {
    const Hkv = 2, Hq = 6, D = 16;
    const pools = [reference, wasm, wasm2].map((e) => e.createKVPool({ kvHeads: Hkv, headDim: D, blocks: 16, blockSize }));
    const pasts = [{ keys: random([700, Hkv, D], 24), values: random([700, Hkv, D], 25) }, { keys: random([7, Hkv, D], 26), values: random([7, Hkv, D], 27) }];
    const seqs = pools.map((p) => fillPool(p, pasts));
    for (const [step, queryLens] of [[0, [1, 1]], [1, [3, 1]], [2, [1, 20]]] as const) {
      const T = queryLens[0] + queryLens[1];
      const q = random([T, Hq, D], 30 + step), k = random([T, Hkv, D], 40 + step), v = random([T, Hkv, D], 50 + step);
      const outs = [reference, wasm, wasm2].map((e, i) => e.batchAttention(q, k, v, { sequences: seqs[i], queryLens: [...queryLens], window: step === 1 ? { left: 100 } : undefined }).output);
      expectClose(outs[1], outs[0], `blocks of ${blockSize}, step ${step}`);
      expect(Array.from(outs[2].data), '2 threads').toEqual(Array.from(outs[1].data));
    }
    pools.forEach((p) => p.dispose());
  });
});

describe('grouped-query decode: random calls (fast-check)', () => {
  const RUNS = Number(process.env.FC_RUNS ?? 60), SEED = Number(process.env.FC_SEED ?? 20261201);
  const decodeCase = fc.record({
    B: fc.integer({ min: 1, max: 3 }), Hkv: fc.integer({ min: 1, max: 3 }), group: fc.integer({ min: 2, max: 9 }),
    Lnew: fc.integer({ min: 1, max: 300 }), Lpast: fc.constantFrom(0, 0, 5, 256), E: fc.integer({ min: 1, max: 20 }), Ev: fc.integer({ min: 1, max: 20 }),
    causal: fc.constantFrom<AttentionOptions['causal']>(undefined, true, 'bottom-right'),
    left: fc.option(fc.integer({ min: 0, max: 300 }), { nil: undefined }), right: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
    softcap: fc.constantFrom(0, 0, 0.7, 5), validLens: fc.boolean(), scaleBig: fc.boolean(), cache: fc.boolean(), seed: fc.integer({ min: 1, max: 1e9 }),
  });
  it('equals the reference, over tensors, past ++ new and a KVCache, 2 threads with the same bits', () => {
    fc.assert(fc.property(decodeCase, (c) => {
      const Hq = c.Hkv * c.group, Lk = c.Lpast + c.Lnew, r = rng(c.seed);
      const q = random([c.B, Hq, 1, c.E], c.seed, c.scaleBig ? 30 : 1), k = random([c.B, c.Hkv, c.Lnew, c.E], c.seed + 1), v = random([c.B, c.Hkv, c.Lnew, c.Ev], c.seed + 2);
      const o: AttentionOptions = { causal: c.causal, softcap: c.softcap };
      if (c.left !== undefined || c.right !== undefined) o.window = { left: c.left, right: c.right };
      if (c.validLens && !c.cache) o.validLens = Array.from({ length: c.B }, () => Math.floor(r() * (Lk + 1)));
      const past = c.Lpast > 0 ? [random([c.B, c.Hkv, c.Lpast, c.E], c.seed + 3), random([c.B, c.Hkv, c.Lpast, c.Ev], c.seed + 4)] as const : null;
      if (!c.cache) {
        const opts = past ? { ...o, pastKey: past[0], pastValue: past[1] } : o;
        check(q, k, v, opts, JSON.stringify(c));
        return;
      }
      // the cache holds the past (and a prompt of Lpast rows put it there), then the new rows
      const results = [reference, wasm, wasm2].map((e) => {
        const cache = e.createKVCache({ batch: c.B, kvHeads: c.Hkv, headDim: c.E, valueDim: c.Ev, capacity: Lk + 3 });
        if (past) e.scaledDotProductAttention(random([c.B, Hq, c.Lpast, c.E], c.seed + 5), past[0], past[1], { cache });
        const output = e.scaledDotProductAttention(q, k, v, { ...o, cache }).output;
        if (e !== reference) expect(lastAttentionKernel(), 'kernel').toBe('paged');
        cache.dispose();
        return output;
      });
      expectClose(results[1], results[0], JSON.stringify(c));
      expect(Array.from(results[2].data), '2 threads').toEqual(Array.from(results[1].data));
    }), { numRuns: RUNS, seed: SEED });
  });
});
