// scaledDotProductAttention on the wasm engine: the same signature as the reference
// (src/reference/scaledDotProductAttention.ts); the call is planned and run by ./attentionRun.ts.
import { planAttention } from '../core/scaledDotProductAttentionPlan.js';
import { formatCall, fromData, type Tensor } from '../core/tensor.js';
import type { AttentionOptions, AttentionResult } from '../core/types.js';
import type { Checked } from '../core/validate.js';
import { probeOf } from './attentionCall.js';
import { contiguousLayout } from './attentionLayout.js';
import { planAttentionRun, runAttention } from './attentionRun.js';
import type { WasmContext } from './context.js';
import { engineCache, type WasmKVCache } from './kvCache.js';
import type { Arena } from './memory.js';

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

export function scaledDotProductAttention(ctx: WasmContext, query: Tensor, key: Tensor, value: Tensor, options?: AttentionOptions): AttentionResult {
  const { arena } = ctx;
  const p = planAttention(query, key, value, options, (c) => engineCache(arena, c, 'scaledDotProductAttention'));
  const cache = p.cache as WasmKVCache | null;
  const { B, Hq, Hkv, Lq, Lk, E, Ev } = p;
  const probe = probeOf(options);
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
    runAttention(ctx, planAttentionRun(ctx, {
      out: pout, weights: pw, q: pq, k: pk, v: pv, mask: pmask, validLens: p.validLens,
      B, Hq, Hkv, Lq, Lk, E, Ev, scale: p.scale, softcap: p.softcap,
      maskKind: p.mask?.kind ?? 0, maskStrides: p.mask?.strides ?? [0, 0, 0, 0],
      causalKind: p.causalKind, Lpast: p.Lpast, windowLeft: p.windowLeft, windowRight: p.windowRight, layout, probe,
    }));
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
