// Peer: onnxruntime-web, wasm backend (it ships only its SIMD-threaded build; one thread by
// default, which in Node runs without worker threads). Sessions over the tiny ONNX models of
// ../onnx-models.js, with symbolic dimensions so that one session serves every shape of an op.
//
//   matmul                one MatMul
//   skinny matmul         one MatMul; with transposeB one Gemm (transB = 1), ONNX's nn.Linear
//   softmax               one Softmax (axis -1)
//   attention             com.microsoft.MultiHeadAttention (num_heads = H) on query/key/value
//                         [B, L, H·d]; causal: its unidirectional attribute. Decode (Lq = 1): the
//                         unfused Transpose/MatMul/Mul/Softmax/MatMul graph on [B, H, L, d], ORT's
//                         best there
//   multi-head attention  MatMul (Wqᵀ, Wkᵀ, Wvᵀ) -> MultiHeadAttention -> MatMul (Woᵀ), weights as
//                         initializers
//
// Input tensors are made once per case in setup(); a timed call is one session.run(), which copies
// the inputs into wasm memory and the output out, as qkv's wasm engine does.
import * as ort from 'onnxruntime-web';
import { gemmTransBModel, matmulModel, multiHeadAttentionModel, projectedAttentionModel, softmaxModel, unfusedAttentionModel } from '../onnx-models.js';

export const name = 'onnxruntime-web';
export const short = 'ort';
export const async = true;
export const ops = ['matmul', 'skinny matmul', 'softmax', 'attention', 'multi-head attention'];
export const notes = {
  attention: 'onnxruntime-web: com.microsoft.MultiHeadAttention on [B, L, H*d] (causal: unidirectional=1); decode: MatMul/Softmax graph on [B, H, L, d]',
  'multi-head attention': 'onnxruntime-web: MatMul x3 -> MultiHeadAttention -> MatMul, weights as initializers',
};

const sessions = new Map();

async function session(key, build) {
  if (!sessions.has(key)) {
    sessions.set(key, await ort.InferenceSession.create(build(), { executionProviders: ['wasm'], graphOptimizationLevel: 'all' }));
  }
  return sessions.get(key);
}

export async function init({ threads = 1 } = {}) {
  ort.env.wasm.numThreads = threads;
  ort.env.logLevel = 'error';
  await session('matmul', matmulModel); // loads and compiles the .wasm
  return `${name} ${ort.env.versions.web} (wasm backend, SIMD build, ${threads} thread${threads > 1 ? 's' : ''})`;
}

const f32 = (data, dims) => new ort.Tensor('float32', data, dims);

/** [B, X, Y, d] -> [B, Y, X, d]: between qkv's [B, H, L, d] and MultiHeadAttention's [B, L, H·d]. */
function swap12(data, [B, X, Y, d]) {
  const out = new Float32Array(data.length);
  for (let b = 0; b < B; b++)
    for (let x = 0; x < X; x++)
      for (let y = 0; y < Y; y++)
        out.set(data.subarray(((b * X + x) * Y + y) * d, ((b * X + x) * Y + y + 1) * d), ((b * Y + y) * X + x) * d);
  return out;
}

/** Row-major [rows, cols] -> [cols, rows]. */
function transpose2d(data, rows, cols) {
  const out = new Float32Array(data.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = data[i * cols + j];
  return out;
}

/**
 * Builds a case's session and input tensors. Returns { call, toQkv, dispose }: call() runs the
 * session once and resolves to the output data in ORT's layout; toQkv(data) gives it in qkv's layout.
 */
export async function setup(c, inputs) {
  const same = (data) => data;
  const runner = async (s, feeds, output, toQkv = same) => ({
    call: async () => (await s.run(feeds))[output].data,
    toQkv,
    dispose: () => {},
  });
  switch (c.op) {
    case 'matmul': {
      const { a, b } = inputs;
      return runner(await session('matmul', matmulModel), { A: f32(a.data, a.shape), B: f32(b.data, b.shape) }, 'Y');
    }
    case 'skinny matmul': {
      // B is an input, copied into ORT's memory every run, as qkv's stateless call copies it
      const { a, b } = inputs;
      const s = c.params.transposeB ? await session('gemm transB', gemmTransBModel) : await session('matmul', matmulModel);
      return runner(s, { A: f32(a.data, a.shape), B: f32(b.data, b.shape) }, 'Y');
    }
    case 'softmax':
      return runner(await session('softmax', softmaxModel), { X: f32(inputs.x.data, inputs.x.shape) }, 'Y');
    case 'attention': {
      const { B, H, Lq, Lk, d, causal } = c.params;
      const { q, k, v } = inputs;
      if (Lq === 1 && !causal) {
        const s = await session(`unfused d=${d}`, () => unfusedAttentionModel({ headSize: d }));
        return runner(s, { Q: f32(q.data, q.shape), K: f32(k.data, k.shape), V: f32(v.data, v.shape) }, 'O');
      }
      const s = await session(`mha H=${H} d=${d} causal=${causal}`, () => multiHeadAttentionModel({ numHeads: H, hidden: H * d, causal }));
      const feeds = {
        query: f32(swap12(q.data, q.shape), [B, Lq, H * d]),
        key: f32(swap12(k.data, k.shape), [B, Lk, H * d]),
        value: f32(swap12(v.data, v.shape), [B, Lk, H * d]),
      };
      return runner(s, feeds, 'output', (data) => swap12(data, [B, Lq, H, d]));
    }
    case 'multi-head attention': {
      const { L, B, E, H } = c.params;
      const W = inputs.inProjWeight.data;
      const part = (i) => transpose2d(W.subarray(i * E * E, (i + 1) * E * E), E, E);
      const bytes = projectedAttentionModel({ numHeads: H, embed: E, WqT: part(0), WkT: part(1), WvT: part(2), WoT: transpose2d(inputs.outProjWeight.data, E, E) });
      const s = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
      const r = await runner(s, { x: f32(inputs.x.data, [B, L, E]) }, 'y');
      r.dispose = () => s.release();
      return r;
    }
    default:
      return null;
  }
}

export async function close() {
  for (const s of sessions.values()) await s.release();
  sessions.clear();
}
