// createLinearBuilder on both engines: an int8/int4 layer built from float rows appended a few at a
// time is createLinear's layer of the whole weight, bit for bit (forward at several T, lookup), whatever
// the pieces (empty, single rows, pieces across the wasm layout's blocks of 4 rows, the whole); NaN
// rows as createLinear takes them; every refusal, which changes nothing and leaves the builder usable;
// and on wasm nothing held after a dispose, a refusal or a layer's dispose.
import { describe, expect, it } from 'vitest';
import { createEngine, type Engine, type LinearBuilder, type Tensor, tensor } from '../../src/index.js';
import { createWasmLinearBuilder } from '../../src/wasm/linear.js';
import { engines, random } from '../support.js';
import { expectIdentical, type Quant } from './quantDefinition.js';
import { splitContext } from './split.js';

const all = await engines();
const QUANTS: Quant[] = ['int8', 'int4'];

/** Rows [from, to) of w [N, K]. */
const rowsOf = (w: Tensor, from: number, to: number): Tensor => {
  const K = w.shape[1];
  return tensor(w.data.slice(from * K, to * K), [to - from, K]);
};

/** Appends w's rows to b in pieces of the given sizes, then the rest. */
function appendAll(b: LinearBuilder, w: Tensor, pieces: number[]): void {
  let at = 0;
  for (const n of pieces) {
    b.append(rowsOf(w, at, at + n));
    at += n;
  }
  b.append(rowsOf(w, at, w.shape[0]));
}

