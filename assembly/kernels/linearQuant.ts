// A linear layer's weight W [n, k] (nn.Linear's [out, in]) stored as int8 or int4 groups of g inputs
// with one float32 scale per group (API.md "New ops"; src/reference/linear.ts is the definition), the
// input rows quantized per group to int8 (Q8_0 activations), and the product
//
//   y[t, o] = b[o] + Σ_j (s_w[o, j] · s_x[t, j]) · Σ_{i in group j} q_w[o, i] · q_x[t, i]
//
// with the integer sums exact (i32) and the float part in float32, in this order for every element:
// acc = b (or 0), then for j ascending acc += (s_w · s_x) · float(isum). Nothing about an element's
// arithmetic depends on the other rows of x or on which output rows a call covers, so a row alone
// and the same row among others give the same bits, and so does any split between threads; both
// builds compute the same exact integer sums, so they give the same bits too.
//
// Quantization (weights at pack time, activations once per forward; both as the reference does; a
// weight given already quantized, q and s, is packed as is by linear_quant_pack_q):
//   int8   s = max|w| / 127 (f32 division), q = clamp(nearest(w / s), -127, 127)
//   int4   m = the first element of largest magnitude, s = m / -8, q = clamp(nearest(w / s), -8, 7)
//   a group whose s is 0, an Infinity or a NaN (a NaN anywhere in it makes s NaN) stores q = 0: its
//   products are then s · 0, NaN when s is not finite, so a non-finite weight makes its output row
//   NaN and a non-finite input makes every output of its row NaN.
//
// Packed weight: output rows in blocks of R = 4 (a last partial block padded with rows of q = 0,
// s = 0), each block its K/g groups in order, each group its 4 scales then the 4 rows' quantized
// values one row after the other, so that one pass over x's quantized group feeds 4 accumulators
// and a forward reads the weight front to back as one stream:
//
//   block b (rows 4b .. 4b+3), G = k / g groups            one group, int8 (16 + 4g bytes)
//   | group 0 | group 1 | ... | group G-1 |                | s0 s1 s2 s3 | row 4b: q[0..g) i8 | row 4b+1 | row 4b+2 | row 4b+3 |
//                                                            16 bytes      g bytes
//   one group, int4 (16 + 2g bytes): the same with each row's g values in g/2 bytes, in chunks of
//   32 inputs = 16 bytes: byte i of chunk c holds (q[32c + i] + 8) | (q[32c + 16 + i] + 8) << 4
//   (GGML's Q4_0 nibble order; the values biased to 0..15, unsigned)
//
//   int8 bytes a weight: 1 + 4/g (g = 32: 1.125); int4: 1/2 + 4/g (g = 32: 0.625)
//
// Quantized activations, one row of x per `xRowBytes` bytes:
//   | s_x[0..G) f32 | c[0..G) i32 | pad to 16 | q_x[0..k) |
//   c[j] = 8 · Σ q_x over group j (int4's bias of 8 taken back out); q_x as i16, except int4 in the
//   relaxed build (i8); int4 in the plain build stores the first 16 of every 32 values as
//   16 · q[i] − q[i + 16] (see below).
//
// Integer dot products:
//   int8, both builds   q_w widened to i16 (v128.load8x8_s), i32x4.dot_i16x8_s with q_x in i16
//   int4, plain build   8 bytes widened to u16 lanes (v128.load8x8_u): a lane is l + 16 · h, l and
//                       h the biased values (q + 8) of inputs 32c + i and 32c + 16 + i; one
//                       dot_i16x8_s of the lane with x[i + 16] and one of l (& 0x0f) with the stored
//                       16 · x[i] − x[i + 16] add up to 16 · (l · x[i] + h · x[i + 16]), so the
//                       group's sum is shifted right by 4 (exact) once (dot4)
//   int4, relaxed build i16x8.relaxed_dot_i8x16_i7x16_s(q_x i8, q_w + 8), widened by a pairwise add:
//                       the biased weights lie in 0..15, inside the 7-bit operand's range where the
//                       result is defined (every pair sum, |2 · 127 · 15|, is far inside i16, so no
//                       saturation either)
//   int4 then subtracts c[j] = 8 · Σ q_x: the same integer sum as the plain build, exactly.
//
// Rows of x: one row walks a block's groups feeding each quantized x chunk to the 4 weight rows; with
// m >= 2 two rows walk it together, each weight chunk widened or unpacked once for both ("Two rows
// of x at a time" below); an odd m's last row walks alone. Same sums, same float steps, same bits.

// @ts-ignore: decorator
@inline const R: i32 = 4;

/** Bytes of one packed group of R rows: R scales and R rows of g values of `bits` bits. */
// @ts-ignore: decorator
@inline function groupBytes(g: i32, bits: i32): i32 {
  return 16 + (bits == 8 ? R * g : (R * g) >> 1);
}

/** Bytes of the header of a quantized activation row: G scales and G sums, rounded up to 16. */
// @ts-ignore: decorator
@inline function headerBytes(k: i32, g: i32): i32 {
  return ((k / g) * 8 + 15) & ~15;
}

