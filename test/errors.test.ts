// Bad input: TypeError for a wrong type, RangeError for a shape, size or value that does not fit,
// a message that names the argument with what was expected and what came, and an engine that
// still works afterwards and keeps no memory from the failed call. docs/VALIDATION.md is the table
// of what each op rejects; every row of its two tables has at least one case here (the wasm engine's
// memory limit: 'createEngine({ maxMemoryBytes })' and 'the wasm engine after failed calls' below).
import { describe, expect, it } from 'vitest';
import {
  createEngine, type Engine, type EngineTensor, type GroupedQueryAttentionLayer, type GroupedQueryParams, type KVCache, type KVPool, type KVSequence, type Mask,
  type MultiHeadAttentionLayer, type MultiHeadParams, mask, reference, type Tensor, tensor,
} from '../src/index.js';
import { runtimeHasRelaxedSimd } from '../src/wasm/loader.js';
import { engines, expectClose, expectPoolInvariants, multiHeadParams, poolAttention, random } from './support.js';

const all = await engines();
const wasm = all[1];

// Every input is built once, here, so that a failing call costs only its validation (the memory
// test below makes 10,000 of each).
const q = random([1, 2, 3, 4], 1), k = random([1, 2, 5, 4], 2), v = random([1, 2, 5, 6], 3);
const good = (e: Engine) => e.scaledDotProductAttention(q, k, v, { causal: true }).output;
const expected = good(all[0]);

const m23 = random([2, 3], 1), m45 = random([4, 5], 2), m32 = random([3, 2], 3);
const b223 = random([2, 2, 3], 5), b332 = random([3, 3, 2], 6);
const scalar = tensor([3], []);
const x3 = random([2, 2, 3], 7);
const boolMask = (shape: number[]): Mask => mask(new Array(shape.reduce((a, b) => a * b, 1)).fill(1), shape);
const mask45 = boolMask([4, 5]), mask35 = boolMask([3, 5]);
const int32Mask = { data: new Int32Array(15), shape: [3, 5] } as unknown as Mask;
const f64Mask = { data: new Float64Array(15), shape: [3, 5] } as unknown as Mask;
const shortMask: Mask = { data: new Uint8Array(14), shape: [3, 5] };
const q3 = random([1, 3, 4], 8), k3 = random([1, 5, 4], 9), v3 = random([1, 5, 6], 10);
const k1245 = random([1, 2, 5, 5], 11), v1246 = random([1, 2, 4, 6], 12), q1334 = random([1, 3, 3, 4], 13);
const k2254 = random([2, 2, 5, 4], 14), k1154 = random([1, 1, 5, 4], 15), v1157 = random([1, 2, 5, 7], 16);

const kq = random([3], 17), kk = random([4], 18), kv = random([4], 19), kv5 = random([5], 20);
const kq2 = random([3, 2], 21), kk3 = random([4, 3], 22), kq3d = random([3, 2, 1], 23);

const aq = random([1, 2, 3], 24), ak = random([1, 4, 5], 25), av = random([1, 4, 6], 26);
const additive = { Wq: random([8, 3], 27), Wk: random([8, 5], 28), wv: random([1, 8], 29) };

const x = random([1, 2, 4], 30), x2 = random([2, 2, 4], 31), x5 = random([1, 2, 5], 32), kv16 = random([1, 6, 4], 33);
const mha: MultiHeadParams = { numHeads: 2, inProjWeight: random([12, 4], 34), outProjWeight: random([4, 4], 35) };
const sep: MultiHeadParams = { numHeads: 2, qProjWeight: random([4, 4], 36), kProjWeight: random([4, 5], 37), vProjWeight: random([4, 5], 38), outProjWeight: random([4, 4], 35) };
const w44 = random([4, 4], 39), w45 = random([4, 5], 40), w4 = random([4], 41), w12 = random([12], 42), w114 = random([1, 1, 4], 43), w115 = random([1, 1, 5], 44);

// Serving many sequences: rotary over x [1, 2, 4]; a KV pool of 1 kv head, D 4, Dv 2, 3 blocks of 2, whose
// sequence `seq` holds pk, pv (3 positions, 2 blocks); batchAttention of one new row (nq, nk, nv: 2 query
// heads) or two; a grouped-query layer of E 8, 2 query heads over 1 kv head of 4.
const cos82 = random([8, 2], 60), cos83 = random([8, 3], 61);
const pk = random([3, 1, 4], 62), pv = random([3, 1, 2], 63);
const nq = random([1, 2, 4], 64), nk = random([1, 1, 4], 65), nv = random([1, 1, 2], 66);
const nq2 = random([2, 2, 4], 67), nk2 = random([2, 1, 4], 68), nv2 = random([2, 1, 2], 69);
const nq3 = random([1, 3, 4], 70), nk12 = random([1, 2, 4], 71), nv12 = random([1, 2, 2], 72), nv13 = random([1, 1, 3], 73), nk15 = random([1, 1, 5], 74);
const pk4 = random([4, 1, 4], 75), pv4 = random([4, 1, 2], 76), q42 = random([4, 2, 4], 77), k41 = random([4, 1, 4], 78), v41 = random([4, 1, 2], 79);
const gqa: GroupedQueryParams = { numHeads: 2, numKvHeads: 1, headDim: 4, qProjWeight: random([8, 8], 80), kProjWeight: random([4, 8], 81), vProjWeight: random([4, 8], 82), oProjWeight: random([8, 8], 83) };
const gx = random([2, 8], 84), gx9 = random([2, 9], 85), w84 = random([8, 4], 86), w88 = random([8, 8], 87), w8 = random([8], 88), w1 = random([1], 89), w3 = random([3], 90);

// Serving objects, made once per engine: KV caches shaped for attention over q, k, v (heads 2, E 4, Ev 6)
// and for a layer of mha (E 4, 2 heads of 2), some holding positions, some disposed; engine tensors.
// Every failing call below must leave each cache as it was (checked after them, and after 10,000 rounds).
interface Held {
  kvEmpty: KVCache; kvFull: KVCache; kvWrong: KVCache; kvDisposed: KVCache;
  layer: MultiHeadAttentionLayer; layerDisposed: MultiHeadAttentionLayer;
  lkEmpty: KVCache; lkFull: KVCache; lkWrong: KVCache; lkDisposed: KVCache;
  t3: EngineTensor; tDisposed: EngineTensor;
  pool: KVPool; seq: KVSequence; seqEmpty: KVSequence; seqFreed: KVSequence; seqOtherPool: KVSequence; seqOrphan: KVSequence; poolDisposed: KVPool;
  gqa: GroupedQueryAttentionLayer; gqaDisposed: GroupedQueryAttentionLayer; gqaPool: KVPool; gqaSeq: KVSequence;
}
const k2 = random([1, 2, 2, 4], 50), v2 = random([1, 2, 2, 6], 51), lk2 = random([1, 2, 2, 2], 52), lv2 = random([1, 2, 2, 2], 53);
const heldBy = new Map<Engine, Held>();
function held(e: Engine): Held {
  let h = heldBy.get(e);
  if (h) return h;
  const kv = (capacity: number, kvHeads = 2) => e.createKVCache({ batch: 1, kvHeads, headDim: 4, valueDim: 6, capacity });
  const lk = (capacity: number, kvHeads = 2, headDim = 2) => e.createKVCache({ batch: 1, kvHeads, headDim, capacity });
  const disposed = <T extends { dispose(): void }>(x: T) => { x.dispose(); return x; };
  const pool = () => e.createKVPool({ kvHeads: 1, headDim: 4, valueDim: 2, blocks: 3, blockSize: 2 });
  const p = pool(), other = pool(), gone = pool(), gqaPool = e.createKVPool({ kvHeads: 1, headDim: 4, blocks: 4, blockSize: 2 });
  h = {
    kvEmpty: kv(8), kvFull: kv(6), kvWrong: kv(8, 1), kvDisposed: disposed(kv(8)),
    layer: e.createMultiHeadAttention(mha), layerDisposed: disposed(e.createMultiHeadAttention(mha)),
    lkEmpty: lk(8), lkFull: lk(3), lkWrong: lk(8, 1, 4), lkDisposed: disposed(lk(8)),
    t3: e.tensor([3]), tDisposed: disposed(e.tensor([2, 3])),
    pool: p, seq: p.sequence(), seqEmpty: p.sequence(), seqFreed: p.sequence(), seqOtherPool: other.sequence(), seqOrphan: gone.sequence(), poolDisposed: gone,
    gqa: e.createGroupedQueryAttention(gqa), gqaDisposed: disposed(e.createGroupedQueryAttention(gqa)), gqaPool, gqaSeq: gqaPool.sequence(),
  };
  h.kvFull.append(k2, v2);
  h.lkFull.append(lk2, lv2);
  h.seq.append(pk, pv);
  h.seqFreed.free();
  gone.dispose();
  heldBy.set(e, h);
  return h;
}
/** The objects of another engine: the reference's for the wasm engine, the wasm engine's for the reference. */
const foreign = (e: Engine) => held(e === reference ? wasm : reference);
/** A second wasm engine: its objects are as foreign to the first as the reference's. */
const otherWasm = await createEngine();

/** Each cache still holds what it held before the failed calls. */
function expectCachesUnchanged(e: Engine): void {
  const h = held(e);
  for (const c of [h.kvEmpty, h.kvWrong, h.lkEmpty, h.lkWrong]) expect(c.length).toBe(0);
  expect(h.kvFull.length).toBe(2);
  expect(h.lkFull.length).toBe(2);
  expectClose(h.kvFull.read().keys, k2, 'kvFull keys');
  expectClose(h.kvFull.read().values, v2, 'kvFull values');
  expectClose(h.lkFull.read().keys, lk2, 'lkFull keys');
  expectClose(h.lkFull.read().values, lv2, 'lkFull values');
}

/** Each pool's sequences still hold what they held before the failed calls, and no block moved. */
function expectPoolsUnchanged(e: Engine): void {
  const h = held(e);
  expect(h.seq.length).toBe(3);
  expectClose(h.seq.read().keys, pk, 'seq keys');
  expectClose(h.seq.read().values, pv, 'seq values');
  expect(h.seqEmpty.length).toBe(0);
  expect(h.pool.freeBlocks).toBe(1);
  expectPoolInvariants(h.pool, [h.seq, h.seqEmpty]);
  expect(h.gqaSeq.length).toBe(0);
  expect(h.gqaPool.freeBlocks).toBe(4);
}

