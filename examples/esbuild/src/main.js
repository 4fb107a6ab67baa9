// qkv/inline has the API of qkv; only where the wasm comes from differs.
import * as qkv from 'qkv/inline';

const { createEngine, tensor, attentionHeatmap } = qkv;

try {
  const engine = await createEngine();
  const { output } = engine.kernelRegression(tensor([57], [1]), tensor([56, 58], [2]), tensor([43, 48], [2]));
  document.getElementById('prediction').textContent = output.data[0].toFixed(1);
  document.getElementById('runtime').textContent = `wasm engine: ${JSON.stringify(engine.info)}`;

  const tokens = ['the', 'cat', 'sat', 'on', 'the', 'mat'];
  const L = tokens.length, E = 8;
  const x = tensor(Array.from({ length: L * E }, (_, i) => Math.sin(i * 1.7) + Math.cos(i * 0.3)), [1, L, E]);
  const { weights } = engine.scaledDotProductAttention(x, x, x, { causal: true, returnWeights: true });
  document.getElementById('heatmap').innerHTML = attentionHeatmap(tensor(weights.data, [L, L]), { rowLabels: tokens, colLabels: tokens });

  window.qkv = { ...qkv, engine }; // for the devtools console and the browser tests
  document.body.dataset.ready = 'true';
} catch (error) {
  document.body.dataset.ready = 'error';
  document.body.append(Object.assign(document.createElement('pre'), { textContent: String(error?.stack ?? error) }));
  throw error;
}
