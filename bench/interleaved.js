// qkv against the peers with calls interleaved: `node bench/interleaved.js [--filter REGEX] [--runs N] [--cpu]`
// (after `npm run build`; one benchmark at a time, bench/README.md). run.js times one implementation after another, so
// a machine whose load changes during the run (a shared one) moves its ratios; here each round
// calls every implementation once, in turn, on the same inputs, and the ratios are of medians over
// the rounds. Same cases and peers as run.js, one thread.
import { createEngine } from 'qkv';
import { flag, now, value } from './lib/args.js';
import { benchCases } from './lib/cases.js';
import { loadPeers } from './lib/peers/index.js';

const filter = value('--filter') ? new RegExp(value('--filter')) : /^softmax/;
const RUNS = Number(value('--runs') ?? 15);
/** `--cpu`: time by the process's CPU time (lib/args.js, `now`). */
const cpu = flag('--cpu');
const engine = await createEngine();
const peers = await loadPeers(value('--peers') ?? 'all');
for (const peer of peers) console.log(`peer: ${await peer.init({ threads: 1 })}`);
console.log(`median (min) ms${cpu ? ' of CPU time' : ''} of ${RUNS} rounds after 3, each round calling every implementation once; vs X = X's median / qkv's`);
let sink = 0;
for (const c of benchCases().filter((c) => filter.test(`${c.op} ${c.shape}`))) {
  const inputs = c.inputs();
  const impls = [{ name: 'qkv wasm', async: false, call: () => c.qkv(engine, inputs).data, dispose: () => c.release?.(engine, inputs) }];
  for (const peer of peers.filter((p) => p.ops.includes(c.op))) impls.push({ name: peer.name, async: peer.async, ...(await peer.setup(c, inputs)) });
  const ts = impls.map(() => []);
  for (let round = 0; round < RUNS + 3; round++) {
    for (const [i, impl] of impls.entries()) {
      const t0 = now();
      sink += (impl.async ? await impl.call() : impl.call())[0] ?? 0;
      if (round >= 3) ts[i].push(now() - t0);
    }
  }
  const stats = ts.map((t) => { t.sort((a, b) => a - b); return { median: t[t.length >> 1], min: t[0] }; });
  console.log(`\n${c.op} ${c.shape}`);
  impls.forEach((impl, i) => {
    const vs = i === 0 ? impls.slice(1).map((p, j) => `vs ${p.name} ${(stats[j + 1].median / stats[0].median).toFixed(2)}x`).join(', ') : '';
    console.log(`  ${impl.name.padEnd(16)} ${stats[i].median.toFixed(2).padStart(8)} (${stats[i].min.toFixed(2)})  ${vs}`);
  });
  impls.forEach((impl) => impl.dispose());
}
for (const peer of peers) await peer.close();
engine.dispose();
if (Number.isNaN(sink)) console.log('(a result was NaN)');
