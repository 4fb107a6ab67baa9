import { fileURLToPath } from 'node:url';
import { configDefaults, defineConfig } from 'vitest/config';

// The suite runs twice, once per wasm build. test/support.ts creates its engines with createEngine(),
// whose simd: 'auto' picks the relaxed build exactly when the runtime validates relaxed SIMD, so the
// project decides the build by how it starts the test processes:
//   simd     plain node: Node 20 lacks relaxed SIMD, so the plain build (build/qkv.wasm) runs
//   relaxed  node --experimental-wasm-relaxed-simd, so build/qkv-relaxed.wasm runs
// Node >= 22 has relaxed SIMD by default, cannot turn it off and refuses the flag: there both projects
// run the relaxed build by default (tests that ask for simd: 'simd' still run the plain one), and
// .ci/run also runs test/runtimes/check.js, which runs every op on both builds.
// and a third project drives the built examples in real browsers:
//   browser  test/browser/: Debian's Chromium and Firefox ESR through puppeteer-core, compared with
//            Node running both builds, hence the relaxed-SIMD flag too (npm run test:browser builds the
//            examples first)
// The flag is a V8 option that node refuses in NODE_OPTIONS, hence execArgv on forked workers
// (worker threads cannot take V8 flags).
// `vitest run` runs all three; `vitest run --project relaxed` (npm run test:relaxed) runs one.
// src/ imports '#fetch-bytes' and '#threads' (package.json "imports"), which map to dist/; tests run the
// source. Worker threads load plain JavaScript, so test/threads.test.ts tests dist/ itself.
const nodeOnly = [...configDefaults.exclude, 'test/browser/**'];
const relaxedFlag = Number(process.versions.node.split('.')[0]) < 22 ? ['--experimental-wasm-relaxed-simd'] : [];
export default defineConfig({
  resolve: {
    alias: {
      '#fetch-bytes': fileURLToPath(new URL('./src/platform/fetchBytes.node.ts', import.meta.url)),
      '#checkpoint-files': fileURLToPath(new URL('./src/platform/checkpointFiles.node.ts', import.meta.url)),
      // workers start from a plain JavaScript file, so threads always come from the build
      '#threads': fileURLToPath(new URL('./dist/platform/threads.node.js', import.meta.url)),
    },
  },
  test: {
    testTimeout: 60_000,
    pool: 'forks',
    projects: [
      { extends: true, test: { name: 'simd', include: ['test/**/*.test.ts'], exclude: nodeOnly } },
      { extends: true, test: { name: 'relaxed', include: ['test/**/*.test.ts'], exclude: nodeOnly, execArgv: relaxedFlag } },
      {
        extends: true,
        test: { name: 'browser', include: ['test/browser/**/*.test.ts'], execArgv: relaxedFlag, hookTimeout: 60_000 },
      },
    ],
  },
});
