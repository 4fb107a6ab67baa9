// Who runs in the next step, and how many of their tokens: the batcher's scheduling, kept apart from
// the forward pass (it only counts rows and blocks; ./batcher.ts applies its plan, then runs the step).
//
// A request knows `contextLength` tokens (its prompt, then the tokens generated so far) and its
// sequence holds `fed` of them; it needs the rest fed (a prompt's chunks, or the one token it sampled
// last) before it samples again. Blocks are counted as the pool counts them: a sequence of L
// positions holds ceil(L / blockSize) blocks; feeding n more takes ceil((L + n) / bs) - ceil(L / bs).
// `available` is the pools' free blocks plus the blocks only the prefix cache holds (evictable).
//
// Rules, in order (vLLM's v1 scheduler, simplified):
//   1. Every running request with one token to feed (decoding) gets its row, oldest first. When the
//      blocks for it are short, the NEWEST running request is preempted (its blocks back, its prompt
//      and tokens so far recomputed when it resumes), until the blocks are there; when it is itself the
//      newest, it is the one preempted.
//   2. Running requests still prefilling get chunks of what is left of their prompt, oldest first,
//      within the step's rows and the blocks available (a chunk shrinks to fit, as `split` allows;
//      nothing is preempted for a prefill). While requests decode, the prompt rows of a step (2 and
//      3 together) are at most max(minPrefillChunk, prefillPerDecodingRow · decoding rows): on a CPU
//      a step's time grows with its rows, so a long prompt arriving costs the running streams a
//      bounded factor per token, and is fed over more steps instead.
//   3. Waiting requests are admitted first come, first served, while rows, sequences and blocks last,
//      each with a first chunk; a request's leading full blocks found in the prefix cache are shared,
//      not computed. The first that does not fit stops admission (no overtaking: nobody starves).
//      Nothing is admitted in a step that preempts (the blocks just freed go to running requests), and
//      an admission leaves `watermark` blocks over while other requests run.
//   4. A step with no rows while two or more requests run (every one a prefill that found no block)
//      preempts the newest, so the oldest can go on in the next step.
//
// Invariants of a plan (asserted by test/serving/batcher.test.ts on every step):
//   P1  rows add up to at most maxBatchTokens; every row count is >= 1, at most what its request
//       has left to feed, and a chunk `split` allows;
//   P2  running requests after the step (not preempted, plus admitted) are at most maxSequences;
//   P3  the blocks the rows take, plus the blocks admissions pin, are at most `available` plus the
//       blocks preemptions give back: the forward never finds the pools short;
//   P4  a preempted request gets no row, and nothing is admitted in a step that preempts;
//   P5  admission follows the waiting order (a prefix of it is admitted).

/** What the scheduler sees of a request. */
export interface Schedulable {
  /** Tokens it knows: prompt, then generated. */
  readonly contextLength: number;
  /** Positions its sequence holds (0 while waiting, or the prefix it would share once admitted). */
  readonly fed: number;
}

export interface StepInput<R extends Schedulable> {
  /** Running requests, in the order they were admitted. */
  readonly running: readonly R[];
  /** Waiting requests, first to be admitted first. */
  readonly waiting: readonly R[];
  readonly maxBatchTokens: number;
  readonly maxSequences: number;
  readonly blockSize: number;
  /** Free blocks plus blocks held only by the prefix cache. */
  readonly available: number;
  /** Blocks an admission must leave over while other requests run. */
  readonly watermark: number;
  /** Prompt rows a step may feed per decoding row while requests decode (Infinity: maxBatchTokens alone bounds them). */
  readonly prefillPerDecodingRow: number;
  /** Prompt rows a step may feed while requests decode, whatever their number (the smallest chunk split allows). */
  readonly minPrefillChunk: number;
  /** Blocks that become available when running request `r` is preempted. */
  exclusive(r: R): number;
  /** The prefix of waiting request `r` that the cache holds: positions shared, and cache-only blocks it pins. */
  match(r: R): { positions: number; pinned: number } | null;
  /**
   * The largest chunk of r's context from position `start` that may run in one step, at most `most`
   * tokens (0: none may). The batcher's chunk rule (rows that keep the engine's attention route).
   */
  split(r: R, start: number, most: number): number;
}

