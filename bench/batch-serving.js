// Serving many sequences at once (`node bench/batch-serving.js [--batch-only | --prompt-only | --long-only]`, after `npm run build`):
// continuous batching over qkv's paged KV pool against onnxruntime-web's GroupQueryAttention, the only
// web engine with a serving attention op. One decode step for 16 sequences whose past lengths are
// spread over 256..2048 (Hq = 14, Hkv = 2, d = 64: Qwen2.5-0.5B's attention), rotary included:
//
//   attention    qkv batchAttention over the pool (the past read in place)  vs  ORT GroupQueryAttention
//                with past_key/past_value padded to 2048, seqlens_k and do_rotary
//   block        qkv createGroupedQueryAttention forward, E = 896            vs  ORT MatMul x3 + GQA + MatMul
//   16 at once   one 16-token forward  vs  sixteen one-token forwards (qkv)
//   threads      the attention step on 2 threads against 1, steps back to back as in a serving loop
//   next turn    one sequence's 256-token prompt after 2048 positions: qkv (the fused kernel over the
//                pool's blocks) vs ORT GroupQueryAttention with the past
//
// Every implementation runs in this process, interleaved round by round; figures are medians, and
// the ratios compare medians of the same run. The outputs of both engines are compared first.

import os from 'node:os';
import * as ort from 'onnxruntime-web';
import { createEngine, tensor } from 'qkv';
import { flag, value } from './lib/args.js';
import { random } from './lib/cases.js';
import { groupQueryAttentionModel, groupQueryBlockModel } from './lib/onnx-models.js';

const Hq = 14, Hkv = 2, D = 64, E = 896, S = 16, MAX_PAST = 2048, BLOCK = 16;
/** Steps each engine makes in a row in the thread comparison (race's `burst`). */
const THREAD_BURST = 5;
/** Past lengths spread over 256..2048. */
const pasts = Array.from({ length: S }, (_, i) => Math.round(256 + (i * (MAX_PAST - 256)) / (S - 1)));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (x) => (x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3));

/** cos/sin tables of RoPE base 10000 for positions 0..n-1: what ORT's do_rotary reads, and qkv's rotary computes. */
function ropeTables(n) {
  const cos = new Float32Array(n * (D / 2)), sin = new Float32Array(n * (D / 2));
  for (let p = 0; p < n; p++) for (let i = 0; i < D / 2; i++) {
    const theta = p * 10000 ** (-2 * i / D);
    cos[p * (D / 2) + i] = Math.cos(theta); sin[p * (D / 2) + i] = Math.sin(theta);
  }
  return { cos, sin };
}

/** The past keys and values of every sequence, token-major [L, Hkv, D], and the new token's q, k, v. */
function inputs() {
  const pastK = pasts.map((L, s) => random([L, Hkv, D], 100 + s)), pastV = pasts.map((L, s) => random([L, Hkv, D], 200 + s));
  return { pastK, pastV, q: random([S, Hq, D], 1), k: random([S, Hkv, D], 2), v: random([S, Hkv, D], 3), x: random([S, E], 4) };
}

/** A qkv pool holding every sequence's past; step() runs one batch call and truncates back, so each round sees the same state. */
function qkvAttention(engine, data) {
  const pool = engine.createKVPool({ kvHeads: Hkv, headDim: D, blocks: pasts.reduce((n, L) => n + Math.ceil((L + 1) / BLOCK) + 1, 0), blockSize: BLOCK });
  const seqs = pasts.map((_, s) => { const q = pool.sequence(); q.append(data.pastK[s], data.pastV[s]); return q; });
  const queryLens = seqs.map(() => 1);
  const out = engine.tensor([S, Hq, D]);
  return {
    step() {
      engine.batchAttention(data.q, data.k, data.v, { sequences: seqs, queryLens, rotary: {}, out });
      seqs.forEach((s, i) => s.truncate(pasts[i]));
      return out;
    },
    pool, seqs,
    dispose() { out.dispose(); pool.dispose(); },
  };
}

