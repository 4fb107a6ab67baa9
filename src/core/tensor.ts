/** A dense float32 tensor: row-major, contiguous, `data.length === product(shape)`. */
export interface Tensor {
  readonly data: Float32Array;
  readonly shape: readonly number[];
}

/**
 * An attention mask. A `Uint8Array` mask is boolean (1 = this query may attend to this key,
 * 0 = it may not); a `Float32Array` mask is additive (added to the scaled scores, `-Infinity` allowed).
 */
export interface Mask {
  readonly data: Uint8Array | Float32Array;
  readonly shape: readonly number[];
}

/** `[2, 3]` -> `"[2, 3]"`, for error messages. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** `matmul: a [2, 3], b [3, 4]`: an op and the shapes of its arguments, for error messages. */
export function formatCall(op: string, shapes: Record<string, readonly number[]>): string {
  return `${op}: ${Object.entries(shapes).map(([name, shape]) => `${name} ${formatShape(shape)}`).join(', ')}`;
}

/** The number of elements of a shape (1 for a scalar shape `[]`). */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * The most elements a tensor, a result or a buffer of either engine may have: 2^30 float32 values
 * are 4 GiB, the whole wasm32 memory. It keeps every element index and byte offset inside what the
 * kernels' 32-bit arithmetic holds, and turns shapes like [1e200, 1e200, 0] (whose product is NaN)
 * or [1e12, 0] (empty, but a loop of 1e12 rows) into a RangeError before any memory is touched.
 */
export const MAX_ELEMENTS = 2 ** 30;

/**
 * Reads a shape once (each size read exactly once, so a getter or a Proxy cannot answer differently
 * later) and returns a frozen copy: every size a non-negative safe integer, the product of the
 * non-zero sizes at most {@link MAX_ELEMENTS}.
 */
export function checkShape(name: string, shape: unknown): readonly number[] {
  if (!Array.isArray(shape)) throw new TypeError(`${name}: shape must be an array of sizes, got ${shape === null ? 'null' : typeof shape}`);
  const length: unknown = shape.length;
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length > 64) {
    throw new RangeError(`${name}: shape must hold at most 64 sizes, got ${String(length)}`);
  }
  const copy: number[] = [];
  for (let i = 0; i < length; i++) copy.push(shape[i]);
  let nonZero = 1;
  for (const d of copy) {
    if (typeof d !== 'number') throw new TypeError(`${name}: shape ${formatShape(copy)} holds a ${d === null ? 'null' : typeof d}, expected integer sizes`);
    if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`${name}: shape ${formatShape(copy)} must hold non-negative integers (safe integers: at most 2^53 - 1)`);
    if (d > 0) nonZero *= d;
  }
  if (nonZero > MAX_ELEMENTS) {
    throw new RangeError(`${name}: shape ${formatShape(copy)} is too large: its non-zero sizes multiply to ${nonZero}, more than the ${MAX_ELEMENTS} elements (2^30 float32 values, 4 GiB) an engine's memory can hold`);
  }
  return Object.freeze(copy);
}

/**
 * Values of `data` for tensor() and mask(): typed arrays as they are; plain arrays and other
 * array-likes read once, every element a number (or a boolean where `booleans`), never a string.
 */
function readValues(op: string, data: unknown, size: number, booleans: boolean): ArrayLike<number | boolean> {
  if (ArrayBuffer.isView(data)) {
    const name = typedArrayName(data);
    if (name === undefined || name.startsWith('Big')) throw new TypeError(`${op}: data must hold numbers, got ${name ? `a ${name}` : 'a DataView'}`);
    return data as unknown as ArrayLike<number>;
  }
  const values: (number | boolean)[] = new Array(size);
  for (let i = 0; i < size; i++) {
    const x: unknown = (data as ArrayLike<unknown>)[i];
    if (typeof x !== 'number' && !(booleans && typeof x === 'boolean')) {
      throw new TypeError(`${op}: data[${i}] is ${x === null ? 'null' : typeof x === 'object' ? 'an object' : `a ${typeof x}`}, expected a number${booleans ? ' or a boolean' : ''}`);
    }
    values[i] = x;
  }
  return values;
}

/** The length of array-like `data` for tensor() and mask(), read once; a string is refused. */
function readLength(op: string, data: unknown, what: string): number {
  if (data === null || (typeof data !== 'object' && typeof data !== 'function')) {
    throw new TypeError(`${op}: data must be an array-like of ${what}, got ${data === null ? 'null' : typeof data}`);
  }
  const length: unknown = ArrayBuffer.isView(data) && typedArrayName(data) !== undefined ? typedLength(data) : (data as ArrayLike<unknown>).length;
  if (typeof length !== 'number') throw new TypeError(`${op}: data must be an array-like of ${what}, got an object without a length`);
  return length;
}

