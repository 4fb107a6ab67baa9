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

/** The number of elements of a shape (1 for a scalar shape `[]`). */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function checkShape(name: string, shape: unknown): readonly number[] {
  if (!Array.isArray(shape)) throw new TypeError(`${name}: shape must be an array of sizes, got ${shape === null ? 'null' : typeof shape}`);
  for (const d of shape) {
    if (typeof d !== 'number') throw new TypeError(`${name}: shape ${formatShape(shape)} holds a ${typeof d}, expected integer sizes`);
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`${name}: shape ${formatShape(shape)} must hold non-negative integers`);
  }
  return shape;
}

/**
 * Makes a tensor, copying `data` into a fresh `Float32Array`.
 * @param data values in row-major order; anything array-like of numbers
 * @param shape sizes of each axis; their product must equal `data.length`
 * @throws TypeError when `data` is not array-like; RangeError when the sizes do not match
 */
export function tensor(data: ArrayLike<number>, shape: readonly number[]): Tensor {
  if (data == null || typeof (data as ArrayLike<number>).length !== 'number') {
    throw new TypeError(`tensor: data must be an array-like of numbers, got ${data === null ? 'null' : typeof data}`);
  }
  checkShape('tensor', shape);
  const size = sizeOf(shape);
  if (data.length !== size) {
    throw new RangeError(`tensor: shape ${formatShape(shape)} needs ${size} values, got ${data.length}`);
  }
  return { data: Float32Array.from(data), shape: Object.freeze([...shape]) };
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
  if (data == null || typeof (data as ArrayLike<number>).length !== 'number') {
    throw new TypeError(`mask: data must be an array-like of booleans or numbers, got ${data === null ? 'null' : typeof data}`);
  }
  checkShape('mask', shape);
  const size = sizeOf(shape);
  if (data.length !== size) throw new RangeError(`mask: shape ${formatShape(shape)} needs ${size} values, got ${data.length}`);
  const frozen = Object.freeze([...shape]);
  if (data instanceof Float32Array || data instanceof Float64Array) return { data: Float32Array.from(data), shape: frozen };
  const bool = new Uint8Array(size);
  let booleans = false, additive = false;
  for (let i = 0; i < size; i++) {
    const x = data[i] as number | boolean;
    if (typeof x === 'boolean') { booleans = true; bool[i] = x ? 1 : 0; }
    else if (typeof x !== 'number') throw new TypeError(`mask: data[${i}] is a ${typeof x}, expected a boolean or a number`);
    else if (x === 1) bool[i] = 1;
    else if (x !== 0) additive = true;
  }
  if (booleans && additive) throw new TypeError('mask: data mixes booleans with numbers other than 0/1');
  if (additive) return { data: Float32Array.from(data as ArrayLike<number>), shape: frozen };
  return { data: bool, shape: frozen };
}

/** Wraps a Float32Array the caller hands over (no copy) as a tensor. */
export function fromData(data: Float32Array, shape: readonly number[]): Tensor {
  return { data, shape: Object.freeze([...shape]) };
}
