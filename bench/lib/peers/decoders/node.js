// The Node side of the decoder peers: qkv and onnxruntime-web on the same weights in one process of
// `threads` threads (ORT fixes its thread count once a process), their rounds interleaved. The bench
// runs this in a child process per (format, threads) through runNodePairInChild.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEngine, loadDecoder, sample } from 'qkv';
import { peakAdded } from '../../memory.js';
import { runRound } from '../../qkvRun.js';
import { openOnnxDecoder } from './onnxruntime.js';

const self = () => [process.pid];

/**
 * Loads qkv's decoder of `dir` (safetensors) as `weights` and, with `onnxDir`, ORT's session, each
 * with a warm-up round inside its peak-memory measurement (qkv first, so a peer's figure can only be
 * low); then `rounds` rounds, qkv's and ORT's alternating. Resolves to { qkv, ort } of
 * { loadMs, peakBytes, prefillMs: [], decodeMs: [], tokens (the last round's), version }.
 */
export async function runNodePair({ dir, onnxDir, config, weights, threads, prompt, decode, rounds }) {
  const engine = await createEngine({ threads });
  const result = {};
  const maxTokens = prompt.length + decode + 64;
  let decoder, session;
  try {
    const q = await peakAdded(self, async () => {
      const t0 = performance.now();
      decoder = await loadDecoder(dir, { engine, weights, maxTokens });
      const loadMs = performance.now() - t0;
      runRound(decoder, sample, prompt, decode);
      return loadMs;
    });
    result.qkv = { loadMs: q.result, peakBytes: q.peakBytes, prefillMs: [], decodeMs: [], threads: engine.info.threads, version: `${engine.info.simd}` };
    if (onnxDir) {
      const o = await peakAdded(self, async () => {
        const t0 = performance.now();
        session = await openOnnxDecoder(onnxDir, { threads, numLayers: config.num_hidden_layers, kvHeads: config.num_key_value_heads, headDim: config.hidden_size / config.num_attention_heads });
        const loadMs = performance.now() - t0;
        await session.run(prompt, decode);
        return loadMs;
      });
      result.ort = { loadMs: o.result, peakBytes: o.peakBytes, prefillMs: [], decodeMs: [], threads, version: session.version };
    }
    for (let r = 0; r < rounds; r++) {
      const a = runRound(decoder, sample, prompt, decode);
      result.qkv.prefillMs.push(a.prefillMs);
      result.qkv.decodeMs.push(a.decodeMs);
      result.qkv.tokens = a.tokens;
      if (session) {
        const b = await session.run(prompt, decode);
        result.ort.prefillMs.push(b.prefillMs);
        result.ort.decodeMs.push(b.decodeMs);
        result.ort.tokens = b.tokens;
      }
    }
  } finally {
    decoder?.dispose();
    await session?.release();
    engine.dispose();
  }
  return result;
}

/** runNodePair in a fresh Node process (its own ORT threads, its own memory). */
export function runNodePairInChild(options) {
  // a script file, not `node -e`: worker threads (ORT's and qkv's) inherit the parent's execArgv, and
  // a worker refuses --input-type
  const folder = mkdtempSync(join(tmpdir(), 'qkv-peer-node-'));
  const script = join(folder, 'run.mjs');
  writeFileSync(script, `
    import { runNodePair } from ${JSON.stringify(new URL('./node.js', import.meta.url).href)};
    const result = await runNodePair(${JSON.stringify(options)});
    process.stdout.write('\\n' + JSON.stringify(result) + '\\n');
    process.exit(0);`);
  try {
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
    if (r.status !== 0) throw new Error(`the Node peer run (${options.weights}, ${options.threads} threads) failed:\n${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop());
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}