export interface StepPlan<R> {
  /** Running requests to preempt, newest first. */
  readonly preempt: R[];
  /** Waiting requests to admit, in order, with the prefix they share (positions). */
  readonly admit: { request: R; positions: number }[];
  /** The step's rows: each request's tokens to feed, running ones first (in their order), then the admitted. */
  readonly rows: { request: R; n: number }[];
  /** Blocks the rows take from the pools. */
  readonly newBlocks: number;
  /** Blocks the admissions' shared prefixes pin (cache-only blocks that stop being evictable). */
  readonly pinned: number;
}

/** Blocks that feeding n tokens after `length` positions takes. */
export const blocksFor = (length: number, n: number, bs: number): number => Math.ceil((length + n) / bs) - Math.ceil(length / bs);

/** The most tokens (<= n) that fit after `length` positions with `blocks` new blocks. */
const fitting = (length: number, n: number, blocks: number, bs: number): number => Math.max(0, Math.min(n, (Math.ceil(length / bs) + blocks) * bs - length));

/** The next step's plan (see the rules above). Pure: it changes nothing. */
export function planStep<R extends Schedulable>(input: StepInput<R>): StepPlan<R> {
  const { blockSize: bs, maxBatchTokens, maxSequences } = input;
  let available = input.available, budget = maxBatchTokens, newBlocks = 0, pinned = 0;
  const running = input.running;
  const preempted = new Set<R>();
  const preempt: R[] = [];
  const rows = new Map<R, number>();
  const drop = (v: R) => {
    preempted.add(v);
    preempt.push(v);
    available += input.exclusive(v);
    const n = rows.get(v);
    if (n !== undefined) {
      const b = blocksFor(v.fed, n, bs);
      available += b;
      newBlocks -= b;
      budget += n;
      rows.delete(v);
    }
  };
  /** The newest running request not preempted yet. */
  const newest = (): R | null => {
    for (let i = running.length - 1; i >= 0; i--) if (!preempted.has(running[i])) return running[i];
    return null;
  };
  const take = (r: R, n: number) => {
    const b = blocksFor(r.fed, n, bs);
    rows.set(r, n);
    available -= b;
    newBlocks += b;
    budget -= n;
  };

  // 1. decoding requests, oldest first; the newest are preempted for them
  for (const r of running) {
    if (preempted.has(r) || r.contextLength - r.fed !== 1 || budget === 0) continue;
    const need = blocksFor(r.fed, 1, bs);
    while (available < need && !preempted.has(r)) drop(newest()!);
    if (!preempted.has(r)) take(r, 1);
  }
  // while requests decode, prompt rows are bounded by how many decode (rule 2's last sentence)
  if (rows.size > 0 && Number.isFinite(input.prefillPerDecodingRow)) {
    budget = Math.min(budget, Math.max(input.minPrefillChunk, Math.floor(input.prefillPerDecodingRow * rows.size)));
  }
  // 2. prefill chunks of running requests, oldest first, shrunk to the blocks there are
  for (const r of running) {
    const left = r.contextLength - r.fed;
    if (preempted.has(r) || left <= 1 || budget === 0) continue;
    const n = input.split(r, r.fed, fitting(r.fed, Math.min(left, budget), available, bs));
    if (n > 0) take(r, n);
  }
  // 3. admissions, first come first served
  const admit: { request: R; positions: number }[] = [];
  if (preempt.length === 0) {
    let seats = maxSequences - running.length;
    for (const w of input.waiting) {
      if (seats === 0 || budget === 0) break;
      const m = input.match(w);
      const start = m?.positions ?? 0, pin = m?.pinned ?? 0;
      const reserve = running.length + admit.length > 0 ? input.watermark : 0;
      const n = input.split(w, start, fitting(start, Math.min(w.contextLength - start, budget), available - pin - reserve, bs));
      if (n < 1) break;
      admit.push({ request: w, positions: start });
      const b = blocksFor(start, n, bs);
      rows.set(w, n);
      available -= b + pin;
      newBlocks += b;
      pinned += pin;
      budget -= n;
      seats--;
    }
  }
  // 4. a stall of prefills: the newest goes, so the oldest can grow
  if (rows.size === 0 && running.length - preempted.size >= 2) drop(newest()!);

  const ordered: { request: R; n: number }[] = [];
  for (const r of running) if (rows.has(r)) ordered.push({ request: r, n: rows.get(r)! });
  for (const a of admit) ordered.push({ request: a.request, n: rows.get(a.request)! });
  return { preempt, admit, rows: ordered, newBlocks, pinned };
}
