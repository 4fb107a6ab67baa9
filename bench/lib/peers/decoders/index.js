// Whole decoders against their peers on the same weights (bench/decoder.js --peers):
//
//   Chromium  qkv's browser build and llama.cpp's wasm build (wllama) in one page (wllama.js), both
//             on one GGUF file (bench/lib/gguf.js): qkv float32 / int8 / int4 against F32 / Q8_0 /
//             Q4_0, the same weights (qkv keeps GGUF's Q8_0 and Q4_0 blocks' values exactly)
//   Node      qkv on the safetensors checkpoint and onnxruntime-web on an ONNX graph of the same
//             weights (bench/lib/onnxDecoder.js): float32 against f32, int4 against q4 (MatMulNBits);
//             qkv's other formats alone
//
// Each (format, threads) is one unit: both engines loaded (qkv first; each load and a warm-up round
// inside its peak-memory measurement), then rounds alternating between them, medians. A round is the
// prompt's forward, then `decode` greedy steps (sample, then forward the token).
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEngine, loadDecoder } from 'qkv';
import { writeGguf } from '../../gguf.js';
import { promptTokens } from '../../ggufTokens.js';
import { writeOnnxDecoder } from '../../onnxDecoder.js';
import { runNodePairInChild } from './node.js';
import { openPeerPage } from './wllama.js';

/** qkv's storage -> the GGUF type and the ONNX format of the same weights (none: no such peer). */
export const PAIRS = {
  float32: { gguf: 'F32', onnx: 'f32' },
  float16: {},
  int8: { gguf: 'Q8_0' },
  int4: { gguf: 'Q4_0', onnx: 'q4' },
};

const cacheDir = (name, what) => join(tmpdir(), 'qkv-bench-checkpoints', `${name}-${what}`);

/** Writes `final` with `write(tmpPath)` unless it exists; an interrupted write leaves nothing behind. */
function once(final, write, log) {
  if (existsSync(final)) return false;
  const tmp = `${final}.partial`;
  rmSync(tmp, { recursive: true, force: true });
  const t0 = performance.now();
  write(tmp);
  renameSync(tmp, final);
  log(`wrote ${final} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return true;
}

/**
 * The GGUF file of `dir`'s weights as `type`, written once into the temp folder. A new F32 file is
 * checked: qkv must read it to the same logits as the safetensors checkpoint.
 */
export async function ggufOf(name, dir, type, log) {
  const folder = cacheDir(name, 'gguf');
  mkdirSync(folder, { recursive: true });
  const file = join(folder, `model-${type}.gguf`);
  if (once(file, (tmp) => writeGguf(tmp, dir, { type }), log) && type === 'F32') {
    const diff = await sameLogits(dir, file);
    if (diff !== 0) throw new Error(`${file}: qkv reads it to logits ${diff} away from the safetensors checkpoint's; the writer is wrong`);
    log(`checked: qkv's loader reads ${file} to the safetensors checkpoint's logits exactly`);
  }
  return { folder, file: `model-${type}.gguf` };
}

/** The largest difference between the float32 logits (16 positions) of two checkpoints of the same weights. */
async function sameLogits(a, b) {
  const engine = await createEngine();
  try {
    const prompt = promptTokens(16);
    const logits = [];
    for (const source of [a, b]) {
      const d = await loadDecoder(source, { engine, maxTokens: 64 });
      logits.push(Float32Array.from(d.forward(prompt, { sequences: [d.sequence()], queryLens: [16], logits: 'all' }).data));
      d.dispose();
    }
    return logits[0].reduce((m, x, i) => Math.max(m, Math.abs(x - logits[1][i])), 0);
  } finally {
    engine.dispose();
  }
}

