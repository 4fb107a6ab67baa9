// The loaders of a KV pool's storage formats, one per element type, used by every kernel that reads
// a pool (src/reference/kvFormats.ts is the readable definition of the formats):
//
//   f32  float32 as stored
//   u16  IEEE binary16 bits, widened in registers: (bits & 0x7fff) << 13 read as float32 and times
//        2^112 rebias normals and subnormals exactly; exponent 31 (Infinity, NaN) is set to 255; the sign ORed back.
//        loadScaled4 skips the rebias and the special case: its lanes are the values times 2^-112
//        (exact: normals and subnormals of binary16 stay normal or exactly subnormal in float32), for
//        rows the pool has flagged free of Infinity and NaN; callers multiply by 2^112 once per dot
//        product or weight
//   i8   int8, widened i8 -> i16 -> i32 -> f32 (the row's float32 scale is applied by the caller, once per row)
//
// `t` counts elements from `p`.

/** float32 x as binary16 bits, rounded to nearest even (src/reference/kvFormats.ts toFloat16Bits: the same bits). */
// @ts-ignore: decorator
@inline export function toHalf(x: f32): u16 {
  let bits = reinterpret<u32>(x);
  const sign = (bits >>> 16) & 0x8000;
  bits &= 0x7fffffff;
  let out: u32;
  if (bits >= 0x7f800000) out = bits > 0x7f800000 ? 0x7e00 : 0x7c00;
  else if (bits >= 0x477ff000) out = 0x7c00;
  else if (bits < 0x38800000) out = <u32>nearest<f32>(abs<f32>(x) * 16777216.0); // 2^24: subnormal units, exact
  else out = ((bits + 0xc8000fff + ((bits >>> 13) & 1)) >>> 13) & 0x7fff;
  return <u16>(out | sign);
}

/** Four binary16 values (as the low halves of i32 lanes) as float32. */
// @ts-ignore: decorator
@inline function halfToFloat4(h: v128): v128 {
  const magnitude = v128.and(h, i32x4.splat(0x7fff));
  const scaled = f32x4.mul(i32x4.shl(magnitude, 13), f32x4.splat(5.192296858534828e33)); // 2^112
  const special = i32x4.eq(v128.and(h, i32x4.splat(0x7c00)), i32x4.splat(0x7c00));
  const infNan = v128.or(i32x4.shl(v128.and(h, i32x4.splat(0x3ff)), 13), i32x4.splat(0x7f800000));
  return v128.or(v128.bitselect(infNan, scaled, special), i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16));
}

/** Elements t .. t+3 of a row of element type T, as float32. */
// @ts-ignore: decorator
@inline export function load4<T>(p: usize, t: i32): v128 {
  if (sizeof<T>() == 4) return v128.load(p + (<usize>t << 2));
  if (sizeof<T>() == 2) return halfToFloat4(v128.load16x4_u(p + (<usize>t << 1)));
  // i8: four bytes, sign-extended twice, converted
  const b = v128.load32_zero(p + <usize>t);
  return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(b)));
}

/** Element t of a row of element type T, as float32 (the same value as a lane of load4). */
// @ts-ignore: decorator
@inline export function load1<T>(p: usize, t: i32): f32 {
  if (sizeof<T>() == 4) return load<f32>(p + (<usize>t << 2));
  if (sizeof<T>() == 2) return f32x4.extract_lane(halfToFloat4(i32x4.splat(<i32>load<u16>(p + (<usize>t << 1)))), 0);
  return <f32>load<i8>(p + <usize>t);
}

/** 2^112: what loadScaled4's lanes are multiplied by to give the values. */
// @ts-ignore: decorator
@inline export const HALF_REBIAS: f32 = 5.192296858534828e33;

/** Elements t .. t+3 of a binary16 row free of Infinity and NaN, as float32 times 2^-112 (see above). */
// @ts-ignore: decorator
@inline export function loadScaled4(p: usize, t: i32): v128 {
  return halfLowScaled(v128.load64_zero(p + (<usize>t << 1)));
}

/**
 * Lanes 0..3 (low) and 4..7 (high) of eight binary16 values h, as float32 times 2^-112, for rows free of
 * Infinity and NaN: sign-extended to 32 bits and shifted left 13, the exponent and mantissa land where
 * float32 keeps them and the sign in bit 31; bits 28..30 (copies of the sign) are cleared. Three
 * operations per four values, where loadScaled4 takes five and a load.
 */
// @ts-ignore: decorator
@inline export function halfLowScaled(h: v128): v128 {
  return v128.and(i32x4.shl(i32x4.extend_low_i16x8_s(h), 13), i32x4.splat(0x8fffffff));
}

// @ts-ignore: decorator
@inline export function halfHighScaled(h: v128): v128 {
  return v128.and(i32x4.shl(i32x4.extend_high_i16x8_s(h), 13), i32x4.splat(0x8fffffff));
}

/** Sixteen int8 values b as four float32 vectors: lanes 0..3, 4..7, 8..11, 12..15. */
// @ts-ignore: decorator
@inline export function int8Quarter0(b: v128): v128 { return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(b))); }
// @ts-ignore: decorator
@inline export function int8Quarter1(b: v128): v128 { return f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(i16x8.extend_low_i8x16_s(b))); }
// @ts-ignore: decorator
@inline export function int8Quarter2(b: v128): v128 { return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(i16x8.extend_high_i8x16_s(b))); }
// @ts-ignore: decorator
@inline export function int8Quarter3(b: v128): v128 { return f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(i16x8.extend_high_i8x16_s(b))); }

/** Element t of a binary16 row free of Infinity and NaN, as float32 times 2^-112 (a lane of loadScaled4). */
// @ts-ignore: decorator
@inline export function loadScaled1(p: usize, t: i32): f32 {
  const h = <u32>load<u16>(p + (<usize>t << 1));
  return reinterpret<f32>(((h & 0x7fff) << 13) | ((h & 0x8000) << 16));
}
