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
  const penalized = s.repetitionPenalty !== 1 && history !== undefined;
  if (s.temperature === 0 && !penalized) return argmax(row); // greedy: no copy
  // (the constructor copies a typed array natively, where Float64Array.from takes ~30x longer)
  const scores = new Float64Array(row);
  if (penalized) {
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
  const order = new Ordered(scores);
  let kept = V;
  // TopKLogitsWarper: scores below the k-th largest go (ties with it stay)
  if (s.topK > 0 && s.topK < V) {
    kept = order.from(kthLargest(scores, s.topK));
  }
  // TopPLogitsWarper: the most likely tokens until their probabilities add up to topP (the one that crosses it stays)
  if (s.topP < 1) {
    const z = order.mass(kept);
    let sum = 0, n = 0;
    while (n < kept) {
      sum += order.weight(n++) / z;
      if (sum >= s.topP) break;
    }
    kept = Math.max(1, n);
  }
  // MinPLogitsWarper: tokens below minP times the most likely one's probability go
  if (s.minP > 0) {
    const z = order.mass(kept);
    const floor = s.minP * (order.weight(0) / z);
    // what the floor keeps, sorted in one go (a token past them weighs less than the floor allows)
    const sorted = order.cover(s.minP * order.weight(0) * (1 - 1e-9));
    let n = 1;
    while (n < kept && n < sorted && order.weight(n) / z >= floor) n++;
    kept = n;
  }
  const z = order.mass(kept);
  let u = s.random();
  for (let n = 0; n < kept; n++) {
    u -= order.weight(n) / z;
    if (u < 0) return order.at(n);
  }
  return order.at(kept - 1);
}

/**
 * The tokens in Hugging Face's order (score descending, the lower index first on ties), sorted only
 * as far as it is read: a draw over 151,936 logits usually reads a few dozen of them, and sorting
 * them all took 50 ms a token. Every token whose weight exp(score − max) is at least a threshold
 * comes before every token below it, so the tokens at or above it, sorted, are the order's first
 * ones; the threshold starts at 1 (the tokens at the max) and falls 16-fold each time more are read,
 * to all of them in the end.
 */
class Ordered {
  private readonly weights: Float64Array;
  private readonly total: number;
  private readonly max: number;
  private order: number[] = [];
  /** Every token whose weight is at least this is in `order`. */
  private covered = Number.POSITIVE_INFINITY;

  constructor(private readonly scores: Float64Array) {
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < scores.length; i++) if (scores[i] > max) max = scores[i];
    this.weights = new Float64Array(scores.length);
    let total = 0;
    for (let i = 0; i < scores.length; i++) total += this.weights[i] = Math.exp(scores[i] - max);
    this.total = total;
    this.max = max;
  }

  /** The n-th token of the order. */
  at(n: number): number {
    while (n >= this.order.length && this.order.length < this.scores.length) {
      const c = this.covered;
      this.cover(c > 1 ? 1 : c < 1e-300 ? Number.NEGATIVE_INFINITY : c / 16);
    }
    return this.order[n];
  }

  /** exp(score − max) of the n-th token: its probability times the mass of the tokens kept. */
  weight(n: number): number {
    return this.weights[this.at(n)];
  }

  /** The weights of the first `kept` tokens, added up (of all of them, without sorting). */
  mass(kept: number): number {
    if (kept === this.scores.length) return this.total;
    let z = 0;
    for (let n = 0; n < kept; n++) z += this.weight(n);
    return z;
  }

  /** Sorts the tokens whose score is `floor` or more (top-k's: its k-th largest score) and returns their count. */
  from(floor: number): number {
    this.cover(Math.exp(floor - this.max)); // (exp never decreases: every such token's weight is at least this)
    let n = 0;
    while (n < this.order.length && this.scores[this.order[n]] >= floor) n++;
    return n;
  }

  /** Sorts every token whose weight is at least w (all of them for -Infinity; a NaN score's joins last); returns how many tokens are sorted. */
  cover(given: number): number {
    const w = Number.isNaN(given) ? Number.NEGATIVE_INFINITY : given; // (NaN weights: every logit -Infinity)
    if (w >= this.covered) return this.order.length;
    const { scores, weights } = this;
    const ids: number[] = [];
    for (let i = 0; i < weights.length; i++) if (weights[i] >= w || w === Number.NEGATIVE_INFINITY) ids.push(i);
    this.order = ids.sort((a, b) => scores[b] - scores[a] || a - b);
    this.covered = w;
    return ids.length;
  }
}

/** The k-th largest of the scores (k >= 1, NaN ignored), by selection on a copy: O(V) on average. */
function kthLargest(scores: Float64Array, k: number): number {
  // (a copy by hand: TypedArray.prototype.filter takes ~50x longer)
  const a = new Float64Array(scores.length);
  let m = 0;
  for (let i = 0; i < scores.length; i++) if (!Number.isNaN(scores[i])) a[m++] = scores[i];
  if (k > m) return Number.NEGATIVE_INFINITY;
  let lo = 0, hi = m - 1;
  const target = k - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >> 1];
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i] > pivot) i++;
      while (a[j] < pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i++] = a[j];
        a[j--] = t;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return a[target];
}

function argmax(scores: ArrayLike<number>): number {
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
