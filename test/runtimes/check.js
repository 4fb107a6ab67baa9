// The wasm engine against the reference engine, on every op, both builds and 1 and 2 threads, in any
// JavaScript runtime: .ci/run runs it under Bun (JavaScriptCore, Safari's engine) and Deno, where
// vitest does not run. Plain JavaScript on the built package (npm run build first).
//
//   bun test/runtimes/check.js       deno run -A test/runtimes/check.js       node test/runtimes/check.js
//
// For each op: its largest case (large enough for the calls to be split between threads) and CASES
// random ones (bench/lib/random-cases.js: sizes 0 and 1, SIMD tails, masks, options; some with NaN or
// ±Infinity in an input). Each case must match the reference within the API's tolerance on each of
// the four engines, give the same bits on 2 threads as on 1, and each bad input must throw a
// TypeError or RangeError. Prints every failure, then 'N passed, N failed'; exits 1 on any failure.
import { createEngine, reference } from 'qkv';
import { compare, randomCases } from '../../bench/lib/random-cases.js';

const CASES = 40;
const SEED = 13;

const runtime = typeof Bun !== 'undefined' ? `Bun ${Bun.version}`
  : typeof Deno !== 'undefined' ? `Deno ${Deno.version.deno}`
  : `Node ${process.version}`;

const { int, pick, ops, names, badInputs } = randomCases(SEED);
const cases = names.flatMap((name) => Array.from({ length: CASES + 1 }, (_, i) => {
  const c = ops[name](i === 0);
  if (i % 7 === 3) {
    const inputs = c.inputs.filter((x) => x.data.length > 0);
    const x = inputs.length ? pick(inputs) : null;
    if (x) x.data[int(0, x.data.length - 1)] = pick([NaN, Infinity, -Infinity]);
  }
  return { name, ...c, want: c.run(reference) };
}));

let passed = 0;
const failures = [];
const check = (ok, what) => (ok ? passed++ : failures.push(what));
// Bits of every value, a NaN as NaN: WebAssembly leaves a NaN result's sign and payload to the engine,
// and on Node 24 a masked softmax's NaN came out of the 2-thread engine as 0xffc00000 where one thread
// gave 0x7fc00000 (in 30-75% of calls; never on Node 20), so only which values are NaN must agree.
const bits = (results) => results.map((x) => Array.from(new Uint32Array(x.data.buffer, x.data.byteOffset, x.data.length), (u, i) => (Number.isNaN(x.data[i]) ? 'NaN' : u)).join(','));

/** Results of every case on the 1-thread engine of a build, to compare the 2-thread one with. */
const oneThread = new Map();
for (const simd of ['simd', 'relaxed']) {
  for (const threads of [1, 2]) {
    const engine = await createEngine({ simd, threads });
    const label = `${simd} build, ${threads} thread${threads > 1 ? 's' : ''}`;
    check(engine.info.simd === simd && engine.info.threads === threads, `${label}: engine.info is ${JSON.stringify(engine.info)}`);
    for (const [i, c] of cases.entries()) {
      const what = `${label}: ${c.name} ${c.label}`;
      let got;
      try {
        got = c.run(engine);
      } catch (err) {
        check(false, `${what}: threw ${err?.stack ?? err}`);
        continue;
      }
      const worst = got.length === c.want.length ? Math.max(0, ...got.map((g, j) => compare(g, c.want[j]).ratio)) : Infinity;
      check(worst <= 1, `${what}: ${got.length} results for the reference's ${c.want.length}, worst at ${worst.toFixed(2)}× the tolerance`);
      if (threads === 1) oneThread.set(`${simd} ${i}`, bits(got));
      else check(bits(got).join(';') === oneThread.get(`${simd} ${i}`).join(';'), `${what}: 2 threads differ from 1 thread`);
    }
    for (const bad of badInputs) {
      let error;
      try { bad(engine); } catch (err) { error = err; }
      check(error instanceof TypeError || error instanceof RangeError, `${label}: ${bad} ${error ? `threw ${error}` : 'did not throw'}`);
    }
    engine.dispose();
  }
}

console.log(`qkv on ${runtime}: ${cases.length} cases of ${names.length} ops and ${badInputs.length} bad inputs, on the simd and relaxed builds, 1 and 2 threads`);
for (const failure of failures.slice(0, 20)) console.log(`FAIL ${failure}`);
if (failures.length > 20) console.log(`… and ${failures.length - 20} more`);
console.log(`${passed} passed, ${failures.length} failed`);
if (failures.length) process.exit(1);
