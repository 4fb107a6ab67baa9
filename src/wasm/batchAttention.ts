// batchAttention over assembly/kernels/pagedAttention.ts: the new rows are turned by rotary in the
// arena, appended into the pool's blocks, and every (token, query head) attends over its sequence's
// blocks where they lie; threads take shares of those units. A prompt of many rows (fresh, or
// continuing a sequence) goes to the fused kernel instead, which reads the same blocks through the
// KV view's block table and element type (src/wasm/attention.ts). Every buffer of the call is
// taken before the pool changes, so a call refused by the memory limit leaves every sequence as it was.

import { CAUSAL_NONE, CAUSAL_TOP_LEFT, MASK_NONE } from '../core/attentionPlan.js';
import { appendBatch, type BatchPlan, outputSize, planBatchAttention } from '../core/batchPlan.js';
import type { BatchAttentionOptions } from '../core/servingTypes.js';
import { formatCall, type Tensor } from '../core/tensor.js';
import { KV_FORMAT_CODE, LAYOUT_OFFSETS } from './abi.js';
import { type AttentionCall, attentionScratchBytes, layoutArray, runAttention } from './attention.js';
import type { WasmContext } from './context.js';
import { type PoolBlocks, poolBlocks } from './kvPool.js';
import { rotaryTables, rotaryWithTables } from './rotary.js';

/** Token-major rows of H heads turned at their tokens' positions, in a copy (or as they are, without rotary). */
function turnedRows(ctx: WasmContext, p: BatchPlan, tables: { pc: number; ps: number } | null, x: number, H: number): number {
  if (!p.rotary || !tables) return x;
  const out = ctx.arena.allocF32(p.T * H * p.D);
  const rowPosition = new Int32Array(p.T * H);
  for (let r = 0; r < rowPosition.length; r++) rowPosition[r] = (r / H) | 0;
  rotaryWithTables(ctx, p.rotary, tables, out, x, p.T * H, p.D, rowPosition);
  return out;
}

/**
 * Runs batch `p` on rows in the arena: query [T, Hq, D] at pq, key [T, Hkv, D] at pk, value [T, Hkv, Dv]
 * at pv (contiguous, byte addresses); the output [T, Hq, Dv] goes to pout. Inside an arena call;
 * `laterBytes` is what the caller still allocates afterwards, made room for before the pool changes.
 */