/** Bytes one row of quantized activations takes (see the layout above). */
// @ts-ignore: decorator
@inline function xRowBytes(k: i32, g: i32, bits: i32): i32 {
  return headerBytes(k, g) + (bits == 4 && ASC_FEATURE_RELAXED_SIMD ? k : k << 1);
}

/** Bytes linear_quant_pack writes for W [n, k] in groups of g (a multiple of 32 dividing k), bits 8 or 4. */
export function linear_quant_size(n: i32, k: i32, g: i32, bits: i32): i32 {
  return ((n + R - 1) / R) * (k / g) * groupBytes(g, bits);
}

/** Bytes of scratch linear_quant_x needs for m rows of k inputs. */
export function linear_quant_x_size(m: i32, k: i32, g: i32, bits: i32): i32 {
  return m * xRowBytes(k, g, bits);
}

/**
 * The scale of the g values at p (f32, g a multiple of 4): int8's max|v| / 127 or int4's m / -8, m
 * the first value of largest magnitude (0 when that is 0, so an all-zero group's int4 scale is -0);
 * NaN when a value is NaN. The largest magnitude comes from lane-wise maxima (exact), m from a scan.
 */
// @ts-ignore: decorator
@inline function groupScaleSimd(p: usize, g: i32, bits: i32): f32 {
  let big = f32x4.splat(0), nan = i32x4.splat(0);
  for (let i = 0; i < g; i += 4) {
    const v = v128.load(p + (<usize>i << 2));
    nan = v128.or(nan, f32x4.ne(v, v));
    big = f32x4.pmax(big, f32x4.abs(v)); // (one instruction; a NaN is answered above anyway)
  }
  if (v128.any_true(nan)) return NaN;
  const b = max(max(f32x4.extract_lane(big, 0), f32x4.extract_lane(big, 1)), max(f32x4.extract_lane(big, 2), f32x4.extract_lane(big, 3)));
  if (bits == 8) return b / 127;
  if (b == 0) return <f32>0 / -8;
  // the first lane whose magnitude is b, 4 at a time
  const target = f32x4.splat(b);
  let i = 0, hit = 0;
  while ((hit = i32x4.bitmask(f32x4.eq(f32x4.abs(v128.load(p + (<usize>i << 2))), target))) == 0) i += 4;
  return load<f32>(p + (<usize>(i + ctz(hit)) << 2)) / -8;
}

/**
 * The g float values at src (g a multiple of 32) quantized with a finite nonzero `scale` and stored
 * at `to` as packGroups stores them (int8: g bytes; int4: per 32 values, 16 bytes of nibbles + 8),
 * 16 values at a time (quantize16), narrowed to bytes, which hold every clamped value exactly.
 */
// @ts-ignore: decorator
@inline function quantizeGroupSimd(to: usize, src: usize, g: i32, bits: i32, scale: f32): void {
  const s = f32x4.splat(scale), eight = i8x16.splat(8);
  const lo = i32x4.splat(bits == 8 ? -127 : -8), hi = i32x4.splat(bits == 8 ? 127 : 7);
  for (let c = 0; c < g; c += 32) {
    const p = src + (<usize>c << 2);
    const a = quantize16(p, s, lo, hi), b = quantize16(p + 64, s, lo, hi);
    if (bits == 8) {
      v128.store(to + <usize>c, a);
      v128.store(to + <usize>c, b, 16);
    } else {
      v128.store(to + <usize>(c >> 1), v128.or(i8x16.add(a, eight), i8x16.shl(i8x16.add(b, eight), 4)));
    }
  }
}

/** The 16 floats at p quantized (quantize4, s finite and nonzero), narrowed to i8 lanes. */
// @ts-ignore: decorator
@inline function quantize16(p: usize, s: v128, lo: v128, hi: v128): v128 {
  return i8x16.narrow_i16x8_s(quantize8(p, s, lo, hi), quantize8(p + 32, s, lo, hi));
}

/** The 8 floats at p quantized (quantize4, s finite and nonzero), narrowed to i16 lanes. */
// @ts-ignore: decorator
@inline function quantize8(p: usize, s: v128, lo: v128, hi: v128): v128 {
  return i16x8.narrow_i32x4_s(quantize4(v128.load(p), s, lo, hi), quantize4(v128.load(p, 16), s, lo, hi));
}

/**
 * q = clamp(nearest(v / s), lo, hi) of 4 lanes (s finite and nonzero), as i32 lanes: the header's
 * quantization, whose nearest rounds ties to even. Rounding and conversion in one add:
 * v / s + 1.5 · 2^23 rounds to a whole number, ties to even, exactly as nearest does (its ulp is 1
 * there; |v / s| <= 128 here), and holds it in its low mantissa bits. The clamp then runs in
 * integers (one instruction each, where wasm's float min and max take several).
 */
// @ts-ignore: decorator
@inline function quantize4(v: v128, s: v128, lo: v128, hi: v128): v128 {
  const rounded = i32x4.sub(f32x4.add(f32x4.div(v, s), f32x4.splat(12582912)), i32x4.splat(0x4b400000));
  return i32x4.min_s(i32x4.max_s(rounded, lo), hi);
}

