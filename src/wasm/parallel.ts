// Runs a kernel over a range of work units on one or several threads that share one wasm memory.
//
// A kernel call is split into contiguous shares of its units (query rows, pairs of rows, matrix
// rows); the calling thread takes the first share and workers the others. Every output element is
// computed by exactly one thread with the same instructions in the same order as on one thread,
// so results are bit-identical for every thread count.
//
// Hand-off goes through a small SharedArrayBuffer, not messages, so that the API stays synchronous:
//
//   Int32 [0] generation   bumped by the caller to start a job; workers Atomics.wait on it
//         [1] pending      workers still running; the last one to finish notifies the caller
//         [2] error        set by a worker whose kernel threw; its message follows in bytes
//         [3] stop         set by dispose(); workers return
//         [4] ready        workers that have started and wait for jobs
//   Float64 slots from byte 64: per worker [kernel index (KERNEL_NAMES, ./abi.ts), argument count,
//                               arguments...], SLOT_DOUBLES each
//   Uint8 from ERROR_AT: the UTF-8 message of the first error
import { KERNEL_ARITY, KERNEL_NAMES, type KernelArgs, type KernelName, type Kernels } from './abi.js';
import { instantiateKernels } from './loader.js';

const GEN = 0, PENDING = 1, ERROR = 2, STOP = 3, READY = 4;
const SLOTS_AT = 64;
const SLOT_DOUBLES = 40;
/** Arguments a job slot holds: the slot less the kernel index and the argument count. */
export const SLOT_ARGS = SLOT_DOUBLES - 2;
const MAX_WORKERS = 64;
/** The most threads an engine runs: the calling one and MAX_WORKERS workers. */
export const MAX_THREADS = MAX_WORKERS + 1;
const ERROR_AT = SLOTS_AT + MAX_WORKERS * SLOT_DOUBLES * 8;
const ERROR_BYTES = 1024;
export const CONTROL_BYTES = ERROR_AT + ERROR_BYTES;

/**
 * Below this much work (in multiply-adds, roughly) a call runs on the calling thread alone
 * (bench/parallel-threshold.js; the figures are in the commit that set it). With both sides polling
 * (the workers for the next job, the caller for the workers' end: SPIN_MS) a warm call round-trips
 * in microseconds: two threads break even near 250 K multiply-adds (a 64³ matmul, attention over
 * 32 positions), and a decode step's 896 x 896 projections (0.8 M) gain from the split.
 */
export const MIN_PARALLEL_WORK = 200_000;

/**
 * How long a worker polls for the next job before it sleeps in Atomics.wait (ms). It must outlast
 * the gap between two calls' kernels, or every call pays the wake-up (0.1-0.4 ms on the 2-core VM):
 * between two serving steps' kernels (batchAttention over 16 sequences) come the calling thread's
 * last rows, the caller's own code, and the next step's planning, rotary and appends, which often
 * outlast a shorter poll (back-to-back decode steps on 2 threads gained from the longer one; figures
 * in the commit that set it). The calling thread polls as long for the workers to finish their
 * shares. The price is up to 1 ms of one core's time after a burst of calls ends.
 */
const SPIN_MS = 1;

/** Builds the arguments of kernel K for thread t's share [start, end). */
export type ArgsFor<K extends KernelName> = (thread: number, start: number, end: number) => KernelArgs<K>;

/**
 * Throws unless every kernel's arguments fit a job slot (SLOT_ARGS): a kernel that grew past it would
 * otherwise overwrite the next worker's slot. Checked once, when a pool starts; test/abi.test.ts too.
 */
export function checkSlotBound(arity: Readonly<Record<string, number>> = KERNEL_ARITY): void {
  const over = Object.entries(arity).filter(([, n]) => n > SLOT_ARGS);
  if (over.length > 0) {
    throw new Error(`qkv: a worker's job slot holds ${SLOT_ARGS} arguments, but ${over.map(([k, n]) => `${k} takes ${n}`).join(', ')}; raise SLOT_DOUBLES in src/wasm/parallel.ts`);
  }
}

