// qkv benchmarks: `npm run bench [-- --filter REGEX] [-- --json FILE] [-- --full] [-- --peers=none|all|ort,tfjs] [-- --threads N] [-- --markdown]`
//
// One table per op family: shape, implementation, median and min ms, GFLOP/s or GB/s, and the
// ratio of each implementation against every other one measured in the same run on the same
// inputs: qkv's wasm engine, qkv's reference engine, and the peers onnxruntime-web and
// TensorFlow.js (wasm backend), each on one thread. The peers are first checked against qkv's
// reference on small inputs (lib/check-peers.js). Inputs are built once per case outside the timed
// functions (lib/cases.js; each peer converts them to its own tensors in its setup); every result is
// consumed so that nothing is optimized away; each timing starts after warm-up calls.
// --markdown ends with the README's tables and footprint for this run (lib/markdown.js).
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { createEngine, reference } from 'qkv';
import { Bench } from 'tinybench';
import { flag, value } from './lib/args.js';
import { benchCases, familyNotes } from './lib/cases.js';
import { checkPeers, MAX_TOLERANCE } from './lib/check-peers.js';
import { attentionMemory, coldStartMs } from './lib/footprint.js';
import { markdownReport } from './lib/markdown.js';
import { loadPeers } from './lib/peers/index.js';
import { decoder, encoder, oneTokenLayer, zeroCopySoftmax } from './lib/serving.js';

const filter = value('--filter') ? new RegExp(value('--filter')) : null;
const jsonFile = value('--json');
const full = flag('--full');
const peerSpec = value('--peers') ?? 'all';
/** `--threads N`: qkv also runs on N threads (side by side with one), and the peers run on N threads. */
const threads = Number(value('--threads') ?? 1);
if (!Number.isInteger(threads) || threads < 1) throw new Error(`--threads must be a positive integer, got ${value('--threads')}`);
/** The reference engine is skipped where one call would take longer than this (ms, estimated at 1.3 GFLOP/s). */
const REFERENCE_BUDGET_MS = full ? 20_000 : 1_500;

let sink = 0; // results flow here so that no call is dead code

/** An implementation: name, short name for the ratio columns, the op families it runs, and setup(case, inputs) -> { call, dispose }. */
function qkvImpl(name, short, engine) {
  return { name, short, async: false, ops: null, setup: (c, inputs) => ({ call: () => c.qkv(engine, inputs).data, dispose: () => c.release?.(engine, inputs) }) };
}

/** qkv with B held in engine memory (an engine tensor) across calls: the cases that have `resident`. */
function residentImpl(name, short, engine) {
  return { name, short, async: false, ops: ['skinny matmul'], setup: (c, inputs) => c.resident(engine, inputs) };
}

const fmt = (x, digits = 3) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toPrecision(digits));
const fmtRatio = (x) => (x >= 10 ? x.toFixed(0) : x.toPrecision(2));
const estimateMs = (c) => (c.flops ?? c.bytes * 4) / 1.3e6;

/** Times one implementation on one case; returns { medianMs, minMs }. */
async function measure(impl, c, inputs) {
  const runner = await impl.setup(c, inputs);
  try {
    const { call } = runner;
    const task = impl.async ? async () => { sink += (await call())[0] ?? 0; } : () => { sink += call()[0] ?? 0; };
    // light cases: at least 10 calls and 300 ms after 5 warm-up calls; heavy ones: 7 calls after 2
    const heavy = estimateMs(c) > 50;
    const bench = new Bench({ time: heavy ? 0 : 300, iterations: heavy ? 7 : 10, warmupIterations: heavy ? 2 : 5, warmupTime: heavy ? 0 : 50 });
    bench.add(impl.name, task, { async: impl.async });
    await bench.run();
    const r = bench.tasks[0].result;
    if (r.state !== 'completed') throw new Error(`${impl.name} ${c.op} ${c.shape}: ${r.state} ${r.error ?? ''}`);
    return { medianMs: r.latency.p50, minMs: r.latency.min };
  } finally {
    runner.dispose();
  }
}

