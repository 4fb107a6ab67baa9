// The reference engine's KV pool: the shared bookkeeping (src/core/kvPool.ts) over plain typed arrays
// of blocks [kvHeads, blocks, blockSize, D] (the wasm engine's layout) in the pool's format (src/reference/kvFormats.ts), and for
// int8 one float32 scale per row.
import { checkKVPoolOptions, PagedPool, type PoolDims, type RowsSource } from '../core/kvPool.js';
import type { KVPool } from '../core/servingTypes.js';
import { fromFloat16Bits, quantizeInt8Row, toFloat16Bits } from './kvFormats.js';

const pools = new WeakSet<PagedPool>();

/** Whether `pool` is a reference engine's. */
export const isReferencePool = (pool: PagedPool): boolean => pools.has(pool);

/** One side (keys or values) of a pool: rows of D elements in the format, and int8's scales. */
class Rows {
  readonly data: Float32Array | Uint16Array | Int8Array;
  readonly scales: Float32Array;
  constructor(readonly d: PoolDims, readonly D: number) {
    const count = d.blocks * d.kvHeads * d.blockSize * D;
    this.data = d.dtype === 'float32' ? new Float32Array(count) : d.dtype === 'float16' ? new Uint16Array(count) : new Int8Array(count);
    this.scales = new Float32Array(d.dtype === 'int8' ? d.blocks * d.kvHeads * d.blockSize : 0);
  }

  /** Row index of (slot, kv head). */
  row(slot: number, g: number): number {
    return g * this.d.blocks * this.d.blockSize + slot;
  }

  store(slot: number, g: number, x: Float32Array, at: number): void {
    const to = this.row(slot, g) * this.D;
    if (this.data instanceof Float32Array) this.data.set(x.subarray(at, at + this.D), to);
    else if (this.data instanceof Uint16Array) for (let c = 0; c < this.D; c++) this.data[to + c] = toFloat16Bits(x[at + c]);
    else this.scales[this.row(slot, g)] = quantizeInt8Row(x, at, this.D, this.data, to);
  }

  load(slot: number, g: number, out: Float32Array, at: number): void {
    const from = this.row(slot, g) * this.D;
    for (let c = 0; c < this.D; c++) {
      const q = this.data[from + c];
      out[at + c] = this.data instanceof Float32Array ? q : this.data instanceof Uint16Array ? fromFloat16Bits(q) : Math.fround(q * this.scales[this.row(slot, g)]);
    }
  }

  copyBlock(from: number, to: number): void {
    const bs = this.d.blockSize;
    for (let g = 0; g < this.d.kvHeads; g++) {
      const a = this.row(from * bs, g), b = this.row(to * bs, g);
      this.data.copyWithin(b * this.D, a * this.D, (a + bs) * this.D);
      this.scales.copyWithin(b, a, a + bs);
    }
  }
}

export function createKVPool(options: unknown): KVPool {
  const d = checkKVPoolOptions(options);
  let keys: Rows | null = new Rows(d, d.headDim), values: Rows | null = new Rows(d, d.valueDim);
  const H = d.kvHeads;
  const pool = new PagedPool(d, {
    append(rows: RowsSource, place) {
      if (typeof rows.keys === 'number' || typeof rows.values === 'number') throw new TypeError('qkv: the reference pool takes rows from tensors');
      const slots = place();
      for (let i = 0; i < rows.n; i++) {
        for (let g = 0; g < H; g++) {
          keys!.store(slots[i], g, (rows.keys as { data: Float32Array }).data, rows.keysAt + (i * H + g) * d.headDim);
          values!.store(slots[i], g, (rows.values as { data: Float32Array }).data, rows.valuesAt + (i * H + g) * d.valueDim);
        }
      }
    },
    read(slots) {
      const k = new Float32Array(slots.length * H * d.headDim), v = new Float32Array(slots.length * H * d.valueDim);
      slots.forEach((slot, i) => {
        for (let g = 0; g < H; g++) {
          keys!.load(slot, g, k, (i * H + g) * d.headDim);
          values!.load(slot, g, v, (i * H + g) * d.valueDim);
        }
      });
      return { keys: k, values: v };
    },
    copyBlock(from, to) { keys!.copyBlock(from, to); values!.copyBlock(from, to); },
    dispose() { keys = null; values = null; },
  }, () => undefined);
  pools.add(pool);
  return pool;
}
