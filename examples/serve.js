// Serving a small decoder to several users at once with continuous batching: `node examples/serve.js`.
//
// A 4-layer random-weight decoder (Qwen-like shapes, scaled down: E = 256, 8 query heads sharing 2
// key/value heads of 32, rotary) serves "requests" of different prompt lengths. Every step runs ONE
// forward for all active requests: some prefilling their prompt, most decoding one token. Requests
// join and finish mid-stream, and two of them fork a shared system prompt instead of recomputing it.
// The keys and values of every request live in one paged KV pool per layer.
//
// What qkv does: the attention block of each layer (projections, rotary, grouped-query attention over
// the pool, output projection), as one call per layer per step. What a model adds, kept short below:
// embeddings, RMSNorm, the MLP, the LM head and sampling.
import { createEngine, tensor } from 'qkv';

const E = 256, Hq = 8, Hkv = 2, D = 32, LAYERS = 4, VOCAB = 512, FFN = 512;
const engine = await createEngine({ threads: Number(process.env.THREADS ?? 1) });

// ---- random weights (a real model loads them) ----
let seed = 1;
const rand = () => { seed = (seed * 1664525 + 1013904223) >>> 0; return seed / 2 ** 32 - 0.5; };
const weight = (rows, cols) => tensor(Float32Array.from({ length: rows * cols }, () => rand() * 2 / Math.sqrt(cols)), [rows, cols]);
const embedding = weight(VOCAB, E);
const layers = Array.from({ length: LAYERS }, () => ({
  attention: engine.createGroupedQueryAttention({
    numHeads: Hq, numKvHeads: Hkv, headDim: D, rotary: { base: 10000 },
    qProjWeight: weight(Hq * D, E), kProjWeight: weight(Hkv * D, E), vProjWeight: weight(Hkv * D, E), oProjWeight: weight(E, Hq * D),
  }),
  pool: engine.createKVPool({ kvHeads: Hkv, headDim: D, blocks: 256, blockSize: 16 }),
  up: weight(FFN, E), down: weight(E, FFN),
}));

// ---- the parts of a decoder that are not attention ----
function rmsNorm(x) {
  const out = new Float32Array(x.data.length);
  for (let r = 0; r < x.shape[0]; r++) {
    let s = 0;
    for (let c = 0; c < E; c++) s += x.data[r * E + c] ** 2;
    const inv = 1 / Math.sqrt(s / E + 1e-6);
    for (let c = 0; c < E; c++) out[r * E + c] = x.data[r * E + c] * inv;
  }
  return tensor(out, x.shape);
}
const add = (a, b) => tensor(a.data.map((v, i) => v + b.data[i]), a.shape);
const mlp = (x, l) => engine.matmul(tensor(engine.matmul(x, l.up, { transposeB: true }).data.map((v) => Math.max(v, 0)), [x.shape[0], FFN]), l.down, { transposeB: true });
const embed = (tokens) => tensor(tokens.flatMap((t) => Array.from(embedding.data.subarray(t * E, (t + 1) * E))), [tokens.length, E]);
/** Greedy sampling from the logits of each request's last row (x [T, E] · embeddingᵀ). */
function sample(x, lastRows) {
  const logits = engine.matmul(tensor(lastRows.flatMap((r) => Array.from(x.data.subarray(r * E, (r + 1) * E))), [lastRows.length, E]), embedding, { transposeB: true });
  return lastRows.map((_, i) => {
    let best = 0;
    for (let v = 1; v < VOCAB; v++) if (logits.data[i * VOCAB + v] > logits.data[i * VOCAB + best]) best = v;
    return best;
  });
}

// ---- requests ----
/** A request: its tokens waiting to be fed, its sequences (one per layer), and how many tokens it still wants. */
const newRequest = (name, prompt, wanted, from) => ({
  name, pending: prompt, wanted, out: [],
  seqs: from ? from.seqs.map((s) => s.fork()) : layers.map((l) => l.pool.sequence()),
});
const system = newRequest('system prompt', Array.from({ length: 48 }, (_, i) => (i * 7) % VOCAB), 0);
const arrivals = [ // [step, name, prompt length, tokens wanted, forks the system prompt?]
  [0, 'alice', 12, 24, false], [0, 'bob', 40, 16, true], [2, 'carol', 5, 30, false],
  [5, 'dave', 64, 12, false], [9, 'erin', 9, 20, true], [14, 'frank', 3, 18, false],
];

let active = [system], step = 0, tokens = 0, prefilled = false;
const t0 = performance.now();
while (active.length > 0 || arrivals.length > 0) {
  // the system prompt is prefilled first; requests that fork it share its blocks
  if (prefilled) {
    while (arrivals.length > 0 && arrivals[0][0] <= step) {
      const [, name, n, wanted, forks] = arrivals.shift();
      const prompt = Array.from({ length: n }, (_, i) => (i * 13 + name.length) % VOCAB);
      active.push(newRequest(name, prompt, wanted, forks ? system : null));
      console.log(`step ${step}: ${name} joins (prompt ${n}${forks ? ' after the shared system prompt' : ''}, wants ${wanted})`);
    }
  }
  // one forward for every active request: its pending tokens (a prompt, or the last sampled token)
  const queryLens = active.map((r) => r.pending.length);
  let x = embed(active.flatMap((r) => r.pending));
  layers.forEach((l, i) => {
    const { output } = l.attention.forward(rmsNorm(x), { sequences: active.map((r) => r.seqs[i]), queryLens });
    x = add(x, output);
    x = add(x, mlp(rmsNorm(x), l));
  });
  tokens += x.shape[0];
  const lastRows = queryLens.map((_, i) => queryLens.slice(0, i + 1).reduce((a, b) => a + b) - 1);
  const next = sample(rmsNorm(x), lastRows);
  active.forEach((r, i) => { r.pending = [next[i]]; if (r !== system) r.out.push(next[i]); });
  if (!prefilled) { prefilled = true; active = []; } // the system prompt stays as the fork source
  // requests that have their tokens finish and give their blocks back
  active = active.filter((r) => {
    if (r.out.length < r.wanted) return true;
    r.seqs.forEach((s) => s.free());
    console.log(`step ${step}: ${r.name} done: ${r.out.slice(0, 8).join(' ')} … (${r.out.length} tokens); free blocks ${layers[0].pool.freeBlocks}/256`);
    return false;
  });
  step++;
}
const seconds = (performance.now() - t0) / 1000;
console.log(`${step} steps, ${tokens} tokens through ${LAYERS} layers in ${seconds.toFixed(2)} s: ${(tokens / seconds).toFixed(0)} tokens/s (${engine.info.threads} thread${engine.info.threads > 1 ? 's' : ''}, ${engine.info.simd} build)`);
system.seqs.forEach((s) => s.free());
console.log(`all requests done; free blocks ${layers[0].pool.freeBlocks}/256`);
engine.dispose();
