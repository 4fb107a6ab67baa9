// Multi-head self-attention over a sentence: weights [1, H, L, L] with averageWeights: false, one
// heatmap per head, the picked head large.
import { attentionHeatmap, tensor } from 'qkv';
import { fail, mulberry32, nav, ready, startEngine } from './common.js';

const EMBED = 32; // divisible by every head count offered
const $ = (id) => document.getElementById(id);
let picked = 0;

/** N(0, std²) samples from a seeded PRNG (Box–Muller). */
function normals(n, seed, std = 1) {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, () => std * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand()));
}

/** A word's embedding: the same vector for the same word (seeded by a hash of it). */
function embed(word) {
  let h = 2166136261;
  for (const c of word) h = Math.imul(h ^ c.codePointAt(0), 16777619);
  return normals(EMBED, h >>> 0);
}

function render(engine) {
  const words = $('sentence').value.trim().split(/\s+/).filter(Boolean).slice(0, 24);
  if (words.length === 0) words.push('…');
  const numHeads = Number($('num-heads').value);
  const seed = Number($('seed').value);
  $('seed-value').textContent = String(seed);
  picked = Math.min(picked, numHeads - 1);

  const L = words.length;
  const pe = engine.positionalEncoding(L, EMBED).data;
  const x = tensor(words.flatMap((w, i) => embed(w).map((v, j) => v + pe[i * EMBED + j])), [1, L, EMBED]);
  const params = {
    numHeads,
    inProjWeight: tensor(normals(3 * EMBED * EMBED, seed, 1 / Math.sqrt(EMBED)), [3 * EMBED, EMBED]),
    outProjWeight: tensor(normals(EMBED * EMBED, seed + 1000, 1 / Math.sqrt(EMBED)), [EMBED, EMBED]),
  };
  const { weights } = engine.selfAttention(x, params, { causal: $('causal').checked, needWeights: true, averageWeights: false });
  const perHead = tensor(weights.data, [numHeads, L, L]);

  $('head-buttons').innerHTML = Array.from({ length: numHeads }, (_, h) => `<button type="button" data-head="${h}" aria-pressed="${h === picked}">head ${h}</button>`).join(' ');
  $('head-title').textContent = `head ${picked}`;
  const one = tensor(perHead.data.subarray(picked * L * L, (picked + 1) * L * L), [L, L]);
  $('head-map').innerHTML = attentionHeatmap(one, { rowLabels: words, colLabels: words, min: 0, max: 1, cellSize: Math.min(32, Math.floor(400 / L)) });
  $('all-heads').innerHTML = attentionHeatmap(perHead, { min: 0, max: 1, cellSize: Math.max(3, Math.floor(90 / L)), columns: 4, xLabel: '', yLabel: '' });
  const mean = new Float32Array(L * L);
  perHead.data.forEach((v, i) => { mean[i % (L * L)] += v / numHeads; });
  $('mean-map').innerHTML = attentionHeatmap(tensor(mean, [L, L]), { min: 0, max: 1, cellSize: Math.max(3, Math.floor(180 / L)), xLabel: '', yLabel: '' });
}

nav('heads.html');
startEngine().then((engine) => {
  render(engine);
  for (const id of ['sentence', 'num-heads', 'causal', 'seed']) $(id).addEventListener('input', () => render(engine));
  $('head-buttons').addEventListener('click', (e) => {
    const head = e.target.closest('button')?.dataset.head;
    if (head !== undefined) { picked = Number(head); render(engine); }
  });
  ready();
}, fail);
