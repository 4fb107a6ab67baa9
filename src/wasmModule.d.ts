// `import wasmModule from '…/qkv.wasm?module'` (src/edge.ts): a compiled WebAssembly.Module, as
// Wrangler and Next.js's edge compiler hand a .wasm imported with that suffix.
declare module '*.wasm?module' {
  const wasmModule: WebAssembly.Module;
  export default wasmModule;
}
