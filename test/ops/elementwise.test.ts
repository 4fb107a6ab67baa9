// add, gatedActivation and softcap on both engines against float64 evaluations: SIMD tails, in place
// and engine tensors, NaN, ±Infinity, huge and tiny values, the approximations' error bounds, every
// error, zero sizes, and thread splits.
import { afterAll, describe, expect, it } from 'vitest';
import type { GatedActivation } from '../../src/core/modelTypes.js';
import { createEngine, type Engine, type Tensor, tensor } from '../../src/index.js';
import { add as wasmAdd, gatedActivation as wasmGated, softcap as wasmSoftcap } from '../../src/wasm/elementwise.js';
import { engines, expectClose, random, TAIL_SIZES } from '../support.js';
import { distCurrent, sameBits, splitContext } from './split.js';

// float64 definitions, as PyTorch writes them (silu, gelu(approximate='tanh'))
const silu = (g: number) => g / (1 + Math.exp(-g));
const geluTanh = (g: number) => 0.5 * g * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (g + 0.044715 * g ** 3)));
// the same function without the cancellation of 1 + tanh(u) for negative g, for relative errors
const geluStable = (g: number) => g / (1 + Math.exp(-2 * Math.sqrt(2 / Math.PI) * (g + 0.044715 * g ** 3)));
const ACT: Record<GatedActivation, (g: number) => number> = { silu, 'gelu-tanh': geluTanh };

function addOracle(a: Tensor, b: Tensor): Tensor {
  return { data: a.data.map((v, t) => v + b.data[t]), shape: a.shape };
}

function gatedOracle(x: Tensor, activation: GatedActivation = 'silu'): Tensor {
  const n = x.shape[x.shape.length - 1], i = n / 2, rows = n === 0 ? 0 : x.data.length / n;
  const out = new Float32Array(rows * i);
  for (let r = 0; r < rows; r++) for (let j = 0; j < i; j++) out[r * i + j] = ACT[activation](x.data[r * n + j]) * x.data[r * n + i + j];
  return { data: out, shape: [...x.shape.slice(0, -1), i] };
}

function softcapOracle(x: Tensor, cap: number): Tensor {
  return { data: x.data.map((v) => cap * Math.tanh(v / cap)), shape: x.shape };
}

/** x [rows, 2i] from a gate [rows, i] and an up [rows, i]. */
function fuse(gate: number[][], up: number[][]): Tensor {
  const i = gate[0].length;
  return tensor(gate.flatMap((g, r) => [...g, ...up[r]]), [gate.length, 2 * i]);
}

/** Largest relative error of `got` against f over the entries whose true value is at least `floor` in magnitude. */
function worstRelative(x: Float32Array, got: Float32Array, f: (v: number) => number, floor: number): number {
  let worst = 0;
  for (let t = 0; t < x.length; t++) {
    const want = f(x[t]);
    if (Math.abs(want) >= floor) worst = Math.max(worst, Math.abs(got[t] - want) / Math.abs(want));
  }
  return worst;
}

/** A dense grid over [-lim, lim] and ±m·10^k down to 1e-37. */
function grid(lim: number, steps: number): Float32Array {
  const xs: number[] = [];
  for (let s = -steps; s <= steps; s++) xs.push((s / steps) * lim);
  for (let k = -37; k <= 1; k++) for (let m = 1; m < 10; m++) xs.push(m * 10 ** k, -m * 10 ** k);
  return Float32Array.from(xs);
}

const SPECIAL = [NaN, Infinity, -Infinity, 100, -100, 1e4, -1e4, 3e38, -3e38, 0, -0, 1e-30, -1e-30, 1e-40, 88.8, -88.8, 10.2, -10.2];
const all = await engines();