export function batchAttentionAt(ctx: WasmContext, p: BatchPlan, pq: number, pk: number, pv: number, pout: number, laterBytes = 0): void {
  const { kernels, arena, parallel } = ctx;
  const { T, Hq, Hkv, D, Dv } = p;
  if (!p.pool || T === 0) return; // no row to append or attend (however many query heads: nothing is sized by them)
  const pool = p.pool, bs = pool.blockSize;
  const angles = p.rotary && p.T > 0 ? rotaryTables(ctx, p.rotary, p.positions) : null; // one set for the queries and the keys
  const qr = turnedRows(ctx, p, angles, pq, Hq), kr = turnedRows(ctx, p, angles, pk, Hkv);
  const blocks = poolBlocks(arena, pool)!;
  // prompts of many rows go to the fused kernel over the pool's blocks once they are appended; every
  // other row goes to the paged kernel
  const fused = fusedPrompts(ctx, p, KV_FORMAT_CODE[blocks.format]);
  // the block tables after the call, one run per sequence, and each paged row's (token, tableAt, kvLength, position)
  const tableAt = new Int32Array(p.sequences.length);
  let tableLength = 0, pagedRows = 0;
  p.sequences.forEach((_, i) => {
    tableAt[i] = tableLength;
    tableLength += Math.ceil((p.pastLens[i] + p.queryLens[i]) / bs);
    if (!fused[i]) pagedRows += p.queryLens[i];
  });
  const ptables = arena.allocF32(tableLength), pinfo = arena.allocF32(pagedRows * (LAYOUT_OFFSETS.PAGED_ROW_BYTES >> 2));
  const palibi = p.alibiSlopes ? arena.input(p.alibiSlopes, 'options.alibiSlopes') : 0;
  const psinks = p.sinks ? arena.input(p.sinks, 'options.sinks') : 0;
  // the prompts for the fused kernel, each with its layout block written now and room made for its scratch
  const prompts = p.sequences.flatMap((_, i) => (fused[i] ? [{ ...promptCall(ctx, p, i, qr, pout, blocks, ptables + 4 * tableAt[i]), alibi: palibi, sinks: psinks }] : []));
  const promptScratch = Math.max(0, ...prompts.map((c) => attentionScratchBytes(ctx, c)));
  const scratch = arena.perThread(kernels.paged_scratch_f32(p.maxLength, D, Dv, Hq / Hkv), parallel.threads);
  // every buffer is taken (and room for the appends' slots, the prompts' scratch and the caller's):
  // nothing fails from here on, and the pool changes
  arena.ensure(laterBytes + promptScratch + 4 * T + 16 * p.sequences.length);
  appendBatch(p, kr, pv);
  const tables = new Int32Array(arena.memory.buffer, ptables, tableLength), info = new Int32Array(arena.memory.buffer, pinfo, pagedRows * (LAYOUT_OFFSETS.PAGED_ROW_BYTES >> 2));
  p.sequences.forEach((s, i) => tables.set(s.table, tableAt[i]));
  for (const c of prompts) runAttention(ctx, c);
  // rows in an order whose every stretch costs about the same (longest, shortest, next longest, …),
  // so that the equal shares of units the threads take are equal in work too; each unit's result is
  // the same whoever computes it
  const rows: number[] = [];
  for (let t = 0; t < T; t++) if (!fused[p.rowSequence[t]]) rows.push(t);
  const cost = (t: number) => (p.causal ? p.positions[t] + 1 : p.sequences[p.rowSequence[t]].length);
  rows.sort((a, b) => cost(b) - cost(a) || a - b);
  const { PAGED_ROW_TOKEN, PAGED_ROW_TABLE_AT, PAGED_ROW_KV_LENGTH, PAGED_ROW_POSITION, PAGED_ROW_BYTES } = LAYOUT_OFFSETS;
  for (let r = 0, lo = 0, hi = rows.length - 1; lo <= hi; r++) {
    const t = r % 2 === 0 ? rows[lo++] : rows[hi--], s = p.rowSequence[t], at = (r * PAGED_ROW_BYTES) >> 2;
    info[at + (PAGED_ROW_TOKEN >> 2)] = t; info[at + (PAGED_ROW_TABLE_AT >> 2)] = tableAt[s];
    info[at + (PAGED_ROW_KV_LENGTH >> 2)] = p.sequences[s].length; info[at + (PAGED_ROW_POSITION >> 2)] = p.positions[t];
  }
  const { k, v, ks, vs, format } = blocks;
  // a unit is one row's group of Hq / Hkv query heads over about half the longest sequence, on average
  const work = Math.max(1, Math.ceil(p.maxLength / 2)) * (D + Dv) * (Hq / Hkv);
  parallel.run(`paged_attention_${format}`, pagedRows * Hkv, work, (t, u0, u1) => [
    pout, scratch(t), qr, k, v, ks, vs, ptables, pinfo, Hq, Hkv, D, Dv, bs, pool.blocks * bs, p.scale, p.softcap, p.causal ? 1 : 0,
    p.windowLeft, p.windowRight, palibi, psinks, p.maxLength, u0, u1,
  ]);
}

/**
 * Rows of a prompt at or above this count go to the fused kernel (src/wasm/attention.ts picks
 * within), whatever the pool's dtype and the sequence's length: measured with 14 query heads over 2
 * kv heads of 64, it ran 16 to 256 new tokens after 2,048 to 32,768 positions 1.05-1.6x faster than
 * the paged kernel over float32, 1.2-2.7x over binary16 and int8.
 */
const FUSED_MIN_ROWS = 16;

