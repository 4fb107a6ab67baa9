// Attention of many sequences at once over a paged KV pool, the readable definition. For sequence s
// holding L_s positions before the call and n_s new rows, row i of s has position p = L_s + i:
//
//   q, k  = rotary(q, p), rotary(k, p)                      (when options.rotary is given)
//   append k, v to s                                         (s now holds L_s + n_s positions)
//   scores[j] = scale · q · k_j   for allowed j: j <= p (causal), p − left <= j <= p + right (window)
//   scores    = softcap · tanh(scores / softcap);  scores[j] −= slope_h · |p − j|   (ALiBi)
//   weights   = exp(scores − m) / (Σ_j exp(scores_j − m) + exp(sink_h − m))       (m: the max, sink included)
//   output    = Σ_j weights_j · v_j                          (a row with no allowed key: zeros)
//
// Query head h reads kv head floor(h / (Hq / Hkv)).
import { appendBatch, type BatchPlan, outputSize, planBatchAttention } from '../core/batchAttentionPlan.js';
import { rotaryAngles } from '../core/rotaryEmbeddingPlan.js';
import type { BatchAttentionOptions } from '../core/servingTypes.js';
import { fromData, type Tensor } from '../core/tensor.js';
import { deliver } from '../core/validate.js';
import { isReferencePool } from './kvPool.js';
import { rotateRows } from './rotaryEmbedding.js';
import { inKeyRange } from './scaledDotProductAttention.js';

/** `rows` rows of H·D features turned at their tokens' positions (or as they are, without rotary). */
function turned(p: BatchPlan, x: Float32Array, H: number): Float32Array {
  if (!p.rotary) return x;
  const out = new Float32Array(x.length);
  const rowPosition = Int32Array.from({ length: p.T * H }, (_, r) => Math.floor(r / H));
  rotateRows(p.rotary, x, out, p.T * H, p.D, rotaryAngles(p.rotary, p.positions), rowPosition);
  return out;
}

export function batchAttention(query: Tensor, key: Tensor, value: Tensor, options: BatchAttentionOptions): { output: Tensor } {
  const p = planBatchAttention('batchAttention', query, key, value, options, isReferencePool);
  const output = new Float32Array(outputSize(p));
  const q = turned(p, p.query.data, p.Hq), k = turned(p, p.key.data, p.Hkv);
  appendBatch(p, { data: k, shape: p.key.shape, byteOffset: 0 }, p.value);
  attendAll(p, q, output);
  return { output: deliver(fromData(output, [p.T, p.Hq, p.Dv]), p.out) };
}

/** Every new row's attention over its sequence's keys and values as stored (read back as float32). */
function attendAll(p: BatchPlan, q: Float32Array, output: Float32Array): void {
  const { Hq, Hkv, D, Dv } = p;
  const group = Hq / Hkv;
  const scores = new Float64Array(p.maxLength), acc = new Float64Array(Dv);
  p.sequences.forEach((s, si) => {
    const { keys, values } = s.read();
    const length = s.length;
    for (let t = p.rowStart[si]; t < p.rowStart[si] + p.queryLens[si]; t++) {
      const pos = p.positions[t];
      for (let h = 0; h < Hq; h++) {
        const g = Math.floor(h / group);
        const qRow = (t * Hq + h) * D;
        let max = p.sinks ? p.sinks.data[h] : -Infinity, anyKey = false;
        for (let j = 0; j < length; j++) {
          let score = -Infinity;
          if (inKeyRange(p.causal, p.windowLeft, p.windowRight, pos, j)) {
            anyKey = true;
            const kAt = (j * Hkv + g) * D;
            let dot = 0;
            for (let c = 0; c < D; c++) dot += q[qRow + c] * keys.data[kAt + c];
            score = p.scale * dot;
            if (p.softcap > 0) score = p.softcap * Math.tanh(score / p.softcap);
            if (p.alibiSlopes) score -= p.alibiSlopes.data[h] * Math.abs(pos - j);
          }
          scores[j] = score;
          if (score > max || Number.isNaN(score)) max = score; // a NaN stays the max, so it flows into the row
        }
        acc.fill(0);
        if (anyKey && max !== -Infinity) {
          let sum = p.sinks ? Math.exp(p.sinks.data[h] - max) : 0;
          for (let j = 0; j < length; j++) { scores[j] = Math.exp(scores[j] - max); sum += scores[j]; }
          for (let j = 0; j < length; j++) {
            const w = scores[j] / sum;
            if (w === 0) continue; // a position with no weight contributes nothing, even a NaN value
            const vAt = (j * Hkv + g) * Dv;
            for (let c = 0; c < Dv; c++) acc[c] += w * values.data[vAt + c];
          }
        }
        output.set(acc, (t * Hq + h) * Dv);
      }
    }
  });
}
