// Argument checks shared by both engines: every op validates here before it computes, so the
// engines reject exactly the same inputs with the same messages.
import { checkShape, formatShape, fromData, ownView, sizeOf, type Tensor, typedArrayName } from './tensor.js';

/** 'null', 'an array', 'a Float64Array', 'a string', …: what a value is, for error messages. */
export function describeValue(x: unknown): string {
  if (x === null || x === undefined) return String(x);
  if (Array.isArray(x)) return 'an array';
  const what = ArrayBuffer.isView(x) ? typedArrayName(x) ?? 'DataView' : typeof x;
  return `${/^[aeiouAEIOU]/.test(what) ? 'an' : 'a'} ${what}`;
}

/**
 * A tensor or mask argument as an op keeps it: read once, its data a view of our own over the
 * caller's elements (see ownView), its shape a frozen copy, and the byte offset of its data noted
 * while the view is attached (a wasm memory that grows during the call detaches it).
 */
export interface Checked<T extends Float32Array | Uint8Array = Float32Array> {
  readonly data: T;
  readonly shape: readonly number[];
  readonly byteOffset: number;
}

/** A buffer whose length can change under a view (resizable, growable): its elements are copied. */
function mayResize(buffer: ArrayBufferLike): boolean {
  const b = buffer as { resizable?: boolean; growable?: boolean };
  return b.resizable === true || b.growable === true;
}

function snapshot<T extends Float32Array | Uint8Array>(x: ArrayBufferView, kind: new (buffer: ArrayBufferLike, byteOffset: number, length: number) => T): { data: T; byteOffset: number } {
  const view = ownView(x, kind);
  if (mayResize(view.buffer)) return { data: view.slice() as T, byteOffset: 0 };
  return { data: view, byteOffset: view.byteOffset };
}

/** Reads `data` and `shape` of a tensor-like argument once each. */
function readFields(t: object): { data: unknown; shape: unknown } {
  const { data, shape } = t as { data: unknown; shape: unknown };
  return { data, shape };
}

/**
 * Checks that `t` is a Tensor with a Float32Array (of any realm) that fits its shape, and optionally
 * its rank, and returns what the op keeps of it (see Checked): use that, never `t` again.
 */
export function checkTensor(name: string, t: unknown, ranks?: readonly number[]): Checked {
  if (t === null || typeof t !== 'object' || Array.isArray(t)) {
    throw new TypeError(`${name}: expected a Tensor { data: Float32Array, shape }, got ${describeValue(t)}; tensor(data, shape) makes one`);
  }
  const fields = readFields(t);
  if (!ArrayBuffer.isView(fields.data) || typedArrayName(fields.data) !== 'Float32Array') {
    throw new TypeError(`${name}: data must be a Float32Array, got ${describeValue(fields.data)}`);
  }
  const { data, byteOffset } = snapshot(fields.data, Float32Array);
  const shape = checkShape(name, fields.shape);
  if (sizeOf(shape) !== data.length) {
    throw new RangeError(`${name}: shape ${formatShape(shape)} needs ${sizeOf(shape)} values, data holds ${data.length}`);
  }
  if (ranks && !ranks.includes(shape.length)) {
    const want = ranks.map((r) => `${r}-D`).join(' or ');
    throw new RangeError(`${name}: expected a ${want} tensor, got shape ${formatShape(shape)}`);
  }
  return Object.freeze({ data, shape, byteOffset });
}

/**
 * Checks that `x` is a typed array of `kind` (from any realm) and returns what the op keeps of it, as
 * a 1-D Checked (see Checked): a Float32Array's elements, or an Int8Array's as their bytes (a
 * Uint8Array view of them, which engines copy as they copy a Mask).
 */
export function checkArray(name: string, x: unknown, kind: 'Float32Array'): Checked;
export function checkArray(name: string, x: unknown, kind: 'Int8Array'): Checked<Uint8Array>;
export function checkArray(name: string, x: unknown, kind: 'Float32Array' | 'Int8Array'): Checked<Float32Array | Uint8Array> {
  if (!ArrayBuffer.isView(x) || typedArrayName(x) !== kind) throw new TypeError(`${name} must be ${kind === 'Int8Array' ? 'an' : 'a'} ${kind}, got ${describeValue(x)}`);
  const { data, byteOffset } = kind === 'Int8Array' ? snapshot(x, Uint8Array) : snapshot(x, Float32Array);
  return Object.freeze({ data, shape: Object.freeze([data.length]), byteOffset });
}

/** Checks that `m` is a Mask: a Uint8Array (boolean) or Float32Array (additive) that fits its shape. */
export function checkMask(name: string, m: unknown): Checked<Uint8Array | Float32Array> {
  if (m === null || typeof m !== 'object' || Array.isArray(m)) {
    throw new TypeError(`${name}: expected a Mask { data: Uint8Array | Float32Array, shape }, got ${describeValue(m)}; mask(data, shape) makes one`);
  }
  const fields = readFields(m);
  const kind = ArrayBuffer.isView(fields.data) ? typedArrayName(fields.data) : undefined;
  if (kind !== 'Uint8Array' && kind !== 'Float32Array') {
    // a wrong dtype is a wrong type (TypeError), as for a Tensor whose data is not a Float32Array
    throw new TypeError(`${name}: data must be a Uint8Array (boolean) or Float32Array (additive), got ${describeValue(fields.data)}; mask(data, shape) converts booleans, 0/1 and numbers`);
  }
  const { data, byteOffset } = kind === 'Uint8Array' ? snapshot(fields.data as ArrayBufferView, Uint8Array) : snapshot(fields.data as ArrayBufferView, Float32Array);
  const shape = checkShape(name, fields.shape);
  if (sizeOf(shape) !== data.length) {
    throw new RangeError(`${name}: shape ${formatShape(shape)} needs ${sizeOf(shape)} values, data holds ${data.length}`);
  }
  return Object.freeze({ data, shape, byteOffset });
}

