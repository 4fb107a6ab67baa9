// Writing rows into a KV pool's blocks in its storage format, and reading them back as float32
// (src/reference/kvFormats.ts defines the formats; these compute the same bits).
//
//   src rows    token-major [n, h, d] float32
//   slots[i]    where row i goes: block · bs + slot
//   pool        [h, blocks, bs, d] elements of the format (each kv head's blocks side by side, so that
//               a sequence's consecutive blocks are one stream for the kernels); scales [h, blocks, bs]
//               float32: int8's row scales; for binary16, 1 where the row holds an Infinity or a NaN
//               (read exactly), else 0. headRows = blocks · bs
import { load1, toHalf } from '../inline/kvFormats';

/** Element index of (slot, head) rows of d elements; scales use d = 1. */
// @ts-ignore: decorator
@inline function rowAt(si: i32, g: i32, headRows: i32, d: i32): i32 {
  return (g * headRows + si) * d;
}

export function kv_store_f32(pool: usize, scales: usize, src: usize, n: i32, h: i32, d: i32, slots: usize, headRows: i32): void {
  for (let i = 0; i < n; i++) {
    const si = load<i32>(slots + (<usize>i << 2));
    for (let g = 0; g < h; g++) memory.copy(pool + (<usize>rowAt(si, g, headRows, d) << 2), src + (<usize>((i * h + g) * d) << 2), <usize>d << 2);
  }
}

export function kv_store_f16(pool: usize, scales: usize, src: usize, n: i32, h: i32, d: i32, slots: usize, headRows: i32): void {
  for (let i = 0; i < n; i++) {
    const si = load<i32>(slots + (<usize>i << 2));
    for (let g = 0; g < h; g++) {
      const to = pool + (<usize>rowAt(si, g, headRows, d) << 1), from = src + (<usize>((i * h + g) * d) << 2);
      let special: f32 = 0;
      for (let c = 0; c < d; c++) {
        const x = toHalf(load<f32>(from + (<usize>c << 2)));
        if ((x & 0x7c00) == 0x7c00) special = 1;
        store<u16>(to + (<usize>c << 1), x);
      }
      store<f32>(scales + (<usize>rowAt(si, g, headRows, 1) << 2), special);
    }
  }
}

export function kv_store_i8(pool: usize, scales: usize, src: usize, n: i32, h: i32, d: i32, slots: usize, headRows: i32): void {
  for (let i = 0; i < n; i++) {
    const si = load<i32>(slots + (<usize>i << 2));
    for (let g = 0; g < h; g++) {
      const to = pool + <usize>rowAt(si, g, headRows, d), from = src + (<usize>((i * h + g) * d) << 2);
      let maxAbs: f32 = 0;
      for (let c = 0; c < d; c++) maxAbs = max<f32>(maxAbs, abs<f32>(load<f32>(from + (<usize>c << 2))));
      const s: f32 = maxAbs / 127.0;
      store<f32>(scales + (<usize>rowAt(si, g, headRows, 1) << 2), s);
      for (let c = 0; c < d; c++) {
        const q: f32 = s == 0 ? 0 : min<f32>(127, max<f32>(-127, nearest<f32>(load<f32>(from + (<usize>c << 2)) / s)));
        store<i8>(to + <usize>c, isNaN(q) ? 0 : <i8><i32>q); // a NaN row: q = 0 under a NaN scale
      }
    }
  }
}

/** Reads rows back as float32 [n, h, d] (int8: q · s). */
// @ts-ignore: decorator
@inline function loadRows<T>(dst: usize, pool: usize, scales: usize, n: i32, h: i32, d: i32, slots: usize, headRows: i32): void {
  for (let i = 0; i < n; i++) {
    const si = load<i32>(slots + (<usize>i << 2));
    for (let g = 0; g < h; g++) {
      const row = pool + (<usize>rowAt(si, g, headRows, d) * sizeof<T>()), to = dst + (<usize>((i * h + g) * d) << 2);
      const s: f32 = sizeof<T>() == 1 ? load<f32>(scales + (<usize>rowAt(si, g, headRows, 1) << 2)) : 1;
      for (let c = 0; c < d; c++) store<f32>(to + (<usize>c << 2), sizeof<T>() == 1 ? load1<T>(row, c) * s : load1<T>(row, c));
    }
  }
}

export function kv_load_f32(dst: usize, pool: usize, scales: usize, n: i32, h: i32, d: i32, slots: usize, headRows: i32): void { loadRows<f32>(dst, pool, scales, n, h, d, slots, headRows); }
export function kv_load_f16(dst: usize, pool: usize, scales: usize, n: i32, h: i32, d: i32, slots: usize, headRows: i32): void { loadRows<u16>(dst, pool, scales, n, h, d, slots, headRows); }
export function kv_load_i8(dst: usize, pool: usize, scales: usize, n: i32, h: i32, d: i32, slots: usize, headRows: i32): void { loadRows<i8>(dst, pool, scales, n, h, d, slots, headRows); }