/** The first L token-major rows [L, Hkv, D] of t into out as ORT's head-major past [Hkv, rows, D], from element `at`. */
function headMajorInto(out, t, L, rows = L, at = 0) {
  for (let l = 0; l < L; l++) for (let g = 0; g < Hkv; g++) {
    out.set(t.data.subarray((l * Hkv + g) * D, (l * Hkv + g + 1) * D), at + (g * rows + l) * D);
  }
  return out;
}

/** [L, Hkv, D] token-major rows of each sequence into ORT's BNSH past [S, Hkv, MAX_PAST, D], zero padded. */
function paddedPast(rows) {
  const out = new Float32Array(S * Hkv * MAX_PAST * D);
  rows.forEach((t, s) => headMajorInto(out, t, pasts[s], MAX_PAST, s * Hkv * MAX_PAST * D));
  return out;
}

async function ortFeeds(data) {
  const { cos, sin } = ropeTables(MAX_PAST + 1);
  const f32 = (d, dims) => new ort.Tensor('float32', d, dims);
  return {
    past_key: f32(paddedPast(data.pastK), [S, Hkv, MAX_PAST, D]), past_value: f32(paddedPast(data.pastV), [S, Hkv, MAX_PAST, D]),
    seqlens_k: new ort.Tensor('int32', Int32Array.from(pasts), [S]), // total length − 1 = the past length
    total_sequence_length: new ort.Tensor('int32', Int32Array.from([MAX_PAST + 1]), []),
    cos_cache: f32(cos, [MAX_PAST + 1, D / 2]), sin_cache: f32(sin, [MAX_PAST + 1, D / 2]),
  };
}

const transpose = (t) => {
  const [r, c] = t.shape, out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = t.data[i * c + j];
  return out;
};

function maxDiff(a, b) {
  let worst = 0, scale = 0;
  for (let i = 0; i < a.length; i++) { worst = Math.max(worst, Math.abs(a[i] - b[i])); scale = Math.max(scale, Math.abs(b[i])); }
  return { worst, scale };
}

/**
 * Runs `impls` (name -> async or sync function) interleaved for `rounds` rounds; returns medians in ms.
 * With `burst` > 1 each implementation makes that many calls in a row per round, the first untimed:
 * steps back to back, as a serving loop makes them.
 */
async function race(impls, rounds, { warmup = 3, burst = 1 } = {}) {
  const times = Object.fromEntries(Object.keys(impls).map((k) => [k, []]));
  for (let r = 0; r < warmup + rounds; r++) {
    for (const [name, f] of Object.entries(impls)) {
      for (let c = 0; c < burst; c++) {
        const t0 = performance.now();
        await f();
        if (r >= warmup && (burst === 1 || c > 0)) times[name].push(performance.now() - t0);
      }
    }
  }
  return Object.fromEntries(Object.entries(times).map(([k, ts]) => [k, median(ts)]));
}

