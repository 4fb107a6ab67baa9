// qkv soak: `npm run soak [-- --short] [-- --calls N] [-- --seconds S] [-- --seed N] [-- --threads N]`
//
// Mixes calls of every op on one wasm engine, round-robin, each with a fresh random shape (sizes 0
// and 1 included), random options and masks (bench/lib/random-cases.js), a few with NaN or ±Infinity in
// the data, and a share of bad input that must throw TypeError or RangeError. A sample of the calls
// is checked against the reference engine at the tolerance of the API (|a - b| <= 1e-4 + 1e-4·|b|, NaN equal to NaN).
//
// Memory: a warm-up first runs every op at its largest shape, so the engine's wasm memory reaches
// its high-water mark; after it the wasm memory must not grow at all, and the JS heap measured
// after a full GC (node --expose-gc) must not grow by more than HEAP_SLACK between the first
// checkpoint and the last.
//
// Default: CALLS calls of every op, stopping early at about two minutes. --short: the CI mode,
// SHORT_CALLS of every op in about 15 s. Exits 1 on a mismatch, an unexpected error or growth.
import os from 'node:os';
import { createEngine, reference } from 'qkv';
import { flag, value } from './lib/args.js';
import { compare, randomCases } from './lib/random-cases.js';

const CALLS = 100_000, SHORT_CALLS = 20_000;
const HEAP_SLACK = 4 * 2 ** 20; // bytes the GC'd heap may drift between checkpoints

const short = flag('--short');
const callsPerOp = Number(value('--calls') ?? (short ? SHORT_CALLS : CALLS));
const seconds = Number(value('--seconds') ?? (short ? 15 : 120));
const seed = Number(value('--seed') ?? 1);
const threads = value('--threads') === 'auto' ? 'auto' : Number(value('--threads') ?? 1);
/** One call in CHECK_EVERY (of each op) is also run on the reference and compared. */
const CHECK_EVERY = short ? 10 : 20;
/** One call in BAD_EVERY is bad input; one in SPECIAL_EVERY gets a NaN or ±Infinity. */
const BAD_EVERY = 50, SPECIAL_EVERY = 30;

const { int, pick, ops, names, badInputs } = randomCases(seed);

// ------------------------------------------------------------------ the run

