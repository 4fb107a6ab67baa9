// The paged KV pool's bookkeeping, shared by both engines: which blocks each sequence holds, reference
// counts, copy on write. Engines only supply the storage (PoolStorage); kernels only see a block table
// (the block indices of a sequence, in order) and lengths.
//
// Invariants (asserted by test/serving.test.ts after every operation):
// - refs[b] is the number of sequences whose table holds block b; b is free exactly when refs[b] === 0,
//   and then it is in `free` once. So freeBlocks = blocks − (distinct blocks held), and the sum of
//   reference counts equals the total length of all tables.
// - a live sequence of length L holds exactly ceil(L / blockSize) blocks: position p is in block
//   table[floor(p / blockSize)], slot p % blockSize.
// - a block held by more than one sequence is never written: a sequence about to write into a shared
//   block first copies it into a block of its own (copy on write). Only a sequence's last block can be
//   written (appends go at the end), so an append copies at most one block.
// - every operation checks everything before it changes anything: a refused call changes no sequence
//   and no block.
import { checkShape, formatShape } from './tensor.js';
import type { KVPool, KVPoolOptions, KVSequence } from './servingTypes.js';
import type { Tensor } from './tensor.js';
import { checkCount, checkIntact, checkOptions, checkTensor, describeValue } from './validate.js';

export interface PoolDims { kvHeads: number; headDim: number; valueDim: number; blocks: number; blockSize: number; dtype: 'float32' }

