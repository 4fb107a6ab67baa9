// An ONNX decoder of a random checkpoint's weights (randomCheckpoint.js), laid out as transformers.js'
// exports of Llama and Qwen2 (onnxruntime-genai's model builder, as the onnx-community models are
// made), for onnxruntime-web; written in JavaScript with bench/lib/onnx-models.js' protobuf encoder, so
// the bench needs no Python. Weights go to model.onnx_data beside model.onnx (ONNX external data:
// the float32 0.5B model is past protobuf's 2 GB).
//
//   inputs   input_ids int64 [batch, seq], attention_mask int64 [batch, total],
//            past_key_values.N.key / .value float32 [batch, kv heads, past, head dim]
//   outputs  logits [batch, seq, vocab] (every position, as the exports give them),
//            present.N.key / .value [batch, kv heads, total, head dim]: fed back as the next
//            step's past, as transformers.js does
//
//   seqlens_k = int32(ReduceSum(attention_mask, 1) - 1), total_sequence_length = int32(shape[1])
//   h = Gather(embed_tokens, input_ids)
//   per layer: x = SimplifiedLayerNormalization(h), or SkipSimplifiedLayerNormalization of the
//              previous MLP's output and residual (com.microsoft: the add and the norm in one)
//              q, k, v = x Wq (+ bq), x Wk (+ bk), x Wv (+ bv)         (q/k/v biases: Qwen2)
//              a, present = GroupQueryAttention(q, k, v, past, seqlens_k, total, cos, sin)
//                           (com.microsoft, do_rotary, rotate-half rope from cos/sin caches)
//              x = SkipSimplifiedLayerNormalization(a Wo, residual)
//              h = (silu(x Wg) * (x Wu)) Wd
//   logits = SkipSimplifiedLayerNormalization(h, residual) W_lm
//
// Formats: 'f32', every product a MatMul by a float32 initializer [in, out] (the LM head a copy of
// the tied embedding, transposed, as the exports keep it); 'q4', every MatMul a com.microsoft
// MatMulNBits (4 bits, block 32, symmetric: a float32 scale per 32 and no zero points, as
// transformers.js' quantize script makes its q4 models), the embedding's Gather in float32.
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { model } from './onnx-models.js';
import { readRandomCheckpoint } from './randomCheckpoint.js';

export const ONNX_FORMATS = ['f32', 'q4'];
const MS = 'com.microsoft';

/** [rows, cols] -> [cols, rows]. */
function transpose(data, rows, cols) {
  const out = new Float32Array(data.length);
  for (let i = 0; i < rows; i++) {
    const row = i * cols;
    for (let j = 0; j < cols; j++) out[j * rows + i] = data[row + j];
  }
  return out;
}

/**
 * MatMulNBits' symmetric 4-bit blocks of W [N, K] (nn.Linear's [out, in]): per row and block of 32,
 * scale = m / -8 with m the element of largest magnitude, q = clamp(round(w / scale) + 8, 0, 15)
 * (onnxruntime's quantizer, MlasQuantizeBlockwise); B [N, K/32, 16] with element 2j in byte j's low
 * nibble and 2j + 1 in its high one; scales [N, K/32] float32.
 */
export function quantizeNBits(w, N, K) {
  const blocks = K / 32;
  const B = new Uint8Array(N * blocks * 16), scales = new Float32Array(N * blocks);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < blocks; b++) {
      const at = n * K + b * 32;
      let amax = 0, max = 0;
      for (let j = 0; j < 32; j++) {
        const v = w[at + j];
        if (Math.abs(v) > amax) { amax = Math.abs(v); max = v; }
      }
      const scale = Math.fround(max / -8), inv = scale === 0 ? 0 : 1 / scale;
      scales[n * blocks + b] = scale;
      const out = (n * blocks + b) * 16;
      for (let j = 0; j < 16; j++) {
        const lo = Math.min(15, Math.max(0, Math.round(w[at + 2 * j] * inv) + 8));
        const hi = Math.min(15, Math.max(0, Math.round(w[at + 2 * j + 1] * inv) + 8));
        B[out + j] = lo | (hi << 4);
      }
    }
  }
  return { B, scales };
}

/**
 * Writes model.onnx and model.onnx_data into `out`: the decoder of the float32 checkpoint in `dir`,
 * its products as `format` ('f32' or 'q4'). Returns { weightBytes }: the bytes of model.onnx_data.
 */