/**
 * The one walk of both packers: every 4-row block's groups, each row's scale then its g values (int8,
 * or int4 as nibbles + 8: value i low, i + 16 high, per 32), rows past n and groups whose scale is 0
 * as zeros. T = f32: `w` holds float weights [n, k], quantized here (groupScaleSimd, quantizeGroupSimd); T = i8:
 * `w` holds q [n, k] and `s` the scales [n, k / g], taken as they are.
 */
// @ts-ignore: decorator
@inline function packGroups<T>(dst: usize, w: usize, s: usize, n: i32, k: i32, g: i32, bits: i32): void {
  const G = k / g, gb = groupBytes(g, bits), rowBytes = bits == 8 ? g : g >> 1;
  const blocks = (n + R - 1) / R;
  let at = dst;
  for (let b = 0; b < blocks; b++) {
    for (let j = 0; j < G; j++) {
      for (let r = 0; r < R; r++) {
        const o = b * R + r;
        const to = at + 16 + <usize>(r * rowBytes);
        const src = w + ((<usize>o * <usize>k + <usize>(j * g)) << alignof<T>());
        let scale: f32 = 0;
        if (o < n) scale = isFloat<T>() ? groupScaleSimd(src, g, bits) : load<f32>(s + ((<usize>o * <usize>G + <usize>j) << 2));
        store<f32>(at + (<usize>r << 2), scale);
        // (a scale that is not finite quantizes every value to 0, as zero does)
        if (o >= n || scale == 0 || (isFloat<T>() && !isFinite<f32>(scale))) {
          memory.fill(to, bits == 8 ? 0 : 0x88, <usize>rowBytes);
          continue;
        }
        if (isFloat<T>()) {
          quantizeGroupSimd(to, src, g, bits, scale);
        } else if (bits == 8) {
          memory.copy(to, src, <usize>g);
        } else {
          for (let c = 0; c < g; c += 32) {
            for (let i = 0; i < 16; i++) {
              const low = <i32>load<i8>(src + <usize>(c + i)) + 8, high = <i32>load<i8>(src + <usize>(c + 16 + i)) + 8;
              store<u8>(to + <usize>((c >> 1) + i), <u8>(low | (high << 4)));
            }
          }
        }
      }
      at += gb;
    }
  }
}

/**
 * Packs W [n, k] (f32, row-major) into dst (linear_quant_size(n, k, g, bits) bytes, 16-byte aligned)
 * as bits = 8 (int8) or 4 (int4) groups of g inputs, the layout above.
 */
export function linear_quant_pack(dst: usize, w: usize, n: i32, k: i32, g: i32, bits: i32): void {
  packGroups<f32>(dst, w, 0, n, k, g, bits);
}

/**
 * Packs a weight given already quantized (src/core/linearPlan.ts checked it) into dst, exactly as
 * linear_quant_pack packs float weights that quantize to these q and s: q i8 [n, k] row-major, each
 * in [-127, 127] (bits 8) or [-8, 7] (bits 4); s f32 [n, k / g] row-major, finite. A group whose s is
 * 0 stores q = 0, as linear_quant_pack does; dst as linear_quant_pack's.
 */
export function linear_quant_pack_q(dst: usize, q: usize, s: usize, n: i32, k: i32, g: i32, bits: i32): void {
  packGroups<i8>(dst, q, s, n, k, g, bits);
}

/**
 * Quantizes m rows of x [m, k] (f32, rows k apart) per group of g into xq (linear_quant_x_size(m,
 * k, g, bits) bytes, 16-byte aligned), the activation layout above, for weights of `bits` bits.
 */
