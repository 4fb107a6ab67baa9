// Continuous batching of one decoder for many users (docs/SERVING.md, "The batcher"): requests come and
// go between steps; each step is ONE decoder.forward over every running request (a row for each
// decoding request, chunks of prompts being prefilled), planned by ./scheduler.ts over the blocks the
// ledger of ./prefixCache.ts counts. A step is synchronous; the loop yields to the event loop between
// steps, so consumers, new requests and aborts run there (and only there: nothing changes mid-step).
//
// Invariants (asserted by test/serving/batcher.test.ts, through `inspect()`):
//   B1  a request is in exactly one of: waiting (no sequence), running (one sequence, holding `fed`
//       tokens of its context: prompt, then the tokens it yielded), done (none);
//   B2  a running request's sequence holds a prefix of its context and at least one of its context's
//       tokens is still to be fed (the last token yielded, or the rest of the prompt);
//   B3  a stream yields the generated tokens in order, each once: preemption only frees the sequence,
//       the context (prompt + tokens yielded) is kept and recomputed on resumption, no token is drawn
//       again (one uniform per sampled token, as decoder.generate draws them);
//   B4  the blocks the ledger counts are the blocks the batcher holds in the pools, and after close()
//       (or when every stream has ended and the cache is cleared) every block is back.
//
// Equal to decoder.generate alone (with the same seed): a request's context is fed in order; its next
// token is sampled from the logits of its last context token with sampleRow, the request's own sampler
// and the repetition penalty over what its sequence holds; stop tokens end it unyielded; the last token
// yielded is never fed.
//
// Bit for bit, too (test/serving/invariance.test.ts): the wasm engine's rows do not depend on the other
// rows of a forward (linear layers, norms, the paged kernel), EXCEPT through batchAttention's route: a
// sequence with 16 or more new rows in a call goes to the fused kernel (src/wasm/batchAttention.ts,
// FUSED_MIN_ROWS), fewer to the paged kernel, and the two add in different orders (attention outputs
// differ in the last bits, logits by ~1e-5); and the fused kernel gives a chunk that starts at an ODD
// position different bits in about a quarter of its rows than the same rows fed from an even start
// (even starts agree with the whole prompt). generate feeds a prompt whole (fused when it has 16+
// tokens) and each generated token alone (paged). So the batcher cuts a request's context to match
// (`routeChunk`): a prompt of 16+ tokens in chunks of 16+ rows that start at even positions, a shorter
// prompt and the generated tokens (recomputed after a preemption) in chunks of at most 15; and it
// shares a cached prefix only when its positions were computed by the routes this request's would be
// (and, for a fused prompt, ends at an even position).

import { nextTask } from '../core/nextTask.js';
import type { Tensor } from '../core/tensor.js';
import { checkPositiveCount, describeValue } from '../core/validate.js';
import { maxNewTokensOf, tokenList } from '../models/generate.js';
import { type Sampler, sampleRow, samplerOf } from '../models/sample.js';
import type { Decoder, DecoderSequence, GenerateOptions } from '../models/types.js';
import { type Holder, PrefixCache, type PrefixMatch } from './prefixCache.js';
import { planStep, type StepPlan } from './scheduler.js';
import { TokenStream } from './stream.js';

const OP = 'Batcher.submit';

/** New rows of one sequence from which batchAttention takes the fused kernel (FUSED_MIN_ROWS in src/wasm/batchAttention.ts). */
export const FUSED_ROWS = 16;

/** The route generate computes position i of a request by: fused for a prompt of FUSED_ROWS+ tokens, else paged. */
const routeOf = (r: Request, i: number): number => (i < r.promptLength && r.promptLength >= FUSED_ROWS ? 1 : 0);

/**
 * The largest chunk (<= most) of r's context from `start` whose every row takes the route generate's
 * would, with the same bits: within a fused prompt, chunks of FUSED_ROWS+ that end at an even position
 * and leave FUSED_ROWS+ or nothing; elsewhere at most FUSED_ROWS - 1 rows, never across the prompt's end.
 */
export function routeChunk(promptLength: number, start: number, most: number): number {
  if (promptLength >= FUSED_ROWS && start < promptLength) {
    const left = promptLength - start;
    if (most >= left) return left;
    let n = Math.min(most, left - FUSED_ROWS);
    if ((start + n) % 2 === 1) n--;
    return n >= FUSED_ROWS ? n : 0;
  }
  return Math.max(0, Math.min(most, FUSED_ROWS - 1));
}

