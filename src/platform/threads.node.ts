// Node's side of the threads engine: worker_threads, os.availableParallelism(). package.json
// "imports" maps #threads here under the "node" condition only (threads.browser.ts is the other side).
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { WorkerHandle, WorkerInit } from '../wasm/parallel.js';

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

/**
 * Starts one worker per init. A worker keeps the process alive only while it starts (so that
 * waiting for it is not cut short); `settle()` then unrefs it, so that an undisposed engine never
 * keeps a process alive.
 */
export async function startWorkers(inits: WorkerInit[]): Promise<WorkerHandle[]> {
  // of the parent's options only those that change how modules resolve and load: V8 flags are
  // process-wide already (and refused here), and others (--input-type) only fit a main script
  const execArgv = moduleOptions(process.execArgv);
  return inits.map((init) => {
    let failure: string | null = null;
    let stopping = false;
    const worker = new Worker(new URL('./worker.node.js', import.meta.url), { workerData: init, execArgv });
    worker.on('error', (error) => { failure = String(error?.message ?? error); });
    worker.on('exit', (code) => { if (!stopping && failure === null) failure = `exited with code ${code}`; });
    return {
      terminate() { stopping = true; void worker.terminate(); },
      failure: () => failure,
      settle: () => worker.unref(),
    };
  });
}

/** Node threads may always block in Atomics.wait. */
export const canBlock = (): boolean => true;

/** How many threads 'auto' means: the available cores. */
export const availableCores = async (): Promise<number> => os.availableParallelism?.() ?? os.cpus().length;
