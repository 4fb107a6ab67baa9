// The batcher: its scheduling invariants (planStep alone, randomized, and on every step of real runs),
// chunked prefill, requests that wait, preemption in a tiny pool, prefix sharing and LRU eviction, every
// way a stream ends (with its blocks back at once), close(), seeded streams equal to decoder.generate
// alone, and a short soak of a few hundred mixed requests after which every block is back.
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, type Decoder, type Engine, loadDecoder, reference } from '../../src/index.js';
import { ContinuousBatcher, createBatcher, routeChunk } from '../../src/serving/batcher.js';

/** The batcher with its internals in view (createBatcher gives the public Batcher). */
const batcherOf = (d: Decoder, o?: ConstructorParameters<typeof ContinuousBatcher>[1]) => new ContinuousBatcher(d, o);

import { blocksFor, planStep, type Schedulable, type StepPlan } from '../../src/serving/scheduler.js';

const folder = (name: string) => new URL(`../fixtures/decoders/${name}/`, import.meta.url).pathname;
const BS = 4;

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    return a / 2 ** 32;
  };
}

async function collect(g: AsyncGenerator<number, void, undefined>): Promise<number[]> {
  const out: number[] = [];
  for await (const t of g) out.push(t);
  return out;
}
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
const randomPrompt = (r: () => number, n: number) => Array.from({ length: n }, () => 3 + Math.floor(r() * 45));

const decoders: Decoder[] = [];
const engines: Engine[] = [];
afterAll(() => {
  decoders.forEach((d) => d.dispose());
  engines.forEach((e) => e.dispose());
});
async function load(maxTokens: number, engine: Engine = reference, name = 'qwen2'): Promise<Decoder> {
  const d = await loadDecoder(folder(name), { engine, maxTokens, kv: { blockSize: BS } });
  decoders.push(d);
  return d;
}

/** Checks plan invariants P1-P5 (scheduler.ts) against the state the plan was made from. */
function checkPlan<R extends Schedulable>(plan: StepPlan<R>, s: { running: readonly R[]; waiting: readonly R[]; maxBatchTokens: number; maxSequences: number; available: number; exclusive: (r: R) => number; match: (r: R) => { positions: number } | null }): void {
  const rows = plan.rows.reduce((n, r) => n + r.n, 0);
  expect(rows, 'P1: rows within maxBatchTokens').toBeLessThanOrEqual(s.maxBatchTokens);
  for (const { request, n } of plan.rows) {
    const admitted = plan.admit.find((a) => a.request === request);
    const start = admitted ? admitted.positions : request.fed;
    expect(n, 'P1: a row count >= 1').toBeGreaterThanOrEqual(1);
    expect(start + n, 'P1: no more than what is left').toBeLessThanOrEqual(request.contextLength);
  }
  const after = s.running.length - plan.preempt.length + plan.admit.length;
  expect(after, 'P2: running within maxSequences').toBeLessThanOrEqual(s.maxSequences);
  const given = plan.preempt.reduce((n, r) => n + s.exclusive(r), 0);
  expect(plan.newBlocks + plan.pinned, 'P3: blocks within what is available').toBeLessThanOrEqual(s.available + given);
  for (const v of plan.preempt) expect(plan.rows.some((r) => r.request === v), 'P4: a preempted request gets no row').toBe(false);
  if (plan.preempt.length > 0) expect(plan.admit.length, 'P4: no admission in a step that preempts').toBe(0);
  plan.admit.forEach((a, i) => expect(a.request, 'P5: admission in waiting order').toBe(s.waiting[i]));
}

