// qkv soak: `npm run soak [-- --short] [-- --calls N] [-- --seconds S] [-- --seed N] [-- --threads N]`
//
// Mixes calls of every op on one wasm engine, round-robin, each with a fresh random shape (sizes 0
// and 1 included), random options and masks, a few with NaN or ±Infinity in the data, and a share
// of bad input that must throw TypeError or RangeError. A sample of the calls is checked against the
// reference engine at the tolerance of the API (|a - b| <= 1e-4 + 1e-4·|b|, NaN equal to NaN).
//
// Memory: a warm-up first runs every op at its largest shape, so the engine's wasm memory reaches
// its high-water mark; after it the wasm memory must not grow at all, and the JS heap measured
// after a full GC (node --expose-gc) must not grow by more than HEAP_SLACK between the first
// checkpoint and the last.
//
// Default: CALLS calls of every op, stopping early at about two minutes. --short: the CI mode,
// SHORT_CALLS of every op in about 15 s. Exits 1 on a mismatch, an unexpected error or growth.
import os from 'node:os';
import { createEngine, reference, tensor } from 'qkv';
import { flag, value } from './args.js';

const CALLS = 100_000, SHORT_CALLS = 20_000;
const HEAP_SLACK = 4 * 2 ** 20; // bytes the GC'd heap may drift between checkpoints
const ABS_TOL = 1e-4, REL_TOL = 1e-4;

const short = flag('--short');
const callsPerOp = Number(value('--calls') ?? (short ? SHORT_CALLS : CALLS));
const seconds = Number(value('--seconds') ?? (short ? 15 : 120));
const seed = Number(value('--seed') ?? 1);
const threads = value('--threads') === 'auto' ? 'auto' : Number(value('--threads') ?? 1);
/** One call in CHECK_EVERY (of each op) is also run on the reference and compared. */
const CHECK_EVERY = short ? 10 : 20;
/** One call in BAD_EVERY is bad input; one in SPECIAL_EVERY gets a NaN or ±Infinity. */
const BAD_EVERY = 50, SPECIAL_EVERY = 30;

// ------------------------------------------------------------------ random inputs

