// qkv benchmarks: `npm run bench [-- --filter REGEX] [-- --json FILE] [-- --full]`
//
// One table per op family: shape, implementation, median and min ms, GFLOP/s or GB/s, and the
// ratio of each implementation against the others measured in the same run. Inputs are built
// outside the timed functions; every result is consumed so that nothing is optimized away.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { Bench } from 'tinybench';
import { createEngine, reference, tensor } from 'qkv';

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const value = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const filter = value('--filter') ? new RegExp(value('--filter')) : null;
const jsonFile = value('--json');
const full = flag('--full');
/** The reference engine is skipped where one call would take longer than this (ms, estimated at 1.3 GFLOP/s). */
const REFERENCE_BUDGET_MS = full ? 20_000 : 1_500;

function random(shape, seed) {
  let a = seed >>> 0;
  const n = shape.reduce((x, y) => x * y, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    data[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return tensor(data, shape);
}

let sink = 0; // results flow here so that no call is dead code
const consume = (t) => { sink += t.data[0] ?? 0; };

/** Each case: op family, shape label, FLOPs or bytes per call, and a function per engine that builds inputs and returns the call. */
function cases() {
  const list = [];
  for (const n of full ? [64, 128, 256, 512, 1024] : [128, 256, 512]) {
    list.push({
      op: 'matmul', shape: `${n}x${n}x${n}`, flops: 2 * n ** 3,
      setup: (e) => { const a = random([n, n], 1), b = random([n, n], 2); return () => consume(e.matmul(a, b)); },
    });
  }
  for (const [rows, n] of full ? [[1024, 1024], [8192, 1024]] : [[8192, 1024]]) {
    list.push({
      op: 'softmax', shape: `[${rows}, ${n}]`, bytes: 2 * 4 * rows * n,
      setup: (e) => { const x = random([rows, n], 3); return () => consume(e.softmax(x)); },
    });
  }
  const attention = [
    ['L=128', 1, 128, 128, false], ['L=512', 1, 512, 512, false], ['L=1024', 1, 1024, 1024, false],
    ['causal L=1024', 1, 1024, 1024, true], ['decode Lq=1 Lk=2048', 1, 1, 2048, false],
    ...(full ? [['L=2048', 1, 2048, 2048, false]] : []),
  ];
  for (const [label, B, Lq, Lk, causal] of attention) {
    const H = 8, d = 64;
    list.push({
      op: 'attention', shape: `${label} (B=${B} H=${H} d=${d})`, flops: 4 * B * H * Lq * Lk * d * (causal ? 0.5 : 1),
      setup: (e) => {
        const q = random([B, H, Lq, d], 4), k = random([B, H, Lk, d], 5), v = random([B, H, Lk, d], 6);
        return () => consume(e.scaledDotProductAttention(q, k, v, { causal }).output);
      },
    });
  }
  {
    const B = 8, L = 128, E = 512, H = 8;
    list.push({
      op: 'multi-head attention', shape: `B=${B} L=${L} E=${E} H=${H}`, flops: B * (4 * 2 * L * E * E + 4 * L * L * E),
      setup: (e) => {
        const x = random([B, L, E], 7);
        const params = { numHeads: H, inProjWeight: random([3 * E, E], 8), outProjWeight: random([E, E], 9) };
        return () => consume(e.selfAttention(x, params).output);
      },
    });
  }
  {
    const n = 1000, m = 10000;
    list.push({
      op: 'kernel regression', shape: `${n} queries x ${m} keys`, flops: 8 * n * m,
      setup: (e) => { const q = random([n], 10), k = random([m], 11), v = random([m], 12); return () => consume(e.kernelRegression(q, k, v).output); },
    });
  }
  return list.filter((c) => !filter || filter.test(`${c.op} ${c.shape}`));
}

const fmt = (x, digits = 3) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toPrecision(digits));

async function main() {
  const wasm = await createEngine();
  const wasmBytes = statSync(new URL('../build/qkv.wasm', import.meta.url)).size;
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  console.log(`qkv ${pkg.version} benchmarks, ${new Date().toISOString().slice(0, 10)}`);
  console.log(`machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.availableParallelism()} cores, Node ${process.version}`);
  console.log(`wasm build: ${wasm.info.simd}, ${wasm.info.threads} thread, ${(wasmBytes / 1024).toFixed(1)} KB .wasm`);
  console.log('figures: median and min of repeated calls in one run; ratios compare implementations of the same row group\n');

  const results = [];
  let family = '';
  for (const c of cases()) {
    if (c.op !== family) {
      family = c.op;
      console.log(`\n${family}`);
      console.log(`  ${'shape'.padEnd(36)} ${'impl'.padEnd(14)} ${'median ms'.padStart(10)} ${'min ms'.padStart(10)} ${(c.flops ? 'GFLOP/s' : 'GB/s').padStart(9)}  ratio`);
    }
    const rows = [];
    for (const [impl, engine] of [['qkv wasm', wasm], ['qkv reference', reference]]) {
      const estimateMs = (c.flops ?? c.bytes * 4) / 1.3e6;
      if (engine === reference && estimateMs > REFERENCE_BUDGET_MS) continue;
      const call = c.setup(engine);
      const heavy = estimateMs > 50;
      const bench = new Bench({ time: heavy ? 0 : 300, iterations: heavy ? 3 : 10, warmupIterations: heavy ? 1 : 5, warmupTime: heavy ? 0 : 50 });
      bench.add(impl, call);
      await bench.run();
      const r = bench.tasks[0].result;
      if (r.state !== 'completed') throw new Error(`${impl} ${c.op} ${c.shape}: ${r.state} ${r.error ?? ''}`);
      const medianMs = r.latency.p50, minMs = r.latency.min;
      const row = { op: c.op, shape: c.shape, impl, medianMs, minMs };
      if (c.flops) row.gflops = c.flops / medianMs / 1e6;
      if (c.bytes) row.gbps = c.bytes / medianMs / 1e6;
      rows.push(row);
    }
    for (const row of rows) {
      const others = rows.filter((o) => o !== row).map((o) => `${fmt(o.medianMs / row.medianMs)}x vs ${o.impl}`).join(', ');
      console.log(`  ${row.shape.padEnd(36)} ${row.impl.padEnd(14)} ${fmt(row.medianMs).padStart(10)} ${fmt(row.minMs).padStart(10)} ${fmt(row.gflops ?? row.gbps).padStart(9)}  ${others || '(reference skipped: too slow)'}`);
    }
    results.push(...rows);
  }
  if (jsonFile) {
    writeFileSync(jsonFile, JSON.stringify(results, null, 2));
    console.log(`\nwrote ${results.length} measurements to ${jsonFile}`);
  }
  wasm.dispose();
  if (Number.isNaN(sink)) console.log('(a result was NaN)');
}

await main();
