// Engine tensors (engine.tensor(shape)), across the ops. Read and written where they are: with inputs
// and `out` in engine memory, the kernels read the inputs in place and write straight into out
// (Arena.result is handed out's own address, so it copies nothing), for matmul, attention (both
// kernels, and with weights), kernelRegression, additiveAttention, multiHeadAttention and its prepared
// layer, rotaryEmbedding (also into its own x), batchAttention's decode steps and the grouped-query
// layer's forward; an out that overlaps an input, or lives outside engine memory, is written through a
// block of the call's own and gets the same result. On both engines: engine tensors as inputs and
// outputs of every op, equal to the copying calls; a wrong out refused; and on wasm, memory growth
// (an engine tensor's data is always a live view).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type Engine, reference, type Tensor, tensor } from '../src/index.js';
import { Arena } from '../src/wasm/memory.js';
import { engines, expectClose, fillPool, kernelProbe, multiHeadParams, random, wasmEngine } from './support.js';

const all = await engines();
const wasm = await wasmEngine();
afterEach(() => { vi.restoreAllMocks(); });

/** An engine tensor holding a copy of `t`. */
function resident(e: Engine, t: Tensor): Tensor {
  const r = e.tensor(t.shape);
  r.data.set(t.data);
  return r;
}

/**
 * Runs `op` with its result going to `out`; returns the addresses the arena read inputs from and
 * the address the result came from (what Arena.result was handed).
 */
function watch(op: () => Tensor): { inputs: number[]; resultFrom: number[]; output: Tensor } {
  const input = vi.spyOn(Arena.prototype, 'input'), result = vi.spyOn(Arena.prototype, 'result');
  const output = op();
  const seen = { inputs: input.mock.results.map((r) => r.value as number), resultFrom: result.mock.calls.map((c) => c[0]), output };
  vi.restoreAllMocks();
  return seen;
}

const a = random([2, 17, 33], 1), b = random([2, 33, 20], 2);
const q = random([1, 4, 19, 16], 3), k = random([1, 2, 23, 16], 4), v = random([1, 2, 23, 8], 5);
const kq = random([9, 3], 6), kk = random([30, 3], 7), kv = random([30, 5], 8);
const aq = random([2, 5, 6], 9), ak = random([2, 7, 4], 10), av = random([2, 7, 3], 11);
const params = { Wq: random([8, 6], 12), Wk: random([8, 4], 13), wv: random([1, 8], 14) };
const rx = random([5, 3, 10], 19), rp = [0, 7, 3, 100, 2];
const mq = random([2, 5, 16], 20), mk = random([2, 7, 16], 21), mv = random([2, 7, 16], 22);
const mparams = { numHeads: 4, inProjWeight: random([48, 16], 23, 0.3), inProjBias: random([48], 24, 0.1), outProjWeight: random([16, 16], 25, 0.3) };

/** Each op: its inputs, the call with options (the out among them) and the reference's result. */
const ops: [string, Tensor[], number[], (e: Engine, xs: Tensor[], out: Tensor) => Tensor, () => Tensor][] = [
  ['matmul', [a, b], [2, 17, 20], (e, [x, y], out) => e.matmul(x, y, { out }), () => reference.matmul(a, b)],
  ['attention, fused kernel', [q, k, v], [1, 4, 19, 8], (e, [x, y, z], out) => e.scaledDotProductAttention(x, y, z, { causal: true, out, ...kernelProbe('fused').options }).output,
    () => reference.scaledDotProductAttention(q, k, v, { causal: true }).output],
  ['attention, row kernel', [q, k, v], [1, 4, 19, 8], (e, [x, y, z], out) => e.scaledDotProductAttention(x, y, z, { out, ...kernelProbe('row').options }).output,
    () => reference.scaledDotProductAttention(q, k, v).output],
  ['attention with weights', [q, k, v], [1, 4, 19, 8], (e, [x, y, z], out) => e.scaledDotProductAttention(x, y, z, { returnWeights: true, out }).output,
    () => reference.scaledDotProductAttention(q, k, v).output],
  ['kernelRegression', [kq, kk, kv], [9, 5], (e, [x, y, z], out) => e.kernelRegression(x, y, z, { out }).output, () => reference.kernelRegression(kq, kk, kv).output],
  ['additiveAttention', [aq, ak, av], [2, 5, 3], (e, [x, y, z], out) => e.additiveAttention(x, y, z, params, { out }).output,
    () => reference.additiveAttention(aq, ak, av, params).output],
  ['multiHeadAttention', [mq, mk, mv], [2, 5, 16], (e, [x, y, z], out) => e.multiHeadAttention(x, y, z, mparams, { out }).output,
    () => reference.multiHeadAttention(mq, mk, mv, mparams).output],
  ['a prepared multi-head layer', [mq, mk, mv], [2, 5, 16], (e, [x, y, z], out) => e.createMultiHeadAttention(mparams).forward(x, y, z, { out }).output,
    () => reference.multiHeadAttention(mq, mk, mv, mparams).output],
  ['rotaryEmbedding', [rx], [5, 3, 10], (e, [x], out) => e.rotaryEmbedding(x, { positions: rp, dim: 8, out }), () => reference.rotaryEmbedding(rx, { positions: rp, dim: 8 })],
];