/** The ONNX decoder of `dir`'s weights as `format`, written once into the temp folder. */
export function onnxOf(name, dir, format, log) {
  const folder = cacheDir(name, `onnx-${format}`);
  mkdirSync(join(folder, '..'), { recursive: true });
  once(folder, (tmp) => writeOnnxDecoder(tmp, dir, { format }), log);
  return folder;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
/** How many leading tokens two greedy runs share. */
const agreeing = (a = [], b = []) => {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
};

/** A row of the table from one engine's rounds. */
function row(base, e, { decode, promptLength }) {
  return {
    ...base,
    prefillTokS: promptLength / (median(e.prefillMs) / 1000),
    decodeTokS: decode / (median(e.decodeMs) / 1000),
    peakBytes: e.peakBytes, loadMs: e.loadMs, tokens: e.tokens,
  };
}

/**
 * Runs the Chromium and Node peers for model `name` (its safetensors checkpoint in `dir`, config
 * `config`). Options: formats (qkv's), threads ([1, 2]), prompt and decode lengths, rounds, engines
 * ('wllama', 'ort'), weightBytes(format) for qkv's rows, log. Resolves to rows of { model, engine,
 * env, format, pair, threads, prefillTokS, decodeTokS, peakBytes, weightBytes, agree, version }.
 */
export async function runPeers(name, dir, config, { formats, threads, prompt: promptLength, decode, rounds, engines, weightBytes, log }) {
  const prompt = promptTokens(promptLength);
  const opts = { decode, promptLength };
  const rows = [];
  const nCtx = promptLength + decode + 64;

  if (engines.includes('wllama')) {
    const files = {};
    for (const f of formats) if (PAIRS[f].gguf) files[f] = await ggufOf(name, dir, PAIRS[f].gguf, log);
    const folders = new Set(Object.values(files).map((x) => x.folder));
    if (folders.size > 0) {
      const page = await openPeerPage([...folders][0]);
      const wllamaVersion = JSON.parse(readFileSync(new URL('../../../../node_modules/@wllama/wllama/package.json', import.meta.url), 'utf8')).version;
      try {
        for (const [format, { file }] of Object.entries(files)) {
          for (const t of threads) {
            log(`Chromium: qkv ${format} and wllama ${PAIRS[format].gguf}, ${t} thread${t > 1 ? 's' : ''}`);
            const url = page.model(file);
            const q = await page.peakAdded(async () => {
              const info = await page.call('qkvLoad', 'q', url, { weights: format, threads: t, maxTokens: nCtx });
              await page.call('qkvRun', 'q', prompt, decode);
              return info;
            });
            const w = await page.peakAdded(async () => {
              const info = await page.call('wllamaLoad', 'w', url, { threads: t, nCtx });
              await page.call('wllamaRun', 'w', prompt, decode);
              return info;
            });
            const qkv = { loadMs: q.result.loadMs, peakBytes: q.peakBytes, prefillMs: [], decodeMs: [] };
            const wl = { loadMs: w.result.loadMs, peakBytes: w.peakBytes, prefillMs: [], decodeMs: [] };
            for (let r = 0; r < rounds; r++) {
              const a = await page.call('qkvRun', 'q', prompt, decode);
              qkv.prefillMs.push(a.prefillMs);
              qkv.decodeMs.push(a.decodeMs);
              qkv.tokens = a.tokens;
              const b = await page.call('wllamaRun', 'w', prompt, decode);
              if (b.promptN !== promptLength || b.cacheN !== 0 || b.predictedN !== decode + 1) {
                throw new Error(`wllama saw ${b.promptN} prompt tokens (${b.cacheN} cached) and made ${b.predictedN}; expected ${promptLength} (0 cached) and ${decode + 1}`);
              }
              wl.prefillMs.push(b.prefillMs);
              wl.decodeMs.push(b.decodeMs);
              wl.tokens = b.tokens;
            }
            await page.call('qkvDispose', 'q');
            await page.call('wllamaDispose', 'w');
            const base = { model: name, env: 'Chromium', pair: format, threads: t };
            rows.push(row({ ...base, engine: 'qkv', format, weightBytes: weightBytes(format), version: `qkv in Chromium (${q.result.simd} build)` }, qkv, opts));
            rows.push({
              ...row({ ...base, engine: 'wllama', format: PAIRS[format].gguf, weightBytes: ggufBytes(files[format]), version: `wllama ${wllamaVersion} (llama.cpp ${w.result.version})` }, wl, opts),
              agree: agreeing(qkv.tokens, wl.tokens),
            });
          }
        }
      } finally {
        await page.close();
      }
    }
  }

  // the Node side runs with the ORT peer asked for; qkv's formats without an ONNX pair run there alone
  for (const format of engines.includes('ort') ? formats : []) {
    const onnx = PAIRS[format].onnx;
    const onnxDir = onnx ? onnxOf(name, dir, onnx, log) : undefined;
    for (const t of threads) {
      log(`Node: qkv ${format}${onnx ? ` and onnxruntime-web ${onnx}` : ''}, ${t} thread${t > 1 ? 's' : ''}`);
      const r = runNodePairInChild({ dir, onnxDir, config, weights: format, threads: t, prompt, decode, rounds });
      const base = { model: name, env: 'Node', pair: format, threads: t };
      rows.push(row({ ...base, engine: 'qkv', format, weightBytes: weightBytes(format), version: `qkv in Node (${r.qkv.version} build)` }, r.qkv, opts));
      if (r.ort) {
        rows.push({
          ...row({ ...base, engine: 'onnxruntime-web', format: onnx, weightBytes: onnxBytes(onnxDir), version: `onnxruntime-web ${r.ort.version}` }, r.ort, opts),
          agree: agreeing(r.qkv.tokens, r.ort.tokens),
        });
      }
    }
  }
  return rows;
}

const ggufBytes = ({ folder, file }) => statSync(join(folder, file)).size;
const onnxBytes = (folder) => statSync(join(folder, 'model.onnx_data')).size;
