// Scaled dot-product attention, the readable definition.
//
//   scores[b, h, i, j] = scale · q[b, h, i] · k[b, g(h), j]          g(h) = floor(h / (Hq / Hkv))
//   scores             = softcap · tanh(scores / softcap)            (when softcap > 0)
//   scores            += additive mask, or -inf where a boolean mask, causal, window or validLens forbids j
//   weights[b, h, i]   = softmax_j(scores[b, h, i])                   (all zeros when no key is allowed)
//   output[b, h, i]    = sum_j weights[b, h, i, j] · v[b, g(h), j]
//
// k and v are the past keys/values followed by the new ones (a KV cache), so j runs over Lpast + Lk.
import { type AttentionPlan, CAUSAL_BOTTOM_RIGHT, CAUSAL_NONE, MASK_BOOLEAN, planAttention } from '../core/scaledDotProductAttentionPlan.js';
import { fromData, sizeOf, type Tensor } from '../core/tensor.js';
import type { AttentionOptions, AttentionResult } from '../core/types.js';
import { deliver } from '../core/validate.js';
import { isReferenceCache, type ReferenceKVCache } from './kvCache.js';

/** Past then new rows along the length axis: [B, H, Lpast, D] ++ [B, H, Lnew, D] -> [B, H, Lpast + Lnew, D]. */
export function concatLength(past: Float32Array | null, next: Float32Array, BH: number, Lpast: number, Lnew: number, D: number): Float32Array {
  if (past === null) return next;
  const out = new Float32Array(BH * (Lpast + Lnew) * D);
  if (out.length === 0) return out; // nothing to copy, however many empty rows
  for (let bh = 0; bh < BH; bh++) {
    out.set(past.subarray(bh * Lpast * D, (bh + 1) * Lpast * D), bh * (Lpast + Lnew) * D);
    out.set(next.subarray(bh * Lnew * D, (bh + 1) * Lnew * D), (bh * (Lpast + Lnew) + Lpast) * D);
  }
  return out;
}

/**
 * May a query at position `pos` on the key axis attend to key j, by causal and the window's sides
 * (-1: unbounded)? The one rule of every attention op's key range (batchAttention's too).
 */
export function inKeyRange(causal: boolean, windowLeft: number, windowRight: number, pos: number, j: number): boolean {
  return (!causal || j <= pos) && (windowLeft < 0 || j >= pos - windowLeft) && (windowRight < 0 || j <= pos + windowRight);
}

/** May query i of batch b attend to key j, by causal, window and validLens (not the mask)? */
export function keyAllowed(p: AttentionPlan, b: number, i: number, j: number): boolean {
  const validLen = p.validLens ? p.validLens[b] : p.Lk;
  if (j >= validLen) return false; // padding
  // the query's position on the key axis: its causal frontier, else i + Lpast
  const pos = p.causalKind === CAUSAL_BOTTOM_RIGHT ? i + validLen - p.Lq : i + p.Lpast;
  return inKeyRange(p.causalKind !== CAUSAL_NONE, p.windowLeft, p.windowRight, pos, j);
}

export function scaledDotProductAttention(query: Tensor, key: Tensor, value: Tensor, options?: AttentionOptions): AttentionResult {
  const p = planAttention(query, key, value, options, (c) => {
    if (!isReferenceCache(c)) throw new TypeError('scaledDotProductAttention: options.cache must come from this engine (engine.createKVCache)');
  });
  // a KV cache is the past keys and values; the new ones join it afterwards
  const cache = p.cache as ReferenceKVCache | null;
  // every buffer first, so that nothing fails after the cache has grown
  const output = new Float32Array(sizeOf(p.outputShape));
  const weights = p.returnWeights ? new Float32Array(sizeOf(p.weightsShape)) : null;
  const past = cache ? cache.read() : null;
  const keys = concatLength(past?.keys.data ?? p.pastKey?.data ?? null, p.key.data, p.B * p.Hkv, p.Lpast, p.Lnew, p.E);
  const values = concatLength(past?.values.data ?? p.pastValue?.data ?? null, p.value.data, p.B * p.Hkv, p.Lpast, p.Lnew, p.Ev);
  const run = () => {
    cache?.append(p.key, p.value);
    return attend(p, p.query.data, keys, values, output, weights);
  };
  return cache ? cache.atomically(run) : run();
}

/** The attention of plan `p` over keys and values (past and new), into output (and weights). */
function attend(p: AttentionPlan, q: Float32Array, keys: Float32Array, values: Float32Array, output: Float32Array, weights: Float32Array | null): AttentionResult {
  const { B, Hq, Hkv, Lq, Lk, E, Ev } = p;
  const group = Hkv === 0 ? 1 : Hq / Hkv;
  // nothing to compute: no row buffers, no loop over however many empty rows there are
  const empty = output.length === 0 && (weights === null || weights.length === 0);
  const scores = new Float64Array(empty ? 0 : Lk);
  const acc = new Float64Array(Ev);

  for (let b = 0; b < B && !empty; b++) {
    for (let h = 0; h < Hq; h++) {
      const g = Math.floor(h / group);
      const kBase = (b * Hkv + g) * Lk;
      for (let i = 0; i < Lq; i++) {
        const qRow = ((b * Hq + h) * Lq + i) * E;
        let max = -Infinity;
        for (let j = 0; j < Lk; j++) {
          let s = -Infinity;
          if (keyAllowed(p, b, i, j)) {
            let dot = 0;
            for (let t = 0; t < E; t++) dot += q[qRow + t] * keys[(kBase + j) * E + t];
            s = p.scale * dot;
            if (p.softcap > 0) s = p.softcap * Math.tanh(s / p.softcap);
            if (p.mask) {
              const [sb, sh, sq, sk] = p.mask.strides;
              const m = p.mask.checked.data[b * sb + h * sh + i * sq + j * sk];
              if (p.mask.kind === MASK_BOOLEAN) { if (m === 0) s = -Infinity; } else s += m;
            }
          }
          scores[j] = s;
          if (s > max || Number.isNaN(s)) max = s; // a NaN stays the max, so it flows into the row
        }
        // softmax over the allowed keys; a row with no finite score has no weights at all
        let sum = 0;
        for (let j = 0; j < Lk; j++) {
          scores[j] = max === -Infinity ? 0 : Math.exp(scores[j] - max);
          sum += scores[j];
        }
        acc.fill(0);
        for (let j = 0; j < Lk; j++) {
          const w = sum === 0 ? 0 : scores[j] / sum;
          if (weights) weights[((b * Hq + h) * Lq + i) * Lk + j] = w;
          if (w === 0) continue; // a key with no weight contributes nothing, even a NaN value
          for (let t = 0; t < Ev; t++) acc[t] += w * values[(kBase + j) * Ev + t];
        }
        output.set(acc, ((b * Hq + h) * Lq + i) * Ev);
      }
    }
  }

  const result: AttentionResult = { output: deliver(fromData(output, p.outputShape), p.out) };
  if (weights) result.weights = fromData(weights, p.weightsShape);
  if (p.pastKey) {
    result.presentKey = fromData(keys, p.presentKeyShape);
    result.presentValue = fromData(values, p.presentValueShape);
  }
  return result;
}