describe.each(ops)('%s on engine tensors', (_, inputs, outShape, op, want) => {
  it('reads the inputs where they are and writes straight into out', () => {
    const xs = inputs.map((t) => resident(wasm, t)), out = wasm.tensor(outShape);
    const seen = watch(() => op(wasm, xs, out));
    expect(seen.output).toBe(out);
    for (const x of xs) expect(seen.inputs).toContain(x.data.byteOffset);
    expect(seen.resultFrom).toEqual([out.data.byteOffset]);
    expectClose(out, want());
    [...xs, out].forEach((t) => (t as unknown as { dispose(): void }).dispose());
  });

  it('an out outside engine memory gets the same result through a block of its own', () => {
    const xs = inputs.map((t) => resident(wasm, t)), out = { data: new Float32Array(outShape.reduce((x, y) => x * y)), shape: outShape };
    const seen = watch(() => op(wasm, xs, out));
    expect(seen.output).toBe(out);
    expect(seen.resultFrom).toHaveLength(1);
    expectClose(out, want());
    xs.forEach((t) => (t as unknown as { dispose(): void }).dispose());
  });
});

describe('an out that overlaps an input', () => {
  it('rotaryEmbedding into its own x turns it in place', () => {
    const X = resident(wasm, rx);
    const seen = watch(() => wasm.rotaryEmbedding(X, { positions: rp, dim: 8, out: X }));
    expect(seen.resultFrom).toEqual([X.data.byteOffset]);
    expectClose(X, reference.rotaryEmbedding(rx, { positions: rp, dim: 8 }));
    (X as unknown as { dispose(): void }).dispose();
  });

  it('matmul into its own a ([n, n] · [n, n]) reads a before out is written', () => {
    const sa = random([24, 24], 15), sb = random([24, 24], 16);
    const A = resident(wasm, sa), B = resident(wasm, sb);
    const seen = watch(() => wasm.matmul(A, B, { out: A }));
    expect(seen.resultFrom[0]).not.toBe(A.data.byteOffset);
    expectClose(A, reference.matmul(sa, sb));
    [A, B].forEach((t) => (t as unknown as { dispose(): void }).dispose());
  });

  it('attention into its own query reads the queries before out is written', () => {
    const sq = random([1, 2, 20, 8], 17), sk = random([1, 2, 20, 8], 18);
    const Q = resident(wasm, sq), K = resident(wasm, sk);
    const seen = watch(() => wasm.scaledDotProductAttention(Q, K, K, { out: Q, ...kernelProbe('fused').options }).output);
    expect(seen.resultFrom[0]).not.toBe(Q.data.byteOffset);
    expectClose(Q, reference.scaledDotProductAttention(sq, sk, sk).output);
    [Q, K].forEach((t) => (t as unknown as { dispose(): void }).dispose());
  });
});