export function linear_quant_x(xq: usize, x: usize, m: i32, k: i32, g: i32, bits: i32): void {
  const G = k / g, stride = <usize>xRowBytes(k, g, bits), hb = <usize>headerBytes(k, g);
  const narrow = bits == 4 && ASC_FEATURE_RELAXED_SIMD, split = bits == 4 && !narrow;
  const lo = i32x4.splat(-127), hi = i32x4.splat(127);
  for (let t = 0; t < m; t++) {
    const row = xq + <usize>t * stride, src = x + ((<usize>t * <usize>k) << 2);
    for (let j = 0; j < G; j++) {
      const p = src + (<usize>(j * g) << 2), q = row + hb + (narrow ? <usize>(j * g) : <usize>(j * g) << 1);
      const s = groupScaleSimd(p, g, 8);
      let sums = i32x4.splat(0);
      if (s == 0 || !isFinite<f32>(s)) {
        // every q is 0 (a NaN in the group makes s NaN)
        memory.fill(q, 0, narrow ? <usize>g : <usize>g << 1);
      } else {
        const sv = f32x4.splat(s);
        for (let c = 0; c < g; c += 32) {
          const pc = p + (<usize>c << 2);
          if (narrow) {
            const a = quantize16(pc, sv, lo, hi), b = quantize16(pc + 64, sv, lo, hi);
            v128.store(q + <usize>c, a);
            v128.store(q + <usize>c, b, 16);
            sums = i32x4.add(sums, i32x4.extadd_pairwise_i16x8_s(i16x8.add(i16x8.extadd_pairwise_i8x16_s(a), i16x8.extadd_pairwise_i8x16_s(b))));
          } else {
            const a = quantize8(pc, sv, lo, hi), b = quantize8(pc + 32, sv, lo, hi);
            const c2 = quantize8(pc + 64, sv, lo, hi), d = quantize8(pc + 96, sv, lo, hi);
            // (four values of at most 127 each: a lane's sum fits i16)
            sums = i32x4.add(sums, i32x4.extadd_pairwise_i16x8_s(i16x8.add(i16x8.add(a, b), i16x8.add(c2, d))));
            const at = q + (<usize>c << 1);
            // int4, plain build: the first 16 of every 32 as 16 · q[i] − q[i + 16] (see dot4)
            v128.store(at, split ? i16x8.sub(i16x8.shl(a, 4), c2) : a);
            v128.store(at, split ? i16x8.sub(i16x8.shl(b, 4), d) : b, 16);
            v128.store(at, c2, 32);
            v128.store(at, d, 48);
          }
        }
      }
      const sum = i32x4.extract_lane(sums, 0) + i32x4.extract_lane(sums, 1) + i32x4.extract_lane(sums, 2) + i32x4.extract_lane(sums, 3);
      store<f32>(row + (<usize>j << 2), s);
      store<i32>(row + (<usize>(G + j) << 2), sum << 3);
    }
  }
}

/** [Σ lanes of a0, Σ a1, Σ a2, Σ a3] of four i32x4 (a transpose-add). */
// @ts-ignore: decorator
@inline function isums4(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  const u = i32x4.add(v128.shuffle<i32>(a0, a1, 0, 4, 1, 5), v128.shuffle<i32>(a0, a1, 2, 6, 3, 7));
  const w = i32x4.add(v128.shuffle<i32>(a2, a3, 0, 4, 1, 5), v128.shuffle<i32>(a2, a3, 2, 6, 3, 7));
  return i32x4.add(v128.shuffle<i32>(u, w, 0, 1, 4, 5), v128.shuffle<i32>(u, w, 2, 3, 6, 7));
}

/** Σ over 32 inputs of one int8 row at w with q_x (i16) in x0..x3, 4 lanes. */
// @ts-ignore: decorator
@inline function dot8(w: usize, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(v128.load8x8_s(w), x0), i32x4.dot_i16x8_s(v128.load8x8_s(w, 8), x1)),
    i32x4.add(i32x4.dot_i16x8_s(v128.load8x8_s(w, 16), x2), i32x4.dot_i16x8_s(v128.load8x8_s(w, 24), x3)),
  );
}

/**
 * Plain build: 16 · Σ (q_w + 8) · q_x over 32 inputs of one int4 row at w (16 bytes), q_x as
 * linear_quant_x stores it. A widened byte is v = l + 16 · h (l, h the biased values of inputs i and
 * i + 16); with x0/x1 holding 16 · x[i] − x[i + 16] and x2/x3 holding x[i + 16],
 * dot(v, x[i + 16]) + dot(l, 16 · x[i] − x[i + 16]) = 16 · (l · x[i] + h · x[i + 16]): one mask a
 * byte instead of two. Every term is inside i16 (|16 · 127 + 127| = 2159, v ≤ 255) and every
 * pair sum inside i32.
 */
// @ts-ignore: decorator
@inline function dot4(w: usize, x0: v128, x1: v128, x2: v128, x3: v128, lo: v128): v128 {
  const v0 = v128.load8x8_u(w), v1 = v128.load8x8_u(w, 8);
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(v0, x2), i32x4.dot_i16x8_s(v128.and(v0, lo), x0)),
    i32x4.add(i32x4.dot_i16x8_s(v1, x3), i32x4.dot_i16x8_s(v128.and(v1, lo), x1)),
  );
}

/**
 * Relaxed build: Σ (q_w + 8) · q_x over 32 inputs of one int4 row at w (16 bytes), q_x i8 in xl, xh,
 * 4 lanes. i16x8.relaxed_dot_i8x16_i7x16_s gives pair sums within ±2 · 127 · 15, so two of them add
 * in i16 before one widening pairwise add. (Not i32x4.relaxed_dot_i8x16_i7x16_add_s: Node 20's V8
 * 11.3 returns twice the dot product and drops the addend, checked on this machine.)
 */
// @ts-ignore: decorator
@inline function dot4r(w: usize, xl: v128, xh: v128, lo: v128): v128 {
  const v = v128.load(w);
  const d = i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(xl, v128.and(v, lo)), i16x8.relaxed_dot_i8x16_i7x16_s(xh, v128.and(i16x8.shr_u(v, 4), lo)));
  return i32x4.extadd_pairwise_i16x8_s(d);
}

