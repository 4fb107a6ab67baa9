// `using`: every object that holds memory (engines, engine tensors, KV caches, layers, pools, sequences,
// decoders and their sequences) is disposed at the end of its block, and what it held is back: the
// wasm memory is reused (engine.info.memoryBytes stays flat over repeated blocks) and a pool's blocks
// return. [Symbol.dispose] calls dispose() or free(); the method stays. test/types/readme.ts checks
// that `using engine = await createEngine()` compiles against the built declarations.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { disposeSymbol } from '../src/core/dispose.ts';
import { createEngine, type Decoder, type Engine, type KVPool, type LinearLayer, loadDecoder, reference, tensor } from '../src/index.ts';

const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + seed));
const t = (shape: number[], seed = 1) => tensor(values(shape.reduce((a, b) => a * b, 1), seed), shape);

/** Runs `block` `times` times and returns engine.info.memoryBytes after each. */
function memoryAfter(engine: Engine, times: number, block: () => void): number[] {
  return Array.from({ length: times }, () => {
    block();
    return engine.info.memoryBytes;
  });
}

describe('Symbol.dispose', () => {
  it('is Symbol.dispose where the runtime has it (Node 20 defines it)', () => {
    expect(typeof Symbol.dispose).toBe('symbol');
    expect(disposeSymbol).toBe(Symbol.dispose);
  });

  it('an engine in a using block is disposed at its end, wasm and reference alike', async () => {
    let kept: Engine;
    {
      using engine = await createEngine();
      kept = engine;
      expect(engine.softmax(t([2, 3])).shape).toEqual([2, 3]);
    }
    expect(() => kept.softmax(t([2, 3]))).toThrow(/disposed/);
    expect(kept.info.memoryBytes).toBe(0);
    {
      using engine = reference;
      expect(engine.softmax(t([2, 3])).shape).toEqual([2, 3]);
    }
    expect(reference.softmax(t([2, 3])).shape).toEqual([2, 3]); // the reference engine holds nothing
  });

  it('engine tensors, KV caches and layers give their memory back at the end of each block', async () => {
    using engine = await createEngine();
    const E = 64, H = 4, D = 16;
    const w = (rows: number, cols: number, seed: number) => t([rows, cols], seed);
    const params = { numHeads: H, qProjWeight: w(E, E, 1), kProjWeight: w(E, E, 2), vProjWeight: w(E, E, 3), outProjWeight: w(E, E, 4) };
    const gqa = { numHeads: H, numKvHeads: 2, headDim: D, qProjWeight: w(H * D, E, 5), kProjWeight: w(2 * D, E, 6), vProjWeight: w(2 * D, E, 7), oProjWeight: w(E, H * D, 8) };
    const after = memoryAfter(engine, 4, () => {
      using big = engine.tensor([256 * 1024]); // 1 MiB
      using cache = engine.createKVCache({ batch: 1, kvHeads: H, headDim: D, capacity: 256 });
      using layer = engine.createMultiHeadAttention(params);
      using grouped = engine.createGroupedQueryAttention(gqa);
      using pool = engine.createKVPool({ kvHeads: 2, headDim: D, blocks: 64, blockSize: 16 });
      using s = pool.sequence();
      const x = t([1, 8, E]);
      layer.forward(x, x, x, { cache });
      grouped.forward(t([8, E]), { sequences: [s], queryLens: [8] });
      big.data.fill(1);
    });
    // the first block grows the memory; every later one fits in what the first freed
    expect(after.slice(1)).toEqual([after[0], after[0], after[0]]);
  });

  it('linear layers too', async () => {
    using engine = await createEngine();
    const after = memoryAfter(engine, 3, () => {
      using linear = engine.createLinear(t([512, 256]));
      linear.forward(t([2, 256]));
    });
    expect(after.slice(1)).toEqual([after[0], after[0]]);
  });

  it.each([['reference', async () => reference], ['wasm', () => createEngine()]] as const)('%s: sequences give their blocks back at the end of their block, forks included', async (_, make) => {
    using engine = await make();
    using pool = engine.createKVPool({ kvHeads: 1, headDim: 4, blocks: 8, blockSize: 2 });
    {
      using a = pool.sequence();
      a.append(t([3, 1, 4]), t([3, 1, 4], 2));
      using b = a.fork();
      b.append(t([1, 1, 4]), t([1, 1, 4], 3)); // copies the shared last block
      using c = pool.sequence();
      c.append(t([2, 1, 4]), t([2, 1, 4], 4));
      c.free(); // freed by hand: the end of the block leaves it be
      expect(pool.freeBlocks).toBe(8 - 3);
    }
    expect(pool.freeBlocks).toBe(8);
  });

  it('a pool and a layer disposed at the end of the block throw on later use', async () => {
    let pool: KVPool, layer: LinearLayer;
    {
      using engine = await createEngine();
      using p = engine.createKVPool({ kvHeads: 1, headDim: 4, blocks: 4, blockSize: 2 });
      using l = engine.createLinear(t([4, 4]));
      pool = p;
      layer = l;
    }
    expect(() => pool.sequence()).toThrow(/disposed/);
    expect(() => layer.forward(t([1, 4]))).toThrow(/disposed/);
  });

  it('a decoder and its sequences: blocks back at the end of a sequence\'s block, the decoder disposed at the end of its own', async () => {
    const dir = new URL('./fixtures/decoders/qwen3/', import.meta.url);
    const files = { 'config.json': readFileSync(new URL('config.json', dir)), 'model.safetensors': readFileSync(new URL('model.safetensors', dir)) };
    using engine = await createEngine();
    let kept: Decoder;
    {
      using decoder = await loadDecoder({ files }, { engine, maxTokens: 64 });
      kept = decoder;
      const free = decoder.freeBlocks;
      {
        using s = decoder.sequence();
        decoder.forward([1, 5, 9, 13, 17], { sequences: [s], queryLens: [5] });
        using f = s.fork();
        decoder.forward([3], { sequences: [f], queryLens: [1] });
        expect(decoder.freeBlocks).toBeLessThan(free);
      }
      expect(decoder.freeBlocks).toBe(free);
    }
    expect(() => kept.sequence()).toThrow(/disposed/);
  });
});