/** Options of {@link createBatcher}. */
export interface BatcherOptions {
  /** Most rows (tokens) one step feeds: one per decoding request, plus chunks of prompts. Default 512. */
  maxBatchTokens?: number;
  /** Most requests running at once (the rest wait). Default 64 (at most maxBatchTokens). */
  maxSequences?: number;
  /** Share prompts' leading full blocks with sequences that hold the same tokens. Default true. */
  prefixCaching?: boolean;
  /**
   * While requests decode, a step feeds at most max(16, this · decoding requests) prompt rows, so that
   * a long prompt arriving slows the running streams by a bounded factor (on a CPU a step's time
   * grows with its rows) and is fed over more steps. Default 1; Infinity: only maxBatchTokens bounds
   * a step (the prompt's first token comes sooner, the streams wait longer).
   */
  prefillPerDecodingRow?: number;
  /**
   * Cut contexts so that every position takes the attention route decoder.generate gives it (see
   * above), for streams equal to generate's bit for bit. Default true; needs maxBatchTokens >= 48
   * (below, chunks are free) and keeps maxSequences <= maxBatchTokens - 31 so prompts always get room.
   */
  routeInvariant?: boolean;
  /** Called after every step (for metrics). */
  onStep?: (step: StepInfo) => void;
}

/** What a step did. */
export interface StepInfo {
  /** Wall time of the forward and the sampling. */
  readonly seconds: number;
  /** Rows fed. */
  readonly rows: number;
  /** Requests in the forward. */
  readonly sequences: number;
  /** Tokens sampled. */
  readonly sampled: number;
}

/** Counters of a batcher. */
export interface BatcherStats {
  /** Requests admitted (prefilling or decoding). */
  readonly running: number;
  /** Requests waiting for room (new or preempted). */
  readonly waiting: number;
  /** Blocks of each layer's pool no sequence holds, plus blocks only the prefix cache holds. */
  readonly freeBlocks: number;
  /** Steps (forward passes) run. */
  readonly steps: number;
  /** Tokens yielded to streams. */
  readonly generatedTokens: number;
  /** Prompt tokens submitted. */
  readonly promptTokens: number;
  /** Prompt tokens taken from the prefix cache instead of computed. */
  readonly cachedPromptTokens: number;
  /** Blocks the prefix cache holds (shared with running requests or not). */
  readonly cachedBlocks: number;
  /** Requests preempted (freed and requeued to be recomputed). */
  readonly preemptions: number;
}

/** Continuous batching over one decoder (docs/SERVING.md). */
export interface Batcher {
  /** A stream of generated tokens; GenerateOptions without `sequence` (a TypeError). */
  submit(prompt: ArrayLike<number>, options?: Omit<GenerateOptions, 'sequence'>): AsyncGenerator<number, void, undefined>;
  readonly stats: BatcherStats;
  /** Ends every stream and frees every block; a later submit throws. */
  close(): Promise<void>;
}

