// A decoder's sequence: one KVSequence in every layer's pool, the tokens whose keys and values they
// hold, and at most a few tokens that generate yielded but has not fed yet.
//
// Invariants: every layer's KVSequence holds `length` positions; `tokens` has `length` entries;
// `pending` tokens are not in the pools (the next forward through generate feeds them first).

import { disposeSymbol } from '../core/dispose.js';
import type { KVSequence } from '../core/servingTypes.js';
import type { DecoderSequence } from './types.js';

export class ModelSequence implements DecoderSequence {
  private layers: KVSequence[] | null;
  private held: Int32Array;
  private count: number;
  /** Yielded by generate, not fed yet. */
  pending: number[];

  /** free(), for `using`: set per instance (see ModelDecoder). */
  declare readonly [Symbol.dispose]: () => void;

  constructor(readonly owner: object, layers: KVSequence[], tokens = new Int32Array(16), count = 0, pending: number[] = []) {
    (this as { [disposeSymbol]: () => void })[disposeSymbol] = () => this.free();
    this.layers = layers;
    this.held = tokens;
    this.count = count;
    this.pending = pending;
  }

  /** Every layer's KVSequence; throws once freed. */
  get kv(): KVSequence[] {
    if (this.layers === null) throw new Error('qkv: this decoder sequence has been freed');
    return this.layers;
  }

  get freed(): boolean {
    return this.layers === null;
  }

  get length(): number {
    return this.kv[0].length;
  }

  get tokens(): Int32Array {
    this.kv;
    return this.held.slice(0, this.count);
  }

  /** Records tokens just fed through every layer. */
  fed(tokens: ArrayLike<number>, from: number, to: number): void {
    const n = to - from;
    if (this.count + n > this.held.length) {
      const grown = new Int32Array(Math.max(this.count + n, this.held.length * 2));
      grown.set(this.held.subarray(0, this.count));
      this.held = grown;
    }
    for (let i = 0; i < n; i++) this.held[this.count + i] = tokens[from + i];
    this.count += n;
  }

  fork(): DecoderSequence {
    const forks: KVSequence[] = [];
    try {
      for (const s of this.kv) forks.push(s.fork());
    } catch (error) {
      for (const f of forks) f.free();
      throw error;
    }
    return new ModelSequence(this.owner, forks, this.held.slice(), this.count, [...this.pending]);
  }

  truncate(length: number): void {
    const layers = this.kv;
    if (typeof length !== 'number') throw new TypeError(`DecoderSequence.truncate: length must be a number, got ${typeof length}`);
    if (!Number.isInteger(length) || length < 0 || length > this.count) {
      throw new RangeError(`DecoderSequence.truncate: length must be an integer in [0, ${this.count}], got ${length}`);
    }
    for (const s of layers) s.truncate(length);
    this.count = length;
    this.pending = [];
  }

  free(): void {
    if (this.layers === null) return;
    for (const s of this.layers) s.free();
    this.layers = null;
  }

}
