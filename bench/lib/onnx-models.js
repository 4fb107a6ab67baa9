// Tiny ONNX models for the onnxruntime-web peer, written as protobuf bytes by hand so that the bench
// needs no model files and no protobuf library. Only the fields these models use are encoded; the
// field numbers are those of onnx/onnx.proto:
//
//   ModelProto       ir_version 1, producer_name 2, graph 7, opset_import 8
//   OperatorSetId    domain 1, version 2
//   GraphProto       node 1, name 2, initializer 5, input 11, output 12
//   NodeProto        input 1, output 2, name 3, op_type 4, attribute 5, domain 7
//   AttributeProto   name 1, f 2, i 3, ints 8, type 20 (FLOAT = 1, INT = 2, INTS = 7)
//   TensorProto      dims 1, data_type 2 (FLOAT = 1, UINT8 = 2, INT32 = 6, INT64 = 7), name 8,
//                    raw_data 9 (little-endian), external_data 13 (StringStringEntryProto: key 1,
//                    value 2), data_location 14 (EXTERNAL = 1)
//   ValueInfoProto   name 1, type 2
//   TypeProto        tensor_type 1 -> { elem_type 1, shape 2 -> { dim 1 -> { dim_value 1 | dim_param 2 } } }
//
// Dimensions given as strings are symbolic (dim_param), so one session serves every shape.

const IR_VERSION = 8;
const OPSET = 17;
const MS_DOMAIN = 'com.microsoft';
const FLOAT = 1;
const INT32 = 6;
/** TensorProto.DataType of the element types the models use. */
const DATA_TYPES = { float32: FLOAT, uint8: 2, int32: INT32, int64: 7 };

// ---- protobuf wire format -------------------------------------------------------------------

const text = new TextEncoder();