/** A request's state (B1). */
class Request {
  /** Prompt, then the tokens yielded. */
  readonly context: number[];
  /** Tokens of the prompt (the context's first ones). */
  readonly promptLength: number;
  holder: Holder | null = null;
  state: 'waiting' | 'running' | 'done' = 'waiting';
  generated = 0;
  /** Most positions its sequence may hold (the model's, and the pools' when alone). */
  limit = 0;
  /** Removes its signal's listener. */
  detach: (() => void) | null = null;
  constructor(
    readonly id: number, prompt: number[], readonly sampler: Sampler, readonly stop: Set<number>,
    readonly maxNewTokens: number, readonly stream: TokenStream,
  ) {
    this.context = prompt;
    this.promptLength = prompt.length;
  }
  get contextLength(): number {
    return this.context.length;
  }
  get fed(): number {
    return this.holder ? this.holder.tokens.length : 0;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class ContinuousBatcher implements Batcher {
  readonly maxBatchTokens: number;
  readonly maxSequences: number;
  /** Blocks of each pool when the batcher was made: the most one request can hold. */
  readonly capacity: number;
  private readonly cache: PrefixCache;
  private readonly prefixCaching: boolean;
  private readonly prefillPerDecodingRow: number;
  readonly routeInvariant: boolean;
  private readonly onStep: ((s: StepInfo) => void) | undefined;
  private running: Request[] = [];
  private waiting: Request[] = [];
  private closed = false;
  private loop: Promise<void> | null = null;
  private nextId = 0;
  private counts = { steps: 0, generatedTokens: 0, promptTokens: 0, preemptions: 0 };
  /** The last step's plan (for tests' invariant checks). */
  lastPlan: StepPlan<Request> | null = null;
  /** Called after each step's plan is applied, before its forward (tests check invariants here). */
  onPlan: ((plan: StepPlan<Request>) => void) | null = null;
  /** The last step's logits (reused: a row is valid until the next step). */
  private logits = new Float32Array(0);
  /** Called with each logits row a token is sampled from (valid during the call), and the request's number (submit order from 0); for tests. */
  onLogits: ((request: number, row: Float32Array) => void) | null = null;

  constructor(readonly decoder: Decoder, options: BatcherOptions = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError('createBatcher: options must be an object');
    this.maxBatchTokens = checkPositiveCount('createBatcher: options.maxBatchTokens', options.maxBatchTokens) ?? 512;
    this.routeInvariant = (options.routeInvariant ?? true) && this.maxBatchTokens >= 48;
    const seats = this.routeInvariant ? this.maxBatchTokens - 2 * FUSED_ROWS + 1 : this.maxBatchTokens;
    this.maxSequences = Math.min(checkPositiveCount('createBatcher: options.maxSequences', options.maxSequences) ?? 64, seats);
    this.prefixCaching = options.prefixCaching ?? true;
    const share = options.prefillPerDecodingRow ?? 1;
    if (typeof share !== 'number' || !(share > 0)) throw new RangeError(`createBatcher: options.prefillPerDecodingRow must be a number > 0 (Infinity allowed), got ${String(share)}`);
    this.prefillPerDecodingRow = share;
    this.onStep = options.onStep;
    this.cache = new PrefixCache(decoder);
    this.capacity = decoder.freeBlocks;
  }

  get stats(): BatcherStats {
    return {
      running: this.running.length,
      waiting: this.waiting.length,
      freeBlocks: this.closed ? this.decoder.freeBlocks : this.decoder.freeBlocks + this.cache.evictable,
      steps: this.counts.steps,
      generatedTokens: this.counts.generatedTokens,
      promptTokens: this.counts.promptTokens,
      cachedPromptTokens: this.cache.hitTokens,
      cachedBlocks: this.cache.cachedBlocks,
      preemptions: this.counts.preemptions,
    };
  }

  submit(prompt: ArrayLike<number>, options: Omit<GenerateOptions, 'sequence'> = {}): AsyncGenerator<number, void, undefined> {
    if (this.closed) throw new Error(`${OP}: the batcher is closed`);
    if (options === null || typeof options !== 'object') throw new TypeError(`${OP}: options must be an object`);
    if ('sequence' in options && (options as GenerateOptions).sequence !== undefined) {
      throw new TypeError(`${OP}: options.sequence is not taken: the batcher finds shared prefixes itself`);
    }
    const V = this.decoder.config.vocabSize;
    const tokens = tokenList(OP, 'prompt', prompt, V);
    if (tokens.length === 0) throw new RangeError(`${OP}: the prompt is empty`);
    const sampler = samplerOf(OP, options);
    const maxNewTokens = maxNewTokensOf(OP, options);
    const { signal } = options;
    if (signal !== undefined && (signal === null || typeof signal !== 'object' || typeof signal.addEventListener !== 'function')) {
      throw new TypeError(`${OP}: options.signal must be an AbortSignal, got ${describeValue(signal)}`);
    }
    const stop = new Set(options.stop === undefined ? this.decoder.config.eosTokenIds : tokenList(OP, 'options.stop', options.stop, Number.MAX_SAFE_INTEGER));
    const limit = Math.min(this.decoder.config.maxPositions, this.capacity * this.decoder.blockSize);
    if (tokens.length > limit) {
      throw new RangeError(`${OP}: the prompt has ${tokens.length} tokens, over the ${limit} positions a sequence may hold (the model's ${this.decoder.config.maxPositions}, the pools' ${this.capacity * this.decoder.blockSize})`);
    }
    let request: Request | null = null;
    const stream = new TokenStream(() => {
      if (request) this.cancel(request);
    });
    request = new Request(this.nextId++, tokens, sampler, stop, maxNewTokens, stream);
    request.limit = limit;
    this.counts.promptTokens += tokens.length;
    if (maxNewTokens === 0 || signal?.aborted) {
      request.state = 'done';
      stream.end();
      return stream;
    }
    if (signal) {
      const r = request;
      const onAbort = () => {
        this.cancel(r);
        r.stream.end();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      // the listener goes with the request, so a long-lived signal does not keep every request alive
      r.detach = () => signal.removeEventListener('abort', onAbort);
    }
    this.waiting.push(request);
    this.kick();
    return stream;
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const r of [...this.running, ...this.waiting]) {
        this.cancel(r, false);
        r.stream.end();
      }
      this.cache.clear();
    }
    return this.loop ?? Promise.resolve();
  }

  /** Ends a request where it is: its blocks go back at once (kept in the prefix cache, unless `keep` is false). */
  private cancel(r: Request, keep = true): void {
    if (r.state === 'done') return;
    if (r.state === 'running') this.running.splice(this.running.indexOf(r), 1);
    else this.waiting.splice(this.waiting.indexOf(r), 1);
    r.state = 'done';
    r.detach?.();
    r.detach = null;
    if (r.holder) {
      if (keep && this.prefixCaching && !this.closed) this.cache.retire(r.holder);
      else this.cache.release(r.holder);
      r.holder = null;
    }
  }

  private kick(): void {
    if (this.loop) return;
    this.loop = (async () => {
      try {
        while (!this.closed && (this.running.length > 0 || this.waiting.length > 0)) {
          let progressed: boolean;
          try {
            progressed = this.step();
          } catch (error) {
            // a broken invariant: every stream fails with it rather than hang, and the blocks go back
            for (const r of [...this.running, ...this.waiting]) {
              this.cancel(r, false);
              r.stream.end(error);
            }
            break;
          }
          // nothing fitted (blocks held outside the batcher): try again a little later
          await (progressed ? nextTask() : sleep(2));
        }
      } finally {
        this.loop = null;
      }
    })();
  }

  /** One step: plan, apply the plan, one forward, sample. Returns whether any row ran. */
  step(): boolean {
    const bs = this.decoder.blockSize, cache = this.cache;
    const plan = planStep<Request>({
      running: this.running, waiting: this.waiting,
      maxBatchTokens: this.maxBatchTokens, maxSequences: this.maxSequences, blockSize: bs,
      available: this.decoder.freeBlocks + cache.evictable,
      watermark: Math.max(1, Math.floor(this.capacity / 100)),
      prefillPerDecodingRow: this.prefillPerDecodingRow, minPrefillChunk: FUSED_ROWS,
      exclusive: (r) => cache.exclusive(r.holder!),
      match: (r) => {
        const m = this.match(r);
        return m && { positions: m.blocks * bs, pinned: m.pinned };
      },
      split: (r, start, most) => (this.routeInvariant ? routeChunk(r.promptLength, start, most) : most),
    });
    this.lastPlan = plan;
    // apply: preempted requests go back to the front of the queue, oldest first, keeping their context
    for (const v of plan.preempt) {
      this.running.splice(this.running.indexOf(v), 1);
      cache.release(v.holder!);
      v.holder = null;
      v.state = 'waiting';
      this.waiting.unshift(v);
      this.counts.preemptions++;
    }
    for (const { request: w } of plan.admit) {
      const m = this.match(w);
      w.holder = m ? cache.share(m) : cache.fresh();
      w.state = 'running';
      this.waiting.splice(this.waiting.indexOf(w), 1);
      this.running.push(w);
    }
    if (plan.rows.length === 0) return false;
    cache.evict(plan.newBlocks);
    if (this.decoder.freeBlocks < plan.newBlocks) throw new Error(`qkv: the batcher planned ${plan.newBlocks} blocks but the pools have ${this.decoder.freeBlocks}`);
    this.onPlan?.(plan);

    const start = performance.now();
    const tokens: number[] = [], sequences: DecoderSequence[] = [], queryLens: number[] = [], from: number[] = [];
    for (const { request: r, n } of plan.rows) {
      const at = r.fed;
      from.push(at);
      for (let i = at; i < at + n; i++) tokens.push(r.context[i]);
      sequences.push(r.holder!.seq);
      queryLens.push(n);
    }
    const V = this.decoder.config.vocabSize, size = plan.rows.length * V;
    let logits: Tensor;
    try {
      // one array for every step's logits, grown as needed: a fresh one each step (9.7 MB for 16
      // rows of Qwen2.5's) costs its pages' first touch, 2.7 ms a MB on a VM
      if (this.logits.length < size) this.logits = new Float32Array(size);
      const out = { data: this.logits.subarray(0, size), shape: [plan.rows.length, V] };
      logits = this.decoder.forward(tokens, { sequences, queryLens, logits: 'last', out });
    } catch (error) {
      // the pools' state of these sequences is not known: they are freed, their streams fail
      for (const { request: r } of plan.rows) {
        this.cancel(r, false);
        r.stream.end(error);
      }
      return true;
    }
    let sampled = 0;
    plan.rows.forEach(({ request: r, n }, i) => {
      cache.grew(r.holder!, r.context, from[i], from[i] + n, n >= FUSED_ROWS ? 1 : 0);
      if (r.fed < r.context.length) return; // a prompt's chunk: more to feed
      sampled++;
      const row = logits.data.subarray(i * V, (i + 1) * V);
      this.onLogits?.(r.id, row);
      this.sampled(r, sampleRow(row, r.sampler, r.holder!.tokens));
    });
    this.counts.steps++;
    this.onStep?.({ seconds: (performance.now() - start) / 1000, rows: tokens.length, sequences: plan.rows.length, sampled });
    return true;
  }

  /** The cached prefix waiting request r may share (a fused prompt keeps FUSED_ROWS+ of its tokens to compute). */
  private match(r: Request): PrefixMatch | null {
    if (!this.prefixCaching) return null;
    if (!this.routeInvariant) return this.cache.match(r.context, r.context.length - 1, null);
    const fused = r.promptLength >= FUSED_ROWS, bs = this.decoder.blockSize;
    const m = this.cache.match(r.context, fused ? r.promptLength - FUSED_ROWS : r.context.length - 1, (i) => routeOf(r, i));
    // a fused prompt's first chunk must start at an even position (odd block sizes only)
    if (m && fused && (m.blocks * bs) % 2 === 1) return m.blocks > 1 ? this.cache.match(r.context, (m.blocks - 1) * bs, (i) => routeOf(r, i)) : null;
    return m;
  }

  /** A token sampled for running request r: yielded, or the end of its stream. */
  private sampled(r: Request, token: number): void {
    if (r.stop.has(token)) {
      this.finish(r);
      return;
    }
    r.context.push(token);
    r.generated++;
    this.counts.generatedTokens++;
    r.stream.push(token);
    if (r.generated >= r.maxNewTokens) this.finish(r);
    else if (r.context.length > r.limit) {
      // generate would throw here too, feeding a token past the model's positions
      this.finish(r, new RangeError(`${OP}: the sequence would hold ${r.context.length} positions, over the ${r.limit} it may hold`));
    }
  }

  private finish(r: Request, error?: unknown): void {
    this.cancel(r);
    r.stream.end(error);
  }

  /** Every request's state and the ledger's invariants, checked (for tests: throws an Error naming what fails). */
  inspect(): { running: number; waiting: number; heldBlocks: number } {
    this.cache.check();
    for (const r of this.running) {
      if (r.state !== 'running' || !r.holder) throw new Error(`B1: running request ${r.id} is ${r.state}, holder ${r.holder ? 'set' : 'none'}`);
      const held = r.holder.tokens;
      for (let i = 0; i < held.length; i++) if (held[i] !== r.context[i]) throw new Error(`B2: request ${r.id} holds token ${held[i]} at ${i}, its context has ${r.context[i]}`);
      if (held.length >= r.context.length) throw new Error(`B2: request ${r.id} has nothing left to feed`);
    }
    for (const r of this.waiting) if (r.state !== 'waiting' || r.holder) throw new Error(`B1: waiting request ${r.id} is ${r.state} or holds a sequence`);
    if (new Set([...this.running, ...this.waiting]).size !== this.running.length + this.waiting.length) throw new Error('B1: a request is in two places');
    return { running: this.running.length, waiting: this.waiting.length, heldBlocks: this.cache.held };
  }

  /** Frees every block the prefix cache holds alone. */
  clearCache(): void {
    this.cache.clear();
  }
}

/** A continuous batcher over `decoder` (docs/SERVING.md, "The batcher"). It assumes it is the only user of the decoder's pools. */
export function createBatcher(decoder: Decoder, options?: BatcherOptions): Batcher {
  return new ContinuousBatcher(decoder, options);
}
