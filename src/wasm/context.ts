import type { Kernels } from './loader.js';
import type { Arena } from './memory.js';

/** What every kernel wrapper needs: the instantiated kernels and the arena over their memory. */
export interface WasmContext {
  readonly kernels: Kernels;
  readonly arena: Arena;
}
