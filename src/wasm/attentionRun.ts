// Attention's plan and run on the wasm side: every caller (scaledDotProductAttention over tensors
// or a KVCache, multi-head attention and its layers, batchAttention's prompts over a pool, through
// them the grouped-query layer and the decoders) describes its call as an AttentionCall; one
// function picks the kernel, one function per kernel sizes every byte its launch allocates, and
// runAttention writes the layout block, valid lengths and tables, then launches. A caller that must
// not fail once it has changed state (batchAttention, after the appends) makes room for `bytes`
// first (arena.ensure).

import { KV_FORMATS, LAYOUT_OFFSETS } from './abi.js';
import type { AttentionCall, AttentionKernel } from './attentionCall.js';
import { layoutArray } from './attentionLayout.js';
import type { WasmContext } from './context.js';
import { aligned } from './memory.js';
import { headMajorBytes, headMajorRows, runHeadMajor } from './pagedAttention.js';

/** Below this many query rows per kv head, the row kernel beats the packed fused kernel (measured: bench). */
const FUSED_MIN_ROWS_PER_KV_HEAD = 8;
/**
 * Over this many keys, FUSED_MIN_QUERIES_LONG_KEYS query rows (of one head) already repay packing K:
 * the row kernel reads K and V again for every row, the fused one packs once and reads a chunk from
 * the cache for every pair. Pairs go along the query axis, so a single query row per head
 * (grouped-query decode) stays on the row kernel, where the fused one would compute each row twice.
 * (The measurements are in the commit that set these values, and in docs/BENCHMARKS.md.)
 */
const FUSED_LONG_KEYS = 4096;
const FUSED_MIN_QUERIES_LONG_KEYS = 4;
/**
 * A prompt over a pool's blocks of at least this many rows goes to the fused kernel, whatever the
 * pool's dtype and the sequence's length; shorter ones are decode rows for the paged kernel.
 */
const POOL_PROMPT_MIN_ROWS = 16;
/**
 * The most scratch (all threads) a prompt's fused call over a pool may take: it packs a kv head's
 * keys for the whole sequence (and widens binary16 or int8 values), 256 bytes a position for keys
 * of 64 (512 with values of 64 widened), where the paged kernel needs 4 bytes a position per head of
 * a group. Longer sequences keep the paged kernel, so that a long context still fits the engine's memory.
 */
const POOL_PROMPT_MAX_SCRATCH_BYTES = 64 << 20;

const formatOf = (c: AttentionCall): number => c.layout.kvFormat?.code ?? KV_FORMATS.KV_F32;

/**
 * Floats of scratch a thread takes on the row kernel (a row of scores; none when it writes weights)
 * or the fused one (a kv head's packed keys and widened values): what the bytes and the launch both use.
 */
function scratchFloats({ kernels }: WasmContext, c: AttentionCall, kernel: 'row' | 'fused'): number {
  if (kernel === 'fused') return kernels.flash_scratch_f32(c.Lk, c.E, c.Ev, formatOf(c));
  return c.weights ? 0 : c.Lk;
}

/** Bytes of every thread's scratch on the fused kernel. */
const fusedScratchBytes = (ctx: WasmContext, c: AttentionCall): number => ctx.arena.perThreadBytes(scratchFloats(ctx, c, 'fused'), ctx.parallel.threads);

/** Bytes the row or fused kernel's launch allocates: the layout block, the valid lengths and every thread's scratch. */
function launchBytes(ctx: WasmContext, c: AttentionCall, kernel: 'row' | 'fused'): number {
  const layout = aligned(LAYOUT_OFFSETS.LAYOUT_BYTES) + (c.validLens ? aligned(4 * c.B) : 0);
  return layout + ctx.arena.perThreadBytes(scratchFloats(ctx, c, kernel), ctx.parallel.threads);
}

/**
 * The kernel that runs call `c`, or null when it has nothing to compute (an empty output and no
 * weights). Only the row kernel writes weights; only the fused and paged kernels widen narrow KV
 * formats and take ALiBi and sinks. A probe's `force` wins wherever its kernel can run the call.
 * `headRows`: headMajorRows(c), when the paged kernel can run a call over tensors.
 */