let state = seed >>> 0;
/** mulberry32 in [0, 1). */
function rand() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = Math.imul(state ^ (state >>> 15), state | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
/** Mostly small sizes, 0 and 1 often, up to `max`. */
const dim = (max) => (rand() < 0.15 ? int(0, 1) : rand() < 0.7 ? int(1, Math.min(max, 8)) : int(1, max));
const pick = (xs) => xs[Math.floor(rand() * xs.length)];
const size = (shape) => shape.reduce((a, b) => a * b, 1);

function data(shape, scale = 1) {
  const out = new Float32Array(size(shape));
  for (let i = 0; i < out.length; i++) out[i] = (2 * rand() - 1) * scale;
  return out;
}
const t = (shape, scale) => tensor(data(shape, scale), shape);
const lens = (n, max) => Array.from({ length: n }, () => int(0, max));
function boolMask(shape) {
  const m = new Uint8Array(size(shape));
  for (let i = 0; i < m.length; i++) m[i] = rand() < 0.75 ? 1 : 0;
  return { data: m, shape };
}
function additiveMask(shape) {
  const m = data(shape, 2);
  for (let i = 0; i < m.length; i++) if (rand() < 0.15) m[i] = -Infinity;
  return { data: m, shape };
}
/** A mask that broadcasts to `target`: some axes 1, some leading axes dropped. */
function randomMask(target) {
  const shape = target.map((d) => (rand() < 0.5 ? d : 1)).slice(int(0, target.length - 1));
  return rand() < 0.5 ? boolMask(shape) : additiveMask(shape);
}

// ------------------------------------------------------------------ the ops, at random or largest shapes

/**
 * Each op: `make(big)` returns { label, run(engine) -> the result's tensors }, with random sizes,
 * or every size at its largest when `big`. `inputs(case)` lists the input tensors (for NaN poking).
 */
const ops = {
  matmul(big) {
    const d = (max) => (big ? max : dim(max));
    const lead = big ? [3] : pick([[], [], [d(3)], [d(3), d(2)]]);
    const M = d(128), K = d(128), N = d(128), transposeB = rand() < 0.5;
    // some leading axes 1 or missing, to broadcast
    const aLead = big ? lead : lead.map((x) => (rand() < 0.3 ? 1 : x));
    const bLead = big ? lead : lead.map((x) => (rand() < 0.3 ? 1 : x)).slice(int(0, lead.length));
    const a = t(big || rand() > 0.1 ? [...aLead, M, K] : [K]);
    const b = t(big || rand() > 0.1 ? [...bLead, ...(transposeB ? [N, K] : [K, N])] : [K]);
    return { label: `a [${a.shape}] b [${b.shape}] transposeB ${transposeB}`, inputs: [a, b], run: (e) => [e.matmul(a, b, { transposeB })] };
  },
  softmax(big) {
    const x = t(big ? [32, 1000] : pick([[dim(1000)], [dim(32), dim(1000)], [dim(4), dim(8), dim(128)]]), 5);
    return { label: `x [${x.shape}]`, inputs: [x], run: (e) => [e.softmax(x)] };
  },
  maskedSoftmax(big) {
    const d = (max) => (big ? max : dim(max));
    const B = d(4), Lq = d(32), Lk = d(256), x = t([B, Lq, Lk], 5);
    const l = big || rand() < 0.5 ? lens(B * Lq, Lk) : lens(B, Lk);
    return { label: `x [${x.shape}] validLens ${l.length}`, inputs: [x], run: (e) => [e.maskedSoftmax(x, l)] };
  },
  kernelRegression(big) {
    const d = (max) => (big ? max : dim(max));
    const n = d(256), m = d(512), f = big ? 4 : pick([0, 1, 2, 4]), dv = big ? 4 : pick([0, 1, 3]);
    const q = t(f ? [n, f] : [n], 2), k = t(f ? [m, f] : [m], 2), v = t(dv ? [m, dv] : [m]);
    const o = { w: big ? 1 : pick([undefined, 0, 0.5, 2, 10]), returnWeights: big || rand() < 0.3 };
    return { label: `q [${q.shape}] k [${k.shape}] v [${v.shape}] ${JSON.stringify(o)}`, inputs: [q, k, v], run: (e) => outputs(e.kernelRegression(q, k, v, o)) };
  },
  additiveAttention(big) {
    const d = (max) => (big ? max : dim(max));
    const B = d(3), Lq = d(32), Lk = d(64), Dq = d(32), Dk = d(32), Dv = d(32), h = d(32);
    const q = t([B, Lq, Dq]), k = t([B, Lk, Dk]), v = t([B, Lk, Dv]);
    const params = { Wq: t([h, Dq]), Wk: t([h, Dk]), wv: t([1, h]) };
    const o = { returnWeights: big || rand() < 0.3, validLens: rand() < 0.5 ? lens(rand() < 0.5 ? B : B * Lq, Lk) : undefined };
    return { label: `q [${q.shape}] k [${k.shape}] v [${v.shape}] h ${h}`, inputs: [q, k, v], run: (e) => outputs(e.additiveAttention(q, k, v, params, o)) };
  },
  scaledDotProductAttention(big) {
    const d = (max) => (big ? max : dim(max));
    const rank = big ? 4 : pick([3, 4]);
    const B = d(2), Hkv = rank === 3 ? 1 : d(4), Hq = rank === 3 ? 1 : Hkv * (big ? 2 : int(1, 2));
    const Lq = d(128), Lnew = d(128), Lpast = big ? 32 : pick([0, 0, 0, dim(32)]), E = d(64), Ev = d(64);
    const heads = (h) => (rank === 3 ? [] : [h]);
    const q = t([B, ...heads(Hq), Lq, E]), k = t([B, ...heads(Hkv), Lnew, E]), v = t([B, ...heads(Hkv), Lnew, Ev]);
    const Lk = Lpast + Lnew;
    const o = {
      scale: rand() < 0.3 ? rand() * 2 : undefined,
      softcap: rand() < 0.2 ? pick([0, 1, 5]) : undefined,
      causal: pick([undefined, false, true, 'top-left', 'bottom-right']),
      window: rand() < 0.2 ? { left: pick([undefined, 0, 3]), right: pick([undefined, 0, 2]) } : undefined,
      validLens: rand() < 0.3 ? lens(B, Lk) : undefined,
      mask: big ? additiveMask([B, ...heads(Hq), Lq, Lk]) : rand() < 0.4 ? randomMask([B, ...heads(Hq), Lq, Lk]) : undefined,
      returnWeights: big || rand() < 0.3,
    };
    if (Lpast > 0) { o.pastKey = t([B, ...heads(Hkv), Lpast, E]); o.pastValue = t([B, ...heads(Hkv), Lpast, Ev]); }
    const label = `q [${q.shape}] k [${k.shape}] v [${v.shape}] past ${Lpast} ${JSON.stringify({ ...o, mask: o.mask?.shape, pastKey: undefined, pastValue: undefined })}`;
    return { label, inputs: [q, k, v], run: (e) => outputs(e.scaledDotProductAttention(q, k, v, o)) };
  },
  multiHeadAttention(big) {
    const d = (max) => (big ? max : dim(max));
    const B = d(2), Lq = d(48), Lk = d(48), H = big ? 4 : int(1, 4), E = H * (big ? 16 : int(1, 16));
    const separate = !big && rand() < 0.3, kdim = separate ? d(64) : E, vdim = separate ? d(64) : E;
    const s = 1 / Math.sqrt(Math.max(E, 1));
    const params = {
      numHeads: H, outProjWeight: t([E, E], s),
      ...(separate ? { qProjWeight: t([E, E], s), kProjWeight: t([E, kdim], s), vProjWeight: t([E, vdim], s) } : { inProjWeight: t([3 * E, E], s) }),
      ...(rand() < 0.5 ? { inProjBias: t([3 * E], 0.1), outProjBias: t([E], 0.1) } : {}),
      ...(rand() < 0.2 ? { biasK: t([1, 1, E]), biasV: t([1, 1, E]) } : {}),
      addZeroAttn: rand() < 0.2,
    };
    const q = t([B, Lq, E]), k = t([B, Lk, kdim]), v = t([B, Lk, vdim]);
    const o = {
      causal: pick([false, true, 'bottom-right']),
      keyPaddingMask: rand() < 0.3 ? boolMask([B, Lk]) : undefined,
      mask: rand() < 0.3 ? randomMask([Lq, Lk]) : undefined,
      needWeights: big || rand() < 0.3, averageWeights: rand() < 0.5,
    };
    return { label: `q [${q.shape}] k [${k.shape}] v [${v.shape}] H ${H}`, inputs: [q, k, v], run: (e) => outputs(e.multiHeadAttention(q, k, v, params, o)) };
  },
  selfAttention(big) {
    const B = big ? 2 : dim(2), L = big ? 64 : dim(64), H = big ? 2 : int(1, 2), E = H * (big ? 16 : int(1, 16));
    const x = t([B, L, E]), params = { numHeads: H, inProjWeight: t([3 * E, E], 0.3), outProjWeight: t([E, E], 0.3) };
    const o = { causal: rand() < 0.5, needWeights: big || rand() < 0.3 };
    return { label: `x [${x.shape}] H ${H}`, inputs: [x], run: (e) => outputs(e.selfAttention(x, params, o)) };
  },
  positionalEncoding(big) {
    const maxLen = big ? 128 : dim(128), d = big ? 64 : dim(64);
    return { label: `[${maxLen}, ${d}]`, inputs: [], run: (e) => [e.positionalEncoding(maxLen, d)] };
  },
};
const names = Object.keys(ops);

function outputs(r) {
  return [r.output, r.weights, r.presentKey, r.presentValue].filter((x) => x !== undefined);
}

/** Bad input, each of which must throw a TypeError or RangeError and leave nothing behind. */
const badInputs = [
  (e) => e.matmul(t([2, 3]), t([4, 5])),
  (e) => e.matmul(t([dim(8), 3]), t([3, 2]), { transposeB: 'yes' }),
  (e) => e.softmax({ data: new Float64Array(4), shape: [2, 2] }),
  (e) => e.maskedSoftmax(t([2, 2, 3]), [1, 4]),
  (e) => e.kernelRegression(t([3]), t([4]), t([4]), { w: -1 }),
  (e) => e.additiveAttention(t([1, 2, 3]), t([1, 4, 5]), t([1, 4, 6]), { Wq: t([8, 4]), Wk: t([8, 5]), wv: t([1, 8]) }),
  (e) => e.scaledDotProductAttention(t([1, 3, 2, 4]), t([1, 2, 5, 4]), t([1, 2, 5, 4])),
  (e) => e.scaledDotProductAttention(t([1, 2, 4]), t([1, 5, 4]), t([1, 5, 4]), { scale: NaN }),
  (e) => e.scaledDotProductAttention(t([1, 2, 4]), t([1, 5, 4]), t([1, 5, 4]), { mask: { data: new Int32Array(10), shape: [2, 5] } }),
  (e) => e.scaledDotProductAttention(t([1, 2, 4]), t([1, 5, 4]), t([1, 5, 4]), { validLens: [6] }),
  // fails inside the wasm wrapper, after copying inputs in: the output would exceed 4 GiB
  (e) => e.matmul(t([40_000, 1]), t([1, 40_000])),
  (e) => e.selfAttention(t([1, 2, 6]), { numHeads: 4, inProjWeight: t([18, 6]), outProjWeight: t([6, 6]) }),
  (e) => e.positionalEncoding(-1, 4),
];

// ------------------------------------------------------------------ comparison

/** The largest |a - b| and the largest ratio of it to the tolerance; Infinity when NaN/Infinity differ. */
function compare(got, want) {
  if (got.shape.length !== want.shape.length || got.shape.some((d, i) => d !== want.shape[i])) return { diff: Infinity, ratio: Infinity, at: -1 };
  let diff = 0, ratio = 0, at = -1;
  for (let i = 0; i < want.data.length; i++) {
    const a = got.data[i], b = want.data[i];
    if (a === b || (Number.isNaN(a) && Number.isNaN(b))) continue;
    const d = Number.isFinite(a) && Number.isFinite(b) ? Math.abs(a - b) : Infinity;
    const r = d / (ABS_TOL + REL_TOL * Math.abs(b));
    if (d > diff) diff = d;
    if (r > ratio) { ratio = r; at = i; }
  }
  return { diff, ratio, at };
}

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
