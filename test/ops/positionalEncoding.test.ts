// positionalEncoding (the sinusoidal table of "Attention Is All You Need") on both engines.
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/index.js';
import { engines } from '../support.js';

const all = await engines();

describe.each(all.map((e) => [e.name, e] as const))('positionalEncoding on %s', (_, engine: Engine) => {
  it('follows sin/cos of i / 10000^(2j/dim)', () => {
    const P = engine.positionalEncoding(50, 8);
    expect(P.shape).toEqual([50, 8]);
    for (const [i, c] of [[0, 0], [0, 1], [7, 2], [7, 3], [49, 6], [49, 7]]) {
      const angle = i / 10000 ** ((c - (c % 2)) / 8);
      expect(P.data[i * 8 + c]).toBeCloseTo(c % 2 ? Math.cos(angle) : Math.sin(angle), 6);
    }
    expect(engine.positionalEncoding(3, 5).shape).toEqual([3, 5]); // odd width: the last column is a sin
    expect(engine.positionalEncoding(0, 4).shape).toEqual([0, 4]);
  });
});
