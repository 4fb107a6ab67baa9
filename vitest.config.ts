import { defineConfig } from 'vitest/config';

// The suite runs twice, once per wasm build. test/support.ts creates its engines with createEngine(),
// whose simd: 'auto' picks the relaxed build exactly when the runtime validates relaxed SIMD, so the
// project decides the build by how it starts the test processes:
//   simd     plain node: Node 20 lacks relaxed SIMD, so the plain build (build/qkv.wasm) runs
//   relaxed  node --experimental-wasm-relaxed-simd, so build/qkv-relaxed.wasm runs
// The flag is a V8 option that node refuses in NODE_OPTIONS, hence execArgv on forked workers
// (worker threads cannot take V8 flags).
// `vitest run` runs both; `vitest run --project relaxed` (npm run test:relaxed) runs one.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    pool: 'forks',
    projects: [
      { extends: true, test: { name: 'simd' } },
      { extends: true, test: { name: 'relaxed', execArgv: ['--experimental-wasm-relaxed-simd'] } },
    ],
  },
});
