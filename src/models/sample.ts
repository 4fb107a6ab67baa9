// Choosing the next token from logits, in Hugging Face's order (generation/logits_process.py):
// the repetition penalty, then temperature, top-k, top-p and min-p, then a draw from the softmax of
// what is left, walked in index order as torch.multinomial walks it. Temperature 0 is greedy: the
// first index of the largest logit (after the penalty).

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
  // The kept tokens are always the order's first `kept`: as a Cut, null while all are kept
  let cut = kept < V ? order.cut(kept) : null;
  const { weights } = order;
  // MinPLogitsWarper: tokens below minP times the most likely one's probability go. Those that stay
  // are the order's first ones too (a weight that passes, every larger one passes), so one pass
  // counts them and finds their cut, with no sort
  if (s.minP > 0) {
    const z = order.mass(kept), floor = s.minP * (order.weight(0) / z);
    const within = cut ? inCut(cut) : null;
    let n = 0, low = Number.POSITIVE_INFINITY, ties = 0;
    for (let i = 0; i < V; i++) {
      const x = scores[i];
      if ((within && !within(x)) || !(weights[i] / z >= floor)) continue;
      n++;
      if (x < low) [low, ties] = [x, 1];
      else if (x === low) ties++;
    }
    kept = Math.max(1, n);
    cut = n === 0 ? order.cut(1) : n === V ? null : { score: low, ties };
  }
  // the draw: a uniform number times the kept tokens' mass, less each one's weight in index order, as
  // torch.multinomial walks its cumulative sums
  const ids = cut ? order.tokens(cut, kept) : null;
  const count = ids ? ids.length : V;
  let z = 0;
  if (ids) for (let n = 0; n < count; n++) z += weights[ids[n]];
  else z = order.total;
  let u = s.random() * z, drawable = -1;
  for (let n = 0; n < count; n++) {
    const i = ids ? ids[n] : n;
    if (weights[i] > 0) drawable = i; // (rounding may leave u >= 0 at the end: the last kept token that can be drawn)
    u -= weights[i];
    if (u < 0) return i;
  }
  return drawable >= 0 ? drawable : order.at(kept - 1);
}

/**
 * The order's first tokens: every token scoring above `score`, then the first `ties` (by index) of
 * those scoring it (Hugging Face's order puts the lower index first on ties).
 */
interface Cut {
  readonly score: number;
  readonly ties: number;
}

/** Whether each token, asked about in index order by its score, is among a cut's (a tie counts only while the cut takes ties). */
function inCut(cut: Cut): (score: number) => boolean {
  let left = cut.ties;
  return (x) => x > cut.score || (x === cut.score && left-- > 0);
}

/**
 * The scores in Hugging Face's order (descending; the lower index first on ties), sorted only as far
 * as they are read: a draw over 151,936 logits usually reads a few dozen. Every token whose weight
 * exp(score − max) is at least a threshold scores above every token below it, so the scores at or
 * above it, sorted, are the order's first ones; the threshold starts at 1 (the tokens at the max)
 * and falls 16-fold each time more are read, to all of them in the end, each fall sorting only the
 * band of scores it adds after those already sorted. Only scores are sorted (a typed array's own
 * numeric sort, several times faster than sorting token ids by a comparator): a token's weight is a
 * function of its score, and a place of the order is found from its score (`cut`, `at`).
 */
class Ordered {
  /** exp(score − max) of every token, in index order. */
  readonly weights: Float64Array;
  /** The weights added up in index order. */
  readonly total: number;
  private readonly max: number;
  /** −score of the first `count` tokens of the order, ascending (a NaN last). */
  private readonly sorted: Float64Array;
  /** The same tokens, band after band, each band in index order. */
  private readonly ids: Int32Array;
  private count = 0;
  /** Every token whose weight is at least this is sorted. */
  private covered = Number.POSITIVE_INFINITY;

  constructor(private readonly scores: Float64Array) {
    const V = scores.length;
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < V; i++) if (scores[i] > max) max = scores[i];
    this.weights = new Float64Array(V);
    let total = 0;
    for (let i = 0; i < V; i++) total += this.weights[i] = Math.exp(scores[i] - max);
    this.total = total;
    this.max = max;
    this.sorted = new Float64Array(V);
    this.ids = new Int32Array(V);
  }

  /** The n-th score of the order. */
  score(n: number): number {
    while (n >= this.count && this.count < this.scores.length) {
      const c = this.covered;
      this.cover(c > 1 ? 1 : c < 1e-300 ? Number.NEGATIVE_INFINITY : c / 16);
    }
    return -this.sorted[n];
  }

  /** exp(score − max) of the n-th token (its `weights` entry, from the same score): its probability times the mass of the tokens kept. */
  weight(n: number): number {
    return Math.exp(this.score(n) - this.max);
  }

  /** The order's first `kept` tokens (1 <= kept <= the vocabulary) as a Cut. */
  cut(kept: number): Cut {
    const score = this.score(kept - 1);
    let first = kept - 1;
    while (first > 0 && -this.sorted[first - 1] === score) first--;
    return { score, ties: kept - first };
  }

  /** The n-th token of the order: the last of its cut. */
  at(n: number): number {
    const { score, ties } = this.cut(n + 1), { scores } = this;
    let left = ties;
    for (let i = 0; i < scores.length; i++) if (scores[i] === score && --left === 0) return i;
    return scores.length - 1; // (a NaN score: every logit -Infinity)
  }

  /** The tokens of a cut (of at most `kept`), ascending: from the sorted bands when they hold them, else from every token. */
  tokens(cut: Cut, kept: number): Int32Array {
    const fromBands = kept <= this.count, n = fromBands ? this.count : this.scores.length;
    const { scores } = this, out = new Int32Array(kept), keeps = inCut(cut);
    let m = 0;
    for (let k = 0; k < n && m < kept; k++) {
      const i = fromBands ? this.ids[k] : k;
      if (keeps(scores[i])) out[m++] = i;
    }
    // (a band's ties are in index order, so inCut takes the right ones; the bands are not)
    return fromBands ? out.subarray(0, m).sort() : out.subarray(0, m);
  }

  /** The weights of the first `kept` tokens, added up in the order (of all of them, in index order, without sorting). */
  mass(kept: number): number {
    if (kept === this.scores.length) return this.total;
    let z = 0;
    for (let n = 0; n < kept; n++) z += this.weight(n);
    return z;
  }

  /** How many tokens score `floor` or more (top-k's: its k-th largest score), sorting their scores. */
  from(floor: number): number {
    this.cover(Math.exp(floor - this.max)); // (exp never decreases: every such token's weight is at least this)
    let n = 0;
    while (n < this.count && -this.sorted[n] >= floor) n++;
    return n;
  }

  /** Sorts the band of tokens whose weight is at least w and below the last threshold (every token left for -Infinity or NaN). */
  private cover(given: number): void {
    const w = Number.isNaN(given) ? Number.NEGATIVE_INFINITY : given; // (NaN weights: every logit -Infinity)
    if (w >= this.covered) return;
    const { scores, weights, sorted, ids } = this, c = this.covered, all = w === Number.NEGATIVE_INFINITY;
    let m = this.count;
    for (let i = 0; i < weights.length; i++) {
      if (!(weights[i] >= c) && (all || weights[i] >= w)) {
        sorted[m] = -scores[i];
        ids[m++] = i;
      }
    }
    sorted.subarray(this.count, m).sort();
    this.count = m;
    this.covered = w;
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
