// Peer: TensorFlow.js with its WebAssembly backend (@tensorflow/tfjs-backend-wasm), one thread
// (setThreadsCount(1) before setBackend('wasm'); it cannot use threads in Node anyway).
//
//   matmul                tf.matMul
//   skinny matmul         tf.matMul(a, b, false, transposeB), b resident in tfjs's heap
//   softmax               tf.softmax (last axis)
//   attention             per head, on 2-D [L, d] tensors: tf.matMul(Q·scale, Kᵀ) [+ causal
//                         additive mask] -> tf.softmax -> tf.matMul(P, V), heads concatenated
//   multi-head attention  per batch and head: projections x·Wq_hᵀ, x·Wk_hᵀ, x·Wv_hᵀ with per-head
//                         weight slices [E, d] (weights stored transposed, as ORT's initializers),
//                         the per-head attention above, heads concatenated, output projection
//
// The per-head 2-D form and the transpose choice are tfjs-wasm 4.22's fastest, measured here: its
// batched (3-D) matMul is 10-20x slower than eight 2-D ones at L >= 128; matMul with transposeB is
// ~5x slower than tf.transpose then matMul (~10x for [1024, 512] x [512, 512]ᵀ), except for one
// query row (decode), where transposeB is ~10x faster; and slicing heads out of a tensor (slice,
// split, unstack) costs ~0.6 ms a head. So attention inputs are given per head (2-D tensors made
// in setup, like every input), Kᵀ is formed by tf.transpose unless Lq = 1, and multi-head
// attention projects each head with its own weight slice (3x faster than projecting then
// splitting).
//
// Input tensors (and the causal mask) are made once per case in setup() and disposed after it; a
// timed call runs the ops in tf.tidy, reads the result with dataSync() and disposes it.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';

const require = createRequire(import.meta.url);
const packageJson = require.resolve('@tensorflow/tfjs-backend-wasm/package.json');
const version = require('@tensorflow/tfjs-backend-wasm/package.json').version;

export const name = 'tfjs-wasm';
export const short = 'tfjs';
export const async = false;
export const ops = ['matmul', 'skinny matmul', 'softmax', 'attention', 'multi-head attention'];
export const notes = {
  attention: 'tfjs-wasm: per head on 2-D [L, d] tensors, matMul(Q*scale, transpose(K)) [+ causal mask] -> softmax -> matMul; decode: matMul with transposeB',
  'multi-head attention': 'tfjs-wasm: per batch and head, matMul(x, W_h^T) x3 with per-head weight slices -> the per-head attention -> concat -> matMul(o, Wo^T)',
};

export async function init({ threads = 1 } = {}) {
  setThreadsCount(threads);
  setWasmPaths(`${join(dirname(packageJson), 'dist')}/`); // the .wasm files ship in the package
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs: the wasm backend did not initialize');
  await tf.ready();
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  return `@tensorflow/tfjs-backend-wasm ${version} (${simd ? 'SIMD' : 'no SIMD'} build, ${threads} thread${threads > 1 ? 's' : ''})`;
}

/** Runs `ops` in tf.tidy, reads the result and disposes it. */
function read(ops) {
  const t = tf.tidy(ops);
  const data = t.dataSync();
  t.dispose();
  return data;
}

/** softmax(q kᵀ · scale + mask) v for one head, q [Lq, d], k and v [Lk, d]. */
function headAttention(q, k, v, scale, mask) {
  const qs = tf.mul(q, scale);
  const scores = q.shape[0] === 1 ? tf.matMul(qs, k, false, true) : tf.matMul(qs, tf.transpose(k));
  return tf.matMul(tf.softmax(mask ? tf.add(scores, mask) : scores), v);
}

/** Every head's attention, concatenated along the first axis: [heads·Lq, d]. */
const attention = (Qs, Ks, Vs, scale, mask) => tf.concat(Qs.map((q, h) => headAttention(q, Ks[h], Vs[h], scale, mask)));