describe('batchAttention on engine tensors', () => {
  const Hq = 4, Hkv = 2, D = 8;
  /** A pool of `blocks` blocks of 4 on `engine`, with two sequences of `past` positions each. */
  const setup = (past: number, blocks = 16, engine: Engine = wasm) => {
    const pool = engine.createKVPool({ kvHeads: Hkv, headDim: D, blocks, blockSize: 4 });
    const seqs = fillPool(pool, [0, 1].map((i) => ({ keys: random([past, Hkv, D], 30 + i), values: random([past, Hkv, D], 40 + i) })));
    return { pool, seqs };
  };

  it('a decode step reads q, k and v where they are and writes straight into out', () => {
    const { pool, seqs } = setup(9);
    const [q, k, v] = [random([2, Hq, D], 50), random([2, Hkv, D], 51), random([2, Hkv, D], 52)];
    const Q = resident(wasm, q), K = resident(wasm, k), V = resident(wasm, v), out = wasm.tensor([2, Hq, D]);
    const seen = watch(() => wasm.batchAttention(Q, K, V, { sequences: seqs, queryLens: [1, 1], out }).output);
    expect(seen.resultFrom).toEqual([out.data.byteOffset]);
    for (const x of [Q, K, V]) expect(seen.inputs).toContain(x.data.byteOffset);
    const ref = setup(9, 16, reference);
    expectClose(out, reference.batchAttention(q, k, v, { sequences: ref.seqs, queryLens: [1, 1] }).output);
    [Q, K, V, out].forEach((t) => (t as unknown as { dispose(): void }).dispose());
    pool.dispose(); ref.pool.dispose();
  });

  it('prompts for the fused kernel are written straight into out too, and a refused call leaves out as it was', () => {
    const { pool, seqs } = setup(0, 12);
    const n = 20, q = random([2 * n, Hq, D], 53), k = random([2 * n, Hkv, D], 54), v = random([2 * n, Hkv, D], 55);
    const Q = resident(wasm, q), out = wasm.tensor([2 * n, Hq, D]);
    const seen = watch(() => wasm.batchAttention(Q, k, v, { sequences: seqs, queryLens: [n, n], out }).output);
    expect(seen.resultFrom).toEqual([out.data.byteOffset]);
    expect(seen.inputs).toContain(Q.data.byteOffset);
    const ref = setup(0, 12, reference);
    expectClose(out, reference.batchAttention(q, k, v, { sequences: ref.seqs, queryLens: [n, n] }).output);
    // the 40 positions take 10 of the 12 blocks; 16 more rows a sequence (prompts continuing their
    // sequences, for the fused kernel) need 8 blocks more, so the call is refused before anything is written
    const more = random([2 * 16, Hq, D], 56), mk = random([2 * 16, Hkv, D], 57), out2 = wasm.tensor([2 * 16, Hq, D]);
    out2.data.fill(7);
    expect(() => wasm.batchAttention(more, mk, mk, { sequences: seqs, queryLens: [16, 16], out: out2 })).toThrow(/free blocks/);
    expect(Array.from(out2.data).every((x) => x === 7)).toBe(true);
    expect(seqs.map((s) => s.length)).toEqual([n, n]);
    [Q, out, out2].forEach((t) => (t as unknown as { dispose(): void }).dispose());
    pool.dispose(); ref.pool.dispose();
  });

});

describe('a grouped-query layer on engine tensors', () => {
  it('reads x where it is and writes its output straight into out', () => {
    const E = 32, Hq = 4, Hkv = 2, D = 8;
    const params = {
      numHeads: Hq, numKvHeads: Hkv, headDim: D, rotary: {},
      qProjWeight: random([Hq * D, E], 60, 0.3), kProjWeight: random([Hkv * D, E], 61, 0.3),
      vProjWeight: random([Hkv * D, E], 62, 0.3), oProjWeight: random([E, Hq * D], 63, 0.3),
    };
    const layer = wasm.createGroupedQueryAttention(params), ref = reference.createGroupedQueryAttention(params);
    const pool = wasm.createKVPool({ kvHeads: Hkv, headDim: D, blocks: 8, blockSize: 4 }), refPool = reference.createKVPool({ kvHeads: Hkv, headDim: D, blocks: 8, blockSize: 4 });
    const x = random([3, E], 64), X = resident(wasm, x), out = wasm.tensor([3, E]);
    const seen = watch(() => layer.forward(X, { sequences: [pool.sequence()], queryLens: [3], out }).output);
    expect(seen.resultFrom).toEqual([out.data.byteOffset]);
    expect(seen.inputs).toContain(X.data.byteOffset);
    expectClose(out, ref.forward(x, { sequences: [refPool.sequence()], queryLens: [3] }).output);
    [X, out].forEach((t) => (t as unknown as { dispose(): void }).dispose());
    layer.dispose(); pool.dispose(); refPool.dispose();
  });
});

