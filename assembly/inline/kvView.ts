// The KV view of the attention kernels (kernels/attention.ts, flashAttention.ts, pagedAttention.ts):
// where the rows of one kv head's keys (or values) lie. The row and fused kernels find its strides
// and its optional block table in the layout block (layout.ts), the paged kernel in its arguments and
// row block; a kernel reads them once per head into `head` (the head's first row), `table` (this
// batch row's or sequence's block indices, or 0) and `rows` (positions per block):
//
//   no table (tensors, a KVCache):  row j at head + j·ld                      one run of rows
//   a table (a KV pool's blocks):   row j at head + (table[j / rows]·rows + j % rows)·ld
//
// Consecutive rows of a block lie ld bytes apart, so the kernels' loops keep their stride inside a
// run (runEnd) and look the table up only where a run starts: the contiguous case is one run, and
// its loops are the ones they were before the view. Elements are float32, or (the fused and paged
// kernels) a pool's binary16 or int8, read by inline/kvFormats.ts's loaders (kvFormat).
import { LAYOUT_KV_BLOCK_ROWS, LAYOUT_KV_FORMAT, LAYOUT_KV_TABLE, LAYOUT_KV_TABLE_ENTRIES } from '../layout';

/** The view's element type: KV_F32, KV_F16 or KV_I8 (layout.ts). */
// @ts-ignore: decorator
@inline export function kvFormat(layout: usize): i32 {
  return load<i32>(layout, LAYOUT_KV_FORMAT);
}

/** Batch row bi's block indices in the layout's KV view, or 0 when rows lie in place. */
// @ts-ignore: decorator
@inline export function kvTable(layout: usize, bi: i32): usize {
  const table = <usize>load<i32>(layout, LAYOUT_KV_TABLE);
  return table == 0 ? 0 : table + (<usize>(bi * load<i32>(layout, LAYOUT_KV_TABLE_ENTRIES)) << 2);
}

/** Positions per block of the layout's KV view (read only when it has a table). */
// @ts-ignore: decorator
@inline export function kvBlockRows(layout: usize): i32 {
  return load<i32>(layout, LAYOUT_KV_BLOCK_ROWS);
}

/** The address of row j of a head whose first row is at `head`, rows `ld` bytes apart inside a run. */
// @ts-ignore: decorator
@inline export function kvRow(head: usize, table: usize, rows: i32, ld: usize, j: i32): usize {
  return head + <usize>kvRowIndex(table, rows, j) * ld;
}

/** Row j's index among its head's rows: j without a table, else table[j / rows]·rows + j % rows (int8's scales are indexed by it). */
// @ts-ignore: decorator
@inline export function kvRowIndex(table: usize, rows: i32, j: i32): i32 {
  if (table == 0) return j;
  const block = j / rows;
  return load<i32>(table + (<usize>block << 2)) * rows + (j - block * rows);
}

// A loop over many runs walks them by (block, slot), with no division per run:
//
//   for (let j = 0, block = kvBlockOf(table, rows, j0), slot = j0 - block * rows; j < n; slot = 0) {
//     const len = kvRunLength(table, rows, block, slot, n - j);
//     for (let at = kvSlot(head, table, rows, ld, block, slot), end = j + len; j < end; j++, at += ld) ...  // row j0 + j
//     block += kvBlocksSpanned(table, rows, slot, len);
//   }

/** The block holding row j (j / rows; 0 without a table, where the whole head is one run). */
// @ts-ignore: decorator
@inline export function kvBlockOf(table: usize, rows: i32, j: i32): i32 {
  return table == 0 ? 0 : j / rows;
}

/** The address of slot `slot` of the view's block `block` (without a table, of row `slot`). */
// @ts-ignore: decorator
@inline export function kvSlot(head: usize, table: usize, rows: i32, ld: usize, block: i32, slot: i32): usize {
  if (table == 0) return head + <usize>slot * ld;
  return head + <usize>(load<i32>(table + (<usize>block << 2)) * rows + slot) * ld;
}

/** Whether the table's block after `block` lies right after it in the head's rows (the two are one run). */
// @ts-ignore: decorator
@inline export function kvNextAdjacent(table: usize, block: i32): bool {
  return load<i32>(table + (<usize>(block + 1) << 2)) == load<i32>(table + (<usize>block << 2)) + 1;
}

/**
 * Rows from slot `slot` of `block` that lie ld apart, at most `left`: to the end of the block, and on
 * through the blocks after it that the table holds consecutively (a sequence's blocks taken in order
 * lie one after another in its head's rows, so a fresh prompt's blocks are one run). Without a
 * table, `left`.
 */
// @ts-ignore: decorator
@inline export function kvRunLength(table: usize, rows: i32, block: i32, slot: i32, left: i32): i32 {
  if (table == 0) return left;
  let len = rows - slot;
  for (let b = block; len < left && kvNextAdjacent(table, b); b++) len += rows;
  return min(len, left);
}

/** The blocks a run of len rows from `slot` ends past (0 without a table). */
// @ts-ignore: decorator
@inline export function kvBlocksSpanned(table: usize, rows: i32, slot: i32, len: i32): i32 {
  if (table == 0) return 0;
  let spanned = 0;
  for (let end = slot + len; end >= rows; end -= rows) spanned++;
  return spanned;
}

/** Where the run of rows lying ld apart from row j ends (kvRunLength): at `end`, or sooner. */
// @ts-ignore: decorator
@inline export function kvRunEnd(table: usize, rows: i32, j: i32, end: i32): i32 {
  if (table == 0) return end;
  const block = j / rows;
  return j + kvRunLength(table, rows, block, j - block * rows, end - j);
}
