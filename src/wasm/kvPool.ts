// The wasm engine's KV pool: the shared bookkeeping (src/core/kvPool.ts) over held blocks of engine
// memory, allocated once: keys and values [kvHeads, blocks, blockSize, D] in the pool's format (each kv
// head's blocks side by side, so that the consecutive blocks of a sequence are one stream to read)
// (float32, binary16 or int8) and, for int8, a float32 scale per row. assembly/kernels/kvStore.ts
// converts rows on the way in and out; the paged attention kernel reads the blocks in place.
import { checkKVPoolOptions, type KVDtype, PagedPool, type RowsSource } from '../core/kvPool.js';
import { formatCall } from '../core/tensor.js';
import type { Checked } from '../core/validate.js';
import type { WasmContext } from './context.js';
import { type Arena, aligned } from './memory.js';

/**
 * Where a pool keeps its blocks (byte addresses), and its format's kernel suffix. kRowExtra/vRowExtra: a float32 per
 * row, int8's scales or binary16's flags of rows holding Infinity or NaN (0 for float32).
 */
export interface PoolStorage { arena: Arena; k: number; v: number; kRowExtra: number; vRowExtra: number; format: 'f32' | 'f16' | 'i8' }

const FORMATS: Record<KVDtype, { format: PoolStorage['format']; bytes: number }> = {
  float32: { format: 'f32', bytes: 4 }, float16: { format: 'f16', bytes: 2 }, int8: { format: 'i8', bytes: 1 },
};

/** The pools of each arena (engine): a pool of another engine is refused. */
/**
 * Bytes one append of `n` rows allocates when its rows are already in wasm memory (its slots),
 * released when it returns: what batchAttention makes room for before the pool changes.
 */
export const appendBytes = (n: number): number => aligned(4 * n);

const pools = new WeakMap<PagedPool, PoolStorage>();

/** Where a pool of this arena keeps its blocks, or null when it is not this engine's. */
export function poolStorage(arena: Arena, pool: PagedPool): PoolStorage | null {
  const p = pools.get(pool);
  return p && p.arena === arena ? p : null;
}

export function createWasmKVPool({ kernels, arena }: WasmContext, options: unknown, alive: () => unknown): PagedPool {
  const d = checkKVPoolOptions(options);
  const { format, bytes } = FORMATS[d.dtype];
  const rows = d.blocks * d.kvHeads * d.blockSize, H = d.kvHeads, headRows = d.blocks * d.blockSize;
  const describe = () => formatCall('createKVPool', { keys: [d.kvHeads, d.blocks, d.blockSize, d.headDim], values: [d.kvHeads, d.blocks, d.blockSize, d.valueDim] });
  const held: number[] = [];
  const hold = (n: number) => { const ptr = arena.hold(n, 'cache', describe); held.push(ptr); return ptr; };
  let b: PoolStorage;
  try {
    const scaled = format !== 'f32'; // int8's row scales; binary16's rows holding Infinity or NaN
    b = { arena, k: hold(rows * d.headDim * bytes), v: hold(rows * d.valueDim * bytes), kRowExtra: scaled ? hold(rows * 4) : 0, vRowExtra: scaled ? hold(rows * 4) : 0, format };
  } catch (error) {
    held.forEach((p) => arena.free(p));
    throw error;
  }
  const storage = b;
  const store = kernels[`kv_store_${format}`], load = kernels[`kv_load_${format}`];
  /** The byte address of rows: where they are in this memory, else a copy's (inside the caller's scope). */
  const address = (c: Checked | number, at: number, count: number) => {
    if (typeof c === 'number') return c + at * 4;
    return arena.resident(c, 'KVSequence.append') ? c.byteOffset + at * 4 : arena.write(c.data.subarray(at, at + count));
  };
  let live = true;
  const pool = new PagedPool(d, {
    append(r: RowsSource, place) {
      arena.scoped(() => {
        const pk = address(r.keys, r.keysAt, r.n * H * d.headDim), pv = address(r.values, r.valuesAt, r.n * H * d.valueDim);
        const ps = arena.allocWords(r.n); // appendBytes(r.n)
        const slots = place(); // nothing fails from here on
        new Int32Array(arena.memory.buffer, ps, r.n).set(slots);
        store(storage.k, storage.kRowExtra, pk, r.n, H, d.headDim, ps, headRows);
        store(storage.v, storage.vRowExtra, pv, r.n, H, d.valueDim, ps, headRows);
      });
    },
    read(slots) {
      return arena.scoped(() => {
        const n = slots.length, ps = arena.write(slots);
        const pk = arena.allocF32(n * H * d.headDim), pv = arena.allocF32(n * H * d.valueDim);
        load(pk, storage.k, storage.kRowExtra, n, H, d.headDim, ps, headRows);
        load(pv, storage.v, storage.vRowExtra, n, H, d.valueDim, ps, headRows);
        return { keys: arena.read(pk, n * H * d.headDim), values: arena.read(pv, n * H * d.valueDim) };
      });
    },
    copyBlock(from, to) {
      const memory = new Uint8Array(arena.memory.buffer);
      const copy = (base: number, rowBytes: number) => {
        const blockBytes = d.blockSize * rowBytes, headBytes = headRows * rowBytes;
        for (let g = 0; g < H; g++) {
          const at = base + g * headBytes;
          memory.copyWithin(at + to * blockBytes, at + from * blockBytes, at + (from + 1) * blockBytes);
        }
      };
      copy(storage.k, d.headDim * bytes);
      copy(storage.v, d.valueDim * bytes);
      if (storage.kRowExtra) { copy(storage.kRowExtra, 4); copy(storage.vRowExtra, 4); }
    },
    dispose: () => {
      if (!live) return;
      live = false;
      held.forEach((p) => arena.free(p));
    },
  }, alive);
  pools.set(pool, storage);
  return pool;
}
