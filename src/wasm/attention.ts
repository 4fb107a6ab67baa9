// Thin wrapper over assembly/kernels/attention.ts: same signature as the reference scaledDotProductAttention.
import { planAttention } from '../core/attentionPlan.js';
import { formatCall, fromData, type Tensor } from '../core/tensor.js';
import type { AttentionOptions, AttentionResult } from '../core/types.js';
import type { Checked } from '../core/validate.js';
import { KV_FORMATS, LAYOUT_OFFSETS } from './abi.js';
import type { AttentionCall } from './attentionCall.js';
import type { WasmContext } from './context.js';
import { decodeBytes, decodeView, runDecode } from './decodeAttention.js';
import { engineCache, type WasmKVCache } from './kvCache.js';
import type { Arena } from './memory.js';

export type { AttentionCall } from './attentionCall.js';

/** past ++ new along the length axis ([BH, Lpast, D] and [BH, Lnew, D]) in wasm memory: the new rows where they are when there is no past. */
function concatInto(arena: Arena, past: Checked | null, next: Checked, BH: number, Lpast: number, Lnew: number, D: number, names: [string, string]): number {
  if (past === null) return arena.input(next, names[1]);
  const pPast = arena.input(past, names[0]), pNext = arena.input(next, names[1]);
  const L = Lpast + Lnew;
  const ptr = arena.allocF32(BH * L * D);
  if (BH * L * D === 0) return ptr; // nothing to copy, however many empty rows
  const mem = new Float32Array(arena.memory.buffer);
  const at = ptr >> 2, from = pPast >> 2, fromNext = pNext >> 2;
  for (let bh = 0; bh < BH; bh++) {
    mem.copyWithin(at + bh * L * D, from + bh * Lpast * D, from + (bh + 1) * Lpast * D);
    mem.copyWithin(at + (bh * L + Lpast) * D, fromNext + bh * Lnew * D, fromNext + (bh + 1) * Lnew * D);
  }
  return ptr;
}

/**
 * Element strides (batch, head, row) of q, k, v and out for the attention kernels' layout argument.
 * Contiguous [B, H, L, D] tensors by default; a [B, L, H·D] projection is read in place with
 * `{ q: [L·H·D, D, H·D] }` and the like. With `kvTable`, k and v are a KV pool's blocks: key row j
 * of batch row b is row table[b·entries + j / blockRows]·blockRows + j % blockRows of its kv head
 * (assembly/inline/kvView.ts).
 */
export interface AttentionLayout { q: number[]; k: number[]; v: number[]; out: number[]; kvTable?: KVTable; kvFormat?: KVFormat }

/** A block table in wasm memory: i32 block indices at `at`, `entries` per batch row, `blockRows` positions per block. */
export interface KVTable { at: number; entries: number; blockRows: number }

/**
 * Keys and values stored narrower than float32 (a pool's binary16 or int8 blocks): `code` from
 * KV_FORMATS, and int8's float32 row scales (indexed as the rows are; 0 for binary16).
 */
export interface KVFormat { code: number; kScales: number; vScales: number }

export function contiguousLayout(Hq: number, Hkv: number, Lq: number, Lk: number, E: number, Ev: number): AttentionLayout {
  return {
    q: [Hq * Lq * E, Lq * E, E], k: [Hkv * Lk * E, Lk * E, E],
    v: [Hkv * Lk * Ev, Lk * Ev, Ev], out: [Hq * Lq * Ev, Lq * Ev, Ev],
  };
}

/** The layout block (assembly/layout.ts): each tensor's (batch, head, row) strides at its offset. */
export function layoutArray(l: AttentionLayout): Int32Array {
  const { LAYOUT_Q, LAYOUT_K, LAYOUT_V, LAYOUT_OUT, STRIDE_BATCH, STRIDE_HEAD, STRIDE_ROW, LAYOUT_BYTES } = LAYOUT_OFFSETS;
  const block = new Int32Array(LAYOUT_BYTES / 4);
  for (const [at, [batch, head, row]] of [[LAYOUT_Q, l.q], [LAYOUT_K, l.k], [LAYOUT_V, l.v], [LAYOUT_OUT, l.out]] as const) {
    block[(at + STRIDE_BATCH) / 4] = batch;
    block[(at + STRIDE_HEAD) / 4] = head;
    block[(at + STRIDE_ROW) / 4] = row;
  }
  if (l.kvTable) {
    block[LAYOUT_OFFSETS.LAYOUT_KV_TABLE / 4] = l.kvTable.at;
    block[LAYOUT_OFFSETS.LAYOUT_KV_TABLE_ENTRIES / 4] = l.kvTable.entries;
    block[LAYOUT_OFFSETS.LAYOUT_KV_BLOCK_ROWS / 4] = l.kvTable.blockRows;
  }
  if (l.kvFormat) {
    block[LAYOUT_OFFSETS.LAYOUT_KV_FORMAT / 4] = l.kvFormat.code;
    block[LAYOUT_OFFSETS.LAYOUT_KV_K_SCALES / 4] = l.kvFormat.kScales;
    block[LAYOUT_OFFSETS.LAYOUT_KV_V_SCALES / 4] = l.kvFormat.vScales;
  }
  return block;
}

