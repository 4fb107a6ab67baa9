// A kernel worker in a browser: its start data comes as its first message (threads.browser.ts).
import { serveWorker, type WorkerInit } from '../wasm/parallel.js';

(globalThis as unknown as { onmessage: (e: MessageEvent<WorkerInit>) => void }).onmessage = (e) => serveWorker(e.data);
