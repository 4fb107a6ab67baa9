// Rotary position embeddings (RoPE, Su et al. 2021): validation, and the angles both engines use.
//
//   pair i (0 <= i < dim/2) of a row at position p turns by θ = p · base^(-2i/dim)
//   (a, b) -> (a·cos θ − b·sin θ, b·cos θ + a·sin θ)
//   halves (Llama, GPT-NeoX):  a = x[i], b = x[i + dim/2]        interleaved (GPT-J): a = x[2i], b = x[2i + 1]
//
// With cos/sin tables [maxPositions, dim/2] (scaled variants: NTK, YaRN, Llama 3), row p of the
// tables replaces cos θ and sin θ. Features past `dim` pass through unchanged.

import type { RotaryEmbeddingOptions, RotaryOptions } from './servingTypes.js';
import { formatShape } from './tensor.js';
import {type Checked, 
  checkBoolean, checkIntact, checkNumber, checkOptions, checkOut, checkTensor, describeValue, expectShape, type Out,
} from './validate.js';

export interface RotaryPlan {
  base: number;
  dim: number;
  interleaved: boolean;
  /** The user's tables [maxPositions, dim/2], or null for `base`. */
  cos: Checked | null;
  sin: Checked | null;
}

/** Validates rotary options for rows of D features. */
export function planRotary(name: string, options: unknown, D: number): RotaryPlan {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${name} must be an object { base?, dim?, interleaved?, cos?, sin? }, got ${describeValue(options)}`);
  }
  const o = checkOptions<RotaryOptions>(name, options, ['base', 'dim', 'interleaved', 'cos', 'sin']);
  const base = checkNumber(`${name}.base`, o.base, 0) ?? 10000;
  if (!(base > 0)) throw new RangeError(`${name}.base must be a positive finite number, got ${base}`);
  const dim = o.dim === undefined ? D : o.dim;
  if (typeof dim !== 'number') throw new TypeError(`${name}.dim must be a number, got ${describeValue(dim)}`);
  if (!Number.isInteger(dim) || dim < 0 || dim % 2 !== 0 || dim > D) {
    throw new RangeError(`${name}.dim must be an even integer in [0, ${D}] (the head size), got ${dim}`);
  }
  const interleaved = checkBoolean(`${name}.interleaved`, o.interleaved) ?? false;
  let cos: Checked | null = null, sin: Checked | null = null;
  if (o.cos !== undefined || o.sin !== undefined) {
    if (o.cos === undefined || o.sin === undefined) throw new TypeError(`${name}.cos and ${name.slice(name.lastIndexOf(': ') + 2)}.sin must be given together`);
    cos = checkTensor(`${name}.cos`, o.cos, [2]);
    sin = checkTensor(`${name}.sin`, o.sin, [2]);
    expectShape(`${name}.cos`, cos.shape, [-1, dim / 2], `[maxPositions, dim / 2] with dim = ${dim}`);
    expectShape(`${name}.sin`, sin.shape, [cos.shape[0], dim / 2], `the shape of cos ${formatShape(cos.shape)}`);
  }
  return { base, dim, interleaved, cos, sin };
}

/** Checks positions: integers in [0, 2^31), below the tables' maxPositions when tables are given. */
export function checkPositions(name: string, positions: ArrayLike<number>, plan: RotaryPlan): void {
  const max = plan.cos ? plan.cos.shape[0] : 2 ** 31;
  for (let i = 0; i < positions.length; i++) {
    const p = positions[i];
    if (!Number.isInteger(p) || p < 0 || p >= max) {
      throw new RangeError(`${name}[${i}] must be an integer in [0, ${max})${plan.cos ? ' (the rows of the cos/sin tables)' : ''}, got ${p}`);
    }
  }
}

/**
 * cos θ and sin θ of every pair at each of `positions`, [positions.length, dim/2] in float64: the
 * tables' rows when given, else p · base^(-2i/dim).
 */
export function rotaryAngles(plan: RotaryPlan, positions: ArrayLike<number>): { cos: Float64Array; sin: Float64Array } {
  const half = plan.dim / 2, n = positions.length;
  const cos = new Float64Array(n * half), sin = new Float64Array(n * half);
  if (plan.cos && plan.sin) {
    const c = plan.cos.data, s = plan.sin.data;
    for (let r = 0; r < n; r++) {
      const at = positions[r] * half;
      for (let i = 0; i < half; i++) { cos[r * half + i] = c[at + i]; sin[r * half + i] = s[at + i]; }
    }
    return { cos, sin };
  }
  // θ = p · base^(-2i / dim): the frequencies once, not once per position
  const frequency = new Float64Array(half);
  for (let i = 0; i < half; i++) frequency[i] = plan.base ** ((-2 * i) / plan.dim);
  for (let r = 0; r < n; r++) {
    const p = positions[r];
    for (let i = 0; i < half; i++) {
      const theta = p * frequency[i];
      cos[r * half + i] = Math.cos(theta);
      sin[r * half + i] = Math.sin(theta);
    }
  }
  return { cos, sin };
}

/** Element indices (a, b) of pair i in a row: halves or interleaved. */
export function pairOf(plan: RotaryPlan, i: number): [number, number] {
  return plan.interleaved ? [2 * i, 2 * i + 1] : [i, i + plan.dim / 2];
}

export interface RotaryEmbeddingPlan {
  x: Checked;
  rotary: RotaryPlan;
  /** Rows of D features, each with the index of its position in `positions`. */
  rows: number; D: number;
  /** The distinct positions' list, and for each row the index into it. */
  positions: Int32Array; rowPosition: Int32Array;
  out: Out | undefined;
}

/**
 * rotaryEmbedding(x, options): x [B, H, L, D] with positions [L] or [B, L], or token-major [T, H, D]
 * with positions [T]. Each row's position is resolved once here.
 */
export function planRotaryEmbedding(x: unknown, options?: unknown): RotaryEmbeddingPlan {
  const op = 'rotaryEmbedding';
  const X = checkTensor(`${op}: x`, x, [3, 4]);
  const o = checkOptions<RotaryEmbeddingOptions & { out?: unknown }>(op, options, ['base', 'dim', 'interleaved', 'cos', 'sin', 'positions', 'out']);
  const D = X.shape[X.shape.length - 1];
  const rotary = planRotary(`${op}: options`, { base: o.base, dim: o.dim, interleaved: o.interleaved, cos: o.cos, sin: o.sin }, D);
  const fourD = X.shape.length === 4;
  const [B, H, L] = fourD ? X.shape : [1, X.shape[1], X.shape[0]];
  const out = checkOut(op, o.out, X.shape);
  // positions: one per (b, l) for 4-D, one per token for token-major; given ones are read once each
  // and checked as given (never spread over B·L: an empty x of a huge B or L has nothing to turn)
  let given: Float64Array | null = null;
  if (o.positions !== undefined) {
    let raw: unknown = o.positions;
    if (raw !== null && typeof raw === 'object' && 'data' in raw && 'shape' in raw) raw = checkTensor(`${op}: options.positions`, raw).data;
    const length: unknown = raw !== null && typeof raw === 'object' ? (raw as ArrayLike<unknown>).length : undefined;
    if (typeof length !== 'number') throw new TypeError(`${op}: options.positions must be an array-like of integers or a Tensor, got ${describeValue(raw)}`);
    const arr = raw as ArrayLike<unknown>;
    const allowed = fourD ? [L, B * L] : [L];
    if (!allowed.includes(length)) {
      throw new RangeError(`${op}: options.positions: expected length ${allowed.join(' or ')} (${fourD ? `[L] or [B, L] for x ${formatShape(X.shape)}` : `one per row of x ${formatShape(X.shape)}`}), got ${length}`);
    }
    given = new Float64Array(length);
    for (let r = 0; r < length; r++) {
      const p = arr[r];
      if (typeof p !== 'number') throw new TypeError(`${op}: options.positions[${r}] must be a number, got ${describeValue(p)}`);
      given[r] = p;
    }
    checkPositions(`${op}: options.positions`, given, rotary);
  } else if (X.data.length > 0) {
    // the default positions 0 … L − 1 (the same for every b), checked against the tables' rows
    const defaults = new Float64Array(L);
    for (let l = 0; l < L; l++) defaults[l] = l;
    checkPositions(`${op}: options.positions`, defaults, rotary);
  }
  checkIntact(op, X, out?.checked, rotary.cos, rotary.sin);
  // distinct positions, so that angles are computed once per position
  const index = new Map<number, number>();
  const positions: number[] = [];
  const rows = X.data.length === 0 ? 0 : X.data.length / D;
  const rowPosition = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    // row r is (b, h, l) for 4-D and (t, h) for token-major; its position's index in `given` is
    // b·L + l (l for positions [L]) or t
    const at = fourD ? Math.floor(r / (H * L)) * L + (r % L) : Math.floor(r / H);
    const p = given === null ? at % L : given[given.length === L ? at % L : at];
    let k = index.get(p);
    if (k === undefined) { k = positions.length; index.set(p, k); positions.push(p); }
    rowPosition[r] = k;
  }
  return { x: X, rotary, rows, D, positions: Int32Array.from(positions), rowPosition, out };
}