/** Below this many query rows per kv head, the row kernel beats the packed flash kernel (measured: bench). */
const FLASH_MIN_ROWS_PER_KV_HEAD = 8;
/**
 * Over this many keys, FLASH_MIN_QUERIES_LONG_KEYS query rows (of one head) already repay packing K:
 * the row kernel reads K and V again for every row, the fused one packs once and reads a chunk from
 * the cache for every pair. Measured (8 heads of 64, one kv head each, 4 query rows, interleaved):
 * fused 0.98x the row kernel at 2,048 keys, 1.07x at 4,096, 1.27x at 8,192, 1.35x at 16,384, 1.43x
 * at 32,768. Pairs go along the query axis, so a single query row per head (grouped-query decode)
 * stays on the row kernel: fused was 0.72-0.82x there, computing each row twice.
 */
const FLASH_LONG_KEYS = 4096;
const FLASH_MIN_QUERIES_LONG_KEYS = 4;

/**
 * The attention kernels: the fused one (flash_attention_f32), the row one (attention_f32), and the
 * paged one for grouped-query decode rows (src/wasm/decodeAttention.ts).
 */
export type AttentionKernel = 'fused' | 'row' | 'paged';
let forced: AttentionKernel | null = null;
let lastKernel: AttentionKernel | null = null;

/**
 * For tests (src/index.ts does not export it): runs `fn` with every attention call that asks for no
 * weights on `kernel`, whatever its rows per kv head, so that a test of one kernel's tile edges
 * cannot end up testing the other when the threshold moves. Weights always take the row kernel;
 * 'paged' throws for a call it cannot run (decodeView).
 */
export function withAttentionKernel<T>(kernel: AttentionKernel, fn: () => T): T {
  const before = forced;
  forced = kernel;
  try {
    return fn();
  } finally {
    forced = before;
  }
}

/** For tests: the kernel the last attention call on this thread ran (null before any, or when it had nothing to compute). */
export const lastAttentionKernel = (): AttentionKernel | null => lastKernel;

/** The arguments attention_f32 and flash_attention_f32 share, from `b` to `layout`. */
type SharedArgs = [
  b: number, hq: number, hkv: number, lq: number, lk: number, e: number, ev: number, scale: number, softcap: number,
  maskKind: number, msb: number, msh: number, msq: number, msk: number, causal: number, lpast: number, left: number, right: number,
  layout: number,
];

/**
 * Runs attention on pointers: the row kernel when weights are wanted or there are few query rows per
 * kv head, the paged kernel for one query row per head of a grouped-query call, else the fused
 * kernel; threads take shares of the query rows (pairs for the fused one, kv heads for the paged one).
 */
/** The kernel a call runs, or null when it has nothing to compute (an empty output and no weights). */
function kernelFor(ctx: WasmContext, c: AttentionCall): AttentionKernel | null {
  const { B, Hq, Hkv, Lq, Ev } = c;
  // (weights of no element are an allocation of 0 bytes, whose address may not be 0)
  if (B * Hq * Lq * Ev === 0 && (!c.weights || B * Hq * Lq * c.Lk === 0)) return null;
  // with weights, one query row at a time writes each row of weights; decode-like calls have too
  // few query rows per kv head to repay packing K, so they stream K and V once
  if (c.weights !== 0) return 'row';
  const paged = decodeView(ctx, c) !== null;
  if (forced === 'paged') {
    if (!paged) throw new Error('qkv (tests): withAttentionKernel(\'paged\') on a call the paged kernel cannot run');
    return 'paged';
  }
  // of the other two, only the fused kernel widens binary16 and int8 views and takes ALiBi and sinks
  // (the caller sends it prompts, not decode rows)
  if ((c.kvFormat ?? KV_FORMATS.KV_F32) !== KV_FORMATS.KV_F32 || c.alibi || c.sinks) return 'fused';
  if (forced) return forced;
  if (paged) return 'paged';
  const fusedPays = Lq / Math.max(Hkv, 1) * Hq >= FLASH_MIN_ROWS_PER_KV_HEAD || (Lq >= FLASH_MIN_QUERIES_LONG_KEYS && c.Lk >= FLASH_LONG_KEYS);
  return fusedPays ? 'fused' : 'row';
}

/** Floats of scratch per thread the call's kernel takes. */
function scratchFloats({ kernels }: WasmContext, c: AttentionCall, kernel: 'fused' | 'row'): number {
  if (kernel === 'fused') return kernels.flash_scratch_f32(c.Lk, c.E, c.Ev, c.kvFormat ?? KV_FORMATS.KV_F32);
  return c.weights ? 0 : c.Lk;
}

/**
 * Bytes runAttention(c) allocates (released when it returns): a caller that must not fail once it
 * has changed state (batchAttention, after the appends) makes room for them first.
 */
