// Sinusoidal positional encoding (Vaswani et al. 2017, section 3.5):
//   P[i, 2j] = sin(i / 10000^(2j / dim)),   P[i, 2j + 1] = cos(i / 10000^(2j / dim))
// Not a hot loop (computed once per model), so both engines take this one definition from src/core.
import { checkPositionalEncoding } from './plans.js';
import { fromData, type Tensor } from './tensor.js';

export function positionalEncoding(maxLen: number, dim: number): Tensor {
  checkPositionalEncoding(maxLen, dim);
  const out = new Float32Array(maxLen * dim);
  // an empty result returns at once, however many empty rows it has
  for (let i = 0; i < maxLen && dim > 0; i++) {
    for (let c = 0; c < dim; c++) {
      const angle = i / 10000 ** ((c - (c % 2)) / dim);
      out[i * dim + c] = c % 2 === 0 ? Math.sin(angle) : Math.cos(angle);
    }
  }
  return fromData(out, [maxLen, dim]);
}
