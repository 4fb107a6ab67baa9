// batchAttention: the new rows are turned by rotary in the arena, appended into the pool's blocks,
// and every (token, query head) attends over its sequence's blocks where they lie. Each sequence's
// rows are one attention call planned by ./attentionRun.ts: a prompt of many rows (fresh, or
// continuing a sequence) runs on the fused kernel, which reads the blocks through the KV view's
// block table and element type; decode rows of every sequence go to one launch of the paged kernel
// (./pagedAttention.ts), whose threads take shares of (row, kv head) units. Every buffer of the call
// is taken, or room made for it, before the pool changes, so a call refused by the memory limit
// leaves every sequence as it was.

import { appendBatch, type BatchPlan, outputSize, planBatchAttention } from '../core/batchAttentionPlan.js';
import { CAUSAL_NONE, CAUSAL_TOP_LEFT, MASK_NONE } from '../core/scaledDotProductAttentionPlan.js';
import type { BatchAttentionOptions } from '../core/servingTypes.js';
import { formatCall, type Tensor } from '../core/tensor.js';
import { KV_FORMAT_CODE } from './abi.js';
import { type AttentionCall, type AttentionProbe, probeOf } from './attentionCall.js';
import { planAttentionRun, runAttention } from './attentionRun.js';
import type { WasmContext } from './context.js';
import { appendBytes, type PoolStorage, poolStorage } from './kvPool.js';
import { launchPaged, PAGED_ROW_WORDS, pagedRowInfo, pagedScratchBytes, writePagedRow } from './pagedAttention.js';
import { rotaryTables, rotaryWithTables } from './rotaryEmbedding.js';

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
export function batchAttentionAt(ctx: WasmContext, p: BatchPlan, pq: number, pk: number, pv: number, pout: number, laterBytes = 0, probe?: AttentionProbe): void {
  const { arena } = ctx;
  const { T, Hq, Hkv, D, Dv } = p;
  if (!p.pool || T === 0) return; // no row to append or attend (however many query heads: nothing is sized by them)
  const pool = p.pool, bs = pool.blockSize;
  const angles = p.rotary && p.T > 0 ? rotaryTables(ctx, p.rotary, p.positions) : null; // one set for the queries and the keys
  const qr = turnedRows(ctx, p, angles, pq, Hq), kr = turnedRows(ctx, p, angles, pk, Hkv);
  const storage = poolStorage(arena, pool)!;
  const palibi = p.alibiSlopes ? arena.input(p.alibiSlopes, 'options.alibiSlopes') : 0;
  const psinks = p.sinks ? arena.input(p.sinks, 'options.sinks') : 0;
  // the block tables after the call, one run per sequence (filled after the appends)
  const tableAt = new Int32Array(p.sequences.length);
  let tableLength = 0;
  p.sequences.forEach((_, i) => {
    tableAt[i] = tableLength;
    tableLength += Math.ceil((p.pastLens[i] + p.queryLens[i]) / bs);
  });
  const ptables = arena.allocWords(tableLength);
  // each sequence's new rows as one attention call over the pool's blocks, planned once: a prompt
  // on the fused kernel, decode rows on the paged kernel, launched together below
  const runs = p.sequences.map((_, i) => planAttentionRun(ctx, sequenceCall(p, i, qr, pout, storage, ptables + 4 * tableAt[i], palibi, psinks, probe)));
  const paged = runs.map((r) => r.kernel === 'paged');
  const pagedRows = p.queryLens.reduce((n, rows, i) => n + (paged[i] ? rows : 0), 0);
  const pinfo = arena.allocWords(pagedRows * PAGED_ROW_WORDS);
  // room for everything that is still to allocate (the appends' slots, the prompts' launches one at
  // a time, the paged launch's scratch, the caller's): nothing fails from here on, and the pool changes
  const launches = Math.max(0, ...runs.map((r) => r.bytes)) + (pagedRows > 0 ? pagedScratchBytes(ctx, p.maxLength, D, Dv, Hq / Hkv) : 0);
  arena.ensure(laterBytes + launches + Math.max(0, ...p.queryLens.map(appendBytes)));
  appendBatch(p, kr, pv);
  const tables = new Int32Array(arena.memory.buffer, ptables, tableLength);
  p.sequences.forEach((s, i) => tables.set(s.table, tableAt[i]));
  for (const r of runs) if (r.kernel !== 'paged') runAttention(ctx, r);
  if (pagedRows === 0) return;
  // rows in an order whose every stretch costs about the same (longest, shortest, next longest, …),
  // so that the equal shares of units the threads take are equal in work too; each unit's result is
  // the same whoever computes it
  const rows: number[] = [];
  for (let t = 0; t < T; t++) if (paged[p.rowSequence[t]]) rows.push(t);
  const cost = (t: number) => (p.causal ? p.positions[t] + 1 : p.sequences[p.rowSequence[t]].length);
  rows.sort((a, b) => cost(b) - cost(a) || a - b);
  const info = pagedRowInfo(ctx, pinfo, pagedRows);
  for (let r = 0, lo = 0, hi = rows.length - 1; lo <= hi; r++) {
    const t = r % 2 === 0 ? rows[lo++] : rows[hi--], s = p.rowSequence[t];
    writePagedRow(info, r, t, tableAt[s], p.sequences[s].length, p.positions[t]);
  }
  probe?.ran.push('paged');
  launchPaged(ctx, {
    out: pout, q: qr, k: storage.k, v: storage.v, kRowExtra: storage.kRowExtra, vRowExtra: storage.vRowExtra, tables: ptables, rowInfo: pinfo, rows: pagedRows,
    Hq, Hkv, E: D, Ev: Dv, blockSize: bs, headRows: pool.blocks * bs, scale: p.scale, softcap: p.softcap, causal: p.causal,
    windowLeft: p.windowLeft, windowRight: p.windowRight, alibi: palibi, sinks: psinks,
    // a unit is one row's group of Hq / Hkv query heads over about half the longest sequence, on average
    maxLength: p.maxLength, averageLength: Math.ceil(p.maxLength / 2), format: storage.format,
  });
}

