// The models page: a checkpoint picked from disk (a .gguf file, or a safetensors folder's files) loaded
// by loadDecoder in a worker (models-worker.js), greedy generation from a prompt with the prefill and
// decode rates as the tokens come, and, for a GGUF, llama.cpp's wasm build (wllama.js) on the same file.
import { nav, ready } from './common.js';
import { lineChart } from './plot.js';
import { runWllama, wllamaAvailable } from './wllama.js';

const $ = (id) => document.getElementById(id);
const state = (s) => { document.body.dataset.models = s; };
const fmt = (x) => (!Number.isFinite(x) ? '' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toPrecision(3));
const mb = (bytes) => `${(bytes / 2 ** 20).toFixed(bytes < 2 ** 20 ? 2 : 1)} MB`;

// ---------------------------------------------------------------------------------------------------
// the worker, called like a function: call(op, fields) -> its result; events go to `onEvent`

const worker = new Worker(new URL('./models-worker.js', import.meta.url), { type: 'module' });
const pending = new Map();
let nextId = 0;
let onEvent = () => {};
worker.onmessage = ({ data }) => {
  if (data.event !== undefined) {
    onEvent(data);
    return;
  }
  const p = pending.get(data.id);
  pending.delete(data.id);
  if (data.error !== undefined) p.reject(new Error(data.error));
  else p.resolve(data.result);
};
worker.onerror = (e) => showError(`the worker failed: ${e.message ?? e}`);
const call = (op, fields) => new Promise((resolve, reject) => {
  const id = ++nextId;
  pending.set(id, { resolve, reject });
  worker.postMessage({ id, op, ...fields });
});

// ---------------------------------------------------------------------------------------------------
// picking files

/** The picked files by name, as loadDecoder's { files } takes them. */
let files = {};

/** `list`'s files by name; from a folder, the ones nearest its top win when two share a name. */
function byName(list) {
  const depth = (f) => (f.webkitRelativePath || f.name).split('/').length;
  const out = {};
  for (const f of [...list].sort((a, b) => depth(a) - depth(b))) if (!(f.name in out)) out[f.name] = f;
  return out;
}

/** What the picked files are, or an Error saying what is missing. */
function checkpointKind(picked) {
  const names = Object.keys(picked);
  const gguf = names.filter((n) => /\.gguf$/i.test(n));
  const safetensors = names.filter((n) => /\.safetensors$/.test(n));
  if (safetensors.length > 0 || names.includes('config.json')) {
    if (!names.includes('config.json')) return new Error(`no config.json among ${names.join(', ')}: a safetensors checkpoint needs its config.json beside model.safetensors`);
    if (safetensors.length === 0) return new Error('config.json but no .safetensors file: pick model.safetensors (or every shard and model.safetensors.index.json) too');
    return 'safetensors';
  }
  if (gguf.length > 1) return new Error(`${gguf.length} .gguf files picked (${gguf.join(', ')}): pick one`);
  if (gguf.length === 1) return 'gguf';
  return new Error(`${names.join(', ')} ${names.length === 1 ? 'is not a checkpoint' : 'are not a checkpoint'}: pick a .gguf file, or a checkpoint's config.json and model.safetensors (and tokenizer.json for text prompts)`);
}

function pick(list) {
  clearError();
  files = byName(list);
  const names = Object.keys(files);
  const kind = checkpointKind(files);
  $('picked').textContent = names.length === 0 ? 'no files picked' : `${names.length} file${names.length === 1 ? '' : 's'}: ${names.join(', ')}`;
  $('load').disabled = kind instanceof Error;
  $('with-wllama').disabled = true;
  $('generate').disabled = true;
  if (kind instanceof Error) {
    showError(kind.message);
    return;
  }
  $('status').textContent = `a ${kind} checkpoint, ${mb(Object.values(files).reduce((s, f) => s + f.size, 0))}: load it`;
}

// ---------------------------------------------------------------------------------------------------
// messages

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = false;
  $('status').textContent = 'failed: see the message above';
  state('error');
}

function clearError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

// ---------------------------------------------------------------------------------------------------
// loading

let loaded = null; // the worker's answer to load: format, config, bytes, hasTokenizer, engine

