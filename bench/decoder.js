// Whole decoders on qkv: `node bench/decoder.js [--model Qwen2.5-0.5B|SmolLM2-135M|all]
// [--weights float32,float16,int8,int4] [--threads 1,2] [--prompt 512] [--decode 32] [--rounds 3] [--cpu] [--load]`
//
// Random-weight checkpoints of real models' shapes (bench/lib/randomCheckpoint.js, written once into
// the system's temp folder), loaded with loadDecoder and timed in one process:
//   prefill   one forward of a `--prompt`-token prompt (tokens/s, and GFLOP/s over the model's FLOPs
//             with attention, against the float32 GEMM's GFLOP/s measured in the same run)
//   decode    one-token forwards and greedy sampling after the prompt (tokens/s)
//   parts     a decode step's time by part (linear layers, attention, norms and activations, LM head,
//             embedding lookup, sampling, and the JavaScript around them), timed by wrapping the engine
//   bytes     the weights' bytes, and the GB/s at which the linear layers read them, against a bare
//             float32 GEMV (engine-resident [N, K] times a row) over as many bytes
// Engines with 1 and 2 threads are created side by side and their steps interleaved, so their ratio
// comes from the same minutes. With `--cpu`, steps and parts are timed by the process's CPU time, which
// counts every thread's: compare threads by wall time (the default). `--load` measures loading instead: each (format, dtype) in a child
// process, its time and its peak RSS against the weights' bytes.
//
// `--peers [--engines wllama,ort]` (prompt 128, decode 64 by default): the same weights on the peers,
// one table (bench/lib/peers/decoders/): llama.cpp's wasm build (wllama) beside qkv's browser build in one
// headless Chromium page, on one GGUF file (qkv float32/int8/int4 against F32/Q8_0/Q4_0), and
// onnxruntime-web in Node on an ONNX graph laid out as transformers.js' exports (float32 against f32,
// int4 against q4: MatMulNBits), each pair's rounds interleaved; tokens/s by threads, peak memory, and
// qkv / peer. The GGUF and ONNX files are written once into the temp folder beside the checkpoint.
// `--model tiny-qwen2` or `tiny-llama` checks the harness in seconds.
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEngine, loadDecoder, sample } from 'qkv';
import { flag, now, value } from './lib/args.js';
import { PAIRS, runPeers } from './lib/peers/decoders/index.js';
import { SHAPES, writeRandomCheckpointOnce } from './lib/randomCheckpoint.js';

const PEERS = flag('--peers');
// 'all': the real models' shapes whose float32 fits a wasm32 memory (the tiny ones only check a harness;
// Qwen2.5-1.5B runs by name, with `--weights int8,int4`)
const models = (value('--model') ?? 'Qwen2.5-0.5B') === 'all' ? Object.keys(SHAPES).filter((n) => !n.startsWith('tiny') && n !== 'Qwen2.5-1.5B') : (value('--model') ?? 'Qwen2.5-0.5B').split(',');
const formats = (value('--weights') ?? (PEERS ? 'float32,float16,int8,int4' : 'float32,float16')).split(',');
const threadCounts = (value('--threads') ?? '1,2').split(',').map(Number);
const PROMPT = Number(value('--prompt') ?? (PEERS ? 128 : 512)), DECODE = Number(value('--decode') ?? (PEERS ? 64 : 32)), ROUNDS = Number(value('--rounds') ?? 3);
for (const m of models) if (!SHAPES[m]) throw new Error(`--model ${m}: use ${Object.keys(SHAPES).join(', ')} or all`);

