// `npm run bench -- --markdown`: the README's benchmark tables and footprint, printed as Markdown
// from the measurements of the run, so that no figure in the README is typed by hand.
//   without --threads: one thread everywhere, qkv wasm against the peers and the reference
//   with --threads N:  qkv on one thread and on N, and onnxruntime-web on N
import { statSync } from 'node:fs';

const fmt = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toPrecision(3));
const ratio = (x) => `${x >= 10 ? x.toFixed(0) : x.toPrecision(2)}×`;
const kb = (bytes) => `${(bytes / 1000).toFixed(1)} KB`;
const work = (r) => (r.gflops ? `, ${fmt(r.gflops)} GFLOP/s` : r.gbps ? `, ${fmt(r.gbps)} GB/s` : '');
const row = (cells) => `| ${cells.join(' | ')} |`;

/** Bytes of the files the footprint names: the four builds and the two entry bundles. */
export function packageSizes() {
  const size = (path) => statSync(new URL(`../../${path}`, import.meta.url)).size;
  return {
    wasm: Object.fromEntries(['qkv', 'qkv-relaxed', 'qkv-threads', 'qkv-relaxed-threads'].map((b) => [`${b}.wasm`, size(`build/${b}.wasm`)])),
    mainEntry: size('dist/bundle/qkv.js'),
    inlineEntry: size('dist/bundle/inline.js'),
  };
}

/**
 * The Markdown: a header line naming the run, the table for its thread count, the serving rows, and
 * the footprint. `results` are run.js's rows ({ op, shape, impl, medianMs, gflops?, gbps?, p99Ms? }).
 */
export function markdownReport({ results, threads, machine, build, date }) {
  const out = [`One run, ${machine}, ${build} build, ${date}; median ms.`, ''];
  const find = (op, shape, impl) => results.find((r) => r.op === op && r.shape === shape && r.impl === impl);
  const cases = [...new Map(results.filter((r) => !['serving', 'footprint'].includes(r.op) && !/subnormal/.test(r.shape))
    .map((r) => [`${r.op}\n${r.shape}`, r])).values()];
  if (threads === 1) {
    const others = ['onnxruntime-web', 'tfjs-wasm', 'qkv reference'];
    out.push(row(['op', 'shape', 'qkv wasm', ...others]), row(Array(2 + 1 + others.length).fill('---')));
    for (const c of cases) {
      const qkv = find(c.op, c.shape, 'qkv wasm');
      if (!qkv) continue;
      const cells = others.map((impl) => {
        const r = find(c.op, c.shape, impl);
        return r ? `${fmt(r.medianMs)} (${ratio(r.medianMs / qkv.medianMs)})` : '—';
      });
      out.push(row([c.op, c.shape, `${fmt(qkv.medianMs)} ms${work(qkv)}`, ...cells]));
    }
    for (const r of results.filter((x) => x.op === 'serving' && x.impl === 'qkv wasm')) {
      out.push(row(['serving', r.shape, r.p99Ms ? `p50 ${fmt(r.medianMs)} ms, p99 ${fmt(r.p99Ms)} ms` : `${fmt(r.medianMs)} ms${work(r)}`, '', '', '']));
    }
    const subnormal = results.filter((r) => r.impl === 'qkv wasm' && /subnormal/.test(r.shape)).map((r) => {
      const normal = results.find((n) => n.op === r.op && n.impl === r.impl && r.shape.startsWith(n.shape.replace(/ \(.*$/, '')) && !/subnormal/.test(n.shape));
      return normal ? `${r.op} ${r.shape}: ${ratio(r.medianMs / normal.medianMs)}` : null;
    }).filter(Boolean);
    if (subnormal.length) out.push('', `Float32 subnormal inputs, time over normal ones (qkv wasm): ${subnormal.join('; ')}.`);
    out.push('', '(n×) is that implementation\'s median over qkv wasm\'s: above 1, qkv is faster.');
  } else {
    const many = `qkv wasm ${threads}T`;
    out.push(row(['op', 'shape', 'qkv 1 thread', `qkv ${threads} threads`, `onnxruntime-web, ${threads} threads`]), row(Array(5).fill('---')));
    for (const c of cases) {
      const one = find(c.op, c.shape, 'qkv wasm'), n = find(c.op, c.shape, many), ort = find(c.op, c.shape, 'onnxruntime-web');
      if (!one || !n) continue;
      out.push(row([c.op, c.shape, `${fmt(one.medianMs)} ms`, `${fmt(n.medianMs)} ms (${ratio(one.medianMs / n.medianMs)})${work(n)}`, ort ? `${fmt(ort.medianMs)} ms` : '—']));
    }
    out.push('', `(n×) is qkv's speed-up from 1 to ${threads} threads.`);
  }
  const sizes = packageSizes();
  const cold = results.find((r) => r.op === 'footprint' && r.shape === 'cold start');
  const memory = results.find((r) => r.op === 'footprint' && r.shape.startsWith('attention memory'));
  out.push('', `Footprint: the .wasm builds are ${Object.entries(sizes.wasm).map(([f, b]) => `${f} ${kb(b)}`).join(', ')}; `
    + `the package entry (dist/bundle/qkv.js) is ${kb(sizes.mainEntry)} of JS, and \`qkv/inline\` adds ${kb(sizes.inlineEntry)} (dist/bundle/inline.js, both single-threaded builds as base64)`
    + `${cold ? `; a cold start (import, createEngine, a first small attention, in a fresh process) takes ${fmt(cold.medianMs)} ms` : ''}`
    + `${memory ? `; attention at ${memory.shape.replace('attention memory ', '')} (B=1 H=8 d=64) holds ${fmt(memory.beyondIoMiB)} MiB of wasm memory beyond its inputs and output` : ''}.`);
  return out.join('\n');
}
