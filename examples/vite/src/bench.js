// The bench suite's attention and matmul cases (bench/lib/cases.js) on this page's wasm engine and on the
// reference, timed with tinybench like bench/run.js: warm-up first, results consumed, median and min.
import { reference } from 'qkv';
import { Bench } from 'tinybench';
import { attentionCase, benchCases, matmulCase } from '../../../bench/lib/cases.js';
import { fail, nav, ready, startEngine } from './common.js';
import { barChart } from './plot.js';

/** The reference is skipped where one call would take longer than this (ms, estimated at 1.3 GFLOP/s), as in bench/run.js. */
const REFERENCE_BUDGET_MS = 1500;
const estimateMs = (c) => c.flops / 1.3e6;

const SUITES = {
  smoke: () => [matmulCase(32), attentionCase('L=16', { H: 2, Lq: 16, d: 16 })],
  quick: () => [matmulCase(64), matmulCase(128), matmulCase(256), attentionCase('L=128', { Lq: 128 }), attentionCase('causal L=256', { Lq: 256, causal: true }), attentionCase('decode Lq=1 Lk=1024', { Lq: 1, Lk: 1024 })],
  suite: () => benchCases().filter((c) => c.op === 'attention' || c.op === 'matmul'),
};

const $ = (id) => document.getElementById(id);
const fmt = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 0.01 ? x.toPrecision(3) : x.toExponential(2));
let sink = 0; // every result flows here, so that no call is dead code

/**
 * Median and min ms per call of `call`, timed by tinybench after warm-up calls. Browsers coarsen
 * performance.now() (to 100 µs on a page that is not cross-origin isolated), so a fast call is timed
 * in batches of `reps` calls, grown until the fastest batch lasts 2 ms or more; heavy cases (over
 * 50 ms a call, estimated) run 2 warm-ups and 5 timed calls.
 */
async function measure(name, call, heavy) {
  const timeBatches = async (reps, time) => {
    const bench = new Bench({ time: heavy ? 0 : time, iterations: heavy ? 5 : 10, warmupIterations: heavy ? 2 : 3, warmupTime: heavy ? 0 : 20 });
    bench.add(name, () => { for (let r = 0; r < reps; r++) sink += call().data[0] ?? 0; });
    await bench.run();
    const r = bench.tasks[0].result;
    if (r.state !== 'completed') throw new Error(`${name}: ${r.state} ${r.error ?? ''}`);
    return r.latency;
  };
  if (heavy) {
    const latency = await timeBatches(1, 0);
    return { medianMs: latency.p50, minMs: latency.min };
  }
  // Grown on the fastest batch, not the median: one stall on a loaded machine must not stop the growth
  // at a batch the coarse clock reads as 0 ms.
  let reps = 1;
  for (let latency = await timeBatches(reps, 50); latency.min < 2 && reps < 2 ** 20; latency = await timeBatches(reps, 50)) {
    reps *= Math.max(2, Math.min(1024, Math.ceil(4 / Math.max(latency.min, 0.05))));
  }
  const latency = await timeBatches(reps, 300);
  return { medianMs: latency.p50 / reps, minMs: latency.min / reps };
}

const nextFrame = () => new Promise((resolve) => setTimeout(resolve, 0)); // let the page repaint between cases

async function run(engine, suite) {
  const cases = SUITES[suite]();
  const rows = [];
  const tbody = $('results').querySelector('tbody');
  tbody.innerHTML = '';
  $('chart').innerHTML = '';
  for (const [n, c] of cases.entries()) {
    $('status').textContent = `running ${n + 1} of ${cases.length}: ${c.op} ${c.shape}…`;
    await nextFrame();
    const inputs = c.inputs();
    const heavy = estimateMs(c) > 50;
    const wasm = await measure('wasm', () => c.qkv(engine, inputs), heavy);
    const ref = estimateMs(c) > REFERENCE_BUDGET_MS ? null : await measure('reference', () => c.qkv(reference, inputs), heavy);
    rows.push({ c, wasm, ref });
    for (const [impl, r] of [['wasm', wasm], ['reference', ref]]) {
      const tr = document.createElement('tr');
      tr.dataset.op = c.op;
      tr.dataset.impl = impl;
      const cells = r === null
        ? [c.op, c.shape, impl, 'skipped', '', '', '']
        : [c.op, c.shape, impl, fmt(r.medianMs), fmt(r.minMs), fmt(c.flops / r.medianMs / 1e6), impl === 'wasm' && ref ? `${fmt(ref.medianMs / wasm.medianMs)}×` : ''];
      tr.innerHTML = cells.map((v) => `<td>${v}</td>`).join('');
      tbody.append(tr);
    }
    $('chart').innerHTML = barChart({
      unit: 'GFLOP/s',
      colors: { 'qkv wasm': '#cb181d', 'qkv reference': '#6baed6' },
      groups: rows.map(({ c: k, wasm: w, ref: r }) => ({
        label: `${k.op} ${k.shape}`,
        bars: [
          { series: 'qkv wasm', value: k.flops / w.medianMs / 1e6, text: fmt(k.flops / w.medianMs / 1e6) },
          ...(r ? [{ series: 'qkv reference', value: k.flops / r.medianMs / 1e6, text: fmt(k.flops / r.medianMs / 1e6) }] : []),
        ],
      })),
    });
  }
  $('status').textContent = `done: ${cases.length} cases, ${navigator.userAgent.match(/(Chrome|Firefox|Safari)\/[\d.]+/)?.[0] ?? 'this browser'}, engine ${JSON.stringify(engine.info)} (checksum ${sink.toPrecision(3)})`;
  document.body.dataset.benchDone = suite;
}

nav('bench.html');
startEngine().then((engine) => {
  const suite = new URLSearchParams(location.search).get('suite');
  if (suite in SUITES) $('suite').value = suite;
  let running = false;
  const start = () => {
    if (running) return;
    running = true;
    $('run').disabled = true;
    run(engine, $('suite').value).catch(fail).finally(() => { running = false; $('run').disabled = false; });
  };
  $('run').addEventListener('click', start);
  ready();
  if (new URLSearchParams(location.search).has('run')) start();
}, fail);
