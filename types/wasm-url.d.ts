/**
 * `import wasmUrl from 'qkv/qkv.wasm'` (or `'qkv/qkv-relaxed.wasm'`): the URL of that build as a
 * bundler's file loader gives it (esbuild `--loader:.wasm=file`, webpack's `asset/resource`), to pass
 * on as `createEngine({ simd: 'simd', wasm: new URL(wasmUrl, location.href) })`.
 */
declare const wasmUrl: string;
export default wasmUrl;