type Call = [string, typeof Error | typeof TypeError | typeof RangeError, RegExp, (e: Engine) => unknown];
const calls: Call[] = [
  // tensors themselves (checked the same way for every tensor argument of every op)
  ['tensor not an object', TypeError, /matmul: a: expected a Tensor \{ data: Float32Array, shape \}, got an array/, (e) => e.matmul([1, 2] as never, m32)],
  ['tensor data a plain array', TypeError, /matmul: b: data must be a Float32Array, got an array/, (e) => e.matmul(m23, { data: [1, 2], shape: [1, 2] } as never)],
  ['tensor data a Float64Array', TypeError, /softmax: x: data must be a Float32Array, got a Float64Array/, (e) => e.softmax({ data: new Float64Array(6), shape: [2, 3] } as never)],
  ['tensor shape not an array', TypeError, /softmax: x: shape must be an array/, (e) => e.softmax({ data: new Float32Array(6), shape: '2,3' } as never)],
  ['tensor size a string', TypeError, /softmax: x: shape \[2, 3\] holds a string/, (e) => e.softmax({ data: new Float32Array(6), shape: [2, '3'] } as never)],
  ['tensor size negative', RangeError, /softmax: x: shape \[-2, -3\] must hold non-negative integers/, (e) => e.softmax({ data: new Float32Array(6), shape: [-2, -3] })],
  ['tensor size non-integer', RangeError, /softmax: x: shape \[1.5, 4\] must hold non-negative integers/, (e) => e.softmax({ data: new Float32Array(6), shape: [1.5, 4] })],
  ['tensor size NaN', RangeError, /softmax: x: shape \[NaN, 3\]/, (e) => e.softmax({ data: new Float32Array(6), shape: [NaN, 3] })],
  ['tensor data too short', RangeError, /softmax: x: shape \[2, 3\] needs 6 values, data holds 5/, (e) => e.softmax({ data: new Float32Array(5), shape: [2, 3] })],

  ['matmul inner sizes', RangeError, /matmul: inner sizes differ: a \[4, 5\] has K = 5, b \[2, 3\] has K = 2/, (e) => e.matmul(m45, m23)],
  ['matmul inner sizes, transposeB', RangeError, /b \[3, 2\] has K = 2 \(transposeB\)/, (e) => e.matmul(m23, m32, { transposeB: true })],
  ['matmul scalar', RangeError, /matmul: a must be at least 1-D/, (e) => e.matmul(scalar, m32)],
  ['matmul batch broadcast', RangeError, /matmul: a \[2\] and b \[3\]: leading dimensions do not broadcast/, (e) => e.matmul(b223, b332)],
  ['matmul transposeB type', TypeError, /matmul: options.transposeB must be a boolean, got a string/, (e) => e.matmul(m23, m32, { transposeB: 'yes' as never })],
  ['matmul options type', TypeError, /matmul: options must be an object, got a number/, (e) => e.matmul(m23, m32, 1 as never)],

  ['softmax scalar', RangeError, /softmax: x must be at least 1-D, got shape \[\]/, (e) => e.softmax(scalar)],
  ['softmax x missing', TypeError, /softmax: x: expected a Tensor/, (e) => e.softmax(undefined as never)],

  ['maskedSoftmax rank', RangeError, /maskedSoftmax: x: expected a 3-D tensor, got shape \[2, 3\]/, (e) => e.maskedSoftmax(m23, [1, 1])],
  ['maskedSoftmax lens length', RangeError, /maskedSoftmax: validLens: expected length 2 or 4, got 3/, (e) => e.maskedSoftmax(x3, [1, 1, 1])],
  ['maskedSoftmax lens above Lk', RangeError, /maskedSoftmax: validLens\[1\] must be an integer in \[0, 3\], got 4/, (e) => e.maskedSoftmax(x3, [1, 4])],
  ['maskedSoftmax lens negative', RangeError, /validLens\[0\] must be an integer in \[0, 3\], got -1/, (e) => e.maskedSoftmax(x3, [-1, 1])],
  ['maskedSoftmax lens non-integer', RangeError, /validLens\[1\] must be an integer in \[0, 3\], got 1.5/, (e) => e.maskedSoftmax(x3, [1, 1.5])],
  ['maskedSoftmax lens NaN', RangeError, /validLens\[0\] must be an integer in \[0, 3\], got NaN/, (e) => e.maskedSoftmax(x3, [NaN, 1])],
  ['maskedSoftmax lens element type', TypeError, /validLens\[0\] must be a number, got a string/, (e) => e.maskedSoftmax(x3, ['1', 1] as never)],
  ['maskedSoftmax lens type', TypeError, /maskedSoftmax: validLens must be an array-like of integers, got a number/, (e) => e.maskedSoftmax(x3, 3 as never)],

  ['kernelRegression queries rank', RangeError, /kernelRegression: queries: expected a 1-D or 2-D tensor, got shape \[3, 2, 1\]/, (e) => e.kernelRegression(kq3d, kk, kv)],
  ['kernelRegression keys features', RangeError, /kernelRegression: keys \[4, 3\] must have the feature size of queries \[3, 2\] \(2\), got 3/, (e) => e.kernelRegression(kq2, kk3, kv)],
  ['kernelRegression values length', RangeError, /kernelRegression: values: expected shape \[4\] \(one value per key; keys are \[4\]\), got \[5\]/, (e) => e.kernelRegression(kq, kk, kv5)],
  ['kernelRegression values type', TypeError, /kernelRegression: values: expected a Tensor/, (e) => e.kernelRegression(kq, kk, null as never)],
  ['kernelRegression w Infinity', RangeError, /kernelRegression: options.w must be a finite number >= 0, got Infinity/, (e) => e.kernelRegression(kq, kk, kv, { w: Infinity })],
  ['kernelRegression w NaN', RangeError, /options.w must be a finite number >= 0, got NaN/, (e) => e.kernelRegression(kq, kk, kv, { w: NaN })],
  ['kernelRegression w negative', RangeError, /options.w must be a finite number >= 0, got -2/, (e) => e.kernelRegression(kq, kk, kv, { w: -2 })],
  ['kernelRegression w type', TypeError, /options.w must be a number, got a string/, (e) => e.kernelRegression(kq, kk, kv, { w: '2' as never })],
  ['kernelRegression returnWeights type', TypeError, /kernelRegression: options.returnWeights must be a boolean, got a number/, (e) => e.kernelRegression(kq, kk, kv, { returnWeights: 1 as never })],

  ['kernelRegressionLoss targets shape', RangeError, /^kernelRegressionLoss: targets: expected shape \[3\] \(the shape of the output; values are \[4\]\), got \[4\]/, (e) => e.kernelRegressionLoss(kq, kk, kv, kk)],
  ['kernelRegressionLoss targets type', TypeError, /^kernelRegressionLoss: targets: expected a Tensor/, (e) => e.kernelRegressionLoss(kq, kk, kv, [1, 2, 3] as never)],
  ['kernelRegressionLoss keys features', RangeError, /^kernelRegressionLoss: keys \[4, 3\] must have the feature size of queries \[3, 2\] \(2\), got 3/, (e) => e.kernelRegressionLoss(kq2, kk3, kv, kq)],
  ['kernelRegressionLoss leaveOneOut sizes', RangeError, /^kernelRegressionLoss: options.leaveOneOut .* queries \[3\], keys \[4\]/, (e) => e.kernelRegressionLoss(kq, kk, kv, kq, { leaveOneOut: true })],
  ['kernelRegressionLoss leaveOneOut type', TypeError, /^kernelRegressionLoss: options.leaveOneOut must be a boolean, got a string/, (e) => e.kernelRegressionLoss(kq, kk, kv, kq, { leaveOneOut: 'yes' as never })],
  ['kernelRegressionLoss reduction', RangeError, /^kernelRegressionLoss: options.reduction must be 'mean' or 'sum', got 'none'/, (e) => e.kernelRegressionLoss(kq, kk, kv, kq, { reduction: 'none' as never })],
  ['kernelRegressionLoss w negative', RangeError, /^kernelRegressionLoss: options.w must be a finite number >= 0, got -1/, (e) => e.kernelRegressionLoss(kq, kk, kv, kq, { w: -1 })],

  ['additive query rank', RangeError, /additiveAttention: query: expected a 3-D tensor, got shape \[2, 3\]/, (e) => e.additiveAttention(m23, ak, av, additive)],
  ['additive key batch', RangeError, /additiveAttention: key: expected shape \[2, \*, \*\] \(batch of query \[2, 2, 3\]\), got \[1, 4, 5\]/, (e) => e.additiveAttention(b223, ak, av, additive)],
  ['additive value length', RangeError, /additiveAttention: value: expected shape \[1, 4, \*\] \(batch and length of key \[1, 4, 5\]\), got \[1, 2, 4\]/, (e) => e.additiveAttention(aq, ak, x, additive)],
  ['additive Wq', RangeError, /additiveAttention: params.Wq: expected shape \[4, 3\] \(nn.Linear layout \[hidden, Dq\]\), got \[4, 5\]/, (e) => e.additiveAttention(aq, ak, av, { ...additive, Wq: m45 })],
  ['additive Wk', RangeError, /additiveAttention: params.Wk: expected shape \[8, 5\] \(nn.Linear layout \[hidden, Dk\]\), got \[8, 3\]/, (e) => e.additiveAttention(aq, ak, av, { ...additive, Wk: additive.Wq })],
  ['additive wv', RangeError, /additiveAttention: params.wv: expected shape \[1, 8\] \(nn.Linear layout \[1, hidden\]\), got \[4, 5\]/, (e) => e.additiveAttention(aq, ak, av, { ...additive, wv: m45 })],
  ['additive wv missing', TypeError, /additiveAttention: params.wv: expected a Tensor/, (e) => e.additiveAttention(aq, ak, av, { Wq: additive.Wq, Wk: additive.Wk } as never)],
  ['additive params', TypeError, /additiveAttention: params must be an object \{ Wq, Wk, wv \}, got null/, (e) => e.additiveAttention(aq, ak, av, null as never)],
  ['additive validLens length', RangeError, /additiveAttention: options.validLens: expected length 1 or 2, got 3/, (e) => e.additiveAttention(aq, ak, av, additive, { validLens: [1, 2, 3] })],
  ['additive validLens range', RangeError, /additiveAttention: options.validLens\[0\] must be an integer in \[0, 4\], got 5/, (e) => e.additiveAttention(aq, ak, av, additive, { validLens: [5] })],
  ['additive returnWeights type', TypeError, /additiveAttention: options.returnWeights must be a boolean/, (e) => e.additiveAttention(aq, ak, av, additive, { returnWeights: 'yes' as never })],

  ['attention query rank', RangeError, /scaledDotProductAttention: query: expected a 3-D or 4-D tensor, got shape \[4, 5\]/, (e) => e.scaledDotProductAttention(m45, k, v)],
  ['attention key rank', RangeError, /scaledDotProductAttention: key: expected a 4-D tensor, got shape \[1, 5, 4\]/, (e) => e.scaledDotProductAttention(q, k3, v)],
  ['attention key type', TypeError, /scaledDotProductAttention: key: expected a Tensor/, (e) => e.scaledDotProductAttention(q, 'k' as never, v)],
  ['attention batch', RangeError, /scaledDotProductAttention: batch sizes differ: query \[1, 2, 3, 4\], key \[2, 2, 5, 4\], value \[1, 2, 5, 6\]/, (e) => e.scaledDotProductAttention(q, k2254, v)],
  ['attention key feature size', RangeError, /key feature size 5 differs from query's 4: query \[1, 2, 3, 4\], key \[1, 2, 5, 5\], value \[1, 2, 5, 6\]/, (e) => e.scaledDotProductAttention(q, k1245, v)],
  ['attention value length', RangeError, /value must have key's heads and length: query \[1, 2, 3, 4\], key \[1, 2, 5, 4\], value \[1, 2, 4, 6\]/, (e) => e.scaledDotProductAttention(q, k, v1246)],
  ['attention heads', RangeError, /query heads \(3\) must be a multiple of key\/value heads \(2\)/, (e) => e.scaledDotProductAttention(q1334, k, v)],
  ['attention scale NaN', RangeError, /scaledDotProductAttention: options.scale must be a finite number >= 0, got NaN/, (e) => e.scaledDotProductAttention(q, k, v, { scale: NaN })],
  ['attention scale negative', RangeError, /options.scale must be a finite number >= 0, got -0.5/, (e) => e.scaledDotProductAttention(q, k, v, { scale: -0.5 })],
  ['attention scale type', TypeError, /options.scale must be a number, got a string/, (e) => e.scaledDotProductAttention(q, k, v, { scale: '1' as never })],
  ['attention softcap negative', RangeError, /options.softcap must be a finite number >= 0, got -1/, (e) => e.scaledDotProductAttention(q, k, v, { softcap: -1 })],
  ['attention softcap NaN', RangeError, /options.softcap must be a finite number >= 0, got NaN/, (e) => e.scaledDotProductAttention(q, k, v, { softcap: NaN })],
  ['attention causal name', RangeError, /options.causal must be true, false, 'top-left' or 'bottom-right', got 'top-right'/, (e) => e.scaledDotProductAttention(q, k, v, { causal: 'top-right' as never })],
  ['attention causal type', TypeError, /options.causal must be a boolean, 'top-left' or 'bottom-right', got a number/, (e) => e.scaledDotProductAttention(q, k, v, { causal: 1 as never })],
  ['attention window left negative', RangeError, /options.window.left must be a non-negative integer, got -2/, (e) => e.scaledDotProductAttention(q, k, v, { window: { left: -2 } })],
  ['attention window right non-integer', RangeError, /options.window.right must be a non-negative integer, got 1.5/, (e) => e.scaledDotProductAttention(q, k, v, { window: { right: 1.5 } })],
  ['attention window NaN', RangeError, /options.window.left must be a non-negative integer, got NaN/, (e) => e.scaledDotProductAttention(q, k, v, { window: { left: NaN } })],
  ['attention window type', TypeError, /options.window must be an object \{ left\?, right\? \}, got an array/, (e) => e.scaledDotProductAttention(q, k, v, { window: [1, 1] as never })],
  ['attention validLens length', RangeError, /options.validLens: expected length 1, got 2/, (e) => e.scaledDotProductAttention(q, k, v, { validLens: [1, 2] })],
  ['attention validLens range', RangeError, /options.validLens\[0\] must be an integer in \[0, 5\], got 6/, (e) => e.scaledDotProductAttention(q, k, v, { validLens: [6] })],
  ['attention validLens counts the past', RangeError, /options.validLens\[0\] must be an integer in \[0, 10\], got 11/, (e) => e.scaledDotProductAttention(q, k, v, { validLens: [11], pastKey: k, pastValue: v })],
  ['attention mask shape', RangeError, /options.mask: shape \[4, 5\] does not broadcast to \[1, 2, 3, 5\]/, (e) => e.scaledDotProductAttention(q, k, v, { mask: mask45 })],
  ['attention mask shape, 3-D inputs', RangeError, /options.mask: shape \[4, 5\] does not broadcast to \[1, 3, 5\]/, (e) => e.scaledDotProductAttention(q3, k3, v3, { mask: mask45 })],
  ['attention mask dtype Int32Array', TypeError, /options.mask: data must be a Uint8Array \(boolean\) or Float32Array \(additive\), got an Int32Array; mask\(data, shape\) converts/, (e) => e.scaledDotProductAttention(q, k, v, { mask: int32Mask })],
  ['attention mask dtype Float64Array', TypeError, /options.mask: data must be a Uint8Array \(boolean\) or Float32Array \(additive\), got a Float64Array/, (e) => e.scaledDotProductAttention(q, k, v, { mask: f64Mask })],
  ['attention mask size', RangeError, /options.mask: shape \[3, 5\] needs 15 values, data holds 14/, (e) => e.scaledDotProductAttention(q, k, v, { mask: shortMask })],
  ['attention mask type', TypeError, /options.mask: expected a Mask \{ data: Uint8Array \| Float32Array, shape \}, got a boolean/, (e) => e.scaledDotProductAttention(q, k, v, { mask: true as never })],
  ['attention past alone', TypeError, /options.pastKey and options.pastValue must be given together/, (e) => e.scaledDotProductAttention(q, k, v, { pastKey: k })],
  ['attention pastKey shape', RangeError, /options.pastKey: expected \[1, 2, 5, 4\], got \[1, 1, 5, 4\]/, (e) => e.scaledDotProductAttention(q, k, v, { pastKey: k1154, pastValue: v })],
  ['attention pastValue shape', RangeError, /options.pastValue: expected \[1, 2, 5, 6\], got \[1, 2, 5, 7\]/, (e) => e.scaledDotProductAttention(q, k, v, { pastKey: k, pastValue: v1157 })],
  ['attention pastKey rank', RangeError, /options.pastKey: expected a 4-D tensor, got shape \[1, 5, 4\]/, (e) => e.scaledDotProductAttention(q, k, v, { pastKey: k3, pastValue: v })],
  ['attention returnWeights type', TypeError, /options.returnWeights must be a boolean, got a string/, (e) => e.scaledDotProductAttention(q, k, v, { returnWeights: 'true' as never })],
  ['attention options type', TypeError, /scaledDotProductAttention: options must be an object, got a number/, (e) => e.scaledDotProductAttention(q, k, v, 5 as never)],

  ['mha query rank', RangeError, /multiHeadAttention: query: expected a 3-D tensor, got shape \[4, 5\]/, (e) => e.multiHeadAttention(m45, x, x, mha)],
  ['mha key batch', RangeError, /multiHeadAttention: key: expected shape \[2, \*, \*\] \(batch of query \[2, 2, 4\]\), got \[1, 2, 4\]/, (e) => e.multiHeadAttention(x2, x, x, mha)],
  ['mha value length', RangeError, /multiHeadAttention: value: expected shape \[1, 2, \*\] \(batch and length of key \[1, 2, 4\]\), got \[1, 6, 4\]/, (e) => e.multiHeadAttention(x, x, kv16, mha)],
  ['mha params type', TypeError, /multiHeadAttention: params must be an object \(MultiHeadParams\), got a number/, (e) => e.multiHeadAttention(x, x, x, 2 as never)],
  ['mha heads divide', RangeError, /params.numHeads must be a positive integer that divides E = 4, got 3/, (e) => e.multiHeadAttention(x, x, x, { ...mha, numHeads: 3 })],
  ['mha heads zero', RangeError, /params.numHeads must be a positive integer that divides E = 4, got 0/, (e) => e.multiHeadAttention(x, x, x, { ...mha, numHeads: 0 })],
  ['mha heads non-integer', RangeError, /params.numHeads must be a positive integer that divides E = 4, got 1.5/, (e) => e.multiHeadAttention(x, x, x, { ...mha, numHeads: 1.5 })],
  ['mha heads type', TypeError, /params.numHeads must be a number, got a string/, (e) => e.multiHeadAttention(x, x, x, { ...mha, numHeads: '2' as never })],
  ['mha inProjWeight', RangeError, /^selfAttention: params.inProjWeight: expected shape \[12, 4\] \(\[3E, E\] with E = 4\), got \[4, 5\]/, (e) => e.selfAttention(x, { ...mha, inProjWeight: m45 })],
  ['mha inProjWeight with kdim', RangeError, /params.inProjWeight needs key and value of width E = 4, got kdim 5, vdim 5/, (e) => e.multiHeadAttention(x, x5, x5, mha)],
  ['mha weights missing', TypeError, /params needs inProjWeight, or all of qProjWeight, kProjWeight, vProjWeight/, (e) => e.selfAttention(x, { numHeads: 2, outProjWeight: w44 })],
  ['mha both weight forms', TypeError, /params has inProjWeight and qProjWeight\/kProjWeight\/vProjWeight: give one or the other/, (e) => e.selfAttention(x, { ...mha, qProjWeight: w44 })],
  ['mha qProjWeight', RangeError, /params.qProjWeight: expected shape \[4, 4\] \(\[E, E\]\), got \[4, 5\]/, (e) => e.multiHeadAttention(x, x5, x5, { ...sep, qProjWeight: w45 })],
  ['mha kProjWeight', RangeError, /params.kProjWeight: expected shape \[4, 5\] \(\[E, kdim\]\), got \[4, 4\]/, (e) => e.multiHeadAttention(x, x5, x5, { ...sep, kProjWeight: w44 })],
  ['mha vProjWeight', RangeError, /params.vProjWeight: expected shape \[4, 5\] \(\[E, vdim\]\), got \[4, 4\]/, (e) => e.multiHeadAttention(x, x5, x5, { ...sep, vProjWeight: w44 })],
  ['mha inProjBias', RangeError, /params.inProjBias: expected shape \[12\] \(\[3E\]\), got \[4\]/, (e) => e.selfAttention(x, { ...mha, inProjBias: w4 })],
  ['mha outProjWeight missing', TypeError, /params.outProjWeight is required/, (e) => e.selfAttention(x, { numHeads: 2, inProjWeight: mha.inProjWeight } as never)],
  ['mha outProjWeight', RangeError, /params.outProjWeight: expected shape \[4, 4\] \(\[E, E\]\), got \[4, 5\]/, (e) => e.selfAttention(x, { ...mha, outProjWeight: w45 })],
  ['mha outProjBias', RangeError, /params.outProjBias: expected shape \[4\] \(\[E\]\), got \[12\]/, (e) => e.selfAttention(x, { ...mha, outProjBias: w12 })],
  ['mha biasK alone', TypeError, /params.biasK and params.biasV must be given together/, (e) => e.selfAttention(x, { ...mha, biasK: w114 })],
  ['mha biasV shape', RangeError, /params.biasV: expected shape \[1, 1, 4\] \(\[1, 1, E\]\), got \[1, 1, 5\]/, (e) => e.selfAttention(x, { ...mha, biasK: w114, biasV: w115 })],
  ['mha addZeroAttn type', TypeError, /params.addZeroAttn must be a boolean, got a number/, (e) => e.selfAttention(x, { ...mha, addZeroAttn: 1 as never })],
  ['mha keyPaddingMask shape', RangeError, /options.keyPaddingMask: expected shape \[1, 2\] \(\[B, Lk\]\), got \[1, 3\]/, (e) => e.selfAttention(x, mha, { keyPaddingMask: mask([0, 0, 0], [1, 3]) })],
  ['mha keyPaddingMask dtype', TypeError, /options.keyPaddingMask: data must be a Uint8Array \(boolean\) or Float32Array \(additive\), got an array/, (e) => e.selfAttention(x, mha, { keyPaddingMask: { data: [0, 0], shape: [1, 2] } as never })],
  ['mha mask shape', RangeError, /^selfAttention: options.mask: shape \[3, 5\] does not broadcast to \[1, 2, 2, 2\]/, (e) => e.selfAttention(x, mha, { mask: mask35 })],
  ['mha mask dtype', TypeError, /^selfAttention: options.mask: data must be a Uint8Array \(boolean\) or Float32Array \(additive\), got an Int32Array/, (e) => e.selfAttention(x, mha, { mask: int32Mask })],
  ['mha causal', RangeError, /^selfAttention: options.causal must be true, false, 'top-left' or 'bottom-right', got 'yes'/, (e) => e.selfAttention(x, mha, { causal: 'yes' as never })],
  ['mha needWeights type', TypeError, /options.needWeights must be a boolean, got a number/, (e) => e.selfAttention(x, mha, { needWeights: 1 as never })],
  ['mha averageWeights type', TypeError, /options.averageWeights must be a boolean, got null/, (e) => e.selfAttention(x, mha, { averageWeights: null as never })],
  ['mha options type', TypeError, /^selfAttention: options must be an object, got a string/, (e) => e.selfAttention(x, mha, 'causal' as never)],
  ['selfAttention x rank', RangeError, /^selfAttention: x: expected a 3-D tensor, got shape \[4, 5\]/, (e) => e.selfAttention(m45, mha)],
  // selfAttention's messages name it (and its one input, x); multiHeadAttention's name multiHeadAttention
  ['selfAttention x type', TypeError, /^selfAttention: x: expected a Tensor/, (e) => e.selfAttention(null as never, mha)],
  ['selfAttention params type', TypeError, /^selfAttention: params must be an object \(MultiHeadParams\), got a number/, (e) => e.selfAttention(x, 2 as never)],
  ['selfAttention heads', RangeError, /^selfAttention: params.numHeads must be a positive integer that divides E = 4, got 3/, (e) => e.selfAttention(x, { ...mha, numHeads: 3 })],
  ['selfAttention keyPaddingMask', RangeError, /^selfAttention: options.keyPaddingMask: expected shape \[1, 2\]/, (e) => e.selfAttention(x, mha, { keyPaddingMask: mask([0, 0, 0], [1, 3]) })],
  ['selfAttention out', RangeError, /^selfAttention: options.out: expected shape \[1, 2, 4\] \(the shape of the result\), got \[2, 2, 4\]/, (e) => e.selfAttention(x, mha, { out: x2 })],
  ['multiHeadAttention mask, by its own name', RangeError, /^multiHeadAttention: options.mask: shape \[3, 5\] does not broadcast to \[1, 2, 2, 2\]/, (e) => e.multiHeadAttention(x, x, x, mha, { mask: mask35 })],
  ['multiHeadAttention causal, by its own name', RangeError, /^multiHeadAttention: options.causal must be/, (e) => e.multiHeadAttention(x, x, x, mha, { causal: 'yes' as never })],
  ['multiHeadAttention params, by its own name', RangeError, /^multiHeadAttention: params.inProjWeight: expected shape \[12, 4\]/, (e) => e.multiHeadAttention(x, x, x, { ...mha, inProjWeight: m45 })],

  // options.out on every op: a Tensor of the result's shape (a plain one or an engine tensor)
  ['out type', TypeError, /^softmax: options.out: expected a Tensor \{ data: Float32Array, shape \}, got a number/, (e) => e.softmax(m23, { out: 3 as never })],
  ['out data type', TypeError, /^matmul: options.out: data must be a Float32Array, got a Float64Array/, (e) => e.matmul(m23, m32, { out: { data: new Float64Array(4), shape: [2, 2] } as never })],
  ['out data too short', RangeError, /^matmul: options.out: shape \[2, 2\] needs 4 values, data holds 3/, (e) => e.matmul(m23, m32, { out: { data: new Float32Array(3), shape: [2, 2] } })],
  ['out shape, matmul', RangeError, /^matmul: options.out: expected shape \[2, 2\] \(the shape of the result\), got \[2, 3\]/, (e) => e.matmul(m23, m32, { out: m23 })],
  ['out shape, softmax', RangeError, /^softmax: options.out: expected shape \[2, 3\] \(the shape of the result\), got \[3, 2\]/, (e) => e.softmax(m23, { out: m32 })],
  ['out shape, maskedSoftmax', RangeError, /^maskedSoftmax: options.out: expected shape \[2, 2, 3\] \(the shape of the result\), got \[2, 3\]/, (e) => e.maskedSoftmax(x3, [1, 2], { out: m23 })],
  ['out shape, kernelRegression', RangeError, /^kernelRegression: options.out: expected shape \[3\] \(the shape of the result\), got \[4\]/, (e) => e.kernelRegression(kq, kk, kv, { out: kk })],
  ['out shape, kernelRegressionLoss', RangeError, /^kernelRegressionLoss: options.out: expected shape \[3\] \(the shape of the result\), got \[4\]/, (e) => e.kernelRegressionLoss(kq, kk, kv, kq, { out: kk })],
  ['out shape, additiveAttention', RangeError, /^additiveAttention: options.out: expected shape \[1, 2, 6\] \(the shape of the result\), got \[1, 4, 6\]/, (e) => e.additiveAttention(aq, ak, av, additive, { out: av })],
  ['out shape, scaledDotProductAttention', RangeError, /^scaledDotProductAttention: options.out: expected shape \[1, 2, 3, 6\] \(the shape of the result\), got \[1, 2, 3, 4\]/, (e) => e.scaledDotProductAttention(q, k, v, { out: q })],
  ['out shape, multiHeadAttention', RangeError, /^multiHeadAttention: options.out: expected shape \[1, 2, 4\] \(the shape of the result\), got \[1, 2, 5\]/, (e) => e.multiHeadAttention(x, x, x, mha, { out: x5 })],
  ['out shape, an engine tensor', RangeError, /^softmax: options.out: expected shape \[2, 3\] \(the shape of the result\), got \[3\]/, (e) => e.softmax(m23, { out: held(e).t3 })],

  // engine.tensor(shape) and engine tensors
  ['engine.tensor shape type', TypeError, /^engine.tensor: shape must be an array of sizes, got null/, (e) => e.tensor(null as never)],
  ['engine.tensor size type', TypeError, /^engine.tensor: shape \[2, 3\] holds a string/, (e) => e.tensor([2, '3'] as never)],
  ['engine.tensor size negative', RangeError, /^engine.tensor: shape \[-1\] must hold non-negative integers/, (e) => e.tensor([-1])],
  ['engine.tensor size fractional', RangeError, /^engine.tensor: shape \[2.5\] must hold non-negative integers/, (e) => e.tensor([2.5])],
  ['engine tensor disposed, its data', Error, /this engine tensor has been disposed/, (e) => held(e).tDisposed.data],
  ['engine tensor disposed, as an input', Error, /this engine tensor has been disposed/, (e) => e.softmax(held(e).tDisposed)],
  ['engine tensor disposed, as options.out', Error, /this engine tensor has been disposed/, (e) => e.softmax(m23, { out: held(e).tDisposed })],

  // engine.createKVCache(options) and KVCache.append
  ['createKVCache options missing', TypeError, /^createKVCache: options.batch is required/, (e) => e.createKVCache(undefined as never)],
  ['createKVCache options type', TypeError, /^createKVCache: options must be an object, got a number/, (e) => e.createKVCache(4 as never)],
  ['createKVCache capacity missing', TypeError, /^createKVCache: options.capacity is required/, (e) => e.createKVCache({ batch: 1, kvHeads: 1, headDim: 4 } as never)],
  ['createKVCache size type', TypeError, /^createKVCache: options.kvHeads must be a number, got a string/, (e) => e.createKVCache({ batch: 1, kvHeads: '2' as never, headDim: 4, capacity: 8 })],
  ['createKVCache size negative', RangeError, /^createKVCache: options.capacity must be a positive integer, got -1/, (e) => e.createKVCache({ batch: 1, kvHeads: 1, headDim: 4, capacity: -1 })],
  ['createKVCache size fractional', RangeError, /^createKVCache: options.headDim must be a positive integer, got 2.5/, (e) => e.createKVCache({ batch: 1, kvHeads: 1, headDim: 2.5, capacity: 8 })],
  ['createKVCache valueDim NaN', RangeError, /^createKVCache: options.valueDim must be a positive integer, got NaN/, (e) => e.createKVCache({ batch: 1, kvHeads: 1, headDim: 4, valueDim: NaN, capacity: 8 })],
  ['createKVCache capacity 0', RangeError, /^createKVCache: options.capacity must be a positive integer, got 0/, (e) => e.createKVCache({ batch: 1, kvHeads: 1, headDim: 4, capacity: 0 })],
  ['KVCache.append key type', TypeError, /^KVCache.append: key: expected a Tensor/, (e) => held(e).kvEmpty.append([1, 2] as never, v)],
  ['KVCache.append value rank', RangeError, /^KVCache.append: value: expected a 4-D tensor, got shape \[1, 5, 6\]/, (e) => held(e).kvEmpty.append(k, v3)],
  ['KVCache.append shapes', RangeError, /^KVCache.append: expected key \[1, 2, L, 4\] and value \[1, 2, L, 6\], got \[1, 1, 5, 4\] and \[1, 2, 5, 7\]/, (e) => held(e).kvEmpty.append(k1154, v1157)],
  ['KVCache.append lengths differ', RangeError, /^KVCache.append: expected key \[1, 2, L, 4\] and value \[1, 2, L, 6\], got \[1, 2, 5, 4\] and \[1, 2, 4, 6\]/, (e) => held(e).kvEmpty.append(k, v1246)],
  ['KVCache.append overflow', RangeError, /^KVCache.append: appending 5 positions to a cache holding 2 of 6 would overflow it/, (e) => held(e).kvFull.append(k, v)],
  ['KVCache disposed, append', Error, /this KV cache has been disposed/, (e) => held(e).kvDisposed.append(k, v)],
  ['KVCache disposed, read', Error, /this KV cache has been disposed/, (e) => held(e).kvDisposed.read()],
  ['KVCache disposed, reset', Error, /this KV cache has been disposed/, (e) => held(e).kvDisposed.reset()],

  // scaledDotProductAttention's options.cache
  ['attention cache type', TypeError, /^scaledDotProductAttention: options.cache must be a KVCache \(engine.createKVCache\), got a number/, (e) => e.scaledDotProductAttention(q, k, v, { cache: 1 as never })],
  ['attention cache with pastKey', TypeError, /^scaledDotProductAttention: options.cache and options.pastKey\/pastValue exclude each other/, (e) => e.scaledDotProductAttention(q, k, v, { cache: held(e).kvEmpty, pastKey: k, pastValue: v })],
  ['attention cache, 3-D inputs', RangeError, /^scaledDotProductAttention: options.cache needs 4-D \[B, H, L, E\] inputs, got query \[1, 3, 4\]/, (e) => e.scaledDotProductAttention(q3, k3, v3, { cache: held(e).kvEmpty })],
  ['attention cache shape', RangeError, /^scaledDotProductAttention: key and value must fit the cache \[1, 1, \*, 4\] \/ \[1, 1, \*, 6\]: query \[1, 2, 3, 4\], key \[1, 2, 5, 4\], value \[1, 2, 5, 6\]/, (e) => e.scaledDotProductAttention(q, k, v, { cache: held(e).kvWrong })],
  ['attention cache overflow', RangeError, /^scaledDotProductAttention: appending 5 positions to a cache holding 2 of 6 would overflow it/, (e) => e.scaledDotProductAttention(q, k, v, { cache: held(e).kvFull })],
  ['attention cache of another engine', TypeError, /^scaledDotProductAttention: options.cache must come from this engine/, (e) => e.scaledDotProductAttention(q, k, v, { cache: foreign(e).kvEmpty })],
  ['attention cache of another wasm engine', TypeError, /^scaledDotProductAttention: options.cache must come from this engine/, (e) => e.scaledDotProductAttention(q, k, v, { cache: held(otherWasm).kvEmpty })],
  ['attention cache disposed', Error, /this KV cache has been disposed/, (e) => e.scaledDotProductAttention(q, k, v, { cache: held(e).kvDisposed })],
  ['attention cache with a wrong out (appends nothing)', RangeError, /^scaledDotProductAttention: options.out: expected shape \[1, 2, 3, 6\]/, (e) => e.scaledDotProductAttention(q, k, v, { cache: held(e).kvEmpty, out: held(e).t3 })],

  // engine.createMultiHeadAttention(params) and the layer's forward
  ['createMultiHeadAttention params type', TypeError, /^createMultiHeadAttention: params must be an object \(MultiHeadParams\), got null/, (e) => e.createMultiHeadAttention(null as never)],
  ['createMultiHeadAttention outProjWeight missing', TypeError, /^createMultiHeadAttention: params.outProjWeight is required/, (e) => e.createMultiHeadAttention({ numHeads: 2, inProjWeight: mha.inProjWeight } as never)],
  ['createMultiHeadAttention heads', RangeError, /^createMultiHeadAttention: params.numHeads must be a positive integer that divides E = 4, got 3/, (e) => e.createMultiHeadAttention({ ...mha, numHeads: 3 })],
  ['createMultiHeadAttention inProjWeight', RangeError, /^createMultiHeadAttention: params.inProjWeight: expected shape \[12, 4\] \(\[3E, E\] with E = 4\), got \[4, 5\]/, (e) => e.createMultiHeadAttention({ ...mha, inProjWeight: m45 })],
  ['createMultiHeadAttention weight forms', TypeError, /^createMultiHeadAttention: params needs inProjWeight, or all of qProjWeight, kProjWeight, vProjWeight/, (e) => e.createMultiHeadAttention({ numHeads: 2, qProjWeight: w44, outProjWeight: w44 })],
  ['forward query type', TypeError, /^MultiHeadAttentionLayer.forward: query: expected a Tensor/, (e) => held(e).layer.forward('x' as never, x, x)],
  ['forward query width', RangeError, /^MultiHeadAttentionLayer.forward: query: expected shape \[\*, \*, 4\] \(the layer's E = 4\), got \[1, 2, 5\]/, (e) => held(e).layer.forward(x5, x, x)],
  ['forward key width', RangeError, /^MultiHeadAttentionLayer.forward: key: expected shape \[\*, \*, 4\] \(the layer's kdim = 4\), got \[1, 2, 5\]/, (e) => held(e).layer.forward(x, x5, x)],
  ['forward key batch', RangeError, /^MultiHeadAttentionLayer.forward: key: expected shape \[2, \*, \*\] \(batch of query \[2, 2, 4\]\), got \[1, 2, 4\]/, (e) => held(e).layer.forward(x2, x, x)],
  ['forward causal', RangeError, /^MultiHeadAttentionLayer.forward: options.causal must be true, false, 'top-left' or 'bottom-right', got 'yes'/, (e) => held(e).layer.forward(x, x, x, { causal: 'yes' as never })],
  ['forward out', RangeError, /^MultiHeadAttentionLayer.forward: options.out: expected shape \[1, 2, 4\] \(the shape of the result\), got \[3\]/, (e) => held(e).layer.forward(x, x, x, { out: held(e).t3 })],
  ['forward layer disposed', Error, /this multi-head attention layer has been disposed/, (e) => held(e).layerDisposed.forward(x, x, x)],
  ['forward cache type', TypeError, /^MultiHeadAttentionLayer.forward: options.cache must be a KVCache \(engine.createKVCache\), got a string/, (e) => held(e).layer.forward(x, x, x, { cache: 'cache' as never })],
  ['forward cache with a mask', TypeError, /^MultiHeadAttentionLayer.forward: options.cache does not combine with options.mask/, (e) => held(e).layer.forward(x, x, x, { cache: held(e).lkEmpty, mask: boolMask([2, 2]) })],
  ['forward cache shape', RangeError, /^MultiHeadAttentionLayer.forward: options.cache holds keys \[1, 1, \*, 4\] and values \[1, 1, \*, 4\]; this call appends \[1, 2, 2, 2\] to both/, (e) => held(e).layer.forward(x, x, x, { cache: held(e).lkWrong })],
  ['forward cache of attention\'s shape', RangeError, /^MultiHeadAttentionLayer.forward: options.cache holds keys \[1, 2, \*, 4\] and values \[1, 2, \*, 6\]/, (e) => held(e).layer.forward(x, x, x, { cache: held(e).kvEmpty })],
  ['forward cache overflow', RangeError, /^MultiHeadAttentionLayer.forward: appending 2 positions to a cache holding 2 of 3 would overflow it/, (e) => held(e).layer.forward(x, x, x, { cache: held(e).lkFull })],
  ['forward cache of another engine', TypeError, /^MultiHeadAttentionLayer.forward: options.cache must come from this engine/, (e) => held(e).layer.forward(x, x, x, { cache: foreign(e).lkEmpty })],
  ['forward cache of another wasm engine', TypeError, /^MultiHeadAttentionLayer.forward: options.cache must come from this engine/, (e) => held(e).layer.forward(x, x, x, { cache: held(otherWasm).lkEmpty })],
  ['forward cache disposed', Error, /this KV cache has been disposed/, (e) => held(e).layer.forward(x, x, x, { cache: held(e).lkDisposed })],
  ['forward cache with a wrong out (appends nothing)', RangeError, /^MultiHeadAttentionLayer.forward: options.out: expected shape \[1, 2, 4\]/, (e) => held(e).layer.forward(x, x, x, { cache: held(e).lkEmpty, out: held(e).t3 })],
  ['multiHeadAttention with a cache', TypeError, /^multiHeadAttention: options.cache needs a prepared layer: engine.createMultiHeadAttention\(params\).forward/, (e) => e.multiHeadAttention(x, x, x, mha, { cache: held(e).lkEmpty } as never)],

  ['positionalEncoding maxLen negative', RangeError, /positionalEncoding: maxLen must be a non-negative integer, got -1/, (e) => e.positionalEncoding(-1, 4)],
  ['positionalEncoding dim non-integer', RangeError, /positionalEncoding: dim must be a non-negative integer, got 2.5/, (e) => e.positionalEncoding(3, 2.5)],
  ['positionalEncoding NaN', RangeError, /positionalEncoding: maxLen must be a non-negative integer, got NaN/, (e) => e.positionalEncoding(NaN, 4)],
  ['positionalEncoding type', TypeError, /positionalEncoding: dim must be a number, got a string/, (e) => e.positionalEncoding(3, '4' as never)],

  // rotaryEmbedding(x, options): x [1, 2, 4] is token-major [T, H, D], one position
  ['rotaryEmbedding x rank', RangeError, /^rotaryEmbedding: x: expected a 3-D or 4-D tensor, got shape \[2, 3\]/, (e) => e.rotaryEmbedding(m23)],
  ['rotaryEmbedding dim odd', RangeError, /^rotaryEmbedding: options.dim must be an even integer in \[0, 4\] \(the head size\), got 3/, (e) => e.rotaryEmbedding(x, { dim: 3 })],
  ['rotaryEmbedding dim above D', RangeError, /^rotaryEmbedding: options.dim must be an even integer in \[0, 4\] \(the head size\), got 6/, (e) => e.rotaryEmbedding(x, { dim: 6 })],
  ['rotaryEmbedding base', RangeError, /^rotaryEmbedding: options.base must be a positive finite number, got 0/, (e) => e.rotaryEmbedding(x, { base: 0 })],
  ['rotaryEmbedding positions length', RangeError, /^rotaryEmbedding: options.positions: expected length 1 \(one per row of x \[1, 2, 4\]\), got 3/, (e) => e.rotaryEmbedding(x, { positions: [1, 2, 3] })],
  ['rotaryEmbedding position negative', RangeError, /^rotaryEmbedding: options.positions\[0\] must be an integer in \[0, 2147483648\), got -2/, (e) => e.rotaryEmbedding(x, { positions: [-2] })],
  ['rotaryEmbedding position 2^31', RangeError, /^rotaryEmbedding: options.positions\[0\] must be an integer in \[0, 2147483648\), got 2147483648/, (e) => e.rotaryEmbedding(x, { positions: [2 ** 31] })],
  ['rotaryEmbedding position type', TypeError, /^rotaryEmbedding: options.positions\[0\] must be a number, got a string/, (e) => e.rotaryEmbedding(x, { positions: ['2'] as never })],
  ['rotaryEmbedding position past the tables', RangeError, /^rotaryEmbedding: options.positions\[0\] must be an integer in \[0, 8\) \(the rows of the cos\/sin tables\), got 8/, (e) => e.rotaryEmbedding(x, { positions: [8], cos: cos82, sin: cos82 })],
  ['rotaryEmbedding cos without sin', TypeError, /^rotaryEmbedding: options\.cos and options\.sin must be given together/, (e) => e.rotaryEmbedding(x, { cos: cos82 })],
  ['rotaryEmbedding tables of two shapes', RangeError, /^rotaryEmbedding: options.sin: expected shape \[8, 2\] \(the shape of cos \[8, 2\]\), got \[8, 3\]/, (e) => e.rotaryEmbedding(x, { cos: cos82, sin: cos83 })],
  ['rotaryEmbedding tables not [*, dim / 2]', RangeError, /^rotaryEmbedding: options.cos: expected shape \[\*, 2\] \(\[maxPositions, dim \/ 2\] with dim = 4\), got \[8, 3\]/, (e) => e.rotaryEmbedding(x, { cos: cos83, sin: cos83 })],

  // engine.createKVPool(options) and its sequences
  ['createKVPool options type', TypeError, /^createKVPool: options must be an object \{ kvHeads, headDim, blocks, … \}, got a number/, (e) => e.createKVPool(3 as never)],
  ['createKVPool blocks missing', TypeError, /^createKVPool: options.blocks is required/, (e) => e.createKVPool({ kvHeads: 1, headDim: 4 } as never)],
  ['createKVPool size type', TypeError, /^createKVPool: options.kvHeads must be a number, got a string/, (e) => e.createKVPool({ kvHeads: '1' as never, headDim: 4, blocks: 2 })],
  ['createKVPool blocks 0', RangeError, /^createKVPool: options.blocks must be a positive integer, got 0/, (e) => e.createKVPool({ kvHeads: 1, headDim: 4, blocks: 0 })],
  ['createKVPool size fractional', RangeError, /^createKVPool: options.headDim must be a positive integer, got 4.5/, (e) => e.createKVPool({ kvHeads: 1, headDim: 4.5, blocks: 2 })],
  ['createKVPool past 2^30', RangeError, /^createKVPool: the keys: shape \[65536, 2, 16, 65536\] is too large/, (e) => e.createKVPool({ kvHeads: 2 ** 16, headDim: 2 ** 16, blocks: 2 })],
  ['createKVPool dtype', RangeError, /^createKVPool: options.dtype must be 'float32', 'float16' or 'int8', got 'bf16'/, (e) => e.createKVPool({ kvHeads: 1, headDim: 4, blocks: 2, dtype: 'bf16' as never })],
  ['createKVPool dtype type', TypeError, /^createKVPool: options.dtype must be 'float32', 'float16' or 'int8', got a number/, (e) => e.createKVPool({ kvHeads: 1, headDim: 4, blocks: 2, dtype: 16 as never })],
  ['KVPool disposed, sequence()', Error, /this KV pool has been disposed/, (e) => held(e).poolDisposed.sequence()],
  ['KVSequence.append rank', RangeError, /^KVSequence.append: key: expected a 3-D tensor, got shape \[2, 3\]/, (e) => held(e).seqEmpty.append(m23, m23)],
  ['KVSequence.append shapes', RangeError, /^KVSequence.append: expected key \[n, 1, 4\] and value \[n, 1, 2\] with one n, got \[1, 2, 4\] and \[1, 2, 2\]/, (e) => held(e).seqEmpty.append(nk12, nv12)],
  ['KVSequence.append lengths differ', RangeError, /^KVSequence.append: expected key \[n, 1, 4\] and value \[n, 1, 2\] with one n, got \[1, 1, 4\] and \[2, 1, 2\]/, (e) => held(e).seqEmpty.append(nk, nv2)],
  ['KVSequence.append without free blocks', RangeError, /^KVSequence.append: the KV pool has 1 free blocks of 3, this call needs 2/, (e) => held(e).seq.append(pk4, pv4)],
  ['KVSequence.truncate above its length', RangeError, /^KVSequence.truncate: length must be at most the 3 positions held, got 4/, (e) => held(e).seq.truncate(4)],
  ['KVSequence.truncate fractional', RangeError, /^KVSequence.truncate: length must be a non-negative integer, got 1.5/, (e) => held(e).seq.truncate(1.5)],
  ['KVSequence freed, read', Error, /^KVSequence.read: this sequence has been freed/, (e) => held(e).seqFreed.read()],
  ['KVSequence freed, append', Error, /^KVSequence.append: this sequence has been freed/, (e) => held(e).seqFreed.append(nk, nv)],
  ['KVSequence freed, fork', Error, /^KVSequence.fork: this sequence has been freed/, (e) => held(e).seqFreed.fork()],
  ['KVSequence freed, truncate', Error, /^KVSequence.truncate: this sequence has been freed/, (e) => held(e).seqFreed.truncate(0)],
  ['KVSequence freed, free', Error, /^KVSequence.free: this sequence has been freed/, (e) => held(e).seqFreed.free()],
  ['KVSequence of a disposed pool', Error, /this KV pool has been disposed/, (e) => held(e).seqOrphan.read()],

  // batchAttention(q, k, v, options) over held(e).seq (Hq 2, Hkv 1, D 4, Dv 2)
  ['batchAttention key rank', RangeError, /^batchAttention: key: expected a 3-D tensor, got shape \[2, 3\]/, (e) => e.batchAttention(nq, m23, nv, { sequences: [held(e).seq], queryLens: [1] })],
  ['batchAttention rows differ', RangeError, /^batchAttention: query, key and value must have one row per new token \(T\): query \[1, 2, 4\], key \[2, 1, 4\], value \[2, 1, 2\]/, (e) => e.batchAttention(nq, nk2, nv2, { sequences: [held(e).seq], queryLens: [1] })],
  ['batchAttention key feature size', RangeError, /^batchAttention: key feature size 5 differs from query's 4/, (e) => e.batchAttention(nq, nk15, nv, { sequences: [held(e).seq], queryLens: [1] })],
  ['batchAttention value heads', RangeError, /^batchAttention: value must have key's heads: query \[1, 2, 4\], key \[1, 1, 4\], value \[1, 2, 2\]/, (e) => e.batchAttention(nq, nk, nv12, { sequences: [held(e).seq], queryLens: [1] })],
  ['batchAttention query heads', RangeError, /^batchAttention: query heads \(3\) must be a multiple of key\/value heads \(2\)/, (e) => e.batchAttention(nq3, nk12, nv12, { sequences: [held(e).seq], queryLens: [1] })],
  ['batchAttention not fitting the pool', RangeError, /^batchAttention: key and value must fit the KV pool \[\*, 1, 4\] \/ \[\*, 1, 2\]: query \[1, 2, 4\], key \[1, 1, 4\], value \[1, 1, 3\]/, (e) => e.batchAttention(nq, nk, nv13, { sequences: [held(e).seq], queryLens: [1] })],
  ['batchAttention queryLens count', RangeError, /^batchAttention: options.queryLens: expected one length per sequence \(1\), got 2/, (e) => e.batchAttention(nq, nk, nv, { sequences: [held(e).seq], queryLens: [1, 0] })],
  ['batchAttention queryLens negative', RangeError, /^batchAttention: options.queryLens\[1\] must be a non-negative integer, got -1/, (e) => e.batchAttention(nq, nk, nv, { sequences: [held(e).seq, held(e).seqEmpty], queryLens: [1, -1] })],
  ['batchAttention queryLens fractional', RangeError, /^batchAttention: options.queryLens\[0\] must be a non-negative integer, got 0.5/, (e) => e.batchAttention(nq, nk, nv, { sequences: [held(e).seq], queryLens: [0.5] })],
  ['batchAttention queryLens sum', RangeError, /^batchAttention: options.queryLens sum to 1, but query, key and value have 2 rows/, (e) => e.batchAttention(nq2, nk2, nv2, { sequences: [held(e).seq], queryLens: [1] })],
  ['batchAttention scale', RangeError, /^batchAttention: options.scale must be a finite number >= 0, got -1/, (e) => e.batchAttention(nq, nk, nv, { sequences: [held(e).seq], queryLens: [1], scale: -1 })],
  ['batchAttention softcap', RangeError, /^batchAttention: options.softcap must be a finite number >= 0, got NaN/, (e) => e.batchAttention(nq, nk, nv, { sequences: [held(e).seq], queryLens: [1], softcap: NaN })],
  ['batchAttention window', RangeError, /^batchAttention: options.window.left must be a non-negative integer, got -1/, (e) => e.batchAttention(nq, nk, nv, { sequences: [held(e).seq], queryLens: [1], window: { left: -1 } })],
  ['batchAttention rotary', RangeError, /^batchAttention: options.rotary.dim must be an even integer in \[0, 4\] \(the head size\), got 3/, (e) => e.batchAttention(nq, nk, nv, { sequences: [held(e).seq], queryLens: [1], rotary: { dim: 3 } })],
  ['batchAttention alibiSlopes', RangeError, /^batchAttention: options.alibiSlopes: expected shape \[2\] \(one per query head\), got \[3\]/, (e) => e.batchAttention(nq, nk, nv, { sequences: [held(e).seq], queryLens: [1], alibiSlopes: w3 })],
  ['batchAttention sinks', RangeError, /^batchAttention: options.sinks: expected shape \[2\] \(one per query head\), got \[1\]/, (e) => e.batchAttention(nq, nk, nv, { sequences: [held(e).seq], queryLens: [1], sinks: w1 })],
  ['batchAttention a sequence twice', RangeError, /^batchAttention: options.sequences\[1\] is also options.sequences\[0\]: a sequence may appear once/, (e) => e.batchAttention(nq2, nk2, nv2, { sequences: [held(e).seq, held(e).seq], queryLens: [1, 1] })],
  ['batchAttention without free blocks', RangeError, /^batchAttention: the KV pool has 1 free blocks of 3, this call needs 2/, (e) => e.batchAttention(q42, k41, v41, { sequences: [held(e).seqEmpty], queryLens: [4] })],
  ['batchAttention out', RangeError, /^batchAttention: options.out: expected shape \[1, 2, 2\] \(the shape of the result\), got \[1, 2, 4\]/, (e) => e.batchAttention(nq, nk, nv, { sequences: [held(e).seq], queryLens: [1], out: nq })],
  ['batchAttention options missing', TypeError, /^batchAttention: options must be an object \{ sequences, queryLens, … \}, got undefined/, (e) => e.batchAttention(nq, nk, nv, undefined as never)],
  ['batchAttention sequences type', TypeError, /^batchAttention: options.sequences must be an array of KVSequence, got an object/, (e) => e.batchAttention(nq, nk, nv, { sequences: held(e).seq as never, queryLens: [1] })],
  ['batchAttention a look-alike sequence', TypeError, /^batchAttention: options.sequences\[0\] must be a KVSequence \(pool.sequence\(\)\), got an object/, (e) => e.batchAttention(nq, nk, nv, { sequences: [{ length: 3 }] as never, queryLens: [1] })],
  ['batchAttention sequences of two pools', TypeError, /^batchAttention: options.sequences\[1\] belongs to another KV pool than options.sequences\[0\]/, (e) => e.batchAttention(nq2, nk2, nv2, { sequences: [held(e).seq, held(e).seqOtherPool], queryLens: [1, 1] })],
  ['batchAttention a sequence of another engine', TypeError, /^batchAttention: options.sequences\[0\] belongs to a KV pool of another engine/, (e) => e.batchAttention(nq, nk, nv, { sequences: [foreign(e).seqEmpty], queryLens: [1] })],
  ['batchAttention a freed sequence', Error, /^batchAttention: options.sequences\[0\]: this sequence has been freed/, (e) => e.batchAttention(nq, nk, nv, { sequences: [held(e).seqFreed], queryLens: [1] })],
  ['batchAttention a disposed pool', Error, /this KV pool has been disposed/, (e) => e.batchAttention(nq, nk, nv, { sequences: [held(e).seqOrphan], queryLens: [1] })],

  // engine.createGroupedQueryAttention(params) and the layer's forward (E 8, Hq 2, Hkv 1, D 4)
  ['createGroupedQueryAttention params type', TypeError, /^createGroupedQueryAttention: params must be an object \(GroupedQueryParams\), got null/, (e) => e.createGroupedQueryAttention(null as never)],
  ['createGroupedQueryAttention oProjWeight missing', TypeError, /^createGroupedQueryAttention: params.oProjWeight is required/, (e) => e.createGroupedQueryAttention({ ...gqa, oProjWeight: undefined } as never)],
  ['createGroupedQueryAttention numKvHeads 0', RangeError, /^createGroupedQueryAttention: params.numKvHeads must be a positive integer, got 0/, (e) => e.createGroupedQueryAttention({ ...gqa, numKvHeads: 0 })],
  ['createGroupedQueryAttention headDim 0', RangeError, /^createGroupedQueryAttention: params.headDim must be a positive integer, got 0/, (e) => e.createGroupedQueryAttention({ ...gqa, headDim: 0 })],
  ['createGroupedQueryAttention heads not a multiple', RangeError, /^createGroupedQueryAttention: params.numHeads \(3\) must be a multiple of params.numKvHeads \(2\)/, (e) => e.createGroupedQueryAttention({ ...gqa, numHeads: 3, numKvHeads: 2 })],
  ['createGroupedQueryAttention qProjWeight', RangeError, /^createGroupedQueryAttention: params.qProjWeight: expected shape \[8, 8\] \(\[numHeads · headDim, E\] = \[8, E\]\), got \[4, 8\]/, (e) => e.createGroupedQueryAttention({ ...gqa, qProjWeight: gqa.kProjWeight })],
  ['createGroupedQueryAttention kProjWeight', RangeError, /^createGroupedQueryAttention: params.kProjWeight: expected shape \[4, 8\] \(\[numKvHeads · headDim, E\] with E = 8 from qProjWeight\), got \[8, 8\]/, (e) => e.createGroupedQueryAttention({ ...gqa, kProjWeight: w88 })],
  ['createGroupedQueryAttention oProjWeight', RangeError, /^createGroupedQueryAttention: params.oProjWeight: expected shape \[8, 8\] \(\[E, numHeads · headDim\]\), got \[8, 4\]/, (e) => e.createGroupedQueryAttention({ ...gqa, oProjWeight: w84 })],
  ['createGroupedQueryAttention bias', RangeError, /^createGroupedQueryAttention: params.qProjBias: expected shape \[8\], got \[3\]/, (e) => e.createGroupedQueryAttention({ ...gqa, qProjBias: w3 })],
  ['createGroupedQueryAttention norm weight', RangeError, /^createGroupedQueryAttention: params.qNormWeight: expected shape \[4\], got \[8\]/, (e) => e.createGroupedQueryAttention({ ...gqa, qNormWeight: w8 })],
  ['createGroupedQueryAttention sinks', RangeError, /^createGroupedQueryAttention: params.sinks: expected shape \[2\] \(one per query head\), got \[1\]/, (e) => e.createGroupedQueryAttention({ ...gqa, sinks: w1 })],
  ['createGroupedQueryAttention rotary', RangeError, /^createGroupedQueryAttention: params.rotary.dim must be an even integer in \[0, 4\] \(the head size\), got 5/, (e) => e.createGroupedQueryAttention({ ...gqa, rotary: { dim: 5 } })],
  ['GroupedQueryAttentionLayer.forward x rank', RangeError, /^GroupedQueryAttentionLayer.forward: x: expected a 2-D tensor, got shape \[1, 2, 4\]/, (e) => held(e).gqa.forward(x, { sequences: [held(e).gqaSeq], queryLens: [2] })],
  ['GroupedQueryAttentionLayer.forward x width', RangeError, /^GroupedQueryAttentionLayer.forward: x: expected shape \[\*, 8\] \(\[T, E\] with the layer's E = 8\), got \[2, 9\]/, (e) => held(e).gqa.forward(gx9, { sequences: [held(e).gqaSeq], queryLens: [2] })],
  ['GroupedQueryAttentionLayer.forward queryLens', RangeError, /^GroupedQueryAttentionLayer.forward: options.queryLens sum to 1, but query, key and value have 2 rows/, (e) => held(e).gqa.forward(gx, { sequences: [held(e).gqaSeq], queryLens: [1] })],
  ['GroupedQueryAttentionLayer.forward out', RangeError, /^GroupedQueryAttentionLayer.forward: options.out: expected shape \[2, 8\] \(the shape of the result\), got \[3\]/, (e) => held(e).gqa.forward(gx, { sequences: [held(e).gqaSeq], queryLens: [2], out: held(e).t3 })],
  ['GroupedQueryAttentionLayer disposed', Error, /this grouped-query attention layer has been disposed/, (e) => held(e).gqaDisposed.forward(gx, { sequences: [held(e).gqaSeq], queryLens: [2] })],
];

describe.each(all.map((e) => [e.name, e] as const))('bad input on %s', (_, engine: Engine) => {
  it.each(calls)('%s', (_, type, message, call) => {
    let thrown: unknown;
    try { call(engine); } catch (err) { thrown = err; }
    expect(thrown, 'the call must throw').toBeInstanceOf(type);
    expect((thrown as Error).constructor, 'exactly this error class').toBe(type);
    expect((thrown as Error).message).toMatch(message);
    expectClose(good(engine), expected, 'after the error');
  });

  it('every failed call left each KV cache as it was, and the caches and layer still work', () => {
    expectCachesUnchanged(engine);
    const h = held(engine);
    // the empty caches take a call, which attends as bottom-right causal attention over the new keys
    const r = engine.scaledDotProductAttention(q, k, v, { cache: h.kvEmpty });
    expectClose(r.output, engine.scaledDotProductAttention(q, k, v, { causal: 'bottom-right' }).output, 'attention into the cache');
    expect(h.kvEmpty.length).toBe(5);
    const f = h.layer.forward(x, x, x, { cache: h.lkEmpty });
    expectClose(f.output, engine.selfAttention(x, mha, { causal: true }).output, 'layer into the cache');
    expect(h.lkEmpty.length).toBe(2);
    // and the full ones take what still fits
    h.kvFull.append(random([1, 2, 4, 4], 54), random([1, 2, 4, 6], 55));
    expect(h.kvFull.length).toBe(6);
    for (const c of [h.kvEmpty, h.lkEmpty, h.kvFull]) c.reset();
    h.kvFull.append(k2, v2);
    expectCachesUnchanged(engine);
  });

  it('every failed call left each KV pool\'s sequences and blocks as they were, and they still work', () => {
    expectPoolsUnchanged(engine);
    const h = held(engine);
    // a fork of seq takes a row (copying its shared last block into the pool's free one) as a fresh pool would
    const fork = h.seq.fork();
    const got = engine.batchAttention(nq, nk, nv, { sequences: [fork], queryLens: [1] }).output;
    expectClose(got, poolAttention(engine, { kvHeads: 1, headDim: 4, valueDim: 2, blockSize: 2 }, [{ keys: pk, values: pv }], nq, nk, nv, { queryLens: [1] }), 'batchAttention');
    expect(fork.length).toBe(4);
    fork.free();
    const layerOut = h.gqa.forward(gx, { sequences: [h.gqaSeq], queryLens: [2] }).output;
    expect(layerOut.shape).toEqual([2, 8]);
    expect(h.gqaSeq.length).toBe(2);
    h.gqaSeq.truncate(0);
    expectPoolsUnchanged(engine);
  });
});

// Inputs at the edges of what is allowed: validation must not turn them away.
describe.each(all.map((e) => [e.name, e] as const))('edge input accepted on %s', (_, engine: Engine) => {
  it.each<[string, (e: Engine) => Tensor]>([
    ['zero-size matmul', (e) => e.matmul(random([0, 3], 1), random([3, 2], 2))],
    ['matmul with K = 0 gives zeros', (e) => e.matmul(random([2, 0], 1), random([0, 2], 2))],
    ['softmax of an empty last axis', (e) => e.softmax(random([3, 0], 1))],
    ['maskedSoftmax with validLens as a Tensor', (e) => e.maskedSoftmax(x3, tensor([0, 3], [2]))],
    ['maskedSoftmax without validLens', (e) => e.maskedSoftmax(x3)],
    ['kernelRegression with w = 0 (uniform weights)', (e) => e.kernelRegression(kq, kk, kv, { w: 0 }).output],
    ['kernelRegression with no keys', (e) => e.kernelRegression(kq, random([0], 1), random([0], 2)).output],
    ['kernelRegressionLoss with w = 0 and no keys', (e) => e.kernelRegressionLoss(kq, random([0], 1), random([0], 2), kq, { w: 0 }).output],
    ['attention with scale 0, softcap 0 and a zero window', (e) => e.scaledDotProductAttention(q, k, v, { scale: 0, softcap: 0, window: { left: 0, right: 0 } }).output],
    ['attention with an infinite window side', (e) => e.scaledDotProductAttention(q, k, v, { window: { left: Infinity } }).output],
    ['attention with validLens 0', (e) => e.scaledDotProductAttention(q, k, v, { validLens: [0] }).output],
    ['attention with no keys', (e) => e.scaledDotProductAttention(q, random([1, 2, 0, 4], 1), random([1, 2, 0, 6], 2)).output],
    ['attention with a 5-D mask of leading ones', (e) => e.scaledDotProductAttention(q, k, v, { mask: boolMask([1, 1, 1, 3, 5]) }).output],
    ['attention with 3-D inputs and a 4-D cache', (e) => e.scaledDotProductAttention(q3, k3, v3, { pastKey: random([1, 1, 2, 4], 1), pastValue: random([1, 1, 2, 6], 2) }).output],
    ["multi-head attention with PyTorch's [B·H, Lq, Lk] mask, H = 1", (e) => e.selfAttention(x2, { numHeads: 1, inProjWeight: mha.inProjWeight, outProjWeight: w44 }, { mask: boolMask([2, 2, 2]) }).output],
    ["multi-head attention with a [B·H, 1, Lk] mask", (e) => e.selfAttention(x2, mha, { mask: boolMask([4, 1, 2]) }).output],
    ['positionalEncoding of size 0', (e) => e.positionalEncoding(0, 0)],
    ['an empty KV cache, attended with no new keys', (e) => {
      const cache = e.createKVCache({ batch: 1, kvHeads: 2, headDim: 4, valueDim: 6, capacity: 1 });
      try { return e.scaledDotProductAttention(q, random([1, 2, 0, 4], 1), random([1, 2, 0, 6], 2), { cache }).output; } finally { cache.dispose(); }
    }],
    ['an engine tensor of size 0', (e) => {
      const t = e.tensor([0, 3]);
      const copy = tensor(Float32Array.from(t.data), t.shape);
      t.dispose();
      return copy;
    }],
    ['engine tensors of another engine, as the input and as options.out', (e) => {
      const a = otherWasm.tensor([2, 3]), out = otherWasm.tensor([2, 3]);
      a.data.set(m23.data);
      expect(e.softmax(a, { out })).toBe(out);
      const copy = tensor(Float32Array.from(out.data), out.shape);
      a.dispose();
      out.dispose();
      return copy;
    }],
  ])('%s', (_, call) => {
    const out = call(engine);
    expect(out.data).toBeInstanceOf(Float32Array);
    expect(out.data.every((x) => Number.isFinite(x))).toBe(true);
  });

  it("reads multi-head attention's [B·H, Lq, Lk] mask per batch and head, also when H = 1", () => {
    const p1 = { numHeads: 1, inProjWeight: mha.inProjWeight!, outProjWeight: w44 };
    const m = [1, 0, 1, 1, 1, 1, 0, 1];
    const flat = engine.selfAttention(x2, p1, { mask: mask(m, [2, 2, 2]), needWeights: true }).weights!;
    const full = engine.selfAttention(x2, p1, { mask: mask(m, [2, 1, 2, 2]), needWeights: true }).weights!;
    expectClose(flat, full);
    expect(flat.data[1]).toBe(0);
    expect(flat.data[6]).toBe(0);
  });
});

describe('the wasm engine after failed calls', () => {
  // calls that fail inside the wasm wrapper, after it has copied some inputs in: the largest buffer
  // (the [40000, 40000] output or weights) is more than 4 GiB, so allocating it throws
  const huge = 40_000;
  const column = random([huge, 1], 1), row = random([1, huge], 2), empty = tensor([], [1, 1, huge, 0]), keyMask = boolMask([huge]);
  const inArena: Call[] = [
    ['matmul output over 4 GiB', RangeError, /memory|bytes/, (e) => e.matmul(column, row)],
    ['attention weights over 4 GiB', RangeError, /memory|bytes/,
      (e) => e.scaledDotProductAttention(empty, empty, empty, { mask: keyMask, validLens: [huge], returnWeights: true })],
    // held blocks: refused before the memory grows, and a cache whose keys fit but values do not holds neither
    ['engine tensor over 4 GiB', RangeError, /memory|bytes/, (e) => e.tensor([2 ** 20, 2 ** 11])],
    ['KV cache values over 4 GiB', RangeError, /memory|bytes/, (e) => e.createKVCache({ batch: 1, kvHeads: 1, headDim: 4, valueDim: 2 ** 30, capacity: 1 })],
  ];

  it.each(inArena)('%s throws a RangeError and leaves the engine working', (_, type, message, call) => {
    expect(() => call(wasm)).toThrow(type);
    expect(() => call(wasm)).toThrow(message);
    expectClose(good(wasm), expected, 'after the error');
  });

  it('keeps no memory from 10,000 failed calls of every kind, and still computes the same', () => {
    const failing = [...calls, ...inArena].map(([, , , call]) => call);
    const tryAll = () => { for (const call of failing) try { call(wasm); } catch { /* expected */ } };
    tryAll(); // the first round may grow the memory to its high-water mark
    expectClose(good(wasm), expected, 'after one round');
    const before = wasm.info.memoryBytes;
    const { stackTraceLimit } = Error;
    Error.stackTraceLimit = 0; // capturing stacks would be most of the time of a million throws
    try {
      for (let i = 0; i < 10_000; i++) {
        tryAll();
        // a leak would show as growth long before the end; stop at the first sign of it
        if (i % 1000 === 999) expect(wasm.info.memoryBytes, `wasm memory after ${i + 1} rounds`).toBe(before);
      }
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
    expect(wasm.info.memoryBytes).toBe(before);
    expectClose(good(wasm), expected, 'after 10,000 rounds');
    expectCachesUnchanged(wasm);
    expectPoolsUnchanged(wasm);
  });
});

describe('createEngine({ maxMemoryBytes })', () => {
  const MiB = 2 ** 20;
  const tooBig = random([300_000], 1); // 1.2 MB of input alone
  const fits = random([200_000], 2); // 0.8 MB: in place, with room for the static data

  it.each([1, 2])('with %i thread(s): a call over the limit throws a RangeError naming it, and the engine stays usable', async (threads) => {
    const e = await createEngine({ maxMemoryBytes: MiB, threads });
    try {
      const before = e.info.memoryBytes;
      // the inputs alone do not fit: it throws before growing the memory at all
      expect(() => e.softmax(tooBig)).toThrow(RangeError);
      expect(() => e.softmax(tooBig)).toThrow(/^softmax: x \[300000\]: needs \d+ bytes of wasm memory \(a buffer of 1200000 bytes .*\), over the engine's limit of 1048576 bytes \(createEngine\(\{ maxMemoryBytes \}\)\)/);
      expect(e.info.memoryBytes).toBe(before);
      // the inputs fit, the [20000, 20] output does not: the memory stays within the limit
      expect(() => e.matmul(random([20_000, 1], 3), random([1, 20], 4))).toThrow(RangeError);
      expect(e.info.memoryBytes).toBeLessThanOrEqual(MiB);
      // a call up to the limit runs, and right
      expectClose(e.softmax(fits), all[0].softmax(fits));
      expect(e.info.memoryBytes).toBeLessThanOrEqual(MiB);
      expectClose(good(e), expected, 'after the errors');
      const held = e.info.memoryBytes;
      for (let i = 0; i < 1000; i++) try { e.softmax(tooBig); } catch { /* expected */ }
      expect(e.info.memoryBytes).toBe(held);
    } finally {
      e.dispose();
    }
  });

  it('rejects a limit below one page or above the 4 GiB wasm32 ceiling, and a limit that is not a number', async () => {
    for (const maxMemoryBytes of [1000, -1, NaN, 5 * 2 ** 30]) {
      await expect(createEngine({ maxMemoryBytes }), String(maxMemoryBytes)).rejects.toThrow(/options.maxMemoryBytes must be a number in \[65536, 4294901760\]/);
    }
    await expect(createEngine({ maxMemoryBytes: '1MB' as never })).rejects.toThrow(TypeError);
  });

  it('rounds a limit down to whole pages, so memory never passes it', async () => {
    const e = await createEngine({ maxMemoryBytes: 200_000 });
    try {
      for (let n = 1000; n < 60_000; n += 7000) try { e.softmax(random([n], n)); } catch { /* over the limit */ }
      expect(e.info.memoryBytes).toBeLessThanOrEqual(200_000);
    } finally {
      e.dispose();
    }
  });
});

describe('tensor and mask constructors', () => {
  it('copy, check sizes and convert booleans', () => {
    const src = [1, 2, 3, 4];
    const t = tensor(src, [2, 2]);
    src[0] = 9;
    expect(t.data[0]).toBe(1);
    expect(() => tensor([1, 2, 3], [2, 2])).toThrow(RangeError);
    expect(() => tensor([1], [-1] as never)).toThrow(RangeError);
    expect(() => tensor(5 as never, [1])).toThrow(TypeError);
    expect(mask([true, false], [2]).data).toEqual(Uint8Array.from([1, 0]));
    expect(mask(Float32Array.from([0, -Infinity]), [2]).data).toBeInstanceOf(Float32Array);
    expect(mask([0, 1, 1], [3]).data).toEqual(Uint8Array.from([0, 1, 1]));
    expect(mask([0, -Infinity, 0.5], [3]).data).toEqual(Float32Array.from([0, -Infinity, 0.5]));
    expect(() => mask([true, 2] as never, [2])).toThrow(TypeError);
    expect(() => mask(['1'] as never, [1])).toThrow(TypeError);
  });
});

describe('wasm engine lifecycle', () => {
  it('validates options, reports its build and refuses calls after dispose (twice is harmless)', async () => {
    await expect(createEngine({ simd: 'fast' as never })).rejects.toThrow(RangeError); // the builds: engineBuilds.test.ts
    await expect(createEngine({ threads: 0 })).rejects.toThrow(RangeError);
    await expect(createEngine({ wasm: 42 as never })).rejects.toThrow(TypeError);
    const e = await createEngine();
    expect(e.info).toMatchObject({ simd: runtimeHasRelaxedSimd() ? 'relaxed' : 'simd', threads: 1 });
    expect(e.info.memoryBytes).toBeGreaterThan(0);
    e.dispose();
    e.dispose();
    expect(() => e.softmax(random([2, 2], 1))).toThrow(/disposed/);
    expect(e.info.memoryBytes).toBe(0);
  });

  it('refuses serving objects after dispose, and the calls of those made before', async () => {
    const e = await createEngine();
    const layer = e.createMultiHeadAttention(mha), cache = e.createKVCache({ batch: 1, kvHeads: 2, headDim: 4, valueDim: 6, capacity: 8 }), t = e.tensor([2, 3]);
    e.dispose();
    for (const call of [
      () => e.createKVCache({ batch: 1, kvHeads: 1, headDim: 4, capacity: 8 }), () => e.createMultiHeadAttention(mha), () => e.tensor([2]),
      () => layer.forward(x, x, x), () => e.scaledDotProductAttention(q, k, v, { cache }), () => e.softmax(t),
    ]) {
      expect(call).toThrow(Error);
      expect(call).toThrow(/this engine has been disposed/);
    }
    // disposing them afterwards is harmless
    layer.dispose();
    cache.dispose();
    t.dispose();
  });

  it('loads from bytes and from a compiled module', async () => {
    const { readFile } = await import('node:fs/promises');
    const bytes = await readFile(new URL('../build/qkv.wasm', import.meta.url));
    const fromBytes = await createEngine({ wasm: new Uint8Array(bytes) });
    const fromModule = await createEngine({ wasm: await WebAssembly.compile(bytes) });
    expectClose(good(fromBytes), expected);
    expectClose(good(fromModule), expected);
  });

  it('shares its enum codes with the kernels (must match on both sides)', async () => {
    const plan = await import('../src/core/scaledDotProductAttentionPlan.js');
    const { loadKernels } = await import('../src/wasm/loader.js');
    const kernels = await loadKernels();
    for (const name of ['CAUSAL_NONE', 'CAUSAL_TOP_LEFT', 'CAUSAL_BOTTOM_RIGHT', 'MASK_NONE', 'MASK_BOOLEAN', 'MASK_ADDITIVE'] as const) {
      expect(kernels[name].value, name).toBe(plan[name]);
    }
  });
});

describe('objects of a disposed wasm engine', () => {
  it('a cache, a layer and an engine tensor throw once their engine is disposed', async () => {
    const { createEngine } = await import('../src/index.js');
    const engine = await createEngine();
    const cache = engine.createKVCache({ batch: 1, kvHeads: 1, headDim: 4, capacity: 4 });
    const layer = engine.createMultiHeadAttention(multiHeadParams(4, 1, 40));
    const t = engine.tensor([2]);
    engine.dispose();
    expect(() => cache.append(random([1, 1, 1, 4], 1), random([1, 1, 1, 4], 2))).toThrow(/disposed/);
    expect(() => cache.read()).toThrow(/disposed/);
    expect(() => layer.forward(random([1, 1, 4], 3), random([1, 1, 4], 3), random([1, 1, 4], 3))).toThrow(/disposed/);
    expect(() => t.data).toThrow(/disposed/);
  });
});