/** [Lq, Lk] additive mask: 0 where key j ≤ query i, -Infinity above the diagonal. */
function causalMask(Lq, Lk) {
  const m = new Float32Array(Lq * Lk);
  for (let i = 0; i < Lq; i++) m.fill(-Infinity, i * Lk + i + 1, (i + 1) * Lk);
  return tf.tensor2d(m, [Lq, Lk]);
}

/** Builds a case's tensors. Returns { call, toQkv, dispose }: call() gives the output data (qkv's layout). */
export async function setup(c, inputs) {
  const held = [];
  const keep = (t) => { held.push(t); return t; };
  const done = (call) => ({ call, toQkv: (data) => data, dispose: () => tf.dispose(held) });
  switch (c.op) {
    case 'matmul': {
      const A = keep(tf.tensor(inputs.a.data, inputs.a.shape)), B = keep(tf.tensor(inputs.b.data, inputs.b.shape));
      return done(() => read(() => tf.matMul(A, B)));
    }
    case 'skinny matmul': {
      // the weights B live in tfjs's heap across calls, as a model's do
      const A = keep(tf.tensor(inputs.a.data, inputs.a.shape)), B = keep(tf.tensor(inputs.b.data, inputs.b.shape));
      return done(() => read(() => tf.matMul(A, B, false, c.params.transposeB)));
    }
    case 'softmax': {
      const X = keep(tf.tensor(inputs.x.data, inputs.x.shape));
      return done(() => read(() => tf.softmax(X)));
    }
    case 'attention': {
      const { B, H, Lq, Lk, d, causal } = c.params;
      // one 2-D tensor per (batch, head)
      const perHead = (t, L) => Array.from({ length: B * H }, (_, i) => keep(tf.tensor2d(t.data.subarray(i * L * d, (i + 1) * L * d), [L, d])));
      const Qs = perHead(inputs.q, Lq), Ks = perHead(inputs.k, Lk), Vs = perHead(inputs.v, Lk);
      const scale = keep(tf.scalar(1 / Math.sqrt(d)));
      const mask = causal ? keep(causalMask(Lq, Lk)) : null;
      return done(() => read(() => attention(Qs, Ks, Vs, scale, mask)));
    }
    case 'multi-head attention': {
      const { B, L, E, H } = c.params;
      const d = E / H;
      const W = inputs.inProjWeight.data;
      // x as one [L, E] tensor per batch; weights as one Wᵀ slice [E, d] per head (the rows
      // h·d .. h·d + d of the PyTorch [E, E] block, transposed once here), so that no head is
      // sliced out of a tensor in the timed call: tfjs-wasm's slice/split/unstack cost more than
      // the attention itself at this size
      const Xs = Array.from({ length: B }, (_, b) => keep(tf.tensor2d(inputs.x.data.subarray(b * L * E, (b + 1) * L * E), [L, E])));
      const headWeights = (block) => Array.from({ length: H }, (_, h) => {
        const rows = tf.tensor2d(W.subarray((block * E + h * d) * E, (block * E + (h + 1) * d) * E), [d, E]);
        const t = keep(tf.transpose(rows));
        rows.dispose();
        return t;
      });
      const [Wq, Wk, Wv] = [0, 1, 2].map(headWeights);
      const Wo = tf.tensor2d(inputs.outProjWeight.data, [E, E]);
      const Wot = keep(tf.transpose(Wo));
      Wo.dispose();
      const scale = keep(tf.scalar(1 / Math.sqrt(d)));
      const batch = (x) => {
        const heads = Wq.map((wq, h) => headAttention(tf.matMul(x, wq), tf.matMul(x, Wk[h]), tf.matMul(x, Wv[h]), scale, null));
        return tf.matMul(tf.concat(heads, 1), Wot);
      };
      return done(() => read(() => tf.concat(Xs.map(batch))));
    }
    default:
      return null;
  }
}

/** Every tensor of a case is disposed after it: warns if any are left, i.e. if memory grew. */
export async function close() {
  const { numTensors } = tf.memory();
  if (numTensors > 0) console.warn(`tfjs-wasm: ${numTensors} tensors were not disposed`);
}
