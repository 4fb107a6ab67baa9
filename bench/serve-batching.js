// What batching does for time to first token and for running streams, in one process through
// createBatcher (no HTTP): `node bench/serve-batching.js [--model Qwen2.5-0.5B|SmolLM2-135M]
// [--threads 1] [--system 1000] [--streams 16] [--long 2000]`
//
//   prefix cache  a request whose prompt is a --system-token system prompt plus 32 tokens of its own,
//                 then a second one with the same system prompt: the second's time to first token,
//                 against the first's, with prefix caching on and off (a fresh batcher each).
//   long prompt   --streams streams decoding; their gaps between tokens (p50, p99) alone, then while a
//                 --long-token prompt arrives and is fed in chunks (maxBatchTokens 512).
// Random weights of the named model's shape (bench/lib/randomCheckpoint.js), float32, greedy.
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBatcher, createEngine, loadDecoder } from 'qkv';
import { value } from './lib/args.js';
import { SHAPES, writeRandomCheckpointOnce } from './lib/randomCheckpoint.js';

const model = value('--model') ?? 'Qwen2.5-0.5B';
const threads = Number(value('--threads') ?? 1);
const SYSTEM = Number(value('--system') ?? 1000), STREAMS = Number(value('--streams') ?? 16), LONG = Number(value('--long') ?? 2000);
const dir = join(tmpdir(), 'qkv-bench-checkpoints', `${model}-F32`);
writeRandomCheckpointOnce(dir, SHAPES[model]);
const engine = await createEngine({ threads });
const decoder = await loadDecoder(dir, { engine, maxTokens: Math.max(SYSTEM * 4, LONG + STREAMS * 200) + 512 });
const V = decoder.config.vocabSize;
const tokens = (n, seed) => Array.from({ length: n }, (_, i) => (i * 7919 + seed * 104729 + 13) % V);
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];

/** Time to the first token of one request on `batcher`. */
async function firstToken(batcher, prompt) {
  const t0 = performance.now();
  for await (const _ of batcher.submit(prompt, { maxNewTokens: 1, stop: [] })) break;
  return performance.now() - t0;
}

console.log(`# batching on ${model}, float32, ${threads} thread(s) — ${cpus()[0]?.model ?? ''}, Node ${process.versions.node}`);
const system = tokens(SYSTEM, 1);
for (const prefixCaching of [false, true]) {
  const batcher = createBatcher(decoder, { prefixCaching });
  const first = await firstToken(batcher, [...system, ...tokens(32, 2)]);
  const second = await firstToken(batcher, [...system, ...tokens(32, 3)]);
  console.log(`prefix caching ${prefixCaching ? 'on ' : 'off'}: first request ${first.toFixed(0)} ms to its first token, the second (same ${SYSTEM}-token system prompt) ${second.toFixed(0)} ms: ${(second / first).toFixed(2)}x`);
  await batcher.close();
}

/** Gaps between tokens of STREAMS running streams over `ms`, with `during` started after a warm-up. */
async function gaps(during) {
  const batcher = createBatcher(decoder, { maxBatchTokens: 512 });
  const all = [];
  let stop = false;
  const streams = Array.from({ length: STREAMS }, async (_, s) => {
    let last = 0, n = 0;
    for await (const _ of batcher.submit(tokens(16, 10 + s), { maxNewTokens: 100000, stop: [] })) {
      const now = performance.now();
      if (n++ > 2 && last) all.push(now - last);
      last = now;
      if (stop) break;
    }
  });
  await new Promise((r) => setTimeout(r, 100));
  while (all.length < STREAMS * 4) await new Promise((r) => setTimeout(r, 50));
  all.length = 0;
  if (during) await during(batcher);
  else while (all.length < STREAMS * 20) await new Promise((r) => setTimeout(r, 50));
  stop = true;
  await Promise.all(streams);
  await batcher.close();
  return all;
}
const alone = await gaps(null);
const withLong = await gaps(async (batcher) => { await firstToken(batcher, tokens(LONG, 99)); });
console.log(`${STREAMS} streams decoding: gaps between tokens p50 ${pct(alone, 0.5).toFixed(0)} ms, p99 ${pct(alone, 0.99).toFixed(0)} ms`);
console.log(`while a ${LONG}-token prompt is fed: p50 ${pct(withLong, 0.5).toFixed(0)} ms, p99 ${pct(withLong, 0.99).toFixed(0)} ms (${(pct(withLong, 0.99) / pct(alone, 0.5)).toFixed(2)}x the p50 without it)`);
decoder.dispose();
engine.dispose();
