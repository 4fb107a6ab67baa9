import type { Kernels } from './abi.js';
import type { Arena } from './memory.js';
import type { Parallel } from './parallel.js';

/** What every kernel wrapper needs: the instantiated kernels, the arena over their memory, the threads. */
export interface WasmContext {
  readonly kernels: Kernels;
  readonly arena: Arena;
  readonly parallel: Parallel;
}