// Two rows of x at a time (m >= 2; an odd m's last row takes the 1-row path of dot8 / dot4 / dot4r).
// Per group and weight row r, the row's 32-input chunks are loaded and widened (int8) or unpacked
// (int4) once and fed to both x rows, whose q_x are loaded again for each weight row rather than held: two rows of
// i16 q_x take 8 of V8's 16 xmm registers, and holding them spilled the rest (20% slower than
// reloading them from L1, measured). Each weight row's two sums leave as one vector, halved at once
// (so that V8, which schedules pure values late, does not keep 8 of them alive to the group's end):
//
//   rowPair   p_r = [t0 r, t1 r, t0 r, t1 r] (each lane half of a sum)      one weight row r
//   halfSums  s01 = [t0 r0, t0 r1, t1 r0, t1 r1], s23 the same for r2, r3  (whole sums)
//   shuffles  isum0 = [t0 r0..r3], isum1 = [t1 r0..r3]                    then each x row's floats
//
// The integer sums are the same exact sums whatever the order, and each row's float part runs as in
// the 1-row path (acc = b, acc += (s_w · s_x) · float(isum) for j ascending), so the bits match it.

/** Σ over 32 inputs of one int8 row, its bytes widened in w0..w3, with q_x (i16) at x, 4 lanes. */
// @ts-ignore: decorator
@inline function dot8w(w0: v128, w1: v128, w2: v128, w3: v128, x: usize): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(w0, v128.load(x)), i32x4.dot_i16x8_s(w1, v128.load(x, 16))),
    i32x4.add(i32x4.dot_i16x8_s(w2, v128.load(x, 32)), i32x4.dot_i16x8_s(w3, v128.load(x, 48))),
  );
}

/** dot4 with the row's bytes widened in v0, v1 and masked in l0, l1, q_x at x. */
// @ts-ignore: decorator
@inline function dot4w(v0: v128, v1: v128, l0: v128, l1: v128, x: usize): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(v0, v128.load(x, 32)), i32x4.dot_i16x8_s(l0, v128.load(x))),
    i32x4.add(i32x4.dot_i16x8_s(v1, v128.load(x, 48)), i32x4.dot_i16x8_s(l1, v128.load(x, 16))),
  );
}

/** dot4r before its widening: 8 i16 lanes, the row's low and high nibbles in wl, wh, q_x (i8) at x. */
// @ts-ignore: decorator
@inline function dot4rw(wl: v128, wh: v128, x: usize): v128 {
  return i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x), wl), i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 16), wh));
}

/** [a0 + a2, b0 + b2, a1 + a3, b1 + b3]: half of each lane sum (isums4's first step). */
// @ts-ignore: decorator
@inline function halfSums(a: v128, b: v128): v128 {
  return i32x4.add(v128.shuffle<i32>(a, b, 0, 4, 1, 5), v128.shuffle<i32>(a, b, 2, 6, 3, 7));
}

/**
 * halfSums of two dot4rw results with one widening: their i32 halves interleaved and added in i16.
 * A dot4rw lane holds 4 products, |4 · 127 · 15| = 7620, so the sum of two is inside i16 (15240).
 */
// @ts-ignore: decorator
@inline function halfSums16(d0: v128, d1: v128): v128 {
  return i32x4.extadd_pairwise_i16x8_s(i16x8.add(v128.shuffle<i32>(d0, d1, 0, 4, 1, 5), v128.shuffle<i32>(d0, d1, 2, 6, 3, 7)));
}

/** halfSums of two x rows' (q_x i16 at x0, x1) sums with the int8 weight row at w over g inputs (p_r). */
// @ts-ignore: decorator
@inline function rowPair8(w: usize, x0: usize, x1: usize, ug: usize): v128 {
  let p: v128;
  {
    const w0 = v128.load8x8_s(w), w1 = v128.load8x8_s(w, 8), w2 = v128.load8x8_s(w, 16), w3 = v128.load8x8_s(w, 24);
    p = halfSums(dot8w(w0, w1, w2, w3, x0), dot8w(w0, w1, w2, w3, x1));
  }
  for (let c: usize = 32; c < ug; c += 32) {
    const wc = w + c;
    const w0 = v128.load8x8_s(wc), w1 = v128.load8x8_s(wc, 8), w2 = v128.load8x8_s(wc, 16), w3 = v128.load8x8_s(wc, 24);
    p = i32x4.add(p, halfSums(dot8w(w0, w1, w2, w3, x0 + (c << 1)), dot8w(w0, w1, w2, w3, x1 + (c << 1))));
  }
  return p;
}

