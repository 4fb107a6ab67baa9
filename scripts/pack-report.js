// What `npm publish` would ship: every file of the tarball with its size, the totals, and checks that
// keep the package small and whole. `npm run pack:report`; CI runs it (npm run lint:package).
// Exits 1 when a file that must ship is missing, a file that must not ship is there (sources, tests,
// source maps), or the tarball outgrows its budget.
import { execFileSync } from 'node:child_process';

/**
 * Budgets, in bytes: 275 KB packed, 1,034 KB unpacked on 2026-12-01 with the serving API (paged
 * attention in three storage formats, rotary, KV pools, the grouped-query layer, skinny matmuls),
 * up from 153 / 582 KB before it; 314 / 1,142 KB later that day with the int8 and binary16 fast
 * paths and the kernel-regression gradient (each .wasm 74 -> 83 KB, counted four times and twice
 * more as base64 in qkv/inline); 344 / 1,233 KB after the KV view for the attention kernels
 * (prompts over every pool format, ALiBi and sinks on the fused kernel, chunks of keys) and the
 * binary16 group widening of the paged kernel (each .wasm 83 -> 94 KB); about 10% headroom.
 * 501 / 1,806 KB on 2026-12-05 with whole decoders: the loaders, decoder and batcher (dist/models
 * 136 KB, dist/serving 85 KB unpacked), the decoder ops and int8/int4/float16 linear kernels (each
 * .wasm 100 -> 115 KB, in the bundles too) and the edge entry; about 10% headroom. Most of what
 * remains is dist/'s per-module .js beside the bundles that already hold them (the declarations
 * and the bin's dist/serving/cli.js need the modules): bundling the CLI and shipping only .d.ts
 * there would take the largest share back. 560 / 1,966 KB on 2026-12-05 (later) with attention's
 * plan/run files, createLinear from quantized weights and GGUF groups as stored, op-named modules
 * and the peers' docs (docs/ 95 KB unpacked); budgets with about 10% headroom again. The CLI bundle
 * above is still the way to take most of it back.
 */
const PACKED_BUDGET = 615_000;
const UNPACKED_BUDGET = 2_160_000;
const REQUIRED = [
  'package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'types/wasm-url.d.ts',
  'dist/index.d.ts', 'dist/inline.d.ts', 'dist/bundle/qkv.js', 'dist/bundle/inline.js', 'dist/bundle/edge.js',
  'bin/qkv.js', 'dist/serving/cli.js', 'dist/platform/checkpointFiles.node.js', 'dist/platform/checkpointFiles.browser.js',
  'dist/platform/fetchBytes.node.js', 'dist/platform/fetchBytes.browser.js', 'dist/platform/threads.node.js',
  'dist/platform/threads.browser.js', 'dist/platform/worker.node.js', 'dist/platform/worker.browser.js',
  'build/qkv.wasm', 'build/qkv-relaxed.wasm', 'build/qkv-threads.wasm', 'build/qkv-relaxed-threads.wasm',
];
const FORBIDDEN = [/^src\//, /^test\//, /^assembly\//, /^bench\//, /^examples\//, /\.map$/, /\.test\./, /^dist\/generated\//];

const [pack] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
const files = [...pack.files].sort((a, b) => a.path.localeCompare(b.path));
const kb = (n) => `${(n / 1000).toFixed(1)} kB`;

console.log(`${pack.name}@${pack.version}: ${files.length} files, ${kb(pack.size)} packed, ${kb(pack.unpackedSize)} unpacked`);
const groups = new Map();
for (const f of files) {
  const group = f.path.includes('/') ? f.path.slice(0, f.path.lastIndexOf('/') + 1) : './';
  groups.set(group, [...(groups.get(group) ?? []), f]);
}
for (const [group, list] of groups) {
  console.log(`\n  ${group.padEnd(40)} ${kb(list.reduce((a, f) => a + f.size, 0)).padStart(10)}`);
  for (const f of list) console.log(`    ${f.path.slice(group === './' ? 0 : group.length).padEnd(38)} ${kb(f.size).padStart(10)}`);
}

const paths = new Set(files.map((f) => f.path));
const problems = [
  ...REQUIRED.filter((p) => !paths.has(p)).map((p) => `missing: ${p}`),
  ...files.filter((f) => FORBIDDEN.some((re) => re.test(f.path))).map((f) => `must not ship: ${f.path}`),
  ...(pack.size > PACKED_BUDGET ? [`packed ${kb(pack.size)} is over the budget of ${kb(PACKED_BUDGET)}`] : []),
  ...(pack.unpackedSize > UNPACKED_BUDGET ? [`unpacked ${kb(pack.unpackedSize)} is over the budget of ${kb(UNPACKED_BUDGET)}`] : []),
];
if (problems.length) {
  console.log(`\nFAIL\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`\nOK: every required file, nothing that must not ship, within ${kb(PACKED_BUDGET)} packed and ${kb(UNPACKED_BUDGET)} unpacked`);
