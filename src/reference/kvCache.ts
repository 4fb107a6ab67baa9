// The reference engine's KV cache: two plain Float32Arrays [B, Hkv, capacity, D].

import { disposeSymbol } from '../core/dispose.js';
import { type CacheDims, CachePositions, checkAppend, checkKVCacheOptions, copyIntoCache, readCache } from '../core/kvCache.js';
import type { Tensor } from '../core/tensor.js';
import type { KVCache } from '../core/types.js';

/** The caches this module made: a Proxy or a look-alike is not one of them, whatever instanceof says. */
const genuine = new WeakSet<object>();

/** Whether `cache` is a reference engine's cache. */
export function isReferenceCache(cache: unknown): cache is ReferenceKVCache {
  return typeof cache === 'object' && cache !== null && genuine.has(cache);
}

export class ReferenceKVCache extends CachePositions implements KVCache {
  readonly batch: number; readonly kvHeads: number; readonly headDim: number; readonly valueDim: number; readonly capacity: number;
  private k: Float32Array | null;
  private v: Float32Array | null;

  constructor(options: unknown) {
    super();
    const d: CacheDims = checkKVCacheOptions(options);
    ({ batch: this.batch, kvHeads: this.kvHeads, headDim: this.headDim, valueDim: this.valueDim, capacity: this.capacity } = d);
    this.k = new Float32Array(d.batch * d.kvHeads * d.capacity * d.headDim);
    this.v = new Float32Array(d.batch * d.kvHeads * d.capacity * d.valueDim);
    genuine.add(this);
  }

  private buffers(): [Float32Array, Float32Array] {
    if (!this.k || !this.v) throw new Error('qkv: this KV cache has been disposed');
    return [this.k, this.v];
  }

  append(key: Tensor, value: Tensor): void {
    const [k, v] = this.buffers();
    const { Lnew, k: keys, v: values } = checkAppend(this, this.positions, key, value);
    copyIntoCache(k, keys.data, this.batch * this.kvHeads, this.capacity, this.positions, Lnew, this.headDim);
    copyIntoCache(v, values.data, this.batch * this.kvHeads, this.capacity, this.positions, Lnew, this.valueDim);
    this.positions += Lnew;
  }

  read(): { keys: Tensor; values: Tensor } {
    const [k, v] = this.buffers();
    return {
      keys: readCache(k, this.batch, this.kvHeads, this.capacity, this.positions, this.headDim),
      values: readCache(v, this.batch, this.kvHeads, this.capacity, this.positions, this.valueDim),
    };
  }

  reset(): void { this.buffers(); this.positions = 0; }

  dispose(): void { this.k = null; this.v = null; }

  [disposeSymbol](): void { this.dispose(); }
}
