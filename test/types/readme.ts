// The README's snippets as a user's TypeScript sees them: `tsc` checks this file and
// examples/readme.js (the README's usage, as JavaScript with checkJs) against the built declarations (dist/, through package.json "exports", as the package imports itself) under strict,
// once for each moduleResolution a user may have: bundler, node16 and nodenext (npm run test:types).
// The @ts-expect-error lines must fail to compile: weights is optional unless it was asked for.
import { writeFileSync } from 'node:fs';
import {type AttentionResult, 
  attentionHeatmap, createEngine, type KVCache, type MultiHeadParams, type OutputWithWeights,reference, 
  type Tensor,tensor, 
} from 'qkv';
import { createEngine as createInlineEngine } from 'qkv/inline';
import wasmUrl from 'qkv/qkv.wasm';
import relaxedWasmUrl from 'qkv/qkv-relaxed.wasm';

// ---- Usage: examples/readme.js itself is compiled too (checkJs); here the same calls, with what must not compile
const waists = tensor([56, 58], [2]);
const weights = tensor([43, 48], [2]);
const engine = await createEngine();
const q = tensor(Array.from({ length: 1 * 8 * 4 * 16 }, (_, i) => Math.sin(i)), [1, 8, 4, 16]);
const kv = tensor(Array.from({ length: 1 * 2 * 4 * 16 }, (_, i) => Math.cos(i)), [1, 2, 4, 16]);

// without returnWeights (or with a boolean that may be false) weights may be missing
const plain: AttentionResult = engine.scaledDotProductAttention(q, kv, kv, { causal: true });
// @ts-expect-error weights is optional when returnWeights is not true
plain.weights.data;
declare const maybe: boolean;
// @ts-expect-error weights is optional when returnWeights is only a boolean
engine.kernelRegression(waists, waists, weights, { returnWeights: maybe }).weights.data;
const fromBoolean: OutputWithWeights = engine.kernelRegression(waists, waists, weights, { returnWeights: maybe });
console.log(fromBoolean.weights?.shape);

// ---- Learning the kernel width
{
  let w = 1;
  for (let step = 0; step < 15; step++) {
    const { loss, dLossDw } = engine.kernelRegressionLoss(waists, waists, weights, weights, { w, leaveOneOut: true });
    w -= 2 * dLossDw;
    console.log(loss.toFixed(4));
  }
  // @ts-expect-error reduction is 'mean' or 'sum'
  engine.kernelRegressionLoss(waists, waists, weights, weights, { reduction: 'none' });
}

// ---- Pictures: attention heatmaps
const words = ['the', 'cat', 'sat'];
const x = tensor([1, 0, 0, 1, 1, 1], [1, 3, 2]);
const { weights: selfWeights } = reference.scaledDotProductAttention(x, x, x, { causal: true, returnWeights: true });
writeFileSync('heatmap.svg', attentionHeatmap(tensor(selfWeights.data, [3, 3]), { rowLabels: words, colLabels: words }));

// ---- every op that can return weights: returnWeights / needWeights true gives them
declare const params: MultiHeadParams;
declare const additive: { Wq: Tensor; Wk: Tensor; wv: Tensor };
const seq = tensor(new Float32Array(2 * 5 * 8), [2, 5, 8]);
const needed: Tensor[] = [
  engine.additiveAttention(seq, seq, seq, additive, { returnWeights: true }).weights,
  engine.multiHeadAttention(seq, seq, seq, params, { needWeights: true, averageWeights: false }).weights,
  engine.selfAttention(seq, params, { needWeights: true }).weights,
  engine.createMultiHeadAttention(params).forward(seq, seq, seq, { needWeights: true }).weights,
];
// @ts-expect-error needWeights is false by default
engine.selfAttention(seq, params).weights.data;

// ---- Serving: prepared layers, KV caches, zero-copy tensors
declare const prompt: Tensor;
declare const tokens: Tensor[];
const threaded = await createEngine({ threads: 'auto' });
const layer = threaded.createMultiHeadAttention(params);
const cache: KVCache = threaded.createKVCache({ batch: 1, kvHeads: 8, headDim: 64, capacity: 4096 });
layer.forward(prompt, prompt, prompt, { cache });
for (const token of tokens) {
  const { output: step } = layer.forward(token, token, token, { cache });
  console.log(step.shape);
}
const big = threaded.tensor([8192, 1024]);
threaded.softmax(big, { out: big });

// ---- In the browser, through bundlers: the .wasm as a URL, and qkv/inline
const fromUrl = await createEngine({ simd: 'simd', wasm: new URL(wasmUrl, location.href) });
const relaxedUrl: string = relaxedWasmUrl;
const inline = await createInlineEngine({ simd: 'auto' });
console.log(needed.length, fromUrl.info, relaxedUrl, inline.info.simd);
engine.dispose();
