// The essay's example: waists [56, 58] (keys) with weights [43, 48] (values); the query waist and the
// kernel width w come from sliders; every change recomputes the prediction, the curve and the maps.
import { attentionHeatmap, reference, tensor } from 'qkv';
import { fail, nav, ready, startEngine } from './common.js';
import { lineChart } from './plot.js';

const keys = tensor([56, 58], [2]); // waists we know (cm)
const values = tensor([43, 48], [2]); // their weights (kg)
const range = [50, 64];
const curveWaists = Array.from({ length: 141 }, (_, i) => range[0] + i / 10); // 50, 50.1, …, 64
const mapWaists = Array.from({ length: 15 }, (_, i) => range[0] + i); // 50, 51, …, 64

const $ = (id) => document.getElementById(id);

function render(engine) {
  const waist = Number($('waist').value);
  const w = Number($('w').value);
  $('waist-value').textContent = waist.toFixed(1);
  $('w-value').textContent = w.toFixed(2);

  const { output, weights } = engine.kernelRegression(tensor([waist], [1]), keys, values, { w, returnWeights: true });
  const checked = reference.kernelRegression(tensor([waist], [1]), keys, values, { w }).output.data[0];
  const prediction = output.data[0];
  $('prediction').textContent = prediction.toFixed(1);
  $('attention').textContent = `attention: ${weights.data[0].toFixed(3)} on 56 cm, ${weights.data[1].toFixed(3)} on 58 cm`;
  $('agreement').textContent = `wasm ${prediction.toFixed(4)} · reference ${checked.toFixed(4)}`;
  $('query-heatmap').innerHTML = attentionHeatmap(weights, { // [1, 2]: one query, two keys
    rowLabels: [`${waist.toFixed(1)} cm`], colLabels: ['56 cm', '58 cm'], min: 0, max: 1, cellSize: 36, xLabel: '', yLabel: '',
  });

  const curve = engine.kernelRegression(tensor(curveWaists, [curveWaists.length]), keys, values, { w }).output.data;
  $('curve').innerHTML = lineChart({
    xRange: range, yRange: [40, 51],
    lines: [{ xs: curveWaists, ys: Array.from(curve), color: '#cb181d' }],
    points: [{ x: 56, y: 43, color: '#08519c', label: '43' }, { x: 58, y: 48, color: '#08519c', label: '48' }],
    marker: { x: waist, y: prediction, label: prediction.toFixed(1) },
    xTitle: 'waist (cm)', yTitle: 'weight (kg)',
  });

  const map = engine.kernelRegression(tensor(mapWaists, [mapWaists.length]), keys, values, { w, returnWeights: true }).weights;
  $('heatmap').innerHTML = attentionHeatmap(map, {
    rowLabels: mapWaists.map((x) => `${x} cm`), colLabels: ['56 cm', '58 cm'], min: 0, max: 1, cellSize: 18,
    xLabel: 'known waists (keys)', yLabel: 'query waists',
  });
}

nav('index.html');
startEngine().then((engine) => {
  render(engine);
  for (const id of ['waist', 'w']) $(id).addEventListener('input', () => render(engine));
  ready();
}, fail);
