// The fused (flash) attention kernel against the reference at tile edges: key lengths around the
// 16-key panel and 64-key block, odd query counts (rows go in pairs), and causal/window ranges that
// start and end at every alignment, so that skipped and partial blocks are all exercised.
import { describe, expect, it } from 'vitest';
import { type AttentionOptions, mask, reference, type Tensor, tensor } from '../../src/index.js';
import { lastAttentionKernel, withAttentionKernel } from '../../src/wasm/attention.js';
import { expectClose, fusedAttention, random, wasmEngine } from '../support.js';

const wasm = await wasmEngine();

/** The wasm engine's attention output on the fused kernel, whatever the rows per kv head; checks that it ran. */
const fused = (q: Tensor, k: Tensor, v: Tensor, o?: AttentionOptions) => fusedAttention(wasm, q, k, v, o);
const EDGES = [1, 2, 15, 16, 17, 63, 64, 65, 127, 128, 129];

describe('the test hook that forces an attention kernel', () => {
  const q = random([1, 2, 1, 8], 1), k = random([1, 2, 40, 8], 2), v = random([1, 2, 40, 5], 3);
  const long = random([1, 2, 40, 8], 4);
  const want = reference.scaledDotProductAttention(q, k, v).output, wantLong = reference.scaledDotProductAttention(long, k, v).output;

  it('by default, decode takes the row kernel and a long query the fused one', () => {
    wasm.scaledDotProductAttention(q, k, v);
    expect(lastAttentionKernel()).toBe('row');
    wasm.scaledDotProductAttention(long, k, v);
    expect(lastAttentionKernel()).toBe('fused');
  });

  it('four query rows a head over 4,096 keys or more take the fused kernel; one row a head takes the paged kernel when heads share a kv head, else the row kernel', () => {
    const keys = (L: number, H: number) => [random([1, H, L, 8], 5), random([1, H, L, 8], 6)] as const;
    for (const [Lq, L, H, Hkv, kernel] of [[4, 4096, 2, 2, 'fused'], [4, 4095, 2, 2, 'row'], [3, 8192, 2, 2, 'row'], [1, 8192, 7, 1, 'paged'], [1, 8192, 2, 2, 'row']] as const) {
      const [k2, v2] = keys(L, Hkv), q2 = random([1, H, Lq, 8], 7);
      const got = wasm.scaledDotProductAttention(q2, k2, v2).output;
      expect(lastAttentionKernel(), `${Lq} rows, ${L} keys, ${H} heads over ${Hkv}`).toBe(kernel);
      expectClose(got, reference.scaledDotProductAttention(q2, k2, v2).output);
    }
  });

  it('forces either kernel on either shape, with the same results', () => {
    for (const kernel of ['fused', 'row'] as const) {
      expectClose(withAttentionKernel(kernel, () => wasm.scaledDotProductAttention(q, k, v).output), want, `decode on ${kernel}`);
      expect(lastAttentionKernel()).toBe(kernel);
      expectClose(withAttentionKernel(kernel, () => wasm.scaledDotProductAttention(long, k, v).output), wantLong, `long on ${kernel}`);
      expect(lastAttentionKernel()).toBe(kernel);
    }
  });

  it('weights always take the row kernel, and the hook ends with its call', () => {
    withAttentionKernel('fused', () => wasm.scaledDotProductAttention(long, k, v, { returnWeights: true }));
    expect(lastAttentionKernel()).toBe('row');
    withAttentionKernel('row', () => undefined);
    wasm.scaledDotProductAttention(long, k, v);
    expect(lastAttentionKernel()).toBe('fused');
  });
});

describe('fused attention at tile edges', () => {
  it.each(EDGES)('Lk = %i against every query count parity, plain and causal both ways', (Lk) => {
    for (const Lq of [Lk === 1 ? 8 : 9, 16]) {
      const q = random([1, 2, Lq, 8], Lq + Lk, 2), k = random([1, 2, Lk, 8], Lk, 2), v = random([1, 2, Lk, 5], Lk + 1);
      for (const o of [{}, { causal: true }, { causal: 'bottom-right' }] as AttentionOptions[]) {
        expectClose(fused(q, k, v, o), reference.scaledDotProductAttention(q, k, v, o).output, `Lq=${Lq} ${JSON.stringify(o)}`);
      }
    }
  });

  it('windows of every width and offset skip the right blocks', () => {
    const Lq = 33, Lk = 150;
    const q = random([1, 1, Lq, 4], 1, 2), k = random([1, 1, Lk, 4], 2, 2), v = random([1, 1, Lk, 17], 3);
    const past = { pastKey: random([1, 1, 40, 4], 4, 2), pastValue: random([1, 1, 40, 17], 5) };
    for (const left of [0, 1, 15, 16, 17, 63, 64, 65, undefined]) {
      for (const right of [0, 3, 64, undefined]) {
        for (const o of [{ window: { left, right } }, { window: { left, right }, causal: true }, { window: { left, right }, ...past }] as AttentionOptions[]) {
          expectClose(fused(q, k, v, o), reference.scaledDotProductAttention(q, k, v, o).output, `left=${left} right=${right}`);
        }
      }
    }
  });

  it('validLens of every alignment with bottom-right causal', () => {
    const B = 6, Lq = 10, Lk = 130;
    const q = random([B, 2, Lq, 8], 6, 2), k = random([B, 2, Lk, 8], 7, 2), v = random([B, 2, Lk, 16], 8);
    const o: AttentionOptions = { validLens: [0, 5, 16, 64, 65, 130], causal: 'bottom-right' };
    expectClose(fused(q, k, v, o), reference.scaledDotProductAttention(q, k, v, o).output);
  });

  it('a NaN in a value that no query may see does not leak into the fused output', () => {
    const q = random([1, 2, 16, 8], 9), k = random([1, 2, 20, 8], 10), v = random([1, 2, 20, 16], 11);
    const vd = Float32Array.from(v.data);
    vd[3 * 16 + 2] = NaN; // head 0, key 3: masked for every query by the mask below
    vd[20 * 16 + 19 * 16] = Infinity; // head 1, key 19: beyond validLens
    const m = mask(Array.from({ length: 20 }, (_, j) => (j === 3 ? 0 : 1)), [20]);
    const o: AttentionOptions = { mask: m, validLens: [19], causal: 'bottom-right' };
    const got = fused(q, k, tensor(vd, v.shape), o);
    expect(got.data.every(Number.isFinite)).toBe(true);
    expectClose(got, reference.scaledDotProductAttention(q, k, tensor(vd, v.shape), o).output);
  });

  it('a NaN in one query row reaches only that row in the fused kernel', () => {
    const q = random([1, 1, 16, 8], 12), k = random([1, 1, 100, 8], 13), v = random([1, 1, 100, 4], 14);
    const qd = Float32Array.from(q.data);
    qd[5 * 8] = NaN;
    const got = fused(tensor(qd, q.shape), k, v);
    for (let r = 0; r < 16; r++) expect(Array.from(got.data.subarray(r * 4, r * 4 + 4)).every(Number.isNaN)).toBe(r === 5);
  });

  it('grouped-query heads share one packed K', () => {
    const q = random([2, 8, 17, 16], 15), k = random([2, 2, 70, 16], 16), v = random([2, 2, 70, 16], 17);
    for (const o of [{}, { causal: true }, { softcap: 2, mask: mask(random([17, 70], 18, 3).data, [17, 70]) }] as AttentionOptions[]) {
      expectClose(fused(q, k, v, o), reference.scaledDotProductAttention(q, k, v, o).output);
    }
  });
});
