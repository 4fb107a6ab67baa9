// The wasm engine's KV pool: the shared bookkeeping (src/core/kvPool.ts) over two held blocks of
// engine memory [blocks, kvHeads, blockSize, D], allocated once, which the paged attention kernel
// reads in place.
import { checkKVPoolOptions, PagedPool } from '../core/kvPool.js';
import { formatCall } from '../core/tensor.js';
import type { Arena } from './memory.js';

/** The pools of each arena (engine): a pool of another engine is refused. */
const pools = new WeakMap<PagedPool, { arena: Arena; k: number; v: number }>();

/** Where a pool of this arena keeps its keys and values (byte addresses), or null when it is not this engine's. */
export function poolBlocks(arena: Arena, pool: PagedPool): { k: number; v: number } | null {
  const p = pools.get(pool);
  return p && p.arena === arena ? p : null;
}

export function createWasmKVPool(arena: Arena, options: unknown, alive: () => unknown): PagedPool {
  const d = checkKVPoolOptions(options);
  const kCount = d.blocks * d.kvHeads * d.blockSize * d.headDim, vCount = d.blocks * d.kvHeads * d.blockSize * d.valueDim;
  const describe = () => formatCall('createKVPool', { keys: [d.blocks, d.kvHeads, d.blockSize, d.headDim], values: [d.blocks, d.kvHeads, d.blockSize, d.valueDim] });
  const k = arena.hold(kCount * 4, 'cache', describe);
  let v: number;
  try {
    v = arena.hold(vCount * 4, 'cache', describe);
  } catch (error) {
    arena.free(k);
    throw error;
  }
  let live = true;
  const pool = new PagedPool(d, {
    views: () => ({ keys: arena.f32(k, kCount), values: arena.f32(v, vCount) }),
    dispose: () => {
      if (!live) return;
      live = false;
      arena.free(k);
      arena.free(v);
    },
  }, alive);
  pools.set(pool, { arena, k, v });
  return pool;
}