/**
 * The most scratch (all threads) a prompt's fused call may take: it packs a kv head's keys for the
 * whole sequence (and widens binary16 or int8 values), 256 bytes a position for keys of 64 (512 with
 * values of 64 widened), where the paged kernel needs 4 bytes a position per head of a group. Longer
 * sequences (262,144 positions of such float32 keys on one thread, 131,072 of binary16 or int8, half
 * on two threads) keep the paged kernel, so that a long context still fits the engine's memory.
 */
const FUSED_MAX_SCRATCH_BYTES = 64 << 20;

/** Which sequences' rows are a prompt the fused kernel runs over the pool's blocks (of format `code`, KV_FORMATS). */
function fusedPrompts(ctx: WasmContext, p: BatchPlan, code: number): boolean[] {
  const scratch = (i: number) => ctx.arena.perThreadBytes(ctx.kernels.flash_scratch_f32(p.pastLens[i] + p.queryLens[i], p.D, p.Dv, code), ctx.parallel.threads);
  return p.sequences.map((_, i) => p.queryLens[i] >= FUSED_MIN_ROWS && scratch(i) <= FUSED_MAX_SCRATCH_BYTES);
}

/**
 * Sequence i's prompt of n rows (token-major in the call's buffers) attending over its past and its
 * own new rows, once they are appended: runAttention over a [n, Hq, D] view of the queries and the
 * pool's blocks as the KV view (head stride: a kv head's blocks; the sequence's block table, whose
 * indices batchAttentionAt writes at `table` after the appends), the queries at positions past + i.
 * Its layout block is written now, before the pool changes.
 */
function promptCall(ctx: WasmContext, p: BatchPlan, i: number, qr: number, pout: number, blocks: PoolBlocks, table: number): AttentionCall {
  const { Hq, Hkv, D, Dv } = p, n = p.queryLens[i], at = p.rowStart[i], past = p.pastLens[i];
  const pool = p.pool!, bs = pool.blockSize, headRows = pool.blocks * bs, Lk = past + n;
  const code = KV_FORMAT_CODE[blocks.format], i8 = blocks.format === 'i8';
  const layout = layoutArray({
    q: [n * Hq * D, D, Hq * D], out: [n * Hq * Dv, Dv, Hq * Dv],
    k: [0, headRows * D, D], v: [0, headRows * Dv, Dv],
    kvTable: { at: table, entries: Math.ceil(Lk / bs), blockRows: bs },
    kvFormat: { code, kScales: i8 ? blocks.ks : 0, vScales: i8 ? blocks.vs : 0 },
  });
  return {
    out: pout + at * Hq * Dv * 4, weights: 0, q: qr + at * Hq * D * 4, k: blocks.k, v: blocks.v,
    mask: 0, lens: 0, B: 1, Hq, Hkv, Lq: n, Lk, E: D, Ev: Dv, scale: p.scale, softcap: p.softcap,
    maskKind: MASK_NONE, maskStrides: [0, 0, 0, 0], causal: p.causal ? CAUSAL_TOP_LEFT : CAUSAL_NONE, Lpast: past,
    windowLeft: p.windowLeft, windowRight: p.windowRight, layout: ctx.arena.write(layout), kvFormat: code,
  };
}

export function batchAttention(ctx: WasmContext, query: Tensor, key: Tensor, value: Tensor, options: BatchAttentionOptions): { output: Tensor } {
  const { arena } = ctx;
  const p = planBatchAttention('batchAttention', query, key, value, options, (pool) => poolBlocks(arena, pool) !== null);
  arena.checkOut(p.out);
  return arena.call(() => formatCall('batchAttention', { query: p.query.shape, key: p.key.shape, value: p.value.shape }), () => {
    const pq = arena.input(p.query, 'query'), pk = arena.input(p.key, 'key'), pv = arena.input(p.value, 'value');
    // straight into an engine-tensor out: every kernel runs after the call's last allocation, so a
    // refused call leaves out as it was
    const direct = arena.outputApart(p.out, p.query, p.key, p.value, p.alibiSlopes, p.sinks);
    const pout = direct || arena.allocF32(outputSize(p));
    batchAttentionAt(ctx, p, pq, pk, pv, pout);
    return { output: arena.result(pout, outputSize(p), [p.T, p.Hq, p.Dv], p.out) };
  });
}
