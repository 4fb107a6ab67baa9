// Argument checks shared by both engines: every op validates here before it computes, so the
// engines reject exactly the same inputs with the same messages.
import { checkShape, formatShape, sizeOf, type Mask, type Tensor } from './tensor.js';

/** 'null', 'an array', 'a Float64Array', 'a string', …: what a value is, for error messages. */
export function describeValue(x: unknown): string {
  if (x === null || x === undefined) return String(x);
  if (Array.isArray(x)) return 'an array';
  const what = ArrayBuffer.isView(x) ? x.constructor.name : typeof x;
  return `${/^[aeiouAEIOU]/.test(what) ? 'an' : 'a'} ${what}`;
}

/** Checks that `t` is a Tensor with a Float32Array that fits its shape, and optionally its rank. */
export function checkTensor(name: string, t: unknown, ranks?: readonly number[]): Tensor {
  if (t === null || typeof t !== 'object' || Array.isArray(t)) {
    throw new TypeError(`${name}: expected a Tensor { data: Float32Array, shape }, got ${describeValue(t)}; tensor(data, shape) makes one`);
  }
  const { data, shape } = t as Tensor;
  if (!(data instanceof Float32Array)) throw new TypeError(`${name}: data must be a Float32Array, got ${describeValue(data)}`);
  checkShape(name, shape);
  if (sizeOf(shape) !== data.length) {
    throw new RangeError(`${name}: shape ${formatShape(shape)} needs ${sizeOf(shape)} values, data holds ${data.length}`);
  }
  if (ranks && !ranks.includes(shape.length)) {
    const want = ranks.map((r) => `${r}-D`).join(' or ');
    throw new RangeError(`${name}: expected a ${want} tensor, got shape ${formatShape(shape)}`);
  }
  return t as Tensor;
}

/** Checks that `m` is a Mask: a Uint8Array (boolean) or Float32Array (additive) that fits its shape. */
export function checkMask(name: string, m: unknown): Mask {
  if (m === null || typeof m !== 'object' || Array.isArray(m)) {
    throw new TypeError(`${name}: expected a Mask { data: Uint8Array | Float32Array, shape }, got ${describeValue(m)}; mask(data, shape) makes one`);
  }
  const { data, shape } = m as Mask;
  if (!(data instanceof Uint8Array) && !(data instanceof Float32Array)) {
    // a wrong dtype is a wrong type (TypeError), as for a Tensor whose data is not a Float32Array
    throw new TypeError(`${name}: data must be a Uint8Array (boolean) or Float32Array (additive), got ${describeValue(data)}; mask(data, shape) converts booleans, 0/1 and numbers`);
  }
  checkShape(name, shape);
  if (sizeOf(shape) !== data.length) {
    throw new RangeError(`${name}: shape ${formatShape(shape)} needs ${sizeOf(shape)} values, data holds ${data.length}`);
  }
  return m as Mask;
}

/** Throws a RangeError naming `name` when `actual` differs from `expected` (-1 in `expected` = any). */
export function expectShape(name: string, actual: readonly number[], expected: readonly number[], what = ''): void {
  const ok = actual.length === expected.length && expected.every((d, i) => d < 0 || d === actual[i]);
  if (!ok) {
    const exp = expected.map((d) => (d < 0 ? '*' : String(d))).join(', ');
    throw new RangeError(`${name}: expected shape [${exp}]${what ? ` (${what})` : ''}, got ${formatShape(actual)}`);
  }
}

export function checkOptions<T extends object>(name: string, options: unknown): Partial<T> {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options)) throw new TypeError(`${name}: options must be an object, got ${describeValue(options)}`);
  return options as Partial<T>;
}

export function checkBoolean(name: string, x: unknown): boolean | undefined {
  if (x === undefined) return undefined;
  if (typeof x !== 'boolean') throw new TypeError(`${name} must be a boolean, got ${describeValue(x)}`);
  return x;
}

/** A finite number, optionally at least `min`. */
export function checkNumber(name: string, x: unknown, min = -Infinity): number | undefined {
  if (x === undefined) return undefined;
  if (typeof x !== 'number') throw new TypeError(`${name} must be a number, got ${describeValue(x)}`);
  if (!Number.isFinite(x) || x < min) throw new RangeError(`${name} must be a finite number${min > -Infinity ? ` >= ${min}` : ''}, got ${x}`);
  return x;
}

/** A non-negative integer (or +Infinity when `allowInfinity`). */
export function checkCount(name: string, x: unknown, allowInfinity = false): number | undefined {
  if (x === undefined) return undefined;
  if (typeof x !== 'number') throw new TypeError(`${name} must be a number, got ${describeValue(x)}`);
  const ok = (Number.isInteger(x) && x >= 0) || (allowInfinity && x === Infinity);
  if (!ok) throw new RangeError(`${name} must be a non-negative integer, got ${x}`);
  return x;
}

/**
 * Valid lengths: `length` of them (or one of `lengths`), each an integer in [0, max].
 * Returns them as an Int32Array.
 */
export function checkValidLens(name: string, lens: unknown, lengths: readonly number[], max: number): Int32Array {
  // a Tensor of lengths (d2l passes valid_lens as a tensor) reads as its data
  if (lens !== null && typeof lens === 'object' && 'data' in lens && 'shape' in lens) lens = (lens as Tensor).data;
  if (lens === null || typeof lens !== 'object' || typeof (lens as ArrayLike<number>).length !== 'number') {
    throw new TypeError(`${name} must be an array-like of integers, got ${describeValue(lens)}`);
  }
  const arr = lens as ArrayLike<number>;
  if (!lengths.includes(arr.length)) {
    throw new RangeError(`${name}: expected length ${lengths.join(' or ')}, got ${arr.length}`);
  }
  const out = new Int32Array(arr.length);
  for (let i = 0; i < arr.length; i++) {
    const v = arr[i];
    if (typeof v !== 'number') throw new TypeError(`${name}[${i}] must be a number, got ${describeValue(v)}`);
    if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${name}[${i}] must be an integer in [0, ${max}], got ${v}`);
    out[i] = v;
  }
  return out;
}

/**
 * `options.out` of an op: a tensor of the result's shape to write into instead of allocating (an
 * engine tensor from engine.tensor() avoids every copy the engine can); undefined when not given.
 */
export function checkOut(op: string, options: unknown, shape: readonly number[]): Tensor | undefined {
  const out = (options as { out?: unknown } | null | undefined)?.out;
  if (out === undefined) return undefined;
  const t = checkTensor(`${op}: options.out`, out);
  expectShape(`${op}: options.out`, t.shape, shape, 'the shape of the result');
  return t;
}

/** Copies a result into `out` when given (see checkOut) and returns what the op returns. */
export function deliver(result: Tensor, out: Tensor | undefined): Tensor {
  if (!out) return result;
  out.data.set(result.data);
  return out;
}
