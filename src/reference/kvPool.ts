// The reference engine's KV pool: the shared bookkeeping (src/core/kvPool.ts) over two plain
// Float32Arrays of blocks [blocks, kvHeads, blockSize, D].
import { checkKVPoolOptions, PagedPool } from '../core/kvPool.js';
import type { KVPool } from '../core/servingTypes.js';

const pools = new WeakSet<PagedPool>();

/** Whether `pool` is a reference engine's. */
export const isReferencePool = (pool: PagedPool): boolean => pools.has(pool);

export function createKVPool(options: unknown): KVPool {
  const d = checkKVPoolOptions(options);
  let keys: Float32Array | null = new Float32Array(d.blocks * d.kvHeads * d.blockSize * d.headDim);
  let values: Float32Array | null = new Float32Array(d.blocks * d.kvHeads * d.blockSize * d.valueDim);
  const pool = new PagedPool(d, {
    views: () => ({ keys: keys!, values: values! }),
    dispose: () => { keys = null; values = null; },
  }, () => undefined);
  pools.add(pool);
  return pool;
}
