// batchAttention over assembly/kernels/pagedAttention.ts: the new rows are turned by rotary in the
// arena, appended into the pool's blocks, and every (token, query head) attends over its sequence's
// blocks where they lie; threads take shares of those units. Every buffer of the call is taken before
// the pool changes, so a call refused by the memory limit leaves every sequence as it was.
import { appendBatch, outputSize, planBatchAttention, type BatchPlan } from '../core/batchPlan.js';
import { formatCall, type Tensor } from '../core/tensor.js';
import type { BatchAttentionOptions } from '../core/servingTypes.js';
import type { WasmContext } from './context.js';
import { poolBlocks } from './kvPool.js';
import { rotaryAt } from './rotary.js';

/** Token-major rows of H heads turned at their tokens' positions, in a copy (or as they are, without rotary). */
function turnedRows(ctx: WasmContext, p: BatchPlan, x: number, H: number): number {
  if (!p.rotary) return x;
  const out = ctx.arena.allocF32(p.T * H * p.D);
  const rowPosition = Int32Array.from({ length: p.T * H }, (_, r) => Math.floor(r / H));
  rotaryAt(ctx, p.rotary, out, x, p.T * H, p.D, p.positions, rowPosition);
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
  if (!p.pool) return; // no sequences: T = 0
  const pool = p.pool, bs = pool.blockSize;
  const qr = turnedRows(ctx, p, pq, Hq), kr = turnedRows(ctx, p, pk, Hkv);
  // the block tables after the call, one run per sequence, and each token's (tableAt, kvLength, position)
  const tableAt = new Int32Array(p.sequences.length);
  let tableLength = 0;
  p.sequences.forEach((_, i) => { tableAt[i] = tableLength; tableLength += Math.ceil((p.pastLens[i] + p.queryLens[i]) / bs); });
  const ptables = arena.allocF32(tableLength), pinfo = arena.allocF32(T * 3);
  const scratch = arena.perThread(kernels.paged_scratch_f32(p.maxLength, Dv), parallel.threads);
  const palibi = p.alibiSlopes ? arena.input(p.alibiSlopes, 'options.alibiSlopes') : 0;
  const psinks = p.sinks ? arena.input(p.sinks, 'options.sinks') : 0;
  // every buffer is taken (and room for the caller's): nothing fails from here on, and the pool changes
  arena.ensure(laterBytes);
  const memory = new Float32Array(arena.memory.buffer);
  appendBatch(p, memory, kr >> 2, memory, pv >> 2);
  const tables = new Int32Array(arena.memory.buffer, ptables, tableLength), info = new Int32Array(arena.memory.buffer, pinfo, T * 3);
  p.sequences.forEach((s, i) => tables.set(s.table, tableAt[i]));
  for (let t = 0; t < T; t++) {
    const s = p.rowSequence[t];
    info[3 * t] = tableAt[s]; info[3 * t + 1] = p.sequences[s].length; info[3 * t + 2] = p.positions[t];
  }
  const { k, v } = poolBlocks(arena, pool)!;
  const work = Math.max(1, Math.ceil(p.maxLength / 2)) * (D + Dv);
  parallel.run('paged_attention_f32', T * Hq, work, (t, u0, u1) => [
    pout, scratch(t), qr, k, v, ptables, pinfo, Hq, Hkv, D, Dv, bs, p.scale, p.softcap, p.causal ? 1 : 0,
    p.windowLeft, p.windowRight, palibi, psinks, p.maxLength, u0, u1,
  ]);
}

export function batchAttention(ctx: WasmContext, query: Tensor, key: Tensor, value: Tensor, options: BatchAttentionOptions): { output: Tensor } {
  const { arena } = ctx;
  const p = planBatchAttention('batchAttention', query, key, value, options, (pool) => poolBlocks(arena, pool) !== null);
  arena.checkOut(p.out);
  return arena.call(() => formatCall('batchAttention', { query: p.query.shape, key: p.key.shape, value: p.value.shape }), () => {
    const pq = arena.input(p.query, 'query'), pk = arena.input(p.key, 'key'), pv = arena.input(p.value, 'value');
    const pout = arena.allocF32(outputSize(p));
    batchAttentionAt(ctx, p, pq, pk, pv, pout);
    return { output: arena.result(pout, outputSize(p), [p.T, p.Hq, p.Dv], p.out) };
  });
}
