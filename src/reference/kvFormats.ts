// The storage formats of a KV pool, the readable definition (docs/ATTENTION.md, "Many sequences"); the wasm engine's
// assembly/kernels/kvStore.ts and assembly/inline/kvFormats.ts compute the same bits.
//
//   'float16'  IEEE 754 binary16, rounded to nearest even: 1 sign bit, 5 exponent bits (bias 15),
//              10 mantissa bits; subnormals below 2^-14, overflow (|x| >= 65520) to ±Infinity.
//   'int8'     each row (one position of one kv head) as q = round_half_even(x / s) in [-127, 127]
//              with one float32 scale s = max|x| / 127 per row (a zero row: s = 0, q = 0);
//              a value reads back as q · s. The arithmetic is float32's, so both engines agree bit for bit.
const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);

/** Rounds a float64 holding an exact float32 value to the nearest integer, ties to even (|v| < 2^52). */
function roundHalfEven(v: number): number {
  const big = 2 ** 52;
  return v >= 0 ? (v + big) - big : -((-v + big) - big);
}

/** The binary16 bits of float32 value x, rounded to nearest even. */
export function toFloat16Bits(x: number): number {
  f32[0] = x;
  let bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  bits &= 0x7fffffff;
  let h: number;
  if (bits >= 0x7f800000) h = bits > 0x7f800000 ? 0x7e00 : 0x7c00; // NaN (quiet), Infinity
  else if (bits >= 0x477ff000) h = 0x7c00; // 65520 and above round to Infinity
  else if (bits < 0x38800000) {
    // below 2^-14: a subnormal half, |x| · 2^24 units of 2^-24 (the product is exact)
    f32[0] = Math.abs(x);
    h = roundHalfEven(f32[0] * 2 ** 24);
  } else {
    // rebias the exponent (127 -> 15) and round the 13 dropped mantissa bits to nearest even
    h = ((bits + 0xc8000fff + ((bits >>> 13) & 1)) >>> 13) & 0x7fff;
  }
  return h | sign;
}

/** The float32 value of binary16 bits h. */
export function fromFloat16Bits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** Quantizes row x[at .. at + n) into q[to ..]: returns the row's scale s = max|x| / 127 (float32). */
export function quantizeInt8Row(x: ArrayLike<number>, at: number, n: number, q: Int8Array, to: number): number {
  let maxAbs = 0;
  for (let i = 0; i < n; i++) maxAbs = Math.max(maxAbs, Math.abs(x[at + i]));
  const s = Math.fround(maxAbs / 127);
  for (let i = 0; i < n; i++) {
    q[to + i] = s === 0 ? 0 : Math.max(-127, Math.min(127, roundHalfEven(Math.fround(x[at + i] / s))));
  }
  return s;
}
