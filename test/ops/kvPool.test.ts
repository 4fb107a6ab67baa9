// The paged KV pool (createKVPool, its sequences' append, read, fork, truncate and free) on the reference
// engine and on wasm engines of 1 and 2 threads, with the invariants of src/core/kvPool.ts checked
// after every operation (expectPoolInvariants, test/support.ts).
import { describe, expect, it } from 'vitest';
import { type Engine, reference } from '../../src/index.js';
import { expectClose, expectPoolInvariants, random, wasmEngines } from '../support.js';

const [wasm1, wasm2] = await wasmEngines();
const engines: [string, Engine][] = [['reference', reference], ['wasm, 1 thread', wasm1], ['wasm, 2 threads', wasm2]];

const rows = (n: number, H: number, D: number, seed: number) => random([n, H, D], seed);

describe.each(engines)('the KV pool on %s', (_, engine) => {
  it('appends, reads, forks with shared blocks, copies on write, truncates and frees', () => {
    const pool = engine.createKVPool({ kvHeads: 2, headDim: 3, valueDim: 5, blocks: 10, blockSize: 4 });
    const a = pool.sequence();
    const k1 = rows(6, 2, 3, 1), v1 = rows(6, 2, 5, 2);
    a.append(k1, v1);
    expect(a.length).toBe(6);
    expect(pool.freeBlocks).toBe(8);
    expectClose(a.read().keys, k1);
    expectClose(a.read().values, v1);
    const b = a.fork();
    expect(pool.freeBlocks, 'a fork takes no block').toBe(8);
    expectPoolInvariants(pool, [a, b]);
    const k2 = rows(1, 2, 3, 3), v2 = rows(1, 2, 5, 4);
    b.append(k2, v2);
    expect(pool.freeBlocks, 'writing into the shared last block copies it').toBe(7);
    expectClose(a.read().keys, k1, 'the original is unchanged');
    expect(b.read().keys.data.slice(0, 36)).toEqual(k1.data);
    expect(b.read().keys.data.slice(36)).toEqual(k2.data);
    expectPoolInvariants(pool, [a, b]);
    b.truncate(3);
    expect(b.length).toBe(3);
    expectPoolInvariants(pool, [a, b]);
    expect(() => b.truncate(4)).toThrow(RangeError);
    a.free();
    expect(() => a.read()).toThrow(/freed/);
    expect(() => a.free()).toThrow(/freed/);
    expectPoolInvariants(pool, [b]);
    b.free();
    expect(pool.freeBlocks).toBe(10);
    pool.dispose();
    expect(() => pool.sequence()).toThrow(/disposed/);
  });

  it('refuses an append that does not fit, changing nothing', () => {
    const pool = engine.createKVPool({ kvHeads: 1, headDim: 2, blocks: 2, blockSize: 2 });
    const s = pool.sequence();
    s.append(rows(3, 1, 2, 1), rows(3, 1, 2, 2));
    expect(() => s.append(rows(2, 1, 2, 3), rows(2, 1, 2, 4))).toThrow(/1 free blocks? of 2|0 free blocks of 2/);
    expect(s.length).toBe(3);
    expect(() => s.append(rows(1, 2, 2, 3), rows(1, 2, 2, 4))).toThrow(RangeError);
    expectClose(s.read().keys, rows(3, 1, 2, 1));
    expectPoolInvariants(pool, [s]);
    expect(() => engine.createKVPool({ kvHeads: 1, headDim: 2, blocks: 2, dtype: 'bfloat16' as never })).toThrow(/must be 'float32', 'float16' or 'int8'/);
    expect(() => engine.createKVPool({ kvHeads: 1e200, headDim: 1e200, blocks: 0 })).toThrow(RangeError);
    pool.dispose();
  });
});