describe.each(all.map((e) => [e.name, e] as const))('add on %s', (_, engine: Engine) => {
  const resident = (t: Tensor) => { const r = engine.tensor(t.shape); r.data.set(t.data); return r; };

  it.each(TAIL_SIZES)('%i elements, and rows of them', (n) => {
    const a = random([n], n, 3), b = random([n], n + 7, 3);
    expectClose(engine.add(a, b), addOracle(a, b), `n=${n}`);
    const a2 = random([3, n], n + 1, 3), b2 = random([3, n], n + 2, 3);
    expectClose(engine.add(a2, b2), addOracle(a2, b2), `[3, ${n}]`);
  });

  it('adds exactly as float32 does, NaN and infinities included', () => {
    const a = tensor([1, NaN, Infinity, -Infinity, Infinity, 3e38, -3e38, 1e-40, 0.1, -0, 5], [11]);
    const b = tensor([2, 1, 1, -1, -Infinity, 3e38, 1, 1e-40, 0.2, -0, -5], [11]);
    const y = engine.add(a, b);
    expect(Array.from(y.data)).toEqual(Array.from(new Float32Array(a.data.map((v, t) => v + b.data[t]))));
  });

  it('writes into out = a (a residual in place), out = b, a plain out, and through a copy when out overlaps a partly', () => {
    const shape = [5, 67], a0 = random(shape, 1, 2), b0 = random(shape, 2, 2), want = addOracle(a0, b0);
    const a = tensor(a0.data, shape);
    expect(engine.add(a, b0, { out: a })).toBe(a);
    expectClose(a, want, 'out = a');
    const b = tensor(b0.data, shape);
    expect(engine.add(a0, b, { out: b })).toBe(b);
    expectClose(b, want, 'out = b');
    const both = new Float32Array(6 * 67);
    both.set(a0.data);
    const to = { data: both.subarray(67), shape };
    engine.add({ data: both.subarray(0, 5 * 67), shape }, b0, { out: to });
    expectClose(to, want, 'out shifted by a row over a');
    expectClose(engine.add(a0, a0), addOracle(a0, a0), 'a + a');
  });

  it('reads and writes engine tensors in place: out = a, out = b, out apart, a + a in place', () => {
    const shape = [3, 129], a0 = random(shape, 3, 2), b0 = random(shape, 4, 2), want = addOracle(a0, b0);
    const a = resident(a0), b = resident(b0), out = engine.tensor(shape);
    expect(engine.add(a, b, { out })).toBe(out);
    expectClose(out, want, 'engine out');
    expect(Array.from(a.data)).toEqual(Array.from(a0.data));
    expectClose(engine.add(a0, b), want, 'plain a, engine b');
    engine.add(a, b0, { out: a });
    expectClose(a, want, 'engine a in place, plain b');
    a.data.set(a0.data);
    engine.add(a, b, { out: b });
    expectClose(b, want, 'engine out = b');
    engine.add(a, a, { out: a });
    expectClose(a, addOracle(a0, a0), 'a + a into a');
    const big = engine.tensor([4, 129]);
    big.data.set(a0.data);
    const to = { data: big.data.subarray(129), shape };
    engine.add({ data: big.data.subarray(0, 3 * 129), shape }, b0, { out: to });
    expectClose(to, want, 'engine out shifted by a row over a');
    for (const t of [a, b, out, big]) t.dispose();
  });

  it('returns at once for zero sizes', () => {
    expect(engine.add(tensor([], [0, 3]), tensor([], [0, 3])).shape).toEqual([0, 3]);
    const huge = { data: new Float32Array(0), shape: [1e9, 0] };
    expect(engine.add(huge, huge).shape).toEqual([1e9, 0]);
    expect(engine.add(huge, huge, { out: huge })).toBe(huge);
  });

  it('refuses bad arguments with TypeError or RangeError naming them and both shapes, and stays usable', () => {
    const a = random([2, 3], 1), b = random([2, 3], 2);
    const bad: [() => unknown, ErrorConstructor, RegExp][] = [
      [() => engine.add(undefined as never, b), TypeError, /add: a: expected a Tensor/],
      [() => engine.add(a, { data: [1, 2, 3, 4, 5, 6], shape: [2, 3] } as never), TypeError, /add: b: data must be a Float32Array/],
      [() => engine.add(a, random([3, 2], 3)), RangeError, /add: a and b must have the same shape, got a \[2, 3\] and b \[3, 2\]/],
      [() => engine.add(a, random([6], 3)), RangeError, /got a \[2, 3\] and b \[6\]/],
      [() => engine.add(a, random([1, 2, 3], 3)), RangeError, /got a \[2, 3\] and b \[1, 2, 3\]/],
      [() => engine.add(a, b, { out: random([6], 4) }), RangeError, /add: options.out: expected shape \[2, 3\] \(the shape of the result\), got \[6\]/],
      [() => engine.add(a, b, { out: 1 } as never), TypeError, /add: options.out: expected a Tensor/],
      [() => engine.add(a, b, [] as never), TypeError, /add: options must be an object/],
      // out is checked before the shapes of a and b are compared
      [() => engine.add(a, random([3], 3), { out: random([2], 4) }), RangeError, /add: options.out/],
    ];
    for (const [call, kind, message] of bad) {
      expect(call).toThrow(kind);
      expect(call).toThrow(message);
      expectClose(engine.add(a, b), addOracle(a, b), 'after an error');
    }
  });
});