/** Varint bytes of a non-negative or negative integer (negatives as 64-bit two's complement, as int64 requires). */
function varint(value) {
  let v = BigInt.asUintN(64, BigInt(value));
  const out = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  return Uint8Array.from(out);
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

const key = (field, wireType) => varint((field << 3) | wireType);
/** Wire type 0: int32, int64, enum. */
const int = (field, value) => concat([key(field, 0), varint(value)]);
/** Wire type 2: bytes, strings and embedded messages. */
const bytes = (field, data) => concat([key(field, 2), varint(data.length), data]);
const string = (field, s) => bytes(field, text.encode(s));
const message = (field, parts) => bytes(field, concat(parts));
/** Wire type 5: float. */
function float32(field, value) {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setFloat32(0, value, true);
  return concat([key(field, 5), b]);
}

// ---- ONNX messages --------------------------------------------------------------------------

/** AttributeProto for an int, a list of ints, or a float given as { float: x }. */
function attribute(name, value) {
  if (Array.isArray(value)) return [string(1, name), ...value.map((v) => int(8, v)), int(20, 7)];
  if (Number.isInteger(value)) return [string(1, name), int(3, value), int(20, 2)];
  return [string(1, name), float32(2, value.float), int(20, 1)];
}

function node({ op, inputs, outputs, domain = '', attributes = {} }) {
  return [
    ...inputs.map((s) => string(1, s)),
    ...outputs.map((s) => string(2, s)),
    string(3, `${op}_${outputs[0]}`),
    string(4, op),
    ...Object.entries(attributes).map(([name, v]) => message(5, attribute(name, v))),
    ...(domain ? [string(7, domain)] : []),
  ];
}

/**
 * A float32 tensor [dims] whose dims are numbers (fixed) or strings (symbolic); { int32: dims } or
 * { int64: dims } for integers.
 */
function valueInfo(name, dims) {
  const [elementType, list] = Array.isArray(dims) ? ['float32', dims] : Object.entries(dims)[0];
  const type = DATA_TYPES[elementType];
  const dim = (d) => message(1, [typeof d === 'string' ? string(2, d) : int(1, d)]);
  const shape = message(2, list.map(dim));
  return [string(1, name), message(2, [message(1, [int(1, type), shape])])];
}

/**
 * An initializer: float32 `data` as raw_data in little-endian order; or `{ type, raw }` (any element
 * type, raw_data as given); or `{ type, external: { location, offset, length } }`, data kept in a
 * file beside the model (ONNX's external data, which models past protobuf's 2 GB use).
 */
function initializer(name, dims, data, { type, raw, external } = {}) {
  if (external) {
    const entry = (k, v) => message(13, [string(1, k), string(2, String(v))]);
    return [...dims.map((d) => int(1, d)), int(2, DATA_TYPES[type]), string(8, name),
      entry('location', external.location), entry('offset', external.offset), entry('length', external.length), int(14, 1)];
  }
  if (raw) return [...dims.map((d) => int(1, d)), int(2, DATA_TYPES[type]), string(8, name), bytes(9, raw)];
  const f32 = Float32Array.from(data);
  const le = new Uint8Array(f32.length * 4);
  const view = new DataView(le.buffer);
  f32.forEach((x, i) => view.setFloat32(i * 4, x, true));
  return [...dims.map((d) => int(1, d)), int(2, FLOAT), string(8, name), bytes(9, le)];
}

/**
 * A serialized ModelProto. `inputs` and `outputs` map names to dims; `initializers` map names to
 * { dims, data } or { dims, type, raw | external } (see initializer); `nodes` as for node(). Opset 17
 * for the default domain, 1 for com.microsoft.
 */
export function model({ name, nodes, inputs, outputs, initializers = {} }) {
  const graph = [
    ...nodes.map((n) => message(1, node(n))),
    string(2, name),
    ...Object.entries(initializers).map(([n, t]) => message(5, initializer(n, t.dims, t.data, t))),
    ...Object.entries(inputs).map(([n, dims]) => message(11, valueInfo(n, dims))),
    ...Object.entries(outputs).map(([n, dims]) => message(12, valueInfo(n, dims))),
  ];
  return concat([
    int(1, IR_VERSION),
    string(2, 'qkv bench'),
    message(7, graph),
    message(8, [string(1, ''), int(2, OPSET)]),
    message(8, [string(1, MS_DOMAIN), int(2, 1)]),
  ]);
}

// ---- the models the peer runs ---------------------------------------------------------------

/** Y = A B, A [M, K], B [K, N]. */
export const matmulModel = () => model({
  name: 'matmul',
  nodes: [{ op: 'MatMul', inputs: ['A', 'B'], outputs: ['Y'] }],
  inputs: { A: ['M', 'K'], B: ['K', 'N'] },
  outputs: { Y: ['M', 'N'] },
});

/** Y = A Bᵀ, A [M, K], B [N, K]: Gemm with transB = 1. */
export const gemmTransBModel = () => model({
  name: 'gemm_transb',
  nodes: [{ op: 'Gemm', inputs: ['A', 'B'], outputs: ['Y'], attributes: { transB: 1 } }],
  inputs: { A: ['M', 'K'], B: ['N', 'K'] },
  outputs: { Y: ['M', 'N'] },
});

/** Y = softmax(X) along the last axis, X [R, C]. */
export const softmaxModel = () => model({
  name: 'softmax',
  nodes: [{ op: 'Softmax', inputs: ['X'], outputs: ['Y'], attributes: { axis: -1 } }],
  inputs: { X: ['R', 'C'] },
  outputs: { Y: ['R', 'C'] },
});

/**
 * com.microsoft.MultiHeadAttention on unprojected query/key/value [B, L, H·d] (heads interleaved
 * along the last axis): softmax(q kᵀ / sqrt(d)) v per head; `causal` sets unidirectional = 1.
 */
export const multiHeadAttentionModel = ({ numHeads, hidden, causal = false }) => model({
  name: 'mha',
  nodes: [{
    op: 'MultiHeadAttention', domain: MS_DOMAIN, inputs: ['query', 'key', 'value'], outputs: ['output'],
    attributes: { num_heads: numHeads, ...(causal ? { unidirectional: 1 } : {}) },
  }],
  inputs: { query: ['B', 'Lq', hidden], key: ['B', 'Lk', hidden], value: ['B', 'Lk', hidden] },
  outputs: { output: ['B', 'Lq', hidden] },
});

/**
 * The unfused graph on [B, H, L, d]: softmax(Q Kᵀ · scale) V as Transpose, MatMul, Mul, Softmax,
 * MatMul (ORT's optimizer may fold the transpose and the scale into a FusedMatMul).
 */
export const unfusedAttentionModel = ({ headSize }) => model({
  name: 'sdpa',
  nodes: [
    { op: 'Transpose', inputs: ['K'], outputs: ['Kt'], attributes: { perm: [0, 1, 3, 2] } },
    { op: 'MatMul', inputs: ['Q', 'Kt'], outputs: ['S'] },
    { op: 'Mul', inputs: ['S', 'scale'], outputs: ['Ss'] },
    { op: 'Softmax', inputs: ['Ss'], outputs: ['P'], attributes: { axis: -1 } },
    { op: 'MatMul', inputs: ['P', 'V'], outputs: ['O'] },
  ],
  initializers: { scale: { dims: [], data: [1 / Math.sqrt(headSize)] } },
  inputs: { Q: ['B', 'H', 'Lq', headSize], K: ['B', 'H', 'Lk', headSize], V: ['B', 'H', 'Lk', headSize] },
  outputs: { O: ['B', 'H', 'Lq', headSize] },
});

/**
 * Multi-head self-attention with projections, PyTorch nn.MultiheadAttention without biases:
 * x [B, L, E] -> MatMul by Wqᵀ, Wkᵀ, Wvᵀ -> MultiHeadAttention -> MatMul by Woᵀ. The weights are
 * initializers given already transposed ([E, E], x W layout).
 */
export const projectedAttentionModel = ({ numHeads, embed, WqT, WkT, WvT, WoT }) => model({
  name: 'mha_projected',
  nodes: [
    { op: 'MatMul', inputs: ['x', 'WqT'], outputs: ['q'] },
    { op: 'MatMul', inputs: ['x', 'WkT'], outputs: ['k'] },
    { op: 'MatMul', inputs: ['x', 'WvT'], outputs: ['v'] },
    { op: 'MultiHeadAttention', domain: MS_DOMAIN, inputs: ['q', 'k', 'v'], outputs: ['o'], attributes: { num_heads: numHeads } },
    { op: 'MatMul', inputs: ['o', 'WoT'], outputs: ['y'] },
  ],
  initializers: Object.fromEntries(Object.entries({ WqT, WkT, WvT, WoT }).map(([n, data]) => [n, { dims: [embed, embed], data }])),
  inputs: { x: ['B', 'L', embed] },
  outputs: { y: ['B', 'L', embed] },
});

/**
 * com.microsoft.GroupQueryAttention, the serving peer: query [B, S, Hq·d], key/value [B, S, Hkv·d],
 * past_key/past_value [B, Hkv, P, d] (BNSH, padded to the longest past), seqlens_k [B] (int32: each
 * sequence's total length − 1), total_sequence_length (int32 scalar), cos_cache/sin_cache [maxPos, d/2]
 * for do_rotary. Outputs the attention and present_key/present_value (past and new).
 */
const gqaInputs = (d) => ({
  query: ['B', 'S', 'HQD'], key: ['B', 'S', 'HKD'], value: ['B', 'S', 'HKD'],
  past_key: ['B', 'HK', 'P', d], past_value: ['B', 'HK', 'P', d],
  seqlens_k: { int32: ['B'] }, total_sequence_length: { int32: [] }, cos_cache: ['MP', d / 2], sin_cache: ['MP', d / 2],
});
const gqaNode = (numHeads, kvHeads, query, key, value, output) => ({
  op: 'GroupQueryAttention', domain: MS_DOMAIN,
  inputs: [query, key, value, 'past_key', 'past_value', 'seqlens_k', 'total_sequence_length', 'cos_cache', 'sin_cache'],
  outputs: [output, 'present_key', 'present_value'],
  attributes: { num_heads: numHeads, kv_num_heads: kvHeads, do_rotary: 1 },
});
const gqaOutputs = (d) => ({ present_key: ['B', 'HK', 'T', d], present_value: ['B', 'HK', 'T', d] });

export const groupQueryAttentionModel = ({ numHeads, kvHeads, headSize }) => model({
  name: 'gqa',
  nodes: [gqaNode(numHeads, kvHeads, 'query', 'key', 'value', 'output')],
  inputs: gqaInputs(headSize),
  outputs: { output: ['B', 'S', 'HQD'], ...gqaOutputs(headSize) },
});

/**
 * The attention block around GroupQueryAttention: x [B, S, E] -> MatMul by Wqᵀ, Wkᵀ, Wvᵀ -> GQA ->
 * MatMul by Woᵀ, weights as initializers given already transposed (x W layout).
 */
export const groupQueryBlockModel = ({ numHeads, kvHeads, headSize, embed, WqT, WkT, WvT, WoT }) => {
  const { query: _q, key: _k, value: _v, ...rest } = gqaInputs(headSize);
  return model({
    name: 'gqa_block',
    nodes: [
      { op: 'MatMul', inputs: ['x', 'WqT'], outputs: ['q'] },
      { op: 'MatMul', inputs: ['x', 'WkT'], outputs: ['k'] },
      { op: 'MatMul', inputs: ['x', 'WvT'], outputs: ['v'] },
      gqaNode(numHeads, kvHeads, 'q', 'k', 'v', 'o'),
      { op: 'MatMul', inputs: ['o', 'WoT'], outputs: ['y'] },
    ],
    initializers: {
      WqT: { dims: [embed, numHeads * headSize], data: WqT }, WkT: { dims: [embed, kvHeads * headSize], data: WkT },
      WvT: { dims: [embed, kvHeads * headSize], data: WvT }, WoT: { dims: [numHeads * headSize, embed], data: WoT },
    },
    inputs: { x: ['B', 'S', embed], ...rest },
    outputs: { y: ['B', 'S', embed], ...gqaOutputs(headSize) },
  });
};
