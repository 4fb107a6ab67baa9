// The wasm boundary (src/wasm/abi.ts) against the built modules: every build exports exactly the
// kernels and constants the Kernels interface lists, each kernel takes the argument count the
// interface gives it, and every kernel's arguments fit a worker's job slot.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { KERNEL_ARITY, KERNEL_GLOBALS, KERNEL_NAMES, LAYOUT_OFFSETS } from '../src/wasm/abi.js';
import { layoutArray } from '../src/wasm/attentionLayout.js';
import { runtimeHasRelaxedSimd } from '../src/wasm/loader.js';
import { checkSlotBound, SLOT_ARGS } from '../src/wasm/parallel.js';

const BUILDS = ['qkv', 'qkv-threads', 'qkv-relaxed', 'qkv-relaxed-threads'];
// the relaxed builds compile only where the runtime has relaxed SIMD (the relaxed project)
const here = BUILDS.filter((b) => runtimeHasRelaxedSimd() || !b.includes('relaxed'));

/** A build's exports, instantiated without @assemblyscript/loader (whose wrappers hide the arity). */
async function exportsOf(build: string): Promise<{ module: WebAssembly.Module; exports: WebAssembly.Exports }> {
  const module = await WebAssembly.compile(await readFile(new URL(`../build/${build}.wasm`, import.meta.url)));
  const imports: WebAssembly.Imports = build.endsWith('threads') ? { env: { memory: new WebAssembly.Memory({ initial: 1, maximum: 1024, shared: true }) } } : {};
  return { module, exports: (await WebAssembly.instantiate(module, imports)).exports };
}

describe.each(here)('build/%s.wasm', (build) => {
  it('exports exactly the kernels and the constants of the Kernels interface', async () => {
    const { module } = await exportsOf(build);
    const byKind = (kind: string) => WebAssembly.Module.exports(module).filter((e) => e.kind === kind).map((e) => e.name).sort();
    expect(byKind('function')).toEqual([...KERNEL_NAMES].sort());
    expect(byKind('global')).toEqual([...KERNEL_GLOBALS].sort());
    expect(byKind('memory')).toEqual(['memory']);
    // a threads build imports its shared memory (and exports it back); the others own theirs
    const imported = WebAssembly.Module.imports(module).map((i) => `${i.module}.${i.name}:${i.kind}`);
    expect(imported).toEqual(build.endsWith('threads') ? ['env.memory:memory'] : []);
  });

  it('each kernel takes the argument count the interface gives it', async () => {
    const { exports } = await exportsOf(build);
    const actual = Object.fromEntries(KERNEL_NAMES.map((k) => [k, (exports[k] as (...a: number[]) => unknown).length]));
    expect(actual).toEqual(KERNEL_ARITY);
  });
});

describe.each(here)('build/%s.wasm: the byte offsets both sides name', (build) => {
  it.each(Object.entries(LAYOUT_OFFSETS))('%s is %i in the .wasm too', async (name, value) => {
    const { exports } = await exportsOf(build);
    expect((exports[name] as WebAssembly.Global).value).toBe(value);
  });
});

describe('the layout block', () => {
  it("puts each tensor's (batch, head, row) strides at the offsets the kernels read", () => {
    const block = layoutArray({ q: [1, 2, 3], k: [4, 5, 6], v: [7, 8, 9], out: [10, 11, 12] });
    expect(block.byteLength).toBe(LAYOUT_OFFSETS.LAYOUT_BYTES);
    const at = (tensor: number, stride: number) => block[(tensor + stride) / 4];
    const { LAYOUT_K, LAYOUT_OUT, STRIDE_HEAD, STRIDE_ROW } = LAYOUT_OFFSETS;
    expect([at(LAYOUT_K, STRIDE_HEAD), at(LAYOUT_OUT, STRIDE_ROW)]).toEqual([5, 12]);
    expect([...block]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 0, 0, 0, 0]);
  });

  it("puts the KV view's block table and element type after the strides (0: rows in place, float32)", () => {
    const block = layoutArray({
      q: [1, 2, 3], k: [4, 5, 6], v: [7, 8, 9], out: [10, 11, 12],
      kvTable: { at: 4096, entries: 5, blockRows: 16 }, kvFormat: { code: 2, kScales: 8192, vScales: 9216 },
    });
    const { LAYOUT_KV_TABLE, LAYOUT_KV_TABLE_ENTRIES, LAYOUT_KV_BLOCK_ROWS, LAYOUT_KV_FORMAT, LAYOUT_KV_K_SCALES, LAYOUT_KV_V_SCALES } = LAYOUT_OFFSETS;
    expect([LAYOUT_KV_TABLE, LAYOUT_KV_TABLE_ENTRIES, LAYOUT_KV_BLOCK_ROWS, LAYOUT_KV_FORMAT, LAYOUT_KV_K_SCALES, LAYOUT_KV_V_SCALES].map((at) => block[at / 4]))
      .toEqual([4096, 5, 16, 2, 8192, 9216]);
  });
});

describe("a worker's job slot", () => {
  it(`holds every kernel's arguments (at most ${SLOT_ARGS})`, () => {
    expect(Math.max(...Object.values(KERNEL_ARITY))).toBeLessThanOrEqual(SLOT_ARGS);
    expect(() => checkSlotBound()).not.toThrow();
  });

  it('refuses, naming the kernel, a kernel whose arguments would overrun it', () => {
    expect(() => checkSlotBound({ gemm_f32: 9, wide_f32: SLOT_ARGS + 1 }))
      .toThrow(`a worker's job slot holds ${SLOT_ARGS} arguments, but wide_f32 takes ${SLOT_ARGS + 1}`);
  });
});