async function load() {
  clearError();
  loaded = null;
  $('model').textContent = 'no checkpoint loaded';
  state('loading');
  $('load').disabled = $('generate').disabled = true;
  $('with-wllama').disabled = true;
  const threads = Number($('threads').value);
  onEvent = (e) => {
    if (e.event === 'progress') $('status').textContent = `loading: ${mb(e.loadedBytes)} of ${mb(e.totalBytes)}`;
  };
  try {
    loaded = await call('load', { files, weights: $('weights').value, threads });
  } catch (error) {
    showError(`could not load the checkpoint: ${error.message}`);
    return;
  } finally {
    $('load').disabled = false;
  }
  const c = loaded.config;
  $('status').textContent = 'loaded: generate';
  $('model').textContent = `loaded ${c.architecture} (${loaded.format}): ${c.numLayers} layers, hidden ${c.hiddenSize}, vocabulary ${c.vocabSize}, `
    + `${c.maxPositions} positions; ${mb(loaded.bytes)} in the engine, in ${fmt(loaded.loadMs)} ms`
    + `${loaded.hasTokenizer ? '; with its tokenizer: the prompt may be text' : '; no tokenizer.json: the prompt is token ids'}`;
  const { simd, threads: t } = loaded.engine;
  $('runtime').textContent = `wasm engine (in a worker): ${simd === 'relaxed' ? 'relaxed SIMD' : 'SIMD'}, ${t} thread${t === 1 ? '' : 's'}`
    + ` · cross-origin isolated: ${globalThis.crossOriginIsolated ? 'yes' : 'no'} · ${navigator.hardwareConcurrency ?? '?'} logical cores`;
  $('with-wllama').disabled = !(loaded.format === 'gguf' && wllamaAvailable);
  $('generate').disabled = false;
  describePrompt();
  state('loaded');
}

// ---------------------------------------------------------------------------------------------------
// generating

/** The prompt box as token ids (numbers separated by commas or spaces) or as text. */
function parsePrompt() {
  const raw = $('prompt').value.trim();
  if (/^\d+([\s,]+\d+)*,?$/.test(raw)) return raw.split(/[\s,]+/).filter(Boolean).map(Number);
  return $('prompt').value;
}

function describePrompt() {
  const p = parsePrompt();
  $('prompt-kind').textContent = Array.isArray(p) ? `${p.length} token ids` : loaded?.hasTokenizer === false ? 'text: needs a checkpoint with tokenizer.json' : 'text';
}

/** One engine's run as the page shows it: the prompt's length, when each token came (ms from the start). */
const runs = { qkv: null, wllama: null };

function resetRun(name) {
  runs[name] = { promptN: 0, prefillMs: null, times: [] };
  for (const cell of $(`rate-${name}`).querySelectorAll('td + td')) cell.textContent = '';
}

/**
 * n tokens in ms milliseconds as tokens/s; a time of 0 (faster than the clock: Firefox rounds
 * performance.now() to 1 ms, and llama.cpp's timings come from it) as a lower bound, "> n / 1 ms".
 */
const rateText = (n, ms) => (!(n > 0) || !Number.isFinite(ms) ? '' : ms > 0 ? fmt(n / (ms / 1000)) : `> ${fmt(n * 1000)}`);

/** Prefill: the prompt's tokens over the time to the first new token; decode: the later tokens over their time. */
function rates(run) {
  const { times, promptN } = run;
  const prefillMs = run.prefillMs ?? times[0];
  const decodeMs = run.decodeMs ?? times[times.length - 1] - times[0];
  const decodeN = run.decodeN ?? times.length - 1;
  return { prefill: times.length > 0 ? rateText(promptN, prefillMs) : '', decode: rateText(decodeN, decodeMs) };
}

function showRates(name) {
  const run = runs[name];
  const row = $(`rate-${name}`);
  const r = rates(run);
  row.hidden = false;
  row.querySelector('.prompt-n').textContent = String(run.promptN);
  row.querySelector('.prefill').textContent = r.prefill;
  row.querySelector('.new-n').textContent = String(run.times.length);
  row.querySelector('.decode').textContent = r.decode;
  scheduleChart();
}

const COLORS = { qkv: '#cb181d', wllama: '#2171b5' };
const WINDOW = 8; // the chart's rate: tokens per second over the last 8 tokens

let chartQueued = false;
function scheduleChart() {
  if (chartQueued) return;
  chartQueued = true;
  requestAnimationFrame(() => {
    chartQueued = false;
    drawChart();
  });
}

/** Decode tokens per second (over the last WINDOW tokens) against the tokens generated so far. */
function drawChart() {
  const lines = [];
  const legend = [];
  for (const [name, run] of Object.entries(runs)) {
    if (run === null || run.times.length < 2) continue;
    const xs = [], ys = [];
    for (let i = 1; i < run.times.length; i++) {
      const from = Math.max(0, i - WINDOW);
      xs.push(i + 1);
      ys.push(((i - from) * 1000) / (run.times[i] - run.times[from]));
    }
    lines.push({ xs, ys, color: COLORS[name] });
    legend.push({ label: name === 'qkv' ? 'qkv' : 'llama.cpp (wllama)', color: COLORS[name] });
  }
  if (lines.length === 0) {
    $('chart').innerHTML = '';
    return;
  }
  const xMax = Math.max(2, ...lines.map((l) => l.xs[l.xs.length - 1]));
  const yMax = Math.max(...lines.flatMap((l) => l.ys.filter(Number.isFinite)), 1) * 1.15;
  $('chart').innerHTML = lineChart({
    width: 520, height: 260, xRange: [1, xMax], yRange: [0, yMax], lines, legend,
    xTitle: 'new tokens', yTitle: `decode tok/s (last ${WINDOW} tokens)`,
  });
}