describe.each(all.map((e) => [e.name, e] as const))('gatedActivation on %s', (_, engine: Engine) => {
  const resident = (t: Tensor) => { const r = engine.tensor(t.shape); r.data.set(t.data); return r; };

  it.each(TAIL_SIZES)('rows of I = %i (x [..., 2I]), SiLU and GELU-tanh', (i) => {
    const x = random([4, 2 * i], i, 6);
    expectClose(engine.gatedActivation(x), gatedOracle(x), `I=${i}, silu`);
    expectClose(engine.gatedActivation(x, { activation: 'silu' }), gatedOracle(x), `I=${i}, silu named`);
    expectClose(engine.gatedActivation(x, { activation: 'gelu-tanh' }), gatedOracle(x, 'gelu-tanh'), `I=${i}, gelu-tanh`);
  });

  it('halves the last axis of any rank: golden values', () => {
    // silu(1) = 1 / (1 + e^-1), gelu_tanh(1) = 0.5 · (1 + tanh(√(2/π) · 1.044715)) = 0.8411920
    const x = tensor([1, -2, 3, 0.5], [4]);
    expectClose(engine.gatedActivation(x), tensor([3 / (1 + Math.exp(-1)), 0.5 * (-2 / (1 + Math.exp(2)))], [2]));
    expectClose(engine.gatedActivation(x, { activation: 'gelu-tanh' }), tensor([3 * 0.841192, 0.5 * geluTanh(-2)], [2]));
    const x3 = random([2, 3, 10], 5, 4);
    const y = engine.gatedActivation(x3, { activation: 'gelu-tanh' });
    expect(y.shape).toEqual([2, 3, 5]);
    expectClose(y, gatedOracle(x3, 'gelu-tanh'));
  });

  it.each(['silu', 'gelu-tanh'] as const)('%s: no NaN where the true value is finite (±100, ±1e4, ±3e38), NaN in NaN out, infinities as PyTorch', (activation) => {
    for (const i of [SPECIAL.length, SPECIAL.length + 3, 2 * SPECIAL.length + 1]) {
      const gate = Array.from({ length: i }, (_, j) => SPECIAL[j % SPECIAL.length]);
      const up = Array.from({ length: i }, (_, j) => (j < SPECIAL.length ? 1 : [2, -0.5][j % 2]));
      const x = fuse([gate, Array.from(random([i], i).data)], [up, up]);
      const y = engine.gatedActivation(x, { activation });
      expectClose(y, gatedOracle(x, activation), `I=${i}`);
      for (let j = 0; j < i; j++) {
        const g = gate[j];
        const want = g === -Infinity ? NaN : Number.isNaN(g) ? NaN : g === Infinity ? Infinity * up[j] : null;
        if (want === null) expect(Number.isNaN(y.data[j]), `gate ${g}`).toBe(false);
        else expect(y.data[j], `gate ${g}`).toBe(want);
      }
      // silu(1e4) = 1e4, silu(-1e4) = -0 (or tiny), gelu(-1e4) = 0; huge gates give themselves
      const at = (g: number) => y.data[SPECIAL.indexOf(g)];
      expect(at(1e4)).toBe(1e4);
      expect(Math.abs(at(-1e4))).toBeLessThan(1e-30);
      expect(at(3e38)).toBe(Math.fround(3e38));
      expect(Math.abs(at(-3e38))).toBe(0);
      expect(at(100)).toBe(100);
    }
  });

  it.each([['silu', 2e-7, 1e-36], ['gelu-tanh', 2e-5, 1e-36]] as const)('%s: relative error below %f wherever the result is above %f', (activation, bound, floor) => {
    const g = grid(12, 40000), up = new Float32Array(g.length).fill(1);
    const x = tensor([...g, ...up], [2 * g.length]);
    const y = engine.gatedActivation(x, { activation });
    const f = activation === 'silu' ? silu : geluStable;
    expect(worstRelative(g, y.data, f, floor)).toBeLessThan(bound);
    if (activation === 'gelu-tanh') {
      // for |x| < 3 the exp argument is small: a few ulp
      const near = g.filter((v) => Math.abs(v) < 3), yn = engine.gatedActivation(tensor([...near, ...near.map(() => 1)], [2 * near.length]), { activation });
      expect(worstRelative(near, yn.data, f, floor)).toBeLessThan(1e-6);
    }
  });

  it('writes into a plain out, an engine out, reads an engine x; an out over x goes through a copy', () => {
    const x0 = random([6, 2 * 37], 9, 5), want = gatedOracle(x0), shape = [6, 37];
    const out = tensor(new Float32Array(6 * 37), shape);
    expect(engine.gatedActivation(x0, { out })).toBe(out);
    expectClose(out, want, 'plain out');
    const x = resident(x0), eout = engine.tensor(shape);
    expect(engine.gatedActivation(x, { out: eout })).toBe(eout);
    expectClose(eout, want, 'engine x and out');
    expectClose(engine.gatedActivation(x), want, 'engine x');
    // out as the first half of x's own memory (as a caller compacting in place might pass)
    const over = { data: x.data.subarray(0, 6 * 37), shape };
    engine.gatedActivation(x, { out: over });
    expectClose(over, want, 'out over x, engine');
    const plain = tensor(x0.data, x0.shape), overPlain = { data: plain.data.subarray(0, 6 * 37), shape };
    engine.gatedActivation(plain, { activation: 'gelu-tanh', out: overPlain });
    expectClose(overPlain, gatedOracle(x0, 'gelu-tanh'), 'out over x, plain');
    x.dispose(); eout.dispose();
  });

  it('returns at once for zero sizes', () => {
    expect(engine.gatedActivation(tensor([], [0, 6])).shape).toEqual([0, 3]);
    expect(engine.gatedActivation(tensor([], [3, 0])).shape).toEqual([3, 0]);
    const huge = { data: new Float32Array(0), shape: [1e9, 0] };
    expect(engine.gatedActivation(huge, { activation: 'gelu-tanh' }).shape).toEqual([1e9, 0]);
    expect(engine.gatedActivation(huge, { out: huge })).toBe(huge);
  });

  it('refuses bad arguments with TypeError or RangeError naming them, and stays usable', () => {
    const x = random([2, 6], 1);
    const bad: [() => unknown, ErrorConstructor, RegExp][] = [
      [() => engine.gatedActivation('x' as never), TypeError, /gatedActivation: x: expected a Tensor/],
      [() => engine.gatedActivation({ data: new Float32Array(5), shape: [2, 3] }), RangeError, /gatedActivation: x: shape \[2, 3\] needs 6 values, data holds 5/],
      [() => engine.gatedActivation(tensor([1], [])), RangeError, /gatedActivation: x must be at least 1-D/],
      [() => engine.gatedActivation(random([2, 5], 2)), RangeError, /gatedActivation: x: the last size must be even .* got shape \[2, 5\]/],
      [() => engine.gatedActivation(x, { activation: 'gelu' } as never), RangeError, /gatedActivation: options.activation must be 'silu' or 'gelu-tanh', got 'gelu'/],
      [() => engine.gatedActivation(x, { activation: 1 } as never), TypeError, /gatedActivation: options.activation must be 'silu' or 'gelu-tanh', got a number/],
      [() => engine.gatedActivation(x, { out: random([2, 6], 3) }), RangeError, /gatedActivation: options.out: expected shape \[2, 3\] \(the shape of the result\), got \[2, 6\]/],
      [() => engine.gatedActivation(x, { out: {} } as never), TypeError, /gatedActivation: options.out: data must be a Float32Array/],
      [() => engine.gatedActivation(x, 'silu' as never), TypeError, /gatedActivation: options must be an object/],
      // out is checked before the activation's name
      [() => engine.gatedActivation(x, { activation: 'relu' as never, out: random([3], 3) }), RangeError, /options.out/],
    ];
    for (const [call, kind, message] of bad) {
      expect(call).toThrow(kind);
      expect(call).toThrow(message);
      expectClose(engine.gatedActivation(x), gatedOracle(x), 'after an error');
    }
  });
});

