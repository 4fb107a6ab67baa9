// Validation and planning of batchAttention (docs/ATTENTION.md, "Many sequences"), shared by both engines.
// Plan, then run: everything is checked and every size and block count known before any sequence or
// block changes, so a refused call leaves the pool as it was.

import { checkSequences, type PagedPool, type PagedSequence } from './kvPool.js';
import { checkPositions, planRotary, type RotaryPlan } from './rotaryEmbeddingPlan.js';
import { checkScoreOptions, checkWindow } from './scaledDotProductAttentionPlan.js';
import type { BatchAttentionOptions } from './servingTypes.js';
import { formatShape, sizeOf } from './tensor.js';
import {type Checked, 
  checkBoolean, checkCount, checkIntact, checkOptions, checkOut, checkTensor, describeValue, expectShape, type Out,
} from './validate.js';

/** The sizes and options of a batch, whoever holds the rows (batchAttention's tensors, a layer's projections). */
export interface BatchPlan {
  T: number; Hq: number; Hkv: number; D: number; Dv: number;
  pool: PagedPool | null;
  sequences: PagedSequence[];
  /** New rows of each sequence, and where they start among the T rows. */
  queryLens: Int32Array; rowStart: Int32Array;
  /** Positions held by each sequence before the call. */
  pastLens: Int32Array;
  /** Each row's sequence, and its position (its sequence's past length + its index among the new rows). */
  rowSequence: Int32Array; positions: Int32Array;
  causal: boolean; scale: number; softcap: number;
  /** -1 = unbounded. */
  windowLeft: number; windowRight: number;
  rotary: RotaryPlan | null;
  alibiSlopes: Checked | null; sinks: Checked | null;
  /** The longest sequence after the call (past + new). */
  maxLength: number;
}

const BATCH_OPTIONS = ['sequences', 'queryLens', 'causal', 'scale', 'softcap', 'window', 'rotary', 'alibiSlopes', 'sinks', 'out'] as const;

export interface BatchAttentionPlan extends BatchPlan {
  query: Checked; key: Checked; value: Checked;
  out: Out | undefined;
}

/** batchAttention's arguments, read once and checked; `ownPool` says whether a pool is this engine's. */
export function planBatchAttention(op: string, query: unknown, key: unknown, value: unknown, options: unknown, ownPool: (pool: PagedPool) => boolean): BatchAttentionPlan {
  const q = checkTensor(`${op}: query`, query, [3]);
  const k = checkTensor(`${op}: key`, key, [3]);
  const v = checkTensor(`${op}: value`, value, [3]);
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${op}: options must be an object { sequences, queryLens, … }, got ${describeValue(options)}`);
  }
  const o = checkOptions<BatchAttentionOptions & { out?: unknown }>(op, options, BATCH_OPTIONS);
  const [T, Hq, D] = q.shape;
  const [Tk, Hkv, Dk] = k.shape;
  const [Tv, Hv, Dv] = v.shape;
  const all = `query ${formatShape(q.shape)}, key ${formatShape(k.shape)}, value ${formatShape(v.shape)}`;
  if (Tk !== T || Tv !== T) throw new RangeError(`${op}: query, key and value must have one row per new token (T): ${all}`);
  if (Dk !== D) throw new RangeError(`${op}: key feature size ${Dk} differs from query's ${D}: ${all}`);
  if (Hv !== Hkv) throw new RangeError(`${op}: value must have key's heads: ${all}`);
  const out = checkOut(op, o.out, [T, Hq, Dv]); // before the plan spends any time on the rows
  const plan = planBatch(op, { T, Hq, Hkv, D, Dv }, o, ownPool, all);
  checkIntact(op, q, k, v, out?.checked, plan.alibiSlopes, plan.sinks, plan.rotary?.cos, plan.rotary?.sin);
  return { ...plan, query: q, key: k, value: v, out };
}

/**
 * The batch of options `o` (read once) for rows of the given sizes: sequences, lengths, blocks to take,
 * positions and every option checked. `what` describes the rows for messages.
 */