export async function batchServing({ rounds = 15, markdown = false } = {}) {
  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = 'error';
  const data = inputs();
  const engine = await createEngine(), engine2 = await createEngine({ threads: 2 });
  const lines = [];
  const say = (s) => { lines.push(s); console.log(s); };
  say(`batch serving: ${S} sequences decoding one token each, past ${pasts[0]}..${pasts[S - 1]} (mean ${Math.round(pasts.reduce((a, b) => a + b) / S)}), Hq=${Hq}, Hkv=${Hkv}, d=${D}, rotary; ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}, qkv ${engine.info.simd} build`);

  // attention alone
  const a1 = qkvAttention(engine, data), a2 = qkvAttention(engine2, data);
  const gqa = await ort.InferenceSession.create(groupQueryAttentionModel({ numHeads: Hq, kvHeads: Hkv, headSize: D }), { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  const feeds = { ...(await ortFeeds(data)), query: new ort.Tensor('float32', data.q.data, [S, 1, Hq * D]), key: new ort.Tensor('float32', data.k.data, [S, 1, Hkv * D]), value: new ort.Tensor('float32', data.v.data, [S, 1, Hkv * D]) };
  const ortOut = (await gqa.run(feeds)).output.data;
  const { worst, scale } = maxDiff(a1.step().data, ortOut);
  say(`  outputs agree: max |qkv - ort| = ${worst.toExponential(2)} (largest output ${scale.toFixed(3)})`);
  if (!(worst <= 1e-4 + 1e-4 * scale)) throw new Error('batch serving: qkv and onnxruntime-web disagree');
  // the thread comparison runs apart: a 2-thread engine's worker keeps the other core busy for a
  // moment after each call, which would slow the single-threaded calls that follow it. Its steps
  // come in bursts, as in a serving loop: alternated one by one with the 1-thread engine's, every
  // 2-thread step would find the worker asleep and pay its wake-up
  const t = await race({ qkv: () => a1.step(), ort: () => gqa.run(feeds) }, rounds);
  const t2 = await race({ qkv: () => a1.step(), 'qkv 2T': () => a2.step() }, rounds, { burst: THREAD_BURST });
  const keysRead = pasts.reduce((n, L) => n + (L + 1) * Hkv * D * 2, 0) * 4;
  say(`  attention step: qkv ${fmt(t.qkv)} ms (${(keysRead / t.qkv / 1e6).toFixed(1)} GB/s of K and V), onnxruntime-web GQA ${fmt(t.ort)} ms: qkv ${(t.ort / t.qkv).toFixed(2)}x`);
  say(`  threads: 2 threads ${fmt(t2['qkv 2T'])} ms against 1 thread ${fmt(t2.qkv)} ms: ${(t2.qkv / t2['qkv 2T']).toFixed(2)}x (steps ${THREAD_BURST} at a time, back to back)`);
  a1.dispose(); a2.dispose(); await gqa.release();

  // the whole attention block, E = 896
  const params = {
    numHeads: Hq, numKvHeads: Hkv, headDim: D, rotary: {},
    qProjWeight: random([Hq * D, E], 11), kProjWeight: random([Hkv * D, E], 12), vProjWeight: random([Hkv * D, E], 13), oProjWeight: random([E, Hq * D], 14),
  };
  for (const k of ['qProjWeight', 'kProjWeight', 'vProjWeight', 'oProjWeight']) params[k].data.forEach((x, i, a) => { a[i] = x / Math.sqrt(E); });
  const layer = engine.createGroupedQueryAttention(params);
  const block = qkvAttention(engine, data);
  const blockOut = engine.tensor([S, E]);
  const layerStep = () => {
    layer.forward(data.x, { sequences: block.seqs, queryLens: block.seqs.map(() => 1), out: blockOut });
    block.seqs.forEach((s, i) => s.truncate(pasts[i]));
  };
  const graph = await ort.InferenceSession.create(groupQueryBlockModel({
    numHeads: Hq, kvHeads: Hkv, headSize: D, embed: E,
    WqT: transpose(params.qProjWeight), WkT: transpose(params.kProjWeight), WvT: transpose(params.vProjWeight), WoT: transpose(params.oProjWeight),
  }), { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  const { query: _q, key: _k, value: _v, ...pastFeeds } = feeds;
  const blockFeeds = { ...pastFeeds, x: new ort.Tensor('float32', data.x.data, [S, 1, E]) };
  layerStep();
  const ortBlock = (await graph.run(blockFeeds)).y.data;
  const bd = maxDiff(blockOut.data, ortBlock);
  say(`  block outputs agree: max |qkv - ort| = ${bd.worst.toExponential(2)} (largest ${bd.scale.toFixed(3)})`);
  // one 16-token forward against sixteen one-token forwards of the same sequences
  const singles = data.x.shape[0];
  const one = (i) => tensor(data.x.data.subarray(i * E, (i + 1) * E), [1, E]);
  const sixteen = () => {
    for (let i = 0; i < singles; i++) layer.forward(one(i), { sequences: [block.seqs[i]], queryLens: [1] });
    block.seqs.forEach((s, i) => s.truncate(pasts[i]));
  };
  const b = await race({ qkv: layerStep, ort: () => graph.run(blockFeeds), sixteen }, rounds);
  say(`  attention block (E=${E}): qkv ${fmt(b.qkv)} ms, onnxruntime-web graph ${fmt(b.ort)} ms: qkv ${(b.ort / b.qkv).toFixed(2)}x; ${(S / b.qkv * 1000).toFixed(0)} tokens/s of this block`);
  say(`  one ${S}-token forward ${fmt(b.qkv)} ms vs ${S} one-token forwards ${fmt(b.sixteen)} ms: ${(b.sixteen / b.qkv).toFixed(2)}x`);
  layer.dispose(); blockOut.dispose(); block.dispose(); await graph.release();
  engine.dispose(); engine2.dispose();
  if (markdown) console.log(`\n${lines.map((l) => l.trim()).join('\n')}`);
  return lines;
}


/**
 * A chat's next turn: one sequence holding a past of `past` positions takes a prompt of `prompt` new
 * tokens in one call (Hq = 14, Hkv = 2, d = 64, rotary, causal). qkv's batchAttention runs it on the
 * fused kernel over the pool's blocks (blocks of 16, interleaved with another sequence's, as
 * continuous batching leaves them); onnxruntime-web's GroupQueryAttention takes the past as
 * past_key/past_value [1, Hkv, past, D] and returns the present.
 */
export async function promptAfterPast({ past = MAX_PAST, prompt = 256, rounds = 15 } = {}) {
  const engine = await createEngine();
  const pool = engine.createKVPool({ kvHeads: Hkv, headDim: D, blocks: 2 * Math.ceil((past + prompt) / BLOCK) + 2, blockSize: BLOCK });
  const seq = pool.sequence(), other = pool.sequence();
  const pastK = random([past, Hkv, D], 300), pastV = random([past, Hkv, D], 301);
  for (let at = 0; at < past; at += BLOCK) {
    const rows = (t) => tensor(t.data.subarray(at * Hkv * D, Math.min(past, at + BLOCK) * Hkv * D), [Math.min(BLOCK, past - at), Hkv, D]);
    seq.append(rows(pastK), rows(pastV));
    other.append(rows(pastK), rows(pastV));
  }
  const q = random([prompt, Hq, D], 302), k = random([prompt, Hkv, D], 303), v = random([prompt, Hkv, D], 304);
  const out = engine.tensor([prompt, Hq, D]);
  const qkvStep = () => { engine.batchAttention(q, k, v, { sequences: [seq], queryLens: [prompt], rotary: {}, out }); seq.truncate(past); };
  const headMajor = (t) => headMajorInto(new Float32Array(Hkv * past * D), t, past);
  const { cos, sin } = ropeTables(past + prompt);
  const f32 = (d, dims) => new ort.Tensor('float32', d, dims);
  const feeds = {
    query: f32(q.data, [1, prompt, Hq * D]), key: f32(k.data, [1, prompt, Hkv * D]), value: f32(v.data, [1, prompt, Hkv * D]),
    past_key: f32(headMajor(pastK), [1, Hkv, past, D]), past_value: f32(headMajor(pastV), [1, Hkv, past, D]),
    seqlens_k: new ort.Tensor('int32', Int32Array.from([past + prompt - 1]), [1]),
    total_sequence_length: new ort.Tensor('int32', Int32Array.from([past + prompt]), []),
    cos_cache: f32(cos, [past + prompt, D / 2]), sin_cache: f32(sin, [past + prompt, D / 2]),
  };
  const gqa = await ort.InferenceSession.create(groupQueryAttentionModel({ numHeads: Hq, kvHeads: Hkv, headSize: D }), { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  qkvStep();
  const { worst, scale } = maxDiff(out.data, (await gqa.run(feeds)).output.data);
  if (!(worst <= 1e-4 + 1e-4 * scale)) throw new Error(`prompt after past: qkv and onnxruntime-web disagree (${worst})`);
  const t = await race({ qkv: qkvStep, ort: () => gqa.run(feeds) }, rounds);
  const flops = 4 * Hq * D * prompt * (past + (prompt + 1) / 2);
  console.log(`a chat's next turn: ${prompt} new tokens after ${past} positions, Hq=${Hq}, Hkv=${Hkv}, d=${D}, rotary, causal (outputs agree to ${worst.toExponential(1)})`);
  console.log(`  qkv ${fmt(t.qkv)} ms (${(flops / t.qkv / 1e6).toFixed(1)} GFLOP/s), onnxruntime-web GQA ${fmt(t.ort)} ms: qkv ${(t.ort / t.qkv).toFixed(2)}x`);
  out.dispose(); pool.dispose(); engine.dispose(); await gqa.release();
}

/**
 * A decode step over a long context for each storage format: one sequence of `positions` positions,
 * 8 query heads over 8 kv heads of 64 (no rotary), float32 vs float16 vs int8 pools, interleaved.
 * Reports the step time, bytes per position (keys and values, all heads) and the pool's memory.
 */
export async function longContext({ positions = 32768, rounds = 11 } = {}) {
  const engine = await createEngine();
  const H = 8, d = 64, bs = 16, chunk = 2048;
  const blocks = Math.ceil((positions + 1) / bs) + 1;
  const setups = {};
  for (const dtype of ['float32', 'float16', 'int8']) {
    const before = engine.info.memoryBytes;
    const pool = engine.createKVPool({ kvHeads: H, headDim: d, blocks, blockSize: bs, dtype });
    const grown = engine.info.memoryBytes - before;
    const s = pool.sequence();
    for (let at = 0; at < positions; at += chunk) {
      const n = Math.min(chunk, positions - at);
      s.append(random([n, H, d], at + 1), random([n, H, d], at + 2));
    }
    setups[dtype] = { pool, s, grown };
  }
  const q = random([1, H, d], 5), k = random([1, H, d], 6), v = random([1, H, d], 7);
  const step = (dtype) => () => { const { s } = setups[dtype]; engine.batchAttention(q, k, v, { sequences: [s], queryLens: [1] }); s.truncate(positions); };
  const outs = Object.fromEntries(Object.keys(setups).map((dt) => { const { s } = setups[dt]; const o = engine.batchAttention(q, k, v, { sequences: [s], queryLens: [1] }).output; s.truncate(positions); return [dt, o]; }));
  const largest = Math.max(...Array.from(outs.float32.data, Math.abs));
  const t = await race(Object.fromEntries(Object.keys(setups).map((dt) => [dt, step(dt)])), rounds);
  const bytesPer = { float32: 2 * H * d * 4, float16: 2 * H * d * 2, int8: 2 * H * (d + 4) };
  console.log(`long context: one sequence of ${positions} positions, ${H} heads of ${d}, decode step`);
  for (const dt of Object.keys(setups)) {
    const { worst } = maxDiff(outs[dt].data, outs.float32.data);
    console.log(`  ${dt.padEnd(8)} ${fmt(t[dt])} ms (${(t.float32 / t[dt]).toFixed(2)}x float32), ${bytesPer[dt]} bytes/position, pool ${(setups[dt].grown / 2 ** 20).toFixed(1)} MiB (${(setups[dt].grown / setups.float32.grown).toFixed(2)}x), max |out - float32| ${(worst / largest).toExponential(1)} of the largest`);
  }
  Object.values(setups).forEach(({ pool }) => pool.dispose());
  engine.dispose();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rounds = Number(value('--rounds') ?? 15);
  if (!flag('--long-only') && !flag('--prompt-only')) await batchServing({ rounds, markdown: flag('--markdown') });
  if (!flag('--long-only') && !flag('--batch-only')) await promptAfterPast({ rounds });
  if (!flag('--batch-only') && !flag('--prompt-only')) await longContext({ rounds });
}
