// The one place that touches wasm memory: a bump arena over the module's memory, reset after every op,
// above the blocks that outlive calls (prepared layers' weights, KV caches, engine tensors).
//
//   0 ........ heap_base ............. held ............ top ................ buffer.byteLength
//   | static |  held blocks (and gaps)  | this call's buffers |  grown on demand, kept for reuse
//
// Each op takes a mark, allocates its inputs, outputs and scratch above it, copies results out into
// fresh Float32Arrays and releases back to the mark in `finally`, so nothing survives a call (failed
// or not) and the high-water mark is reused by the next one. Views are made from `memory.buffer` at
// the point of use, because growing the memory detaches old views.

import { fromData, type Tensor } from '../core/tensor.js';
import type { Checked, Out } from '../core/validate.js';

const ALIGN = 16; // v128 loads are unaligned-safe, but aligned rows are faster
const PAGE = 65536;
/** The wasm32 ceiling, less one page: the default and largest memory limit of an engine. */
export const MAX_MEMORY_BYTES = 4 * 1024 * 1024 * 1024 - PAGE;

/** What a held block is for: only an engine tensor's block may be written as `options.out`. */
export type BlockKind = 'tensor' | 'cache' | 'weights';

/** The memory limit was reached; the op's wrapper rethrows it as a RangeError naming the op. */
export class MemoryLimitError extends RangeError {}

/** The bytes an allocation of `bytes` takes in the arena (16-byte aligned): what a call's size functions add up. */
export const aligned = (bytes: number): number => Math.ceil(bytes / ALIGN) * ALIGN;

/** Bytes of a checked argument's elements (from its shape: its view may have been detached by growth). */
const byteSize = (c: Checked<Float32Array | Uint8Array>): number => c.data.BYTES_PER_ELEMENT * c.shape.reduce((n, d) => n * d, 1);

export class Arena {
  private top: number;
  private readonly base: number;
  /** End of the held region: where each call's buffers start. */
  private heldEnd: number;
  /** Held blocks by address, in address order. */
  private blocks: { ptr: number; bytes: number; kind: BlockKind }[] = [];
  /** Buffers this memory had before it grew: views over them were views of engine memory. */
  private readonly formerBuffers = new WeakSet<ArrayBufferLike>();
  /** What the current call is, for the message of a memory-limit error ("matmul: a [2, 3], b [3, 4]"). */
  private describe: (() => string) | null = null;

  constructor(readonly memory: WebAssembly.Memory, heapBase: number, private readonly limit = MAX_MEMORY_BYTES) {
    this.base = Math.ceil(heapBase / ALIGN) * ALIGN;
    this.top = this.base;
    this.heldEnd = this.base;
  }

  /** Bytes held by long-lived blocks. */
  get heldBytes(): number {
    return this.blocks.reduce((n, b) => n + b.bytes, 0);
  }

  /**
   * Reserves a block that outlives calls (until `free`), first fit among the gaps of freed blocks,
   * else at the end of the held region. Only between calls.
   */
  hold(bytes: number, kind: BlockKind, describe?: () => string): number {
    if (this.top !== this.heldEnd) throw new Error('qkv: a long-lived block cannot be reserved during a call');
    if (describe) return this.labelled(describe, () => this.hold(bytes, kind));
    const size = Math.max(ALIGN, aligned(bytes));
    let at = this.base, index = 0;
    for (; index < this.blocks.length; index++) {
      if (this.blocks[index].ptr - at >= size) break;
      at = this.blocks[index].ptr + this.blocks[index].bytes;
    }
    if (index === this.blocks.length) {
      // at the end: move the start of the per-call region up (and back if the memory limit refuses)
      const top = this.top;
      this.top = at;
      try {
        this.alloc(size);
      } catch (error) {
        this.top = top;
        throw error;
      }
      this.heldEnd = this.top;
    }
    this.blocks.splice(index, 0, { ptr: at, bytes: size, kind });
    return at;
  }

  /**
   * Returns a block from `hold`; freeing twice is harmless. Between calls the region above the held
   * blocks shrinks to the new end; during a call (a caller's getter disposing a tensor) the block is
   * only forgotten, and its gap is reused by a later `hold`.
   */
  free(ptr: number): void {
    const index = this.blocks.findIndex((b) => b.ptr === ptr);
    if (index < 0) return;
    this.blocks.splice(index, 1);
    if (this.top !== this.heldEnd) return;
    const last = this.blocks[this.blocks.length - 1];
    this.heldEnd = this.top = last ? last.ptr + last.bytes : this.base;
  }