export function planBatch(op: string, dims: { T: number; Hq: number; Hkv: number; D: number; Dv: number }, o: Partial<BatchAttentionOptions>,
  ownPool: (pool: PagedPool) => boolean, what: string): BatchPlan {
  const { T, Hq, Hkv, D, Dv } = dims;
  const all = what;
  if (Hkv === 0 || Hq % Hkv !== 0) throw new RangeError(`${op}: query heads (${Hq}) must be a multiple of key/value heads (${Hkv}): ${all}`);

  if (o.sequences === undefined) throw new TypeError(`${op}: options.sequences is required`);
  const sequences = checkSequences(op, o.sequences, ownPool);
  const pool = sequences.length > 0 ? sequences[0].pool : null;
  if (pool && (pool.kvHeads !== Hkv || pool.headDim !== D || pool.valueDim !== Dv)) {
    throw new RangeError(`${op}: key and value must fit the KV pool [*, ${pool.kvHeads}, ${pool.headDim}] / [*, ${pool.kvHeads}, ${pool.valueDim}]: ${all}`);
  }
  // queryLens: one per sequence, summing to T
  const rawLens = o.queryLens;
  const lensLength: unknown = rawLens !== null && typeof rawLens === 'object' ? (rawLens as ArrayLike<unknown>).length : undefined;
  if (typeof lensLength !== 'number') throw new TypeError(`${op}: options.queryLens must be an array-like of integers, got ${describeValue(rawLens)}`);
  if (lensLength !== sequences.length) throw new RangeError(`${op}: options.queryLens: expected one length per sequence (${sequences.length}), got ${lensLength}`);
  const queryLens = new Int32Array(sequences.length), rowStart = new Int32Array(sequences.length), pastLens = new Int32Array(sequences.length);
  let total = 0;
  for (let s = 0; s < sequences.length; s++) {
    const n = checkCount(`${op}: options.queryLens[${s}]`, (rawLens as ArrayLike<unknown>)[s]);
    if (n === undefined) throw new TypeError(`${op}: options.queryLens[${s}] must be a number, got undefined`);
    if (n > T) throw new RangeError(`${op}: options.queryLens[${s}] is ${n}, more than the ${T} rows of query`);
    queryLens[s] = n; rowStart[s] = total; pastLens[s] = sequences[s].length;
    total += n;
  }
  if (total !== T) throw new RangeError(`${op}: options.queryLens sum to ${total}, but query, key and value have ${T} rows`);

  const causal = checkBoolean(`${op}: options.causal`, o.causal) ?? true;
  const { scale, softcap } = checkScoreOptions(`${op}: options`, o.scale, o.softcap, D);
  const rowSequence = new Int32Array(T), positions = new Int32Array(T);
  let maxLength = 0;
  for (let s = 0; s < sequences.length; s++) {
    for (let i = 0; i < queryLens[s]; i++) { rowSequence[rowStart[s] + i] = s; positions[rowStart[s] + i] = pastLens[s] + i; }
    maxLength = Math.max(maxLength, pastLens[s] + queryLens[s]);
  }
  // a window side that reaches past every position of the longest sequence is unbounded
  const { windowLeft, windowRight } = checkWindow(`${op}: options`, o.window, maxLength);
  const rotary = o.rotary === undefined ? null : planRotary(`${op}: options.rotary`, o.rotary, D);
  if (rotary) checkPositions(`${op}: the positions (with options.rotary)`, positions, rotary);
  const perHead = (name: 'alibiSlopes' | 'sinks') => {
    if (o[name] === undefined) return null;
    const t = checkTensor(`${op}: options.${name}`, o[name], [1]);
    expectShape(`${op}: options.${name}`, t.shape, [Hq], 'one per query head');
    return t;
  };
  const alibiSlopes = perHead('alibiSlopes'), sinks = perHead('sinks');
  // the blocks every append takes (new ones, and copies of shared last blocks), all at once
  if (pool) pool.checkFree(op, sequences.reduce((need, s, i) => need + pool.blocksToAppend(s, queryLens[i]), 0));
  return {
    T, Hq, Hkv, D, Dv, pool, sequences, queryLens, rowStart, pastLens, rowSequence, positions,
    causal, scale, softcap, windowLeft, windowRight, rotary, alibiSlopes, sinks, maxLength,
  };
}

/** Appends every sequence's new rows, token-major [T, Hkv, D] keys and [T, Hkv, Dv] values (free blocks checked by the plan). */
export function appendBatch(p: BatchPlan, keys: Checked | number, values: Checked | number): void {
  if (!p.pool) return;
  p.sequences.forEach((s, i) => {
    const at = p.rowStart[i];
    p.pool!.appendRows(s, { keys, keysAt: at * p.Hkv * p.D, values, valuesAt: at * p.Hkv * p.Dv, n: p.queryLens[i] });
  });
}

/** The output's size, for allocating it. */
export const outputSize = (p: BatchPlan): number => sizeOf([p.T, p.Hq, p.Dv]);
