// qkv in a webpack 5 app with no webpack configuration at all: `webpack --mode=production` bundles
// src/index.js into dist/main.js and emits the .wasm files and the Web Worker that qkv names with
// `new URL(…, import.meta.url)`. `?threads=2` asks for threads (a page served with COOP/COEP runs them).
import * as qkv from 'qkv';

const { createEngine, tensor, attentionHeatmap } = qkv;

async function main() {
  const threads = new URLSearchParams(location.search).get('threads');
  const engine = await createEngine({ threads: threads === null ? 1 : threads === 'auto' ? 'auto' : Number(threads) });
  const { output } = engine.kernelRegression(tensor([57], [1]), tensor([56, 58], [2]), tensor([43, 48], [2]));
  document.getElementById('prediction').textContent = output.data[0].toFixed(1);
  const { simd } = engine.info;
  document.getElementById('runtime').textContent = `wasm engine: ${simd === 'relaxed' ? 'relaxed SIMD' : 'SIMD'}, `
    + `${engine.info.threads} thread${engine.info.threads === 1 ? '' : 's'} · cross-origin isolated: ${globalThis.crossOriginIsolated ? 'yes' : 'no'}`;

  const tokens = ['the', 'cat', 'sat', 'on', 'the', 'mat'];
  const L = tokens.length, E = 8;
  const x = tensor(Array.from({ length: L * E }, (_, i) => Math.sin(i * 1.7) + Math.cos(i * 0.3)), [1, L, E]);
  const { weights } = engine.scaledDotProductAttention(x, x, x, { causal: true, returnWeights: true });
  document.getElementById('heatmap').innerHTML = attentionHeatmap(tensor(weights.data, [L, L]), { rowLabels: tokens, colLabels: tokens });

  window.qkv = { ...qkv, engine }; // for the devtools console and the browser tests
  document.body.dataset.ready = 'true';
}

main().catch((error) => {
  document.body.dataset.ready = 'error';
  document.body.append(Object.assign(document.createElement('pre'), { textContent: String(error?.stack ?? error) }));
  console.error(error);
});
