// Validation and normalization of scaledDotProductAttention's inputs, shared by both engines.
import { broadcastStrides } from './broadcast.js';
import { checkCacheType, checkRoom } from './kvCache.js';
import { checkShape, formatShape } from './tensor.js';
import type { AttentionOptions, KVCache } from './types.js';
import {
  type Checked, 
  checkBoolean, checkCount, checkFloat32, checkIntact, checkMask, checkOptions, checkOut, checkTensor, checkValidLens, describeValue,type Out,
} from './validate.js';

/** Codes shared with the wasm attention kernels; must match assembly/inline/keyRange.ts (createEngine and test/errors.test.ts compare). */
export const CAUSAL_NONE = 0, CAUSAL_TOP_LEFT = 1, CAUSAL_BOTTOM_RIGHT = 2;
/** Codes shared with the wasm attention kernels; must match assembly/inline/scores.ts (createEngine and test/errors.test.ts compare). */
export const MASK_NONE = 0, MASK_BOOLEAN = 1, MASK_ADDITIVE = 2;

export interface AttentionPlan {
  query: Checked; key: Checked; value: Checked;
  /** options.cache, read once and checked to be cache-shaped (whose it is, each engine checks). */
  cache: KVCache | null;
  /** 3 for `[B, L, E]` inputs (H = 1), 4 for `[B, H, L, E]`. */
  rank: 3 | 4;
  B: number; Hq: number; Hkv: number;
  Lq: number; Lpast: number; Lnew: number;
  /** Lpast + Lnew: the length of the key axis attention runs over. */
  Lk: number;
  E: number; Ev: number;
  scale: number;
  /** 0 = off. */
  softcap: number;
  /** CAUSAL_NONE, CAUSAL_TOP_LEFT or CAUSAL_BOTTOM_RIGHT (as maskKind is a MASK_ code). */
  causalKind: number;
  /** -1 = unbounded. */
  windowLeft: number; windowRight: number;
  validLens: Int32Array | null;
  mask: { kind: number; checked: Checked<Uint8Array | Float32Array>; strides: number[] } | null;
  pastKey: Checked | null; pastValue: Checked | null;
  returnWeights: boolean;
  /** options.out, checked to have the output's shape. */
  out: Out | undefined;
  outputShape: readonly number[]; weightsShape: readonly number[];
  presentKeyShape: readonly number[]; presentValueShape: readonly number[];
}

/** The options scaledDotProductAttention reads, each once. */
const ATTENTION_OPTIONS = ['scale', 'mask', 'causal', 'validLens', 'softcap', 'window', 'pastKey', 'pastValue', 'returnWeights', 'cache', 'out'] as const;

/**
 * `options.scale` (default 1/√D) and `options.softcap` (0: none) of every attention op (`name`:
 * 'op: options' or 'op: params'). The kernels keep scores in base 2 (scale · log2 e) and divide by
 * softcap, in float32: both must be finite there.
 */
export function checkScoreOptions(name: string, scale: unknown, softcap: unknown, D: number): { scale: number; softcap: number } {
  return {
    scale: checkFloat32(`${name}.scale`, scale, 0, 126, 126) ?? (D > 0 ? 1 / Math.sqrt(D) : 1),
    softcap: checkFloat32(`${name}.softcap`, softcap, 0, 126, 126) ?? 0,
  };
}

/**
 * `options.window` of every attention op as the kernels take its sides: -1 for unbounded. A side of
 * at least `reach` reaches past every key from every query position, so it is unbounded too, which
 * keeps huge sides (2^31 - 1, 2^32, …) out of the kernels' 32-bit arithmetic.
 */
export function checkWindow(name: string, window: unknown, reach: number): { windowLeft: number; windowRight: number } {
  if (window === undefined) return { windowLeft: -1, windowRight: -1 };
  if (window === null || typeof window !== 'object' || Array.isArray(window)) {
    throw new TypeError(`${name}.window must be an object { left?, right? }, got ${describeValue(window)}`);
  }
  const { left, right } = window as { left?: unknown; right?: unknown };
  const side = (key: 'left' | 'right', x: unknown) => {
    const n = checkCount(`${name}.window.${key}`, x, true);
    return n === undefined || n >= reach ? -1 : n;
  };
  return { windowLeft: side('left', left), windowRight: side('right', right) };
}