function printHeader(family, impls, c) {
  console.log(`\n${family}`);
  const ratios = impls.map((i) => `vs ${i.short}`.padStart(9)).join('');
  console.log(`  ${'shape'.padEnd(36)} ${'impl'.padEnd(16)} ${'median ms'.padStart(10)} ${'min ms'.padStart(10)} ${(c.flops ? 'GFLOP/s' : 'GB/s').padStart(9)}${ratios}`);
}

/** Ratio columns: the other implementation's median / this row's median (> 1: this row is faster). */
function printRows(rows, impls) {
  for (const row of rows) {
    const head = `  ${row.shape.padEnd(36)} ${row.impl.padEnd(16)}`;
    if (row.skipped) { console.log(`${head} skipped: ${row.skipped}`); continue; }
    const ratios = impls.map((i) => {
      const other = rows.find((o) => o.impl === i.name && !o.skipped);
      return (other && other !== row ? `${fmtRatio(other.medianMs / row.medianMs)}x` : '-').padStart(9);
    }).join('');
    console.log(`${head} ${fmt(row.medianMs).padStart(10)} ${fmt(row.minMs).padStart(10)} ${fmt(row.gflops ?? row.gbps).padStart(9)}${ratios}`);
  }
}

/**
 * Time with float32 subnormal inputs over time with normal ones, per implementation (lib/cases.js pairs
 * them): of the medians, and of the minimums, which a busy machine disturbs less.
 */
function printSubnormalRatios(cases, results) {
  const pairs = cases.filter((c) => c.normalShape && cases.some((n) => n.op === c.op && n.shape === c.normalShape));
  if (pairs.length === 0) return;
  console.log('\nsubnormal inputs: time over the same shape with normal inputs, median (min); qkv aims for < 2x');
  for (const c of pairs) {
    const ratios = results.filter((r) => r.op === c.op && r.shape === c.shape).map((r) => {
      const normal = results.find((n) => n.op === c.op && n.shape === c.normalShape && n.impl === r.impl);
      return normal ? `${r.impl} ${fmtRatio(r.medianMs / normal.medianMs)}x (${fmtRatio(r.minMs / normal.minMs)}x)` : null;
    }).filter(Boolean);
    console.log(`  ${c.op} ${c.shape}: ${ratios.join(', ')}`);
  }
}