const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(2)} MiB`;
const gc = globalThis.gc ?? (() => {});
function heapAfterGc() {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

async function main() {
  const engine = await createEngine({ threads });
  console.log(`qkv soak${short ? ' (short)' : ''}: ${callsPerOp.toLocaleString('en')} calls of each of ${names.length} ops, at most ${seconds} s, seed ${seed}`);
  console.log(`machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.availableParallelism()} cores, Node ${process.version}; wasm build ${engine.info.simd}, ${engine.info.threads} thread(s)`);
  if (!globalThis.gc) console.log('note: run with node --expose-gc (npm run soak does) for exact JS heap figures');

  // warm-up: every op at its largest shape, with and without the options that allocate most
  for (const name of names) for (let i = 0; i < 4; i++) ops[name](true).run(engine);
  for (const bad of badInputs) try { bad(engine); } catch { /* expected */ }
  const wasmAfterWarmup = engine.info.memoryBytes;
  const heapAfterWarmup = heapAfterGc();
  let wasmHigh = wasmAfterWarmup, heapHigh = process.memoryUsage().heapUsed, rssHigh = process.memoryUsage().rss;

  const stats = Object.fromEntries(names.map((n) => [n, { calls: 0, checked: 0, diff: 0, ratio: 0 }]));
  const mismatches = [], unexpected = [];
  let badCount = 0, badThrown = 0, special = 0, calls = 0, previous = 'the warm-up';
  const checkpoints = []; // GC'd heap at each tenth of the run
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  let stoppedEarly = false;

  outer: for (let round = 0; round < callsPerOp; round++) {
    for (const name of names) {
      if (calls % 1000 === 0) {
        wasmHigh = Math.max(wasmHigh, engine.info.memoryBytes);
        const m = process.memoryUsage();
        heapHigh = Math.max(heapHigh, m.heapUsed);
        rssHigh = Math.max(rssHigh, m.rss);
        const progress = Math.max(round / callsPerOp, (performance.now() - t0) / (seconds * 1000));
        if (progress >= (checkpoints.length + 1) / 10) checkpoints.push(heapAfterGc());
        if (performance.now() > deadline) { stoppedEarly = true; break outer; }
      }
      calls++;
      if (calls % BAD_EVERY === 0) {
        // one more call, with bad input
        const bad = pick(badInputs);
        badCount++;
        previous = `bad input ${badInputs.indexOf(bad)}`;
        try {
          bad(engine);
          unexpected.push(`${bad.toString()}: did not throw`);
        } catch (err) {
          if (err instanceof TypeError || err instanceof RangeError) badThrown++;
          else unexpected.push(`${bad.toString()}: threw ${err}`);
        }
      }
      const st = stats[name];
      st.calls++;
      const c = ops[name](false);
      if (calls % SPECIAL_EVERY === 0) {
        const input = c.inputs.filter((x) => x.data.length > 0);
        if (input.length) {
          const x = pick(input);
          x.data[int(0, x.data.length - 1)] = pick([NaN, Infinity, -Infinity]);
          special++;
        }
      }
      const after = previous;
      previous = `${name} ${c.label}`;
      let got;
      try {
        got = c.run(engine);
      } catch (err) {
        unexpected.push(`${name} ${c.label}: ${err?.stack ?? err}`);
        continue;
      }
      if (st.calls % CHECK_EVERY === 0) {
        const want = c.run(reference);
        st.checked++;
        // for a mismatch: the call before it, and whether running the call again gives the same
        const context = () => {
          const again = c.run(engine);
          const same = again.length === want.length && again.every((x, i) => compare(x, want[i]).ratio <= 1);
          return `(call ${calls}, after ${after}; run again it ${same ? 'matches the reference' : 'differs again'})`;
        };
        if (want.length !== got.length) mismatches.push(`${name} ${c.label}: ${got.length} results, the reference gives ${want.length} ${context()}`);
        else want.forEach((w, i) => {
          const { diff, ratio, at } = compare(got[i], w);
          if (Number.isFinite(diff)) st.diff = Math.max(st.diff, diff);
          st.ratio = Math.max(st.ratio, ratio);
          if (ratio > 1) mismatches.push(`${name} ${c.label}: result ${i} [${w.shape}], index ${at}: wasm ${got[i].data[at]}, reference ${w.data[at]} ${context()}`);
        });
      }
    }
  }
  const elapsed = (performance.now() - t0) / 1000;
  const wasmEnd = engine.info.memoryBytes;
  wasmHigh = Math.max(wasmHigh, wasmEnd);
  checkpoints.push(heapAfterGc());

  console.log(`\n  ${'op'.padEnd(26)} ${'calls'.padStart(8)} ${'checked'.padStart(8)} ${'max |diff|'.padStart(11)} ${'of tolerance'.padStart(13)}`);
  for (const name of names) {
    const s = stats[name];
    console.log(`  ${name.padEnd(26)} ${String(s.calls).padStart(8)} ${String(s.checked).padStart(8)} ${s.diff.toExponential(1).padStart(11)} ${`${(100 * s.ratio).toFixed(1)}%`.padStart(13)}`);
  }
  const maxDiff = Math.max(...names.map((n) => stats[n].diff));
  console.log(`\ncalls: ${(calls + badCount).toLocaleString('en')} in ${elapsed.toFixed(1)} s${stoppedEarly ? ` (stopped at the ${seconds} s bound)` : ''}: ${calls.toLocaleString('en')} good (${special} with NaN or ±Infinity in an input) and ${badCount.toLocaleString('en')} with bad input`);
  console.log(`errors: ${badThrown.toLocaleString('en')} of the bad inputs threw TypeError/RangeError as they must; ${unexpected.length} unexpected errors`);
  console.log(`checked against the reference: ${names.reduce((a, n) => a + stats[n].checked, 0).toLocaleString('en')} calls, max |diff| ${maxDiff.toExponential(2)}, ${mismatches.length} over tolerance`);
  console.log(`wasm memory: ${mib(wasmAfterWarmup)} after warm-up, high-water ${mib(wasmHigh)}, ${mib(wasmEnd)} at the end`);
  console.log(`JS heap (after GC): ${mib(heapAfterWarmup)} after warm-up, ${checkpoints.map(mib).join(', ')} at each tenth; high-water ${mib(heapHigh)} (before GC); rss high-water ${mib(rssHigh)}`);

  const failures = [];
  if (mismatches.length) failures.push(`wasm differs from the reference:\n    ${mismatches.slice(0, 10).join('\n    ')}`);
  if (unexpected.length) failures.push(`unexpected errors:\n    ${unexpected.slice(0, 10).join('\n    ')}`);
  if (wasmHigh > wasmAfterWarmup) failures.push(`wasm memory grew after warm-up: ${mib(wasmAfterWarmup)} -> ${mib(wasmHigh)}`);
  const heapGrowth = checkpoints[checkpoints.length - 1] - checkpoints[0];
  if (globalThis.gc && heapGrowth > HEAP_SLACK) failures.push(`JS heap grew by ${mib(heapGrowth)} between the first and the last checkpoint (allowed ${mib(HEAP_SLACK)})`);
  engine.dispose();
  if (failures.length) {
    console.log(`\nFAIL\n  ${failures.join('\n  ')}`);
    process.exit(1);
  }
  console.log('\nPASS: no mismatch, no unexpected error, memory flat after warm-up');
}

await main();
