// Where static data ends: the TypeScript arena (src/wasm/memory.ts) hands out memory from here up.
// No AssemblyScript-managed objects are used (--runtime stub), so nothing else allocates.
export function heap_base(): usize {
  return __heap_base;
}
