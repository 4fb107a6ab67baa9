// qkv/inline: the embedded wasm is exactly build/*.wasm, and its engine computes what the main entry's does.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RELAXED_WASM_BASE64, SIMD_WASM_BASE64 } from '../src/generated/wasm.js';
import * as main from '../src/index.js';
import * as inline from '../src/inline.js';
import { runtimeHasRelaxedSimd } from '../src/wasm/loader.js';
import { random } from './support.js';

const fromBase64 = (s: string): Buffer => Buffer.from(s, 'base64');

describe('qkv/inline', () => {
  it('embeds build/qkv.wasm and build/qkv-relaxed.wasm byte for byte', () => {
    expect(fromBase64(SIMD_WASM_BASE64).equals(readFileSync(new URL('../build/qkv.wasm', import.meta.url)))).toBe(true);
    expect(fromBase64(RELAXED_WASM_BASE64).equals(readFileSync(new URL('../build/qkv-relaxed.wasm', import.meta.url)))).toBe(true);
  });

  it('exports everything the main entry exports', () => {
    expect(Object.keys(inline).sort()).toEqual(Object.keys(main).sort());
    expect(inline.reference).toBe(main.reference);
    expect(inline.createEngine).not.toBe(main.createEngine);
  });

  it('picks the build the main entry picks and gives bit-identical results', async () => {
    const [a, b] = await Promise.all([inline.createEngine(), main.createEngine()]);
    try {
      expect(a.info.simd).toBe(runtimeHasRelaxedSimd() ? 'relaxed' : 'simd');
      expect(a.info.simd).toBe(b.info.simd);
      const [q, k, v] = [1, 2, 3].map((seed) => random([1, 2, 19, 16], seed));
      const x = a.scaledDotProductAttention(q, k, v, { causal: true }).output;
      const y = b.scaledDotProductAttention(q, k, v, { causal: true }).output;
      expect(x.shape).toEqual(y.shape);
      expect(Array.from(x.data)).toEqual(Array.from(y.data));
      expect(a.kernelRegression(main.tensor([57], [1]), main.tensor([56, 58], [2]), main.tensor([43, 48], [2])).output.data[0]).toBe(45.5);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('honours simd and wasm options, and validates like the main entry', async () => {
    const plain = await inline.createEngine({ simd: 'simd' });
    expect(plain.info.simd).toBe('simd');
    plain.dispose();
    const given = await inline.createEngine({ wasm: readFileSync(new URL('../build/qkv.wasm', import.meta.url)) });
    expect(given.info.simd).toBe('simd');
    given.dispose();
    await expect(inline.createEngine({ simd: 'fast' as never })).rejects.toThrow(RangeError);
    await expect(inline.createEngine(null as never)).rejects.toThrow(TypeError);
    if (!runtimeHasRelaxedSimd()) await expect(inline.createEngine({ simd: 'relaxed' })).rejects.toThrow(/relaxed/);
  });
});
