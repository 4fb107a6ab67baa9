// Finds, compiles and instantiates the kernels' .wasm with @assemblyscript/loader, in Node and in browsers.
import { instantiate } from '@assemblyscript/loader';

/** The kernel exports of build/qkv.wasm (assembly/index.ts). Pointers are byte offsets into `memory`. */
export interface Kernels {
  memory: WebAssembly.Memory;
  heap_base(): number;
  matmul_f32(c: number, a: number, b: number, m: number, n: number, k: number): void;
  matmul_nt_f32(c: number, a: number, b: number, m: number, n: number, k: number): void;
  softmax_rows_f32(out: number, x: number, rows: number, n: number, lens: number, rowsPerLen: number): void;
  attention_f32(
    out: number, weights: number, scratch: number, q: number, k: number, v: number, mask: number, lens: number,
    b: number, hq: number, hkv: number, lq: number, lk: number, e: number, ev: number,
    scale: number, softcap: number, maskKind: number, msb: number, msh: number, msq: number, msk: number,
    causal: number, lpast: number, left: number, right: number,
  ): void;
  kernel_regression_f32(out: number, weights: number, scratch: number, q: number, k: number, v: number, n: number, m: number, d: number, dv: number, w: number): void;
  additive_scores_f32(out: number, qp: number, kp: number, wv: number, b: number, lq: number, lk: number, h: number): void;
  exp_f32(out: number, x: number, n: number): void;
  tanh_f32(out: number, x: number, n: number): void;
  weighted_rows_f32(out: number, w: number, v: number, b: number, lq: number, lk: number, dv: number): void;
  CAUSAL_NONE: WebAssembly.Global; CAUSAL_TOP_LEFT: WebAssembly.Global; CAUSAL_BOTTOM_RIGHT: WebAssembly.Global;
  MASK_NONE: WebAssembly.Global; MASK_BOOLEAN: WebAssembly.Global; MASK_ADDITIVE: WebAssembly.Global;
}

/** Where the .wasm comes from: a URL or path, its bytes, or a compiled module. */
export type WasmSource = URL | string | ArrayBuffer | Uint8Array | WebAssembly.Module;

/** The plain SIMD build, shipped in build/ at the package root (the same relative path from src/ and dist/). */
export const defaultWasmUrl = (): URL => new URL('../../build/qkv.wasm', import.meta.url);

const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

async function fetchBytes(where: URL | string): Promise<ArrayBuffer | Uint8Array> {
  if (isNode) {
    // in Node a string without a scheme is a file path, and file: URLs are read from disk
    const url = where instanceof URL ? where : /^[a-z][a-z0-9+.-]+:/i.test(where) ? new URL(where) : null;
    if (url === null || url.protocol === 'file:') {
      const { readFile } = await import('node:fs/promises');
      return readFile(url ?? where);
    }
  }
  const response = await fetch(where);
  if (!response.ok) throw new Error(`qkv: could not load the wasm from ${String(where)}: HTTP ${response.status}`);
  return response.arrayBuffer();
}

/** Compiles (unless given a module) and instantiates the kernels. */
export async function loadKernels(source: WasmSource = defaultWasmUrl()): Promise<Kernels> {
  let module: WebAssembly.Module;
  if (source instanceof WebAssembly.Module) module = source;
  else if (source instanceof ArrayBuffer || source instanceof Uint8Array) module = await WebAssembly.compile(source as BufferSource);
  else if (source instanceof URL || typeof source === 'string') module = await WebAssembly.compile((await fetchBytes(source)) as BufferSource);
  else throw new TypeError('createEngine: options.wasm must be a URL, a path, an ArrayBuffer, a Uint8Array or a WebAssembly.Module');
  const { exports } = await instantiate<Record<string, unknown>>(module, {});
  return exports as unknown as Kernels;
}
