// Packing rows into 16-wide panels, shared by the GEMM (B read as Bᵀ) and fused attention (K):
//
//   dst[p][c] = src[row c][col0 + p]      c < 16 rows, p < depth columns, rows `ld` floats apart
//
// so that a panel row holds one column of 16 consecutive rows. Full panels go 4 rows × 4 columns
// at a time through a register transpose; a partial panel (rows < 16) and depth % 4 one element at
// a time, with missing rows zero.

// @ts-ignore: decorator
@inline const NR: i32 = 16;

/** Packs `rows` (<= 16) rows of `depth` floats (starting at src, `ld` floats apart) into one panel at dst. */
// @ts-ignore: decorator
@inline export function packPanel(dst: usize, src: usize, rows: i32, depth: i32, ld: i32): void {
  const ldb = <usize>ld << 2;
  let c = 0;
  if (rows == NR) {
    const depth4 = depth & ~3;
    for (; c < NR; c += 4) {
      const s = src + <usize>c * ldb;
      for (let p = 0; p < depth4; p += 4) {
        const o = <usize>p << 2;
        const v0 = v128.load(s + o), v1 = v128.load(s + ldb + o), v2 = v128.load(s + 2 * ldb + o), v3 = v128.load(s + 3 * ldb + o);
        const lo01 = v128.shuffle<f32>(v0, v1, 0, 4, 1, 5), hi01 = v128.shuffle<f32>(v0, v1, 2, 6, 3, 7);
        const lo23 = v128.shuffle<f32>(v2, v3, 0, 4, 1, 5), hi23 = v128.shuffle<f32>(v2, v3, 2, 6, 3, 7);
        const d = dst + (<usize>(p * NR + c) << 2);
        v128.store(d, v128.shuffle<f32>(lo01, lo23, 0, 1, 4, 5));
        v128.store(d + NR * 4, v128.shuffle<f32>(lo01, lo23, 2, 3, 6, 7));
        v128.store(d + 2 * NR * 4, v128.shuffle<f32>(hi01, hi23, 0, 1, 4, 5));
        v128.store(d + 3 * NR * 4, v128.shuffle<f32>(hi01, hi23, 2, 3, 6, 7));
      }
      for (let p = depth4; p < depth; p++) {
        for (let r = 0; r < 4; r++) store<f32>(dst + (<usize>(p * NR + c + r) << 2), load<f32>(s + <usize>r * ldb + (<usize>p << 2)));
      }
    }
  }
  for (; c < rows; c++) {
    const s = src + <usize>c * ldb;
    for (let p = 0; p < depth; p++) store<f32>(dst + (<usize>(p * NR + c) << 2), load<f32>(s + (<usize>p << 2)));
  }
  for (c = rows; c < NR; c++) for (let p = 0; p < depth; p++) store<f32>(dst + (<usize>(p * NR + c) << 2), 0);
}
