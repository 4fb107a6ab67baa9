// Which attention kernel a call takes (src/wasm/attention.ts): the fused (flash) kernel, the row kernel
// or the paged one, by shape; and the test probe that forces one and says which ran (kernelProbe,
// passed in the op's options). Each kernel's edges: fused.test.ts, paged.test.ts, kvView.test.ts.
import { describe, expect, it } from 'vitest';
import { reference } from '../../src/index.js';
import { expectClose, kernelProbe, random, wasmEngine } from '../support.js';

const wasm = await wasmEngine();

describe('the test hook that forces an attention kernel', () => {
  const q = random([1, 2, 1, 8], 1), k = random([1, 2, 40, 8], 2), v = random([1, 2, 40, 5], 3);
  const long = random([1, 2, 40, 8], 4);
  const want = reference.scaledDotProductAttention(q, k, v).output, wantLong = reference.scaledDotProductAttention(long, k, v).output;

  it('by default, decode takes the row kernel and a long query the fused one', () => {
    const probe = kernelProbe();
    wasm.scaledDotProductAttention(q, k, v, probe.options);
    wasm.scaledDotProductAttention(long, k, v, probe.options);
    expect(probe.ran).toEqual(['row', 'fused']);
  });

  it('four query rows a head over 4,096 keys or more take the fused kernel; one row a head takes the paged kernel when heads share a kv head, else the row kernel', () => {
    const keys = (L: number, H: number) => [random([1, H, L, 8], 5), random([1, H, L, 8], 6)] as const;
    for (const [Lq, L, H, Hkv, kernel] of [[4, 4096, 2, 2, 'fused'], [4, 4095, 2, 2, 'row'], [3, 8192, 2, 2, 'row'], [1, 8192, 7, 1, 'paged'], [1, 8192, 2, 2, 'row']] as const) {
      const [k2, v2] = keys(L, Hkv), q2 = random([1, H, Lq, 8], 7);
      const probe = kernelProbe();
      const got = wasm.scaledDotProductAttention(q2, k2, v2, probe.options).output;
      expect(probe.ran, `${Lq} rows, ${L} keys, ${H} heads over ${Hkv}`).toEqual([kernel]);
      expectClose(got, reference.scaledDotProductAttention(q2, k2, v2).output);
    }
  });

  it('forces either kernel on either shape, with the same results', () => {
    for (const kernel of ['fused', 'row'] as const) {
      const probe = kernelProbe(kernel);
      expectClose(wasm.scaledDotProductAttention(q, k, v, probe.options).output, want, `decode on ${kernel}`);
      expectClose(wasm.scaledDotProductAttention(long, k, v, probe.options).output, wantLong, `long on ${kernel}`);
      expect(probe.ran).toEqual([kernel, kernel]);
    }
  });

  it('weights always take the row kernel, and a probe acts on its own call only', () => {
    const forced = kernelProbe('fused'), free = kernelProbe();
    wasm.scaledDotProductAttention(long, k, v, { returnWeights: true, ...forced.options });
    expect(forced.ran).toEqual(['row']);
    wasm.scaledDotProductAttention(long, k, v, free.options);
    expect(free.ran).toEqual(['fused']);
    expect(forced.ran).toEqual(['row']);
  });
});
