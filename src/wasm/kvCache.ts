// The wasm engine's KV cache: two blocks [B, Hkv, capacity, D] held in engine memory across calls,
// which attention reads in place (its layout strides step over the unused capacity).

import { disposeSymbol } from '../core/dispose.js';
import { CachePositions, checkAppend, checkCacheType, checkKVCacheOptions, checkRoom, readCache } from '../core/kvCache.js';
import { formatCall, type Tensor } from '../core/tensor.js';
import type { KVCache } from '../core/types.js';
import type { Checked } from '../core/validate.js';
import type { Arena } from './memory.js';

/** The caches this module made: a Proxy or a look-alike is not one of them, whatever instanceof says. */
const genuine = new WeakSet<object>();

export class WasmKVCache extends CachePositions implements KVCache {
  readonly batch: number; readonly kvHeads: number; readonly headDim: number; readonly valueDim: number; readonly capacity: number;
  private blocks: { k: number; v: number } | null;

  /** `alive` throws once the engine that made the cache is disposed. */
  constructor(readonly arena: Arena, options: unknown, private readonly alive: () => unknown = () => undefined) {
    super();
    const d = checkKVCacheOptions(options);
    ({ batch: this.batch, kvHeads: this.kvHeads, headDim: this.headDim, valueDim: this.valueDim, capacity: this.capacity } = d);
    const rows = d.batch * d.kvHeads * d.capacity;
    const describe = () => formatCall('createKVCache', { keys: [d.batch, d.kvHeads, d.capacity, d.headDim], values: [d.batch, d.kvHeads, d.capacity, d.valueDim] });
    const k = arena.hold(rows * d.headDim * 4, 'cache', describe);
    let v: number;
    try {
      v = arena.hold(rows * d.valueDim * 4, 'cache', describe);
    } catch (error) {
      arena.free(k);
      throw error;
    }
    this.blocks = { k, v };
    genuine.add(this);
  }

  /** Byte addresses of the key and value blocks. */
  pointers(): { k: number; v: number } {
    if (!this.blocks) throw new Error('qkv: this KV cache has been disposed');
    this.alive();
    return this.blocks;
  }

  private views(): [Float32Array, Float32Array] {
    const { k, v } = this.pointers();
    const rows = this.batch * this.kvHeads * this.capacity;
    return [this.arena.f32(k, rows * this.headDim), this.arena.f32(v, rows * this.valueDim)];
  }

  append(key: Tensor, value: Tensor): void {
    this.pointers();
    const { k, v } = checkAppend(this, this.positions, key, value);
    this.appendChecked(k, v);
  }

  /**
   * Appends keys and values already checked to fit (checkAppend, planAttention), from JavaScript or
   * from engine memory (read where they are, even if the memory grew since they were read).
   */
  appendChecked(key: Checked, value: Checked): void {
    const { k, v } = this.pointers();
    const Lnew = key.shape[key.shape.length - 2];
    checkRoom('KVCache.append', this.positions, this.capacity, Lnew);
    for (const [c, base, D] of [[key, k, this.headDim], [value, v, this.valueDim]] as const) {
      const inMemory = this.arena.resident(c, 'KVCache.append');
      const mem = new Float32Array(this.arena.memory.buffer);
      const rows = Lnew * D;
      for (let bh = 0; bh < this.batch * this.kvHeads; bh++) {
        const to = (base >> 2) + (bh * this.capacity + this.positions) * D;
        if (inMemory) mem.copyWithin(to, (c.byteOffset >> 2) + bh * rows, (c.byteOffset >> 2) + (bh + 1) * rows);
        else mem.set(c.data.subarray(bh * rows, (bh + 1) * rows), to);
      }
    }
    this.positions += Lnew;
  }

  /** Appends rows already in engine memory: row (b, h, l) of keys at kAt(b, h, l), of values at vAt. */
  appendFrom(Lnew: number, kAt: (b: number, h: number, l: number) => number, vAt: (b: number, h: number, l: number) => number): void {
    checkRoom('KVCache.append', this.positions, this.capacity, Lnew);
    const { k, v } = this.pointers();
    const mem = new Float32Array(this.arena.memory.buffer);
    for (let b = 0; b < this.batch; b++)
      for (let h = 0; h < this.kvHeads; h++)
        for (let l = 0; l < Lnew; l++) {
          const row = (b * this.kvHeads + h) * this.capacity + this.positions + l;
          mem.copyWithin((k >> 2) + row * this.headDim, kAt(b, h, l) >> 2, (kAt(b, h, l) >> 2) + this.headDim);
          mem.copyWithin((v >> 2) + row * this.valueDim, vAt(b, h, l) >> 2, (vAt(b, h, l) >> 2) + this.valueDim);
        }
    this.positions += Lnew;
  }

  read(): { keys: Tensor; values: Tensor } {
    const [k, v] = this.views();
    return {
      keys: readCache(k, this.batch, this.kvHeads, this.capacity, this.positions, this.headDim),
      values: readCache(v, this.batch, this.kvHeads, this.capacity, this.positions, this.valueDim),
    };
  }

  reset(): void { this.pointers(); this.positions = 0; }

  dispose(): void {
    if (!this.blocks) return;
    this.arena.free(this.blocks.k);
    this.arena.free(this.blocks.v);
    this.blocks = null;
  }

  [disposeSymbol](): void { this.dispose(); }
}

/** The cache behind options.cache, checked to belong to this engine. */
export function engineCache(arena: Arena, cache: unknown, op: string): WasmKVCache {
  checkCacheType(op, cache); // not a cache at all: the message both engines give
  if (!genuine.has(cache as object) || (cache as WasmKVCache).arena !== arena) {
    throw new TypeError(`${op}: options.cache must come from this engine (engine.createKVCache)`);
  }
  return cache as WasmKVCache;
}
