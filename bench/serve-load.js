// The server under load: `node bench/serve-load.js [--model small|Qwen2.5-0.5B|SmolLM2-135M]
// [--clients 1,4,16,64] [--requests 2] [--prompt 64] [--tokens 32] [--weights float32] [--threads 1]
// [--max-batch-tokens 512] [--bin bin/qkv.js] [--port 0] [--json run.json] [--chart run.svg]`
// or, without running anything, `node bench/serve-load.js --from run.json --chart run.svg`
//
// Starts `qkv serve` (bin/qkv.js, so the built package: npm run build first) on 127.0.0.1 in a child
// process with a random-weight checkpoint (bench/lib/randomCheckpoint.js, written once into the
// system's temp folder), then for each N in --clients runs N concurrent streaming clients, each sending
// --requests requests one after the other (prompts of --prompt token ids, different per client,
// --tokens tokens each with ignore_eos). Reported per N: aggregate tokens/s (tokens received / wall
// time, prompts included), decode tokens/s (with --requests 1: tokens received while every stream
// was decoding, over that time), time to first token p50/p99, inter-token latency p50/p99 (gaps between a stream's chunks),
// and the server's step count and p50 step time from /metrics. Clients run in this process (fetch);
// the server has its own, so its event loop is not shared with them.
// `--model small` (default) is a 4-layer Llama of hidden 256 over a 4,096-token vocabulary, quick on 2
// cores; the real shapes are the issue's.
// `--json FILE` writes the run's settings and its rows, `{ settings, rows }` (a figure that was not
// measured is null); `--chart FILE` draws them as an SVG (bench/lib/chart.js), and with `--from FILE`
// draws a saved --json file instead of running.
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { value } from './lib/args.js';
import { serveLoadChart } from './lib/chart.js';
import { SHAPES, writeRandomCheckpointOnce } from './lib/randomCheckpoint.js';
import { sseEvents, startServer } from './lib/serveProcess.js';

const SMALL = {
  architectures: ['LlamaForCausalLM'], hidden_size: 256, intermediate_size: 688, num_hidden_layers: 4,
  num_attention_heads: 8, num_key_value_heads: 2, vocab_size: 4096, max_position_embeddings: 4096,
  rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: true, hidden_act: 'silu', bos_token_id: 1, eos_token_id: 2,
};
const from = value('--from'), chartFile = value('--chart'), jsonFile = value('--json');
if (from) {
  if (!chartFile) throw new Error('--from redraws a saved run: give --chart FILE.svg');
  writeFileSync(chartFile, serveLoadChart(JSON.parse(readFileSync(from, 'utf8'))));
  console.log(`wrote ${chartFile} from ${from}`);
  process.exit(0);
}

const model = value('--model') ?? 'small';
const config = model === 'small' ? SMALL : SHAPES[model];
if (!config) throw new Error(`--model must be small or one of ${Object.keys(SHAPES).join(', ')}`);
const clientCounts = (value('--clients') ?? '1,4,16,64').split(',').map(Number);
const REQUESTS = Number(value('--requests') ?? 2), PROMPT = Number(value('--prompt') ?? 64), TOKENS = Number(value('--tokens') ?? 32);
const weights = value('--weights') ?? 'float32', threads = value('--threads') ?? '1', maxBatchTokens = value('--max-batch-tokens') ?? '512';
const bin = value('--bin') ?? new URL('../bin/qkv.js', import.meta.url).pathname;

const dir = join(tmpdir(), `qkv-bench-serve-${model}`);
writeRandomCheckpointOnce(dir, config);

// ---- the server, in its own process ----
const serverArgs = [bin, 'serve', dir, '--port', value('--port') ?? '0', '--weights', weights, '--threads', threads,
  '--max-batch-tokens', maxBatchTokens, '--max-sequences', String(Math.max(64, ...clientCounts)), '--max-waiting', '4096', '--max-tokens', String(Math.min(config.max_position_embeddings * 4, 32768))];
const { child, base } = await startServer(serverArgs);

const quantile = (xs, q) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const stepStats = async () => {
  const text = await (await fetch(`${base}/metrics`)).text();
  const count = Number(/^qkv_step_seconds_count (\S+)$/m.exec(text)[1]);
  const buckets = [...text.matchAll(/^qkv_step_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)].map((m) => [Number(m[1]), Number(m[2])]);
  return { count, buckets };
};

/** One streaming request; the times of its chunks (ms after it was sent) and when it was sent. */
async function stream(prompt) {
  const t0 = performance.now();
  const res = await fetch(`${base}/v1/completions`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ prompt, max_tokens: TOKENS, temperature: 0, ignore_eos: true, stream: true }),
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const times = [];
  let tokens = 0;
  for await (const event of sseEvents(res.body)) {
    if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
    const n = JSON.parse(event.slice(6)).choices?.[0]?.token_ids?.length ?? 0;
    if (n > 0) {
      tokens += n;
      times.push(performance.now() - t0);
    }
  }
  return { tokens, times, sent: t0 };
}

