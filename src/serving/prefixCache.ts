// The batcher's block ledger and prefix cache (vLLM's automatic prefix caching, on qkv's sequence API).
//
// qkv's pools keep their own reference counts and do not show block indices, so the batcher keeps a
// LOGICAL copy of who holds which block: every holder (a running request's sequence or a cached one)
// lists the logical ids of its blocks, one per `blockSize` positions. The only ways blocks are shared
// are the ones this module performs: `share()` forks a holder and truncates the fork to k FULL blocks,
// so a shared block is full when it is shared and never written again (no copy on write ever happens:
// appends go to a holder's own last block or a new one). The ledger therefore mirrors the pool exactly.
//
// A full block is keyed by a hash chained over tokens: key(j) = mix(key(j - 1), tokens of block j), so
// equal keys at depth j mean (barring collisions) equal tokens in blocks 0..j. The index maps a key to
// the holders that hold that block; a match is confirmed by comparing tokens, so a collision costs a
// miss, never a wrong answer.
//
// Invariants (asserted by test/serving/batcher.test.ts through check()):
//   I1  every holder holds ceil(length / blockSize) logical blocks and `length` tokens;
//   I2  a logical block's reference count is the number of holders listing it; the distinct blocks
//       with a count > 0 are exactly the blocks the batcher's sequences take from the pool
//       (pool blocks in use = total - decoder.freeBlocks when nothing else holds blocks);
//   I3  the index holds, for each holder, the keys of its full blocks and nothing else;
//   I4  cached holders are in least-recently-used order; evicting one frees the blocks only it held.
import type { Decoder, DecoderSequence } from '../models/types.js';

/** A sequence whose blocks the ledger tracks. */
export interface Holder {
  /** The sequence (freed when the holder is released). */
  readonly seq: DecoderSequence;
  /** Logical ids of its blocks, in order. */
  readonly blocks: number[];
  /** The tokens it holds (its sequence's `length` of them). */
  readonly tokens: number[];
  /** Chained keys of its full blocks. */
  readonly keys: number[];
  /**
   * The attention route each position was computed by (0: the paged kernel, 1: the fused kernel for
   * prompts of many rows; see ./batcher.ts): its keys and values in deeper layers depend on it, in the
   * last bits, so a prefix is shared only with a request that would have computed it the same way.
   */
  readonly routes: number[];
  /** Running (a request's) or cached (kept for its prefix). */
  cached: boolean;
  released: boolean;
}

/** A prompt's longest prefix of full blocks some holder has. */
export interface PrefixMatch {
  readonly holder: Holder;
  /** Full blocks shared (positions: blocks · blockSize). */
  readonly blocks: number;
  /** Of them, blocks no running holder holds (their sharing takes them out of the cache's evictable ones). */
  readonly pinned: number;
}

const M1 = 0x9e3779b1, M2 = 0x85ebca77;

/** key(j) from key(j - 1) and block j's tokens: two 32-bit multiplicative hashes, as one 53-bit number. */
export function chainKey(parent: number, tokens: ArrayLike<number>, from: number, to: number): number {
  let a = (parent / 2 ** 21) >>> 0 ^ 0x2545f491, b = (parent % 2 ** 21) ^ 0x68e31da4;
  for (let i = from; i < to; i++) {
    a = Math.imul(a ^ tokens[i], M1);
    a ^= a >>> 15;
    b = Math.imul(b + tokens[i] + 0x632be5ab, M2);
    b ^= b >>> 13;
  }
  a = Math.imul(a ^ (a >>> 16), M2) >>> 0;
  b = Math.imul(b ^ (b >>> 16), M1) >>> 0;
  return a * 2 ** 21 + (b >>> 11);
}

export class PrefixCache {
  readonly blockSize: number;
  private nextId = 1;
  /** Logical block -> [running holders, cached holders] listing it. */
  private refs = new Map<number, [number, number]>();
  private index = new Map<number, Set<Holder>>();
  /** Cached holders, least recently used first (Map keeps insertion order). */
  private lru = new Map<Holder, true>();
  private holders = new Set<Holder>();
  /** Prompt tokens found in the cache instead of computed (for stats). */
  hitTokens = 0;

  constructor(private readonly decoder: Decoder) {
    this.blockSize = decoder.blockSize;
  }

