// createGroupedQueryAttention on the reference engine and on wasm engines of 1 and 2 threads: the
// layer's forward over a KV pool against the reference layer, batched decode rows against one
// sequence at a time, and weights kept as given (from JavaScript or from engine tensors).
import { describe, expect, it } from 'vitest';
import { type Engine, reference, tensor } from '../../src/index.js';
import { expectClose, random, wasmEngines } from '../support.js';

const [wasm1, wasm2] = await wasmEngines();
const engines: [string, Engine][] = [['reference', reference], ['wasm, 1 thread', wasm1], ['wasm, 2 threads', wasm2]];

/** Random grouped-query params (Hugging Face layout). */
function gqaParams(E: number, Hq: number, Hkv: number, D: number, seed: number, extras = true) {
  return {
    numHeads: Hq, numKvHeads: Hkv, headDim: D,
    qProjWeight: random([Hq * D, E], seed, 0.3), kProjWeight: random([Hkv * D, E], seed + 1, 0.3),
    vProjWeight: random([Hkv * D, E], seed + 2, 0.3), oProjWeight: random([E, Hq * D], seed + 3, 0.3),
    ...(extras ? {
      qProjBias: random([Hq * D], seed + 4, 0.1), kProjBias: random([Hkv * D], seed + 5, 0.1), vProjBias: random([Hkv * D], seed + 6, 0.1),
      qNormWeight: random([D], seed + 7, 1), kNormWeight: random([D], seed + 8, 1), rotary: { base: 10000 },
    } : {}),
  };
}

describe.each(engines)('createGroupedQueryAttention on %s', (_, engine) => {
  it('equals the reference layer, and one 16-token forward equals sixteen one-token forwards', () => {
    const E = 24, Hq = 6, Hkv = 2, D = 8;
    const params = gqaParams(E, Hq, Hkv, D, 1);
    const layer = engine.createGroupedQueryAttention(params), ref = reference.createGroupedQueryAttention(params);
    const pool = engine.createKVPool({ kvHeads: Hkv, headDim: D, blocks: 64, blockSize: 4 });
    const refPool = reference.createKVPool({ kvHeads: Hkv, headDim: D, blocks: 64, blockSize: 4 });
    const seqs = Array.from({ length: 16 }, () => pool.sequence()), refSeqs = Array.from({ length: 16 }, () => refPool.sequence());
    // prompts of different lengths, then one decode step of all 16 in one forward
    const prompt = seqs.map((_, i) => 1 + (i % 5));
    const x0 = random([prompt.reduce((a, b) => a + b, 0), E], 2);
    expectClose(layer.forward(x0, { sequences: seqs, queryLens: prompt }).output, ref.forward(x0, { sequences: refSeqs, queryLens: prompt }).output, 'prefill');
    const forks = seqs.map((s) => s.fork());
    const x1 = random([16, E], 3);
    const batched = layer.forward(x1, { sequences: seqs, queryLens: seqs.map(() => 1) }).output;
    expectClose(batched, ref.forward(x1, { sequences: refSeqs, queryLens: refSeqs.map(() => 1) }).output, 'decode');
    forks.forEach((s, i) => {
      const one = layer.forward(tensor(x1.data.subarray(i * E, (i + 1) * E), [1, E]), { sequences: [s], queryLens: [1] }).output;
      expectClose(one, tensor(batched.data.subarray(i * E, (i + 1) * E), [1, E]), `sequence ${i} alone`);
    });
    expect(() => layer.forward(random([2, E + 1], 4), { sequences: [seqs[0]], queryLens: [2] })).toThrow(RangeError);
    expect(() => engine.createGroupedQueryAttention({ ...params, numKvHeads: 4 })).toThrow(RangeError);
    layer.dispose();
    expect(() => layer.forward(x1, { sequences: seqs, queryLens: seqs.map(() => 1) })).toThrow(/disposed/);
    pool.dispose(); refPool.dispose();
  });

  it('keeps the weights it was given, from JavaScript or from engine tensors while engine memory grows', () => {
    const E = 1024, Hq = 4, Hkv = 2, D = 16;
    const params = gqaParams(E, Hq, Hkv, D, 5);
    const asGiven = { ...params };
    if (engine !== reference) {
      for (const name of ['qProjWeight', 'kProjWeight', 'vProjWeight', 'oProjWeight'] as const) {
        const t = engine.tensor(params[name].shape);
        t.data.set(params[name].data);
        asGiven[name] = t;
      }
    }
    const ref = reference.createGroupedQueryAttention(params);
    const before = engine.info.memoryBytes;
    const layer = engine.createGroupedQueryAttention(asGiven);
    const others = Array.from({ length: 3 }, () => engine.createGroupedQueryAttention(asGiven));
    if (engine !== reference) expect(engine.info.memoryBytes).toBeGreaterThan(before); // the engine tensors' buffer was detached
    // the caller's arrays change afterwards: the layer does not see it
    asGiven.qProjWeight.data.fill(7);
    asGiven.oProjWeight.data.fill(-7);
    const pool = engine.createKVPool({ kvHeads: Hkv, headDim: D, blocks: 8, blockSize: 4 }), refPool = reference.createKVPool({ kvHeads: Hkv, headDim: D, blocks: 8, blockSize: 4 });
    const x = random([3, E], 6);
    expectClose(layer.forward(x, { sequences: [pool.sequence()], queryLens: [3] }).output, ref.forward(x, { sequences: [refPool.sequence()], queryLens: [3] }).output);
    [layer, ...others].forEach((l) => l.dispose());
    pool.dispose(); refPool.dispose();
  });
});