export interface Parallel {
  /** Threads that run kernels, the calling one included. */
  readonly threads: number;
  /**
   * Runs `kernel` over `units` units of work costing about `workPerUnit` multiply-adds each; shares
   * start on multiples of `align` (so that pairs of rows stay pairs).
   */
  run<K extends KernelName>(kernel: K, units: number, workPerUnit: number, args: ArgsFor<K>, align?: number): void;
  dispose(): void;
}

/** The same interface on the calling thread alone. */
export function serial(kernels: Kernels): Parallel {
  return {
    threads: 1,
    run(kernel, units, _work, args) {
      call(kernels, kernel, args(0, 0, units));
    },
    dispose() {},
  };
}

function call(kernels: Kernels, kernel: KernelName, args: readonly number[]): void {
  (kernels[kernel] as unknown as (...a: readonly number[]) => void)(...args);
}

/** Contiguous shares of `units` for `threads` threads, boundaries on multiples of `align`. */
export function shares(units: number, threads: number, align = 1): [number, number][] {
  const out: [number, number][] = [];
  const blocks = Math.ceil(units / align);
  for (let t = 0; t < threads; t++) {
    const start = Math.min(units, Math.floor((t * blocks) / threads) * align);
    const end = Math.min(units, Math.floor(((t + 1) * blocks) / threads) * align);
    out.push([start, end]);
  }
  return out;
}

/** What a worker needs to start: the compiled module, the shared memory and the control block. */
export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  index: number;
}

/** A started worker, whatever the platform. */
export interface WorkerHandle {
  terminate(): void;
  /** Set when the worker died outside a kernel (e.g. failed to start). */
  failure(): string | null;
  /** Called once the worker waits for jobs: from then on it must not keep the process alive. */
  settle(): void;
}

/**
 * A pool over `workers` (threads - 1) started by the platform. `canBlock` says whether the calling
 * thread may Atomics.wait (not on a browser's main thread, which spins instead); `minWork` is the
 * split threshold (bench/parallel-threshold.js times 1 against 2 threads through the engine; lower
 * MIN_PARALLEL_WORK and rebuild to look below it).
 */
export function pool(kernels: Kernels, control: SharedArrayBuffer, workers: WorkerHandle[], canBlock: boolean, minWork = MIN_PARALLEL_WORK): Parallel {
  checkSlotBound();
  const ctrl = new Int32Array(control);
  const slots = new Float64Array(control, SLOTS_AT, MAX_WORKERS * SLOT_DOUBLES);
  const threads = workers.length + 1;
  let disposed = false;

  function waitForWorkers(): void {
    // the workers' shares take about as long as ours: poll for a while before sleeping, since
    // waking from Atomics.wait costs 10-400 µs on the 2-core machine (as serveJobs polls for jobs)
    const until = performance.now() + SPIN_MS;
    while (Atomics.load(ctrl, PENDING) !== 0 && performance.now() < until);
    for (;;) {
      const pending = Atomics.load(ctrl, PENDING);
      if (pending === 0) return;
      for (const w of workers) {
        const failure = w.failure();
        if (failure) throw new Error(`qkv: a worker thread died: ${failure}`);
      }
      if (canBlock) Atomics.wait(ctrl, PENDING, pending, 100);
    }
  }

  return {
    threads,
    run(kernel, units, workPerUnit, args, align = 1) {
      if (disposed) throw new Error('qkv: this engine has been disposed');
      if (units * workPerUnit < minWork || units < 2 * align) {
        call(kernels, kernel, args(0, 0, units));
        return;
      }
      const parts = shares(units, threads, align);
      for (let w = 0; w < workers.length; w++) {
        const [start, end] = parts[w + 1];
        const slot = w * SLOT_DOUBLES;
        if (start >= end) { slots[slot] = -1; continue; }
        const a = args(w + 1, start, end);
        slots[slot] = KERNEL_NAMES.indexOf(kernel);
        slots[slot + 1] = a.length;
        for (let i = 0; i < a.length; i++) slots[slot + 2 + i] = a[i];
      }
      Atomics.store(ctrl, ERROR, 0);
      Atomics.store(ctrl, PENDING, workers.length);
      Atomics.add(ctrl, GEN, 1);
      Atomics.notify(ctrl, GEN);
      let own: unknown = null;
      try {
        const [start, end] = parts[0];
        if (start < end) call(kernels, kernel, args(0, start, end));
      } catch (error) {
        own = error;
      }
      waitForWorkers(); // even when our share threw: the workers still use the memory
      if (own) throw own;
      if (Atomics.load(ctrl, ERROR) !== 0) {
        const bytes = new Uint8Array(control, ERROR_AT, ERROR_BYTES);
        const length = bytes.indexOf(0) < 0 ? ERROR_BYTES : bytes.indexOf(0);
        throw new Error(`qkv: a kernel failed in a worker thread: ${new TextDecoder().decode(bytes.slice(0, length))}`);
      }
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      Atomics.store(ctrl, STOP, 1);
      Atomics.add(ctrl, GEN, 1);
      Atomics.notify(ctrl, GEN);
      for (const w of workers) w.terminate();
    },
  };
}