let generating = false;

async function generate() {
  if (generating) return;
  clearError();
  const prompt = parsePrompt();
  const maxNewTokens = Math.max(1, Math.floor(Number($('max-new').value) || 1));
  const stopAtEos = $('stop-eos').checked;
  generating = true;
  state('generating');
  $('generate').disabled = $('load').disabled = true;
  $('stop').disabled = false;
  $('tokens').textContent = '';
  $('text').textContent = '';
  $('wllama-text').textContent = '';
  resetRun('qkv');
  runs.wllama = null;
  $('rate-wllama').hidden = true;
  $('chart').innerHTML = '';
  const tokens = [];
  onEvent = (e) => {
    if (e.event === 'prompt') {
      runs.qkv.promptN = e.ids.length;
      $('status').textContent = `qkv: ${e.ids.length} prompt tokens, up to ${e.maxNewTokens} new…`;
    } else if (e.event === 'token') {
      tokens.push(e.token);
      runs.qkv.times.push(e.ms);
      $('tokens').textContent = tokens.join(', ');
      if (e.text !== null) $('text').textContent = e.text;
      showRates('qkv');
    }
  };
  try {
    const result = await call('generate', { prompt, maxNewTokens, stopAtEos });
    $('tokens').textContent = result.tokens.join(', ');
    document.body.dataset.tokens = result.tokens.join(',');
    document.body.dataset.promptTokens = result.promptIds.join(',');
    $('status').textContent = `qkv: ${result.tokens.length} new tokens in ${fmt(result.ms)} ms${result.stopped ? ' (stopped early: end of sequence, or the stop button)' : ''}`;
    if ($('with-wllama').checked && !$('with-wllama').disabled) await generateWllama(prompt, result, stopAtEos);
    state('done');
  } catch (error) {
    showError(`generation failed: ${error.message}`);
  } finally {
    generating = false;
    $('generate').disabled = $('load').disabled = false;
    $('stop').disabled = true;
  }
}

/** llama.cpp on the same GGUF file, the same number of new tokens; its prompt is text (see wllama.js). */
async function generateWllama(prompt, qkvResult, stopAtEos) {
  if (Array.isArray(prompt)) {
    $('wllama-text').textContent = 'llama.cpp (wllama) skipped: wllama takes a prompt only as text, and this prompt is token ids';
    return;
  }
  const gguf = Object.values(files).find((f) => /\.gguf$/i.test(f.name));
  resetRun('wllama');
  $('rate-wllama').hidden = false;
  $('status').textContent += ' · llama.cpp (wllama): loading…';
  const result = await runWllama(gguf, {
    prompt,
    maxNewTokens: Math.max(1, qkvResult.tokens.length),
    threads: Number($('threads').value),
    ignoreEos: !stopAtEos,
    onToken: (ms, text) => {
      runs.wllama.times.push(ms);
      $('wllama-text').textContent = `llama.cpp: ${text}`;
      showRates('wllama');
    },
  });
  // llama.cpp's own clock for the rates, once it has given them
  Object.assign(runs.wllama, { promptN: result.promptN, prefillMs: result.prefillMs, decodeMs: result.decodeMs, decodeN: result.decodeN });
  showRates('wllama');
  $('status').textContent = $('status').textContent.replace(/ · llama\.cpp \(wllama\): loading…$/, '')
    + ` · llama.cpp (wllama ${result.version}, ${result.threads} thread${result.threads === 1 ? '' : 's'}): loaded in ${fmt(result.loadMs)} ms`;
}

// ---------------------------------------------------------------------------------------------------

nav('models.html');
try {
  if (!globalThis.crossOriginIsolated) {
    $('threads').querySelector('option[value="2"]').disabled = true;
    $('threads-note').textContent = 'two threads need a cross-origin isolated page (QKV_ISOLATED=1 npm run dev)';
  }
  for (const id of ['files', 'folder']) $(id).addEventListener('change', (e) => pick(e.target.files));
  $('load').addEventListener('click', load);
  $('generate').addEventListener('click', generate);
  $('stop').addEventListener('click', () => worker.postMessage({ op: 'stop' }));
  $('prompt').addEventListener('input', describePrompt);
  if (!wllamaAvailable) $('wllama-note').textContent = 'wllama is not in this build';
  describePrompt();
  ready();
} catch (error) {
  showError(String(error?.message ?? error));
}