async function main() {
  const wasm = await createEngine();
  const wasmBytes = statSync(new URL(`../build/${wasm.info.simd === 'relaxed' ? 'qkv-relaxed' : 'qkv'}.wasm`, import.meta.url)).size;
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  console.log(`qkv ${pkg.version} benchmarks, ${new Date().toISOString().slice(0, 10)}`);
  console.log(`machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.availableParallelism()} cores, Node ${process.version}`);
  const threaded = threads > 1 ? await createEngine({ threads }) : null;
  console.log(`wasm build: ${wasm.info.simd}, ${wasm.info.threads} thread${threaded ? ` and ${threaded.info.threads} threads` : ''}, ${(wasmBytes / 1024).toFixed(1)} KB .wasm`);

  const peers = await loadPeers(peerSpec);
  for (const peer of peers) console.log(`peer: ${await peer.init({ threads })}`);
  for (const { peer, cases, worst } of await checkPeers(peers)) {
    console.log(`  ${peer.name} agrees with qkv reference on ${cases.length} small inputs: max |diff| = ${worst.toExponential(1)} x max(1, max |ref|) (allowed ${MAX_TOLERANCE})`);
  }
  console.log('figures: median and min of repeated calls in one run, after warm-up; vs X = X\'s median / this row\'s median (> 1: this row is faster)');

  const impls = [
    qkvImpl('qkv wasm', 'wasm', wasm),
    residentImpl('qkv wasm, B res', 'res', wasm),
    ...(threaded ? [qkvImpl(`qkv wasm ${threads}T`, `${threads}T`, threaded), residentImpl(`qkv ${threads}T, B res`, `res${threads}T`, threaded)] : []),
    qkvImpl('qkv reference', 'ref', reference), ...peers,
  ];
  const cases = benchCases({ full }).filter((c) => !filter || filter.test(`${c.op} ${c.shape}`));
  const results = [];
  for (const [i, c] of cases.entries()) {
    const family = impls.filter((impl) => !impl.ops || impl.ops.includes(c.op));
    if (c.op !== cases[i - 1]?.op) printHeader(c.op, family, c);
    const inputs = c.inputs();
    const rows = [];
    for (const impl of family) {
      if (impl.name === 'qkv reference' && estimateMs(c) > REFERENCE_BUDGET_MS) {
        rows.push({ shape: c.shape, impl: impl.name, skipped: `too slow (over the ${REFERENCE_BUDGET_MS / 1000} s budget${full ? '' : '; --full raises it'})` });
        continue;
      }
      const { medianMs, minMs } = await measure(impl, c, inputs);
      const row = { op: c.op, shape: c.shape, impl: impl.name, medianMs, minMs };
      if (c.flops) row.gflops = c.flops / medianMs / 1e6;
      if (c.bytes) row.gbps = c.bytes / medianMs / 1e6;
      rows.push(row);
    }
    printRows(rows, family);
    results.push(...rows.filter((r) => !r.skipped));
    if (c.op !== cases[i + 1]?.op) {
      if (familyNotes[c.op]) console.log(`  (${familyNotes[c.op]})`);
      for (const peer of peers) if (peer.notes[c.op]) console.log(`  (${peer.notes[c.op]})`);
      if (peers.length && !peers.some((p) => p.ops.includes(c.op))) console.log('  (no peer has this op)');
    }
  }
  printSubnormalRatios(cases, results);
  if (!filter || filter.test('serving')) {
    console.log('\nserving (prepared layers and KV caches)');
    for (const t of threaded ? [1, threads] : [1]) {
      const enc = await encoder({ threads: t });
      const tps = (ms) => fmt((enc.tokens / ms) * 1000);
      const ort = results.find((r) => r.op === 'multi-head attention' && r.impl === 'onnxruntime-web');
      console.log(`  encoder ${enc.shape}, ${t} thread${t > 1 ? 's' : ''}: prepared layer ${fmt(enc.preparedMs)} ms (${tps(enc.preparedMs)} tokens/s), stateless ${fmt(enc.statelessMs)} ms (${tps(enc.statelessMs)} tokens/s): ${fmtRatio(enc.statelessMs / enc.preparedMs)}x${ort ? `; ${fmtRatio(ort.medianMs / enc.preparedMs)}x onnxruntime-web's ${fmt(ort.medianMs)} ms above` : ''}`);
      results.push({ op: 'serving', shape: `encoder ${enc.shape} prepared`, impl: t > 1 ? `qkv wasm ${t}T` : 'qkv wasm', medianMs: enc.preparedMs, minMs: enc.preparedMs });
    }
    for (const t of threaded ? [1, threads] : [1]) {
      const one = await oneTokenLayer({ threads: t });
      console.log(`  prepared layer ${one.shape}, one-token forward, ${t} thread${t > 1 ? 's' : ''}: ${fmt(one.ms)} ms for ${fmt(one.weightMiB)} MiB of weights, ${fmt(one.gbps)} GB/s of weights`);
      results.push({ op: 'serving', shape: `one-token layer ${one.shape}`, impl: t > 1 ? `qkv wasm ${t}T` : 'qkv wasm', medianMs: one.ms, minMs: one.ms, gbps: one.gbps });
    }
    const ortDecode = results.find((r) => r.op === 'attention' && r.shape.startsWith('decode') && r.impl === 'onnxruntime-web');
    for (const o of [{}, { Hkv: 2 }, { layer: true }]) {
      const dec = await decoder(o);
      const vsOrt = ortDecode && !o.layer ? `; ${fmtRatio(ortDecode.medianMs / dec.p50)}x onnxruntime-web's decode row above (${fmt(ortDecode.medianMs)} ms, K and V passed in each step)` : '';
      console.log(`  decoder ${dec.shape}: per step p50 ${fmt(dec.p50)} ms, p99 ${fmt(dec.p99)} ms; wasm memory growth over the steps ${dec.wasmGrowth} bytes, JS heap ${dec.heapGrowthMB.toFixed(1)} MB${vsOrt}`);
      results.push({ op: 'serving', shape: `decoder ${dec.shape}`, impl: 'qkv wasm', medianMs: dec.p50, minMs: dec.p50, p99Ms: dec.p99 });
    }
  }
  if (!filter || filter.test('softmax engine tensors')) {
    console.log('\nsoftmax with engine tensors (zero-copy in and out: options.out)');
    for (const [rows, n] of [[8192, 1024], [65536, 128]]) {
      const sm = await zeroCopySoftmax(rows, n);
      const ortSoftmax = results.find((r) => r.op === 'softmax' && r.shape === sm.shape && r.impl === 'onnxruntime-web');
      console.log(`  softmax ${sm.shape}: ${fmt(sm.ms)} ms, ${fmt(sm.gbps)} GB/s${ortSoftmax ? `; ${fmtRatio(ortSoftmax.medianMs / sm.ms)}x onnxruntime-web's softmax row above` : ''}`);
      results.push({ op: 'serving', shape: `softmax ${sm.shape} engine tensors`, impl: 'qkv wasm', medianMs: sm.ms, minMs: sm.ms, gbps: sm.gbps });
    }
  }
  if (!filter || filter.test('footprint')) {
    console.log('\nfootprint');
    const cold = coldStartMs();
    console.log(`  cold start (import + createEngine + first small attention, fresh process, median of 5): ${fmt(cold.ms)} ms, process RSS ${fmt(cold.rssMB)} MB`);
    console.log(`  .wasm size: ${(wasmBytes / 1024).toFixed(1)} KB`);
    results.push({ op: 'footprint', shape: 'cold start', impl: 'qkv wasm', medianMs: cold.ms, minMs: cold.ms });
    const L = full ? 16384 : 8192;
    const mem = await attentionMemory(L);
    console.log(`  attention B=1 H=8 d=64 L=${L}: wasm memory grew ${fmt(mem.growthMiB)} MiB for ${fmt(mem.ioMiB)} MiB of inputs and output: ${fmt(mem.beyondIoMiB)} MiB beyond them (${fmt(mem.ms)} ms)`);
    results.push({ op: 'footprint', shape: `attention memory L=${L}`, impl: 'qkv wasm', medianMs: mem.ms, minMs: mem.ms, beyondIoMiB: mem.beyondIoMiB });
  }
  if (flag('--markdown')) {
    const time = new Date().toISOString();
    const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.availableParallelism()} cores, Node ${process.versions.node}`;
    console.log(`\n${markdownReport({ results, threads, machine, build: wasm.info.simd === 'relaxed' ? 'relaxed-SIMD' : 'plain SIMD', date: `${time.slice(0, 10)}, ${time.slice(11, 16)} UTC` })}`);
  }
  if (jsonFile) {
    writeFileSync(jsonFile, JSON.stringify(results, null, 2));
    console.log(`\nwrote ${results.length} measurements to ${jsonFile}`);
  }
  for (const peer of peers) await peer.close();
  wasm.dispose();
  threaded?.dispose();
  if (Number.isNaN(sink)) console.log('(a result was NaN)');
}

await main();
