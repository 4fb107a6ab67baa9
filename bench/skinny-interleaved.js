// The decode-step criteria of the skinny-matmul work, measured interleaved: every implementation is
// called once per round, in turn, and each reports its median over the rounds, so that a busy
// machine slows all of them alike (run.js times one implementation after another). One thread.
//   node bench/skinny-interleaved.js [rounds]     (after npm run build; one benchmark at a time)
// [1, 4096] x [4096, 4096], plain and transposed: qkv with B in engine memory and stateless,
// tfjs-wasm with its tensors resident, onnxruntime-web (MatMul; Gemm transB = 1); and a prepared
// E = 4096 multi-head layer's one-token forward (4 x 64 MiB of weights). GB/s of weights read.

import { setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-web';
import { createEngine } from 'qkv';
import { random } from './lib/cases.js';
import { gemmTransBModel, matmulModel } from './lib/onnx-models.js';

setThreadsCount(1);
setWasmPaths(new URL('../node_modules/@tensorflow/tfjs-backend-wasm/dist/', import.meta.url).pathname);
await tf.setBackend('wasm'); await tf.ready();
ort.env.wasm.numThreads = 1; ort.env.logLevel = 'error';
const sMat = await ort.InferenceSession.create(matmulModel(), { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
const sT = await ort.InferenceSession.create(gemmTransBModel(), { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
const e = await createEngine();
const E = 4096;
const a = random([1, E], 1), b = random([E, E], 2);
const B = e.tensor([E, E]); B.data.set(b.data);
const tA = tf.tensor(a.data, [1, E]), tB = tf.tensor(b.data, [E, E]), tBt = tf.tensor(b.data, [E, E]);
const feeds = { A: new ort.Tensor('float32', a.data, [1, E]), B: new ort.Tensor('float32', b.data, [E, E]) };
const layer = e.createMultiHeadAttention({ numHeads: 32, inProjWeight: random([3 * E, E], 3), outProjWeight: random([E, E], 4) });
const x = random([1, 1, E], 5);
const impls = {
  'qkv res': () => e.matmul(a, B).data[0],
  'qkv res T': () => e.matmul(a, B, { transposeB: true }).data[0],
  'qkv stateless': () => e.matmul(a, b).data[0],
  'qkv stateless T': () => e.matmul(a, b, { transposeB: true }).data[0],
  tfjs: () => { const y = tf.matMul(tA, tB); const d = y.dataSync()[0]; y.dispose(); return d; },
  'tfjs T': () => { const y = tf.matMul(tA, tBt, false, true); const d = y.dataSync()[0]; y.dispose(); return d; },
  ort: async () => (await sMat.run(feeds)).Y.data[0],
  'ort T': async () => (await sT.run(feeds)).Y.data[0],
  layer: () => layer.forward(x, x, x).output.data[0],
};
const names = Object.keys(impls), ts = Object.fromEntries(names.map((n) => [n, []]));
for (let w = 0; w < 2; w++) for (const n of names) await impls[n]();
const rounds = Number(process.argv[2] ?? 15);
for (let r = 0; r < rounds; r++) for (const n of names) { const t0 = performance.now(); await impls[n](); ts[n].push(performance.now() - t0); }
const med = Object.fromEntries(names.map((n) => [n, ts[n].sort((p, q) => p - q)[rounds >> 1]]));
const gb = (ms, bytes = E * E * 4) => (bytes / ms / 1e6).toFixed(1);
for (const n of names) console.log(`${n.padEnd(16)} ${med[n].toFixed(2).padStart(7)} ms  ${gb(med[n], n === 'layer' ? 4 * E * E * 4 : E * E * 4).padStart(5)} GB/s`);
console.log(`ratios: res/tfjs ${(med.tfjs / med['qkv res']).toFixed(2)}x, res T/tfjs ${(med.tfjs / med['qkv res T']).toFixed(2)}x (tfjs T ${(med['tfjs T'] / med['qkv res T']).toFixed(2)}x), stateless/ort ${(med.ort / med['qkv stateless']).toFixed(2)}x, stateless T/ort T ${(med['ort T'] / med['qkv stateless T']).toFixed(2)}x`);