/** The checkpoint of a shape, written once per dtype into the temp folder. */
function checkpoint(name, dtype = 'F32') {
  const dir = join(tmpdir(), 'qkv-bench-checkpoints', `${name}-${dtype}`);
  const t0 = performance.now();
  if (writeRandomCheckpointOnce(dir, SHAPES[name], { dtype })) console.error(`wrote ${dir} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return dir;
}

/**
 * An engine whose ops and linear layers add their time to `times` by part. Linear layers of the
 * vocabulary's width are the LM head; their lookups the embedding.
 */
function profiled(engine, vocab, times) {
  const timed = (part, f) => (...a) => {
    const t0 = now();
    try {
      return f(...a);
    } finally {
      times[part] = (times[part] ?? 0) + now() - t0;
    }
  };
  /** A linear layer whose forwards count as the LM head's (a layer of the vocabulary's width) or the linear layers', lookups as the embedding's. */
  const timedLayer = (layer, head) => ({
    get inFeatures() { return layer.inFeatures; }, get outFeatures() { return layer.outFeatures; },
    get dtype() { return layer.dtype; }, get bytes() { return layer.bytes; },
    forward: timed(head ? 'LM head' : 'linear layers', (x, o) => layer.forward(x, o)),
    lookup: timed('embedding', (ids, o) => layer.lookup(ids, o)),
    dispose: () => layer.dispose(),
  });
  // the engine is frozen, so a Proxy may not change its methods: a new object delegates to it
  const wrapped = {};
  for (const key of Object.keys(engine)) {
    const v = engine[key];
    if (typeof v !== 'function') {
      Object.defineProperty(wrapped, key, { get: () => engine[key], enumerable: true });
    } else if (key === 'createLinear') {
      wrapped.createLinear = (weight, options) => timedLayer(engine.createLinear(weight, options), weight.shape[0] === vocab);
    } else if (key === 'createLinearBuilder') {
      // (the loader quantizes float weights to int8/int4 through builders)
      wrapped.createLinearBuilder = (shape, options) => {
        const builder = engine.createLinearBuilder(shape, options);
        return {
          get outFeatures() { return builder.outFeatures; }, get inFeatures() { return builder.inFeatures; }, get rows() { return builder.rows; },
          append: (rows) => builder.append(rows),
          finish: () => timedLayer(builder.finish(), shape[0] === vocab),
          dispose: () => builder.dispose(),
        };
      };
    } else if (key === 'batchAttention') {
      wrapped[key] = timed('attention', v.bind(engine));
    } else if (['rmsNorm', 'add', 'gatedActivation', 'softcap'].includes(key)) {
      wrapped[key] = timed('norms, adds, activation', v.bind(engine));
    } else {
      wrapped[key] = v.bind(engine);
    }
  }
  return wrapped;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const prompt = (n, vocab) => Array.from({ length: n }, (_, i) => (i * 7919 + 13) % vocab);

/**
 * Model FLOPs of a forward of T new tokens after `past` positions: 2 per weight per token, plus
 * attention; the LM head's only for the `head` rows whose logits are asked for (1: logits 'last').
 */
function flops(config, T, past, head = 1) {
  const { hiddenSize: E, numHeads: Hq, numKvHeads: Hkv, headDim: D, intermediateSize: I, numLayers: L, vocabSize: V } = config;
  const perToken = L * (2 * E * (Hq + 2 * Hkv) * D + 2 * Hq * D * E + 2 * 3 * E * I);
  let attention = 0;
  for (let t = 0; t < T; t++) attention += L * Hq * 4 * D * (past + t + 1);
  return perToken * T + attention + 2 * E * V * head;
}

/**
 * The float32 GEMM's GFLOP/s on the prefill's biggest product: T rows times a float32 linear layer of
 * the MLP's [I, E] (the GEMM's packed panels), engine-resident, the median of 5.
 */
function gemmRate(engine, T, K, N) {
  const w = engine.tensor([N, K]), a = engine.tensor([T, K]), out = engine.tensor([T, N]);
  w.data.fill(0.02);
  a.data.fill(0.01);
  const layer = engine.createLinear(w);
  w.dispose();
  const ts = [];
  for (let i = 0; i < 6; i++) {
    const t0 = now();
    layer.forward(a, { out });
    ts.push(now() - t0);
  }
  layer.dispose();
  [a, out].forEach((t) => t.dispose());
  return (2 * T * K * N) / (median(ts.slice(1)) * 1e6);
}

/** A bare float32 GEMV's GB/s: one row times an engine-resident [N, K] (transposed), over `bytes` of weights. */
function gemvRate(engine, K, bytes) {
  const N = Math.round(bytes / 4 / K / 16) * 16;
  const x = engine.tensor([1, K]), w = engine.tensor([N, K]), out = engine.tensor([1, N]);
  x.data.fill(0.01);
  w.data.fill(0.02);
  const ts = [];
  for (let i = 0; i < 7; i++) {
    const t0 = now();
    engine.matmul(x, w, { transposeB: true, out });
    ts.push(now() - t0);
  }
  [x, w, out].forEach((t) => t.dispose());
  return (N * K * 4) / (median(ts.slice(2)) * 1e6);
}

function benchModel(name) {
  const dir = checkpoint(name);
  return (async () => {
    const runs = [];
    for (const weights of formats) {
      const engines = [];
      for (const threads of threadCounts) {
        const engine = await createEngine({ threads });
        const times = {};
        const t0 = performance.now();
        const decoder = await loadDecoder(dir, { engine: profiled(engine, SHAPES[name].vocab_size, times), weights, maxTokens: PROMPT + DECODE + 64 });
        engines.push({ threads, engine, decoder, times, load: performance.now() - t0, prefill: [], decode: [], parts: [] });
      }
      const { config } = engines[0].decoder;
      const tokens = prompt(PROMPT, config.vocabSize);
      for (let r = 0; r < ROUNDS + 1; r++) {
        for (const e of engines) {
          const seq = e.decoder.sequence();
          let t0 = now();
          let logits = e.decoder.forward(tokens, { sequences: [seq], queryLens: [PROMPT] });
          if (r > 0) e.prefill.push(now() - t0);
          // decode: steps timed one by one, the parts of each step from the profiling engine
          for (let i = 0; i < DECODE; i++) {
            for (const k of Object.keys(e.times)) e.times[k] = 0;
            t0 = now();
            const s0 = now();
            const token = sample(logits)[0];
            const sampling = now() - s0;
            logits = e.decoder.forward([token], { sequences: [seq], queryLens: [1] });
            const step = now() - t0;
            if (r > 0) {
              e.decode.push(step);
              e.parts.push({ ...e.times, sampling, step });
            }
          }
          seq.free();
        }
      }
      const gemm = gemmRate(engines[0].engine, PROMPT, config.hiddenSize, config.intermediateSize);
      for (const e of engines) {
        const step = median(e.decode);
        const part = (k) => median(e.parts.map((p) => p[k] ?? 0));
        const linear = part('linear layers') + part('LM head');
        const weightBytes = weightBytesOf(e.decoder, weights);
        const gemv = gemvRate(e.engine, config.hiddenSize, Math.min(weightBytes, 512 * 2 ** 20));
        const prefillMs = median(e.prefill);
        runs.push({
          model: name, weights, threads: e.threads, load: e.load,
          prefillTokS: PROMPT / (prefillMs / 1000),
          prefillGflops: flops(config, PROMPT, 0) / (prefillMs * 1e6), gemmGflops: gemm,
          decodeTokS: 1000 / step, stepMs: step, linearMs: linear,
          parts: Object.fromEntries(['linear layers', 'LM head', 'attention', 'norms, adds, activation', 'embedding', 'sampling'].map((k) => [k, part(k)])),
          weightBytes, linearGBs: weightBytes / (linear * 1e6), gemvGBs: gemv, bytes: e.decoder.bytes,
        });
        e.decoder.dispose();
        e.engine.dispose();
      }
    }
    return runs;
  })();
}

/** Bytes of the weights one decode step reads: every linear layer's stored weight (the embedding's rows aside). */
function weightBytesOf(decoder, weights) {
  return weightBytesOfConfig(decoder.config, weights);
}

function weightBytesOfConfig(c, weights) {
  // bytes a weight: int8 and int4 keep one float32 scale a group of 32 (createLinear's default)
  const per = { float32: 4, float16: 2, int8: 1 + 4 / 32, int4: 0.5 + 4 / 32 }[weights];
  const { hiddenSize: E, numHeads: Hq, numKvHeads: Hkv, headDim: D, intermediateSize: I, numLayers: L, vocabSize: V } = c;
  return per * (L * (E * (Hq + 2 * Hkv) * D + Hq * D * E + 3 * E * I) + V * E);
}

/** qkv's config names from a config.json's (for weightBytesOfConfig without loading the model). */
const sizes = (c) => ({
  hiddenSize: c.hidden_size, numHeads: c.num_attention_heads, numKvHeads: c.num_key_value_heads ?? c.num_attention_heads,
  headDim: c.head_dim ?? c.hidden_size / c.num_attention_heads, intermediateSize: c.intermediate_size, numLayers: c.num_hidden_layers, vocabSize: c.vocab_size,
});

const bytesText = (b) => (b === undefined ? '' : b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : `${(b / 1e6).toFixed(1)} MB`);
const sig = (x) => (x === undefined || !Number.isFinite(x) ? '' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

/** `--peers`: the table of qkv and its peers on the same weights, one row per engine and format. */
async function benchPeers() {
  const engines = (value('--engines') ?? 'wllama,ort').split(',');
  const log = (line) => console.error(line);
  const all = [];
  for (const name of models) {
    const dir = checkpoint(name);
    const config = SHAPES[name];
    const rows = await runPeers(name, dir, config, {
      formats, threads: threadCounts, prompt: PROMPT, decode: DECODE, rounds: ROUNDS, engines, log,
      weightBytes: (format) => weightBytesOfConfig(sizes(config), format),
    });
    all.push(...rows);
  }
  const versions = [...new Set(all.map((r) => r.version))].join('; ');
  console.log(`prompt ${PROMPT} tokens then ${DECODE} greedy tokens; a warm-up round, then ${ROUNDS} rounds alternating between the engines of a pair, medians; ${versions}\n`);
  const T = threadCounts;
  const per = (t) => T.map((n) => t(n)).join(' / ');
  console.log(`| model | engine | where | format | weights | prefill tok/s (${per((n) => `${n}T`)}) | decode tok/s (${per((n) => `${n}T`)}) | peak memory | qkv / peer, prefill | qkv / peer, decode | greedy tokens equal |`);
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  const key = (r) => `${r.model}|${r.env}|${r.engine}|${r.format}`;
  const groups = new Map();
  for (const r of all) {
    if (!groups.has(key(r))) groups.set(key(r), []);
    groups.get(key(r)).push(r);
  }
  for (const rs of groups.values()) {
    const r0 = rs[0];
    const at = (n) => rs.find((r) => r.threads === n);
    const qkvAt = (n) => all.find((q) => q.engine === 'qkv' && q.model === r0.model && q.env === r0.env && q.pair === r0.pair && q.threads === n);
    const peer = r0.engine !== 'qkv';
    const ratio = (field) => (peer ? per((n) => `${sig(qkvAt(n)?.[field] / at(n)?.[field])}x`) : '');
    const agree = peer ? per((n) => (at(n)?.agree === undefined ? '' : `${at(n).agree}/${DECODE + 1}`)) : '';
    console.log(`| ${r0.model} | ${r0.engine} | ${r0.env} | ${r0.format} | ${bytesText(r0.weightBytes)} | ${per((n) => sig(at(n)?.prefillTokS))} | ${per((n) => sig(at(n)?.decodeTokS))} | ${bytesText(Math.max(...rs.map((r) => r.peakBytes)))} | ${ratio('prefillTokS')} | ${ratio('decodeTokS')} | ${agree} |`);
  }
  console.log(`
- where: Chromium is one headless page holding qkv's browser build (in a module worker) and wllama; Node is
  one process a (format, threads) holding qkv and onnxruntime-web. qkv / peer compares the qkv row of the
  same place, format pair (${Object.entries(PAIRS).filter(([, p]) => p.gguf || p.onnx).map(([f, p]) => `${f}: ${[p.gguf, p.onnx].filter(Boolean).join(', ')}`).join('; ')}) and threads.
- weights: qkv's linear layers as stored (the tied embedding once); wllama the GGUF file; onnxruntime-web
  model.onnx_data (its LM head a second copy of the embedding, as transformers.js' exports keep it).
- peak memory: the most resident memory the engine's load and warm-up round added (Linux VmHWM, reset
  before; in Chromium summed over its processes), the larger of the thread counts. qkv loads first, so a
  peer's figure can only be low.
- timing: qkv and onnxruntime-web by performance.now() around the forwards; wllama by llama.cpp's server
  clock (prompt_ms; predicted_ms over ${DECODE} steps). onnxruntime-web's prefill computes logits at every
  prompt position, as transformers.js' exports do; qkv and llama.cpp compute the last.
- greedy tokens equal: how many of the ${DECODE + 1} greedy tokens of the last round the peer and qkv share
  from the start (the same weights; they part where two logits are closer than the formats' rounding).`);
}

/** `--load`: each checkpoint dtype loaded in a child process; its time and peak RSS. */
function benchLoad(name) {
  const rows = [];
  for (const dtype of ['F32', 'BF16']) {
    const dir = checkpoint(name, dtype);
    const fileBytes = statSync(join(dir, 'model.safetensors')).size;
    for (const weights of formats) {
      const script = `
        import { createEngine, loadDecoder } from 'qkv';
        const engine = await createEngine();
        const base = process.resourceUsage().maxRSS * 1024;
        const t0 = performance.now();
        const d = await loadDecoder(${JSON.stringify(dir)}, { engine, weights: ${JSON.stringify(weights)}, maxTokens: 16 });
        const ms = performance.now() - t0;
        console.log(JSON.stringify({ ms, bytes: d.bytes, peak: process.resourceUsage().maxRSS * 1024, base }));`;
      // a cold read: drop this file from the page cache first where we may (root), so the disk is read
      spawnSync('sh', ['-c', `sync; echo 1 > /proc/sys/vm/drop_caches`], { stdio: 'ignore' });
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', maxBuffer: 1 << 20 });
      if (r.status !== 0) throw new Error(r.stderr);
      const m = JSON.parse(r.stdout.trim().split('\n').pop());
      rows.push({ model: name, file: dtype, weights, fileGB: fileBytes / 1e9, seconds: m.ms / 1000, fileGBs: fileBytes / (m.ms * 1e6), engineGB: m.bytes / 1e9, peakGB: m.peak / 1e9, peakRatio: m.peak / m.bytes, addedRatio: (m.peak - m.base) / m.bytes });
    }
  }
  // the disk's own rate on the same file, cold
  const dir = checkpoint(name, 'BF16');
  spawnSync('sh', ['-c', `sync; echo 1 > /proc/sys/vm/drop_caches`], { stdio: 'ignore' });
  const t0 = performance.now();
  const bytes = spawnSync('sh', ['-c', `cat ${join(dir, 'model.safetensors')} | wc -c`], { encoding: 'utf8' }).stdout.trim();
  rows.push({ model: name, file: 'BF16 (cat)', weights: '-', fileGB: Number(bytes) / 1e9, seconds: (performance.now() - t0) / 1000, fileGBs: Number(bytes) / ((performance.now() - t0) * 1e6) });
  return rows;
}

/** GB/s at which a fresh process touches new memory for the first time (the kernel's page faults): a floor under every load's time. */
function firstTouchGBs() {
  const script = 'const b = new Uint8Array(512 * 2 ** 20); const t0 = performance.now(); b.fill(1); console.log(b.length / ((performance.now() - t0) * 1e6));';
  return Number(spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' }).stdout.trim());
}

const fixed = (x, d = 1) => (x === undefined ? '' : x.toFixed(d));
console.log(`# qkv decoders — ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.versions.node}${flag('--cpu') ? ', CPU time' : ''}`);
if (!PEERS) console.log(`prompt ${PROMPT} tokens, ${DECODE} decode steps a round, ${ROUNDS} rounds (medians); random weights of the named model's shape\n`);
if (PEERS) {
  await benchPeers();
} else if (flag('--load')) {
  console.log('| model | file | weights | file GB | load s | file GB/s | engine GB | peak RSS GB | peak / engine | peak above Node\'s own / engine |\n|---|---|---|---|---|---|---|---|---|---|');
  for (const name of models) {
    for (const r of benchLoad(name)) console.log(`| ${r.model} | ${r.file} | ${r.weights} | ${fixed(r.fileGB, 2)} | ${fixed(r.seconds, 2)} | ${fixed(r.fileGBs, 2)} | ${fixed(r.engineGB, 2)} | ${fixed(r.peakGB, 2)} | ${fixed(r.peakRatio, 2)} | ${fixed(r.addedRatio, 2)} |`);
  }
  console.log(`\nNew memory, touched for the first time by a fresh process: ${fixed(firstTouchGBs(), 2)} GB/s (512 MB).`);
} else {
  console.log('| model | weights | threads | prefill tok/s | prefill GFLOP/s (GEMM) | decode tok/s | step ms | linear ms | step / linear | linear GB/s (bare GEMV) |\n|---|---|---|---|---|---|---|---|---|---|');
  const all = [];
  for (const name of models) {
    const runs = await benchModel(name);
    all.push(...runs);
    for (const r of runs) {
      console.log(`| ${r.model} | ${r.weights} | ${r.threads} | ${fixed(r.prefillTokS)} | ${fixed(r.prefillGflops)} (${fixed(r.gemmGflops)}) | ${fixed(r.decodeTokS, 2)} | ${fixed(r.stepMs, 2)} | ${fixed(r.linearMs, 2)} | ${fixed(r.stepMs / r.linearMs, 2)} | ${fixed(r.linearGBs)} (${fixed(r.gemvGBs)}) |`);
    }
  }
  console.log('\nA decode step by part (ms, medians):\n');
  const keys = ['linear layers', 'LM head', 'attention', 'norms, adds, activation', 'embedding', 'sampling'];
  console.log(`| model | weights | threads | ${keys.join(' | ')} | JavaScript and the rest |\n|${'---|'.repeat(keys.length + 4)}`);
  for (const r of all) {
    const sum = keys.reduce((n, k) => n + r.parts[k], 0);
    console.log(`| ${r.model} | ${r.weights} | ${r.threads} | ${keys.map((k) => fixed(r.parts[k], 3)).join(' | ')} | ${fixed(r.stepMs - sum, 3)} |`);
  }
  const byThreads = (w, m) => all.filter((r) => r.weights === w && r.model === m);
  for (const m of models) {
    for (const w of formats) {
      const [one, two] = [1, 2].map((t) => byThreads(w, m).find((r) => r.threads === t));
      if (one && two) console.log(`\n${m} ${w}: 2 threads / 1 thread: prefill ${fixed(two.prefillTokS / one.prefillTokS, 2)}x, decode ${fixed(two.decodeTokS / one.decodeTokS, 2)}x`);
    }
  }
}
