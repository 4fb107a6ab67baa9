// A request's stream of tokens: an AsyncGenerator fed by the batcher's steps. Written by hand, not as
// an `async function*`, so that return() and throw() act at once even while a next() is pending (a
// generator function queues them behind it): a consumer that stops gives its blocks back immediately.

import { asyncDisposeSymbol } from '../core/dispose.js';

export class TokenStream implements AsyncGenerator<number, void, undefined> {
  private queue: number[] = [];
  private head = 0;
  private ended = false;
  private failure: { error: unknown } | null = null;
  private waiters: { resolve: (r: IteratorResult<number, void>) => void; reject: (e: unknown) => void }[] = [];

  /** `cancel` is called once when the consumer stops early (return() or throw()). */
  /** return(), for `await using`: set per instance, since a computed method name would keep this class in bundles that never use it. */
  declare readonly [Symbol.asyncDispose]: () => Promise<void>;

  constructor(private readonly cancel: () => void) {
    (this as { [asyncDisposeSymbol]: () => Promise<void> })[asyncDisposeSymbol] = async () => {
      await this.return();
    };
  }

  /** A token for the consumer. */
  push(token: number): void {
    if (this.ended) return;
    const w = this.waiters.shift();
    if (w) w.resolve({ value: token, done: false });
    else this.queue.push(token);
  }

  /** No more tokens: the consumer gets those queued, then the end (or `error`, once). */
  end(error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    if (error !== undefined) this.failure = { error };
    this.settle();
  }

  get done(): boolean {
    return this.ended;
  }

  next(): Promise<IteratorResult<number, void>> {
    if (this.head < this.queue.length) {
      const value = this.queue[this.head++];
      if (this.head > 64 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.ended) {
      const f = this.failure;
      this.failure = null;
      return f ? Promise.reject(f.error) : Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  return(): Promise<IteratorResult<number, void>> {
    this.stop();
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(error: unknown): Promise<IteratorResult<number, void>> {
    this.stop();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }


  /** The consumer stops: queued tokens are dropped and the request is cancelled. */
  private stop(): void {
    this.queue = [];
    this.head = 0;
    this.failure = null;
    if (!this.ended) {
      this.ended = true;
      this.cancel();
    }
    this.settle();
  }

  private settle(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      if (this.head < this.queue.length) w.resolve({ value: this.queue[this.head++], done: false });
      else if (this.failure) {
        const f = this.failure;
        this.failure = null;
        w.reject(f.error);
      } else w.resolve({ value: undefined, done: true });
    }
  }
}
