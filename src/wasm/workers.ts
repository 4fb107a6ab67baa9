// Starts the worker threads of a multi-threaded engine: Node worker_threads or browser Web Workers,
// each instantiating the same compiled module over the same shared memory (worker.ts).
import type { WorkerHandle, WorkerInit } from './parallel.js';

const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

/**
 * Starts one worker per init. Node workers keep the process alive only while they start (so that
 * waiting for them is not cut short); `settle()` then unrefs them, so that an undisposed engine
 * never keeps a process alive.
 */
export async function startWorkers(inits: WorkerInit[]): Promise<WorkerHandle[]> {
  if (isNode) {
    const { Worker } = await import('node:worker_threads');
    return inits.map((init) => {
      let failure: string | null = null;
      let stopping = false;
      // of the parent's options only those that change how modules resolve and load: V8 flags are
      // process-wide already (and refused here), and others (--input-type) only fit a main script
      const execArgv = moduleOptions(process.execArgv);
      const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: init, execArgv });
      worker.on('error', (error) => { failure = String(error?.message ?? error); });
      worker.on('exit', (code) => { if (!stopping && failure === null) failure = `exited with code ${code}`; });
      return {
        terminate() { stopping = true; void worker.terminate(); },
        failure: () => failure,
        settle: () => worker.unref(),
      };
    });
  }
  return inits.map((init) => {
    let failure: string | null = null;
    const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    worker.onerror = (event) => { failure = event.message || 'worker error'; };
    worker.postMessage(init);
    return { terminate: () => worker.terminate(), failure: () => failure, settle: () => {} };
  });
}

/** The module-loading options of `argv` (`--conditions node`, `--import=x`, ...), with their values. */
function moduleOptions(argv: string[]): string[] {
  const keep: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const flag = /^(--conditions|-C|--import|--loader|--experimental-loader)(=|$)/.exec(argv[i]);
    if (!flag) continue;
    keep.push(argv[i]);
    if (flag[2] === '' && i + 1 < argv.length) keep.push(argv[++i]);
  }
  return keep;
}

/** Whether this thread may block in Atomics.wait (not a browser's main thread). */
export function canBlock(): boolean {
  if (isNode) return true;
  return typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== 'undefined';
}

/** How many threads 'auto' means: the available cores. */
export async function availableCores(): Promise<number> {
  if (isNode) {
    const os = await import('node:os');
    return os.availableParallelism?.() ?? os.cpus().length;
  }
  return Math.max(1, (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1);
}
