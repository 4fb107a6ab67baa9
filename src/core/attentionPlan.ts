// Validation and normalization of scaledDotProductAttention's inputs, shared by both engines.
import { broadcastStrides } from './broadcast.js';
import { formatShape, type Tensor } from './tensor.js';
import { checkCacheType, checkRoom } from './kvCache.js';
import type { AttentionOptions } from './types.js';
import {
  checkBoolean, checkCount, checkMask, checkNumber, checkOptions, checkOut, checkTensor, checkValidLens, describeValue,
} from './validate.js';

/** Codes shared with the wasm attention kernel; must match assembly/kernels/attention.ts. */
export const CAUSAL_NONE = 0, CAUSAL_TOP_LEFT = 1, CAUSAL_BOTTOM_RIGHT = 2;
/** Codes shared with the wasm attention kernel; must match assembly/kernels/attention.ts. */
export const MASK_NONE = 0, MASK_BOOLEAN = 1, MASK_ADDITIVE = 2;

export interface AttentionPlan {
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
  causal: number;
  /** -1 = unbounded. */
  windowLeft: number; windowRight: number;
  validLens: Int32Array | null;
  mask: { kind: number; data: Uint8Array | Float32Array; strides: number[] } | null;
  pastKey: Tensor | null; pastValue: Tensor | null;
  returnWeights: boolean;
  /** options.out, checked to have the output's shape. */
  out: Tensor | undefined;
  outputShape: number[]; weightsShape: number[];
  presentKeyShape: number[]; presentValueShape: number[];
}

export function parseCausal(name: string, causal: unknown): number {
  if (causal === undefined || causal === false) return CAUSAL_NONE;
  if (causal === true || causal === 'top-left') return CAUSAL_TOP_LEFT;
  if (causal === 'bottom-right') return CAUSAL_BOTTOM_RIGHT;
  if (typeof causal === 'string') throw new RangeError(`${name} must be true, false, 'top-left' or 'bottom-right', got '${causal}'`);
  throw new TypeError(`${name} must be a boolean, 'top-left' or 'bottom-right', got ${describeValue(causal)}`);
}

/** Validates the inputs of scaledDotProductAttention and resolves every default. */
export function planAttention(query: unknown, key: unknown, value: unknown, options?: AttentionOptions): AttentionPlan {
  const op = 'scaledDotProductAttention';
  const q = checkTensor(`${op}: query`, query, [3, 4]);
  const rank = q.shape.length as 3 | 4;
  const k = checkTensor(`${op}: key`, key, [rank]);
  const v = checkTensor(`${op}: value`, value, [rank]);
  const o = checkOptions<AttentionOptions>(op, options);

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

  let pastKey: Tensor | null = null, pastValue: Tensor | null = null, Lpast = 0;
  let cacheDefaultCausal = false;
  if (o.cache !== undefined) {
    // the new keys and values go into the cache first, then attention runs over all of it
    const c = checkCacheType(op, o.cache);
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

  const scale = checkNumber(`${op}: options.scale`, o.scale, 0) ?? (E > 0 ? 1 / Math.sqrt(E) : 1);
  const softcap = checkNumber(`${op}: options.softcap`, o.softcap, 0) ?? 0;
  // with a cache, queries line up with the newest keys unless causal says otherwise
  const causal = cacheDefaultCausal ? CAUSAL_BOTTOM_RIGHT : parseCausal(`${op}: options.causal`, o.causal);
  let windowLeft = -1, windowRight = -1;
  if (o.window !== undefined) {
    if (o.window === null || typeof o.window !== 'object' || Array.isArray(o.window)) {
      throw new TypeError(`${op}: options.window must be an object { left?, right? }, got ${describeValue(o.window)}`);
    }
    const left = checkCount(`${op}: options.window.left`, o.window.left, true);
    const right = checkCount(`${op}: options.window.right`, o.window.right, true);
    if (left !== undefined && left !== Infinity) windowLeft = left;
    if (right !== undefined && right !== Infinity) windowRight = right;
  }
  const validLens = o.validLens === undefined ? null : checkValidLens(`${op}: options.validLens`, o.validLens, [B], Lk);
  const returnWeights = checkBoolean(`${op}: options.returnWeights`, o.returnWeights) ?? false;

  let mask: AttentionPlan['mask'] = null;
  if (o.mask !== undefined) {
    const m = checkMask(`${op}: options.mask`, o.mask);
    // 3-D inputs broadcast masks against the [B, Lq, Lk] scores, as PyTorch does
    const strides = rank === 3 && m.shape.length <= 3
      ? (([sb, sq, sk]) => [sb, 0, sq, sk])(broadcastStrides(`${op}: options.mask`, m.shape, [B, Lq, Lk]))
      : broadcastStrides(`${op}: options.mask`, m.shape, [B, Hq, Lq, Lk]);
    mask = { kind: m.data instanceof Uint8Array ? MASK_BOOLEAN : MASK_ADDITIVE, data: m.data, strides };
  }

  const shape = (h: number, l: number, d: number) => (rank === 3 ? [B, l, d] : [B, h, l, d]);
  // checked with the rest, before a cache is appended to
  const out = checkOut(op, options, shape(Hq, Lq, Ev));
  return {
    rank, B, Hq, Hkv, Lq, Lpast, Lnew, Lk, E, Ev, scale, softcap, causal, windowLeft, windowRight,
    validLens, mask, pastKey, pastValue, returnWeights, out,
    outputShape: shape(Hq, Lq, Ev), weightsShape: shape(Hq, Lq, Lk),
    presentKeyShape: shape(Hkv, Lk, E), presentValueShape: shape(Hkv, Lk, Ev),
  };
}