  /** A running holder of a new, empty sequence. */
  fresh(): Holder {
    const h: Holder = { seq: this.decoder.sequence(), blocks: [], tokens: [], keys: [], routes: [], cached: false, released: false };
    this.holders.add(h);
    return h;
  }

  /**
   * The longest prefix of `prompt` in full blocks, at most `most` positions (less than the prompt: its
   * last token is fed for logits), that some holder has, computed by the routes `routeOf(i)` gives
   * (null: by any route).
   */
  match(prompt: ArrayLike<number>, most: number, routeOf: ((i: number) => number) | null): PrefixMatch | null {
    const bs = this.blockSize;
    most = Math.floor(Math.min(most, prompt.length - 1) / bs);
    let best: Holder | null = null, depth = 0, key = 0;
    for (let j = 0; j < most; j++) {
      key = chainKey(key, prompt, j * bs, (j + 1) * bs);
      const set = this.index.get(key);
      let found: Holder | null = null;
      if (set) {
        for (const h of set) {
          if (samePrefix(h.tokens, prompt, (j + 1) * bs) && (!routeOf || sameRoutes(h.routes, routeOf, 0, (j + 1) * bs))) {
            found = h;
            break;
          }
        }
      }
      if (!found) break;
      best = found;
      depth = j + 1;
    }
    if (!best) return null;
    let pinned = 0;
    for (let j = 0; j < depth; j++) if (this.refs.get(best.blocks[j])![0] === 0) pinned++;
    return { holder: best, blocks: depth, pinned };
  }

  /** A running holder sharing `m`'s blocks (a fork of its holder, truncated to them); the source becomes most recently used. */
  share(m: PrefixMatch): Holder {
    const src = m.holder, n = m.blocks * this.blockSize;
    const seq = src.seq.fork();
    seq.truncate(n);
    const h: Holder = {
      seq, blocks: src.blocks.slice(0, m.blocks), tokens: src.tokens.slice(0, n), keys: src.keys.slice(0, m.blocks),
      routes: src.routes.slice(0, n), cached: false, released: false,
    };
    for (const b of h.blocks) this.refs.get(b)![0]++;
    for (const k of h.keys) this.indexAdd(k, h);
    this.holders.add(h);
    if (src.cached) {
      this.lru.delete(src);
      this.lru.set(src, true);
    }
    this.hitTokens += n;
    return h;
  }

  /** Records `tokens[from, to)` just fed to `h`'s sequence by `route`: new blocks get ids, newly full blocks get keys. */
  grew(h: Holder, tokens: ArrayLike<number>, from: number, to: number, route: number): void {
    const bs = this.blockSize;
    for (let i = from; i < to; i++) {
      h.tokens.push(tokens[i]);
      h.routes.push(route);
    }
    while (h.blocks.length < Math.ceil(h.tokens.length / bs)) {
      const id = this.nextId++;
      h.blocks.push(id);
      this.refs.set(id, h.cached ? [0, 1] : [1, 0]);
    }
    while (h.keys.length < Math.floor(h.tokens.length / bs)) {
      const j = h.keys.length;
      const key = chainKey(j === 0 ? 0 : h.keys[j - 1], h.tokens, j * bs, (j + 1) * bs);
      h.keys.push(key);
      this.indexAdd(key, h);
    }
  }

  /** Frees a holder's sequence and its share of the blocks. */
  release(h: Holder): void {
    if (h.released) return;
    h.released = true;
    for (const b of h.blocks) {
      const r = this.refs.get(b)!;
      r[h.cached ? 1 : 0]--;
      if (r[0] === 0 && r[1] === 0) this.refs.delete(b);
    }
    for (const k of h.keys) {
      const set = this.index.get(k);
      set?.delete(h);
      if (set?.size === 0) this.index.delete(k);
    }
    this.lru.delete(h);
    this.holders.delete(h);
    h.seq.free();
  }

  /**
   * A running holder whose request ended: its full blocks stay in the cache (most recently used); its
   * partial last block goes back. Released instead when it would keep nothing another holder lacks.
   */
  retire(h: Holder): void {
    if (h.released || h.cached) return;
    const bs = this.blockSize, full = h.keys.length;
    const redundant = full === 0 || [...(this.index.get(h.keys[full - 1]) ?? [])].some(
      (o) => o !== h && samePrefix(o.tokens, h.tokens, full * bs) && sameRoutes(o.routes, (i) => h.routes[i], 0, full * bs),
    );
    if (redundant) {
      this.release(h);
      return;
    }
    if (h.blocks.length > full) {
      const tail = h.blocks.pop()!, r = this.refs.get(tail)!;
      r[0]--;
      if (r[0] === 0 && r[1] === 0) this.refs.delete(tail);
      h.tokens.length = full * bs;
      h.routes.length = full * bs;
      h.seq.truncate(full * bs);
    }
    for (const b of h.blocks) {
      const r = this.refs.get(b)!;
      r[0]--;
      r[1]++;
    }
    h.cached = true;
    this.lru.set(h, true);
  }

