// The paged KV pool's bookkeeping, shared by both engines: which blocks each sequence holds, reference
// counts, copy on write. Engines only supply the storage (PoolStorage); kernels only see a block table
// (the block indices of a sequence, in order) and lengths.
//
// Invariants (asserted by test/ops/kvPool.test.ts and test/ops/batchAttention.test.ts after every
// operation, through expectPoolInvariants in test/support.ts):
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

import { disposeSymbol } from './dispose.js';
import type { KVPool, KVPoolOptions, KVSequence } from './servingTypes.js';
import type { Tensor } from './tensor.js';
import { checkShape, formatShape } from './tensor.js';
import { type Checked, checkCount, checkIntact, checkOptions, checkPositiveCount, checkTensor, describeValue } from './validate.js';

/** How a pool stores keys and values (src/reference/kvFormats.ts defines them). */
export type KVDtype = 'float32' | 'float16' | 'int8';
export const KV_DTYPES: readonly KVDtype[] = ['float32', 'float16', 'int8'];

export interface PoolDims { kvHeads: number; headDim: number; valueDim: number; blocks: number; blockSize: number; dtype: KVDtype }

/** createKVPool's options, read once and checked. */
export function checkKVPoolOptions(options: unknown): PoolDims {
  const op = 'createKVPool';
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${op}: options must be an object { kvHeads, headDim, blocks, … }, got ${describeValue(options)}`);
  }
  const o = checkOptions<KVPoolOptions>(op, options, ['kvHeads', 'headDim', 'valueDim', 'blocks', 'blockSize', 'dtype']);
  // every size at least 1: a pool with none of one of them could hold nothing
  const need = (name: 'kvHeads' | 'headDim' | 'blocks') => {
    const v = checkPositiveCount(`${op}: options.${name}`, o[name]);
    if (v === undefined) throw new TypeError(`${op}: options.${name} is required`);
    return v;
  };
  const kvHeads = need('kvHeads'), headDim = need('headDim'), blocks = need('blocks');
  const valueDim = checkPositiveCount(`${op}: options.valueDim`, o.valueDim) ?? headDim;
  const blockSize = checkPositiveCount(`${op}: options.blockSize`, o.blockSize) ?? 16;
  const dtype = o.dtype ?? 'float32';
  if (typeof dtype !== 'string') throw new TypeError(`${op}: options.dtype must be 'float32', 'float16' or 'int8', got ${describeValue(dtype)}`);
  if (!KV_DTYPES.includes(dtype as KVDtype)) throw new RangeError(`${op}: options.dtype must be 'float32', 'float16' or 'int8', got '${dtype}'`);
  checkShape(`${op}: the keys`, [kvHeads, blocks, blockSize, headDim]);
  checkShape(`${op}: the values`, [kvHeads, blocks, blockSize, valueDim]);
  return { kvHeads, headDim, valueDim, blocks, blockSize, dtype: dtype as KVDtype };
}

/**
 * Where an engine keeps a pool's keys and values, in the pool's format: [kvHeads, blocks, blockSize, D]
 * (each kv head's blocks side by side; keys D = headDim, values D = valueDim), and for int8 a float32
 * scale per row. A position is a slot, block · blockSize + slot-in-block.
 */
export interface PoolStorage {
  /**
   * Stores rows: first takes what it needs (an engine copies them into its memory), then calls
   * `place`, which makes room in the sequence's blocks and says the slot of each row, then writes.
   * Nothing fails after `place`.
   */
  append(rows: RowsSource, place: () => Int32Array): void;
  /** Positions at `slots` as float32 rows: keys [n, H, D] and values [n, H, Dv] (int8: q · s). */
  read(slots: Int32Array): { keys: Float32Array; values: Float32Array };
  /** Copies block `from` into block `to`: keys, values and their scales. */
  copyBlock(from: number, to: number): void;
  dispose(): void;
}

/**
 * Rows to append to one sequence, already checked: token-major [n, Hkv, D] keys and [n, Hkv, Dv]
 * values, from element keysAt / valuesAt of checked arguments (whose data may lie in engine memory),
 * or of the wasm engine's own buffers given by byte address.
 */
export interface RowsSource { keys: Checked | number; keysAt: number; values: Checked | number; valuesAt: number; n: number }

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

  /** Whether an append to `s` writes into a partly filled last block that another sequence shares (copy on write). */
  private writesShared(s: PagedSequence): boolean {
    return s.length % this.blockSize !== 0 && this.refs[s.table[s.table.length - 1]] > 1;
  }

  /** Blocks an append of n positions to `s` takes: new blocks, and one copy of a shared last block. */
  blocksToAppend(s: PagedSequence, n: number): number {
    if (n === 0) return 0;
    const bs = this.blockSize, L = s.length;
    return Math.ceil((L + n) / bs) - Math.ceil(L / bs) + (this.writesShared(s) ? 1 : 0);
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
    if (this.writesShared(s)) {
      const shared = s.table[s.table.length - 1], own = this.take();
      storage.copyBlock(shared, own);
      this.refs[shared]--;
      s.table[s.table.length - 1] = own;
    }
    for (let need = Math.ceil((L + n) / bs) - s.table.length; need > 0; need--) s.table.push(this.take());
  }

  /** The slots of positions from .. from + n − 1 of `s` (block · blockSize + slot). */
  slots(s: PagedSequence, from: number, n: number, into = new Int32Array(n), at = 0): Int32Array {
    const bs = this.blockSize;
    for (let i = 0; i < n; i++) {
      const p = from + i;
      into[at + i] = s.table[Math.floor(p / bs)] * bs + (p % bs);
    }
    return into;
  }

  /** Appends rows to `s` (checked, with free blocks checked): blocks made ready, rows stored, length advanced. */
  appendRows(s: PagedSequence, rows: RowsSource): void {
    const from = s.length;
    this.live().append(rows, () => {
      this.grow(s, rows.n);
      return this.slots(s, from, rows.n);
    });
    s.advance(rows.n);
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

  [disposeSymbol](): void { this.dispose(); }
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
    this.pool.appendRows(this, { keys: k, values: v, keysAt: 0, valuesAt: 0, n });
  }

  read(): { keys: Tensor; values: Tensor } {
    this.live('KVSequence.read');
    const { kvHeads: H, headDim: D, valueDim: Dv } = this.pool;
    const { keys, values } = this.pool.live().read(this.pool.slots(this, 0, this.held));
    return { keys: { data: keys, shape: Object.freeze([this.held, H, D]) }, values: { data: values, shape: Object.freeze([this.held, H, Dv]) } };
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

  /** free(), unless already freed: a `using` block may free the sequence itself before it ends. */
  [disposeSymbol](): void {
    if (!this.freed) this.free();
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