/**
 * Sequence i's n new rows (token-major in the call's buffers) attending over its past and its own
 * new rows, once they are appended: a [n, Hq, D] view of the queries, and the pool's blocks as the
 * KV view (head stride: a kv head's blocks; the sequence's block table, whose indices
 * batchAttentionAt writes at `table` after the appends), the queries at positions past + i.
 */
function sequenceCall(p: BatchPlan, i: number, qr: number, pout: number, storage: PoolStorage, table: number, alibi: number, sinks: number, probe: AttentionProbe | undefined): AttentionCall {
  const { Hq, Hkv, D, Dv } = p, n = p.queryLens[i], at = p.rowStart[i], past = p.pastLens[i];
  const pool = p.pool!, bs = pool.blockSize, headRows = pool.blocks * bs, Lk = past + n;
  const code = KV_FORMAT_CODE[storage.format], i8 = storage.format === 'i8';
  return {
    out: pout + at * Hq * Dv * 4, weights: 0, q: qr + at * Hq * D * 4, k: storage.k, v: storage.v, mask: 0, validLens: null,
    B: 1, Hq, Hkv, Lq: n, Lk, E: D, Ev: Dv, scale: p.scale, softcap: p.softcap,
    maskKind: MASK_NONE, maskStrides: [0, 0, 0, 0], causalKind: p.causal ? CAUSAL_TOP_LEFT : CAUSAL_NONE, Lpast: past,
    windowLeft: p.windowLeft, windowRight: p.windowRight, alibi, sinks, probe,
    layout: {
      q: [n * Hq * D, D, Hq * D], out: [n * Hq * Dv, Dv, Hq * Dv],
      k: [0, headRows * D, D], v: [0, headRows * Dv, Dv],
      kvTable: { at: table, entries: Math.ceil(Lk / bs), blockRows: bs },
      kvFormat: { code, kScales: i8 ? storage.kRowExtra : 0, vScales: i8 ? storage.vRowExtra : 0 },
    },
  };
}

export function batchAttention(ctx: WasmContext, query: Tensor, key: Tensor, value: Tensor, options: BatchAttentionOptions): { output: Tensor } {
  const { arena } = ctx;
  const p = planBatchAttention('batchAttention', query, key, value, options, (pool) => poolStorage(arena, pool) !== null);
  arena.checkOut(p.out);
  return arena.call(() => formatCall('batchAttention', { query: p.query.shape, key: p.key.shape, value: p.value.shape }), () => {
    const pq = arena.input(p.query, 'query'), pk = arena.input(p.key, 'key'), pv = arena.input(p.value, 'value');
    // straight into an engine-tensor out: every kernel runs after the call's last allocation, so a
    // refused call leaves out as it was
    const direct = arena.outputApart(p.out, p.query, p.key, p.value, p.alibiSlopes, p.sinks);
    const pout = direct || arena.allocF32(outputSize(p));
    batchAttentionAt(ctx, p, pq, pk, pv, pout, 0, probeOf(options));
    return { output: arena.result(pout, outputSize(p), [p.T, p.Hq, p.Dv], p.out) };
  });
}
