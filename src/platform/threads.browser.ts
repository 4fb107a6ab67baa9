// The browser's side of the threads engine: module Web Workers, navigator.hardwareConcurrency.
// package.json "imports" maps #threads here for every condition except "node"; this file must
// never import a Node built-in (test/browser/bundles.test.ts checks the bundles).
import type { WorkerHandle, WorkerInit } from '../wasm/parallel.js';

/** Starts one module worker per init and hands it its start data. */
export async function startWorkers(inits: WorkerInit[]): Promise<WorkerHandle[]> {
  return inits.map((init) => {
    let failure: string | null = null;
    const worker = new Worker(new URL('./worker.browser.js', import.meta.url), { type: 'module' });
    worker.onerror = (event) => { failure = event.message || 'worker error'; };
    worker.postMessage(init);
    return { terminate: () => worker.terminate(), failure: () => failure, settle: () => {} };
  });
}

/** Atomics.wait is refused on a page's main thread; workers may block. */
export const canBlock = (): boolean => typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== 'undefined';

/** How many threads 'auto' means: the logical cores the browser reports. */
export const availableCores = async (): Promise<number> =>
  Math.max(1, (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1);
