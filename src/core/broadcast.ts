import { formatShape } from './tensor.js';

/**
 * Element strides that read a row-major array of shape `shape` as if it had shape `target`,
 * by the usual right-aligned broadcasting rules (a size-1 or missing axis gets stride 0).
 * Throws a RangeError naming `name` when `shape` does not broadcast to `target`.
 */
export function broadcastStrides(name: string, shape: readonly number[], target: readonly number[]): number[] {
  const fail = (): never => {
    throw new RangeError(`${name}: shape ${formatShape(shape)} does not broadcast to ${formatShape(target)}`);
  };
  if (shape.length > target.length) {
    // extra leading axes are fine only when they are all 1
    for (let i = 0; i < shape.length - target.length; i++) if (shape[i] !== 1) fail();
  }
  const strides = new Array<number>(target.length).fill(0);
  let stride = 1;
  for (let i = 1; i <= target.length; i++) {
    const s = shape.length - i;
    if (s < 0) break;
    const d = shape[s], t = target[target.length - i];
    if (d === t) strides[target.length - i] = d === 1 ? 0 : stride;
    else if (d !== 1) fail();
    stride *= d;
  }
  return strides;
}

/** The broadcast of two leading-dimension lists (numpy rules), or a RangeError naming both. */
export function broadcastShapes(nameA: string, a: readonly number[], nameB: string, b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 1; i <= n; i++) {
    const x = a.length - i >= 0 ? a[a.length - i] : 1;
    const y = b.length - i >= 0 ? b[b.length - i] : 1;
    if (x !== y && x !== 1 && y !== 1) {
      throw new RangeError(`${nameA} ${formatShape(a)} and ${nameB} ${formatShape(b)}: leading dimensions do not broadcast`);
    }
    out[n - i] = x === 1 ? y : x;
  }
  return out;
}

/** Offset of flat index `index` of `target` into an array read with `strides` (from broadcastStrides). */
export function broadcastOffset(index: number, target: readonly number[], strides: readonly number[]): number {
  let offset = 0;
  for (let i = target.length - 1; i >= 0; i--) {
    const d = target[i];
    offset += (index % d) * strides[i];
    index = Math.floor(index / d);
  }
  return offset;
}