function chooseKernel(ctx: WasmContext, c: AttentionCall, headRows: number | null): AttentionKernel | null {
  const { B, Hq, Hkv, Lq, Lk, Ev } = c;
  // (weights of no element are an allocation of 0 bytes, whose address may not be 0)
  if (B * Hq * Lq * Ev === 0 && (!c.weights || B * Hq * Lq * Lk === 0)) return null;
  if (c.weights !== 0) return 'row';
  const overPool = c.layout.kvTable !== undefined, headMajor = headRows !== null;
  const rowCan = formatOf(c) === KV_FORMATS.KV_F32 && !c.alibi && !c.sinks;
  const force = c.probe?.force;
  if (force === 'paged') {
    if (overPool || headMajor) return 'paged';
    throw new Error('qkv (tests): an attention probe forced the paged kernel on a call it cannot run');
  }
  if (force === 'fused' || (force === 'row' && rowCan)) return force;
  // a prompt over a pool: the fused kernel when it has the rows to repay packing and its scratch fits
  if (overPool) return Lq >= POOL_PROMPT_MIN_ROWS && fusedScratchBytes(ctx, c) <= POOL_PROMPT_MAX_SCRATCH_BYTES ? 'fused' : 'paged';
  if (headMajor) return 'paged';
  if (!rowCan) return 'fused';
  // decode-like calls have too few query rows per kv head to repay packing K, so they stream K and V once
  const fusedPays = (Lq / Math.max(Hkv, 1)) * Hq >= FUSED_MIN_ROWS_PER_KV_HEAD || (Lq >= FUSED_MIN_QUERIES_LONG_KEYS && Lk >= FUSED_LONG_KEYS);
  return fusedPays ? 'fused' : 'row';
}

/** A planned call: its kernel and the bytes its launch allocates in the arena (released when it returns). */
export interface AttentionRun {
  readonly call: AttentionCall;
  readonly kernel: AttentionKernel | null;
  readonly bytes: number;
  /** Over tensors on the paged kernel: the rows of one kv head (headMajorRows). */
  readonly headRows: number | null;
}

export function planAttentionRun(ctx: WasmContext, call: AttentionCall): AttentionRun {
  const headRows = call.layout.kvTable ? null : headMajorRows(call);
  const kernel = chooseKernel(ctx, call, headRows);
  const bytes = kernel === 'row' || kernel === 'fused' ? launchBytes(ctx, call, kernel)
    : kernel === 'paged' && !call.layout.kvTable ? headMajorBytes(ctx, call)
    : 0; // nothing to compute, or a pool's decode rows, which batchAttention launches together
  return { call, kernel, bytes, headRows };
}

/** The arguments attention_f32 and flash_attention_f32 share, from `b` to `layout`. */
type SharedArgs = [
  b: number, hq: number, hkv: number, lq: number, lk: number, e: number, ev: number, scale: number, softcap: number,
  maskKind: number, msb: number, msh: number, msq: number, msk: number, causal: number, lpast: number, left: number, right: number,
  layout: number,
];

/**
 * Runs a planned call: threads take shares of the query rows (pairs of rows on the fused kernel,
 * (batch row, kv head) units on the paged one). Allocates at most `run.bytes`, released on return.
 */
export function runAttention(ctx: WasmContext, run: AttentionRun): void {
  const { call: c, kernel } = run;
  if (!kernel) return;
  if (kernel === 'paged' && run.headRows === null) throw new Error('qkv: a pool\'s decode rows run in batchAttention\'s paged launch');
  c.probe?.ran.push(kernel);
  const { arena, parallel } = ctx;
  arena.scoped(() => {
    if (kernel === 'paged') return runHeadMajor(ctx, c, run.headRows!);
    const { B, Hq, Hkv, Lq, Lk, E, Ev } = c;
    const [msb, msh, msq, msk] = c.maskStrides;
    const layout = arena.write(layoutArray(c.layout)), lens = c.validLens ? arena.write(c.validLens) : 0;
    const shared: SharedArgs = [
      B, Hq, Math.max(Hkv, 1), Lq, Lk, E, Ev, c.scale, c.softcap, c.maskKind, msb, msh, msq, msk, c.causalKind, c.Lpast, c.windowLeft, c.windowRight, layout,
    ];
    const rowWork = Lk * (E + Ev);
    const floats = scratchFloats(ctx, c, kernel);
    const scratch = floats ? arena.perThread(floats, parallel.threads) : () => 0;
    if (kernel === 'row') {
      parallel.run('attention_f32', B * Hq * Lq, rowWork, (t, r0, r1) => [c.out, c.weights, scratch(t), c.q, c.k, c.v, c.mask, lens, ...shared, r0, r1]);
    } else {
      const pairs = B * Hq * Math.ceil(Lq / 2);
      parallel.run('flash_attention_f32', pairs, 2 * rowWork, (t, u0, u1) => [c.out, scratch(t), c.q, c.k, c.v, c.mask, lens, ...shared, c.alibi ?? 0, c.sinks ?? 0, u0, u1]);
    }
  });
}