/** As rowPair8 for an int4 weight row at w, plain build: 16 times the sums (see dot4). */
// @ts-ignore: decorator
@inline function rowPair4(w: usize, x0: usize, x1: usize, ug: usize, lo: v128): v128 {
  let p: v128;
  {
    const v0 = v128.load8x8_u(w), v1 = v128.load8x8_u(w, 8), l0 = v128.and(v0, lo), l1 = v128.and(v1, lo);
    p = halfSums(dot4w(v0, v1, l0, l1, x0), dot4w(v0, v1, l0, l1, x1));
  }
  for (let c: usize = 32; c < ug; c += 32) {
    const wc = w + (c >> 1);
    const v0 = v128.load8x8_u(wc), v1 = v128.load8x8_u(wc, 8), l0 = v128.and(v0, lo), l1 = v128.and(v1, lo);
    p = i32x4.add(p, halfSums(dot4w(v0, v1, l0, l1, x0 + (c << 1)), dot4w(v0, v1, l0, l1, x1 + (c << 1))));
  }
  return p;
}

/** As rowPair8 for an int4 weight row at w, relaxed build (q_x i8): Σ (q_w + 8) · q_x. */
// @ts-ignore: decorator
@inline function rowPair4r(w: usize, x0: usize, x1: usize, ug: usize, lo: v128): v128 {
  let p: v128;
  {
    const v = v128.load(w), wl = v128.and(v, lo), wh = v128.and(i16x8.shr_u(v, 4), lo);
    p = halfSums16(dot4rw(wl, wh, x0), dot4rw(wl, wh, x1));
  }
  for (let c: usize = 32; c < ug; c += 32) {
    const v = v128.load(w + (c >> 1)), wl = v128.and(v, lo), wh = v128.and(i16x8.shr_u(v, 4), lo);
    p = i32x4.add(p, halfSums16(dot4rw(wl, wh, x0 + c), dot4rw(wl, wh, x1 + c)));
  }
  return p;
}

/**
 * One group's float step for one x row (the order every kernel keeps, see the header): acc + (s_w ·
 * s_x[j]) · float(isum), s_w the block's 4 weight scales, s_x[j] from the quantized row at xr.
 */
// @ts-ignore: decorator
@inline function addGroup(acc: v128, sw: v128, xr: usize, j: i32, isum: v128): v128 {
  return f32x4.add(acc, f32x4.mul(f32x4.mul(sw, v128.load32_splat(xr + (<usize>j << 2))), f32x4.convert_i32x4_s(isum)));
}

/** An int4 group's sums less c[j] = 8 · Σ q_x of the quantized row at xr (G groups): Σ q_w · q_x. */
// @ts-ignore: decorator
@inline function unbias4(isum: v128, xr: usize, G: i32, j: i32): v128 {
  return i32x4.sub(isum, v128.load32_splat(xr + (<usize>(G + j) << 2)));
}

/** y[o .. o + nr) of one output row from the 4 lanes of acc. */
// @ts-ignore: decorator
@inline function storeLanes(y: usize, acc: v128, nr: i32): void {
  if (nr == R) { v128.store(y, acc); return; }
  store<f32>(y, f32x4.extract_lane(acc, 0));
  if (nr > 1) store<f32>(y, f32x4.extract_lane(acc, 1), 4);
  if (nr > 2) store<f32>(y, f32x4.extract_lane(acc, 2), 8);
}

/** The bias of rows o .. o + nr as 4 lanes (0 past nr, or all 0 without a bias). */
// @ts-ignore: decorator
@inline function loadBias(bias: usize, o: i32, nr: i32): v128 {
  if (bias == 0) return f32x4.splat(0);
  const p = bias + (<usize>o << 2);
  if (nr == R) return v128.load(p);
  let v = f32x4.splat(0);
  v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (nr > 1) v = f32x4.replace_lane(v, 1, load<f32>(p, 4));
  if (nr > 2) v = f32x4.replace_lane(v, 2, load<f32>(p, 8));
  return v;
}

/**
 * Y[m, n] = X · Wᵀ (+ bias) for the output rows [o0, o1) (o0 a multiple of 4; threads take ranges of
 * 4-row blocks), W packed by linear_quant_pack with bits 8, X quantized by linear_quant_x. Y rows are
 * n floats apart; y and bias point at column 0. Y must not overlap the other arguments.
 * @param bias f32 [n], or 0 for none
 */
