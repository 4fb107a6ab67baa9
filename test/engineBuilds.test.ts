// Which wasm build createEngine runs: the plain SIMD build (build/qkv.wasm) or the relaxed-SIMD
// build (build/qkv-relaxed.wasm). vitest.config.ts runs this file twice: in plain node (project
// simd) and under node --experimental-wasm-relaxed-simd (project relaxed).
import { readFile } from 'node:fs/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createEngine } from '../src/index.js';
import { runtimeHasRelaxedSimd, runtimeHasSimd } from '../src/wasm/loader.js';
import { expectClose, random } from './support.js';

const FLAG = '--experimental-wasm-relaxed-simd';
const flagged = process.execArgv.includes(FLAG);
const nodeMajor = Number(process.versions.node.split('.')[0]);
const relaxedRuntime = runtimeHasRelaxedSimd();

const plainBytes = new Uint8Array(await readFile(new URL('../build/qkv.wasm', import.meta.url)));
const relaxedBytes = new Uint8Array(await readFile(new URL('../build/qkv-relaxed.wasm', import.meta.url)));

/** Whether a module's bytes contain f32x4.relaxed_madd (0xfd 0x85 0x02): how the mocks below tell the probes apart. */
function hasRelaxedMadd(bytes: BufferSource): boolean {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes instanceof ArrayBuffer ? bytes : bytes.buffer);
  for (let i = 0; i + 2 < b.length; i++) if (b[i] === 0xfd && b[i + 1] === 0x85 && b[i + 2] === 0x02) return true;
  return false;
}

/** The global a build exports to say which build it is. */
async function marker(bytes: Uint8Array): Promise<number> {
  const { exports } = await WebAssembly.instantiate(await WebAssembly.compile(bytes as BufferSource));
  return (exports.RELAXED_SIMD as WebAssembly.Global).value as number;
}

afterEach(() => { vi.restoreAllMocks(); });

describe('the runtime', () => {
  it(`has relaxed SIMD exactly when node runs with ${FLAG} (or is Node >= 22)`, () => {
    expect(runtimeHasSimd()).toBe(true);
    expect(relaxedRuntime).toBe(flagged || nodeMajor >= 22);
  });
});

describe('the two builds', () => {
  it('carry their marker: RELAXED_SIMD is 0 in qkv.wasm and 1 in qkv-relaxed.wasm', async () => {
    expect(await marker(plainBytes)).toBe(0);
    if (relaxedRuntime) expect(await marker(relaxedBytes)).toBe(1);
  });

  it.runIf(!relaxedRuntime)('without relaxed SIMD the plain build validates and the relaxed build does not: only it holds relaxed instructions', () => {
    expect(WebAssembly.validate(plainBytes)).toBe(true);
    expect(WebAssembly.validate(relaxedBytes)).toBe(false);
  });

  it.runIf(relaxedRuntime)('with relaxed SIMD both validate, and they agree within tolerance', async () => {
    expect(WebAssembly.validate(plainBytes)).toBe(true);
    expect(WebAssembly.validate(relaxedBytes)).toBe(true);
    const plain = await createEngine({ simd: 'simd' });
    const relaxed = await createEngine({ simd: 'relaxed' });
    const a = random([2, 37, 70], 11), b = random([2, 70, 45], 12);
    expectClose(relaxed.matmul(a, b), plain.matmul(a, b), 'matmul relaxed vs plain');
    const q = random([1, 4, 33, 64], 13), k = random([1, 4, 50, 64], 14), v = random([1, 4, 50, 64], 15);
    expectClose(relaxed.scaledDotProductAttention(q, k, v, { causal: true }).output,
      plain.scaledDotProductAttention(q, k, v, { causal: true }).output, 'attention relaxed vs plain');
  });
});

describe("createEngine({ simd })", () => {
  it.runIf(!relaxedRuntime)("without relaxed SIMD: 'auto' runs the plain build; 'relaxed' rejects, naming the node flag", async () => {
    expect((await createEngine()).info.simd).toBe('simd');
    expect((await createEngine({ simd: 'auto' })).info.simd).toBe('simd');
    expect((await createEngine({ simd: 'simd' })).info.simd).toBe('simd');
    await expect(createEngine({ simd: 'relaxed' })).rejects.toThrow(/does not support WebAssembly relaxed SIMD.*--experimental-wasm-relaxed-simd.*Chrome >= 114 and Node >= 22/);
  });

  it.runIf(relaxedRuntime)("with relaxed SIMD: 'auto' and 'relaxed' run the relaxed build; 'simd' forces the plain one", async () => {
    expect((await createEngine()).info.simd).toBe('relaxed');
    expect((await createEngine({ simd: 'relaxed' })).info.simd).toBe('relaxed');
    expect((await createEngine({ simd: 'simd' })).info.simd).toBe('simd');
  });

  it("on a runtime that lacks relaxed SIMD (simulated), 'auto' falls back and 'relaxed' names the flag", async () => {
    const validate = WebAssembly.validate.bind(WebAssembly);
    vi.spyOn(WebAssembly, 'validate').mockImplementation((bytes) => !hasRelaxedMadd(bytes) && validate(bytes));
    expect(runtimeHasSimd()).toBe(true);
    expect(runtimeHasRelaxedSimd()).toBe(false);
    expect((await createEngine()).info.simd).toBe('simd');
    await expect(createEngine({ simd: 'relaxed' })).rejects.toThrow(FLAG);
  });

  it('on a runtime that lacks WebAssembly SIMD (simulated), every choice rejects saying SIMD is needed', async () => {
    vi.spyOn(WebAssembly, 'validate').mockReturnValue(false);
    for (const simd of ['auto', 'simd', 'relaxed'] as const) {
      await expect(createEngine({ simd })).rejects.toThrow(/needs WebAssembly SIMD/);
    }
  });

  it('rejects an unknown choice with a RangeError', async () => {
    await expect(createEngine({ simd: 'fast' as never })).rejects.toThrow(RangeError);
  });
});

describe('createEngine({ wasm }): a given module is used as is and its build reported', () => {
  it('reports the plain build from bytes, a module and a path', async () => {
    expect((await createEngine({ wasm: plainBytes })).info.simd).toBe('simd');
    expect((await createEngine({ wasm: await WebAssembly.compile(plainBytes) })).info.simd).toBe('simd');
    expect((await createEngine({ wasm: new URL('../build/qkv.wasm', import.meta.url) })).info.simd).toBe('simd');
  });

  it.runIf(relaxedRuntime)('reports the relaxed build, also under simd: auto', async () => {
    expect((await createEngine({ wasm: relaxedBytes })).info.simd).toBe('relaxed');
    expect((await createEngine({ wasm: await WebAssembly.compile(relaxedBytes) })).info.simd).toBe('relaxed');
  });

  it.runIf(!relaxedRuntime)('the relaxed build on a runtime without relaxed SIMD: the error says why and how to enable it', async () => {
    await expect(createEngine({ wasm: relaxedBytes })).rejects.toThrow(new RegExp(`lacks relaxed SIMD.*${FLAG}`));
  });

  it('an explicit simd choice that contradicts the given module rejects', async () => {
    if (relaxedRuntime) {
      await expect(createEngine({ simd: 'simd', wasm: relaxedBytes })).rejects.toThrow(/'simd' but options.wasm is the relaxed-SIMD build/);
      await expect(createEngine({ simd: 'relaxed', wasm: plainBytes })).rejects.toThrow(/'relaxed' but options.wasm is the plain SIMD build/);
    } else {
      await expect(createEngine({ simd: 'relaxed', wasm: plainBytes })).rejects.toThrow(FLAG);
    }
  });
});
