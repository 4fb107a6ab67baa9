// Where the time of a softmax goes: `node bench/softmax-breakdown.js [--shapes 8192x1024,65536x128]
// [--runs N]` (after `npm run build`; one benchmark at a time). Times each piece of a stateless
// engine.softmax(x) separately, in one process, on the kernels of the single-threaded build: the
// copy of x into wasm memory, the kernel (reading the copy, writing an output region, or in place),
// one exp pass alone, the copy out into an array already touched and into a fresh one, and a fresh
// array alone (allocated and written once: the first touch of its pages), against whole calls.
//
// Notes, [8192, 1024] (32 MiB each way), AMD EPYC Zen 5, Node 20.20, 2026-12-01, machine shared:
//   before (issue 14): kernel 11.0 ms in place, 12.2 ms (5.5 GB/s) into another region (a
//     memory.copy first), three passes over each row (max; exp, store and sum; scale); its exp
//     (degree 6, 1 ulp) alone took 8.4 ms, 1.0 G values/s; copy in 1.4 ms, copy out into a touched
//     array 1.4 ms, each over all of x.
//   after: kernel 4.8 ms, 14 GB/s: each row read from memory once (its max inside the previous
//     row's exp loop, its scale inside the next one's); the exp alone streams 2.2 G values/s (3.8 ms)
//     and bounds it. Engine tensors in and out: 5.0 ms, 13.4 GB/s. Copy in 2.0 ms, copy out into a
//     touched array 1.8 ms; on one thread they go 256 KiB of rows at a time around the kernel: the
//     whole call into a touched array takes 8.6 ms.
//   a fresh 32 MiB array (new + fill): 99 ms, about 12 us for each 4 KiB page's first touch on this
//     VM (glibc maps every block >= 32 MiB afresh); 0.3 us a page where pages are already backed
//     (2-3 ms); 9 ms with GLIBC_TUNABLES=glibc.malloc.hugetlb=1. The whole stateless call: 139 ms,
//     16 ms with huge pages. tfjs-wasm and onnxruntime-web return fresh arrays as well.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createEngine } from 'qkv';
import { value } from './lib/args.js';
import { random } from './lib/cases.js';

const RUNS = Number(value('--runs') ?? 15);

function median(f) {
  for (let i = 0; i < 3; i++) f();
  const ts = [];
  for (let i = 0; i < RUNS; i++) { const t0 = performance.now(); f(); ts.push(performance.now() - t0); }
  return ts.sort((a, b) => a - b)[RUNS >> 1];
}

const engine = await createEngine();
// The kernel alone: the package's .wasm entry (qkv/qkv.wasm, or qkv/qkv-relaxed.wasm where the engine
// runs that build) instantiated here, its exports called as the engine's wrapper calls them
// (src/wasm/abi.ts gives their arguments), on buffers above its heap base laid out as the engine's
// memory arena lays them out: 16-byte aligned, the memory grown to fit.
const entry = engine.info.simd === 'relaxed' ? 'qkv/qkv-relaxed.wasm' : 'qkv/qkv.wasm';
const { instance } = await WebAssembly.instantiate(readFileSync(fileURLToPath(import.meta.resolve(entry))));
const kernels = instance.exports;
let top = Math.ceil(kernels.heap_base() / 16) * 16;
/** The address of `count` fresh floats in the kernels' memory. */
function allocF32(count) {
  const ptr = top;
  top += Math.ceil((4 * count) / 16) * 16;
  const have = kernels.memory.buffer.byteLength;
  if (top > have) kernels.memory.grow(Math.ceil((top - have) / 65536));
  return ptr;
}
const f32 = (ptr, count) => new Float32Array(kernels.memory.buffer, ptr, count);
let sink = 0;

for (const [rows, n] of (value("--shapes") ?? "8192x1024,65536x128").split(",").map((s) => s.split("x").map(Number))) {
  const count = rows * n, bytes = 4 * count;
  const x = random([rows, n], 3);
  const px = allocF32(count), po = allocF32(count);
  const wasmBytes = () => new Uint8Array(kernels.memory.buffer);
  const src = new Uint8Array(x.data.buffer);
  wasmBytes().set(src, px); wasmBytes().fill(0, po, po + bytes);
  const kept = new Float32Array(count); // a JS array already touched: a copy out without first touch
  kept.fill(1);
  const ex = engine.tensor([rows, n]), eo = engine.tensor([rows, n]);
  ex.data.set(x.data);
  const plainOut = { data: new Float32Array(count).fill(1), shape: [rows, n] };
  const pieces = {
    'whole stateless engine.softmax(x)': () => { sink += engine.softmax(x).data[0]; },
    'whole, into a plain out already touched': () => { sink += engine.softmax(x, { out: plainOut }).data[0]; },
    'whole, engine tensor in, engine tensor out': () => { sink += engine.softmax(ex, { out: eo }).data[0]; },
    'copy in (JS array -> wasm memory)': () => { wasmBytes().set(src, px); },
    'kernel, input copy -> output region': () => { kernels.softmax_rows_f32(po, px, rows, n, 0, 1); },
    'kernel, in place': () => { kernels.softmax_rows_f32(px, px, rows, n, 0, 1); },
    'one exp pass (exp_softmax_f32, region -> region)': () => { kernels.exp_softmax_f32(po, px, count); },
    'copy out into a touched JS array': () => { kept.set(f32(po, count)); },
    'copy out into a fresh array (slice)': () => { sink += f32(po, count).slice()[0]; },
    'fresh array alone (new + fill)': () => { sink += new Float32Array(count).fill(1)[0]; },
  };
  console.log(`\nsoftmax [${rows}, ${n}]: ${(bytes / 2 ** 20).toFixed(0)} MiB in and out; median of ${RUNS} ms (GB/s of ${bytes / 2 ** 20} MiB read + the same written)`);
  for (const [name, f] of Object.entries(pieces)) {
    if (name.startsWith('kernel, in place')) wasmBytes().set(src, px);
    const ms = median(f);
    console.log(`  ${name.padEnd(54)} ${ms.toFixed(2).padStart(7)} ms ${((2 * bytes) / ms / 1e6).toFixed(1).padStart(6)} GB/s`);
  }
  wasmBytes().set(src, px);
}
engine.dispose();
if (Number.isNaN(sink)) console.log('(NaN)');
