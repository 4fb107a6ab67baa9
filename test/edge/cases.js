// What the edge Worker answers (test/edge/worker.js), computed the same way by the runner
// (test/edge/run.js) on the reference engine in Node: the two are compared value by value.
// Plain JavaScript on qkv's public API, so that it runs in workerd, Vercel's edge runtime and Deno.

/** Deterministic inputs in [-1, 1): a 32-bit LCG (Numerical Recipes' constants). */
function values(n, seed) {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

/**
 * Attention on `engine` at a few shapes: a causal grouped-query scaledDotProductAttention, a prepared
 * multi-head layer over a KV cache, and one batchAttention step over a paged pool (prefill of 9 rows
 * and a decode of 1 on a fork, with rotary). Returns each output as a plain array.
 */
export function attention({ tensor }, engine) {
  const out = {};
  const q = tensor(values(1 * 4 * 7 * 16, 1), [1, 4, 7, 16]);
  const k = tensor(values(1 * 2 * 9 * 16, 2), [1, 2, 9, 16]);
  const v = tensor(values(1 * 2 * 9 * 16, 3), [1, 2, 9, 16]);
  out.sdpa = engine.scaledDotProductAttention(q, k, v, { causal: 'bottom-right' }).output.data;

  const E = 32, H = 4;
  const w = (i) => tensor(values(E * E, 10 + i), [E, E]);
  const layer = engine.createMultiHeadAttention({ numHeads: H, qProjWeight: w(0), kProjWeight: w(1), vProjWeight: w(2), outProjWeight: w(3) });
  const cache = engine.createKVCache({ batch: 1, kvHeads: H, headDim: E / H, capacity: 16 });
  const x1 = tensor(values(5 * E, 20), [1, 5, E]), x2 = tensor(values(1 * E, 21), [1, 1, E]);
  out.layerPrefill = layer.forward(x1, x1, x1, { cache }).output.data;
  out.layerDecode = layer.forward(x2, x2, x2, { cache }).output.data;
  cache.dispose();
  layer.dispose();

  const pool = engine.createKVPool({ kvHeads: 2, headDim: 16, blocks: 8, blockSize: 4 });
  const a = pool.sequence();
  const rows = (n, seed, heads) => tensor(values(n * heads * 16, seed), [n, heads, 16]);
  out.prefill = engine.batchAttention(rows(9, 30, 4), rows(9, 31, 2), rows(9, 32, 2), { sequences: [a], queryLens: [9], rotary: {} }).output.data;
  const b = a.fork();
  out.decode = engine.batchAttention(rows(2, 33, 4), rows(2, 34, 2), rows(2, 35, 2), { sequences: [a, b], queryLens: [1, 1], rotary: {} }).output.data;
  a.free();
  b.free();
  out.freeBlocks = [pool.freeBlocks];
  pool.dispose();
  return Object.fromEntries(Object.entries(out).map(([name, data]) => [name, Array.from(data)]));
}

/**
 * The qwen3 fixture (test/fixtures/decoders/qwen3) loaded from its files on `engine`: the logits of
 * the last prompt position and 8 greedy tokens after the prompt.
 */
export async function decoder({ loadDecoder }, engine, files, prompt) {
  const model = await loadDecoder({ files }, { engine, maxTokens: 64 });
  const seq = model.sequence();
  const logits = Array.from(model.forward(prompt, { sequences: [seq], queryLens: [prompt.length] }).data);
  seq.free();
  const tokens = [];
  for await (const t of model.generate(prompt, { maxNewTokens: 8, stop: [] })) tokens.push(t);
  model.dispose();
  return { logits, tokens };
}

/** The limits: a memory limit past an isolate's 128 MiB and a buffer past the engine's default limit. */
export async function limits({ createEngine }) {
  const failure = async (fn) => {
    try {
      await fn();
      return 'did not throw';
    } catch (error) {
      return `${error.name}: ${error.message}`;
    }
  };
  const engine = await createEngine();
  const result = {
    info: engine.info,
    overIsolate: await failure(() => createEngine({ maxMemoryBytes: 256 * 1024 * 1024 })),
    overLimit: await failure(() => engine.tensor([32 * 1024 * 1024])), // 128 MiB of float32
  };
  engine.dispose();
  return result;
}

/**
 * Differences between an answer and the reference engine's, as messages: attention outputs within the
 * API's tolerance (|a - b| <= 1e-4 + 1e-4·|b|), logits within 1e-3 of the row's largest |logit| (the
 * decoder tests' tolerance), everything else (tokens, block counts) equal. NaN equals NaN.
 */
export function differences(got, want, label) {
  const problems = [];
  for (const [name, expected] of Object.entries(want)) {
    const actual = got?.[name];
    if (!Array.isArray(expected)) continue;
    if (!Array.isArray(actual) || actual.length !== expected.length) {
      problems.push(`${label} ${name}: ${Array.isArray(actual) ? actual.length : typeof actual} values, the reference has ${expected.length}`);
      continue;
    }
    const exact = name === 'tokens' || name === 'freeBlocks';
    const scale = Math.max(...expected.map(Math.abs));
    let worst = 0, at = 0;
    for (let i = 0; i < expected.length; i++) {
      const a = actual[i], b = expected[i];
      if (a === b || (Number.isNaN(a) && Number.isNaN(b))) continue;
      const allowed = exact ? 0 : name === 'logits' ? 1e-3 * scale : 1e-4 + 1e-4 * Math.abs(b);
      const diff = Math.abs(a - b);
      const ratio = allowed === 0 || Number.isNaN(diff) ? Infinity : diff / allowed;
      if (ratio > worst) { worst = ratio; at = i; }
    }
    if (worst > 1) problems.push(`${label} ${name}: at ${at} got ${actual[at]}, the reference ${expected[at]}`);
  }
  return problems;
}