/** createKVPool's options, read once and checked. */
export function checkKVPoolOptions(options: unknown): PoolDims {
  const op = 'createKVPool';
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${op}: options must be an object { kvHeads, headDim, blocks, … }, got ${describeValue(options)}`);
  }
  const o = checkOptions<KVPoolOptions>(op, options, ['kvHeads', 'headDim', 'valueDim', 'blocks', 'blockSize', 'dtype']);
  const need = (name: 'kvHeads' | 'headDim' | 'blocks') => {
    const v = checkCount(`${op}: options.${name}`, o[name]);
    if (v === undefined) throw new TypeError(`${op}: options.${name} is required`);
    return v;
  };
  const kvHeads = need('kvHeads'), headDim = need('headDim'), blocks = need('blocks');
  if (kvHeads < 1) throw new RangeError(`${op}: options.kvHeads must be at least 1, got 0`);
  const valueDim = checkCount(`${op}: options.valueDim`, o.valueDim) ?? headDim;
  const blockSize = checkCount(`${op}: options.blockSize`, o.blockSize) ?? 16;
  if (blockSize < 1) throw new RangeError(`${op}: options.blockSize must be at least 1, got 0`);
  const dtype = o.dtype ?? 'float32';
  if (typeof dtype !== 'string') throw new TypeError(`${op}: options.dtype must be 'float32', 'float16' or 'int8', got ${describeValue(dtype)}`);
  if (dtype !== 'float32') {
    throw new RangeError(`${op}: options.dtype '${dtype}' is not supported yet: keys and values are stored as 'float32' (16- and 8-bit pools are planned)`);
  }
  checkShape(`${op}: the keys`, [blocks, kvHeads, blockSize, headDim]);
  checkShape(`${op}: the values`, [blocks, kvHeads, blockSize, valueDim]);
  return { kvHeads, headDim, valueDim, blocks, blockSize, dtype };
}

/**
 * Where an engine keeps a pool's keys and values: blocks [blocks, kvHeads, blockSize, D] (keys D =
 * headDim, values D = valueDim). Rows are written and read through views the storage hands out.
 */
export interface PoolStorage {
  /** Keys and values, as views of all blocks (made afresh: a grown wasm memory detaches old views). */
  views(): { keys: Float32Array; values: Float32Array };
  dispose(): void;
}

/** Element offset of (block, kv head, slot) in a storage view of rows of `D` floats. */
export const slotOffset = (d: PoolDims, block: number, head: number, slot: number, D: number): number =>
  ((block * d.kvHeads + head) * d.blockSize + slot) * D;

/** Rows to append to one sequence, already checked: token-major [n, Hkv, D] and [n, Hkv, Dv] at element offsets. */
export interface RowsSource { keys: Float32Array; keysAt: number; values: Float32Array; valuesAt: number; n: number }

/** The sequences of all pools: a Proxy or a look-alike is not one of them. */
const sequences = new WeakMap<object, PagedSequence>();

export class PagedPool implements KVPool {
  readonly kvHeads: number; readonly headDim: number; readonly valueDim: number;
  readonly blocks: number; readonly blockSize: number; readonly dtype: string;
  /** Sequences holding each block. */
  readonly refs: Int32Array;
  /** Free blocks, taken from the end (lowest indices first). */
  private readonly free: number[];
  private storage: PoolStorage | null;

  /** `alive` throws once the engine that made the pool is disposed. */
  constructor(readonly dims: PoolDims, storage: PoolStorage, readonly alive: () => unknown) {
    ({ kvHeads: this.kvHeads, headDim: this.headDim, valueDim: this.valueDim, blocks: this.blocks, blockSize: this.blockSize, dtype: this.dtype } = dims);
    this.refs = new Int32Array(dims.blocks);
    this.free = Array.from({ length: dims.blocks }, (_, i) => dims.blocks - 1 - i);
    this.storage = storage;
  }

  get freeBlocks(): number { return this.free.length; }

  sequence(): KVSequence {
    this.live();
    const s = new PagedSequence(this);
    sequences.set(s, s);
    return s;
  }

  /** The storage, after checking that neither the pool nor its engine is disposed. */
  live(): PoolStorage {
    if (this.storage === null) throw new Error('qkv: this KV pool has been disposed');
    this.alive();
    return this.storage;
  }

  /** Blocks an append of n positions to `s` takes: new blocks, and one copy of a shared last block. */
  blocksToAppend(s: PagedSequence, n: number): number {
    if (n === 0) return 0;
    const bs = this.blockSize, L = s.length;
    const fresh = Math.ceil((L + n) / bs) - Math.ceil(L / bs);
    const copy = L % bs !== 0 && this.refs[s.table[s.table.length - 1]] > 1 ? 1 : 0;
    return fresh + copy;
  }

  /** Throws a RangeError when `need` blocks are more than the free ones. */
  checkFree(op: string, need: number): void {
    if (need > this.free.length) {
      throw new RangeError(`${op}: the KV pool has ${this.free.length} free blocks of ${this.blocks}, this call needs ${need} (free sequences, or create the pool with more blocks)`);
    }
  }

  /**
   * Makes room for n more positions of `s` (checked by blocksToAppend and checkFree first): copies a
   * shared last block into one of its own, takes the new blocks.
   */
  grow(s: PagedSequence, n: number): void {
    if (n === 0) return;
    const bs = this.blockSize, L = s.length;
    const storage = this.live();
    if (L % bs !== 0 && this.refs[s.table[s.table.length - 1]] > 1) {
      const shared = s.table[s.table.length - 1], own = this.take();
      const { keys, values } = storage.views();
      const kBlock = this.kvHeads * bs * this.headDim, vBlock = this.kvHeads * bs * this.valueDim;
      keys.copyWithin(own * kBlock, shared * kBlock, (shared + 1) * kBlock);
      values.copyWithin(own * vBlock, shared * vBlock, (shared + 1) * vBlock);
      this.refs[shared]--;
      s.table[s.table.length - 1] = own;
    }
    for (let need = Math.ceil((L + n) / bs) - s.table.length; need > 0; need--) s.table.push(this.take());
  }

  /** Writes rows (see RowsSource) at positions L .. L + n − 1 of `s`, whose blocks grow() made ready. */
  writeRows(s: PagedSequence, from: number, rows: RowsSource): void {
    const { keys, values } = this.live().views();
    const { kvHeads: H, headDim: D, valueDim: Dv, blockSize: bs } = this;
    for (let i = 0; i < rows.n; i++) {
      const p = from + i, block = s.table[Math.floor(p / bs)], slot = p % bs;
      for (let g = 0; g < H; g++) {
        const k = rows.keysAt + (i * H + g) * D, v = rows.valuesAt + (i * H + g) * Dv;
        keys.set(rows.keys.subarray(k, k + D), slotOffset(this.dims, block, g, slot, D));
        values.set(rows.values.subarray(v, v + Dv), slotOffset(this.dims, block, g, slot, Dv));
      }
    }
  }

  private take(): number {
    const b = this.free.pop()!;
    this.refs[b] = 1;
    return b;
  }

  /** One reference less to each block; blocks no sequence holds go back to the pool. */
  release(blocks: readonly number[]): void {
    for (const b of blocks) {
      if (--this.refs[b] === 0) this.free.push(b);
    }
  }

  dispose(): void {
    if (this.storage === null) return;
    this.storage.dispose();
    this.storage = null;
  }
}

export class PagedSequence implements KVSequence {
  /** Block indices, in position order. */
  table: number[] = [];
  private held = 0;
  private freed = false;

  constructor(readonly pool: PagedPool) {}

  get length(): number { return this.held; }

  /** Throws when this sequence, its pool or its engine can no longer be used. */
  live(op: string): void {
    if (this.freed) throw new Error(`${op}: this sequence has been freed`);
    this.pool.live();
  }

  /** Sets the length after an append whose rows are written (batchAttention, append). */
  advance(n: number): void { this.held += n; }

  append(key: Tensor, value: Tensor): void {
    const op = 'KVSequence.append';
    this.live(op);
    const { kvHeads: H, headDim: D, valueDim: Dv } = this.pool;
    const k = checkTensor(`${op}: key`, key, [3]);
    const v = checkTensor(`${op}: value`, value, [3]);
    const n = k.shape[0];
    if (k.shape[1] !== H || k.shape[2] !== D || v.shape[0] !== n || v.shape[1] !== H || v.shape[2] !== Dv) {
      throw new RangeError(`${op}: expected key [n, ${H}, ${D}] and value [n, ${H}, ${Dv}] with one n, got ${formatShape(k.shape)} and ${formatShape(v.shape)}`);
    }
    checkIntact(op, k, v);
    this.pool.checkFree(op, this.pool.blocksToAppend(this, n));
    this.pool.grow(this, n);
    this.pool.writeRows(this, this.held, { keys: k.data, keysAt: 0, values: v.data, valuesAt: 0, n });
    this.held += n;
  }

  read(): { keys: Tensor; values: Tensor } {
    this.live('KVSequence.read');
    const { keys, values } = this.pool.live().views();
    const { kvHeads: H, headDim: D, valueDim: Dv, blockSize: bs } = this.pool;
    const k = new Float32Array(this.held * H * D), v = new Float32Array(this.held * H * Dv);
    for (let p = 0; p < this.held; p++) {
      const block = this.table[Math.floor(p / bs)], slot = p % bs;
      for (let g = 0; g < H; g++) {
        const kAt = slotOffset(this.pool.dims, block, g, slot, D), vAt = slotOffset(this.pool.dims, block, g, slot, Dv);
        k.set(keys.subarray(kAt, kAt + D), (p * H + g) * D);
        v.set(values.subarray(vAt, vAt + Dv), (p * H + g) * Dv);
      }
    }
    return { keys: { data: k, shape: Object.freeze([this.held, H, D]) }, values: { data: v, shape: Object.freeze([this.held, H, Dv]) } };
  }

  fork(): KVSequence {
    this.live('KVSequence.fork');
    const s = new PagedSequence(this.pool);
    s.table = [...this.table];
    s.held = this.held;
    for (const b of s.table) this.pool.refs[b]++;
    sequences.set(s, s);
    return s;
  }

  truncate(length: number): void {
    const op = 'KVSequence.truncate';
    this.live(op);
    const n = checkCount(`${op}: length`, length);
    if (n === undefined) throw new TypeError(`${op}: length is required`);
    if (n > this.held) throw new RangeError(`${op}: length must be at most the ${this.held} positions held, got ${n}`);
    const keep = Math.ceil(n / this.pool.blockSize);
    this.pool.release(this.table.splice(keep));
    this.held = n;
  }

  free(): void {
    if (this.freed) throw new Error('KVSequence.free: this sequence has been freed');
    this.freed = true;
    this.pool.release(this.table);
    this.table = [];
    this.held = 0;
  }
}

/**
 * The sequences of a batch call, checked: each a genuine sequence of `pool` (TypeError otherwise),
 * live (Error otherwise), none twice (RangeError).
 */
export function checkSequences(op: string, sequencesArg: unknown, ownPool: (pool: PagedPool) => boolean): PagedSequence[] {
  if (!Array.isArray(sequencesArg)) throw new TypeError(`${op}: options.sequences must be an array of KVSequence, got ${describeValue(sequencesArg)}`);
  const length = sequencesArg.length;
  const out: PagedSequence[] = [];
  let pool: PagedPool | null = null;
  for (let i = 0; i < length; i++) {
    const s = sequences.get(sequencesArg[i] as object);
    if (s === undefined) throw new TypeError(`${op}: options.sequences[${i}] must be a KVSequence (pool.sequence()), got ${describeValue(sequencesArg[i])}`);
    if (!ownPool(s.pool)) throw new TypeError(`${op}: options.sequences[${i}] belongs to a KV pool of another engine`);
    if (pool !== null && s.pool !== pool) throw new TypeError(`${op}: options.sequences[${i}] belongs to another KV pool than options.sequences[0]`);
    pool = s.pool;
    s.live(`${op}: options.sequences[${i}]`);
    if (out.includes(s)) throw new RangeError(`${op}: options.sequences[${i}] is also options.sequences[${out.indexOf(s)}]: a sequence may appear once`);
    out.push(s);
  }
  return out;
}
