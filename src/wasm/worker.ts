// A kernel worker: instantiates the module over the shared memory and serves jobs (parallel.ts).
// In Node it reads its start data from workerData; in a browser from its first message.
import { instantiateKernels } from './loader.js';
import { serveJobs, type WorkerInit } from './parallel.js';

function serve(init: WorkerInit): void {
  const kernels = instantiateKernels(init.module, init.memory);
  serveJobs(kernels, init.control, init.index);
}

const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';
if (isNode) {
  const { workerData } = await import('node:worker_threads');
  serve(workerData as WorkerInit);
} else {
  (globalThis as unknown as { onmessage: (e: MessageEvent<WorkerInit>) => void }).onmessage = (e) => serve(e.data);
}