export function parseCausal(name: string, causal: unknown): number {
  if (causal === undefined || causal === false) return CAUSAL_NONE;
  if (causal === true || causal === 'top-left') return CAUSAL_TOP_LEFT;
  if (causal === 'bottom-right') return CAUSAL_BOTTOM_RIGHT;
  if (typeof causal === 'string') throw new RangeError(`${name} must be true, false, 'top-left' or 'bottom-right', got '${causal}'`);
  throw new TypeError(`${name} must be a boolean, 'top-left' or 'bottom-right', got ${describeValue(causal)}`);
}

/** Validates the inputs of scaledDotProductAttention and resolves every default. */
export function planAttention(query: unknown, key: unknown, value: unknown, options?: AttentionOptions, checkOwnCache?: (cache: KVCache) => void): AttentionPlan {
  const op = 'scaledDotProductAttention';
  const q = checkTensor(`${op}: query`, query, [3, 4]);
  const rank = q.shape.length as 3 | 4;
  const k = checkTensor(`${op}: key`, key, [rank]);
  const v = checkTensor(`${op}: value`, value, [rank]);
  const o = checkOptions<AttentionOptions>(op, options, ATTENTION_OPTIONS);

  // view 3-D [B, L, E] as [B, 1, L, E]
  const as4 = (s: readonly number[]) => (rank === 3 ? [s[0], 1, s[1], s[2]] : [...s]);
  const [B, Hq, Lq, E] = as4(q.shape);
  const [Bk, Hkv, Lnew, Ek] = as4(k.shape);
  const [Bv, Hv, Lv, Ev] = as4(v.shape);
  const both = `query ${formatShape(q.shape)}, key ${formatShape(k.shape)}, value ${formatShape(v.shape)}`;
  if (Bk !== B || Bv !== B) throw new RangeError(`${op}: batch sizes differ: ${both}`);
  if (Ek !== E) throw new RangeError(`${op}: key feature size ${Ek} differs from query's ${E}: ${both}`);
  if (Hv !== Hkv || Lv !== Lnew) throw new RangeError(`${op}: value must have key's heads and length: ${both}`);
  if (Hkv === 0 ? Hq !== 0 : Hq % Hkv !== 0) {
    throw new RangeError(`${op}: query heads (${Hq}) must be a multiple of key/value heads (${Hkv}): ${both}`);
  }

  let pastKey: Checked | null = null, pastValue: Checked | null = null, Lpast = 0;
  let cacheDefaultCausal = false;
  let cache: KVCache | null = null;
  if (o.cache !== undefined) {
    // the new keys and values go into the cache first, then attention runs over all of it
    const c = cache = checkCacheType(op, o.cache);
    checkOwnCache?.(c); // a cache of another engine is refused before its shape is looked at
    if (o.pastKey !== undefined || o.pastValue !== undefined) throw new TypeError(`${op}: options.cache and options.pastKey/pastValue exclude each other`);
    if (rank !== 4) throw new RangeError(`${op}: options.cache needs 4-D [B, H, L, E] inputs, got query ${formatShape(q.shape)}`);
    const want = `[${c.batch}, ${c.kvHeads}, *, ${c.headDim}] / [${c.batch}, ${c.kvHeads}, *, ${c.valueDim}]`;
    if (B !== c.batch || Hkv !== c.kvHeads || E !== c.headDim || Ev !== c.valueDim) {
      throw new RangeError(`${op}: key and value must fit the cache ${want}: ${both}`);
    }
    checkRoom(op, c.length, c.capacity, Lnew);
    Lpast = c.length;
    cacheDefaultCausal = o.causal === undefined;
  }
  if (o.pastKey !== undefined || o.pastValue !== undefined) {
    if (o.pastKey === undefined || o.pastValue === undefined) throw new TypeError(`${op}: options.pastKey and options.pastValue must be given together`);
    // with 3-D inputs the cache may also be given 4-D with one head, [B, 1, Lpast, E]
    pastKey = checkTensor(`${op}: options.pastKey`, o.pastKey, rank === 3 ? [3, 4] : [4]);
    pastValue = checkTensor(`${op}: options.pastValue`, o.pastValue, rank === 3 ? [3, 4] : [4]);
    const as4Past = (s: readonly number[]) => (s.length === 3 ? as4(s) : [...s]);
    const pk = as4Past(pastKey.shape), pv = as4Past(pastValue.shape);
    Lpast = pk[2];
    if (pk[0] !== B || pk[1] !== Hkv || pk[3] !== E) {
      throw new RangeError(`${op}: options.pastKey: expected ${formatShape(rank === 3 ? [B, Lpast, E] : [B, Hkv, Lpast, E])}, got ${formatShape(pastKey.shape)}`);
    }
    if (pv[0] !== B || pv[1] !== Hkv || pv[2] !== Lpast || pv[3] !== Ev) {
      throw new RangeError(`${op}: options.pastValue: expected ${formatShape(rank === 3 ? [B, Lpast, Ev] : [B, Hkv, Lpast, Ev])}, got ${formatShape(pastValue.shape)}`);
    }
  }
  const Lk = Lpast + Lnew;

  const { scale, softcap } = checkScoreOptions(`${op}: options`, o.scale, o.softcap, E);
  // with a cache, queries line up with the newest keys unless causal says otherwise
  const causalKind = cacheDefaultCausal ? CAUSAL_BOTTOM_RIGHT : parseCausal(`${op}: options.causal`, o.causal);
  // query positions lie in [-Lq, Lq + Lk)
  const { windowLeft, windowRight } = checkWindow(`${op}: options`, o.window, Lq + Lk);
  const validLens = o.validLens === undefined ? null : checkValidLens(`${op}: options.validLens`, o.validLens, [B], Lk);
  const returnWeights = checkBoolean(`${op}: options.returnWeights`, o.returnWeights) ?? false;

  let mask: AttentionPlan['mask'] = null;
  if (o.mask !== undefined) {
    const m = checkMask(`${op}: options.mask`, o.mask);
    // 3-D inputs broadcast masks against the [B, Lq, Lk] scores, as PyTorch does
    const strides = rank === 3 && m.shape.length <= 3
      ? (([sb, sq, sk]) => [sb, 0, sq, sk])(broadcastStrides(`${op}: options.mask`, m.shape, [B, Lq, Lk]))
      : broadcastStrides(`${op}: options.mask`, m.shape, [B, Hq, Lq, Lk]);
    mask = { kind: m.data instanceof Uint8Array ? MASK_BOOLEAN : MASK_ADDITIVE, checked: m, strides };
  }

  // every size the call allocates, checked before anything is (a cache appended to, a buffer taken)
  const shape = (name: string, h: number, l: number, d: number) => checkShape(`${op}: ${name}`, rank === 3 ? [B, l, d] : [B, h, l, d]);
  const outputShape = shape('the output', Hq, Lq, Ev);
  const weightsShape = returnWeights ? shape('the weights', Hq, Lq, Lk) : [];
  const presentKeyShape = shape('the keys (past and new)', Hkv, Lk, E);
  const presentValueShape = shape('the values (past and new)', Hkv, Lk, Ev);
  const out = checkOut(op, o.out, outputShape);
  checkIntact(op, q, k, v, pastKey, pastValue, mask?.checked, out?.checked);
  return {
    query: q, key: k, value: v, cache,
    rank, B, Hq, Hkv, Lq, Lpast, Lnew, Lk, E, Ev, scale, softcap, causalKind, windowLeft, windowRight,
    validLens, mask, pastKey, pastValue, returnWeights, out,
    outputShape, weightsShape, presentKeyShape, presentValueShape,
  };
}
