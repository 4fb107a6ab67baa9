// Validation shared by both engines' KV caches.
import { checkShape, formatShape, fromData, type Tensor } from './tensor.js';
import type { KVCache, KVCacheOptions } from './types.js';
import { type Checked, checkIntact, checkOptions, checkPositiveCount, checkTensor, describeValue } from './validate.js';

export interface CacheDims { batch: number; kvHeads: number; headDim: number; valueDim: number; capacity: number }

export function checkKVCacheOptions(options: unknown): CacheDims {
  const op = 'createKVCache';
  const o = checkOptions<KVCacheOptions>(op, options, ['batch', 'kvHeads', 'headDim', 'valueDim', 'capacity']);
  // every size at least 1: a cache with none of one of them could hold nothing
  const need = (name: keyof KVCacheOptions) => {
    const v = checkPositiveCount(`${op}: options.${name}`, o[name]);
    if (v === undefined) throw new TypeError(`${op}: options.${name} is required`);
    return v;
  };
  const batch = need('batch'), kvHeads = need('kvHeads'), headDim = need('headDim'), capacity = need('capacity');
  const valueDim = checkPositiveCount(`${op}: options.valueDim`, o.valueDim) ?? headDim;
  // each of the two blocks is a tensor [batch, kvHeads, capacity, D]: sizes bounded like any shape
  checkShape(`${op}: the keys`, [batch, kvHeads, capacity, headDim]);
  checkShape(`${op}: the values`, [batch, kvHeads, capacity, valueDim]);
  return { batch, kvHeads, headDim, valueDim, capacity };
}

/** Checks keys [B, Hkv, Lnew, E] and values [B, Hkv, Lnew, Ev] against the cache and its room; returns them as read. */
export function checkAppend(d: CacheDims, length: number, key: unknown, value: unknown): { Lnew: number; k: Checked; v: Checked } {
  const op = 'KVCache.append';
  const k = checkTensor(`${op}: key`, key, [4]);
  const v = checkTensor(`${op}: value`, value, [4]);
  const Lnew = k.shape[2];
  const fits = (t: Tensor, D: number) => t.shape[0] === d.batch && t.shape[1] === d.kvHeads && t.shape[2] === Lnew && t.shape[3] === D;
  if (!fits(k, d.headDim) || !fits(v, d.valueDim)) {
    throw new RangeError(`${op}: expected key [${d.batch}, ${d.kvHeads}, L, ${d.headDim}] and value [${d.batch}, ${d.kvHeads}, L, ${d.valueDim}], got ${formatShape(k.shape)} and ${formatShape(v.shape)}`);
  }
  checkRoom(op, length, d.capacity, Lnew);
  checkIntact(op, k, v);
  return { Lnew, k, v };
}

/** Throws when `Lnew` more positions do not fit: an append that fails changes nothing. */
export function checkRoom(op: string, length: number, capacity: number, Lnew: number): void {
  if (length + Lnew > capacity) {
    throw new RangeError(`${op}: appending ${Lnew} positions to a cache holding ${length} of ${capacity} would overflow it`);
  }
}

/** options.cache of an op: something shaped like a KVCache (whether it is this engine's, the engine checks). */
export function checkCacheType(op: string, cache: unknown): KVCache {
  const c = cache as KVCache | null;
  if (c === null || typeof c !== 'object' || typeof c.capacity !== 'number' || typeof c.append !== 'function') {
    throw new TypeError(`${op}: options.cache must be a KVCache (engine.createKVCache), got ${describeValue(cache)}`);
  }
  return c;
}

/** Copies rows [BH, Lnew, D] into a [BH, capacity, D] buffer at position `at`. */
export function copyIntoCache(dst: Float32Array, src: Float32Array, BH: number, capacity: number, at: number, Lnew: number, D: number): void {
  for (let bh = 0; bh < BH; bh++) dst.set(src.subarray(bh * Lnew * D, (bh + 1) * Lnew * D), (bh * capacity + at) * D);
}

/** The first `length` positions of a [BH, capacity, D] buffer as a fresh [B, H, length, D] tensor. */
export function readCache(src: Float32Array, B: number, H: number, capacity: number, length: number, D: number): Tensor {
  const out = new Float32Array(B * H * length * D);
  for (let bh = 0; bh < B * H; bh++) out.set(src.subarray(bh * capacity * D, (bh * capacity + length) * D), bh * length * D);
  return fromData(out, [B, H, length, D]);
}

/** What both engines' caches share: how many positions they hold, and appends that are taken back when the call fails. */
export abstract class CachePositions {
  protected positions = 0;

  get length(): number { return this.positions; }

  /** Runs `fn`, which may append; if it throws, the cache holds what it held before. */
  atomically<T>(fn: () => T): T {
    const before = this.positions;
    try {
      return fn();
    } catch (error) {
      this.positions = before;
      throw error;
    }
  }
}
