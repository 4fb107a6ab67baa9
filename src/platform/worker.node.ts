// A kernel worker under Node: its start data comes as workerData (threads.node.ts).
import { workerData } from 'node:worker_threads';
import { serveWorker, type WorkerInit } from '../wasm/parallel.js';

serveWorker(workerData as WorkerInit);