export function linear_i8(y: usize, xq: usize, bp: usize, bias: usize, m: i32, n: i32, k: i32, g: i32, o0: i32, o1: i32): void {
  const G = k / g, gb = <usize>groupBytes(g, 8), stride = <usize>xRowBytes(k, g, 8), hb = <usize>headerBytes(k, g);
  const ug = <usize>g, yn = <usize>n << 2;
  for (let o = o0; o < o1; o += R) {
    const nr = min(R, n - o);
    const wb = bp + <usize>(o / R) * <usize>G * gb;
    const start = loadBias(bias, o, nr);
    const yo = y + (<usize>o << 2);
    let t = 0;
    // two rows of x a pass over the block ("Two rows of x at a time" above), then an odd m's last row alone
    for (; t + 1 < m; t += 2) {
      const xr0 = xq + <usize>t * stride, xr1 = xr0 + stride;
      let acc0 = start, acc1 = start;
      let blk = wb, xg0 = xr0 + hb, xg1 = xr1 + hb;
      for (let j = 0; j < G; j++) {
        const w = blk + 16;
        // s01 = [t0 r0, t0 r1, t1 r0, t1 r1], s23 the same for r2, r3
        const s01 = halfSums(rowPair8(w, xg0, xg1, ug), rowPair8(w + ug, xg0, xg1, ug));
        const s23 = halfSums(rowPair8(w + 2 * ug, xg0, xg1, ug), rowPair8(w + 3 * ug, xg0, xg1, ug));
        const isum0 = v128.shuffle<i32>(s01, s23, 0, 1, 4, 5), isum1 = v128.shuffle<i32>(s01, s23, 2, 3, 6, 7);
        const sw = v128.load(blk);
        acc0 = addGroup(acc0, sw, xr0, j, isum0);
        acc1 = addGroup(acc1, sw, xr1, j, isum1);
        blk += gb;
        xg0 += ug << 1;
        xg1 += ug << 1;
      }
      storeLanes(yo + <usize>t * yn, acc0, nr);
      storeLanes(yo + <usize>(t + 1) * yn, acc1, nr);
    }
    if (t < m) {
      const xr = xq + <usize>t * stride;
      let acc = start;
      let blk = wb, xg = xr + hb;
      for (let j = 0; j < G; j++) {
        const w = blk + 16;
        // the first 32 inputs start the sums (a zero-start costs an add a row; g is often 32)
        let a0: v128, a1: v128, a2: v128, a3: v128;
        {
          const x0 = v128.load(xg), x1 = v128.load(xg, 16), x2 = v128.load(xg, 32), x3 = v128.load(xg, 48);
          a0 = dot8(w, x0, x1, x2, x3);
          a1 = dot8(w + ug, x0, x1, x2, x3);
          a2 = dot8(w + 2 * ug, x0, x1, x2, x3);
          a3 = dot8(w + 3 * ug, x0, x1, x2, x3);
        }
        for (let c: usize = 32; c < ug; c += 32) {
          const xc = xg + (c << 1);
          const x0 = v128.load(xc), x1 = v128.load(xc, 16), x2 = v128.load(xc, 32), x3 = v128.load(xc, 48);
          a0 = i32x4.add(a0, dot8(w + c, x0, x1, x2, x3));
          a1 = i32x4.add(a1, dot8(w + ug + c, x0, x1, x2, x3));
          a2 = i32x4.add(a2, dot8(w + 2 * ug + c, x0, x1, x2, x3));
          a3 = i32x4.add(a3, dot8(w + 3 * ug + c, x0, x1, x2, x3));
        }
        acc = addGroup(acc, v128.load(blk), xr, j, isums4(a0, a1, a2, a3));
        blk += gb;
        xg += ug << 1;
      }
      storeLanes(yo + <usize>t * yn, acc, nr);
    }
  }
}