/** Tokens each stream must get while all decode for decodeRate to give a rate. */
const MIN_WINDOW_TOKENS = 8;

/**
 * Decode tokens/s of all streams together: the chunks received while every stream of the run was
 * decoding (after the last first token, before the first last token), over that window's length;
 * prompts being fed and streams finishing are outside it. NaN when the streams never all decoded at
 * once for MIN_WINDOW_TOKENS tokens each.
 */
function decodeRate(all) {
  const absolute = all.map((r) => r.times.map((t) => r.sent + t));
  const from = Math.max(...absolute.map((ts) => ts[0])), to = Math.min(...absolute.map((ts) => ts[ts.length - 1]));
  if (!(to > from)) return NaN;
  const inside = absolute.reduce((n, ts) => n + ts.filter((t) => t > from && t <= to).length, 0);
  // a window of a few steps (short requests: the first streams end as the last ones start) measures nothing
  if (inside < MIN_WINDOW_TOKENS * all.length) return NaN;
  return inside / ((to - from) / 1000);
}

let seed = 1;
const promptOf = () => Array.from({ length: PROMPT }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) % (config.vocab_size - 3)) + 3);

// warm-up: the first forward of every shape runs before V8 has optimized it
await stream(promptOf());
await Promise.all(Array.from({ length: 4 }, () => stream(promptOf())));

// what --json and --chart record of the run beside its rows
const settings = {
  model, layers: config.num_hidden_layers, hidden: config.hidden_size, vocab: config.vocab_size, weights,
  threads: Number(threads) || threads, prompt: PROMPT, tokens: TOKENS, requests: REQUESTS, maxBatchTokens: Number(maxBatchTokens),
  cpu: cpus()[0]?.model ?? 'cpu', cores: cpus().length, node: process.version, date: new Date().toISOString().slice(0, 10),
};
console.log(`# qkv serve under load: ${model} (${config.num_hidden_layers} layers, hidden ${config.hidden_size}, vocab ${config.vocab_size}), ${weights}, ${threads} thread(s)`);
console.log(`# ${settings.cpu} x${settings.cores}, Node ${process.version}; prompts of ${PROMPT} tokens, ${TOKENS} tokens each, ${REQUESTS} request(s) per client, greedy`);
console.log('| clients | tokens/s | decode tokens/s | TTFT p50 (ms) | TTFT p99 (ms) | inter-token p50 (ms) | inter-token p99 (ms) | steps | step p50 (ms) |');
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
const rows = [];
for (const N of clientCounts) {
  const before = await stepStats();
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: N }, async () => {
    const mine = [];
    for (let r = 0; r < REQUESTS; r++) mine.push(await stream(promptOf()));
    return mine;
  }));
  const seconds = (performance.now() - t0) / 1000;
  const after = await stepStats();
  const all = results.flat();
  const tokens = all.reduce((n, r) => n + r.tokens, 0);
  const ttft = all.map((r) => r.times[0]);
  const gaps = all.flatMap((r) => r.times.slice(1).map((t, i) => t - r.times[i]));
  const steps = after.count - before.count;
  // the step-time bucket holding the median step of this run
  let stepP50 = NaN;
  for (let i = 0; i < after.buckets.length; i++) {
    if (after.buckets[i][1] - before.buckets[i][1] >= steps / 2) {
      stepP50 = after.buckets[i][0] * 1000;
      break;
    }
  }
  const decoding = REQUESTS === 1 ? decodeRate(all) : NaN; // with one request a client, every stream decodes at once
  const row = {
    clients: N, tokensPerSecond: tokens / seconds, decodeTokensPerSecond: decoding, ttftP50Ms: quantile(ttft, 0.5), ttftP99Ms: quantile(ttft, 0.99),
    interTokenP50Ms: quantile(gaps, 0.5), interTokenP99Ms: quantile(gaps, 0.99), steps, stepP50AtMostMs: stepP50, // the /metrics bucket's upper bound
  };
  console.log(`| ${N} | ${row.tokensPerSecond.toFixed(1)} | ${decoding.toFixed(1)} | ${row.ttftP50Ms.toFixed(1)} | ${row.ttftP99Ms.toFixed(1)} | ${row.interTokenP50Ms.toFixed(1)} | ${row.interTokenP99Ms.toFixed(1)} | ${steps} | <= ${stepP50} |`);
  // NaN (not measured: decode tokens/s over more than one request a client, no gap in one-token streams) is null
  rows.push(Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Number.isFinite(v) ? Number(v.toFixed(3)) : null])));
}

child.kill('SIGTERM');
await new Promise((resolve) => child.on('exit', resolve));

// after the server is gone, so that an error here leaves no server running
if (jsonFile) {
  writeFileSync(jsonFile, `${JSON.stringify({ settings, rows }, null, 2)}\n`);
  console.log(`wrote ${jsonFile}`);
}
if (chartFile) {
  writeFileSync(chartFile, serveLoadChart({ settings, rows }));
  console.log(`wrote ${chartFile}`);
}