describe.each(all.map((e) => [e.name, e] as const))('softcap on %s', (_, engine: Engine) => {
  const resident = (t: Tensor) => { const r = engine.tensor(t.shape); r.data.set(t.data); return r; };

  it.each(TAIL_SIZES)('%i elements, caps 30 and 50 (Gemma 2), 1 and 0.01', (n) => {
    const x = random([2, n], n, 80);
    for (const cap of [30, 50, 1, 0.01]) expectClose(engine.softcap(x, cap), softcapOracle(x, cap), `n=${n}, cap ${cap}`);
  });

  it('gives ±cap for ±Infinity, NaN for NaN, and no NaN for huge or tiny values', () => {
    for (const cap of [30, 1e-3, 1e6]) {
      const x = tensor([...SPECIAL, ...SPECIAL.slice(0, 5)], [SPECIAL.length + 5]);
      const y = engine.softcap(x, cap);
      expectClose(y, softcapOracle(x, cap), `cap ${cap}`);
      expect(y.data[1]).toBe(Math.fround(cap));
      expect(y.data[2]).toBe(-Math.fround(cap));
      expect(Number.isNaN(y.data[0])).toBe(true);
      expect(y.data.slice(3).some((v, t) => Number.isNaN(v) && t !== SPECIAL.length - 3)).toBe(false);
      expect(Object.is(y.data[SPECIAL.findIndex((v) => Object.is(v, -0))], -0)).toBe(true);
    }
  });

  it('keeps a small relative error near 0 too (tanh below 2e-7 relative), whatever the cap', () => {
    const g = grid(12, 40000);
    expect(worstRelative(g, engine.softcap(tensor(g, [g.length]), 1).data, Math.tanh, 1e-37)).toBeLessThan(2e-7);
    // a large cap: the result is about x, within the tolerance at any size
    const x = random([1000], 3, 5);
    expectClose(engine.softcap(x, 1e6), softcapOracle(x, 1e6));
    expectClose(engine.softcap(x, 2 ** 126), x);
  });

  it('writes into out = x, a plain out, engine tensors in and out, and through a copy when out overlaps x partly', () => {
    const shape = [5, 67], x0 = random(shape, 1, 90), want = softcapOracle(x0, 30);
    const x = tensor(x0.data, shape);
    expect(engine.softcap(x, 30, { out: x })).toBe(x);
    expectClose(x, want, 'out = x');
    const out = tensor(new Float32Array(5 * 67), shape);
    expect(engine.softcap(x0, 30, { out })).toBe(out);
    expectClose(out, want, 'plain out');
    const xe = resident(x0), oe = engine.tensor(shape);
    expect(engine.softcap(xe, 30, { out: oe })).toBe(oe);
    expectClose(oe, want, 'engine x and out');
    expectClose(engine.softcap(xe, 30), want, 'engine x');
    engine.softcap(xe, 30, { out: xe });
    expectClose(xe, want, 'engine x in place');
    const both = new Float32Array(6 * 67);
    both.set(x0.data);
    const to = { data: both.subarray(67), shape };
    engine.softcap({ data: both.subarray(0, 5 * 67), shape }, 30, { out: to });
    expectClose(to, want, 'out shifted by a row');
    xe.dispose(); oe.dispose();
  });

  it('returns at once for zero sizes', () => {
    expect(engine.softcap(tensor([], [0]), 30).shape).toEqual([0]);
    const huge = { data: new Float32Array(0), shape: [1e9, 0] };
    expect(engine.softcap(huge, 30).shape).toEqual([1e9, 0]);
    expect(engine.softcap(huge, 30, { out: huge })).toBe(huge);
  });

  it('refuses bad arguments with TypeError or RangeError naming them, and stays usable', () => {
    const x = random([2, 3], 1, 50);
    const bad: [() => unknown, ErrorConstructor, RegExp][] = [
      [() => engine.softcap(null as never, 30), TypeError, /softcap: x: expected a Tensor/],
      [() => engine.softcap(x, '30' as never), TypeError, /softcap: cap must be a number, got a string/],
      [() => engine.softcap(x, undefined as never), TypeError, /softcap: cap must be a number, got undefined/],
      [() => engine.softcap(x, 0), RangeError, /softcap: cap must be a finite number > 0, got 0/],
      [() => engine.softcap(x, -30), RangeError, /softcap: cap must be a finite number > 0, got -30/],
      [() => engine.softcap(x, NaN), RangeError, /softcap: cap must be a finite number > 0, got NaN/],
      [() => engine.softcap(x, Infinity), RangeError, /softcap: cap must be a finite number > 0, got Infinity/],
      [() => engine.softcap(x, 1e-40), RangeError, /softcap: cap must be in \[2\^-126, 2\^126\]/],
      [() => engine.softcap(x, 1e39), RangeError, /softcap: cap must be in \[2\^-126, 2\^126\]/],
      [() => engine.softcap(x, 30, { out: random([3, 2], 2) }), RangeError, /softcap: options.out: expected shape \[2, 3\] \(the shape of the result\), got \[3, 2\]/],
      [() => engine.softcap(x, 30, { out: 'out' } as never), TypeError, /softcap: options.out: expected a Tensor/],
      [() => engine.softcap(x, 30, 7 as never), TypeError, /softcap: options must be an object/],
      // out is checked before cap
      [() => engine.softcap(x, -1, { out: random([1], 2) }), RangeError, /softcap: options.out/],
    ];
    for (const [call, kind, message] of bad) {
      expect(call).toThrow(kind);
      expect(call).toThrow(message);
      expectClose(engine.softcap(x, 30), softcapOracle(x, 30), 'after an error');
    }
  });
});