  /**
   * Whether `c`'s data lies in this memory (an engine tensor, or a view of one). Such data must lie
   * inside one live held block (of `kind` when given): a view kept from a disposed tensor, or made
   * over the memory's buffer elsewhere, would read or overwrite memory that other objects own.
   */
  resident(c: Checked<Float32Array | Uint8Array>, name: string, kind?: BlockKind): boolean {
    const buffer = c.data.buffer;
    if (buffer !== this.memory.buffer && !this.formerBuffers.has(buffer)) return false;
    const start = c.byteOffset, end = start + byteSize(c);
    const block = this.blocks.find((b) => b.ptr <= start && end <= b.ptr + b.bytes);
    if (!block || (kind !== undefined && block.kind !== kind)) {
      throw new Error(`qkv: ${name} lies in engine memory outside any live engine tensor (disposed, or a view made over the memory's buffer)`);
    }
    return true;
  }

  get bytes(): number {
    return this.memory.buffer.byteLength;
  }

  /**
   * Runs `fn` as the op that `describe` names with its shapes (for a memory-limit error's message),
   * then releases everything it allocated, whether it returned or threw.
   */
  call<T>(describe: () => string, fn: () => T): T {
    return this.labelled(describe, () => this.scoped(fn));
  }

  private labelled<T>(describe: () => string, fn: () => T): T {
    const outer = this.describe;
    this.describe = describe;
    try {
      return fn();
    } finally {
      this.describe = outer;
    }
  }

  /** Runs `fn`, then releases everything it allocated, whether it returned or threw. */
  scoped<T>(fn: () => T): T {
    const mark = this.top;
    try {
      return fn();
    } finally {
      this.top = mark;
    }
  }

  /** Reserves `bytes` (16-byte aligned), growing the memory when needed. Returns the byte address. */
  alloc(bytes: number): number {
    const ptr = this.top;
    const end = ptr + aligned(bytes);
    if (end > this.limit) {
      throw new MemoryLimitError(`${this.describe ? this.describe() : 'qkv'}: needs ${end} bytes of wasm memory (a buffer of ${end - ptr} bytes above the ${ptr} in use), over the engine's limit of ${this.limit} bytes (createEngine({ maxMemoryBytes }))`);
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      this.formerBuffers.add(this.memory.buffer);
      this.memory.grow(Math.ceil((end - have) / PAGE));
    }
    this.top = end;
    return ptr;
  }

  /**
   * Makes sure `bytes` more can be allocated in this call without reaching the limit (growing the
   * memory now), so that a later step cannot fail on memory after the call has changed state.
   */
  ensure(bytes: number): void {
    const top = this.top;
    this.alloc(bytes);
    this.top = top;
  }

  allocF32(count: number): number {
    return this.alloc(count * 4);
  }

  /** Room for `count` int32 words (block tables, rows' info). */
  allocWords(count: number): number {
    return this.alloc(count * 4);
  }

  /** `threads` scratch regions of `count` floats each (16-byte aligned); returns (thread) => address. */
  perThread(count: number, threads: number): (thread: number) => number {
    const base = this.alloc(this.perThreadBytes(count, threads)), stride = Math.ceil(count / 4) * 16;
    return (thread) => base + thread * stride;
  }

  /** The bytes perThread(count, threads) takes. */
  perThreadBytes(count: number, threads: number): number {
    return Math.ceil(count / 4) * 16 * threads;
  }

  /**
   * The address of read-only input `c`: where it already is when it lives in this memory (an engine
   * tensor), else a copy's. Kernels that write into their input use `write` instead.
   */
  input(c: Checked<Float32Array | Uint8Array>, name = 'an input'): number {
    return this.resident(c, name) ? c.byteOffset : this.write(c.data);
  }

  /**
   * Before an op computes: checks that `out`, when it lives in this memory, lies inside a live engine
   * tensor (so a result never lands on a cache or on another call's buffers).
   */
  checkOut(out: Out | undefined): void {
    if (out) this.resident(out.checked, 'options.out', 'tensor');
  }

  /**
   * The `count` floats at `ptr` as a result of shape `shape`: copied into `out` (any tensor of that
   * shape, engine tensors included, checked by checkOut) when given, unless they are already there
   * (see outputAt), else into a fresh tensor the caller owns.
   */
  result(ptr: number, count: number, shape: readonly number[], out?: Out): Tensor {
    if (!out) return fromData(this.read(ptr, count), shape);
    const c = out.checked;
    if (this.inMemory(c)) {
      // an engine tensor: its view may have been detached by growth, its address has not moved
      if (c.byteOffset !== ptr) new Float32Array(this.memory.buffer).copyWithin(c.byteOffset >> 2, ptr >> 2, (ptr >> 2) + count);
    } else {
      c.data.set(this.f32(ptr, count));
    }
    return out.tensor;
  }