describe.each(all.map((e) => [e.name, e] as const))('zero-copy tensors and options.out on %s', (_, engine: Engine) => {
  it('engine tensors are inputs and outputs of every op, and results equal the copying calls', () => {
    const a = engine.tensor([5, 6]), b = engine.tensor([6, 7]);
    a.data.set(random([5, 6], 1).data);
    b.data.set(random([6, 7], 2).data);
    const c = engine.tensor([5, 7]);
    expect(engine.matmul(a, b, { out: c })).toBe(c);
    expectClose(c, engine.matmul(tensor(Float32Array.from(a.data), [5, 6]), tensor(Float32Array.from(b.data), [6, 7])));
    // an output may be an input: the result is written after the inputs are read
    const s = engine.tensor([2, 3, 5]);
    s.data.set(random([2, 3, 5], 3, 4).data);
    const want = engine.softmax(tensor(Float32Array.from(s.data), s.shape));
    expect(engine.softmax(s, { out: s })).toBe(s);
    expectClose(s, want);
    const plain = tensor(new Float32Array(30), [2, 3, 5]);
    expect(engine.maskedSoftmax(random([2, 3, 5], 4), [2, 5], { out: plain })).toBe(plain);
    const q = random([1, 2, 16, 8], 5), k = random([1, 2, 20, 8], 6), v = random([1, 2, 20, 4], 7);
    const o = engine.tensor([1, 2, 16, 4]);
    expectClose(engine.scaledDotProductAttention(q, k, v, { causal: true, out: o }).output, engine.scaledDotProductAttention(q, k, v, { causal: true }).output);
    const kr = engine.tensor([3]);
    expect(engine.kernelRegression(random([3], 8), random([9], 9), random([9], 10), { out: kr }).output).toBe(kr);
    const x = random([2, 4, 8], 11), p = multiHeadParams(8, 2, 12), mo = engine.tensor([2, 4, 8]);
    expect(engine.selfAttention(x, p, { out: mo }).output).toBe(mo);
    expectClose(mo, engine.selfAttention(x, p).output);
    for (const t of [a, b, c, s, o, kr, mo]) t.dispose();
  });

  it('refuses an out of the wrong shape, and a disposed tensor', () => {
    expect(() => engine.matmul(random([2, 3], 1), random([3, 4], 2), { out: tensor(new Float32Array(6), [2, 3]) })).toThrow(/options.out: expected shape \[2, 4\]/);
    const t = engine.tensor([2]);
    t.dispose();
    t.dispose();
    expect(() => t.data).toThrow(/disposed/);
  });
});

describe('wasm engine tensors when the memory grows', () => {
  it('an engine tensor is copied in right even when that copy grows the memory', async () => {
    const { createEngine } = await import('../src/index.js');
    const engine = await createEngine();
    const x = engine.tensor([512, 1024]), out = engine.tensor([512, 1024]);
    x.data.set(random([512, 1024], 1, 3).data);
    const want = all[1].softmax(tensor(Float32Array.from(x.data), x.shape));
    expectClose(engine.softmax(x, { out }), want); // softmax copies x (it works in place), growing the memory
    engine.dispose();
  });

  it('data is always a live view; a view kept across growth is refused by ops, not silently read', () => {
    const engine = all[1];
    const t = engine.tensor([4, 4]);
    t.data.set(random([4, 4], 1).data);
    const kept = t.data;
    engine.matmul(random([700, 700], 2), random([700, 700], 3)); // grows the memory
    expect(Array.from(t.data.subarray(0, 3))).toEqual(Array.from(random([4, 4], 1).data.subarray(0, 3)));
    if (kept.length === 0) expect(() => engine.softmax({ data: kept, shape: [4, 4] })).toThrow(RangeError);
    t.dispose();
  });
});