export function writeOnnxDecoder(out, dir, { format = 'f32' } = {}) {
  if (!ONNX_FORMATS.includes(format)) throw new Error(`ONNX format ${format}: use ${ONNX_FORMATS.join(', ')}`);
  const ckpt = readRandomCheckpoint(dir);
  mkdirSync(out, { recursive: true });
  const fd = openSync(join(out, 'model.onnx_data'), 'w');
  try {
    const c = ckpt.config;
    const arch = c.architectures[0];
    if (arch !== 'LlamaForCausalLM' && arch !== 'Qwen2ForCausalLM') throw new Error(`${arch}: the ONNX writer knows LlamaForCausalLM and Qwen2ForCausalLM`);
    const E = c.hidden_size, V = c.vocab_size, L = c.num_hidden_layers;
    const Hq = c.num_attention_heads, Hkv = c.num_key_value_heads ?? Hq, D = c.head_dim ?? E / Hq;
    const eps = { float: c.rms_norm_eps };
    let offset = 0;
    const initializers = {};
    /** Appends raw bytes to model.onnx_data (4 KiB-aligned, as onnx's external data writer may) as initializer `name`. */
    const external = (name, dims, type, raw) => {
      const pad = (4096 - (offset % 4096)) % 4096;
      if (pad) writeSync(fd, Buffer.alloc(pad));
      offset += pad;
      for (let done = 0; done < raw.length; done += 1 << 30) writeSync(fd, raw.subarray(done, Math.min(raw.length, done + (1 << 30))));
      initializers[name] = { dims, type, external: { location: 'model.onnx_data', offset, length: raw.length } };
      offset += raw.length;
    };
    const f32 = (name, dims, data) => external(name, dims, 'float32', new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    const int64 = (name, dims, values) => {
      const raw = new Uint8Array(8 * values.length);
      values.forEach((v, i) => new DataView(raw.buffer).setBigInt64(8 * i, BigInt(v), true));
      initializers[name] = { dims, type: 'int64', raw };
    };

    const nodes = [];
    /** y = x Wᵀ for nn.Linear's W [N, K] from the checkpoint: a MatMul or a MatMulNBits. */
    const linear = (x, y, weightName, W = ckpt.read(weightName)) => {
      const [N, K] = ckpt.tensors.get(weightName);
      if (format === 'f32') {
        f32(`${weightName}.T`, [K, N], transpose(W, N, K));
        nodes.push({ op: 'MatMul', inputs: [x, `${weightName}.T`], outputs: [y] });
      } else {
        const { B, scales } = quantizeNBits(W, N, K);
        external(`${weightName}.q4`, [N, K / 32, 16], 'uint8', B);
        f32(`${weightName}.scales`, [N, K / 32], scales);
        nodes.push({ op: 'MatMulNBits', domain: MS, inputs: [x, `${weightName}.q4`, `${weightName}.scales`], outputs: [y], attributes: { K, N, bits: 4, block_size: 32 } });
      }
    };
    const weight = (name) => { f32(name, ckpt.tensors.get(name), ckpt.read(name)); return name; };

    // attention's bookkeeping from the mask, as the model builder's graphs compute it
    int64('axis1', [1], [1]);
    int64('one', [], [1]);
    int64('index1', [], [1]);
    nodes.push(
      { op: 'ReduceSum', inputs: ['attention_mask', 'axis1'], outputs: ['mask_sum'], attributes: { keepdims: 0 } },
      { op: 'Sub', inputs: ['mask_sum', 'one'], outputs: ['seqlens_k_64'] },
      { op: 'Cast', inputs: ['seqlens_k_64'], outputs: ['seqlens_k'], attributes: { to: 6 } },
      { op: 'Shape', inputs: ['attention_mask'], outputs: ['mask_shape'] },
      { op: 'Gather', inputs: ['mask_shape', 'index1'], outputs: ['total_64'], attributes: { axis: 0 } },
      { op: 'Cast', inputs: ['total_64'], outputs: ['total_sequence_length'], attributes: { to: 6 } },
    );
    // rotary caches [max positions, D/2]: cos and sin of position · θ^(-2i/D)
    const P = c.max_position_embeddings;
    const cos = new Float32Array(P * (D / 2)), sin = new Float32Array(P * (D / 2));
    for (let p = 0; p < P; p++) {
      for (let i = 0; i < D / 2; i++) {
        const angle = p * c.rope_theta ** ((-2 * i) / D);
        cos[p * (D / 2) + i] = Math.cos(angle);
        sin[p * (D / 2) + i] = Math.sin(angle);
      }
    }
    f32('cos_cache', [P, D / 2], cos);
    f32('sin_cache', [P, D / 2], sin);

    const embedding = ckpt.read('model.embed_tokens.weight');
    f32('model.embed_tokens.weight', [V, E], embedding);
    nodes.push({ op: 'Gather', inputs: ['model.embed_tokens.weight', 'input_ids'], outputs: ['h0'], attributes: { axis: 0 } });

    const inputs = { input_ids: { int64: ['batch', 'seq'] }, attention_mask: { int64: ['batch', 'total'] } };
    const outputs = { logits: ['batch', 'seq', V] };
    let mlpOut = null, residual = 'h0';
    for (let l = 0; l < L; l++) {
      const p = `model.layers.${l}.`;
      const x = `l${l}.x`;
      if (mlpOut === null) {
        nodes.push({ op: 'SimplifiedLayerNormalization', inputs: [residual, weight(`${p}input_layernorm.weight`)], outputs: [x], attributes: { axis: -1, epsilon: eps, stash_type: 1 } });
      } else {
        nodes.push({ op: 'SkipSimplifiedLayerNormalization', domain: MS, inputs: [mlpOut, residual, weight(`${p}input_layernorm.weight`)], outputs: [x, '', '', `l${l}.res`], attributes: { epsilon: eps } });
        residual = `l${l}.res`;
      }
      for (const t of ['q', 'k', 'v']) {
        const bias = ckpt.tensors.has(`${p}self_attn.${t}_proj.bias`);
        linear(x, bias ? `l${l}.${t}0` : `l${l}.${t}`, `${p}self_attn.${t}_proj.weight`);
        if (bias) nodes.push({ op: 'Add', inputs: [`l${l}.${t}0`, weight(`${p}self_attn.${t}_proj.bias`)], outputs: [`l${l}.${t}`] });
      }
      const past = `past_key_values.${l}`, present = `present.${l}`;
      inputs[`${past}.key`] = ['batch', Hkv, 'past', D];
      inputs[`${past}.value`] = ['batch', Hkv, 'past', D];
      outputs[`${present}.key`] = ['batch', Hkv, 'total', D];
      outputs[`${present}.value`] = ['batch', Hkv, 'total', D];
      nodes.push({
        op: 'GroupQueryAttention', domain: MS,
        inputs: [`l${l}.q`, `l${l}.k`, `l${l}.v`, `${past}.key`, `${past}.value`, 'seqlens_k', 'total_sequence_length', 'cos_cache', 'sin_cache'],
        outputs: [`l${l}.attn`, `${present}.key`, `${present}.value`],
        attributes: { num_heads: Hq, kv_num_heads: Hkv, do_rotary: 1, rotary_interleaved: 0, scale: { float: 1 / Math.sqrt(D) }, local_window_size: -1 },
      });
      linear(`l${l}.attn`, `l${l}.o`, `${p}self_attn.o_proj.weight`);
      nodes.push({ op: 'SkipSimplifiedLayerNormalization', domain: MS, inputs: [`l${l}.o`, residual, weight(`${p}post_attention_layernorm.weight`)], outputs: [`l${l}.x2`, '', '', `l${l}.res2`], attributes: { epsilon: eps } });
      residual = `l${l}.res2`;
      linear(`l${l}.x2`, `l${l}.gate`, `${p}mlp.gate_proj.weight`);
      linear(`l${l}.x2`, `l${l}.up`, `${p}mlp.up_proj.weight`);
      nodes.push(
        { op: 'Sigmoid', inputs: [`l${l}.gate`], outputs: [`l${l}.sig`] },
        { op: 'Mul', inputs: [`l${l}.gate`, `l${l}.sig`], outputs: [`l${l}.silu`] },
        { op: 'Mul', inputs: [`l${l}.silu`, `l${l}.up`], outputs: [`l${l}.act`] },
      );
      linear(`l${l}.act`, `l${l}.mlp`, `${p}mlp.down_proj.weight`);
      mlpOut = `l${l}.mlp`;
    }
    nodes.push({ op: 'SkipSimplifiedLayerNormalization', domain: MS, inputs: [mlpOut, residual, weight('model.norm.weight')], outputs: ['final'], attributes: { epsilon: eps } });
    if (c.tie_word_embeddings) linear('final', 'logits', 'model.embed_tokens.weight', embedding);
    else linear('final', 'logits', 'lm_head.weight');
    const bytes = model({ name: `qkv random ${arch} ${format}`, nodes, inputs, outputs, initializers });
    writeFileSync(join(out, 'model.onnx'), bytes);
    return { weightBytes: offset };
  } finally {
    closeSync(fd);
    ckpt.close();
  }
}