/**
 * Throws when a checked argument's data no longer holds its elements: a getter read after it
 * detached or shrank its buffer. Plans call it once every argument has been read.
 */
export function checkIntact(op: string, ...args: (Checked<Float32Array | Uint8Array> | null | undefined)[]): void {
  for (const a of args) {
    if (a && a.data.length !== sizeOf(a.shape)) {
      throw new TypeError(`${op}: an argument's buffer was detached or resized while the call read its arguments`);
    }
  }
}

/** Throws a RangeError naming `name` when `actual` differs from `expected` (-1 in `expected` = any). */
export function expectShape(name: string, actual: readonly number[], expected: readonly number[], what = ''): void {
  const ok = actual.length === expected.length && expected.every((d, i) => d < 0 || d === actual[i]);
  if (!ok) {
    const exp = expected.map((d) => (d < 0 ? '*' : String(d))).join(', ');
    throw new RangeError(`${name}: expected shape [${exp}]${what ? ` (${what})` : ''}, got ${formatShape(actual)}`);
  }
}

/**
 * Reads the options an op knows, each exactly once, into a plain object (a getter that answers
 * differently on each read is read once); `undefined` and `null` mean none.
 */
export function checkOptions<T extends object>(name: string, options: unknown, keys: readonly (keyof T & string)[]): Partial<T> {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options)) throw new TypeError(`${name}: options must be an object, got ${describeValue(options)}`);
  const read: Partial<T> = {};
  for (const key of keys) {
    const value = (options as Partial<T>)[key];
    if (value !== undefined) read[key] = value;
  }
  return read;
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

/** A count of which 0 makes no sense (a pool's blocks, a cache's capacity): a positive integer. */
export function checkPositiveCount(name: string, x: unknown): number | undefined {
  if (x === undefined) return undefined;
  if (typeof x !== 'number') throw new TypeError(`${name} must be a number, got ${describeValue(x)}`);
  if (!Number.isInteger(x) || x < 1) throw new RangeError(`${name} must be a positive integer, got ${x}`);
  return x;
}

/**
 * Valid lengths: `length` of them (or one of `lengths`), each an integer in [0, max].
 * Returns them as an Int32Array.
 */
export function checkValidLens(name: string, lens: unknown, lengths: readonly number[], max: number): Int32Array {
  // a Tensor of lengths (d2l passes valid_lens as a tensor) reads as its data
  if (lens !== null && typeof lens === 'object' && 'data' in lens && 'shape' in lens) lens = (lens as Tensor).data;
  const length: unknown = lens !== null && typeof lens === 'object' ? (lens as ArrayLike<unknown>).length : undefined;
  if (typeof length !== 'number') throw new TypeError(`${name} must be an array-like of integers, got ${describeValue(lens)}`);
  const arr = lens as ArrayLike<unknown>;
  if (!lengths.includes(length)) {
    throw new RangeError(`${name}: expected length ${lengths.join(' or ')}, got ${length}`);
  }
  const out = new Int32Array(length);
  for (let i = 0; i < length; i++) {
    const v = arr[i];
    if (typeof v !== 'number') throw new TypeError(`${name}[${i}] must be a number, got ${describeValue(v)}`);
    if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${name}[${i}] must be an integer in [0, ${max}], got ${v}`);
    out[i] = v;
  }
  return out;
}

/** `options.out` of an op, checked: the caller's tensor (what the op returns) and what the op writes through. */
export interface Out {
  readonly tensor: Tensor;
  readonly checked: Checked;
}

/**
 * `options.out` of an op (already read from the options): a tensor of the result's shape to write
 * into instead of allocating (an engine tensor from engine.tensor() avoids every copy the engine
 * can); undefined when not given.
 */
export function checkOut(op: string, out: unknown, shape: readonly number[]): Out | undefined {
  if (out === undefined) return undefined;
  const checked = checkTensor(`${op}: options.out`, out);
  expectShape(`${op}: options.out`, checked.shape, shape, 'the shape of the result');
  return { tensor: out as Tensor, checked };
}

/**
 * The result of a call that has nothing to compute (its result is empty, whatever its other sizes):
 * `out` when given (it has the result's shape), else an empty tensor of `shape`.
 */
export function emptyResult(shape: readonly number[], out?: Out): Tensor {
  return out ? out.tensor : fromData(new Float32Array(0), shape);
}

/** Copies a result into `out` when given (see checkOut) and returns what the op returns. */
export function deliver(result: Tensor, out: Out | undefined): Tensor {
  if (!out) return result;
  out.checked.data.set(result.data);
  return out.tensor;
}

/**
 * A float option that both engines compute with alike: finite, at least `min`, and 0 or a magnitude
 * inside [2^-minExp, 2^maxExp], where the kernels' float32 arithmetic on it (scale · log2 e, 1 / softcap,
 * w² / 2) stays finite and non-zero. Outside that range float32 would turn it into Infinity or 0.
 */
export function checkFloat32(name: string, x: unknown, min: number, minExp: number, maxExp: number): number | undefined {
  const v = checkNumber(name, x, min);
  if (v === undefined || v === 0) return v;
  const a = Math.abs(v);
  if (a < 2 ** -minExp || a > 2 ** maxExp) {
    throw new RangeError(`${name} must be 0 or of a magnitude in [2^-${minExp}, 2^${maxExp}] (${(2 ** -minExp).toPrecision(3)} to ${(2 ** maxExp).toPrecision(3)}) so that float32 kernels can compute with it, got ${v}`);
  }
  return v;
}