/** As linear_i8 for W packed with bits 4. */
export function linear_i4(y: usize, xq: usize, bp: usize, bias: usize, m: i32, n: i32, k: i32, g: i32, o0: i32, o1: i32): void {
  const G = k / g, gb = <usize>groupBytes(g, 4), stride = <usize>xRowBytes(k, g, 4), hb = <usize>headerBytes(k, g);
  const ug = <usize>g, half = ug >> 1, yn = <usize>n << 2;
  // bytes of q_x a group
  const xgb = ASC_FEATURE_RELAXED_SIMD ? ug : ug << 1;
  for (let o = o0; o < o1; o += R) {
    const nr = min(R, n - o);
    const wb = bp + <usize>(o / R) * <usize>G * gb;
    const start = loadBias(bias, o, nr);
    const yo = y + (<usize>o << 2);
    let t = 0;
    // two rows of x a pass over the block ("Two rows of x at a time" above), then an odd m's last row alone
    for (; t + 1 < m; t += 2) {
      const xr0 = xq + <usize>t * stride, xr1 = xr0 + stride;
      let acc0 = start, acc1 = start;
      let blk = wb, xg0 = xr0 + hb, xg1 = xr1 + hb;
      for (let j = 0; j < G; j++) {
        const w = blk + 16;
        // s01 = [t0 r0, t0 r1, t1 r0, t1 r1], s23 the same for r2, r3
        let s01: v128, s23: v128;
        if (ASC_FEATURE_RELAXED_SIMD) {
          const lo = i8x16.splat(0x0f);
          s01 = halfSums(rowPair4r(w, xg0, xg1, ug, lo), rowPair4r(w + half, xg0, xg1, ug, lo));
          s23 = halfSums(rowPair4r(w + 2 * half, xg0, xg1, ug, lo), rowPair4r(w + 3 * half, xg0, xg1, ug, lo));
        } else {
          const lo = i16x8.splat(0x0f);
          s01 = i32x4.shr_s(halfSums(rowPair4(w, xg0, xg1, ug, lo), rowPair4(w + half, xg0, xg1, ug, lo)), 4);
          s23 = i32x4.shr_s(halfSums(rowPair4(w + 2 * half, xg0, xg1, ug, lo), rowPair4(w + 3 * half, xg0, xg1, ug, lo)), 4);
        }
        const isum0 = v128.shuffle<i32>(s01, s23, 0, 1, 4, 5), isum1 = v128.shuffle<i32>(s01, s23, 2, 3, 6, 7);
        const sw = v128.load(blk);
        acc0 = addGroup(acc0, sw, xr0, j, unbias4(isum0, xr0, G, j));
        acc1 = addGroup(acc1, sw, xr1, j, unbias4(isum1, xr1, G, j));
        blk += gb;
        xg0 += xgb;
        xg1 += xgb;
      }
      storeLanes(yo + <usize>t * yn, acc0, nr);
      storeLanes(yo + <usize>(t + 1) * yn, acc1, nr);
    }
    if (t < m) {
      const xr = xq + <usize>t * stride;
      let acc = start;
      let blk = wb, xg = xr + hb;
      for (let j = 0; j < G; j++) {
        const w = blk + 16;
        // the first 32 inputs start the sums, as in linear_i8
        let a0: v128, a1: v128, a2: v128, a3: v128;
        let isum: v128;
        if (ASC_FEATURE_RELAXED_SIMD) {
          const lo = i8x16.splat(0x0f);
          {
            const xl = v128.load(xg), xh = v128.load(xg, 16);
            a0 = dot4r(w, xl, xh, lo);
            a1 = dot4r(w + half, xl, xh, lo);
            a2 = dot4r(w + 2 * half, xl, xh, lo);
            a3 = dot4r(w + 3 * half, xl, xh, lo);
          }
          for (let c: usize = 32; c < ug; c += 32) {
            const xc = xg + c;
            const xl = v128.load(xc), xh = v128.load(xc, 16);
            const wc = w + (c >> 1);
            a0 = i32x4.add(a0, dot4r(wc, xl, xh, lo));
            a1 = i32x4.add(a1, dot4r(wc + half, xl, xh, lo));
            a2 = i32x4.add(a2, dot4r(wc + 2 * half, xl, xh, lo));
            a3 = i32x4.add(a3, dot4r(wc + 3 * half, xl, xh, lo));
          }
          isum = isums4(a0, a1, a2, a3);
        } else {
          const lo = i16x8.splat(0x0f);
          {
            const x0 = v128.load(xg), x1 = v128.load(xg, 16), x2 = v128.load(xg, 32), x3 = v128.load(xg, 48);
            a0 = dot4(w, x0, x1, x2, x3, lo);
            a1 = dot4(w + half, x0, x1, x2, x3, lo);
            a2 = dot4(w + 2 * half, x0, x1, x2, x3, lo);
            a3 = dot4(w + 3 * half, x0, x1, x2, x3, lo);
          }
          for (let c: usize = 32; c < ug; c += 32) {
            const xc = xg + (c << 1);
            const x0 = v128.load(xc), x1 = v128.load(xc, 16), x2 = v128.load(xc, 32), x3 = v128.load(xc, 48);
            const wc = w + (c >> 1);
            a0 = i32x4.add(a0, dot4(wc, x0, x1, x2, x3, lo));
            a1 = i32x4.add(a1, dot4(wc + half, x0, x1, x2, x3, lo));
            a2 = i32x4.add(a2, dot4(wc + 2 * half, x0, x1, x2, x3, lo));
            a3 = i32x4.add(a3, dot4(wc + 3 * half, x0, x1, x2, x3, lo));
          }
          isum = i32x4.shr_s(isums4(a0, a1, a2, a3), 4);
        }
        acc = addGroup(acc, v128.load(blk), xr, j, unbias4(isum, xr, G, j));
        blk += gb;
        xg += xgb;
      }
      storeLanes(yo + <usize>t * yn, acc, nr);
    }
  }
}

/**
 * Rows `ids` (i32 [count], each in [0, n)) of a W [n, k] packed by linear_quant_pack, dequantized
 * (float32(q · s)) and times scale, into dst [count, k] f32.
 */
export function linear_quant_rows(dst: usize, bp: usize, ids: usize, count: i32, n: i32, k: i32, g: i32, bits: i32, scale: f32): void {
  const G = k / g, gb = <usize>groupBytes(g, bits), rowBytes = bits == 8 ? g : g >> 1;
  for (let r = 0; r < count; r++) {
    const o = load<i32>(ids + (<usize>r << 2));
    const to = dst + <usize>r * (<usize>k << 2);
    let blk = bp + <usize>(o / R) * <usize>G * gb;
    const lane = o % R;
    for (let j = 0; j < G; j++) {
      const s = load<f32>(blk + (<usize>lane << 2));
      const q = blk + 16 + <usize>(lane * rowBytes);
      for (let i = 0; i < g; i++) {
        let v: i32;
        if (bits == 8) v = <i32>load<i8>(q + <usize>i);
        else {
          const c = i & ~31, p = i & 31;
          const byte = <i32>load<u8>(q + <usize>((c >> 1) + (p & 15)));
          v = (p < 16 ? byte & 15 : byte >> 4) - 8;
        }
        store<f32>(to + (<usize>(j * g + i) << 2), (<f32>v * s) * scale);
      }
      blk += gb;
    }
  }
}
