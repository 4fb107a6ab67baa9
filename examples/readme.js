import { createEngine, reference, tensor } from 'qkv';

// The essay: predict a weight from a waist by attending to known (waist, weight) pairs.
const waists = tensor([56, 58], [2]);
const weights = tensor([43, 48], [2]);
const { output, weights: attention } = reference.kernelRegression(tensor([57], [1]), waists, weights, { returnWeights: true });
console.log(output.data, attention.data);

// Production attention on the WebAssembly engine: 8 query heads sharing 2 kv heads, causal.
const engine = await createEngine();
const q = tensor(Array.from({ length: 1 * 8 * 4 * 16 }, (_, i) => Math.sin(i)), [1, 8, 4, 16]);
const kv = tensor(Array.from({ length: 1 * 2 * 4 * 16 }, (_, i) => Math.cos(i)), [1, 2, 4, 16]);
const r = engine.scaledDotProductAttention(q, kv, kv, { causal: true, returnWeights: true });
console.log(r.output.shape, r.weights.data.subarray(0, 8));
console.log(engine.info);
engine.dispose();
