// Choosing the next token from logits, in Hugging Face's order (generation/logits_process.py):
// the repetition penalty, then temperature, top-k, top-p and min-p, then a draw from the softmax of
// what is left. Temperature 0 is greedy: the first index of the largest logit (after the penalty).

import type { Tensor } from '../core/tensor.js';
import { checkTensor, describeValue } from '../core/validate.js';
import type { SamplingOptions } from './types.js';

/** mulberry32: a small seeded generator of uniform numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Sampling options, checked once. */
export interface Sampler {
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly minP: number;
  readonly repetitionPenalty: number;
  readonly random: () => number;
}

function option(op: string, o: SamplingOptions, key: keyof SamplingOptions, fallback: number, ok: (v: number) => boolean, range: string): number {
  const v = o[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'number') throw new TypeError(`${op}: options.${key} must be a number, got ${describeValue(v)}`);
  if (!ok(v)) throw new RangeError(`${op}: options.${key} must be ${range}, got ${v}`);
  return v;
}

/** Checks sampling options; the random source is seeded when `seed` is given. */
export function samplerOf(op: string, o: SamplingOptions): Sampler {
  return {
    temperature: option(op, o, 'temperature', 0, (v) => v >= 0 && Number.isFinite(v), 'a finite number >= 0'),
    topK: option(op, o, 'topK', 0, (v) => Number.isInteger(v) && v >= 0, 'an integer >= 0'),
    topP: option(op, o, 'topP', 1, (v) => v > 0 && v <= 1, 'in (0, 1]'),
    minP: option(op, o, 'minP', 0, (v) => v >= 0 && v <= 1, 'in [0, 1]'),
    repetitionPenalty: option(op, o, 'repetitionPenalty', 1, (v) => v > 0 && Number.isFinite(v), 'a finite number > 0'),
    random: seededRandom(option(op, o, 'seed', Math.floor(Math.random() * 2 ** 32), Number.isFinite, 'a finite number')),
  };
}

/** One token from one row of logits (float64 arithmetic; `row` is not changed). */
export function sampleRow(row: ArrayLike<number>, s: Sampler, history?: ArrayLike<number>): number {
  const V = row.length;
  const scores = Float64Array.from(row);
  if (s.repetitionPenalty !== 1 && history) {
    // RepetitionPenaltyLogitsProcessor: each seen token once, whatever its count
    const seen = new Set<number>();
    for (let i = 0; i < history.length; i++) {
      const t = history[i];
      if (t >= 0 && t < V && !seen.has(t)) {
        seen.add(t);
        scores[t] = scores[t] < 0 ? scores[t] * s.repetitionPenalty : scores[t] / s.repetitionPenalty;
      }
    }
  }
  if (s.temperature === 0) return argmax(scores);
  for (let i = 0; i < V; i++) scores[i] /= s.temperature;
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
  let kept = V;
  // TopKLogitsWarper: scores below the k-th largest go (ties with it stay)
  if (s.topK > 0 && s.topK < V) {
    const kth = scores[order[s.topK - 1]];
    while (kept > 1 && scores[order[kept - 1]] < kth) kept--;
  }
  // TopPLogitsWarper: the most likely tokens until their probabilities add up to topP (the one that crosses it stays)
  if (s.topP < 1) {
    const p = softmaxOf(scores, order, kept);
    let sum = 0, n = 0;
    while (n < kept) {
      sum += p[n++];
      if (sum >= s.topP) break;
    }
    kept = Math.max(1, n);
  }
  // MinPLogitsWarper: tokens below minP times the most likely one's probability go
  if (s.minP > 0) {
    const p = softmaxOf(scores, order, kept);
    const floor = s.minP * p[0];
    while (kept > 1 && p[kept - 1] < floor) kept--;
  }
  const p = softmaxOf(scores, order, kept);
  let u = s.random();
  for (let n = 0; n < kept; n++) {
    u -= p[n];
    if (u < 0) return order[n];
  }
  return order[kept - 1];
}

/** Probabilities of the first `kept` tokens of `order`, renormalized over them. */
function softmaxOf(scores: Float64Array, order: number[], kept: number): Float64Array {
  const max = scores[order[0]];
  const p = new Float64Array(kept);
  let sum = 0;
  for (let n = 0; n < kept; n++) sum += p[n] = Math.exp(scores[order[n]] - max);
  for (let n = 0; n < kept; n++) p[n] /= sum;
  return p;
}

function argmax(scores: Float64Array): number {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best] || (Number.isNaN(scores[best]) && !Number.isNaN(scores[i]))) best = i;
  return best;
}

/**
 * One token per row of logits [S, vocab], with Hugging Face's sampling: the repetition penalty over
 * `history[row]`, then temperature, top-k, top-p and min-p. Needs no engine.
 */
export function sample(logits: Tensor, options: SamplingOptions & { history?: readonly ArrayLike<number>[] } = {}): Int32Array {
  const op = 'sample';
  const l = checkTensor(`${op}: logits`, logits, [2]);
  if (options === null || typeof options !== 'object') throw new TypeError(`${op}: options must be an object`);
  const s = samplerOf(op, options);
  const [S, V] = l.shape;
  const { history } = options;
  if (history !== undefined && (!Array.isArray(history) || history.length !== S)) {
    throw new RangeError(`${op}: options.history must have one array of token ids per row of logits (${S})`);
  }
  if (V === 0 && S > 0) throw new RangeError(`${op}: logits [${S}, 0] have no token to choose`);
  const out = new Int32Array(S);
  for (let r = 0; r < S; r++) out[r] = sampleRow(l.data.subarray(r * V, (r + 1) * V), s, history?.[r]);
  return out;
}
