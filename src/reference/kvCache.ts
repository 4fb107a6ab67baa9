// The reference engine's KV cache: two plain Float32Arrays [B, Hkv, capacity, D].
import { checkAppend, checkKVCacheOptions, copyIntoCache, type CacheDims } from '../core/kvCache.js';
import { fromData, type Tensor } from '../core/tensor.js';
import type { KVCache } from '../core/types.js';

export class ReferenceKVCache implements KVCache {
  readonly batch: number; readonly kvHeads: number; readonly headDim: number; readonly valueDim: number; readonly capacity: number;
  private held = 0;
  private k: Float32Array | null;
  private v: Float32Array | null;

  constructor(options: unknown) {
    const d: CacheDims = checkKVCacheOptions(options);
    ({ batch: this.batch, kvHeads: this.kvHeads, headDim: this.headDim, valueDim: this.valueDim, capacity: this.capacity } = d);
    this.k = new Float32Array(d.batch * d.kvHeads * d.capacity * d.headDim);
    this.v = new Float32Array(d.batch * d.kvHeads * d.capacity * d.valueDim);
  }

  get length(): number { return this.held; }

  private live(): [Float32Array, Float32Array] {
    if (!this.k || !this.v) throw new Error('qkv: this KV cache has been disposed');
    return [this.k, this.v];
  }

  append(key: Tensor, value: Tensor): void {
    const [k, v] = this.live();
    const Lnew = checkAppend(this, this.held, key, value);
    copyIntoCache(k, key.data, this.batch * this.kvHeads, this.capacity, this.held, Lnew, this.headDim);
    copyIntoCache(v, value.data, this.batch * this.kvHeads, this.capacity, this.held, Lnew, this.valueDim);
    this.held += Lnew;
  }

  read(): { keys: Tensor; values: Tensor } {
    const [k, v] = this.live();
    const BH = this.batch * this.kvHeads, L = this.held;
    const take = (src: Float32Array, D: number) => {
      const out = new Float32Array(BH * L * D);
      for (let bh = 0; bh < BH; bh++) out.set(src.subarray(bh * this.capacity * D, (bh * this.capacity + L) * D), bh * L * D);
      return fromData(out, [this.batch, this.kvHeads, L, D]);
    };
    return { keys: take(k, this.headDim), values: take(v, this.valueDim) };
  }

  reset(): void { this.live(); this.held = 0; }

  dispose(): void { this.k = null; this.v = null; }
}