  /**
   * Where a kernel may write its result straight into `out`: the address of out's elements when out
   * is an engine tensor (checked by checkOut) that `input` does not partly overlap (it may be out
   * itself); else 0: the kernel writes into a block of its own and `result` copies.
   */
  outputAt(out: Out | undefined, input: Checked<Float32Array | Uint8Array>): number {
    if (!out || !this.inMemory(out.checked) || this.overlapsPartly(out.checked, input)) return 0;
    return out.checked.byteOffset;
  }

  /**
   * The same for a kernel that reads its inputs while it writes (a product, attention): out's
   * address when it is an engine tensor that shares no byte with any of `inputs`, else 0.
   */
  outputApart(out: Out | undefined, ...inputs: (Checked<Float32Array | Uint8Array> | null | undefined)[]): number {
    if (!out || !this.inMemory(out.checked)) return 0;
    return inputs.some((c) => c && this.overlaps(out.checked, c)) ? 0 : out.checked.byteOffset;
  }

  /** Whether a and b share a byte (both in engine memory, or in one JavaScript buffer). */
  private overlaps(a: Checked<Float32Array | Uint8Array>, b: Checked<Float32Array | Uint8Array>): boolean {
    const inA = this.inMemory(a);
    if (inA !== this.inMemory(b) || (!inA && a.data.buffer !== b.data.buffer)) return false;
    const a0 = a.byteOffset, a1 = a0 + byteSize(a), b0 = b.byteOffset, b1 = b0 + byteSize(b);
    return a0 < b1 && b0 < a1;
  }

  /** Whether a and b share bytes without being the same region (engine memory or JavaScript's). */
  overlapsPartly(a: Checked<Float32Array | Uint8Array>, b: Checked<Float32Array | Uint8Array>): boolean {
    const inA = this.inMemory(a);
    if (inA !== this.inMemory(b) || (!inA && a.data.buffer !== b.data.buffer)) return false;
    const a0 = a.byteOffset, a1 = a0 + byteSize(a), b0 = b.byteOffset, b1 = b0 + byteSize(b);
    return a0 < b1 && b0 < a1 && (a0 !== b0 || a1 !== b1);
  }

  /** Whether c's data lies in this memory (now or before it grew); resident also checks its block. */
  private inMemory(c: Checked<Float32Array | Uint8Array>): boolean {
    return c.data.buffer === this.memory.buffer || this.formerBuffers.has(c.data.buffer);
  }

  /** Copies input `c` in (for kernels that work in place) and returns the copy's address. */
  copy(c: Checked<Float32Array | Uint8Array>, name = 'an input'): number {
    const inMemory = this.resident(c, name);
    return this.place(c, inMemory, this.alloc(byteSize(c)));
  }

  /** A held block (see hold) holding a copy of `c`. */
  holdCopy(c: Checked, kind: BlockKind, describe: () => string): number {
    const inMemory = this.resident(c, describe());
    return this.place(c, inMemory, this.hold(byteSize(c), kind, describe));
  }

  /** Copies `c`'s elements to `ptr`, from where they are in this memory or from JavaScript. */
  private place(c: Checked<Float32Array | Uint8Array>, inMemory: boolean, ptr: number): number {
    const memory = new Uint8Array(this.memory.buffer);
    if (inMemory) memory.copyWithin(ptr, c.byteOffset, c.byteOffset + byteSize(c));
    else memory.set(new Uint8Array(c.data.buffer, c.data.byteOffset, c.data.byteLength), ptr);
    return ptr;
  }

  /** Copies `data` (JavaScript-owned, or a view of this memory that is still attached) in and returns its address. */
  write(data: Float32Array | Uint8Array | Int32Array): number {
    // data may itself live in this memory (an engine tensor), whose view growing would detach
    const inMemory = data.buffer === this.memory.buffer;
    const from = data.byteOffset, bytes = data.byteLength;
    const ptr = this.alloc(bytes);
    const memory = new Uint8Array(this.memory.buffer);
    if (inMemory) memory.copyWithin(ptr, from, from + bytes);
    else memory.set(new Uint8Array(data.buffer, from, bytes), ptr);
    return ptr;
  }

  /** A view of `count` floats at `ptr`; valid until the memory grows (use at once). */
  f32(ptr: number, count: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, count);
  }

  /** A fresh copy of `count` floats at `ptr`, owned by the caller. */
  read(ptr: number, count: number): Float32Array {
    return this.f32(ptr, count).slice();
  }
}
