// The paged KV pool (createKVPool, its sequences' append, read, fork, truncate and free) on the reference
// engine and on wasm engines of 1 and 2 threads, with the invariants of src/core/kvPool.ts checked
// after every operation (expectPoolInvariants, test/support.ts); and its storage formats
// (src/reference/kvFormats.ts): hand-computed values, and both engines storing the same bits (read()
// of a pool returns what was stored, dequantized).
import { describe, expect, it } from 'vitest';
import { type Engine, reference, tensor } from '../../src/index.js';
import { fromFloat16Bits, quantizeInt8Row, toFloat16Bits } from '../../src/reference/kvFormats.js';
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

describe('binary16 (round to nearest even)', () => {
  it.each([
    [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800], [65504, 0x7bff], [65519.99, 0x7bff], [65520, 0x7c00], [1e6, 0x7c00], [-Infinity, 0xfc00],
    [2 ** -14, 0x0400], [2 ** -24, 0x0001], [2 ** -25, 0x0000], [3 * 2 ** -25, 0x0002], [2 ** -26, 0x0000], [-0, 0x8000],
    // ties: 1 + 2^-11 is halfway between 1 and 1 + 2^-10 (even: 1); 1 + 3·2^-11 rounds up to the even 1 + 2^-9
    [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [1 + 2 ** -11 + 2 ** -20, 0x3c01],
  ])('%f -> %i', (x, bits) => {
    expect(toFloat16Bits(x)).toBe(bits);
  });
  it('NaN stays NaN, and every half reads back as itself', () => {
    expect(Number.isNaN(fromFloat16Bits(toFloat16Bits(NaN)))).toBe(true);
    for (let h = 0; h < 0x10000; h++) {
      const x = fromFloat16Bits(h);
      if (!Number.isNaN(x)) expect(toFloat16Bits(x), `0x${h.toString(16)}`).toBe(h === 0x8000 ? 0x8000 : h);
    }
  });
});

describe('int8 rows (s = max|x| / 127, round half to even)', () => {
  it('saturates the largest at ±127, rounds ties to even, gives a zero row a zero scale', () => {
    const q = new Int8Array(4);
    const s = quantizeInt8Row([127, -127, 0.5, 1.5], 0, 4, q, 0);
    expect(s).toBe(1);
    expect(Array.from(q)).toEqual([127, -127, 0, 2]);
    expect(quantizeInt8Row([0, 0, 0, 0], 0, 4, q, 0)).toBe(0);
    expect(Array.from(q)).toEqual([0, 0, 0, 0]);
    expect(quantizeInt8Row([-3, 1], 0, 2, q, 0)).toBe(Math.fround(3 / 127));
    expect(q[0]).toBe(-127);
  });
});

describe.each([['reference', reference], ['wasm', wasm1]] as [string, Engine][])('a pool stores the same values on %s', (_, engine) => {
  const D = 37, values = Float32Array.from({ length: 3 * D }, (_, i) => (i % 7 === 0 ? 0 : Math.sin(i) * 10 ** ((i % 9) - 5)));
  values.set([65520, -1e9, 2 ** -24, 3 * 2 ** -25, NaN], 40);
  const x = tensor(values, [3, 1, D]);
  it.each(['float16', 'int8'] as const)('%s: read() gives the reference bits back', (dtype) => {
    const pool = engine.createKVPool({ kvHeads: 1, headDim: D, blocks: 2, blockSize: 2, dtype });
    const s = pool.sequence();
    s.append(x, x);
    const mine = s.read().keys.data;
    const refPool = reference.createKVPool({ kvHeads: 1, headDim: D, blocks: 2, blockSize: 2, dtype });
    const r = refPool.sequence();
    r.append(x, x);
    const want = r.read().keys.data;
    for (let i = 0; i < want.length; i++) expect(Object.is(mine[i], want[i]) || mine[i] === want[i], `element ${i}: ${mine[i]} vs ${want[i]}`).toBe(true);
    if (dtype === 'float16') expect(want[40]).toBe(Infinity);
    pool.dispose();
  });
});