  /** Frees cached holders, least recently used first, until the pools have `blocks` free or the cache is empty. */
  evict(blocks: number): void {
    for (const h of this.lru.keys()) {
      if (this.decoder.freeBlocks >= blocks) return;
      this.release(h);
    }
  }

  /** Frees every cached holder. */
  clear(): void {
    for (const h of [...this.lru.keys()]) this.release(h);
  }

  /** Blocks held by cached holders only: free once evicted (they count as free in stats). */
  get evictable(): number {
    let n = 0;
    for (const [r0] of this.refs.values()) if (r0 === 0) n++;
    return n;
  }

  /** Blocks held by cached holders (whether running ones share them or not). */
  get cachedBlocks(): number {
    let n = 0;
    for (const [, r1] of this.refs.values()) if (r1 > 0) n++;
    return n;
  }

  /** Blocks held by any holder. */
  get held(): number {
    return this.refs.size;
  }

  /** Cached holders. */
  get entries(): number {
    return this.lru.size;
  }

  /** Blocks of running holder `h` that no other running holder lists: free or evictable once it is released. */
  exclusive(h: Holder): number {
    let n = 0;
    for (const b of h.blocks) if (this.refs.get(b)![0] === 1) n++;
    return n;
  }

  /** Checks invariants I1-I4; throws an Error naming the first that fails. For tests. */
  check(): void {
    const bs = this.blockSize, count = new Map<number, [number, number]>();
    for (const h of this.holders) {
      if (h.routes.length !== h.tokens.length) throw new Error(`I1: ${h.routes.length} routes for ${h.tokens.length} tokens`);
      if (h.seq.length !== h.tokens.length) throw new Error(`I1: a holder's sequence holds ${h.seq.length} positions, its tokens ${h.tokens.length}`);
      if (h.blocks.length !== Math.ceil(h.tokens.length / bs)) throw new Error(`I1: ${h.blocks.length} blocks for ${h.tokens.length} tokens`);
      const seqTokens = h.seq.tokens;
      for (let i = 0; i < h.tokens.length; i++) if (seqTokens[i] !== h.tokens[i]) throw new Error(`I1: token ${i} differs from the sequence's`);
      for (const b of h.blocks) {
        const c = count.get(b) ?? [0, 0];
        c[h.cached ? 1 : 0]++;
        count.set(b, c);
      }
      if (h.keys.length !== Math.floor(h.tokens.length / bs)) throw new Error(`I3: ${h.keys.length} keys for ${h.tokens.length} tokens`);
      for (const k of h.keys) if (!this.index.get(k)?.has(h)) throw new Error('I3: a full block is missing from the index');
      if (h.cached !== this.lru.has(h)) throw new Error('I4: a cached holder is not in the LRU list (or a running one is)');
    }
    if (count.size !== this.refs.size) throw new Error(`I2: ${this.refs.size} blocks counted, ${count.size} held`);
    for (const [b, [r, c]] of count) {
      const have = this.refs.get(b);
      if (!have || have[0] !== r || have[1] !== c) throw new Error(`I2: block ${b} counted ${String(have)}, held by ${r} running and ${c} cached`);
    }
    for (const [k, set] of this.index) for (const h of set) if (!this.holders.has(h) || !h.keys.includes(k)) throw new Error('I3: the index names a key its holder lacks');
  }

  private indexAdd(key: number, h: Holder): void {
    let set = this.index.get(key);
    if (!set) this.index.set(key, (set = new Set()));
    set.add(h);
  }
}

function sameRoutes(routes: readonly number[], routeOf: (i: number) => number, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (routes[i] !== routeOf(i)) return false;
  return true;
}

function samePrefix(a: ArrayLike<number>, b: ArrayLike<number>, n: number): boolean {
  if (a.length < n || b.length < n) return false;
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}