describe('add, gatedActivation and softcap over threads', async () => {
  const [one, two, three] = await Promise.all([1, 2, 3].map((t) => splitContext(t)));
  // each big enough for a real split: more than MIN_PARALLEL_WORK (src/wasm/parallel.ts, as weighed by the wrappers)
  const a = random([1100, 1001], 1, 3), b = random([1100, 1001], 2, 3);
  const x = random([201, 2 * 701], 3, 6), s = random([401, 403], 4, 60);
  type Run = (ctx: Awaited<ReturnType<typeof splitContext>>) => Tensor;
  const runs: Record<string, Run> = {
    add: (c) => wasmAdd(c, a, b),
    silu: (c) => wasmGated(c, x),
    'gelu-tanh': (c) => wasmGated(c, x, { activation: 'gelu-tanh' }),
    softcap: (c) => wasmSoftcap(c, s, 30),
  };

  it.each(Object.entries(runs))('%s: 2 or 3 shares give the same bits as one call', (_, run) => {
    const y1 = run(one);
    expect(sameBits(run(two).data, y1.data)).toBe(true);
    expect(sameBits(run(three).data, y1.data)).toBe(true);
  });

  it('and the results are right', () => {
    expectClose(runs.add(two), addOracle(a, b));
    expectClose(runs['gelu-tanh'](three), gatedOracle(x, 'gelu-tanh'));
    expectClose(runs.softcap(two), softcapOracle(s, 30));
  });

  // worker threads run dist/: only once it has been built with these kernels
  describe.skipIf(!distCurrent)('on worker threads (dist/ built with these kernels)', async () => {
    const engine1 = await createEngine(), engine2 = await createEngine({ threads: 2 });
    afterAll(() => { engine1.dispose(); engine2.dispose(); });
    const cases: Record<string, (e: Engine) => Tensor> = {
      add: (e) => e.add(a, b),
      silu: (e) => e.gatedActivation(x),
      'gelu-tanh': (e) => e.gatedActivation(x, { activation: 'gelu-tanh' }),
      softcap: (e) => e.softcap(s, 30),
    };
    it.each(Object.entries(cases))('%s: 2 threads give the same bits as 1', (_, run) => {
      expect(engine2.info.threads).toBe(2);
      expect(sameBits(run(engine2).data, run(engine1).data)).toBe(true);
    });
  });
});