describe('planStep (scheduling alone)', () => {
  interface Fake extends Schedulable {
    id: number;
    contextLength: number;
    fed: number;
  }
  it('keeps P1-P5 over random states', () => {
    const r = rng(1), int = (n: number) => Math.floor(r() * n);
    for (let trial = 0; trial < 2000; trial++) {
      const make = (id: number, fed: number): Fake => ({ id, fed, contextLength: fed + 1 + (r() < 0.5 ? 0 : int(60)) });
      const maxSequences = 1 + int(10);
      const running = Array.from({ length: int(maxSequences + 1) }, (_, i) => make(i, 1 + int(60)));
      const waiting = Array.from({ length: int(6) }, (_, i) => make(100 + i, 0));
      const s = {
        running, waiting, maxBatchTokens: 1 + int(64), maxSequences, blockSize: BS,
        available: int(20), watermark: int(2),
        prefillPerDecodingRow: [1, 2, Infinity][trial % 3], minPrefillChunk: 16,
        exclusive: (q: Fake) => Math.ceil(q.fed / BS),
        match: (q: Fake) => (q.id % 2 === 0 ? null : { positions: Math.min(8, Math.floor((q.contextLength - 1) / BS) * BS), pinned: 1 }),
        split: (q: Fake, start: number, most: number) => (trial % 2 ? most : routeChunk(Math.min(q.contextLength, 20), start, most)),
      };
      const plan = planStep(s);
      checkPlan(plan, s);
    }
  });

  it('while requests decode, a step feeds at most max(16, share · decoding rows) prompt rows', () => {
    const make = (id: number, fed: number, contextLength: number): Fake => ({ id, fed, contextLength });
    const decoding = Array.from({ length: 20 }, (_, i) => make(i, 10, 11));
    const long = make(99, 0, 2000);
    const base = {
      waiting: [long], maxSequences: 64, blockSize: BS, available: 10000, watermark: 0, minPrefillChunk: 16,
      exclusive: () => 0, match: () => null, split: (_q: Fake, _s: number, most: number) => most,
    };
    const prompt = (plan: ReturnType<typeof planStep<Fake>>) => plan.rows.filter((r) => r.request === long).reduce((n, r) => n + r.n, 0);
    expect(prompt(planStep({ ...base, running: decoding.slice(0, 4), maxBatchTokens: 512, prefillPerDecodingRow: 1 }))).toBe(16);
    expect(prompt(planStep({ ...base, running: decoding, maxBatchTokens: 512, prefillPerDecodingRow: 1 }))).toBe(20);
    expect(prompt(planStep({ ...base, running: decoding, maxBatchTokens: 512, prefillPerDecodingRow: 2 }))).toBe(40);
    expect(prompt(planStep({ ...base, running: decoding, maxBatchTokens: 512, prefillPerDecodingRow: Infinity }))).toBe(492);
    // nothing decoding: maxBatchTokens alone
    expect(prompt(planStep({ ...base, running: [], maxBatchTokens: 512, prefillPerDecodingRow: 1 }))).toBe(512);
  });

  it('routeChunk keeps fused prompts in even-started chunks of 16+ and the rest under 16', () => {
    expect(routeChunk(40, 0, 100)).toBe(40);
    expect(routeChunk(40, 0, 30)).toBe(24); // leaves 16
    expect(routeChunk(40, 0, 23)).toBe(22); // ends at an even position
    expect(routeChunk(40, 0, 15)).toBe(0);
    expect(routeChunk(40, 24, 15)).toBe(0); // the last 16 go together
    expect(routeChunk(10, 0, 100)).toBe(15);
    expect(routeChunk(40, 40, 100)).toBe(15); // generated tokens, recomputed: paged
    expect(blocksFor(3, 2, 4)).toBe(1);
    expect(blocksFor(4, 4, 4)).toBe(1);
  });
});

/** Runs `b` with every step's plan and the ledger checked (B1-B4, I1-I4, P1-P4). */
function watch(b: ContinuousBatcher, d: Decoder, total: number): { steps: number; maxRows: number; waited: boolean; chunks: number[] } {
  const seen = { steps: 0, maxRows: 0, waited: false, chunks: [] as number[] };
  b.onPlan = (plan) => {
    seen.steps++;
    const rows = plan.rows.reduce((n, r) => n + r.n, 0);
    seen.maxRows = Math.max(seen.maxRows, rows);
    for (const r of plan.rows) if (r.n > 1) seen.chunks.push(r.n);
    expect(rows).toBeLessThanOrEqual(b.maxBatchTokens);
    expect(b.stats.running).toBeLessThanOrEqual(b.maxSequences);
    if (b.stats.waiting > 0) seen.waited = true;
    const state = b.inspect();
    // I2/B4: the ledger's blocks are the blocks the pools lack
    expect(state.heldBlocks).toBe(total - d.freeBlocks);
    expect(d.freeBlocks).toBeGreaterThanOrEqual(plan.newBlocks);
  };
  return seen;
}