export function attentionScratchBytes(ctx: WasmContext, c: AttentionCall): number {
  const kernel = kernelFor(ctx, c);
  if (kernel === 'paged') return decodeBytes(ctx, c);
  return kernel ? ctx.arena.perThreadBytes(scratchFloats(ctx, c, kernel), ctx.parallel.threads) : 0;
}

export function runAttention(ctx: WasmContext, c: AttentionCall): void {
  const { arena, parallel } = ctx;
  const { B, Hq, Hkv, Lq, Lk, E, Ev } = c;
  const [msb, msh, msq, msk] = c.maskStrides;
  const shapeAndOptions: SharedArgs = [
    B, Hq, Math.max(Hkv, 1), Lq, Lk, E, Ev, c.scale, c.softcap, c.maskKind, msb, msh, msq, msk,
    c.causal, c.Lpast, c.windowLeft, c.windowRight, c.layout,
  ];
  const rowWork = Lk * (E + Ev);
  const kernel = (lastKernel = kernelFor(ctx, c));
  if (!kernel) return;
  if (kernel === 'paged') {
    arena.scoped(() => runDecode(ctx, c));
    return;
  }
  arena.scoped(() => {
    const floats = scratchFloats(ctx, c, kernel);
    const scratch = floats ? arena.perThread(floats, parallel.threads) : () => 0;
    if (kernel === 'row') {
      parallel.run('attention_f32', B * Hq * Lq, rowWork, (t, r0, r1) => [c.out, c.weights, scratch(t), c.q, c.k, c.v, c.mask, c.lens, ...shapeAndOptions, r0, r1]);
    } else {
      const pairs = B * Hq * Math.ceil(Lq / 2);
      parallel.run('flash_attention_f32', pairs, 2 * rowWork, (t, u0, u1) => [c.out, scratch(t), c.q, c.k, c.v, c.mask, c.lens, ...shapeAndOptions, c.alibi ?? 0, c.sinks ?? 0, u0, u1]);
    }
  });
}

export function scaledDotProductAttention(ctx: WasmContext, query: Tensor, key: Tensor, value: Tensor, options?: AttentionOptions): AttentionResult {
  const { arena } = ctx;
  const p = planAttention(query, key, value, options, (c) => engineCache(arena, c, 'scaledDotProductAttention'));
  const cache = p.cache as WasmKVCache | null;
  const { B, Hq, Hkv, Lq, Lk, E, Ev } = p;
  arena.checkOut(p.out);
  // a call that fails after appending to the cache (the memory limit) leaves the cache as it was
  const call = () => arena.call(() => formatCall('scaledDotProductAttention', { query: p.query.shape, key: p.key.shape, value: p.value.shape }), () => {
    let pk: number, pv: number, layout = contiguousLayout(Hq, Hkv, Lq, Lk, E, Ev);
    // the inputs' addresses first: an input read in place must still be a live engine tensor
    const pq = arena.input(p.query, 'query');
    const pmask = p.mask ? arena.input(p.mask.checked, 'options.mask') : 0;
    if (cache) {
      // the new keys and values join the cache, and attention reads the cache where it is
      cache.appendChecked(p.key, p.value);
      ({ k: pk, v: pv } = cache.pointers());
      const cap = cache.capacity;
      layout = { ...layout, k: [Hkv * cap * E, cap * E, E], v: [Hkv * cap * Ev, cap * Ev, Ev] };
    } else {
      pk = concatInto(arena, p.pastKey, p.key, B * Hkv, p.Lpast, p.Lnew, E, ['options.pastKey', 'key']);
      pv = concatInto(arena, p.pastValue, p.value, B * Hkv, p.Lpast, p.Lnew, Ev, ['options.pastValue', 'value']);
    }
    // straight into out when it is an engine tensor apart from every input
    const pout = arena.outputApart(p.out, p.query, p.key, p.value, p.mask?.checked, p.pastKey, p.pastValue) || arena.allocF32(B * Hq * Lq * Ev);
    const pw = p.returnWeights ? arena.allocF32(B * Hq * Lq * Lk) : 0;
    runAttention(ctx, {
      out: pout, weights: pw, q: pq, k: pk, v: pv,
      mask: pmask, lens: p.validLens ? arena.write(p.validLens) : 0,
      B, Hq, Hkv, Lq, Lk, E, Ev, scale: p.scale, softcap: p.softcap,
      maskKind: p.mask?.kind ?? 0, maskStrides: p.mask?.strides ?? [0, 0, 0, 0],
      causal: p.causal, Lpast: p.Lpast, windowLeft: p.windowLeft, windowRight: p.windowRight,
      layout: arena.write(layoutArray(layout)),
    });
    const result: AttentionResult = { output: arena.result(pout, B * Hq * Lq * Ev, p.outputShape, p.out) };
    if (pw) result.weights = fromData(arena.read(pw, B * Hq * Lq * Lk), p.weightsShape);
    if (p.pastKey) {
      result.presentKey = fromData(arena.read(pk, B * Hkv * Lk * E), p.presentKeyShape);
      result.presentValue = fromData(arena.read(pv, B * Hkv * Lk * Ev), p.presentValueShape);
    }
    return result;
  });
  return cache ? cache.atomically(call) : call();
}