// The intrinsic getters of every typed array: they read the internal slots, so neither an own
// property that shadows `length` or `buffer` nor an object from another realm (vm, iframe) fools them.
const typedArrayProto = Object.getPrototypeOf(Int8Array.prototype) as object;
const intrinsic = (key: PropertyKey) => Object.getOwnPropertyDescriptor(typedArrayProto, key)!.get!;
const nameGetter = intrinsic(Symbol.toStringTag), lengthGetter = intrinsic('length');
const bufferGetter = intrinsic('buffer'), offsetGetter = intrinsic('byteOffset');

/** 'Float32Array', 'Uint8Array', …: the kind of typed array `x` is (from any realm), else undefined. */
export function typedArrayName(x: unknown): string | undefined {
  return nameGetter.call(x) as string | undefined;
}

function typedLength(x: object): number {
  return lengthGetter.call(x) as number;
}

/**
 * A view of our own over typed array `x`'s elements (same buffer, offset and length, read through
 * the intrinsic getters): what an op keeps of a caller's array, whatever its own properties say.
 */
export function ownView<T extends Float32Array | Uint8Array>(x: ArrayBufferView, kind: new (buffer: ArrayBufferLike, byteOffset: number, length: number) => T): T {
  const length = lengthGetter.call(x) as number;
  // a detached buffer (a view kept across a wasm memory's growth) has no elements left to view
  if (length === 0) return new kind(new ArrayBuffer(0), 0, 0);
  return new kind(bufferGetter.call(x) as ArrayBufferLike, offsetGetter.call(x) as number, length);
}

/**
 * Makes a tensor, copying `data` into a fresh `Float32Array`.
 * @param data values in row-major order; anything array-like of numbers
 * @param shape sizes of each axis; their product must equal `data.length`
 * @throws TypeError when `data` is not array-like; RangeError when the sizes do not match
 */
export function tensor(data: ArrayLike<number>, shape: readonly number[]): Tensor {
  const length = readLength('tensor', data, 'numbers');
  const frozen = checkShape('tensor', shape);
  const size = sizeOf(frozen);
  if (length !== size) {
    throw new RangeError(`tensor: shape ${formatShape(frozen)} needs ${size} values, got ${length}`);
  }
  return { data: Float32Array.from(readValues('tensor', data, size, false) as ArrayLike<number>), shape: frozen };
}

/**
 * Makes a mask. Booleans, or numbers that are all 0 or 1, become a boolean `Uint8Array` mask
 * (1 = may attend). A `Float32Array` or `Float64Array`, or numbers other than 0/1 (such as
 * `-Infinity`), become an additive `Float32Array` mask. To get an additive mask of zeros and
 * ones, pass a `Float32Array`.
 * @throws TypeError when `data` is not array-like or mixes booleans with other numbers;
 *   RangeError when the sizes do not match
 */
export function mask(data: ArrayLike<number> | ArrayLike<boolean>, shape: readonly number[]): Mask {
  const length = readLength('mask', data, 'booleans or numbers');
  const frozen = checkShape('mask', shape);
  const size = sizeOf(frozen);
  if (length !== size) throw new RangeError(`mask: shape ${formatShape(frozen)} needs ${size} values, got ${length}`);
  const values = readValues('mask', data, size, true);
  const name = ArrayBuffer.isView(data) ? typedArrayName(data) : undefined;
  if (name === 'Float32Array' || name === 'Float64Array') return { data: Float32Array.from(values as ArrayLike<number>), shape: frozen };
  const bool = new Uint8Array(size);
  let booleans = false, additive = false;
  for (let i = 0; i < size; i++) {
    const x = values[i];
    if (typeof x === 'boolean') { booleans = true; bool[i] = x ? 1 : 0; }
    else if (x === 1) bool[i] = 1;
    else if (x !== 0) additive = true;
  }
  if (booleans && additive) throw new TypeError('mask: data mixes booleans with numbers other than 0/1');
  if (additive) return { data: Float32Array.from(values as ArrayLike<number>), shape: frozen };
  return { data: bool, shape: frozen };
}

/** Wraps a Float32Array the caller hands over (no copy) as a tensor. */
export function fromData(data: Float32Array, shape: readonly number[]): Tensor {
  return { data, shape: Object.freeze([...shape]) };
}