describe('the batcher', () => {
  it('streams equal generate alone; prompts are chunked within maxBatchTokens; every block comes back', async () => {
    const d = await load(512);
    const total = d.freeBlocks;
    const r = rng(2);
    const prompts = [40, 3, 25, 17, 9, 33, 1, 12].map((n) => randomPrompt(r, n));
    const expected = [];
    for (const p of prompts) expected.push(await collect(d.generate(p, { maxNewTokens: 12, stop: [] })));
    const b = batcherOf(d, { maxBatchTokens: 48 });
    const seen = watch(b, d, total);
    const got = await Promise.all(prompts.map((p) => collect(b.submit(p, { maxNewTokens: 12, stop: [] }))));
    expect(got).toEqual(expected);
    expect(seen.maxRows).toBeLessThanOrEqual(48);
    expect(b.stats.generatedTokens).toBe(12 * prompts.length);
    expect(b.stats.freeBlocks).toBe(total); // cached blocks count as free
    await b.close();
    expect(d.freeBlocks).toBe(total);
  });

  it('chunked prefill: a long prompt runs in chunks while decoding requests keep one row each step', async () => {
    const d = await load(512);
    const total = d.freeBlocks;
    const r = rng(3);
    const b = batcherOf(d, { maxBatchTokens: 8, routeInvariant: false });
    const seen = watch(b, d, total);
    const short = [randomPrompt(r, 2), randomPrompt(r, 3)];
    const expected = [];
    for (const p of short) expected.push(await collect(d.generate(p, { maxNewTokens: 20, stop: [] })));
    const long = randomPrompt(r, 40);
    const decoding = short.map((p) => collect(b.submit(p, { maxNewTokens: 20, stop: [] })));
    for (let i = 0; i < 3; i++) await turn();
    const steps0 = b.stats.steps;
    const longStream = collect(b.submit(long, { maxNewTokens: 4, stop: [] }));
    const got = await Promise.all(decoding);
    await longStream;
    expect(got).toEqual(expected);
    expect(Math.max(...seen.chunks)).toBeLessThanOrEqual(8);
    // the 40-token prompt needed several steps; the short streams were never stalled by it
    expect(b.stats.steps - steps0).toBeGreaterThanOrEqual(Math.ceil(40 / 8));
    await b.close();
    expect(d.freeBlocks).toBe(total);
  });

  it('requests wait when blocks are short, and are preempted (recomputed) without losing or repeating a token', async () => {
    const d = await load(64); // 16 blocks of 4
    const total = d.freeBlocks;
    const r = rng(4);
    const prompts = Array.from({ length: 6 }, () => randomPrompt(r, 10 + Math.floor(r() * 8)));
    const options = (i: number) => (i % 2 ? { maxNewTokens: 24, stop: [] } : { maxNewTokens: 24, stop: [], temperature: 0.9, seed: 7 + i, repetitionPenalty: 1.3 });
    const expected = [];
    for (const [i, p] of prompts.entries()) expected.push(await collect(d.generate(p, options(i))));
    const b = batcherOf(d, { maxBatchTokens: 48 });
    const seen = watch(b, d, total);
    const got = await Promise.all(prompts.map((p, i) => collect(b.submit(p, options(i)))));
    expect(got).toEqual(expected);
    expect(seen.waited).toBe(true);
    expect(b.stats.preemptions).toBeGreaterThan(0);
    await b.close();
    expect(d.freeBlocks).toBe(total);
  });

  it('a request too long for the pools alone ends with a RangeError after its tokens', async () => {
    const d = await load(32); // 8 blocks: 32 positions
    const b = batcherOf(d, { maxBatchTokens: 48 });
    const prompt = randomPrompt(rng(5), 20);
    // 32 positions hold the prompt and 12 tokens fed; the 13th is yielded (as generate's at the model's end)
    const expected = await collect(d.generate(prompt, { maxNewTokens: 13, stop: [] }));
    const out: number[] = [];
    await expect(async () => {
      for await (const t of b.submit(prompt, { maxNewTokens: 40, stop: [] })) out.push(t);
    }).rejects.toThrow(RangeError);
    expect(out).toEqual(expected);
    expect(() => b.submit(randomPrompt(rng(6), 33))).toThrow(RangeError);
    await b.close();
    expect(d.freeBlocks).toBe(8);
  });

  it('prefix caching: a prompt sharing full blocks with a finished one shares them; LRU eviction frees them when needed', async () => {
    const d = await load(128); // 32 blocks
    const total = d.freeBlocks;
    const r = rng(7);
    const system = randomPrompt(r, 24);
    const a = [...system, ...randomPrompt(r, 18)], c = [...system, ...randomPrompt(r, 20)];
    const expected = await collect(d.generate(c, { maxNewTokens: 6, stop: [] }));
    const b = batcherOf(d, { maxBatchTokens: 48 });
    watch(b, d, total);
    await collect(b.submit(a, { maxNewTokens: 6, stop: [] }));
    expect(b.stats.cachedBlocks).toBeGreaterThan(0);
    expect(b.stats.freeBlocks).toBe(total);
    const before = b.stats.cachedPromptTokens;
    expect(await collect(b.submit(c, { maxNewTokens: 6, stop: [] }))).toEqual(expected);
    expect(b.stats.cachedPromptTokens - before).toBe(24); // the system prompt's 6 blocks
    // requests that need every block: the cache gives its blocks back, least recently used first
    const big = Array.from({ length: 3 }, () => randomPrompt(r, 40));
    const bigExpected = [];
    for (const p of big) bigExpected.push(await collect(d.generate(p, { maxNewTokens: 2, stop: [] })));
    expect(await Promise.all(big.map((p) => collect(b.submit(p, { maxNewTokens: 2, stop: [] }))))).toEqual(bigExpected);
    expect(b.stats.freeBlocks).toBe(total);
    b.clearCache();
    expect(d.freeBlocks).toBe(total);
    await b.close();
  });

  it('a stream ends at a stop token, maxNewTokens, its signal and return(), its blocks back at once', async () => {
    const d = await load(256);
    const total = d.freeBlocks;
    const b = batcherOf(d, { maxBatchTokens: 48, prefixCaching: false });
    const prompt = randomPrompt(rng(8), 10);
    const greedy = await collect(d.generate(prompt, { maxNewTokens: 30, stop: [] }));
    // a stop token: not yielded
    const stopAt = greedy.findIndex((t, i) => i > 0 && !greedy.slice(0, i).includes(t));
    expect(await collect(b.submit(prompt, { maxNewTokens: 30, stop: [greedy[stopAt]] }))).toEqual(greedy.slice(0, stopAt));
    expect(await collect(b.submit(prompt, { maxNewTokens: 5, stop: [] }))).toEqual(greedy.slice(0, 5));
    expect(await collect(b.submit(prompt, { maxNewTokens: 0 }))).toEqual([]);
    const aborted = new AbortController();
    aborted.abort();
    expect(await collect(b.submit(prompt, { signal: aborted.signal }))).toEqual([]);
    expect(d.freeBlocks).toBe(total);
    // signal mid-stream: the blocks are back before the next step
    const ac = new AbortController();
    const got: number[] = [];
    for await (const t of b.submit(prompt, { maxNewTokens: 30, stop: [], signal: ac.signal })) {
      got.push(t);
      if (got.length === 3) {
        expect(d.freeBlocks).toBeLessThan(total);
        ac.abort();
        expect(d.freeBlocks).toBe(total);
        expect(b.stats.running).toBe(0);
      }
    }
    expect(got).toEqual(greedy.slice(0, got.length));
    // return() (break) mid-stream
    const seen: number[] = [];
    for await (const t of b.submit(prompt, { maxNewTokens: 30, stop: [] })) {
      seen.push(t);
      if (seen.length === 4) break;
    }
    expect(d.freeBlocks).toBe(total);
    expect(seen).toEqual(greedy.slice(0, 4));
    // return() while a next() is pending
    const g = b.submit(prompt, { maxNewTokens: 30, stop: [] });
    const pending = g.next();
    await g.return();
    expect(d.freeBlocks).toBe(total);
    expect((await pending).done).toBe(true);
    expect(await g.next()).toEqual({ value: undefined, done: true });
    // throw() ends it too
    const h = b.submit(prompt, { maxNewTokens: 30, stop: [] });
    await h.next();
    await expect(h.throw(new Error('stop'))).rejects.toThrow('stop');
    expect(d.freeBlocks).toBe(total);
    await b.close();
  });

  it('refuses bad requests at submit, and everything after close()', async () => {
    const d = await load(256);
    const b = batcherOf(d);
    const seq = d.sequence();
    expect(() => b.submit([3, 4], { sequence: seq } as never)).toThrow(TypeError);
    seq.free();
    expect(() => b.submit([])).toThrow(RangeError);
    expect(() => b.submit([3, 48])).toThrow(RangeError);
    expect(() => b.submit('abc' as never)).toThrow(TypeError);
    expect(() => b.submit([3], { maxNewTokens: -1 })).toThrow(RangeError);
    expect(() => b.submit([3], { temperature: -1 })).toThrow(RangeError);
    expect(() => createBatcher(d, { maxBatchTokens: 0 })).toThrow(RangeError);
    // close ends running and waiting streams and frees every block
    const streams = Array.from({ length: 5 }, (_, i) => collect(b.submit(randomPrompt(rng(i), 30), { maxNewTokens: 30, stop: [] })));
    await turn();
    await turn();
    await b.close();
    const ended = await Promise.all(streams);
    expect(ended.every((s) => s.length < 30)).toBe(true);
    expect(d.freeBlocks).toBe(64);
    expect(() => b.submit([3])).toThrow(/closed/);
  });

  it('seeded sampled streams equal generate alone on the wasm engine, 1 and 2 threads', async () => {
    for (const threads of [1, 2]) {
      const engine = await createEngine({ threads });
      engines.push(engine);
      const d = await load(512, engine, 'llama3');
      const r = rng(9 + threads);
      const prompts = [5, 30, 18, 2, 40].map((n) => randomPrompt(r, n));
      const opts = (i: number) => ({ maxNewTokens: 10, stop: [], temperature: 0.7 + i / 10, seed: 100 + i, topK: i % 2 ? 10 : 0, topP: 0.9, minP: i === 2 ? 0.05 : 0, repetitionPenalty: 1.1 });
      const expected = [];
      for (const [i, p] of prompts.entries()) expected.push(await collect(d.generate(p, opts(i))));
      const b = batcherOf(d, { maxBatchTokens: 64 });
      expect(await Promise.all(prompts.map((p, i) => collect(b.submit(p, opts(i)))))).toEqual(expected);
      await b.close();
      expect(d.freeBlocks).toBe(128);
    }
  });

  it('soak: a few hundred mixed requests (shared prefixes, aborts, returns, a small pool): every block back, no error', async () => {
    const d = await load(96); // 24 blocks
    const total = d.freeBlocks;
    const r = rng(11), int = (n: number) => Math.floor(r() * n);
    const systems = [randomPrompt(r, 16), randomPrompt(r, 24)];
    const b = batcherOf(d, { maxBatchTokens: 48, maxSequences: 12 });
    watch(b, d, total);
    const jobs: Promise<unknown>[] = [];
    let aborted = 0, broke = 0;
    for (let i = 0; i < 300; i++) {
      const kind = int(10);
      const prompt = kind < 3 ? [...systems[int(2)], ...randomPrompt(r, 1 + int(20))] : randomPrompt(r, 1 + int(40));
      const maxNewTokens = 1 + int(16);
      if (kind === 8) {
        const ac = new AbortController();
        setTimeout(() => ac.abort(), int(5));
        aborted++;
        jobs.push(collect(b.submit(prompt, { maxNewTokens, stop: [], signal: ac.signal })));
      } else if (kind === 9) {
        broke++;
        jobs.push((async () => {
          for await (const t of b.submit(prompt, { maxNewTokens, stop: [] })) if (t >= 0) break;
        })());
      } else jobs.push(collect(b.submit(prompt, { maxNewTokens, stop: [], temperature: kind % 2 ? 0 : 0.8, seed: i })));
      if (int(4) === 0) await turn();
    }
    await Promise.all(jobs);
    expect(aborted + broke).toBeGreaterThan(10);
    expect(b.stats.running + b.stats.waiting).toBe(0);
    expect(b.stats.freeBlocks).toBe(total);
    b.clearCache();
    expect(d.freeBlocks).toBe(total);
    await b.close();
    expect(d.freeBlocks).toBe(total);
  });
});
