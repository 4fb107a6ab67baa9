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

const ALIGN = 16; // v128 loads are unaligned-safe, but aligned rows are faster
const PAGE = 65536;
/** The wasm32 ceiling, less one page: the default and largest memory limit of an engine. */
export const MAX_MEMORY_BYTES = 4 * 1024 * 1024 * 1024 - PAGE;

export class Arena {
  private top: number;
  private readonly base: number;
  /** End of the held region: where each call's buffers start. */
  private held: number;
  /** Held blocks by address, in address order. */
  private blocks: { ptr: number; bytes: number }[] = [];

  constructor(readonly memory: WebAssembly.Memory, heapBase: number, private readonly limit = MAX_MEMORY_BYTES) {
    this.base = Math.ceil(heapBase / ALIGN) * ALIGN;
    this.top = this.base;
    this.held = this.base;
  }

  /** Bytes held by long-lived blocks. */
  get heldBytes(): number {
    return this.blocks.reduce((n, b) => n + b.bytes, 0);
  }

  /**
   * Reserves a block that outlives calls (until `free`), first fit among the gaps of freed blocks,
   * else at the end of the held region. Only between calls.
   */
  hold(bytes: number): number {
    if (this.top !== this.held) throw new Error('qkv: a long-lived block cannot be reserved during a call');
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    let at = this.base, index = 0;
    for (; index < this.blocks.length; index++) {
      if (this.blocks[index].ptr - at >= size) break;
      at = this.blocks[index].ptr + this.blocks[index].bytes;
    }
    if (index === this.blocks.length) {
      // at the end: move the start of the per-call region up
      this.top = at;
      this.alloc(size);
      this.held = this.top;
    }
    this.blocks.splice(index, 0, { ptr: at, bytes: size });
    return at;
  }

  /** Returns a block from `hold`; freeing twice is harmless. */
  free(ptr: number): void {
    const index = this.blocks.findIndex((b) => b.ptr === ptr);
    if (index < 0) return;
    this.blocks.splice(index, 1);
    const last = this.blocks[this.blocks.length - 1];
    const end = last ? last.ptr + last.bytes : this.base;
    if (this.top === this.held) this.top = end;
    this.held = end;
  }

  get bytes(): number {
    return this.memory.buffer.byteLength;
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
    const end = ptr + Math.ceil(bytes / ALIGN) * ALIGN;
    if (end > this.limit) {
      throw new RangeError(`qkv: this needs at least ${end - this.base} bytes of wasm memory, more than the engine's limit of ${this.limit} bytes (createEngine({ maxMemoryBytes }))`);
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
    this.top = end;
    return ptr;
  }

  allocF32(count: number): number {
    return this.alloc(count * 4);
  }

  /** `threads` scratch regions of `count` floats each (16-byte aligned); returns (thread) => address. */
  perThread(count: number, threads: number): (thread: number) => number {
    const stride = Math.ceil(count / 4) * 16;
    const base = this.alloc(stride * threads);
    return (thread) => base + thread * stride;
  }

  /**
   * The address of read-only input `data`: where it already is when it lives in this memory (an
   * engine tensor), else a copy's. Kernels that write into their input use `write` instead.
   */
  input(data: Float32Array | Uint8Array | Int32Array): number {
    return data.buffer === this.memory.buffer ? data.byteOffset : this.write(data);
  }

  /**
   * The `count` floats at `ptr` as a result of shape `shape`: copied into `out` (any tensor of that
   * shape, engine tensors included) when given, unless they are already there (see outputAt), else
   * into a fresh tensor the caller owns.
   */
  result(ptr: number, count: number, shape: readonly number[], out?: Tensor): Tensor {
    if (!out) return fromData(this.read(ptr, count), shape);
    if (out.data.buffer !== this.memory.buffer || out.data.byteOffset !== ptr) out.data.set(this.f32(ptr, count));
    return out;
  }

  /**
   * Where a kernel may write its result straight into `out`: the address of out's data when out is
   * an engine tensor (in this memory) and the kernel's input is elsewhere (copied in), or exactly
   * out's region, or apart from it; else 0 (the kernel writes into a block of its own, and `result`
   * copies).
   */
  outputAt(out: Tensor | undefined, input: Float32Array): number {
    if (!out || out.data.buffer !== this.memory.buffer) return 0;
    const at = out.data.byteOffset;
    return disjointOrSame(out.data, input) ? at : 0;
  }

  /** Copies `data` in and returns its address. */
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

/** Whether two arrays share no byte, or are exactly the same region. */
export function disjointOrSame(a: ArrayBufferView, b: ArrayBufferView): boolean {
  if (a.buffer !== b.buffer) return true;
  const a0 = a.byteOffset, a1 = a0 + a.byteLength, b0 = b.byteOffset, b1 = b0 + b.byteLength;
  return (a0 === b0 && a1 === b1) || a1 <= b0 || b1 <= a0;
}