describe.each(all.map((e) => [e.name, e] as const))('createLinearBuilder on %s', (_, engine: Engine) => {
  it.each(QUANTS)('builds createLinear\'s layer of the whole weight, bit for bit, whatever the pieces (%s)', (dtype) => {
    let seed = 1;
    // [out, in, groupSize]: out at every tail of 4 rows, in over one and several groups
    for (const [N, K, g] of [[1, 32, 32], [3, 64, 32], [37, 96, 32], [40, 128, 64], [9, 256, 128]] as const) {
      const w = random([N, K], seed++, 0.3);
      w.data[K + 5] = 9; // an outlier
      const bias = random([N], seed++);
      const whole = engine.createLinear(w, { dtype, groupSize: g, bias });
      const xs = [1, 5, 17].map((T) => random([T, K], seed++, 2));
      const ids = Array.from({ length: N }, (_, i) => N - 1 - i);
      for (const pieces of [[], [0, 1, 0, 2, 3], [5, 4, 7], [N]].map((p) => p.filter((_, i, a) => a.slice(0, i + 1).reduce((s, v) => s + v, 0) <= N))) {
        const b = engine.createLinearBuilder([N, K], { dtype, groupSize: g, bias });
        expect([b.outFeatures, b.inFeatures, b.rows]).toEqual([N, K, 0]);
        appendAll(b, w, pieces);
        expect(b.rows).toBe(N);
        const layer = b.finish();
        const label = `${dtype} [${N}, ${K}] g=${g} pieces ${pieces.join(',')}`;
        expect([layer.inFeatures, layer.outFeatures, layer.dtype, layer.bytes]).toEqual([K, N, dtype, whole.bytes]);
        for (const x of xs) expectIdentical(layer.forward(x), whole.forward(x), `${label} T=${x.shape[0]}`);
        expectIdentical(layer.lookup(ids), whole.lookup(ids), `${label} lookup`);
        layer.dispose();
        b.dispose(); // after finish: harmless
      }
      whole.dispose();
    }
  });

  it('takes rows with NaN and Infinity as createLinear does (their groups give NaN)', () => {
    const N = 6, K = 64, w = tensor(Float32Array.from(random([N, K], 3).data), [N, K]);
    w.data[2 * K + 40] = Number.NaN;
    w.data[4 * K + 1] = Number.POSITIVE_INFINITY;
    for (const dtype of QUANTS) {
      const b = engine.createLinearBuilder([N, K], { dtype });
      b.append(rowsOf(w, 0, 3));
      b.append(rowsOf(w, 3, N));
      const x = random([2, K], 4);
      expectIdentical(b.finish().forward(x), engine.createLinear(w, { dtype }).forward(x), dtype);
    }
  });

  it('refuses bad shapes, options and rows, changing nothing: the builder goes on', () => {
    const bias = random([8], 1);
    expect(() => engine.createLinearBuilder([8], { dtype: 'int8' })).toThrow(/createLinearBuilder: shape must be \[out, in\]/);
    expect(() => engine.createLinearBuilder([0, 32], { dtype: 'int8' })).toThrow(RangeError);
    expect(() => engine.createLinearBuilder([8, 32], { dtype: 'float32' as 'int8' })).toThrow(/options.dtype must be 'int8' or 'int4'/);
    expect(() => engine.createLinearBuilder([8, 32], undefined as unknown as { dtype: 'int8' })).toThrow(TypeError);
    expect(() => engine.createLinearBuilder([8, 96], { dtype: 'int4', groupSize: 64 })).toThrow(/groupSize must be a multiple of 32 that divides in = 96/);
    expect(() => engine.createLinearBuilder([8, 32], { dtype: 'int4', bias: random([7], 2) })).toThrow(/options.bias: expected shape \[8\]/);
    const w = random([8, 32], 3);
    const b = engine.createLinearBuilder([8, 32], { dtype: 'int4', bias });
    b.append(rowsOf(w, 0, 3));
    expect(() => b.append(random([2, 31], 4))).toThrow(/LinearBuilder.append: rows: expected shape \[\*, 32\]/);
    expect(() => b.append(random([6, 32], 4))).toThrow(/6 rows given, but only 5 of the weight's rows are still missing/);
    expect(() => b.append(random([32], 4))).toThrow(RangeError);
    expect(() => b.finish()).toThrow(/LinearBuilder.finish: 3 of the weight's 8 rows are in/);
    expect(b.rows).toBe(3);
    b.append(rowsOf(w, 3, 8));
    const x = random([3, 32], 5);
    expectIdentical(b.finish().forward(x), engine.createLinear(w, { dtype: 'int4', bias }).forward(x), 'after refusals');
    expect(() => b.append(rowsOf(w, 0, 1))).toThrow(/this linear builder has been finished or disposed/);
    expect(() => b.finish()).toThrow(/finished or disposed/);
    const d = engine.createLinearBuilder([4, 32], { dtype: 'int8' });
    d.dispose();
    d.dispose();
    expect(() => d.append(rowsOf(w, 0, 1))).toThrow(/finished or disposed/);
  });

  it('keeps its own copy of the bias and of each piece: the caller may change them afterwards', () => {
    const N = 5, K = 32, w = random([N, K], 6), bias = tensor(Float32Array.from(random([N], 7).data), [N]);
    const b = engine.createLinearBuilder([N, K], { dtype: 'int8', bias });
    const piece = rowsOf(w, 0, 2);
    b.append(piece);
    piece.data.fill(100);
    const expected = engine.createLinear(w, { dtype: 'int8', bias: tensor(Float32Array.from(bias.data), [N]) });
    bias.data.fill(-100);
    b.append(rowsOf(w, 2, N));
    const x = random([2, K], 8);
    expectIdentical(b.finish().forward(x), expected.forward(x), 'copies');
  });
});

describe('createLinearBuilder on wasm: memory', () => {
  it('holds the packed weight from the start; nothing after a dispose, a refusal or the layer\'s dispose; engine-tensor rows are read in place', async () => {
    const ctx = await splitContext(1, { limit: 2 ** 20 * 3 });
    const held = ctx.arena.heldBytes;
    const b = createWasmLinearBuilder(() => ctx, [64, 256], { dtype: 'int4', bias: random([64], 1) });
    expect(ctx.arena.heldBytes).toBeGreaterThan(held);
    b.append(random([3, 256], 2));
    b.dispose();
    expect(ctx.arena.heldBytes).toBe(held);
    // over the 3 MiB limit: 2048 x 2048 int8 is 4.5 MB packed
    expect(() => createWasmLinearBuilder(() => ctx, [2048, 2048], { dtype: 'int8' })).toThrow(/createLinearBuilder: shape \[2048, 2048\]: needs .* over the engine.s limit/);
    expect(ctx.arena.heldBytes).toBe(held);
    const l = createWasmLinearBuilder(() => ctx, [6, 64], { dtype: 'int8' });
    l.append(random([6, 64], 3));
    l.finish().dispose();
    expect(ctx.arena.heldBytes).toBe(held);

    const engine = await createEngine();
    try {
      const N = 9, K = 64, w = random([N, K], 4);
      const rows = engine.tensor([N, K]);
      rows.data.set(w.data);
      const bld = engine.createLinearBuilder([N, K], { dtype: 'int4' });
      bld.append({ data: rows.data.subarray(0, 5 * K), shape: [5, K] });
      bld.append({ data: rows.data.subarray(5 * K), shape: [4, K] });
      const x = random([2, K], 5);
      expectIdentical(bld.finish().forward(x), engine.createLinear(w, { dtype: 'int4' }).forward(x), 'rows from engine memory');
      rows.dispose();
    } finally {
      engine.dispose();
    }
  });
});