/** A worker's whole life: instantiate the kernels over the shared memory, then serve jobs until stopped. */
export function serveWorker(init: WorkerInit): void {
  serveJobs(instantiateKernels(init.module, init.memory), init.control, init.index);
}

/**
 * The worker's side: wait for a job, run this worker's slot, report, repeat until stopped. Runs
 * inside the worker with the kernels instantiated over the shared memory.
 */
export function serveJobs(kernels: Kernels, control: SharedArrayBuffer, index: number): void {
  const ctrl = new Int32Array(control);
  const slots = new Float64Array(control, SLOTS_AT, MAX_WORKERS * SLOT_DOUBLES);
  const slot = index * SLOT_DOUBLES;
  let generation = Atomics.load(ctrl, GEN);
  Atomics.add(ctrl, READY, 1);
  Atomics.notify(ctrl, READY);
  for (;;) {
    // calls often come back to back (a layer's projections, then its attention): poll for SPIN_MS
    // before sleeping, since waking from Atomics.wait takes 10-400 µs on the 2-core machine
    const until = performance.now() + SPIN_MS;
    while (Atomics.load(ctrl, GEN) === generation && performance.now() < until);
    Atomics.wait(ctrl, GEN, generation);
    generation = Atomics.load(ctrl, GEN);
    if (Atomics.load(ctrl, STOP) !== 0) return;
    const k = slots[slot];
    if (k >= 0) {
      try {
        const args = Array.from(slots.subarray(slot + 2, slot + 2 + slots[slot + 1]));
        call(kernels, KERNEL_NAMES[k], args);
      } catch (error) {
        if (Atomics.compareExchange(ctrl, ERROR, 0, 1) === 0) {
          const text = new TextEncoder().encode(String((error as Error)?.message ?? error)).slice(0, ERROR_BYTES - 1);
          const bytes = new Uint8Array(control, ERROR_AT, ERROR_BYTES);
          bytes.fill(0);
          bytes.set(text);
        }
      }
    }
    if (Atomics.sub(ctrl, PENDING, 1) === 1) Atomics.notify(ctrl, PENDING);
  }
}

/** Resolves when `count` workers have reached serveJobs (so that none misses the first job). */
export async function whenReady(control: SharedArrayBuffer, count: number, workers: WorkerHandle[]): Promise<void> {
  const ctrl = new Int32Array(control);
  for (;;) {
    const ready = Atomics.load(ctrl, READY);
    if (ready >= count) {
      for (const w of workers) w.settle();
      return;
    }
    for (const w of workers) {
      const failure = w.failure();
      if (failure) throw new Error(`qkv: a worker thread failed to start: ${failure}`);
    }
    const waitAsync = (Atomics as unknown as { waitAsync?: (a: Int32Array, i: number, v: number, t: number) => { value: Promise<unknown> | string } }).waitAsync;
    if (waitAsync) {
      const r = waitAsync(ctrl, READY, ready, 50);
      if (typeof r.value !== 'string') await r.value;
    } else {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}
