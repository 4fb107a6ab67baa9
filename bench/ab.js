// Before and after in one process: `node bench/ab.js DIR [--filter REGEX] [--runs N] [--cpu]` times this
// checkout's engine against the qkv build in DIR (a copy of another checkout's package.json, dist/
// and build/, with node_modules/@assemblyscript linked), case by case from lib/cases.js, the two calls
// interleaved so that a busy machine disturbs both alike. Softmax also runs from an engine tensor
// into one (options.out), and matmul, attention and kernel regression from engine tensors into one.
// DIR's package is loaded through its entry (its package.json's exports '.'), as an app would load it.
// One benchmark at a time (bench/README.md).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createEngine } from 'qkv';
import { flag, now, value } from './lib/args.js';
import { benchCases, random } from './lib/cases.js';

const dir = process.argv[2];
if (!dir || dir.startsWith('--')) throw new Error('usage: node bench/ab.js DIR [--filter REGEX] [--runs N]');
const filter = value('--filter') ? new RegExp(value('--filter')) : null;
const RUNS = Number(value('--runs') ?? 15);
const { exports } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
const base = await import(pathToFileURL(join(dir, exports['.'].default)).href);
const engines = { before: await base.createEngine(), after: await createEngine() };
let sink = 0;

/** `--cpu`: time by this process's CPU time (lib/args.js, `now`). */
const cpu = flag('--cpu');

/** Median and min ms of each function, called in turn RUNS times after 3 warm-up rounds. */
function interleaved(fs) {
  const ts = fs.map(() => []);
  for (let i = 0; i < RUNS + 3; i++) {
    fs.forEach((f, j) => {
      const t0 = now();
      sink += f()[0] ?? 0;
      if (i >= 3) ts[j].push(now() - t0);
    });
  }
  return ts.map((t) => { t.sort((a, b) => a - b); return { median: t[t.length >> 1], min: t[0] }; });
}

/** Softmax from an engine tensor into one, per engine. */
function engineTensorCase(rows, n) {
  return {
    op: 'softmax engine tensors', shape: `[${rows}, ${n}]`,
    setup: (e) => {
      const x = e.tensor([rows, n]), out = e.tensor([rows, n]);
      x.data.set(random([rows, n], 3).data);
      return () => e.softmax(x, { out }).data;
    },
  };
}

/** A bench case with its inputs and its output as engine tensors (options.out), per engine. */
function residentCase(c, call) {
  return {
    op: `${c.op} engine tensors`, shape: c.shape, inputs: c.inputs,
    setup: (e, inputs) => {
      const held = Object.fromEntries(Object.entries(inputs).map(([name, t]) => {
        const r = e.tensor(t.shape);
        r.data.set(t.data);
        return [name, r];
      }));
      const out = e.tensor(c.qkv(e, inputs).shape);
      return () => call(e, held, out).data;
    },
  };
}

const cases = [
  ...benchCases().map((c) => ({ op: c.op, shape: c.shape, setup: (e, inputs) => () => c.qkv(e, inputs).data, inputs: c.inputs, release: c.release })),
  engineTensorCase(8192, 1024), engineTensorCase(65536, 128),
  ...benchCases().filter((c) => c.op === 'matmul' && !c.normalShape).map((c) => residentCase(c, (e, { a, b }, out) => e.matmul(a, b, { out }))),
  ...benchCases().filter((c) => (c.op === 'attention' || c.op === 'grouped-query decode') && !c.normalShape)
    .map((c) => residentCase(c, (e, { q, k, v }, out) => e.scaledDotProductAttention(q, k, v, { causal: c.params.causal, out }).output)),
  ...benchCases().filter((c) => c.op === 'kernel regression').map((c) => residentCase(c, (e, { q, k, v }, out) => e.kernelRegression(q, k, v, { out }).output)),
].filter((c) => !filter || filter.test(`${c.op} ${c.shape}`));
console.log(`before: ${dir}; after: this checkout; median (min) ms${cpu ? ' of CPU time' : ''} of ${RUNS} interleaved calls`);
for (const c of cases) {
  const inputs = c.inputs?.();
  const [before, after] = interleaved([c.setup(engines.before, inputs), c.setup(engines.after, inputs)]);
  const f = (r) => `${r.median.toFixed(2)} (${r.min.toFixed(2)})`;
  console.log(`  ${`${c.op} ${c.shape}`.padEnd(52)} before ${f(before).padStart(16)}  after ${f(after).padStart(16)}  ${(before.median / after.median).toFixed(2)}x`);
  for (const e of Object.values(engines)) c.release?.(e, inputs);
}
engines.before.dispose();
engines.after.dispose();
if (Number.isNaN(sink)) console.log('(a result was NaN)');
